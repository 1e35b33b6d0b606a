/*
 * relay.c - the splice relay, one direction at a time (see
 * shared/design/data-path.md):
 *
 *   WAIT_READABLE  poll(source, POLLIN) armed, no pipe held.
 *     readable ->  borrow a pipe; splice(source -> pipe)
 *                    0 bytes: end of stream -> shutdown(destination, SHUT_WR), DONE
 *                    EAGAIN:  give the pipe back, poll again
 *                  splice(pipe -> destination)
 *                    all written: give the pipe back (empty), poll source again
 *                    EAGAIN or partial: WAIT_WRITABLE, poll(destination, POLLOUT)
 *
 * When the poll says POLLRDHUP, the source's FIN is queued behind all its
 * bytes, so reads cannot block: the relay reads on until end of stream
 * without another poll, and when it has the last bytes in the pipe it
 * writes them with SPLICE_F_MORE so that the shutdown() right after puts
 * the FIN into the same segment (one packet and one ACK less per close).
 * Without POLLRDHUP, a direction reads once more after its first short
 * read: a server that answers and closes sends its FIN right behind the
 * answer, and finding it now saves a poll round trip and a wake-up, and
 * lets the FIN leave with the answer. Only once per direction: if that
 * read finds no end, the source streams or talks back and forth, and its
 * later short reads wait for the poll (one EAGAIN splice at most).
 *
 * Deferred client polls. After a complete ClientHello the client waits for
 * the server's answer, and after the server's end of stream it most often
 * only answers with its own FIN. Its poll is then not armed at once but
 * after the worker's next wait (RELAY_DEFERRED, the worker's deferred list,
 * oldest first): when the FIN is already queued by then, the poll completes
 * inside the submission and the worker is not woken for it alone, one
 * sleep and wake-up less per short connection. If nothing else wakes the
 * worker, the next timer-wheel tick does (at most 10 ms): a deadline on the
 * grid every other wait uses, because a short timeout of its own per sleep
 * measured dearer than the wake-up it saves (bench/NOTES.md). Only for
 * SNI-routed connections: a plain-forward client may speak first.
 * What is armed then is not a poll but a one-byte MSG_PEEK recv
 * (RELAY_WAIT_END): it completes like a poll for POLLIN, and with 0 when
 * the FIN is all there is, so the end of stream needs no splice to be
 * read (one system call less per short connection). Bytes instead are
 * left queued and pumped as after a poll.
 *
 * The hello itself usually does not pass through here: io/hello_forward.c
 * sends it from a buffer and calls relay_hello_sent when it is out.
 *
 * Why direct splice(2) calls after an io_uring poll rather than
 * IORING_OP_SPLICE: io_uring cannot issue splice without blocking, so it
 * punts every splice to an io-wq thread, and a splice pending on a socket
 * with no data parks one kernel thread per connection (measured on 6.18).
 * Here every splice is non-blocking (O_NONBLOCK sockets, SPLICE_F_NONBLOCK
 * pipes) and runs only after readiness, so no thread is ever parked.
 * Polls are one-shot: level-triggered when armed, so bytes that arrive
 * between a short read and the re-arm are never missed.
 *
 * Out of fds (EMFILE/ENFILE) or pipe pages, no pipe can be had: a direction
 * then copies through the worker's buffer instead of closing a connection
 * that was fine (copy_without_pipe below). Bytes stay queued in the source
 * socket until the destination took them, so nothing is lost and no
 * per-connection buffer is needed.
 *
 * A destination whose peer has sent its FIN (it half-closed, then reads
 * slowly or not at all) is not waited for with an io_uring poll: io_uring
 * adds POLLRDHUP to every poll, so a POLLOUT poll there completes at once
 * with POLLRDHUP alone, and again at every re-arm, a busy loop. The first
 * such completion moves the direction's writable waits to the worker's
 * epoll set, which reports POLLOUT only (worker_wait_writable).
 *
 * TCP urgent data (MSG_OOB: telnet, FTP's abort; or a hostile peer). Every
 * relayed socket has SO_OOBINLINE (relay.h), so the urgent byte is an
 * ordinary byte of the stream and is relayed (nginx's recv drops it; a
 * byte the peer sent is not ours to lose). But splice from TCP stops at
 * the urgent mark, inline or not, and never steps over it, only recv
 * does: splice answers EAGAIN, or 0 once the FIN is queued, while bytes
 * wait behind the mark. So a fill's EAGAIN or 0 is checked with SIOCATMARK,
 * and at the mark the direction copies once through the worker's buffer,
 * whose recv takes the urgent byte with the bytes after it. The look for
 * the end after a short read peeks one byte instead of splicing: a peek
 * reads past the mark, so its 0 is the end, at the same cost as the
 * splice it replaces. (POLLPRI cannot tell instead: io_uring reports a
 * socket's wake-up mask, which always has it.)
 *
 * The end peek armed for a waiting client (RELAY_WAIT_END) never waits
 * inside io_uring: it is MSG_DONTWAIT, completes in its submission, and
 * on EAGAIN a poll is armed instead. A recv that io_uring polls for and
 * then finds nothing to read on the retry is handed to an io-wq kernel
 * thread, where it blocks: a client whose socket could be woken without
 * being readable (an out-of-line urgent byte did that) would hold one
 * thread per connection.
 */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "hello_forward.h"

