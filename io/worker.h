/*
 * worker.h - the per-worker context: one thread, one io_uring, its
 * listeners, connections, pools and timers.
 *
 * Everything here is touched only by the worker's own thread, except the
 * fields marked shared: the stop and cut requests and wakeup eventfd
 * (written by the main thread) and the counters (read by the main thread).
 */
#ifndef SNISPLICE_IO_WORKER_H
#define SNISPLICE_IO_WORKER_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/address.h"
#include "../core/publisher.h"
#include "access_log.h"
#include "connection.h"
#include "hello_buffer_pool.h"
#include "pipe_pool.h"
#include "metrics.h"
#include "ring_timer.h"
#include "ring_wait.h"
#include "socket_stash.h"
#include "timer_wheel.h"
#include "upstream_health.h"

/* What a completion's user_data points at; the tag sits in the low 3 bits
 * (every owner is at least 8-byte aligned). */
enum ring_tag {
    RING_TAG_ACCEPT = 0,      /* struct listener */
    RING_TAG_WAKEUP = 1,      /* struct worker, its writable_waits, ring_timer or socket_stashes */
    RING_TAG_STEP = 2,        /* struct connection, CONNECTION_OP_STEP */
    RING_TAG_TO_UPSTREAM = 3, /* struct connection, CONNECTION_OP_TO_UPSTREAM */
    RING_TAG_TO_CLIENT = 4,   /* struct connection, CONNECTION_OP_TO_CLIENT */
    RING_TAG_IGNORE = 5,      /* cancellations: nothing to do */
    RING_TAG_ACCESS_LOG = 6,  /* struct access_log_buffer */
    RING_TAG_HELLO = 7,       /* struct connection, CONNECTION_OP_HELLO */
};

static inline uint64_t ring_tag_pack(const void *owner, enum ring_tag tag)
{
    return (uint64_t)(uintptr_t)owner | (uint64_t)tag;
}
static inline enum ring_tag ring_tag_of(uint64_t user_data) { return (enum ring_tag)(user_data & 7); }
static inline void *ring_owner_of(uint64_t user_data) { return (void *)(uintptr_t)(user_data & ~(uint64_t)7); }

/* One listening socket of one worker. Allocated alone: an accept CQE
 * points at it, so it is freed only once no accept is in flight. */
struct listener {
    int fd;                 /* -1 once closed */
    struct address address;
    uint32_t index;         /* its entry in snapshot->listeners */
    bool accept_armed;      /* a multishot accept is in flight */
    uint64_t epoch;         /* handed over for the snapshot of this epoch */
    bool serve_late;        /* closed for an upgrade's handover: what its accept still returns is served */
    struct listener *next;
};

/* The worker's epoll set for sockets whose peer has half-closed and that
 * cannot take bytes yet (worker_wait_writable). A completion's owner with
 * RING_TAG_WAKEUP: aligned like every owner. */
struct writable_waits {
    int epoll_fd;
} __attribute__((aligned(8)));

/* Written by the owning worker only (relaxed), read by anyone. */
struct worker_counters {
    _Atomic uint64_t accepted;
    _Atomic uint64_t rejected_at_limit;
    _Atomic uint64_t active;
    _Atomic uint64_t access_log_lines_lost; /* buffers busy, or the write failed */
} __attribute__((aligned(64)));

struct worker {
    unsigned index;
    unsigned worker_count;
    int cpu;                       /* -1: not pinned */
    pthread_t thread;
    struct io_uring ring;
    struct publisher *publisher;
    struct snapshot *snapshot;     /* adopted at the top of each loop iteration */
    struct snapshot *health_snapshot; /* the one `health` is laid out for, pinned (worker.c) */
    struct listener *listeners;    /* open, accepting (list) */
    struct listener *closed_listeners; /* closed, an accept still in flight */
    pthread_mutex_t inbox_lock;    /* guards inbox: the main thread hands over sockets */
    struct listener *inbox;
    struct timer_wheel timers;
    struct pipe_pool pipes;
    struct hello_buffer_pool hello_buffers;
    struct socket_stash socket_stashes[2]; /* AF_INET, AF_INET6: io/socket_stash.c */
    uint8_t *peek_buffer;          /* the queued start of one client's stream */
    uint8_t end_peek_byte;         /* where end-of-stream peeks land (relay.c); never read */
    size_t peek_buffer_size;
    uint8_t *parse_scratch;        /* joins a hello split across records */
    size_t parse_scratch_size;
    struct connection_slab connections;
    uint32_t *round_robin;         /* one cursor per upstream of the snapshot */
    uint32_t round_robin_count;
    uint64_t round_robin_epoch;
    struct upstream_health health; /* per server of the adopted snapshot */
    struct upstream_load load;     /* open connections per server by name (least_connections,
                                    * max_conns); outlives snapshots */
    struct access_log access_log;
    uint64_t now_ms;               /* monotonic, read once per iteration */
    uint64_t waits;                /* io_uring waits so far: one per loop iteration */
    struct connection *deferred_first; /* client polls to arm after the next wait, */
    struct connection *deferred_last;  /* oldest first (relay.c) */
    uint32_t max_connections;      /* this worker's share */
    uint32_t open_connections;
    uint32_t allocated_connections;/* open + closing */
    uint64_t accept_paused_until_ms; /* 0: not paused (EMFILE back-off) */
    uint64_t fd_shortage_seen_ms;  /* last time out of fds (0: never); warned once per shortage */
    uint64_t source_warned_ms;     /* last warning about a `source` not bound (upstream_source.c) */
    uint64_t connect_warned_ms;    /* last warning about a failed connect (connect.c) */
    uint64_t limit_warned_ms;      /* last warning about clients closed at max_connections (listener.c) */
    uint64_t writable_wait_warned_ms; /* last warning about a refused epoll wait (worker.c) */
    uint64_t wakeup_buffer;
    bool draining;
    bool handing_off;              /* draining after a SIGUSR2 upgrade: the new process accepts now */
    uint64_t drain_deadline_ms;
    bool ring_sets_socket_options; /* io_uring setsockopt works (Linux 6.7+) */
    struct ring_wait ring_wait;    /* how to wait: ring_wait.c */
    struct ring_timer ring_timer;  /* the wake-up at the next deadline: ring_timer.c */
    unsigned last_batch_size;      /* events the last wait returned (its inline
                                    * completions not counted) */
    unsigned inline_completions;   /* queued operations certain to complete inside
                                    * the next submission (hello_forward.c) */
    unsigned last_wait_inline;     /* inline_completions of the last wait */
    /* Linked connects (io/connect.c): queued since the last wait; carried
     * by the last wait; of those, completed in the dispatch after it. One
     * that did not pauses linking until link_connects_from_ms. */
    unsigned linked_queued;
    unsigned linked_waited;
    unsigned linked_completed;
    uint64_t link_connects_from_ms;
    /* shared */
    struct client_counts *client_counts; /* every worker's, the process's (main.c) */
    int wakeup_fd;
    struct writable_waits writable_waits;
    _Atomic bool stop_requested;
    _Atomic bool cut_requested;    /* a second SIGTERM: close what is open, now */
    _Atomic bool handoff_requested; /* the stop is an upgrade's handover (worker_request_handoff) */
    _Atomic int start_status;      /* 0 starting, 1 running, -1 failed */
    struct worker_counters counters;
    struct metrics metrics;        /* what `stats` reports; written here only */
};

