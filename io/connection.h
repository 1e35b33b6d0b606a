/*
 * connection.h - one proxied connection: its states, what it owns, and the
 * per-worker slab it lives in.
 *
 * A connection owns its two sockets, a pin on the snapshot (while
 * connecting) and, only while bytes are in flight, up to two pipes. It never
 * owns a byte buffer past connecting: the ClientHello waits in the client
 * socket until it is sent (io/hello_forward.c holds it in a buffer from
 * routing to the send's completion). It is freed only after every io_uring
 * operation it submitted has completed: `pending_ops` has one bit per
 * operation slot, and connection_close() cancels whatever is still pending.
 */
#ifndef SNISPLICE_IO_CONNECTION_H
#define SNISPLICE_IO_CONNECTION_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/client_counts.h"
#include "../core/snapshot.h"
#include "pipe_pool.h"
#include "timer_wheel.h"
#include "upstream_health.h"

struct worker;
struct metrics_route;
struct metrics_server;
struct upstream_load_record;

enum connection_state {
    CONNECTION_FREE,
    CONNECTION_PREREAD, /* reading the ClientHello */
    CONNECTION_CONNECT, /* connecting to a server of the chosen upstream */
    CONNECTION_RELAY,   /* splicing both directions */
    CONNECTION_CLOSING, /* sockets closed, waiting for cancelled operations */
};

enum connection_outcome {
    OUTCOME_DONE,             /* both directions reached end of stream */
    OUTCOME_CLIENT_CLOSED,    /* client left before its hello was complete */
    OUTCOME_INVALID_HELLO,
    OUTCOME_HELLO_TOO_LARGE,  /* more than preread_max without a complete hello */
    OUTCOME_PREREAD_TIMEOUT,
    OUTCOME_NO_ROUTE,
    OUTCOME_CONNECT_FAILED,   /* every server of the upstream failed */
    OUTCOME_IDLE_TIMEOUT,
    OUTCOME_CLIENT_ERROR,     /* reset or error on the client socket */
    OUTCOME_UPSTREAM_ERROR,   /* reset or error on the upstream socket */
    OUTCOME_NO_RESOURCES,     /* out of fds or memory */
    OUTCOME_SHUTDOWN,         /* drain_timeout passed at shutdown */
    OUTCOME_INVALID_PROXY_HEADER, /* a trusted source sent no valid PROXY header */
    OUTCOME_DENIED,           /* refused by the listener's allow/deny rules */
    OUTCOME_CLIENT_LIMIT,     /* the client had max_connections_per_client open */
    OUTCOME_SOURCE_FAILED,    /* the listener's `source` could not be bound */
    OUTCOME_COUNT
};

/* One io_uring operation slot each; at most one operation per slot in flight. */
enum connection_op {
    CONNECTION_OP_STEP        = 1 << 0, /* preread poll, connect */
    CONNECTION_OP_TO_UPSTREAM = 1 << 1, /* relay poll, client -> upstream */
    CONNECTION_OP_TO_CLIENT   = 1 << 2, /* relay poll, upstream -> client */
    CONNECTION_OP_HELLO       = 1 << 3, /* the hello's recv into its buffer */
};

/* The operations a connect may carry linked behind it (io/connect.c): the
 * hello's send and the relay's first read of the server. */
#define CONNECTION_OPS_LINKED (CONNECTION_OP_TO_UPSTREAM | CONNECTION_OP_TO_CLIENT)

/* A PROXY protocol header from the client (see io/proxy_header.c). */
enum proxy_header_state {
    PROXY_HEADER_NONE,     /* the client is not a trusted load balancer */
    PROXY_HEADER_EXPECTED, /* trusted: its stream must start with one */
    PROXY_HEADER_QUEUED,   /* seen, still queued in the socket before the hello */
};

enum relay_state {
    RELAY_WAIT_READABLE, /* poll(source, POLLIN) armed, no pipe held */
    RELAY_WAIT_WRITABLE, /* pipe holds bytes, poll(destination, POLLOUT) armed */
    RELAY_DONE,          /* end of stream forwarded as shutdown(SHUT_WR) */
    RELAY_DEFERRED,      /* client -> upstream only: the client is expected to be
                          * quiet; its poll is armed at the worker's next wake-up
                          * (worker->deferred_first, see relay.c) */
    RELAY_SENDING_HELLO, /* client -> upstream only: the hello's send from its
                          * buffer is in flight (hello_forward.c) */
    RELAY_WAIT_END,      /* client -> upstream only: a one-byte non-blocking
                          * MSG_PEEK recv queued instead of the deferred poll;
                          * a poll follows if it finds nothing (relay.c) */
};

/* What the relay learned about its source while reading on after POLLRDHUP. */
enum relay_source_end {
    RELAY_SOURCE_OPEN,   /* nothing yet: poll again when the pipe is empty */
    RELAY_SOURCE_ENDED,  /* end of stream read: the pipe holds the last bytes */
    RELAY_SOURCE_FAILED, /* a read error: close once the pipe is written out */
};

