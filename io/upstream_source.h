/*
 * upstream_source.h - a listener's `source` applied to an upstream socket
 * (nginx's proxy_bind): bound before the connect, the port left to the
 * kernel; and whether this process may bind addresses it does not own,
 * which `source = client` needs.
 */
#ifndef SNISPLICE_IO_UPSTREAM_SOURCE_H
#define SNISPLICE_IO_UPSTREAM_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/upstream_source.h"
#include "worker.h"

/* Bind fd, a fresh socket of `family` for a server of the connection's
 * upstream, to `source` (not UPSTREAM_SOURCE_NONE): a source of the
 * other family, or a unix server, leaves fd as it is. False when the
 * bind failed (said in the log): the connection cannot be made from
 * where the config says, whichever server it tries. */
bool upstream_source_bind(struct worker *worker, struct connection *connection, int fd, int family,
                          const struct upstream_source *source);

/* Whether this process may set IP_TRANSPARENT (CAP_NET_ADMIN or
 * CAP_NET_RAW), tried on a probe socket; if not, why in problem. */
bool upstream_source_transparent_allowed(char *problem, size_t problem_size);

#endif
