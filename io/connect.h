/*
 * connect.h - choose the upstream for a connection and connect to one of
 * its servers, trying the next on refusal or timeout (backups last).
 * Owns the snapshot pin and the connect deadline while connecting.
 */
#ifndef SNISPLICE_IO_CONNECT_H
#define SNISPLICE_IO_CONNECT_H

#include <stddef.h>

#include "worker.h"

/* name: normalised server name, or "" (len 0) for no SNI / not TLS. */
void connect_route(struct worker *worker, struct connection *connection,
                   const char *name, size_t len);
void connect_on_complete(struct worker *worker, struct connection *connection, int result);
void connect_on_timeout(struct worker *worker, struct connection *connection);

#endif