/* Main thread: prepare a worker that will own the given listener fds. */
bool worker_init(struct worker *worker, unsigned index, unsigned worker_count, int cpu,
                 struct publisher *publisher);

/* Main thread: give the worker a bound, listening socket for `address`. It
 * starts accepting when it adopts a snapshot that lists the address (the
 * next one published), and closes any socket whose address a snapshot no
 * longer lists. */
bool worker_give_listener(struct worker *worker, int fd, const struct address *address, uint64_t epoch);

/* Main thread: close the sockets given for `epoch` when that snapshot will
 * never be published (the reload failed after binding them). */
void worker_withdraw_listeners(struct worker *worker, uint64_t epoch);
bool worker_start(struct worker *worker);
/* Main thread: wake the worker (reload or stop). */
void worker_wake(struct worker *worker);
void worker_request_stop(struct worker *worker);
/* Main thread: stop accepting because a new process (SIGUSR2) accepts on
 * the same sockets now, then drain as worker_request_stop does. A
 * connection the kernel handed to an accept still in flight is served, not
 * closed: the socket it came from is not going away. */
void worker_request_handoff(struct worker *worker);
/* Main thread: end the drain now, closing every connection still open. */
void worker_request_cut(struct worker *worker);
void worker_join(struct worker *worker);
/* Main thread: join the worker if its thread has ended; false if not yet. */
bool worker_try_join(struct worker *worker);
void worker_destroy(struct worker *worker);

/* Worker thread helpers. */
struct io_uring_sqe *worker_sqe(struct worker *worker);
/* Room for `count` SQEs in a row: submit what is queued first if need be.
 * For a chain of linked operations, which must reach the kernel whole (a
 * submission that ends inside a chain hands its head to an io-wq thread,
 * where a connect on a non-blocking socket ends in EINPROGRESS). */
void worker_reserve_sqes(struct worker *worker, unsigned count);

/* Hand every queued request to the kernel now: it reads what a request
 * points to (a connect's address, a setsockopt's value) at submission,
 * so a caller about to release that memory submits first. */
void worker_submit_queued(struct worker *worker);
/* A prepared SQE becomes the connection's operation in tag's slot: its
 * completion is dispatched by tag, and the connection outlives it. */
void worker_track_op(struct io_uring_sqe *sqe, struct connection *connection, enum ring_tag tag);
void worker_arm_poll(struct worker *worker, struct connection *connection,
                     enum ring_tag tag, int fd, unsigned poll_mask);
/* The operation just queued completes inside the submission, whatever its
 * result (a non-blocking send or recv, or a connect to this host and what
 * is linked behind it): the next wait asks for one more completion, so
 * that this one does not end the wait by itself. */
static inline void worker_expect_inline_completion(struct worker *worker)
{
    worker->inline_completions++;
}
void worker_arm_end_peek(struct worker *worker, struct connection *connection,
                         enum ring_tag tag, int fd);
/* Wait until fd takes bytes (or fails), then call relay_on_ready for
 * connection and tag with the epoll events: for a socket whose peer has
 * sent its FIN, where an io_uring poll for POLLOUT completes at once
 * (worker.c). *registered: fd is in the worker's epoll set (set here).
 * False when the kernel refused the wait (warned): the caller closes the
 * connection. */
bool worker_wait_writable(struct worker *worker, struct connection *connection,
                          enum ring_tag tag, int fd, bool *registered);
/* Take fd out of the epoll set before it is closed. */
void worker_forget_writable(struct worker *worker, int fd, bool *registered);
void worker_cancel(struct worker *worker, const void *owner, enum ring_tag tag);
void worker_queue_close(struct worker *worker, int fd);
void worker_queue_socket_option(struct worker *worker, int fd, int level, int name,
                                const void *value, socklen_t length);

static inline void counter_add(_Atomic uint64_t *counter, uint64_t amount)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + amount,
                          memory_order_relaxed);
}

#endif
