/*
 * upstream_source.c - the `source` value's text form (see
 * upstream_source.h).
 */
#include "upstream_source.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static bool parse_ipv4(const char *text, struct address *out)
{
    struct sockaddr_in *in = (struct sockaddr_in *)&out->storage;
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, text, &in->sin_addr) != 1)
        return false;
    in->sin_family = AF_INET;
    out->length = sizeof *in;
    return true;
}

/* "::1" or "[::1]"; ::ffff:a.b.c.d becomes a.b.c.d, since only IPv4
 * servers can be reached from it. */
static bool parse_ipv6(const char *text, struct address *out)
{
    char bare[INET6_ADDRSTRLEN + 1];
    size_t length = strlen(text);
    if (text[0] == '[' && length >= 2 && text[length - 1] == ']') {
        text++;
        length -= 2;
    }
    if (length >= sizeof bare)
        return false;
    memcpy(bare, text, length);
    bare[length] = '\0';
    struct in6_addr address;
    if (inet_pton(AF_INET6, bare, &address) != 1)
        return false;
    memset(out, 0, sizeof *out);
    if (IN6_IS_ADDR_V4MAPPED(&address)) {
        struct sockaddr_in *in = (struct sockaddr_in *)&out->storage;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, &address.s6_addr[12], 4);
        out->length = sizeof *in;
        return true;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->storage;
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = address;
    out->length = sizeof *in6;
    return true;
}

bool upstream_source_has_port(const char *text)
{
    const char *colon = strrchr(text, ':');
    if (!colon)
        return false;
    if (text[0] == '[')
        return colon > text && colon[-1] == ']';
    return strchr(text, ':') == colon && strchr(text, '.') != NULL;
}

bool upstream_source_parse(const char *text, struct upstream_source *out, char *error, size_t error_size)
{
    memset(out, 0, sizeof *out);
    if (strcmp(text, "none") == 0)
        return true;
    if (strcmp(text, "client") == 0) {
        out->kind = UPSTREAM_SOURCE_CLIENT;
        return true;
    }
    if (parse_ipv4(text, &out->address) || parse_ipv6(text, &out->address)) {
        out->kind = UPSTREAM_SOURCE_ADDRESS;
        return true;
    }
    if (upstream_source_has_port(text))
        snprintf(error, error_size, "'%s' has a port; write the address alone (the kernel picks the port of "
                                    "each connection)", text);
    else
        snprintf(error, error_size, "expected none, client, or an IPv4 or IPv6 address, got '%s'", text);
    return false;
}
