/*
 * address.c - parse and print "IPv4:port", "[IPv6]:port" and "unix:/path".
 * Numeric only: no DNS lookups here. address_split_host_name() recognises
 * "name:port" for the config loader, which resolves it (config/host_resolve.c).
 */
#include "address.h"
#include "hostname.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define FORMS "expected IPv4:port, [IPv6]:port or unix:/path"
#define LISTEN_FORMS "expected IPv4:port or [IPv6]:port"

static bool parse_port(const char *text, uint16_t *port)
{
    if (*text == '\0' || strlen(text) > 5)
        return false;
    unsigned long value = 0;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9')
            return false;
        value = value * 10 + (unsigned long)(*c - '0');
    }
    if (value == 0 || value > 65535)
        return false;
    *port = (uint16_t)value;
    return true;
}

static bool parse_unix(const char *path, struct address *out, char *error, size_t error_size)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&out->storage;
    size_t length = strlen(path);
    if (length == 0 || length >= sizeof un->sun_path) {
        snprintf(error, error_size, "unix socket path must be 1 to %zu bytes",
                 sizeof un->sun_path - 1);
        return false;
    }
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, length + 1);
    out->length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length + 1);
    return true;
}

/* IPv4:port or [IPv6]:port; forms is what a bad text is told to be. */
static bool parse_ip(const char *text, struct address *out, const char *forms, char *error, size_t error_size)
{
    char host[64];
    const char *port_text;
    bool ipv6 = text[0] == '[';
    if (ipv6) {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            goto bad;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port_text = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host)
            goto bad;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port_text = colon + 1;
    }
    uint16_t port;
    if (!parse_port(port_text, &port)) {
        snprintf(error, error_size, "bad port in '%s' (1..65535)", text);
        return false;
    }
    if (ipv6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->storage;
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            goto bad;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        out->length = sizeof *in6;
        return true;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)&out->storage;
    if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
        goto bad;
    in4->sin_family = AF_INET;
    in4->sin_port = htons(port);
    out->length = sizeof *in4;
    return true;
bad:
    snprintf(error, error_size, "bad address '%s': %s", text, forms);
    return false;
}

bool address_parse(const char *text, struct address *out, char *error, size_t error_size)
{
    memset(out, 0, sizeof *out);
    if (strncmp(text, "unix:", 5) == 0)
        return parse_unix(text + 5, out, error, error_size);
    return parse_ip(text, out, FORMS, error, error_size);
}

bool address_unmap_ipv4(const struct sockaddr *address, struct sockaddr_in *out)
{
    if (address->sa_family != AF_INET6)
        return false;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)address;
    if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
        return false;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = in6->sin6_port;
    memcpy(&out->sin_addr, &in6->sin6_addr.s6_addr[12], sizeof out->sin_addr);
    return true;
}

bool address_parse_tcp(const char *text, struct address *out, char *error, size_t error_size)
{
    memset(out, 0, sizeof *out);
    if (strncmp(text, "unix:", 5) == 0) {
        snprintf(error, error_size, "'%s': snisplice listens on TCP only, " LISTEN_FORMS, text);
        return false;
    }
    return parse_ip(text, out, LISTEN_FORMS, error, error_size);
}

bool address_parse_listen(const char *text, struct address *out, char *error, size_t error_size)
{
    if (!address_parse_tcp(text, out, error, error_size))
        return false;
    /* The kernel refuses a mapped address to an IPv6-only socket, which
     * every listener is, with a bare "Invalid argument" at start-up. */
    struct sockaddr_in ipv4;
    if (address_unmap_ipv4((const struct sockaddr *)&out->storage, &ipv4)) {
        const uint8_t *bytes = (const uint8_t *)&ipv4.sin_addr;
        snprintf(error, error_size,
                 "'%s': listeners' IPv6 sockets are IPv6-only, and the kernel refuses them an IPv4-mapped "
                 "address; write %u.%u.%u.%u:%u",
                 text, bytes[0], bytes[1], bytes[2], bytes[3], ntohs(ipv4.sin_port));
        return false;
    }
    return true;
}

