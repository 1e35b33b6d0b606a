/*
 * upstream.h - upstream groups and the order in which their servers are tried.
 *
 * An upstream is a named list of servers, primaries first then backups.
 * A connection's retries are picked by the worker among the servers it has
 * not tried (io/upstream_health.c), as nginx picks them; without that (a
 * connection on an older snapshot) and for client_address, the order of a
 * connection's attempts is a pure function of (upstream,
 * first primary, first backup, attempt number), or for client_address of
 * (upstream, the client's place on its ring, attempt number: see
 * core/upstream_hash.h), so no state is shared between workers. The first primary is chosen by a worker as the
 * upstream's `balance` says, among the primaries it sees available
 * (io/upstream_health.c): by smooth weighted round robin, by the fewest
 * open connections, or by the client's address (core/upstream_hash.c);
 * or, without health (a connection on an older
 * snapshot), from a precomputed schedule of the same algorithm (nginx's:
 * the heaviest server is not picked twice in a row when others have weight
 * left) indexed by a per-worker cursor. The first backup is chosen the
 * same way among the backups, only once a connection has run out of
 * primaries; without health, the backups keep config order.
 * Also the TCP congestion control algorithm and the keepalive a socket to
 * each server is given.
 */
#ifndef SNISPLICE_CORE_UPSTREAM_H
#define SNISPLICE_CORE_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "address.h"
#include "congestion.h"
#include "tcp_keepalive.h"

#define UPSTREAM_WEIGHT_MAX 1000
#define UPSTREAM_MAX_CONNS_MAX 1000000
#define UPSTREAM_SERVERS_MAX 256

struct upstream_server {
    struct address address;
    bool backup;
    bool down;                /* kept in the config, never used */
    uint16_t weight;          /* share of new connections among its kind (primaries or backups) */
    uint16_t max_fails;       /* failures within fail_timeout that take it out; 0: never */
    uint32_t fail_timeout_ms; /* that window, and how long it then stays out */
    uint32_t max_conns;       /* connections one worker may have open to it; 0: no limit */
};

/* nginx's defaults: weight=1 max_fails=1 fail_timeout=10s. */
#define UPSTREAM_SERVER_DEFAULTS \
    { .weight = 1, .max_fails = 1, .fail_timeout_ms = 10000 }

/* How a connection's first server is chosen among the primaries this
 * worker sees available, and, once every primary failed, among the
 * backups (by round robin, or by least connections for
 * UPSTREAM_BALANCE_LEAST_CONNECTIONS, as nginx's least_conn does). */
enum upstream_balance {
    UPSTREAM_BALANCE_ROUND_ROBIN,       /* smooth weighted round robin: nginx's default */
    UPSTREAM_BALANCE_LEAST_CONNECTIONS, /* fewest open connections per unit of weight,
                                         * counted by each worker: nginx's least_conn */
    UPSTREAM_BALANCE_CLIENT_ADDRESS,    /* one client address keeps one server, by
                                         * consistent hashing (core/upstream_hash.c):
                                         * nginx's hash $remote_addr consistent */
};

struct upstream_hash_point;

struct upstream {
    char *name;                      /* config name, or the literal address text */
    struct upstream_server *servers; /* primaries first, then backups */
    uint32_t server_count;
    uint32_t primary_count;
    uint16_t *schedule;              /* primary indexes, weighted; built by upstream_schedule_build */
    uint32_t schedule_length;
    uint32_t health_index;           /* its first server's slot in a worker's health table */
    uint8_t balance;                 /* enum upstream_balance */
    struct upstream_hash_point *hash_points; /* UPSTREAM_BALANCE_CLIENT_ADDRESS: the ring */
    uint32_t hash_point_count;
    uint8_t proxy_protocol;          /* enum proxy_protocol_version sent before the client's bytes */
    struct congestion congestion;    /* on every TCP server socket (core/congestion.h) */
    struct tcp_keepalive keepalive;  /* on every TCP server socket */
};

/*
 * The server to try on attempt `attempt` (0-based) of a connection whose
 * first choices are the primary with index `first_primary` and the backup
 * with index `first_backup`: that primary, then the other primaries in
 * config order (wrapping), then that backup, then the other backups in
 * config order (wrapping); `down` servers are skipped. A first_backup that
 * is no backup's index (one not chosen yet) means the first backup in
 * config order. NULL once all servers were tried.
 */
const struct upstream_server *upstream_server_from(const struct upstream *upstream, uint32_t first_primary,
                                                   uint32_t first_backup, uint32_t attempt);

/* Which servers a round-robin step may pick (down ones never). */
typedef bool (*upstream_eligible_fn)(const struct upstream_server *server, void *context);

/* One step of nginx's smooth weighted round robin over the servers with
 * index in [begin, end) (the primaries [0, primary_count) or the backups
 * [primary_count, server_count)) that are not down and that eligible
 * accepts (NULL: all), each one's running weight in current[i] (i its
 * index in upstream->servers). Returns the chosen server's index, or -1
 * when none may be picked. */
int32_t upstream_round_robin_step(const struct upstream *upstream, uint32_t begin, uint32_t end,
                                  int64_t *current, upstream_eligible_fn eligible, void *context);

/* nginx's least_conn over the same servers: among those that are not
 * down and that eligible accepts, the ones with the fewest open
 * connections per unit of weight (connections[i], i as above) take one
 * round-robin step among themselves, so ties are shared by weight.
 * Returns the chosen index, or -1 when none may be picked. */
int32_t upstream_least_connections_step(const struct upstream *upstream, uint32_t begin, uint32_t end,
                                        const uint32_t *connections, int64_t *current,
                                        upstream_eligible_fn eligible, void *context);

/* The first choice of the connection whose round-robin cursor is `start`:
 * schedule[start % schedule_length] (0 if the upstream has no primary). */
uint32_t upstream_scheduled_primary(const struct upstream *upstream, uint32_t start);

/* upstream_server_from(upstream, upstream_scheduled_primary(start), the first
 * backup in config order, attempt) */
const struct upstream_server *upstream_server_for_attempt(const struct upstream *upstream,
                                                          uint32_t start, uint32_t attempt);

/* Append a copy of server; backups are kept after primaries. False on
 * ENOMEM or past UPSTREAM_SERVERS_MAX. */
bool upstream_add_server(struct upstream *upstream, const struct upstream_server *server);

/* After the last server is added: compute the weighted schedule. False on ENOMEM. */
bool upstream_schedule_build(struct upstream *upstream);

/* Free what the upstream owns (not the struct itself). */
void upstream_release(struct upstream *upstream);

#endif