static const int relay_enabled = 1;
static const int relay_unsent_low_water = RELAY_UNSENT_LOW_WATER;

const struct relay_socket_option relay_socket_options[RELAY_SOCKET_OPTION_COUNT] = {
    { IPPROTO_TCP, TCP_NODELAY, &relay_enabled },
    { SOL_SOCKET, SO_OOBINLINE, &relay_enabled },
};

const struct relay_socket_option relay_unsent_limit = { IPPROTO_TCP, TCP_NOTSENT_LOWAT,
                                                        &relay_unsent_low_water };

/* Bytes moved per readiness event before yielding to other connections:
 * 16 default pipes, or one grown pipe (about 0.5 ms of work). */
#define RELAY_BUDGET (1024 * 1024)

struct relay_side {
    struct relay_direction *direction;
    struct relay_direction *other;
    int source_fd;
    int destination_fd;
    enum ring_tag tag;
    enum connection_outcome source_error;
    enum connection_outcome destination_error;
};

static struct relay_side side_of(struct connection *connection, enum ring_tag tag)
{
    if (tag == RING_TAG_TO_UPSTREAM)
        return (struct relay_side){ &connection->to_upstream, &connection->to_client,
                                    connection->client_fd, connection->upstream_fd, tag,
                                    OUTCOME_CLIENT_ERROR, OUTCOME_UPSTREAM_ERROR };
    return (struct relay_side){ &connection->to_client, &connection->to_upstream,
                                connection->upstream_fd, connection->client_fd, tag,
                                OUTCOME_UPSTREAM_ERROR, OUTCOME_CLIENT_ERROR };
}

static void give_back_pipe(struct worker *worker, struct relay_direction *direction)
{
    if (direction->pipe.read_fd < 0)
        return;
    pipe_pool_put(&worker->pipes, direction->pipe);
    direction->pipe.read_fd = direction->pipe.write_fd = -1;
}

static void arm_source_poll(struct worker *worker, struct connection *connection,
                            const struct relay_side *side)
{
    side->direction->state = RELAY_WAIT_READABLE;
    worker_arm_poll(worker, connection, side->tag, side->source_fd, POLLIN | POLLRDHUP);
}

/* ---- deferred client polls (see the header) ---- */

static void deferred_unlink(struct worker *worker, struct connection *connection)
{
    if (connection->deferred_previous)
        connection->deferred_previous->deferred_next = connection->deferred_next;
    else
        worker->deferred_first = connection->deferred_next;
    if (connection->deferred_next)
        connection->deferred_next->deferred_previous = connection->deferred_previous;
    else
        worker->deferred_last = connection->deferred_previous;
    connection->deferred_previous = connection->deferred_next = NULL;
}

static void deferred_append(struct worker *worker, struct connection *connection)
{
    connection->deferred_previous = worker->deferred_last;
    connection->deferred_next = NULL;
    if (worker->deferred_last)
        worker->deferred_last->deferred_next = connection;
    else
        worker->deferred_first = connection;
    worker->deferred_last = connection;
}

