/*
 * upstream_hash.h - consistent hashing of client addresses onto an
 * upstream's primaries: the pure part of `balance = client_address`
 * (nginx's `hash $remote_addr consistent`).
 *
 * Each primary that is not down owns points on a ring of 32-bit hashes, in
 * proportion to its weight; a client goes to the owner of the first point
 * at or after its own hash. A point's hash depends only on its server's
 * address and the point's number, so one client keeps one server across
 * restarts, reloads, workers and reordered `server =` lines, and a server
 * that rests or is removed hands only its own clients on, each of its
 * points to whichever server follows it: spread over the others.
 */
#ifndef SNISPLICE_CORE_UPSTREAM_HASH_H
#define SNISPLICE_CORE_UPSTREAM_HASH_H

#include <stdbool.h>
#include <stdint.h>

#include "client_counts.h"
#include "upstream.h"

/* nginx's points per unit of weight: enough that a server's share of
 * clients lands within a few percent of its weight's. */
#define UPSTREAM_HASH_POINTS_PER_WEIGHT 160
/* Above this many points, points are shared out in proportion to weight
 * instead of 160 per unit, so the ring never outgrows
 * UPSTREAM_HASH_POINTS_MAX points (8 bytes each: about 514 KiB) however
 * the 256 servers of weight up to 1000 are configured. */
#define UPSTREAM_HASH_POINTS_BUDGET (1u << 16)
/* Each eligible primary keeps at least one point, so rounding down can add
 * at most one point per server to the budget. */
#define UPSTREAM_HASH_POINTS_MAX (UPSTREAM_HASH_POINTS_BUDGET + UPSTREAM_SERVERS_MAX)

struct upstream_hash_point {
    uint32_t hash;   /* position on the ring */
    uint16_t server; /* index into upstream->servers */
};

/* Build upstream->hash_points, sorted by hash, for its primaries that are
 * not down, replacing any earlier ring. A primary of weight w (0 counts as
 * 1) gets 160 * w points while the total stays within
 * UPSTREAM_HASH_POINTS_BUDGET, else max(1, w * budget / total weight).
 * No eligible primary: an empty ring, true. False on ENOMEM, leaving no
 * ring. */
bool upstream_hash_build(struct upstream *upstream);

/* A client's position on the ring. The same for every process and
 * machine, so it takes no seed: clients may choose addresses that land on
 * one server, as with nginx's hash. */
uint32_t upstream_hash_client(const struct client_address *client);

/* A client's attempt order among the primaries: the index of the n-th
 * distinct server (0: the first) met walking the ring from key, the first
 * point at or after it (wrapping). -1 once n reaches the number of servers
 * on the ring, or with no ring. A client whose server rests or refuses
 * goes to the next server along the ring from its own place, so one
 * server's clients are spread over the others, and every worker sends a
 * client to the same server. */
int32_t upstream_hash_nth(const struct upstream *upstream, uint32_t key, uint32_t n);

#endif
