/*
 * snapshot.h - everything a worker reads to route a new connection.
 *
 * A snapshot is built whole from a config, published once (publisher.h) and
 * never modified afterwards. A reload builds a new one; connections that
 * still need the old one pin it (snapshot_pin) until they are done with it.
 */
#ifndef SNISPLICE_CORE_SNAPSHOT_H
#define SNISPLICE_CORE_SNAPSHOT_H

#include <stdatomic.h>
#include <stdint.h>

#include "access_rules.h"
#include "address.h"
#include "route_table.h"
#include "tcp_keepalive.h"
#include "upstream.h"
#include "upstream_source.h"

/* preread_max may be set from the floor up to the ceiling (workers size
 * buffers for the ceiling). */
#define PREREAD_MAX_FLOOR 1024
#define PREREAD_MAX_CEILING (64 * 1024)

struct snapshot_settings {
    uint32_t preread_timeout_ms;
    uint32_t preread_max;       /* bytes buffered at most for the ClientHello */
    uint32_t connect_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t drain_timeout_ms;
    uint32_t max_connections;   /* whole process; each worker gets its share */
    uint32_t max_connections_per_client; /* listeners' default; 0: no limit */
};

/* One per worker, alone on its cache line: written only by that worker. */
struct snapshot_pins {
    _Atomic uint32_t count;
    char padding[64 - sizeof(uint32_t)];
};

/* What a listener does with a connection: SNI routing through a route
 * table, or plain forwarding to one upstream (no preread at all). */
struct snapshot_listener {
    char *name;                       /* "" for the unnamed [listen] */
    const struct route_table *routes; /* NULL when forwarding plainly */
    int32_t upstream;                 /* the plain forwarding target, else ROUTE_NO_MATCH */
    /* Clients from these ranges must start with a PROXY protocol header. */
    struct address_range *proxy_protocol_from;
    uint32_t proxy_protocol_from_count;
    /* allow/deny in file order; none: every client is served. */
    struct access_rule *access_rules;
    uint32_t access_rule_count;
    /* Connections one client address may have open at once on listeners
     * with a limit (counted together, core/client_counts.h); 0: no limit. */
    uint32_t max_connections_per_client;
    /* On each accepted client socket; read when the options are submitted,
     * so it lives here, pinned with the connection's snapshot. */
    struct tcp_keepalive keepalive;
    /* Set on its listening sockets, which accepted sockets inherit (no
     * system call per connection): core/congestion.h. */
    struct congestion congestion;
    /* The system's default algorithm when this configuration was loaded
     * (read once, in the main thread), or "": what a kept socket gets
     * back where `congestion` names no algorithm for its address. */
    char congestion_system[CONGESTION_NAME_MAX];
    /* Its own timeouts where the [listen] section sets them, else
     * [global]'s (nginx's preread_timeout, proxy_connect_timeout and
     * proxy_timeout per server block). */
    uint32_t preread_timeout_ms;
    uint32_t connect_timeout_ms;
    uint32_t idle_timeout_ms;
    /* Where its connections' upstream sockets connect from: its own
     * `source` where the [listen] section sets one, else [global]'s. */
    struct upstream_source source;
};

/* A listening address and the listener that serves it. */
struct snapshot_address {
    struct address address;
    uint32_t listener; /* index into listeners */
};

struct snapshot {
    struct route_table **route_tables; /* owned; targets are indexes into upstreams */
    uint32_t route_table_count;
    struct snapshot_listener *listeners; /* in config order: a worker's listener i uses [i] */
    uint32_t listener_count;
    struct snapshot_address *addresses; /* workers open and close sockets to match */
    uint32_t address_count;
    struct upstream *upstreams;
    uint32_t upstream_count;
    uint32_t health_slots;        /* servers of all upstreams (upstream.health_index) */
    struct snapshot_settings settings;
    /* Set by the publisher. */
    uint64_t epoch;
    struct snapshot_pins *pins;   /* [worker_count] */
};

struct snapshot *snapshot_new(void);
void snapshot_free(struct snapshot *snapshot);

/* Worker `worker` keeps using this snapshot past its next quiescent point. */
static inline void snapshot_pin(struct snapshot *snapshot, unsigned worker)
{
    struct snapshot_pins *pins = &snapshot->pins[worker];
    atomic_store_explicit(&pins->count,
                          atomic_load_explicit(&pins->count, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline void snapshot_unpin(struct snapshot *snapshot, unsigned worker)
{
    struct snapshot_pins *pins = &snapshot->pins[worker];
    atomic_store_explicit(&pins->count,
                          atomic_load_explicit(&pins->count, memory_order_relaxed) - 1,
                          memory_order_release);
}

#endif
