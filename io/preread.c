/*
 * preread.c - wait until the whole ClientHello is in the client socket,
 * without taking it out: peek (recv MSG_PEEK) into the worker's one peek
 * buffer, ask core/clienthello whether it is complete, then hand the server
 * name to connect. The hello stays queued in the socket until an upstream
 * is chosen (then io/hello_forward.c takes it, or the relay moves it), so
 * no connection holds a user-space buffer while its hello arrives: an idle
 * or half-open connection costs its slab entry and its sockets, nothing
 * more.
 *
 * A hello that is not complete yet: SO_RCVLOWAT is raised to one byte more
 * than is queued, so the level-triggered poll fires when more bytes arrive
 * (or at end of stream or error) instead of at once for the bytes already
 * seen. It is set back to 1 before the relay starts.
 *
 * Linux also reports the socket readable below the mark while it is short
 * of receive memory for it (its queue past 7/8 of the receive buffer, as
 * a hello in many small segments fills it, or every socket while the
 * stack is under TCP memory pressure) or its receive window is down to one
 * segment (tcp_epollin_ready), and then at each new poll at once.
 * So a wake-up with no new bytes is the end of the stream only when the
 * poll says so (POLLRDHUP, POLLHUP, POLLERR); otherwise the poll is armed
 * again some ticks later, each wait twice the last up to RETRY_WAIT_MAX_MS,
 * until the hello is complete or preread_timeout passes.
 *
 * A client a listener trusts to send a PROXY protocol header (see
 * io/proxy_header.c) is peeked the same way: the header first, then the
 * hello after it; both stay queued until the upstream is connected.
 */
#include "preread.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "../core/clienthello.h"
#include "admission.h"
#include "connect.h"
#include "keepalive.h"
#include "proxy_header.h"

#define RETRY_WAIT_MAX_MS 160

/* preread_timeout counts from the accept (connection_new). */
static uint64_t deadline_of(const struct connection *connection)
{
    const struct snapshot_listener *listener = connect_listener_of(connection);
    uint32_t timeout_ms = listener ? listener->preread_timeout_ms
                                   : connection->snapshot->settings.preread_timeout_ms;
    return connection->last_activity_ms + timeout_ms;
}

void preread_start(struct worker *worker, struct connection *connection)
{
    const struct snapshot_listener *listener = connect_listener_of(connection);
    if (!admission_at_accept(worker, connection, listener))
        return;
    /* Only for clients that are served; the values are in the snapshot the
     * connection pins. */
    if (listener)
        keepalive_queue(worker, connection->client_fd, &listener->keepalive);
    if (listener && !listener->routes && connection->proxy_header == PROXY_HEADER_NONE) {
        /* Plain forwarding: nothing to read before connecting. */
        connect_upstream(worker, connection, listener->upstream);
        return;
    }
    timer_wheel_arm(&worker->timers, &connection->timer, deadline_of(connection));
    /* The hello usually arrives with the handshake's last ACK: try at once. */
    preread_on_readable(worker, connection, 0);
}

static void wait_for_more(struct worker *worker, struct connection *connection)
{
    worker_arm_poll(worker, connection, RING_TAG_STEP, connection->client_fd, POLLIN | POLLRDHUP);
}

/* A wake-up below the low-water mark: poll again later, not at once (it
 * would fire at once again). The timer is the preread deadline meanwhile
 * too: preread_on_timer tells the two apart. */
static void retry_later(struct worker *worker, struct connection *connection)
{
    uint32_t wait_ms = (uint32_t)TIMER_WHEEL_TICK_MS << connection->hello_retries;
    if (wait_ms < RETRY_WAIT_MAX_MS)
        connection->hello_retries++;
    uint64_t retry_at = worker->now_ms + wait_ms;
    uint64_t deadline = deadline_of(connection);
    timer_wheel_arm(&worker->timers, &connection->timer, retry_at < deadline ? retry_at : deadline);
}

static bool set_receive_low_water(int fd, int bytes)
{
    return setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes) == 0;
}

/* Bytes queued in the client socket, copied into the peek buffer; 0 when
 * the connection was closed or has nothing queued yet (then a poll is armed). */