/* Oldest first: only for a connection due at the next iteration. */
static void deferred_prepend(struct worker *worker, struct connection *connection)
{
    connection->deferred_previous = NULL;
    connection->deferred_next = worker->deferred_first;
    if (worker->deferred_first)
        worker->deferred_first->deferred_previous = connection;
    else
        worker->deferred_last = connection;
    worker->deferred_first = connection;
}

/* Arm the client's poll only after the worker has waited once more (at the
 * latest at the next timer-wheel tick). Deferring again restarts the count.
 * already_waited: the wait that just returned counts as that wait. */
static void defer_client_poll_since(struct worker *worker, struct connection *connection,
                                    bool already_waited)
{
    struct relay_direction *direction = &connection->to_upstream;
    if (direction->state == RELAY_DEFERRED)
        deferred_unlink(worker, connection);
    give_back_pipe(worker, direction);
    direction->state = RELAY_DEFERRED;
    connection->deferred_at_wait = worker->waits - (already_waited ? 1 : 0);
    if (already_waited)
        deferred_prepend(worker, connection);
    else
        deferred_append(worker, connection);
}

static void defer_client_poll(struct worker *worker, struct connection *connection)
{
    defer_client_poll_since(worker, connection, false);
}

void relay_arm_deferred_polls(struct worker *worker)
{
    struct connection *connection;
    while ((connection = worker->deferred_first) && connection->deferred_at_wait < worker->waits) {
        deferred_unlink(worker, connection);
        connection->to_upstream.state = RELAY_WAIT_END;
        worker_arm_end_peek(worker, connection, RING_TAG_TO_UPSTREAM, connection->client_fd);
    }
}

void relay_forget_deferred(struct worker *worker, struct connection *connection)
{
    if (connection->to_upstream.state == RELAY_DEFERRED)
        deferred_unlink(worker, connection);
}

static void wait_readable(struct worker *worker, struct connection *connection,
                          const struct relay_side *side)
{
    give_back_pipe(worker, side->direction);
    if (side->direction->defer_next_poll) {
        side->direction->defer_next_poll = false;
        defer_client_poll(worker, connection);
        return;
    }
    arm_source_poll(worker, connection, side);
}

/* The destination's peer has half-closed: wait in the worker's epoll set
 * (worker.c says why). */
static void wait_in_epoll(struct worker *worker, struct connection *connection,
                          const struct relay_side *side)
{
    if (!worker_wait_writable(worker, connection, side->tag, side->destination_fd,
                              &side->direction->waits_in_epoll))
        connection_close(worker, connection, OUTCOME_NO_RESOURCES);
}

static void wait_writable(struct worker *worker, struct connection *connection,
                          const struct relay_side *side)
{
    side->direction->state = RELAY_WAIT_WRITABLE;
    if (!side->direction->waits_in_epoll) {
        worker_arm_poll(worker, connection, side->tag, side->destination_fd, POLLOUT);
        return;
    }
    wait_in_epoll(worker, connection, side);
}

static void finish_direction(struct worker *worker, struct connection *connection,
                             const struct relay_side *side)
{
    give_back_pipe(worker, side->direction);
    side->direction->state = RELAY_DONE;
    /* Both ends said end of stream and both receive queues are empty: the
     * close() that follows sends the last FIN, a shutdown() first would be
     * one more system call for nothing. */
    if (side->other->state == RELAY_DONE) {
        connection_close(worker, connection, OUTCOME_DONE);
        return;
    }
    /* Half-close: pass the FIN on; the other direction keeps flowing. */
    shutdown(side->destination_fd, SHUT_WR);
    /* The server ended first: its client most often answers with its own
     * FIN once it has read the last bytes; look for it at the next wake-up
     * rather than be woken for it alone. */
    if (side->other->state == RELAY_DEFERRED)
        defer_client_poll(worker, connection);
}

static bool would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK; }

/* recv(2), retried when a signal interrupts it. */
static ssize_t receive(int fd, void *buffer, size_t length, int flags)
{
    ssize_t got;
    do
        got = recv(fd, buffer, length, flags);
    while (got < 0 && errno == EINTR);
    return got;
}

/* No pipe to be had: peek up to one buffer from the source, send what the
 * destination takes, then discard exactly that much from the source. What
 * was not sent stays queued in the source socket for the next event. */
