/*
 * connection.c - connection slab, teardown and the rule that a connection's
 * memory outlives every operation it submitted.
 *
 * Slab: connections are carved from 256-entry chunks and recycled through a
 * free list; chunks are returned only when the worker exits.
 */
#include "connection.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hello_forward.h"
#include "log.h"
#include "relay.h"
#include "worker.h"

#define CHUNK_CONNECTIONS 256

struct connection_slab_chunk {
    struct connection_slab_chunk *next;
    struct connection connections[CHUNK_CONNECTIONS];
};

static const char *const outcome_names[OUTCOME_COUNT] = {
    [OUTCOME_DONE] = "done",
    [OUTCOME_CLIENT_CLOSED] = "client_closed",
    [OUTCOME_INVALID_HELLO] = "invalid_hello",
    [OUTCOME_HELLO_TOO_LARGE] = "hello_too_large",
    [OUTCOME_PREREAD_TIMEOUT] = "preread_timeout",
    [OUTCOME_NO_ROUTE] = "no_route",
    [OUTCOME_CONNECT_FAILED] = "connect_failed",
    [OUTCOME_IDLE_TIMEOUT] = "idle_timeout",
    [OUTCOME_CLIENT_ERROR] = "client_error",
    [OUTCOME_UPSTREAM_ERROR] = "upstream_error",
    [OUTCOME_NO_RESOURCES] = "no_resources",
    [OUTCOME_SHUTDOWN] = "shutdown",
    [OUTCOME_INVALID_PROXY_HEADER] = "invalid_proxy_header",
    [OUTCOME_DENIED] = "denied",
    [OUTCOME_CLIENT_LIMIT] = "client_limit",
    [OUTCOME_SOURCE_FAILED] = "source_failed",
};

const char *connection_outcome_name(enum connection_outcome outcome)
{
    return outcome < OUTCOME_COUNT ? outcome_names[outcome] : "unknown";
}

void connection_slab_init(struct connection_slab *slab)
{
    slab->chunks = NULL;
    slab->free_list = NULL;
}

void connection_slab_destroy(struct connection_slab *slab)
{
    while (slab->chunks) {
        struct connection_slab_chunk *next = slab->chunks->next;
        free(slab->chunks);
        slab->chunks = next;
    }
    slab->free_list = NULL;
}

static bool slab_grow(struct connection_slab *slab)
{
    struct connection_slab_chunk *chunk = calloc(1, sizeof *chunk);
    if (!chunk)
        return false;
    chunk->next = slab->chunks;
    slab->chunks = chunk;
    for (size_t i = CHUNK_CONNECTIONS; i-- > 0;) {
        chunk->connections[i].state = CONNECTION_FREE;
        chunk->connections[i].next_free = slab->free_list;
        slab->free_list = &chunk->connections[i];
    }
    return true;
}

static void relay_direction_reset(struct relay_direction *direction)
{
    direction->pipe.read_fd = direction->pipe.write_fd = -1;
    direction->pipe_bytes = 0;
    direction->state = RELAY_WAIT_READABLE;
    direction->source_end = RELAY_SOURCE_OPEN;
    direction->looked_for_end = false;
    direction->waits_in_epoll = false;
    direction->bytes = 0;
}

struct connection *connection_new(struct worker *worker, int client_fd)
{
    struct connection_slab *slab = &worker->connections;
    if (!slab->free_list && !slab_grow(slab))
        return NULL;
    struct connection *connection = slab->free_list;
    slab->free_list = connection->next_free;
    memset(connection, 0, sizeof *connection);
    connection->client_fd = client_fd;
    connection->upstream_fd = -1;
    connection->state = CONNECTION_PREREAD;
    connection->last_activity_ms = worker->now_ms;
    relay_direction_reset(&connection->to_upstream);
    relay_direction_reset(&connection->to_client);
    connection->route_metrics = metrics_unrouted(&worker->metrics);
    worker->open_connections++;
    worker->allocated_connections++;
    counter_add(&worker->counters.active, 1);
    return connection;
}

static void release_memory(struct worker *worker, struct connection *connection)
{
    hello_forward_release(worker, connection);
    connection->state = CONNECTION_FREE;
    connection->next_free = worker->connections.free_list;
    worker->connections.free_list = connection;
    worker->allocated_connections--;
}

static void release_pipe(struct worker *worker, struct relay_direction *direction)
{
    if (direction->pipe.read_fd < 0)
        return;
    /* A pipe that may still hold bytes must never go back to the pool. */
    if (direction->pipe_bytes == 0)
        pipe_pool_put(&worker->pipes, direction->pipe);
    else
        pipe_pool_discard(&worker->pipes, direction->pipe);
    direction->pipe.read_fd = direction->pipe.write_fd = -1;
    direction->pipe_bytes = 0;
}

