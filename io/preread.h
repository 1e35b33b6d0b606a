/*
 * preread.h - read the client's ClientHello before choosing an upstream.
 * Owns the preread buffer until the hello is complete (or refused) and the
 * preread deadline; hands the parsed server name to connect.
 */
#ifndef SNISPLICE_IO_PREREAD_H
#define SNISPLICE_IO_PREREAD_H

#include "worker.h"

void preread_start(struct worker *worker, struct connection *connection);
void preread_on_readable(struct worker *worker, struct connection *connection);

#endif
