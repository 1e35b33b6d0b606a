/*
 * hello.c - send the preread buffer to the upstream. A fresh socket's send
 * buffer nearly always takes it whole; if not, wait for POLLOUT and continue
 * where it stopped, so no byte is sent twice. Frees the preread buffer.
 */
#include "hello.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "relay.h"

void hello_forward(struct worker *worker, struct connection *connection)
{
    if (connection->state != CONNECTION_HELLO) {
        connection->state = CONNECTION_HELLO;
        connection->last_activity_ms = worker->now_ms;
        timer_wheel_arm(&worker->timers, &connection->timer,
                        worker->now_ms + worker->snapshot->settings.idle_timeout_ms);
    }
    while (connection->hello_sent < connection->preread_length) {
        ssize_t sent = send(connection->upstream_fd, connection->preread + connection->hello_sent,
                            connection->preread_length - connection->hello_sent, MSG_NOSIGNAL);
        if (sent > 0) {
            connection->hello_sent += (uint32_t)sent;
            continue;
        }
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            worker_arm_poll(worker, connection, RING_TAG_STEP, connection->upstream_fd, POLLOUT);
            return;
        }
        connection_close(worker, connection, OUTCOME_UPSTREAM_ERROR);
        return;
    }
    connection->to_upstream.bytes = connection->preread_length;
    if (connection->preread) {
        buffer_pool_put(&worker->preread_buffers, connection->preread, connection->preread_capacity);
        connection->preread = NULL;
    }
    relay_start(worker, connection);
}
