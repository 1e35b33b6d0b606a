/*
 * listener.h - listening sockets and multishot accept.
 *
 * Each worker owns one SO_REUSEPORT socket per configured address, so the
 * kernel spreads new connections across workers with no shared accept
 * queue. Accept errors caused by fd or memory exhaustion pause accepting
 * briefly instead of spinning; at max_connections new sockets are closed at
 * once.
 */
#ifndef SNISPLICE_IO_LISTENER_H
#define SNISPLICE_IO_LISTENER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/address.h"
#include "worker.h"

#define LISTENER_BACKLOG 4096
#define LISTENER_PAUSE_MS 100

/* Main thread, before workers start: a bound, listening, non-blocking
 * socket. -1 with a message in error on failure. */
int listener_open(const struct address *address, char *error, size_t error_size);

void listener_arm_accept(struct worker *worker, struct listener *listener);
void listener_on_accept(struct worker *worker, struct listener *listener, int result,
                        uint32_t flags);
/* Re-arm listeners after an accept pause, if it is over. */
void listener_resume(struct worker *worker);
/* Stop accepting for good (drain): cancel accepts, close the sockets. */
void listener_close_all(struct worker *worker);

#endif