static void cancel_pending(struct worker *worker, struct connection *connection)
{
    if (connection->pending_ops & CONNECTION_OP_STEP)
        worker_cancel(worker, connection, RING_TAG_STEP);
    if (connection->pending_ops & CONNECTION_OP_TO_UPSTREAM)
        worker_cancel(worker, connection, RING_TAG_TO_UPSTREAM);
    if (connection->pending_ops & CONNECTION_OP_TO_CLIENT)
        worker_cancel(worker, connection, RING_TAG_TO_CLIENT);
    if (connection->pending_ops & CONNECTION_OP_HELLO)
        worker_cancel(worker, connection, RING_TAG_HELLO);
}

void connection_unpin_snapshot(struct worker *worker, struct connection *connection)
{
    snapshot_unpin(connection->snapshot, worker->index);
    connection->snapshot = NULL;
    connection->upstream = NULL;
    connection->server = NULL;
}

void connection_close(struct worker *worker, struct connection *connection,
                      enum connection_outcome outcome)
{
    if (connection->state == CONNECTION_CLOSING || connection->state == CONNECTION_FREE)
        return;
    log_debug("worker %u: connection fd %d closed: %s (up %llu B, down %llu B)", worker->index,
              connection->client_fd, connection_outcome_name(outcome),
              (unsigned long long)connection->to_upstream.bytes,
              (unsigned long long)connection->to_client.bytes);
    access_log_end(worker, connection, connection_outcome_name(outcome));
    relay_forget_deferred(worker, connection);
    connection->state = CONNECTION_CLOSING;
    timer_wheel_disarm(&worker->timers, &connection->timer);
    cancel_pending(worker, connection);
    worker_forget_writable(worker, connection->client_fd, &connection->to_client.waits_in_epoll);
    worker_forget_writable(worker, connection->upstream_fd, &connection->to_upstream.waits_in_epoll);
    /* Pending polls hold their own file references: closing the numbers
     * is safe, the sockets go away when the cancellations complete. */
    worker_queue_close(worker, connection->client_fd);
    if (connection->upstream_fd >= 0)
        worker_queue_close(worker, connection->upstream_fd);
    connection->client_fd = connection->upstream_fd = -1;
    if (connection->snapshot) {
        /* Still connecting: a connect or setsockopt queued in this batch may
         * point into the snapshot. Unpinned, it may be freed once this
         * worker declares quiescence, before the loop's next submission. */
        worker_submit_queued(worker);
        connection_unpin_snapshot(worker, connection);
    }
    release_pipe(worker, &connection->to_upstream);
    release_pipe(worker, &connection->to_client);
    metrics_add(&connection->route_metrics->outcomes[outcome], 1);
    upstream_health_release(&connection->held_server);
    if (connection->server_metrics)
        metrics_add(&connection->server_metrics->closed, 1);
    if (connection->client_counted) {
        client_counts_release(worker->client_counts, &connection->client_address);
        connection->client_counted = false;
    }
    counter_add(&worker->counters.active, (uint64_t)-1);
    worker->open_connections--;
    if (connection->pending_ops == 0)
        release_memory(worker, connection);
}

void connection_count_bytes(struct worker *worker, struct connection *connection,
                            struct relay_direction *direction, uint64_t bytes)
{
    direction->bytes += bytes;
    /* Relaxed stores of counters only this worker writes: no lock, no
     * shared cache line, a few instructions per splice. */
    if (direction == &connection->to_upstream)
        metrics_add(&connection->route_metrics->bytes_to_upstream, bytes);
    else
        metrics_add(&connection->route_metrics->bytes_to_client, bytes);
}

bool connection_op_completed(struct worker *worker, struct connection *connection,
                             enum connection_op op)
{
    connection->pending_ops &= (uint8_t)~op;
    if (connection->state != CONNECTION_CLOSING)
        return true;
    if (connection->pending_ops == 0)
        release_memory(worker, connection);
    return false;
}

void connection_close_all(struct worker *worker, enum connection_outcome outcome)
{
    for (struct connection_slab_chunk *chunk = worker->connections.chunks; chunk; chunk = chunk->next) {
        for (size_t i = 0; i < CHUNK_CONNECTIONS; i++) {
            struct connection *connection = &chunk->connections[i];
            if (connection->state != CONNECTION_FREE && connection->state != CONNECTION_CLOSING)
                connection_close(worker, connection, outcome);
        }
    }
}