static void copy_without_pipe(struct worker *worker, struct connection *connection,
                              const struct relay_side *side)
{
    ssize_t peeked = receive(side->source_fd, worker->peek_buffer, worker->peek_buffer_size, MSG_PEEK);
    if (peeked == 0) {
        finish_direction(worker, connection, side);
        return;
    }
    if (peeked < 0) {
        if (would_block())
            wait_readable(worker, connection, side);
        else
            connection_close(worker, connection, side->source_error);
        return;
    }
    ssize_t sent;
    do
        sent = send(side->destination_fd, worker->peek_buffer, (size_t)peeked, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        if (would_block())
            wait_writable(worker, connection, side);
        else
            connection_close(worker, connection, side->destination_error);
        return;
    }
    /* Take the sent bytes out of the source. They are queued, so this
     * cannot block or come up short. Into the buffer they are already in:
     * MSG_TRUNC without a buffer would discard them without a copy, but
     * only TCP does that; a unix: socket answers EFAULT and keeps them,
     * and the same bytes would be sent again and again. */
    ssize_t taken = receive(side->source_fd, worker->peek_buffer, (size_t)sent, MSG_DONTWAIT);
    if (taken != sent) {
        connection_close(worker, connection, side->source_error);
        return;
    }
    connection_count_bytes(worker, connection, side->direction, (uint64_t)sent);
    connection->last_activity_ms = worker->now_ms;
    if (sent < peeked)
        wait_writable(worker, connection, side);
    else
        wait_readable(worker, connection, side);
}

