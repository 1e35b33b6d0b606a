/*
 * upstream_health.h - passive health of upstream servers, as nginx's
 * max_fails / fail_timeout: a server that failed max_fails connects within
 * fail_timeout rests for fail_timeout. Connections that succeed in between
 * do not clear the count (nginx's do not either, until its last failure is
 * fail_timeout old): a server that refuses every other connect still
 * reaches max_fails. After its rest one connection probes
 * it (the others keep resting it for another fail_timeout): success makes
 * it available again, failure rests it again; a success of a connection
 * picked before the rest began is no probe. As in nginx, the only
 * server of an upstream never rests (there is nothing else to try), and
 * when every server of an upstream rests, all are made available again at
 * once (older nginx's "quick recovery"; 1.22 instead closes every new
 * connection until fail_timeout has passed): the connection that found
 * none is closed, the next tries them all.
 *
 * One table per worker, indexed by upstream.health_index + server index,
 * laid out afresh when the worker adopts a new snapshot; a reload keeps
 * the state of servers that failed lately or rest (by upstream name and
 * address), so that a config manager reloading every minute does not
 * send a client to a dead server after each reload. Each worker judges from its
 * own connections only (no shared writes on the connection path); with N
 * workers a dead server costs at most N * max_fails failed attempts per
 * fail_timeout instead of max_fails.
 *
 * The table also holds the worker's running weights for the smooth
 * weighted round robins that choose a connection's first primary, its
 * next ones after a failure (among those it has not tried, as nginx's
 * tried bitmap does) and, once it has run out of primaries, its backups:
 * only available servers take part, so a resting server's share goes to
 * the others of its kind by weight. For least_connections it counts the worker's open
 * connections to each server, and the round robin runs over the least
 * loaded (client_address needs nothing here: its attempts follow the
 * upstream's ring, skipping resting servers as every mode does). The same
 * counts hold nginx's max_conns: a server with that many of the worker's
 * connections open is skipped as a resting one is, but counts no failure.
 * The counts live in the worker's records by name (io/upstream_load.h),
 * one per server however many there are, so a reload neither forgets
 * open connections nor lends them to another server; the table caches
 * each of its servers' records.
 */
#ifndef SNISPLICE_IO_UPSTREAM_HEALTH_H
#define SNISPLICE_IO_UPSTREAM_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/upstream.h"
#include "upstream_load.h"

struct server_health {
    uint64_t window_start_ms;      /* the first failure counted now */
    uint64_t unavailable_until_ms; /* not tried before this */
    uint32_t fails;
    bool resting;                  /* reached max_fails, no probe succeeded since */
    bool probed;                   /* resting, and a probe went out since its last failure */
};

struct metrics;
struct metrics_server;

struct upstream_health {
    struct server_health *servers;
    int64_t *current_weights;        /* the round robins' (primaries', backups'), indexed like servers */
    struct metrics_server **entries; /* each server's metrics by name, cached at first use */
    struct upstream_load_record **loads; /* each server's open connections by name, cached too */
    uint32_t count;
};

/* Size the table for a snapshot's health_slots and forget the old state;
 * free load's records that no connection holds (the new snapshot's
 * servers get theirs again at first use). False on ENOMEM, leaving an
 * empty table (every server available). */
bool upstream_health_reset(struct upstream_health *health, struct upstream_load *load, uint32_t slots);
/* A reload: upstream_health_reset for the new snapshot's `slots`, keeping
 * what the table knew of each server that failed lately or rests, where
 * the new snapshot has a server of that address in an upstream of that
 * name (its running weights start afresh). `previous` is the snapshot the
 * table was laid out for (NULL: nothing to keep); it must stay valid
 * during the call (the worker pins it). */
bool upstream_health_adopt(struct upstream_health *health, struct upstream_load *load,
                           const struct upstream *previous, uint32_t previous_count,
                           const struct upstream *upstreams, uint32_t count, uint32_t slots);
void upstream_health_free(struct upstream_health *health);

