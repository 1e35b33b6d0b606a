/*
 * worker.c - one worker thread: its io_uring, its event loop, and the
 * dispatch of completions and timers to the data-path steps.
 *
 * Loop iteration: read the clock, adopt the current route snapshot, fire
 * due timers, submit and wait, dispatch completions, then report a
 * quiescent point to the publisher (nothing unpinned is held across it).
 * The ring is created on the worker's own thread: SINGLE_ISSUER and
 * DEFER_TASKRUN tie it to its creator. A kernel whose io_uring lacks what
 * the loop cannot do without (Linux 5.19) stops the start-up with an error
 * naming it; what it can do without is worked around and said once.
 */
#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "connect.h"
#include "hello_forward.h"
#include "listener.h"
#include "log.h"
#include "preread.h"
#include "relay.h"
#include "ring_support.h"

#define RING_ENTRIES 2048
#define RING_CQ_ENTRIES 16384
#define PARSE_SCRATCH_SIZE (64 * 1024)
#define PIPES_KEPT 256

static uint64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

void worker_submit_queued(struct worker *worker)
{
    if (io_uring_sq_ready(&worker->ring) == 0)
        return;
    io_uring_submit(&worker->ring);
    /* The operations expected to complete inside a submission do so now;
     * the next wait must not wait for their completions again. */
    worker->inline_completions = 0;
}

struct io_uring_sqe *worker_sqe(struct worker *worker)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&worker->ring);
    if (sqe)
        return sqe;
    /* Submission queue full: hand what is queued to the kernel and retry. */
    worker_submit_queued(worker);
    sqe = io_uring_get_sqe(&worker->ring);
    if (!sqe) {
        log_error("worker %u: io_uring submission queue stuck", worker->index);
        abort();
    }
    return sqe;
}

void worker_reserve_sqes(struct worker *worker, unsigned count)
{
    if (io_uring_sq_space_left(&worker->ring) < count)
        worker_submit_queued(worker);
}

static enum connection_op op_of_tag(enum ring_tag tag)
{
    switch (tag) {
    case RING_TAG_STEP: return CONNECTION_OP_STEP;
    case RING_TAG_TO_UPSTREAM: return CONNECTION_OP_TO_UPSTREAM;
    case RING_TAG_TO_CLIENT: return CONNECTION_OP_TO_CLIENT;
    case RING_TAG_HELLO: return CONNECTION_OP_HELLO;
    default: return 0;
    }
}

void worker_track_op(struct io_uring_sqe *sqe, struct connection *connection, enum ring_tag tag)
{
    io_uring_sqe_set_data64(sqe, ring_tag_pack(connection, tag));
    connection->pending_ops |= (uint8_t)op_of_tag(tag);
}

void worker_arm_poll(struct worker *worker, struct connection *connection,
                     enum ring_tag tag, int fd, unsigned poll_mask)
{
    struct io_uring_sqe *sqe = worker_sqe(worker);
    io_uring_prep_poll_add(sqe, fd, poll_mask);
    worker_track_op(sqe, connection, tag);
}

/* A one-byte MSG_PEEK recv that completes inside its submission: 0 at an
 * end of stream that has nothing queued before it, 1 when bytes are queued
 * (none taken out), -EAGAIN when nothing is, -errno on error. Never left
 * pending: io_uring gives a recv that a poll woke and a retry found empty
 * to an io-wq thread, which then blocks in it (relay.c). */
void worker_arm_end_peek(struct worker *worker, struct connection *connection,
                         enum ring_tag tag, int fd)
{
    struct io_uring_sqe *sqe = worker_sqe(worker);
    io_uring_prep_recv(sqe, fd, &worker->end_peek_byte, 1, MSG_PEEK | MSG_DONTWAIT);
    worker_track_op(sqe, connection, tag);
    worker_expect_inline_completion(worker);
}

/* An operation whose success needs no handling: no CQE unless it fails,
 * and a failure's CQE is ignored. */
