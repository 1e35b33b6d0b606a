/*
 * keepalive.h - TCP keepalive on one of a connection's sockets (see
 * core/tcp_keepalive.h): the client's, as its listener says, and the
 * upstream's, as its upstream says.
 */
#ifndef SNISPLICE_IO_KEEPALIVE_H
#define SNISPLICE_IO_KEEPALIVE_H

#include "../core/tcp_keepalive.h"
#include "worker.h"

/* Queue SO_KEEPALIVE and the timers keepalive sets on fd, in the worker's
 * next submission; nothing at all when it is off. keepalive must stay
 * valid until then: the snapshot the connection pins holds it. */
void keepalive_queue(struct worker *worker, int fd, const struct tcp_keepalive *keepalive);

#endif
