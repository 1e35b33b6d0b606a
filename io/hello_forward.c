/*
 * hello_forward.c - the ClientHello's way to the upstream through io_uring.
 *
 * Preread peeked the hello, so its bytes are queued in the client socket.
 * When routing has chosen an upstream, a recv takes them into a buffer in
 * the submission that also carries the connect; when the connect has
 * completed, a send writes them to the upstream (to a server on this host,
 * linked behind the connect in that same submission: io/connect.c). The
 * relay then starts with the hello already sent, without the two splice(2)
 * calls and the pipe it would otherwise spend on it (bench/NOTES.md, "the
 * hello through io_uring").
 *
 * Both operations are non-blocking (MSG_DONTWAIT: io_uring then never
 * waits for readiness, it completes them inside the submission) and
 * all-or-nothing (MSG_WAITALL: a short transfer is reported as a failure).
 * Their completions are therefore certain to be there when the submission
 * returns, and the worker asks its wait for one completion more per such
 * operation (worker_expect_inline_completion): handling them does not cost
 * a wake-up of its own. The recv's bytes are queued, so it cannot come up
 * short; a fresh connection's send buffer takes a hello of this size, so a
 * short or refused send means a broken upstream and closes the connection.
 *
 * A connection holds a buffer (io/hello_buffer_pool.c) only from routing
 * to the send's completion (connecting, never relaying or idle) and gives
 * it back then or, on every other path, when its memory is released: no
 * operation that could still touch the buffer is pending by then. A failed
 * connect keeps the hello in the buffer for the next server.
 *
 * Not used, and the relay moves the hello as before, when a PROXY protocol
 * header is read or written (it must precede the hello), when the queued
 * bytes do not fit a buffer, or when HELLO_BUFFER_POOL_OUT_MAX are out.
 */
#include "hello_forward.h"

#include <sys/socket.h>

#include "../core/proxy_protocol.h"
#include "relay.h"
#include "worker.h"

static void give_back(struct worker *worker, struct connection *connection)
{
    hello_buffer_pool_put(&worker->hello_buffers, connection->hello_buffer);
    connection->hello_buffer = NULL;
}

static bool may_take(const struct connection *connection)
{
    return connection->hello_length > 0 && connection->hello_length <= HELLO_BUFFER_SIZE &&
           connection->proxy_header == PROXY_HEADER_NONE &&
           connection->upstream->proxy_protocol == PROXY_PROTOCOL_OFF;
}

void hello_forward_take(struct worker *worker, struct connection *connection)
{
    if (!may_take(connection) ||
        !(connection->hello_buffer = hello_buffer_pool_get(&worker->hello_buffers, worker->now_ms)))
        return;
    struct io_uring_sqe *sqe = worker_sqe(worker);
    io_uring_prep_recv(sqe, connection->client_fd, connection->hello_buffer,
                       connection->hello_length, MSG_DONTWAIT | MSG_WAITALL);
    worker_track_op(sqe, connection, RING_TAG_HELLO);
    worker_expect_inline_completion(worker);
}

static struct io_uring_sqe *queue_send(struct worker *worker, struct connection *connection)
{
    struct io_uring_sqe *sqe = worker_sqe(worker);
    io_uring_prep_send(sqe, connection->upstream_fd, connection->hello_buffer,
                       connection->hello_length, MSG_DONTWAIT | MSG_WAITALL | MSG_NOSIGNAL);
    worker_track_op(sqe, connection, RING_TAG_TO_UPSTREAM);
    connection->to_upstream.state = RELAY_SENDING_HELLO;
    worker_expect_inline_completion(worker);
    return sqe;
}

bool hello_forward_send(struct worker *worker, struct connection *connection)
{
    if (!connection->hello_buffer)
        return false;
    queue_send(worker, connection);
    return true;
}

/* Linked in turn: a short or failed send cancels the read behind it (a
 * short transfer breaks a link when MSG_WAITALL is set). */
void hello_forward_send_linked(struct worker *worker, struct connection *connection)
{
    queue_send(worker, connection)->flags |= IOSQE_IO_LINK;
}

/* The recv's completion is handled before the connect's: it was posted
 * inside the submission that carried the connect, and completions are
 * handled in order. So the buffer is full whenever the send is queued. */
void hello_forward_on_taken(struct worker *worker, struct connection *connection, int result)
{
    if (result != (int)connection->hello_length)
        connection_close(worker, connection, result == 0 ? OUTCOME_CLIENT_CLOSED : OUTCOME_CLIENT_ERROR);
}

void hello_forward_on_sent(struct worker *worker, struct connection *connection, int result)
{
    if (result != (int)connection->hello_length) {
        connection_close(worker, connection, OUTCOME_UPSTREAM_ERROR);
        return;
    }
    give_back(worker, connection);
    connection_count_bytes(worker, connection, &connection->to_upstream, (uint64_t)result);
    connection->last_activity_ms = worker->now_ms;
    relay_hello_sent(worker, connection);
}

void hello_forward_release(struct worker *worker, struct connection *connection)
{
    if (connection->hello_buffer)
        give_back(worker, connection);
}
