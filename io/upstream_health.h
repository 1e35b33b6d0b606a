/*
 * upstream_health.h - passive health of upstream servers, as nginx's
 * max_fails / fail_timeout: a server that failed max_fails connects within
 * fail_timeout rests for fail_timeout. After that one connection probes
 * it (the others keep resting it for another fail_timeout): success makes
 * it available again, failure rests it again. As in nginx, the only
 * server of an upstream never rests (there is nothing else to try), and
 * when every server of an upstream rests, all are made available again at
 * once ("quick recovery"): the connection that found none is closed, the
 * next tries them all.
 *
 * One table per worker, indexed by upstream.health_index + server index,
 * reset when the worker adopts a new snapshot. Each worker judges from its
 * own connections only (no shared writes on the connection path); with N
 * workers a dead server costs at most N * max_fails failed attempts per
 * fail_timeout instead of max_fails.
 *
 * The table also holds the worker's running weights for the smooth
 * weighted round robins that choose a connection's first primary and,
 * once it has run out of primaries, its first backup: only available
 * servers take part, so a resting server's share goes to the others of
 * its kind by weight. For least_connections it counts the worker's open
 * connections to each server, and the round robin runs over the least
 * loaded (client_address needs nothing here: its attempts follow the
 * upstream's ring, skipping resting servers as every mode does). The same
 * counts hold nginx's max_conns: a server with that many of the worker's
 * connections open is skipped as a resting one is, but counts no failure.
 */
#ifndef SNISPLICE_IO_UPSTREAM_HEALTH_H
#define SNISPLICE_IO_UPSTREAM_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/upstream.h"

struct server_health {
    uint64_t window_start_ms;      /* the first failure counted now */
    uint64_t unavailable_until_ms; /* not tried before this */
    uint32_t fails;
    bool resting;                  /* reached max_fails, no success since */
};

struct upstream_health {
    struct server_health *servers;
    int64_t *current_weights;      /* the round robins' (primaries', backups'), indexed like servers */
    uint32_t *connections;         /* open connections to each server (least_connections only) */
    uint32_t count;
    uint32_t generation;           /* one more at each reset: holds from before it are void */
};

/* A connection's share of a server's open connections (`connections`), so
 * that its close gives it back; generation 0: it holds none. A hold taken
 * before a reset is dropped, never given back to the new snapshot's
 * counts (nginx's new workers after a reload also start from zero). */
struct upstream_hold {
    uint32_t slot;
    uint32_t generation;
};

/* Size the table for a snapshot's health_slots and forget the old state.
 * False on ENOMEM, leaving an empty table (every server available). */
bool upstream_health_reset(struct upstream_health *health, uint32_t slots);
void upstream_health_free(struct upstream_health *health);

/* Neither resting nor at its max_conns. A NULL table (a connection on an
 * older snapshot) counts every server as available and records nothing. */
bool upstream_health_available(const struct upstream_health *health, const struct upstream *upstream,
                               const struct upstream_server *server, uint64_t now_ms);
/* A connection's first choice: smooth weighted round robin (nginx's) among
 * the primaries available now, so a resting server's share is spread over
 * the others by weight; among the least loaded of them for
 * least_connections. False when there is no table or no primary is
 * available (then the caller uses the upstream's fixed schedule). */
bool upstream_health_first_primary(struct upstream_health *health, const struct upstream *upstream,
                                   uint64_t now_ms, uint32_t *first);
/* The same among the backups, for a connection that has run out of
 * primaries (nginx's second round robin, over its backup peers); *first
 * is a server index in [primary_count, server_count). False when there is
 * no table or no backup is available (then the caller keeps config order). */
bool upstream_health_first_backup(struct upstream_health *health, const struct upstream *upstream,
                                  uint64_t now_ms, uint32_t *first);
/* The server was available and is now being tried: a resting one's probe. */
void upstream_health_picked(struct upstream_health *health, const struct upstream *upstream,
                            const struct upstream_server *server, uint64_t now_ms);
void upstream_health_failed(struct upstream_health *health, const struct upstream *upstream,
                            const struct upstream_server *server, uint64_t now_ms);
void upstream_health_succeeded(struct upstream_health *health, const struct upstream *upstream,
                               const struct upstream_server *server);
/* One more open connection to server, in hold, when its upstream balances
 * by least connections or the server has max_conns (nothing otherwise,
 * or without a table). */
void upstream_health_hold(struct upstream_health *health, const struct upstream *upstream,
                          const struct upstream_server *server, struct upstream_hold *hold);
/* Give back what hold holds, if anything: the connection failed to
 * connect or ended. */
void upstream_health_release(struct upstream_health *health, struct upstream_hold *hold);
/* Every server of the upstream available again (none was). */
void upstream_health_revive(struct upstream_health *health, const struct upstream *upstream);

#endif
