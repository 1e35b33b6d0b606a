/*
 * connect.h - choose the upstream for a connection and connect to one of
 * its servers, trying the next on refusal or timeout (backups last).
 * Owns the snapshot pin and the connect deadline while connecting.
 */
#ifndef SNISPLICE_IO_CONNECT_H
#define SNISPLICE_IO_CONNECT_H

#include <stddef.h>

#include "worker.h"

/* The listener the connection came through, in the snapshot it was
 * accepted under; NULL once connected (the snapshot is unpinned then). */
const struct snapshot_listener *connect_listener_of(const struct connection *connection);

/* name: normalised server name, or "" (len 0) for no SNI / not TLS;
 * name_as_sent: the same with its case as sent (for "~" routes);
 * alpn: the offered protocols in wire format (may be empty). */
void connect_route(struct worker *worker, struct connection *connection, const char *name,
                   const char *name_as_sent, size_t len, const uint8_t *alpn, size_t alpn_len);

/* A client whose first bytes are not TLS: the table's not_tls route, else
 * its default. */
void connect_route_not_tls(struct worker *worker, struct connection *connection);

/* Connect to upstream `target` of the current snapshot (plain forwarding). */
void connect_upstream(struct worker *worker, struct connection *connection, int32_t target);
void connect_on_complete(struct worker *worker, struct connection *connection, int result);
void connect_on_timeout(struct worker *worker, struct connection *connection);
/* A completion of an operation linked behind the connect (the hello's
 * send, the first read of the server) while the connection is still
 * connecting: the connect failed and the kernel cancelled it. */
void connect_on_link_cancelled(struct worker *worker, struct connection *connection);
/* After a wait's completions are handled: did every connect linked in the
 * submission before it complete inside it? If not, link none for a while. */
void connect_check_linked(struct worker *worker);

#endif
