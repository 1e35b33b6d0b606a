/*
 * proxy_header.h - the PROXY protocol at both ends of a connection:
 * expecting a header from clients a listener trusts (proxy_protocol_from),
 * and sending one to upstreams that asked for it (proxy_protocol = v1|v2).
 * The encoding and parsing are core/proxy_protocol.c's; this file owns when
 * they happen and on which socket.
 */
#ifndef SNISPLICE_IO_PROXY_HEADER_H
#define SNISPLICE_IO_PROXY_HEADER_H

#include <stddef.h>
#include <sys/socket.h>

#include "../core/proxy_protocol.h"

#include "worker.h"

/* Whether a client from `peer` has to start with a PROXY header (its
 * address is in the listener's proxy_protocol_from; io/admission.c asks). */
bool proxy_header_trusted(const struct snapshot_listener *listener, const struct sockaddr *peer);

enum proxy_header_result {
    PROXY_HEADER_READ_DONE,      /* header (if any) seen; `*skip` bytes precede the hello */
    PROXY_HEADER_READ_NEED_MORE,
    PROXY_HEADER_READ_INVALID,
};

/* In preread, on the peeked bytes: read the expected header. `header`
 * gets it when this call parsed it, else its length is 0. */
enum proxy_header_result proxy_header_read(struct connection *connection, const uint8_t *queued,
                                           size_t length, size_t *skip,
                                           struct proxy_protocol_header *header);

/* Once the upstream is connected: take the client's header out of the
 * socket, then send ours if `version` asks for one. False when the
 * connection was closed. */
bool proxy_header_forward(struct worker *worker, struct connection *connection, uint8_t version);

#endif