static size_t peek_queued(struct worker *worker, struct connection *connection, size_t limit)
{
    for (;;) {
        ssize_t peeked = recv(connection->client_fd, worker->peek_buffer, limit, MSG_PEEK);
        if (peeked > 0)
            return (size_t)peeked;
        if (peeked == 0) {
            connection_close(worker, connection, OUTCOME_CLIENT_CLOSED);
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            wait_for_more(worker, connection);
        else
            connection_close(worker, connection, OUTCOME_CLIENT_ERROR);
        return 0;
    }
}

/* The hello (or the PROXY header before it) is incomplete with `queued`
 * bytes in the socket; `too_large` is the outcome when no more may come.
 * `events` are the poll's that woke it (0: none). */
static void wait_for_rest(struct worker *worker, struct connection *connection, size_t queued,
                          size_t limit, enum connection_outcome too_large, unsigned events)
{
    if (queued >= limit) {
        connection_close(worker, connection, too_large);
        return;
    }
    if (queued <= connection->peeked_length) {
        if (events & (POLLRDHUP | POLLHUP | POLLERR))
            connection_close(worker, connection, OUTCOME_CLIENT_CLOSED); /* left mid-hello */
        else
            retry_later(worker, connection);
        return;
    }
    connection->hello_retries = 0;
    if (!set_receive_low_water(connection->client_fd, (int)queued + 1)) {
        connection_close(worker, connection, OUTCOME_CLIENT_ERROR);
        return;
    }
    connection->peeked_length = (uint32_t)queued;
    wait_for_more(worker, connection);
}

/* The relay must see every byte as readable again. False when closed. */
static bool done_waiting(struct worker *worker, struct connection *connection)
{
    if (connection->peeked_length > 0 && !set_receive_low_water(connection->client_fd, 1)) {
        connection_close(worker, connection, OUTCOME_CLIENT_ERROR);
        return false;
    }
    return true;
}

void preread_on_timer(struct worker *worker, struct connection *connection)
{
    uint64_t deadline = deadline_of(connection);
    if (worker->now_ms >= deadline) {
        connection_close(worker, connection, OUTCOME_PREREAD_TIMEOUT);
        return;
    }
    /* A retry after a wake-up below the low-water mark. */
    timer_wheel_arm(&worker->timers, &connection->timer, deadline);
    wait_for_more(worker, connection);
}

void preread_on_readable(struct worker *worker, struct connection *connection, unsigned events)
{
    size_t limit = connection->snapshot->settings.preread_max;
    if (limit > worker->peek_buffer_size)
        limit = worker->peek_buffer_size;
    size_t queued = peek_queued(worker, connection, limit);
    if (queued == 0)
        return;
    size_t skip = 0;
    struct proxy_protocol_header header;
    switch (proxy_header_read(connection, worker->peek_buffer, queued, &skip, &header)) {
    case PROXY_HEADER_READ_NEED_MORE:
        wait_for_rest(worker, connection, queued, limit, OUTCOME_INVALID_PROXY_HEADER, events);
        return;
    case PROXY_HEADER_READ_INVALID:
        connection_close(worker, connection, OUTCOME_INVALID_PROXY_HEADER);
        return;
    case PROXY_HEADER_READ_DONE:
        break;
    }
    const struct snapshot_listener *listener = connect_listener_of(connection);
    if (header.length != 0 && !admission_after_header(worker, connection, listener, &header))
        return;
    if (listener && !listener->routes) {
        if (done_waiting(worker, connection))
            connect_upstream(worker, connection, listener->upstream);
        return;
    }
    struct clienthello_info info;
    enum clienthello_status status = queued == skip ? CLIENTHELLO_NEED_MORE
                                   : clienthello_parse(worker->peek_buffer + skip, queued - skip,
                                                       worker->parse_scratch,
                                                       worker->parse_scratch_size, &info);
    if (status == CLIENTHELLO_NEED_MORE) {
        wait_for_rest(worker, connection, queued, limit, OUTCOME_HELLO_TOO_LARGE, events);
        return;
    }
    if (status == CLIENTHELLO_INVALID) {
        connection_close(worker, connection, OUTCOME_INVALID_HELLO);
        return;
    }
    if (!done_waiting(worker, connection))
        return;
    metrics_observe_preread(&worker->metrics, worker->now_ms - connection->last_activity_ms);
    connection->hello_length = (uint32_t)queued;
    if (status == CLIENTHELLO_NOT_TLS)
        connect_route_not_tls(worker, connection);
    else
        connect_route(worker, connection, info.server_name, info.server_name_as_sent, info.server_name_len,
                      info.alpn, info.alpn_len);
}
