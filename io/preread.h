/*
 * preread.h - wait for the client's whole ClientHello before choosing an
 * upstream, leaving it queued in the client socket. Owns the preread
 * deadline; hands the parsed server name to connect.
 */
#ifndef SNISPLICE_IO_PREREAD_H
#define SNISPLICE_IO_PREREAD_H

#include "worker.h"

void preread_start(struct worker *worker, struct connection *connection);
/* Its poll on the client socket completed with `events` (revents). */
void preread_on_readable(struct worker *worker, struct connection *connection, unsigned events);
/* Its timer fired: the preread deadline, or a retry (see preread.c). */
void preread_on_timer(struct worker *worker, struct connection *connection);

#endif
