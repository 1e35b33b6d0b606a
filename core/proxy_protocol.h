/*
 * proxy_protocol.h - the PROXY protocol header (haproxy.org's
 * proxy-protocol.txt), versions 1 (text) and 2 (binary): writing one for an
 * upstream, and reading one a trusted load balancer put in front of a
 * client's bytes. Pure functions on byte buffers: no I/O, no allocation;
 * the reader never looks past the length it is given.
 */
#ifndef SNISPLICE_CORE_PROXY_PROTOCOL_H
#define SNISPLICE_CORE_PROXY_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum proxy_protocol_version {
    PROXY_PROTOCOL_OFF = 0,
    PROXY_PROTOCOL_V1,
    PROXY_PROTOCOL_V2,
};

/* Room for the longest header this encoder writes (v1 TCP6 is 104 bytes,
 * v2 TCP6 is 52). */
#define PROXY_PROTOCOL_ENCODED_MAX 108
/* The longest v1 line the specification allows, CRLF included. */
#define PROXY_PROTOCOL_V1_MAX 107

/*
 * Write the header saying a connection came from `source` to `destination`.
 * Both IPv4 or both IPv6 give TCP4/TCP6; anything else (a unix socket,
 * mixed families) gives v1 "UNKNOWN" / v2 UNSPEC, which tells the upstream
 * to use the connection's own addresses. Returns the length, 0 if out_size
 * is too small.
 */
size_t proxy_protocol_encode(enum proxy_protocol_version version, const struct sockaddr *source,
                             const struct sockaddr *destination, uint8_t *out, size_t out_size);

enum proxy_protocol_status {
    PROXY_PROTOCOL_NEED_MORE, /* a valid beginning: read more */
    PROXY_PROTOCOL_FOUND,     /* a whole header: see proxy_protocol_header */
    PROXY_PROTOCOL_INVALID,   /* not a PROXY header, or a malformed one */
};

struct proxy_protocol_header {
    size_t length;       /* bytes the header takes at the start of the stream */
    bool has_addresses;  /* false: LOCAL, UNKNOWN or UNSPEC: keep the peer's */
    struct sockaddr_storage source;
    struct sockaddr_storage destination;
};

enum proxy_protocol_status proxy_protocol_parse(const uint8_t *data, size_t length,
                                                struct proxy_protocol_header *header);

#endif
