/*
 * preread.c - accumulate the ClientHello with non-blocking recv() after a
 * readiness poll, and ask core/clienthello whether it is complete.
 *
 * A client that has sent nothing holds no buffer: the buffer is taken when
 * bytes arrive and given back if a read finds nothing. Bytes that follow the
 * hello in the same reads are kept and forwarded with it.
 */
#include "preread.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "../core/clienthello.h"
#include "connect.h"

void preread_start(struct worker *worker, struct connection *connection)
{
    const struct snapshot_listener *listener = connect_listener_of(worker, connection);
    if (listener && !listener->routes) {
        /* Plain forwarding: nothing to read before connecting. */
        connect_upstream(worker, connection, listener->upstream);
        return;
    }
    const struct snapshot_settings *settings = &worker->snapshot->settings;
    timer_wheel_arm(&worker->timers, &connection->timer,
                    worker->now_ms + settings->preread_timeout_ms);
    /* The hello usually arrives with the handshake's last ACK: try at once. */
    preread_on_readable(worker, connection);
}

static void give_back_empty_buffer(struct worker *worker, struct connection *connection)
{
    buffer_pool_put(&worker->preread_buffers, connection->preread, connection->preread_capacity);
    connection->preread = NULL;
    connection->preread_capacity = 0;
}

/* Returns false when the connection was closed. */
static bool receive_available(struct worker *worker, struct connection *connection)
{
    for (;;) {
        uint32_t room = connection->preread_capacity - connection->preread_length;
        if (room == 0)
            return true;
        ssize_t received = recv(connection->client_fd,
                                connection->preread + connection->preread_length, room, 0);
        if (received > 0) {
            connection->preread_length += (uint32_t)received;
            /* A short read drained the socket; the level-triggered poll
             * catches anything that arrives after it. */
            if ((uint32_t)received < room)
                return true;
            continue;
        }
        if (received == 0) {
            connection_close(worker, connection, OUTCOME_CLIENT_CLOSED);
            return false;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return true;
        connection_close(worker, connection, OUTCOME_CLIENT_ERROR);
        return false;
    }
}

static void wait_for_more(struct worker *worker, struct connection *connection)
{
    worker_arm_poll(worker, connection, RING_TAG_STEP, connection->client_fd, POLLIN | POLLRDHUP);
}

void preread_on_readable(struct worker *worker, struct connection *connection)
{
    if (!connection->preread) {
        connection->preread = buffer_pool_get(&worker->preread_buffers);
        if (!connection->preread) {
            connection_close(worker, connection, OUTCOME_NO_RESOURCES);
            return;
        }
        connection->preread_capacity = (uint32_t)worker->preread_buffers.buffer_size;
    }
    if (!receive_available(worker, connection))
        return;
    if (connection->preread_length == 0) {
        give_back_empty_buffer(worker, connection);
        wait_for_more(worker, connection);
        return;
    }
    struct clienthello_info info;
    size_t scratch = worker->parse_scratch_size < connection->preread_capacity
                         ? worker->parse_scratch_size : connection->preread_capacity;
    enum clienthello_status status = clienthello_parse(connection->preread,
                                                       connection->preread_length,
                                                       worker->parse_scratch, scratch, &info);
    switch (status) {
    case CLIENTHELLO_NEED_MORE:
        if (connection->preread_length == connection->preread_capacity)
            connection_close(worker, connection, OUTCOME_HELLO_TOO_LARGE);
        else
            wait_for_more(worker, connection);
        return;
    case CLIENTHELLO_FOUND:
    case CLIENTHELLO_NO_SNI:
        connect_route(worker, connection, info.server_name, info.server_name_len, info.alpn,
                      info.alpn_len);
        return;
    case CLIENTHELLO_NOT_TLS:
        connect_route(worker, connection, "", 0, NULL, 0);
        return;
    case CLIENTHELLO_INVALID:
        connection_close(worker, connection, OUTCOME_INVALID_HELLO);
        return;
    }
}