static void queue_fire_and_forget(struct io_uring_sqe *sqe)
{
    io_uring_sqe_set_data64(sqe, ring_tag_pack(NULL, RING_TAG_IGNORE));
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void worker_cancel(struct worker *worker, const void *owner, enum ring_tag tag)
{
    struct io_uring_sqe *sqe = worker_sqe(worker);
    io_uring_prep_cancel64(sqe, ring_tag_pack(owner, tag), 0);
    queue_fire_and_forget(sqe);
}

/* close(2) of a connection's socket rides in the next submission instead of
 * costing a system call (about 1 us each on a kernel with page-table
 * isolation). It runs inline when submitted, in queue order, behind the
 * connection's cancellations. Until then the fd number stays taken, so no
 * new socket can be given a number that a queued SQE still names.
 * (shutdown(2) stays a system call: io_uring always hands IORING_OP_SHUTDOWN
 * to an io-wq thread, which measured as 2x the context switches.) */
void worker_queue_close(struct worker *worker, int fd)
{
#ifdef __SANITIZE_THREAD__
    /* ThreadSanitizer follows fds through its close() interceptor; a close
     * done by io_uring is invisible to it, and another worker's socket that
     * is then given the same number reads as a data race. */
    (void)worker;
    close(fd);
#else
    struct io_uring_sqe *sqe = worker_sqe(worker);
    io_uring_prep_close(sqe, fd);
    queue_fire_and_forget(sqe);
#endif
}

#ifndef SOCKET_URING_OP_SETSOCKOPT
#define SOCKET_URING_OP_SETSOCKOPT 3 /* <linux/io_uring.h> of Linux 6.7 */
#endif

/* An io_uring setsockopt (IORING_OP_URING_CMD). liburing 2.3 predates the
 * SQE's named fields for it: level and optname share addr, optlen is
 * splice_fd_in, optval is addr3. *value is read at submission. */
static void prep_socket_option(struct io_uring_sqe *sqe, int fd, int level, int name,
                               const void *value, socklen_t length)
{
    io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
    sqe->cmd_op = SOCKET_URING_OP_SETSOCKOPT;
    sqe->addr = (uint64_t)(uint32_t)level | (uint64_t)(uint32_t)name << 32;
    sqe->splice_fd_in = (int32_t)length;
    sqe->addr3 = (uint64_t)(uintptr_t)value;
}

/* Set an option on a socket the worker just created, in the same
 * submission as the operation that follows (SQEs run in order, and this
 * one inline), or with setsockopt(2) where the kernel cannot. Errors are
 * not reported: callers set options that only tune a healthy socket.
 * value must stay valid until the next submission (statics, or memory of
 * the snapshot the connection pins). */
void worker_queue_socket_option(struct worker *worker, int fd, int level, int name,
                                const void *value, socklen_t length)
{
    if (!worker->ring_sets_socket_options) {
        setsockopt(fd, level, name, value, length);
        return;
    }
    struct io_uring_sqe *sqe = worker_sqe(worker);
    prep_socket_option(sqe, fd, level, name, value, length);
    queue_fire_and_forget(sqe);
}

/* Once per worker: does an io_uring setsockopt work here, and does it set
 * what it says (guards the hand-made SQE layout above)? */
static bool ring_can_set_socket_options(struct io_uring *ring)
{
    static const int on = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool works = false;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    struct io_uring_cqe *cqe = NULL;
    if (sqe) {
        prep_socket_option(sqe, fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        io_uring_sqe_set_data64(sqe, ring_tag_pack(NULL, RING_TAG_IGNORE));
        if (io_uring_submit_and_wait(ring, 1) == 1 && io_uring_wait_cqe(ring, &cqe) == 0) {
            works = cqe->res == 0;
            io_uring_cqe_seen(ring, cqe);
        }
    }
    int value = 0;
    socklen_t length = sizeof value;
    if (works && (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &length) < 0 || value == 0))
        works = false;
    close(fd);
    return works;
}

/* ---- snapshot adoption ---- */

static void adopt_snapshot(struct worker *worker)
{
    struct snapshot *snapshot = publisher_current(worker->publisher);
    worker->snapshot = snapshot;
    if (snapshot->epoch == worker->round_robin_epoch)
        return;
    worker->round_robin_epoch = snapshot->epoch;
    listener_match_snapshot(worker, snapshot);
    /* The health table's snapshot stays pinned until the next adoption
     * has carried its failing servers' state over (upstream_health.c). */
    struct snapshot *previous = worker->health_snapshot;
    if (!upstream_health_adopt(&worker->health, &worker->load, previous ? previous->upstreams : NULL,
                               previous ? previous->upstream_count : 0, snapshot->upstreams,
                               snapshot->upstream_count, snapshot->health_slots))
        log_warn("worker %u: no memory for upstream health; every server counts as up", worker->index);
    if (previous)
        snapshot_unpin(previous, worker->index);
    snapshot_pin(snapshot, worker->index);
    worker->health_snapshot = snapshot;
    if (snapshot->upstream_count > worker->round_robin_count) {
        uint32_t *cursors = realloc(worker->round_robin, snapshot->upstream_count * sizeof *cursors);
        if (cursors) {
            for (uint32_t i = worker->round_robin_count; i < snapshot->upstream_count; i++)
                cursors[i] = worker->index;
            worker->round_robin = cursors;
            worker->round_robin_count = snapshot->upstream_count;
        }
    }
    const struct snapshot_settings *settings = &snapshot->settings;
    /* Each worker enforces its share of the process-wide limit. */
    worker->max_connections = (settings->max_connections + worker->worker_count - 1) / worker->worker_count;
}

/* ---- timers ---- */

static void on_timer(struct timer *timer, void *context)
{
    struct worker *worker = context;
    struct connection *connection = (struct connection *)((char *)timer - offsetof(struct connection, timer));
    switch (connection->state) {
    case CONNECTION_PREREAD:
        preread_on_timer(worker, connection);
        break;
    case CONNECTION_CONNECT:
        connect_on_timeout(worker, connection);
        break;
    case CONNECTION_RELAY:
        relay_on_idle_timer(worker, connection);
        break;
    default:
        break;
    }
}

/* ---- waiting for a half-closed socket to take bytes ----
 * io_uring adds POLLRDHUP to every poll it arms, so once a socket's peer
 * has sent its FIN, a poll for POLLOUT on it completes at once, with
 * POLLRDHUP alone while the socket cannot take bytes, and again at every
 * re-arm: a reader that half-closes and then stops reading would spin the
 * worker. epoll reports only what it is asked for, so such a socket waits
 * in the worker's epoll set (one-shot), whose readiness one multishot
 * io_uring poll watches. */

bool worker_wait_writable(struct worker *worker, struct connection *connection,
                          enum ring_tag tag, int fd, bool *registered)
{
    struct epoll_event event = { .events = EPOLLOUT | EPOLLONESHOT,
                                 .data.u64 = ring_tag_pack(connection, tag) };
    if (epoll_ctl(worker->writable_waits.epoll_fd, *registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
                  fd, &event) == 0) {
        *registered = true;
        return true;
    }
    /* Out of kernel memory or fs.epoll.max_user_watches. Not the io_uring
     * poll instead: it would complete at once, again and again, and keep
     * the worker busy for as long as the peer does not read. */
    if (log_once_a_second(&worker->writable_wait_warned_ms, worker->now_ms))
        log_warn("worker %u: cannot wait for a half-closed peer to read (epoll_ctl: %s): "
                 "its connection is closed", worker->index, strerror(errno));
    return false;
}

void worker_forget_writable(struct worker *worker, int fd, bool *registered)
{
    if (!*registered)
        return;
    epoll_ctl(worker->writable_waits.epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    *registered = false;
}

static void arm_writable_waits(struct worker *worker)
{
    struct io_uring_sqe *sqe = worker_sqe(worker);
    io_uring_prep_poll_multishot(sqe, worker->writable_waits.epoll_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, ring_tag_pack(&worker->writable_waits, RING_TAG_WAKEUP));
}

#define WRITABLE_EVENTS_PER_CALL 64

/* Takes every ready socket: the multishot poll is edge-triggered, so what
 * is left in the set would get no completion of its own. */
static void on_writable_waits(struct worker *worker, uint32_t flags)
{
    struct epoll_event events[WRITABLE_EVENTS_PER_CALL];
    int count;
    do {
        count = epoll_wait(worker->writable_waits.epoll_fd, events, WRITABLE_EVENTS_PER_CALL, 0);
        for (int i = 0; i < count; i++) {
            struct connection *connection = ring_owner_of(events[i].data.u64);
            /* An earlier event of this batch may have closed it. */
            if (connection->state == CONNECTION_RELAY)
                relay_on_ready(worker, connection, ring_tag_of(events[i].data.u64), (int)events[i].events);
        }
    } while (count == WRITABLE_EVENTS_PER_CALL);
    if (!(flags & IORING_CQE_F_MORE))
        arm_writable_waits(worker);
}

/* ---- completions ---- */

static void on_step_complete(struct worker *worker, struct connection *connection, int result)
{
    switch (connection->state) {
    case CONNECTION_PREREAD:
        if (result < 0)
            connection_close(worker, connection, OUTCOME_CLIENT_ERROR);
        else
            preread_on_readable(worker, connection, (unsigned)result);
        break;
    case CONNECTION_CONNECT:
        connect_on_complete(worker, connection, result);
        break;
    default:
        break;
    }
}

static void arm_wakeup(struct worker *worker)
{
    struct io_uring_sqe *sqe = worker_sqe(worker);
    io_uring_prep_poll_multishot(sqe, worker->wakeup_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, ring_tag_pack(worker, RING_TAG_WAKEUP));
}

static void on_wakeup(struct worker *worker, uint32_t flags)
{
    uint64_t value;
    ssize_t ignored = read(worker->wakeup_fd, &value, sizeof value);
    (void)ignored;
    if (!(flags & IORING_CQE_F_MORE))
        arm_wakeup(worker);
}

static void on_ring_timer(struct worker *worker, int result)
{
    if (!ring_timer_completed(&worker->ring_timer, result))
        log_warn("worker %u: io_uring timeout: %s; each wait carries its own timeout from now on",
                 worker->index, strerror(-result));
}

static bool is_socket_stash(const struct worker *worker, const void *owner)
{
    return owner == &worker->socket_stashes[0] || owner == &worker->socket_stashes[1];
}

static void dispatch(struct worker *worker, const struct io_uring_cqe *cqe)
{
    enum ring_tag tag = ring_tag_of(cqe->user_data);
    void *owner = ring_owner_of(cqe->user_data);
    switch (tag) {
    case RING_TAG_ACCEPT:
        listener_on_accept(worker, owner, cqe->res, cqe->flags);
        break;
    case RING_TAG_WAKEUP:
        if (owner == &worker->writable_waits)
            on_writable_waits(worker, cqe->flags);
        else if (owner == &worker->ring_timer)
            on_ring_timer(worker, cqe->res);
        else if (is_socket_stash(worker, owner))
            socket_stash_on_made(worker, owner, cqe->res);
        else
            on_wakeup(worker, cqe->flags);
        break;
    case RING_TAG_STEP:
        if (connection_op_completed(worker, owner, CONNECTION_OP_STEP))
            on_step_complete(worker, owner, cqe->res);
        break;
    case RING_TAG_HELLO:
        if (connection_op_completed(worker, owner, CONNECTION_OP_HELLO))
            hello_forward_on_taken(worker, owner, cqe->res);
        break;
    case RING_TAG_TO_UPSTREAM:
    case RING_TAG_TO_CLIENT:
        if (!connection_op_completed(worker, owner, op_of_tag(tag)))
            break;
        /* Linked behind a connect that failed (io/connect.c). */
        if (((struct connection *)owner)->state == CONNECTION_CONNECT)
            connect_on_link_cancelled(worker, owner);
        else
            relay_on_ready(worker, owner, tag, cqe->res);
        break;
    case RING_TAG_ACCESS_LOG:
        access_log_written(worker, owner, cqe->res);
        break;
    default:
        break;
    }
}

/* ---- shutdown ---- */

static void begin_drain(struct worker *worker)
{
    worker->draining = true;
    worker->handing_off = atomic_load_explicit(&worker->handoff_requested, memory_order_acquire);
    worker->drain_deadline_ms = worker->now_ms + worker->snapshot->settings.drain_timeout_ms;
    listener_close_all(worker);
    log_debug("worker %u: draining %u connections", worker->index, worker->open_connections);
}

/* True when the loop may end. */
static bool drain_step(struct worker *worker)
{
    bool cut = atomic_load_explicit(&worker->cut_requested, memory_order_acquire);
    if (worker->open_connections > 0 && (cut || worker->now_ms >= worker->drain_deadline_ms))
        connection_close_all(worker, OUTCOME_SHUTDOWN);
    return worker->open_connections == 0 && worker->allocated_connections == 0;
}

/* A wait in ms (-1: none) shortened to end by `deadline_ms`. */
static int wait_until(int wait, uint64_t deadline_ms, uint64_t now_ms)
{
    int until = deadline_ms > now_ms ? (int)(deadline_ms - now_ms) : 0;
    return wait < 0 || until < wait ? until : wait;
}

static int wait_ms(struct worker *worker)
{
    /* A deferred client poll is armed at the next wake-up; if none comes,
     * the next tick is one. (A tick, not a timeout of its own: see relay.c.) */
    int limit = worker->deferred_first ? timer_wheel_ms_to_next_tick(worker->now_ms) : -1;
    /* Likewise while a completion inside the submission is expected: its
     * handling may arm a deferred poll that nothing else would wake for. */
    if (worker->inline_completions > 0)
        limit = timer_wheel_ms_to_next_tick(worker->now_ms);
    /* Pages of a burst's hello buffers go back even if nothing else happens. */
    if (worker->hello_buffers.trim_at_ms)
        limit = wait_until(limit, worker->hello_buffers.trim_at_ms, worker->now_ms);
    int wait = timer_wheel_wait_ms(&worker->timers, worker->now_ms, limit);
    if (worker->accept_paused_until_ms)
        wait = wait_until(wait, worker->accept_paused_until_ms, worker->now_ms);
    if (worker->draining) {
        /* Cancellations of closed connections must still be reaped. */
        uint64_t drain_at = worker->drain_deadline_ms;
        if (drain_at > worker->now_ms + 100 || worker->open_connections == 0)
            drain_at = worker->now_ms + 100;
        wait = wait_until(wait, drain_at, worker->now_ms);
    }
    return wait;
}

static void submit_and_wait(struct worker *worker)
{
    bool busy = worker->last_batch_size >= RING_WAIT_BUSY_BATCH;
    int wait = wait_ms(worker);
    /* The timeout kept in the ring ends the wait at the deadline: no timer
     * set up and torn down by every sleep (ring_timer.c). */
    if (wait > 0 && ring_timer_expect(&worker->ring_timer, &worker->ring, worker->now_ms + (uint64_t)wait))
        wait = -1;
    int result = ring_wait_submit_and_wait(&worker->ring, &worker->ring_wait, wait, busy,
                                           worker->inline_completions);
    worker->last_wait_inline = worker->inline_completions;
    worker->inline_completions = 0;
    worker->linked_waited = worker->linked_queued;
    worker->linked_queued = worker->linked_completed = 0;
    worker->waits++;
    if (result < 0 && result != -ETIME && result != -EINTR && result != -EAGAIN && result != -EBUSY)
        log_warn("worker %u: io_uring_enter: %s", worker->index, strerror(-result));
}

/* One batch: submit what is queued, wait for at least one completion (or
 * the next deadline), handle every completion, then queue the log writes. */
/* Handles every completion that is there; returns how many. */
static unsigned dispatch_ready(struct worker *worker)
{
    unsigned head, seen = 0;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(&worker->ring, head, cqe) {
        dispatch(worker, cqe);
        seen++;
    }
    io_uring_cq_advance(&worker->ring, seen);
    return seen;
}

static void submit_wait_and_dispatch(struct worker *worker)
{
    submit_and_wait(worker);
    worker->now_ms = monotonic_ms();
    unsigned seen = dispatch_ready(worker);
    /* Busy means events came in a batch; the completions the worker
     * expected inside its own submission are no events. */
    worker->last_batch_size = seen > worker->last_wait_inline ? seen - worker->last_wait_inline : 0;
    connect_check_linked(worker);
    access_log_flush(worker);
}

/* Gauges for the stats thread, which must not read the pools itself; set
 * right before a wait, so that what a sleeping worker shows is current. */
static void publish_gauges(struct worker *worker)
{
    atomic_store_explicit(&worker->metrics.pipes_in_use, worker->pipes.in_use, memory_order_relaxed);
    atomic_store_explicit(&worker->metrics.pipes_idle, worker->pipes.idle_count, memory_order_relaxed);
    atomic_store_explicit(&worker->metrics.hello_buffers_in_use, worker->hello_buffers.out,
                          memory_order_relaxed);
    atomic_store_explicit(&worker->metrics.hello_buffers_idle,
                          hello_buffer_pool_idle(&worker->hello_buffers), memory_order_relaxed);
}

static void run_loop(struct worker *worker)
{
    for (;;) {
        worker->now_ms = monotonic_ms();
        adopt_snapshot(worker);
        timer_wheel_advance(&worker->timers, worker->now_ms, on_timer, worker);
        if (!worker->draining && atomic_load_explicit(&worker->stop_requested, memory_order_acquire))
            begin_drain(worker);
        if (worker->draining && drain_step(worker)) {
            worker_submit_queued(worker); /* the listeners' closes, at least */
            break;
        }
        listener_resume(worker);
        relay_arm_deferred_polls(worker);
        hello_buffer_pool_trim(&worker->hello_buffers, worker->now_ms);
        publish_gauges(worker);
        submit_wait_and_dispatch(worker);
        publisher_quiescent(worker->publisher, worker->index);
    }
}

/* ---- thread lifecycle ---- */

/* What io_uring must have here, or NULL. Without these snisplice would not
 * stop but misbehave: a fire-and-forget close the kernel refuses for its
 * unknown flag leaks the socket unnoticed, and a multishot accept it does
 * not know completes with EINVAL and is re-armed without end. Probed, not
 * read from uname: distribution kernels backport io_uring. Multishot accept
 * has no probe of its own; IORING_OP_SOCKET came in the same release
 * (5.19) and is listed by the opcode probe. */
static const char *ring_missing_feature(struct io_uring *ring, unsigned features)
{
    if (!(features & IORING_FEAT_CQE_SKIP))
        return "IOSQE_CQE_SKIP_SUCCESS (Linux 5.17)";
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    if (!probe)
        return NULL; /* out of memory: the kernel has the probe (5.6) if it has the above */
    bool has_accept_multishot = io_uring_opcode_supported(probe, IORING_OP_SOCKET);
    io_uring_free_probe(probe);
    return has_accept_multishot ? NULL : "multishot accept (Linux 5.19)";
}

/* Said once (worker 0): what this kernel's io_uring lacks that snisplice
 * works around, so a slower path on an older kernel is not a mystery. */
static void log_ring_fallbacks(const struct worker *worker, bool task_run_hints)
{
    if (worker->index != 0)
        return;
    char text[320] = "";
    if (!task_run_hints)
        strcat(text, ", no SINGLE_ISSUER/DEFER_TASKRUN (Linux 6.1)");
    if (!worker->ring_sets_socket_options)
        strcat(text, ", socket options set by setsockopt(2), one system call each (io_uring's needs Linux 6.7)");
    if (!worker->ring_wait.can_batch)
        strcat(text, ", no batched waits under load (io_uring's minimum wait needs Linux 6.12)");
    if (text[0] != '\0')
        log_info("io_uring on this kernel:%s", text + 1);
}

static bool setup_ring(struct worker *worker)
{
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                   IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    params.cq_entries = RING_CQ_ENTRIES;
    int result = io_uring_queue_init_params(RING_ENTRIES, &worker->ring, &params);
    bool task_run_hints = result != -EINVAL;
    if (result == -EINVAL) {
        /* 5.19 and 6.0: the same loop works without the task-run hints.
         * SUBMIT_ALL (5.18) stays: without it a submission would stop at
         * the first entry refused, leaving the rest for the next one. A
         * kernel that refuses this too is older than snisplice needs. */
        memset(&params, 0, sizeof params);
        params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
        params.cq_entries = RING_CQ_ENTRIES;
        result = io_uring_queue_init_params(RING_ENTRIES, &worker->ring, &params);
    }
    if (result == -EINVAL) {
        log_error("worker %u: this kernel's io_uring has no IORING_SETUP_SUBMIT_ALL (Linux 5.18): snisplice needs "
                  "Linux 5.19 or later", worker->index);
        return false;
    }
    if (result < 0) {
        log_error("worker %u: io_uring_queue_init: %s", worker->index, ring_support_explain(-result));
        return false;
    }
    const char *missing = ring_missing_feature(&worker->ring, params.features);
    if (missing) {
        log_error("worker %u: this kernel's io_uring has no %s: snisplice needs Linux 5.19 or later",
                  worker->index, missing);
        io_uring_queue_exit(&worker->ring);
        return false;
    }
    bool ring_fd_registered = io_uring_register_ring_fd(&worker->ring) == 1;
    ring_wait_init(&worker->ring_wait, params.features, ring_fd_registered);
    worker->ring_sets_socket_options = ring_can_set_socket_options(&worker->ring);
    log_ring_fallbacks(worker, task_run_hints);
    return true;
}

static void pin_to_cpu(struct worker *worker)
{
    if (worker->cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(worker->cpu, &set);
    int result = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (result != 0)
        log_warn("worker %u: cannot pin to CPU %d: %s", worker->index, worker->cpu, strerror(result));
}

/* At exit. A connect of the last batch may have queued sockets for its
 * stash: they completed inside the last submission (socket_stash.c), so
 * their completions are there to be taken before the stash is closed. */
static void close_socket_stashes(struct worker *worker)
{
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&worker->ring, &cqe) == 0) {
        void *owner = ring_owner_of(cqe->user_data);
        if (ring_tag_of(cqe->user_data) == RING_TAG_WAKEUP && is_socket_stash(worker, owner))
            socket_stash_on_made(worker, owner, cqe->res);
        io_uring_cqe_seen(&worker->ring, cqe);
    }
    socket_stash_close(&worker->socket_stashes[0]);
    socket_stash_close(&worker->socket_stashes[1]);
}

static void finish(struct worker *worker)
{
    /* Reap outstanding cancellations and log writes: no memory may be in
     * use. And the closed listeners' accepts: a multishot accept left
     * pending holds its socket past the process's exit (the ring is torn
     * down later, by the kernel), which would go on completing handshakes
     * for some milliseconds, clients that are then reset. */
    access_log_flush(worker);
    while (worker->allocated_connections > 0 || access_log_writing(worker) || worker->closed_listeners) {
        worker->now_ms = monotonic_ms();
        submit_wait_and_dispatch(worker);
    }
    /* The closes queued by the last batch. */
    io_uring_submit(&worker->ring);
    close_socket_stashes(worker);
    io_uring_queue_exit(&worker->ring);
    if (worker->health_snapshot)
        snapshot_unpin(worker->health_snapshot, worker->index);
    worker->health_snapshot = NULL;
    publisher_worker_offline(worker->publisher, worker->index);
}

static void *worker_main(void *argument)
{
    struct worker *worker = argument;
    pin_to_cpu(worker);
    if (!setup_ring(worker)) {
        atomic_store(&worker->start_status, -1);
        publisher_worker_offline(worker->publisher, worker->index);
        return NULL;
    }
    worker->now_ms = monotonic_ms();
    timer_wheel_init(&worker->timers, worker->now_ms);
    ring_timer_init(&worker->ring_timer, ring_tag_pack(&worker->ring_timer, RING_TAG_WAKEUP),
                    ring_tag_pack(NULL, RING_TAG_IGNORE));
    adopt_snapshot(worker);
    arm_wakeup(worker);
    arm_writable_waits(worker);
    /* IPv4 sockets made before the first client, so that the stash is
     * part of the footprint a started proxy has (IPv6 fills at its first
     * use): made and taken now, before the start is reported. */
    socket_stash_fill(worker, &worker->socket_stashes[0]);
    worker_submit_queued(worker);
    dispatch_ready(worker);
    atomic_store(&worker->start_status, 1);
    run_loop(worker);
    finish(worker);
    return NULL;
}

bool worker_give_listener(struct worker *worker, int fd, const struct address *address, uint64_t epoch)
{
    struct listener *listener = calloc(1, sizeof *listener);
    if (!listener)
        return false;
    listener->fd = fd;
    listener->address = *address;
    listener->epoch = epoch;
    pthread_mutex_lock(&worker->inbox_lock);
    listener->next = worker->inbox;
    worker->inbox = listener;
    pthread_mutex_unlock(&worker->inbox_lock);
    return true;
}

void worker_withdraw_listeners(struct worker *worker, uint64_t epoch)
{
    /* Still in the inbox: a worker adopts them only with a snapshot of
     * that epoch, and none was published. */
    pthread_mutex_lock(&worker->inbox_lock);
    for (struct listener **at = &worker->inbox; *at;) {
        struct listener *listener = *at;
        if (listener->epoch != epoch) {
            at = &listener->next;
            continue;
        }
        *at = listener->next;
        close(listener->fd);
        free(listener);
    }
    pthread_mutex_unlock(&worker->inbox_lock);
}

bool worker_init(struct worker *worker, unsigned index, unsigned worker_count, int cpu,
                 struct publisher *publisher)
{
    memset(worker, 0, sizeof *worker);
    worker->index = index;
    worker->worker_count = worker_count;
    worker->cpu = cpu;
    worker->publisher = publisher;
    pthread_mutex_init(&worker->inbox_lock, NULL);
    worker->wakeup_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (worker->wakeup_fd < 0)
        log_error("worker %u: eventfd: %s", index, strerror(errno));
    worker->writable_waits.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (worker->writable_waits.epoll_fd < 0)
        log_error("worker %u: epoll_create1: %s", index, strerror(errno));
    worker->parse_scratch_size = PARSE_SCRATCH_SIZE;
    worker->parse_scratch = malloc(PARSE_SCRATCH_SIZE);
    /* preread_max can be raised on reload up to its ceiling: size for that. */
    worker->peek_buffer_size = PREREAD_MAX_CEILING;
    worker->peek_buffer = malloc(PREREAD_MAX_CEILING);
    connection_slab_init(&worker->connections);
    upstream_load_init(&worker->load);
    struct rlimit fd_limit;
    uint64_t fds = getrlimit(RLIMIT_NOFILE, &fd_limit) == 0 ? fd_limit.rlim_cur : 0;
    socket_stash_init(&worker->socket_stashes[0], AF_INET, fds, worker_count);
    socket_stash_init(&worker->socket_stashes[1], AF_INET6, fds, worker_count);
    bool allocated = worker->parse_scratch && worker->peek_buffer && pipe_pool_init(&worker->pipes, PIPES_KEPT) &&
                     metrics_init(&worker->metrics) && access_log_init(&worker->access_log);
    if (!allocated)
        log_error("worker %u: out of memory", index);
    if (allocated && worker->wakeup_fd >= 0 && worker->writable_waits.epoll_fd >= 0)
        return true;
    worker_destroy(worker);
    return false;
}

bool worker_start(struct worker *worker)
{
    int error = pthread_create(&worker->thread, NULL, worker_main, worker);
    if (error != 0)
        log_error("worker %u: cannot start its thread: %s", worker->index, strerror(error));
    return error == 0;
}

void worker_wake(struct worker *worker)
{
    uint64_t one = 1;
    ssize_t ignored = write(worker->wakeup_fd, &one, sizeof one);
    (void)ignored;
}

void worker_request_handoff(struct worker *worker)
{
    atomic_store_explicit(&worker->handoff_requested, true, memory_order_release);
    worker_request_stop(worker);
}

void worker_request_stop(struct worker *worker)
{
    atomic_store_explicit(&worker->stop_requested, true, memory_order_release);
    worker_wake(worker);
}

void worker_request_cut(struct worker *worker)
{
    atomic_store_explicit(&worker->cut_requested, true, memory_order_release);
    worker_request_stop(worker);
}

void worker_join(struct worker *worker)
{
    pthread_join(worker->thread, NULL);
}

bool worker_try_join(struct worker *worker)
{
    return pthread_tryjoin_np(worker->thread, NULL) == 0;
}

void worker_destroy(struct worker *worker)
{
    listener_free_all(worker);
    pthread_mutex_destroy(&worker->inbox_lock);
    connection_slab_destroy(&worker->connections);
    pipe_pool_destroy(&worker->pipes);
    hello_buffer_pool_destroy(&worker->hello_buffers);
    free(worker->peek_buffer);
    worker->peek_buffer = NULL;
    metrics_destroy(&worker->metrics);
    free(worker->parse_scratch);
    free(worker->round_robin);
    upstream_health_free(&worker->health);
    upstream_load_free(&worker->load);
    access_log_destroy(&worker->access_log);
    if (worker->wakeup_fd >= 0)
        close(worker->wakeup_fd);
    if (worker->writable_waits.epoll_fd >= 0)
        close(worker->writable_waits.epoll_fd);
    worker->writable_waits.epoll_fd = -1;
    worker->parse_scratch = NULL;
    worker->round_robin = NULL;
    worker->wakeup_fd = -1;
}
