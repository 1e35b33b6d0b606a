/*
 * proxy_protocol.c - PROXY protocol v1/v2 headers (see proxy_protocol.h).
 *
 * The reader is strict where the specification is: v1 is one line of at
 * most 107 bytes ending in CRLF, single spaces, decimal ports without
 * leading zeros; v2 has the 12-byte signature, version 2, a known command
 * and an address block at least as long as its family needs (TLVs after it
 * are skipped, not interpreted).
 */
#include "proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v2_signature[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                          0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
static const char v1_prefix[] = "PROXY ";

#define V2_HEADER_LENGTH 16
#define V2_COMMAND_LOCAL 0x20
#define V2_COMMAND_PROXY 0x21
#define V2_FAMILY_UNSPEC 0x00
#define V2_FAMILY_TCP4 0x11
#define V2_FAMILY_TCP6 0x21
#define V2_ADDRESSES_TCP4 12
#define V2_ADDRESSES_TCP6 36

/* ---- writing ---- */

static bool same_inet_family(const struct sockaddr *source, const struct sockaddr *destination)
{
    return source->sa_family == destination->sa_family &&
           (source->sa_family == AF_INET || source->sa_family == AF_INET6);
}

static size_t encode_v1(const struct sockaddr *source, const struct sockaddr *destination,
                        uint8_t *out, size_t out_size)
{
    int written;
    if (!same_inet_family(source, destination)) {
        written = snprintf((char *)out, out_size, "PROXY UNKNOWN\r\n");
    } else if (source->sa_family == AF_INET) {
        const struct sockaddr_in *from = (const struct sockaddr_in *)source;
        const struct sockaddr_in *to = (const struct sockaddr_in *)destination;
        char from_text[INET_ADDRSTRLEN], to_text[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &from->sin_addr, from_text, sizeof from_text);
        inet_ntop(AF_INET, &to->sin_addr, to_text, sizeof to_text);
        written = snprintf((char *)out, out_size, "PROXY TCP4 %s %s %u %u\r\n", from_text, to_text,
                           ntohs(from->sin_port), ntohs(to->sin_port));
    } else {
        const struct sockaddr_in6 *from = (const struct sockaddr_in6 *)source;
        const struct sockaddr_in6 *to = (const struct sockaddr_in6 *)destination;
        char from_text[INET6_ADDRSTRLEN], to_text[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &from->sin6_addr, from_text, sizeof from_text);
        inet_ntop(AF_INET6, &to->sin6_addr, to_text, sizeof to_text);
        written = snprintf((char *)out, out_size, "PROXY TCP6 %s %s %u %u\r\n", from_text, to_text,
                           ntohs(from->sin6_port), ntohs(to->sin6_port));
    }
    if (written < 0 || (size_t)written >= out_size)
        return 0;
    return (size_t)written;
}

static size_t encode_v2(const struct sockaddr *source, const struct sockaddr *destination,
                        uint8_t *out, size_t out_size)
{
    bool inet = same_inet_family(source, destination);
    size_t addresses = !inet ? 0 : source->sa_family == AF_INET ? V2_ADDRESSES_TCP4 : V2_ADDRESSES_TCP6;
    if (out_size < V2_HEADER_LENGTH + addresses)
        return 0;
    memcpy(out, v2_signature, sizeof v2_signature);
    out[12] = V2_COMMAND_PROXY;
    out[13] = !inet ? V2_FAMILY_UNSPEC : source->sa_family == AF_INET ? V2_FAMILY_TCP4 : V2_FAMILY_TCP6;
    out[14] = (uint8_t)(addresses >> 8);
    out[15] = (uint8_t)addresses;
    uint8_t *at = out + V2_HEADER_LENGTH;
    if (addresses == V2_ADDRESSES_TCP4) {
        const struct sockaddr_in *from = (const struct sockaddr_in *)source;
        const struct sockaddr_in *to = (const struct sockaddr_in *)destination;
        memcpy(at, &from->sin_addr, 4);
        memcpy(at + 4, &to->sin_addr, 4);
        memcpy(at + 8, &from->sin_port, 2); /* both already in network order */
        memcpy(at + 10, &to->sin_port, 2);
    } else if (addresses == V2_ADDRESSES_TCP6) {
        const struct sockaddr_in6 *from = (const struct sockaddr_in6 *)source;
        const struct sockaddr_in6 *to = (const struct sockaddr_in6 *)destination;
        memcpy(at, &from->sin6_addr, 16);
        memcpy(at + 16, &to->sin6_addr, 16);
        memcpy(at + 32, &from->sin6_port, 2);
        memcpy(at + 34, &to->sin6_port, 2);
    }
    return V2_HEADER_LENGTH + addresses;
}

