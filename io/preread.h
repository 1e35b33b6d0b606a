/*
 * preread.h - wait for the client's whole ClientHello before choosing an
 * upstream, leaving it queued in the client socket. Owns the preread
 * deadline; hands the parsed server name to connect.
 */
#ifndef SNISPLICE_IO_PREREAD_H
#define SNISPLICE_IO_PREREAD_H

#include "worker.h"

void preread_start(struct worker *worker, struct connection *connection);
void preread_on_readable(struct worker *worker, struct connection *connection);

#endif