struct relay_direction {
    struct pipe_pair pipe;  /* read_fd == -1 when no pipe is held */
    uint32_t pipe_bytes;    /* bytes in the pipe, not yet written out */
    uint8_t state;          /* enum relay_state */
    uint8_t source_end;     /* enum relay_source_end */
    bool looked_for_end;    /* its one extra read after a short read found no end */
    bool defer_next_poll;   /* the client waits for the server's answer: the next
                             * wait_readable defers its poll (set by relay_start,
                             * spent by its first use) */
    bool waits_in_epoll;    /* its destination's peer has half-closed: the destination
                             * is in the worker's epoll set and waits there for
                             * POLLOUT (worker_wait_writable, relay.c) */
    uint64_t bytes;         /* total relayed (connection_count_bytes) */
};

struct connection {
    struct timer timer;              /* the deadline of the current state */
    int client_fd;
    int upstream_fd;                 /* -1 until connecting */
    uint8_t state;                   /* enum connection_state */
    uint8_t pending_ops;             /* enum connection_op bits */
    uint16_t connect_attempt;        /* place in its fixed order of servers, up to
                                      * UPSTREAM_SERVERS_MAX (256); 0: none tried yet */
    bool connect_timed_out;
    bool connect_linked;             /* the hello's send and the first read of the
                                      * server are linked behind the connect (io/connect.c) */
    uint16_t listener;               /* index into snapshot->listeners (its own snapshot's) */
    uint32_t peeked_length;          /* hello bytes seen so far if incomplete, else 0 */
    uint8_t hello_retries;           /* wake-ups in a row that found no new hello bytes
                                      * (io/preread.c) */
    uint32_t proxy_header_length;    /* PROXY_HEADER_QUEUED: its bytes at the stream's start */
    uint8_t proxy_header;            /* enum proxy_header_state */
    bool client_counted;             /* holds one of client_address's connections */
    bool client_address_known;       /* client_address is filled in */
    struct client_address client_address; /* nginx's $remote_addr: the PROXY header's
                                      * source from a trusted balancer, else the peer's
                                      * (io/admission.c, io/proxy_header.c, io/connect.c) */
    struct upstream_load_record *held_server; /* counts it among its server's connections from
                                      * the pick to the close (least_connections, max_conns) */
    uint32_t hello_length;           /* the complete hello's queued bytes (SNI routes) */
    int32_t failed_connect_result;   /* a linked connect's failure, handled once the
                                      * operations linked behind it have completed */
    uint8_t *hello_buffer;           /* routed until the hello is sent (hello_forward.c) */
    struct snapshot *snapshot;       /* the one it was accepted under, pinned until connected */
    const struct upstream *upstream; /* valid while snapshot is pinned */
    const struct upstream_server *server; /* being connected to; valid while pinned */
    uint32_t first_primary;          /* the upstream's primary tried first... */
    uint32_t ring_key;               /* ...or, when follows_ring, the client's place on
                                      * the upstream's ring (client_address), where its
                                      * attempts start */
    bool follows_ring;
    uint16_t first_backup;           /* its backup tried first; chosen on reaching the
                                      * backups, CONNECT_BACKUP_UNCHOSEN until then
                                      * (io/connect.c) */
    uint64_t tried_servers[UPSTREAM_HEALTH_TRIED_WORDS]; /* a bit per server index: the
                                      * ones it tried, which its next attempts skip */
    uint64_t last_activity_ms;
    uint32_t idle_timeout_ms;        /* its listener's, as when it connected */
    uint32_t linked_at_wait;         /* worker->waits when its linked connect was queued */
    struct relay_direction to_upstream;
    struct relay_direction to_client;
    struct connection *deferred_previous; /* in the worker's deferred list while */
    struct connection *deferred_next;     /* to_upstream is RELAY_DEFERRED */
    uint64_t deferred_at_wait;       /* worker->waits when it was deferred */
    struct access_record *access;    /* only while an access_log is configured */
    struct metrics_route *route_metrics; /* its route's counters (worker->metrics) */
    struct metrics_server *server_metrics; /* its server's, once connected; NULL before */
    struct connection *next_free;
};

struct connection_slab_chunk;

struct connection_slab {
    struct connection_slab_chunk *chunks;
    struct connection *free_list;
};

void connection_slab_init(struct connection_slab *slab);
void connection_slab_destroy(struct connection_slab *slab);

/* A fresh connection in state PREREAD owning client_fd; NULL on ENOMEM. */
struct connection *connection_new(struct worker *worker, int client_fd);

/* Tear down: cancel pending operations, close both sockets, release buffers,
 * pipes and pins. The memory is reclaimed once no operation is pending. */
/* Give back the snapshot pinned since accept, and what pointed into it
 * (upstream, server). The caller makes sure no queued request still
 * points into it (worker_submit_queued). */
void connection_unpin_snapshot(struct worker *worker, struct connection *connection);

void connection_close(struct worker *worker, struct connection *connection,
                      enum connection_outcome outcome);

/* `bytes` of direction (connection->to_upstream or to_client) have left
 * for their destination: counted on the connection, for its access log
 * line, and at once in the worker's and its route's totals, so that
 * snisplice_bytes_total grows while a long connection runs instead of
 * jumping when it closes. */
void connection_count_bytes(struct worker *worker, struct connection *connection,
                            struct relay_direction *direction, uint64_t bytes);

/* Called for each completion of one of its operations, before any handler:
 * returns false if the connection is closing (and frees it when done). */
bool connection_op_completed(struct worker *worker, struct connection *connection,
                             enum connection_op op);

/* Close every open connection (drain deadline). */
void connection_close_all(struct worker *worker, enum connection_outcome outcome);

const char *connection_outcome_name(enum connection_outcome outcome);

#endif
