/*
 * metrics.h - what `stats = ADDR` reports, counted per worker.
 *
 * Owns one worker's counters: connections by route and outcome, bytes by
 * route, connects that failed or succeeded and connections open by
 * upstream server, the preread-time histogram
 * and pipe-pool gauges. Only the owning worker writes (relaxed atomic
 * stores, no locks, no shared cache lines); the stats thread reads.
 *
 * Routes and servers are keyed by name, not by their index in a snapshot,
 * so counters keep growing across reloads as Prometheus expects. Names are
 * interned into fixed arrays that only ever grow: an entry is written
 * whole, then published by a release store of the count, and never moves
 * or goes away while the worker lives, so a connection can keep a pointer
 * to its route's entry and a reader can walk the first `count` entries.
 * Past METRICS_NAMES_MAX names, counts go to one "other" entry: they are
 * only reported, nothing is decided by them (the open connections that
 * least_connections and max_conns count are io/upstream_load.h's).
 */
#ifndef SNISPLICE_IO_METRICS_H
#define SNISPLICE_IO_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/address.h"
#include "connection.h"

#define METRICS_NAMES_MAX 4096   /* beyond this, counts go to the "other" entry */
#define METRICS_NAME_SIZE (2 * ADDRESS_TEXT_MAX) /* as ACCESS_LOG_ROUTE_SIZE: log and metrics name a route alike */
#define METRICS_PREREAD_BUCKETS 9 /* the last one is +Inf */

/* Upper bounds of the preread histogram buckets, in milliseconds. */
extern const uint32_t metrics_preread_bucket_ms[METRICS_PREREAD_BUCKETS - 1];

struct metrics_route {
    char name[METRICS_NAME_SIZE];       /* upstream name; "-" before routing */
    _Atomic uint64_t outcomes[OUTCOME_COUNT];
    _Atomic uint64_t bytes_to_upstream;
    _Atomic uint64_t bytes_to_client;
};

struct metrics_server {
    char upstream[METRICS_NAME_SIZE];
    char server[ADDRESS_TEXT_MAX];
    _Atomic uint64_t connect_failures;
    _Atomic uint64_t connections; /* connects that succeeded */
    _Atomic uint64_t closed;      /* of those, closed since: open = connections - closed */
};

/* Name -> entry, open addressing; used only by the owning worker. */
struct metrics_index {
    uint32_t *slots; /* entry number + 1; 0 = empty */
    uint32_t mask;
};

struct metrics {
    struct metrics_route *routes;       /* [METRICS_NAMES_MAX + 1]; the last is "other" */
    _Atomic uint32_t route_count;
    struct metrics_index route_index;
    struct metrics_server *servers;     /* [METRICS_NAMES_MAX + 1] */
    _Atomic uint32_t server_count;
    struct metrics_index server_index;
    _Atomic uint64_t preread_buckets[METRICS_PREREAD_BUCKETS]; /* not cumulative */
    _Atomic uint64_t preread_ms_sum;
    _Atomic uint64_t pipes_in_use;
    _Atomic uint64_t pipes_idle;
    _Atomic uint64_t hello_buffers_in_use;
    _Atomic uint64_t hello_buffers_idle;
};

bool metrics_init(struct metrics *metrics);
void metrics_destroy(struct metrics *metrics);

/* The entry for a route name (interned on first use). Never NULL after a
 * successful init: when the table is full it is the "other" entry. */
struct metrics_route *metrics_route(struct metrics *metrics, const char *name);
struct metrics_route *metrics_unrouted(struct metrics *metrics);

/* The entry for a server of an upstream (interned on first use); the
 * "other" entry when the table is full. Never NULL after init. */
struct metrics_server *metrics_server(struct metrics *metrics, const char *upstream, const char *server);
void metrics_count_connect_failure(struct metrics *metrics, const char *upstream, const char *server);
void metrics_observe_preread(struct metrics *metrics, uint64_t milliseconds);

static inline void metrics_add(_Atomic uint64_t *counter, uint64_t amount)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + amount,
                          memory_order_relaxed);
}

/* ---- reading (the stats thread) ---- */

struct worker;

/* Prometheus text exposition of every worker's metrics, summed by name,
 * into a malloc'd NUL-terminated string; NULL when out of memory. */
char *metrics_render(const struct worker *workers, unsigned worker_count, uint64_t reloads_ok,
                     uint64_t reloads_failed);

/* Label value escaping of the exposition format: \ " and newline; a byte
 * that is not part of a UTF-8 character becomes '?'. */
void metrics_escape_label(const char *in, char *out, size_t out_size);

#endif