size_t proxy_protocol_encode(enum proxy_protocol_version version, const struct sockaddr *source,
                             const struct sockaddr *destination, uint8_t *out, size_t out_size)
{
    if (version == PROXY_PROTOCOL_V1)
        return encode_v1(source, destination, out, out_size);
    if (version == PROXY_PROTOCOL_V2)
        return encode_v2(source, destination, out, out_size);
    return 0;
}

/* ---- reading v1 ---- */

/* One space-separated field of a v1 line: [*at, end) up to the next space. */
static bool next_field(const char **at, const char *end, char *out, size_t out_size)
{
    const char *start = *at;
    const char *space = memchr(start, ' ', (size_t)(end - start));
    const char *stop = space ? space : end;
    size_t length = (size_t)(stop - start);
    if (length == 0 || length >= out_size)
        return false;
    memcpy(out, start, length);
    out[length] = '\0';
    *at = space ? space + 1 : end;
    return true;
}

static bool parse_port(const char *text, uint16_t *port)
{
    size_t length = strlen(text);
    if (length == 0 || length > 5 || (text[0] == '0' && length > 1))
        return false;
    unsigned value = 0;
    for (size_t i = 0; i < length; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        value = value * 10 + (unsigned)(text[i] - '0');
    }
    if (value > 65535)
        return false;
    *port = (uint16_t)value;
    return true;
}

static bool parse_v1_address(int family, const char *text, uint16_t port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (family == AF_INET) {
        struct sockaddr_in *address = (struct sockaddr_in *)out;
        address->sin_family = AF_INET;
        address->sin_port = htons(port);
        return inet_pton(AF_INET, text, &address->sin_addr) == 1;
    }
    struct sockaddr_in6 *address = (struct sockaddr_in6 *)out;
    address->sin6_family = AF_INET6;
    address->sin6_port = htons(port);
    return inet_pton(AF_INET6, text, &address->sin6_addr) == 1;
}

static enum proxy_protocol_status parse_v1(const uint8_t *data, size_t length,
                                           struct proxy_protocol_header *header)
{
    size_t window = length < PROXY_PROTOCOL_V1_MAX ? length : PROXY_PROTOCOL_V1_MAX;
    const uint8_t *newline = memchr(data, '\n', window);
    if (!newline)
        return length < PROXY_PROTOCOL_V1_MAX ? PROXY_PROTOCOL_NEED_MORE : PROXY_PROTOCOL_INVALID;
    size_t line_length = (size_t)(newline - data) + 1;
    if (line_length < sizeof v1_prefix + 1 || newline[-1] != '\r')
        return PROXY_PROTOCOL_INVALID;
    const char *at = (const char *)data + sizeof v1_prefix - 1;
    const char *end = (const char *)newline - 1; /* the CR */
    for (const char *c = at; c < end; c++)
        if (*c < 0x20 || *c > 0x7e)
            return PROXY_PROTOCOL_INVALID;
    header->length = line_length;
    header->has_addresses = false;
    char protocol[8];
    if (!next_field(&at, end, protocol, sizeof protocol))
        return PROXY_PROTOCOL_INVALID;
    if (strcmp(protocol, "UNKNOWN") == 0)
        return PROXY_PROTOCOL_FOUND; /* the rest of the line is to be ignored */
    int family = strcmp(protocol, "TCP4") == 0 ? AF_INET : strcmp(protocol, "TCP6") == 0 ? AF_INET6 : 0;
    char source[INET6_ADDRSTRLEN], destination[INET6_ADDRSTRLEN], source_port[8], destination_port[8];
    uint16_t from_port, to_port;
    if (family == 0 || !next_field(&at, end, source, sizeof source) ||
        !next_field(&at, end, destination, sizeof destination) ||
        !next_field(&at, end, source_port, sizeof source_port) ||
        !next_field(&at, end, destination_port, sizeof destination_port) || at != end ||
        end[-1] == ' ' || !parse_port(source_port, &from_port) ||
        !parse_port(destination_port, &to_port) ||
        !parse_v1_address(family, source, from_port, &header->source) ||
        !parse_v1_address(family, destination, to_port, &header->destination))
        return PROXY_PROTOCOL_INVALID;
    header->has_addresses = true;
    return PROXY_PROTOCOL_FOUND;
}