bool address_split_host_name(const char *text, char *host, size_t host_size, uint16_t *port)
{
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text || host_size < HOSTNAME_MAX + 1 || !parse_port(colon + 1, port))
        return false;
    size_t length = (size_t)(colon - text);
    if (strspn(text, "0123456789.") >= length)
        return false;
    size_t normal_length;
    return hostname_normalize(text, length, host, &normal_length);
}

void address_format(const struct address *address, char *out, size_t out_size)
{
    char host[INET6_ADDRSTRLEN];
    switch (address->storage.ss_family) {
    case AF_INET: {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&address->storage;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        snprintf(out, out_size, "%s:%u", host, ntohs(in4->sin_port));
        return;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&address->storage;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(out, out_size, "[%s]:%u", host, ntohs(in6->sin6_port));
        return;
    }
    case AF_UNIX:
        snprintf(out, out_size, "unix:%s", ((const struct sockaddr_un *)&address->storage)->sun_path);
        return;
    default:
        snprintf(out, out_size, "(none)");
    }
}

uint16_t address_port(const struct address *address)
{
    const struct sockaddr *socket_address = (const struct sockaddr *)&address->storage;
    if (socket_address->sa_family == AF_INET)
        return ((const struct sockaddr_in *)socket_address)->sin_port;
    if (socket_address->sa_family == AF_INET6)
        return ((const struct sockaddr_in6 *)socket_address)->sin6_port;
    return 0;
}

int address_family(const struct address *address)
{
    return address->storage.ss_family;
}

bool address_equal(const struct address *a, const struct address *b)
{
    return a->length == b->length && memcmp(&a->storage, &b->storage, a->length) == 0;
}

bool address_is_loopback(const struct address *address)
{
    if (address->storage.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&address->storage;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (address->storage.ss_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)&address->storage)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(in6) || (IN6_IS_ADDR_V4MAPPED(in6) && in6->s6_addr[12] == 127);
    }
    return false;
}

bool address_range_parse(const char *text, struct address_range *out, char *error, size_t error_size)
{
    char work[INET6_ADDRSTRLEN + 8];
    if (strlen(text) >= sizeof work) {
        snprintf(error, error_size, "'%s' is not an address range", text);
        return false;
    }
    snprintf(work, sizeof work, "%s", text);
    char *slash = strchr(work, '/');
    if (slash)
        *slash = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, work, out->bytes) == 1) {
        out->family = AF_INET;
    } else if (inet_pton(AF_INET6, work, out->bytes) == 1) {
        out->family = AF_INET6;
    } else {
        snprintf(error, error_size, "'%s' is not an IPv4 or IPv6 address or CIDR block", text);
        return false;
    }
    unsigned bits = out->family == AF_INET ? 32 : 128;
    unsigned prefix = bits;
    if (slash) {
        char *end = NULL;
        unsigned long value = strtoul(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || value > bits) {
            snprintf(error, error_size, "'%s': prefix length must be 0..%u", text, bits);
            return false;
        }
        prefix = (unsigned)value;
    }
    out->prefix_length = (uint8_t)prefix;
    /* Clear the host bits so "10.1.2.3/8" means 10.0.0.0/8, as nginx does. */
    for (unsigned bit = prefix; bit < bits; bit++)
        out->bytes[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
    return true;
}

bool address_range_contains(const struct address_range *range, const struct sockaddr *address)
{
    const uint8_t *bytes;
    if (address->sa_family != range->family)
        return false;
    if (address->sa_family == AF_INET)
        bytes = (const uint8_t *)&((const struct sockaddr_in *)address)->sin_addr;
    else if (address->sa_family == AF_INET6)
        bytes = (const uint8_t *)&((const struct sockaddr_in6 *)address)->sin6_addr;
    else
        return false;
    unsigned whole = range->prefix_length / 8, rest = range->prefix_length % 8;
    if (memcmp(bytes, range->bytes, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (bytes[whole] & mask) == range->bytes[whole];
}