static ssize_t splice_into_pipe(int source_fd, const struct pipe_pair *pipe, size_t length)
{
    ssize_t moved;
    do
        moved = splice(source_fd, NULL, pipe->write_fd, NULL, length,
                       SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    while (moved < 0 && errno == EINTR);
    return moved;
}

/* How far a fill reads past a short read (see the header). */
enum read_past_short {
    READ_PAST_SHORT_NO,      /* wait for the poll */
    READ_PAST_SHORT_ONCE,    /* the direction's one look for an end of stream, if not spent */
    READ_PAST_SHORT_TO_END,  /* POLLRDHUP: everything up to the FIN is queued */
};

/* True when the source's next in-band byte is behind a TCP urgent mark,
 * where splice stops (see the header). */
static bool stopped_at_urgent_mark(int fd)
{
    int at_mark = 0;
    return ioctl(fd, SIOCATMARK, &at_mark) == 0 && at_mark;
}

/* After a short read: read on into the rest of the pipe, to meet the end
 * of stream now rather than after another poll. Returns the bytes added;
 * an end of stream or an error is noted for after the pipe is written out
 * (the bytes before it still go); EAGAIN is left for the next fill. The
 * end is looked for with a one-byte peek, which steps over an urgent mark
 * where a splice would stop (see the header); only if bytes are there is
 * there a splice. */
static ssize_t read_on(const struct relay_side *side, size_t room)
{
    char byte;
    ssize_t peeked = receive(side->source_fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (peeked == 0) {
        side->direction->source_end = RELAY_SOURCE_ENDED;
        return 0;
    }
    if (peeked < 0) {
        if (!would_block())
            side->direction->source_end = RELAY_SOURCE_FAILED;
        return 0;
    }
    ssize_t more = splice_into_pipe(side->source_fd, &side->direction->pipe, room);
    return more > 0 ? more : 0; /* 0 or EAGAIN here: a mark, for the next fill */
}

/* Fill the empty pipe from the source. Returns bytes read, 0 when the
 * direction is finished or waiting (or moved its bytes without a pipe),
 * -1 when the connection was closed;
 * *filled_up tells whether the read filled the whole pipe. */
static ssize_t fill_pipe(struct worker *worker, struct connection *connection,
                         const struct relay_side *side, enum read_past_short past_short,
                         bool *filled_up)
{
    struct relay_direction *direction = side->direction;
    if (direction->pipe.read_fd < 0 && !pipe_pool_get(&worker->pipes, &direction->pipe)) {
        copy_without_pipe(worker, connection, side);
        return 0;
    }
    uint32_t capacity = direction->pipe.capacity;
    ssize_t moved = splice_into_pipe(side->source_fd, &direction->pipe, capacity);
    bool look_once = past_short == READ_PAST_SHORT_ONCE && !direction->looked_for_end;
    if (moved > 0 && moved < (ssize_t)capacity && (look_once || past_short == READ_PAST_SHORT_TO_END)) {
        moved += read_on(side, capacity - (size_t)moved);
        if (look_once && direction->source_end == RELAY_SOURCE_OPEN)
            direction->looked_for_end = true;
    }
    *filled_up = moved == (ssize_t)capacity;
    if (*filled_up)
        pipe_pool_grow(&worker->pipes, &direction->pipe, worker->now_ms);
    if (moved > 0) {
        direction->pipe_bytes = (uint32_t)moved;
        connection->last_activity_ms = worker->now_ms;
        return moved;
    }
    if (moved < 0 && !would_block()) {
        connection_close(worker, connection, side->source_error);
        return -1;
    }
    /* End of stream (0) or nothing queued (EAGAIN), unless an urgent mark
     * stopped the splice. */
    if (stopped_at_urgent_mark(side->source_fd)) {
        copy_without_pipe(worker, connection, side);
        return 0;
    }
    if (moved == 0) {
        finish_direction(worker, connection, side);
        return 0;
    }
    wait_readable(worker, connection, side);
    return 0;
}

/* Write the pipe out. Returns true when it is empty. */
static bool drain_pipe(struct worker *worker, struct connection *connection,
                       const struct relay_side *side)
{
    struct relay_direction *direction = side->direction;
    /* The last bytes wait in the socket for the FIN that follows at once. */
    unsigned int more = direction->source_end == RELAY_SOURCE_ENDED ? SPLICE_F_MORE : 0;
    for (;;) {
        ssize_t moved = splice(direction->pipe.read_fd, NULL, side->destination_fd, NULL,
                               direction->pipe_bytes, SPLICE_F_NONBLOCK | SPLICE_F_MOVE | more);
        if (moved > 0) {
            /* Counted as delivered, and as activity: a slow reader can take
             * longer than idle_timeout to empty one pipe while bytes move. */
            direction->pipe_bytes -= (uint32_t)moved;
            connection_count_bytes(worker, connection, direction, (uint64_t)moved);
            connection->last_activity_ms = worker->now_ms;
            if (direction->pipe_bytes == 0)
                return true;
            /* A partial write means the destination's buffer is full. */
            wait_writable(worker, connection, side);
            return false;
        }
        if (moved < 0 && errno == EINTR)
            continue;
        if (moved == 0 || would_block()) {
            wait_writable(worker, connection, side);
            return false;
        }
        connection_close(worker, connection, side->destination_error);
        return false;
    }
}

/* Move what the source has, up to RELAY_BUDGET bytes. */
static void pump(struct worker *worker, struct connection *connection,
                 const struct relay_side *side, enum read_past_short past_short)
{
    bool source_hung_up = past_short == READ_PAST_SHORT_TO_END;
    for (uint32_t moved = 0; moved < RELAY_BUDGET;) {
        bool filled_up = true;
        uint32_t in_pipe = side->direction->pipe_bytes;
        if (in_pipe == 0) {
            ssize_t filled = fill_pipe(worker, connection, side, past_short, &filled_up);
            if (filled <= 0)
                return;
            in_pipe = (uint32_t)filled;
        }
        moved += in_pipe;
        if (!drain_pipe(worker, connection, side))
            return;
        if (side->direction->source_end == RELAY_SOURCE_ENDED) {
            finish_direction(worker, connection, side);
            return;
        }
        if (side->direction->source_end == RELAY_SOURCE_FAILED) {
            connection_close(worker, connection, side->source_error);
            return;
        }
        if (!filled_up && !source_hung_up) {
            /* The source is most likely drained: wait instead of a splice
             * that would only say EAGAIN. Only likely: a pipe holds 16
             * buffers, one per received segment, so many small segments
             * also give a short read; the level-triggered poll then fires
             * at once. Never conclude "end of stream" from a short read. */
            wait_readable(worker, connection, side);
            return;
        }
    }
    /* Fairness: let other connections run; the poll fires again at once. */
    wait_readable(worker, connection, side);
}

void relay_arm_first_read(struct worker *worker, struct connection *connection)
{
    struct relay_side to_client = side_of(connection, RING_TAG_TO_CLIENT);
    arm_source_poll(worker, connection, &to_client);
}

void relay_start(struct worker *worker, struct connection *connection, bool client_waits)
{
    connection->state = CONNECTION_RELAY;
    connection->last_activity_ms = worker->now_ms;
    timer_wheel_arm(&worker->timers, &connection->timer, worker->now_ms + connection->idle_timeout_ms);
    /* Linked behind the connect, the server's read and the hello's send
     * are queued already (relay_arm_first_read). */
    if (connection->connect_linked) {
        connection->to_upstream.defer_next_poll = client_waits;
        return;
    }
    struct relay_side to_client = side_of(connection, RING_TAG_TO_CLIENT);
    wait_readable(worker, connection, &to_client);
    /* The ClientHello is queued in the client socket: move it now rather
     * than after a poll that would fire at once. (A plain-forward client
     * may have sent nothing: then the splice says EAGAIN and a poll is
     * armed.) No look for an end of stream here: a client waits for the
     * server's answer after its hello. */
    struct relay_side to_upstream = side_of(connection, RING_TAG_TO_UPSTREAM);
    connection->to_upstream.defer_next_poll = client_waits;
    /* A hello taken into a buffer is sent from there: see relay_hello_sent. */
    if (hello_forward_send(worker, connection))
        return;
    pump(worker, connection, &to_upstream, READ_PAST_SHORT_NO);
}

void relay_hello_sent(struct worker *worker, struct connection *connection)
{
    struct relay_side to_upstream = side_of(connection, RING_TAG_TO_UPSTREAM);
    if (!connection->to_upstream.defer_next_poll) {
        wait_readable(worker, connection, &to_upstream);
        return;
    }
    /* The send completed inside its submission, and the wait after it
     * waited for one completion more (worker_expect_inline_completion):
     * that was the wait a deferred poll waits for, so it is due now. */
    connection->to_upstream.defer_next_poll = false;
    defer_client_poll_since(worker, connection, true);
}

void relay_on_ready(struct worker *worker, struct connection *connection, enum ring_tag tag,
                    int result)
{
    struct relay_side side = side_of(connection, tag);
    /* Not a readiness: the hello's send from its buffer. */
    if (side.direction->state == RELAY_SENDING_HELLO) {
        hello_forward_on_sent(worker, connection, result);
        return;
    }
    if (side.direction->state == RELAY_WAIT_END && result == -EAGAIN) {
        arm_source_poll(worker, connection, &side);
        return;
    }
    if (result < 0) {
        connection_close(worker, connection, side.source_error);
        return;
    }
    if (side.direction->state == RELAY_WAIT_END && result == 0) {
        finish_direction(worker, connection, &side);
        return;
    }
    /* The destination's peer has half-closed and the destination cannot
     * take bytes: io_uring's poll said POLLRDHUP alone and would say it at
     * once again; wait in the worker's epoll set instead (worker.c). */
    if (side.direction->state == RELAY_WAIT_WRITABLE && !(result & (POLLOUT | POLLERR | POLLHUP))) {
        wait_in_epoll(worker, connection, &side);
        return;
    }
    enum read_past_short past_short = READ_PAST_SHORT_NO;
    if (side.direction->state == RELAY_WAIT_END)
        past_short = READ_PAST_SHORT_ONCE;
    else if (side.direction->state == RELAY_WAIT_READABLE)
        past_short = (result & POLLRDHUP) ? READ_PAST_SHORT_TO_END : READ_PAST_SHORT_ONCE;
    pump(worker, connection, &side, past_short);
}

void relay_on_idle_timer(struct worker *worker, struct connection *connection)
{
    uint64_t deadline = connection->last_activity_ms + connection->idle_timeout_ms;
    if (worker->now_ms >= deadline) {
        connection_close(worker, connection, OUTCOME_IDLE_TIMEOUT);
        return;
    }
    /* Activity moved the deadline: re-arming lazily here keeps the hot path
     * free of timer operations. */
    timer_wheel_arm(&worker->timers, &connection->timer, deadline);
}