/* A server's counters by name in the worker's metrics (io/metrics.h).
 * Cached per slot in a table laid out for upstream's snapshot; with NULL
 * (a connection on an older snapshot) looked up by name. (Past
 * METRICS_NAMES_MAX names a worker's servers share the "other" entry:
 * only a report, nothing is decided by it.) */
struct metrics_server *upstream_health_entry(struct upstream_health *health, struct metrics *metrics,
                                             const struct upstream *upstream,
                                             const struct upstream_server *server);

/* Neither resting nor at its max_conns (the worker's connections to it,
 * from load). A NULL table (a connection on an older snapshot) knows of
 * no rest and records nothing. */
bool upstream_health_available(struct upstream_health *health, struct upstream_load *load,
                               const struct upstream *upstream, const struct upstream_server *server,
                               uint64_t now_ms);
/* A connection's first choice: smooth weighted round robin (nginx's) among
 * the primaries available now, so a resting server's share is spread over
 * the others by weight; among the least loaded of them for
 * least_connections. False when there is no table or no primary is
 * available (then the caller uses the upstream's fixed schedule). */
bool upstream_health_first_primary(struct upstream_health *health, struct upstream_load *load,
                                   const struct upstream *upstream, uint64_t now_ms, uint32_t *first);
/* The same among the backups, for a connection that has run out of
 * primaries (nginx's second round robin, over its backup peers); *first
 * is a server index in [primary_count, server_count). False when there is
 * no table or no backup is available (then the caller keeps config order). */
bool upstream_health_first_backup(struct upstream_health *health, struct upstream_load *load,
                                  const struct upstream *upstream, uint64_t now_ms, uint32_t *first);
/* A bit per server index in upstream->servers: the servers a connection
 * has tried. */
#define UPSTREAM_HEALTH_TRIED_WORDS ((UPSTREAM_SERVERS_MAX + 63) / 64)
static inline bool upstream_health_was_tried(const uint64_t *tried, uint32_t index)
{
    return tried[index / 64] >> (index % 64) & 1;
}
static inline void upstream_health_note_tried(uint64_t *tried, uint32_t index)
{
    tried[index / 64] |= UINT64_C(1) << (index % 64);
}
/* The table holds this upstream's servers (it is laid out for its
 * snapshot and was not left empty by a failed reset). */
bool upstream_health_covers(const struct upstream_health *health, const struct upstream *upstream);
/* A connection's next server after a failed attempt, as nginx picks it:
 * one step of the upstream's balancing (as for the first choices above)
 * among the available servers it has not tried, the primaries while any is
 * left and `backups` is false, then the backups. False when none is left. */
bool upstream_health_next_untried(struct upstream_health *health, struct upstream_load *load,
                                  const struct upstream *upstream, uint64_t now_ms, const uint64_t *tried,
                                  bool backups, uint32_t *next);
/* The server was available and is now being tried: a resting one's probe. */
void upstream_health_picked(struct upstream_health *health, const struct upstream *upstream,
                            const struct upstream_server *server, uint64_t now_ms);
void upstream_health_failed(struct upstream_health *health, const struct upstream *upstream,
                            const struct upstream_server *server, uint64_t now_ms);
void upstream_health_succeeded(struct upstream_health *health, const struct upstream *upstream,
                               const struct upstream_server *server);
/* One more of the worker's connections to server, when its upstream
 * balances by least connections or the server has max_conns: *held then
 * names the record to give it back to (left NULL otherwise, and when out
 * of memory for the server's first record: then it goes uncounted). */
void upstream_health_hold(struct upstream_health *health, struct upstream_load *load,
                          const struct upstream *upstream, const struct upstream_server *server,
                          struct upstream_load_record **held);
/* Give back what *held holds, if anything (the connection failed to
 * connect, or ended), and clear it. */
void upstream_health_release(struct upstream_load_record **held);
/* Every server of the upstream available again (none was), unless one is
 * only at its max_conns: that pool is busy, not dead, and its resting
 * servers keep resting (nginx's do in either case). False then. */
bool upstream_health_revive(struct upstream_health *health, struct upstream_load *load,
                            const struct upstream *upstream);

#endif
