/*
 * socket_address.c - see socket_address.h.
 */
#include "socket_address.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>

struct sockaddr_storage socket_address_of(const char *text)
{
    struct sockaddr_storage storage;
    memset(&storage, 0, sizeof storage);
    struct sockaddr_in *in = (struct sockaddr_in *)&storage;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&storage;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1)
        in->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1)
        in6->sin6_family = AF_INET6;
    else
        cr_assert_fail("test address '%s'", text);
    return storage;
}
