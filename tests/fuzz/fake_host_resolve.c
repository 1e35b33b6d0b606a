/*
 * fake_host_resolve.c - host_resolve() for the fuzz builds: every name is
 * 127.0.0.1, so the config fuzzers reach the paths after a name resolves
 * without ever asking a name server (a lookup per input would be slow and
 * would depend on the network).
 */
#include "../../config/host_resolve.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

bool host_resolve(const char *host, uint16_t port, struct address *out, size_t capacity, size_t *count,
                  char *error, size_t error_size)
{
    *count = 0;
    if (capacity == 0) {
        snprintf(error, error_size, "host '%s' has more than %zu addresses", host, capacity);
        return false;
    }
    memset(&out[0], 0, sizeof out[0]);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&out[0].storage;
    in4->sin_family = AF_INET;
    in4->sin_port = htons(port);
    in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    out[0].length = sizeof *in4;
    *count = 1;
    return true;
}
