/*
 * relay.h - move bytes both ways between client and upstream with splice(2)
 * through pipes borrowed from the worker's pool, honouring half-close.
 */
#ifndef SNISPLICE_IO_RELAY_H
#define SNISPLICE_IO_RELAY_H

#include "worker.h"

void relay_start(struct worker *worker, struct connection *connection);
/* A relay poll completed: tag says which direction, result is revents or -errno. */
void relay_on_ready(struct worker *worker, struct connection *connection, enum ring_tag tag,
                    int result);
/* The connection's timer fired while relaying: close it if idle too long. */
void relay_on_idle_timer(struct worker *worker, struct connection *connection);

#endif
