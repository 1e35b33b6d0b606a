/*
 * admission.h - which clients a listener serves: its allow/deny rules
 * (core/access_rules.h), its max_connections_per_client
 * (core/client_counts.h) and its trusted PROXY protocol sources, judged
 * on the client's address at the two points where it is known.
 */
#ifndef SNISPLICE_IO_ADMISSION_H
#define SNISPLICE_IO_ADMISSION_H

#include <stdbool.h>

#include "../core/proxy_protocol.h"
#include "worker.h"

/* At accept, before a byte is read: a client from a trusted source must
 * start with a PROXY header (connection->proxy_header = EXPECTED) and is
 * judged later by admission_after_header; any other client is judged now.
 * False when the connection was closed (refused, or already gone). */
bool admission_at_accept(struct worker *worker, struct connection *connection,
                         const struct snapshot_listener *listener);

/* The client socket's peer address: the access log's copy from accept
 * when it has one, else getpeername(2). Every reader of the peer (this
 * file, the PROXY header to an upstream, client_address balancing) comes
 * here, so a connection reads it once when the access log is on. False
 * when the socket has no peer any more. */
bool admission_peer_address(struct connection *connection, struct sockaddr_storage *peer);

/* connection->client_address (nginx's $remote_addr) from a socket address:
 * the peer's, or the one a trusted PROXY header names. */
void admission_note_client(struct connection *connection, const struct sockaddr *client);

/* Fill connection->client_address (nginx's $remote_addr) unless admission
 * or a trusted PROXY header already did: from the socket's peer, through
 * admission_peer_address. False when it cannot be read. */
bool admission_client_address(struct connection *connection);

/* A trusted client's PROXY header was read: judge the address it names,
 * or the connection's own for a header without one (LOCAL, UNKNOWN).
 * False when the connection was closed. */
bool admission_after_header(struct worker *worker, struct connection *connection,
                            const struct snapshot_listener *listener,
                            const struct proxy_protocol_header *header);

#endif
