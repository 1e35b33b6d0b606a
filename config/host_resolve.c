/*
 * host_resolve.c - host names of servers resolved at config load
 * (getaddrinfo), nginx's behaviour for `server NAME:PORT` in an upstream.
 * Owns no state: every call is one lookup, its result copied out and freed.
 * Must never be called from a worker: a slow name server blocks the caller.
 */
#include "host_resolve.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static bool already_listed(const struct address *list, size_t count, const struct address *address)
{
    for (size_t i = 0; i < count; i++)
        if (list[i].length == address->length && memcmp(&list[i].storage, &address->storage, address->length) == 0)
            return true;
    return false;
}

/* Copy an IPv4/IPv6 result with our port; false for other families. */
static bool take_address(const struct addrinfo *info, uint16_t port, struct address *out)
{
    memset(out, 0, sizeof *out);
    if (info->ai_addrlen > sizeof out->storage)
        return false;
    memcpy(&out->storage, info->ai_addr, info->ai_addrlen);
    out->length = info->ai_addrlen;
    if (info->ai_family == AF_INET) {
        ((struct sockaddr_in *)&out->storage)->sin_port = htons(port);
        return true;
    }
    if (info->ai_family == AF_INET6) {
        ((struct sockaddr_in6 *)&out->storage)->sin6_port = htons(port);
        return true;
    }
    return false;
}

bool host_resolve(const char *host, uint16_t port, struct address *out, size_t capacity, size_t *count,
                  char *error, size_t error_size)
{
    /* No AI_ADDRCONFIG: like nginx, take every address the name has, also
     * ::1 for "localhost" on a host whose only IPv6 address is loopback. */
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *found = NULL;
    int status = getaddrinfo(host, NULL, &hints, &found);
    if (status != 0) {
        snprintf(error, error_size, "host '%s' not found: %s", host, gai_strerror(status));
        return false;
    }
    *count = 0;
    bool too_many = false;
    for (const struct addrinfo *info = found; info; info = info->ai_next) {
        struct address address;
        if (!take_address(info, port, &address) || already_listed(out, *count, &address))
            continue;
        if (*count == capacity) {
            too_many = true;
            break;
        }
        out[(*count)++] = address;
    }
    freeaddrinfo(found);
    if (too_many) {
        snprintf(error, error_size, "host '%s' has more than %zu addresses", host, capacity);
        return false;
    }
    if (*count == 0) {
        snprintf(error, error_size, "host '%s' has no IPv4 or IPv6 address", host);
        return false;
    }
    return true;
}