/* ---- reading v2 ---- */

static enum proxy_protocol_status parse_v2(const uint8_t *data, size_t length,
                                           struct proxy_protocol_header *header)
{
    if (length < V2_HEADER_LENGTH)
        return PROXY_PROTOCOL_NEED_MORE;
    uint8_t command = data[12], family = data[13];
    size_t block = ((size_t)data[14] << 8) | data[15];
    if ((command & 0xF0) != 0x20 || (command != V2_COMMAND_LOCAL && command != V2_COMMAND_PROXY))
        return PROXY_PROTOCOL_INVALID;
    if (length < V2_HEADER_LENGTH + block)
        return PROXY_PROTOCOL_NEED_MORE;
    header->length = V2_HEADER_LENGTH + block;
    header->has_addresses = false;
    if (command == V2_COMMAND_LOCAL)
        return PROXY_PROTOCOL_FOUND;
    const uint8_t *at = data + V2_HEADER_LENGTH;
    memset(&header->source, 0, sizeof header->source);
    memset(&header->destination, 0, sizeof header->destination);
    if (family == V2_FAMILY_TCP4) {
        if (block < V2_ADDRESSES_TCP4)
            return PROXY_PROTOCOL_INVALID;
        struct sockaddr_in *from = (struct sockaddr_in *)&header->source;
        struct sockaddr_in *to = (struct sockaddr_in *)&header->destination;
        from->sin_family = to->sin_family = AF_INET;
        memcpy(&from->sin_addr, at, 4);
        memcpy(&to->sin_addr, at + 4, 4);
        memcpy(&from->sin_port, at + 8, 2);
        memcpy(&to->sin_port, at + 10, 2);
        header->has_addresses = true;
    } else if (family == V2_FAMILY_TCP6) {
        if (block < V2_ADDRESSES_TCP6)
            return PROXY_PROTOCOL_INVALID;
        struct sockaddr_in6 *from = (struct sockaddr_in6 *)&header->source;
        struct sockaddr_in6 *to = (struct sockaddr_in6 *)&header->destination;
        from->sin6_family = to->sin6_family = AF_INET6;
        memcpy(&from->sin6_addr, at, 16);
        memcpy(&to->sin6_addr, at + 16, 16);
        memcpy(&from->sin6_port, at + 32, 2);
        memcpy(&to->sin6_port, at + 34, 2);
        header->has_addresses = true;
    } else if ((family >> 4) > 3 || (family & 0x0F) > 2) {
        return PROXY_PROTOCOL_INVALID; /* no such family or transport */
    }
    /* UNSPEC, UDP and unix sockets: the header is valid, its addresses are
     * not ones a TCP upstream could use; keep the peer's. */
    return PROXY_PROTOCOL_FOUND;
}

enum proxy_protocol_status proxy_protocol_parse(const uint8_t *data, size_t length,
                                                struct proxy_protocol_header *header)
{
    if (length == 0)
        return PROXY_PROTOCOL_NEED_MORE;
    const uint8_t *signature = data[0] == v2_signature[0] ? v2_signature : (const uint8_t *)v1_prefix;
    size_t signature_length = signature == v2_signature ? sizeof v2_signature : sizeof v1_prefix - 1;
    size_t compared = length < signature_length ? length : signature_length;
    if (memcmp(data, signature, compared) != 0)
        return PROXY_PROTOCOL_INVALID;
    if (length < signature_length)
        return PROXY_PROTOCOL_NEED_MORE;
    return signature == v2_signature ? parse_v2(data, length, header) : parse_v1(data, length, header);
}
