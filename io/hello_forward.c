/*
 * hello_forward.c - the ClientHello's way to the upstream through io_uring.
 *
 * Preread peeked the hello, so its bytes are queued in the client socket.
 * When routing has chosen an upstream, a recv takes them into a buffer in
 * the submission that also carries the connect; when the connect has
 * completed, a send writes them to the upstream. The relay then starts
 * with the hello already sent, without the two splice(2) calls and the
 * pipe it would otherwise spend on it (bench/NOTES.md, "the hello through
 * io_uring").
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
 * Owns the worker's hello buffers: pages of one mapping, handed out lowest
 * first; the pages of free buffers beyond HELLO_FORWARD_BUFFERS_KEPT are
 * given back to the kernel (madvise) within HELLO_FORWARD_TRIM_MS, so a
 * burst of connects leaves nothing in the RSS behind it (malloc would keep
 * it: the idle benchmark's 2 000 connections at once measured 2.3 KiB per
 * connection that way). A
 * connection holds one only from routing to the send's completion
 * (connecting, never relaying or idle) and gives it back then or, on every
 * other path, when its memory is released: no operation that could still
 * touch the buffer is pending by then. A failed connect keeps the hello in
 * the buffer for the next server.
 *
 * Not used, and the relay moves the hello as before, when a PROXY protocol
 * header is read or written (it must precede the hello), when the queued
 * bytes do not fit a buffer, or when HELLO_FORWARD_BUFFERS_OUT_MAX are out.
 */
#include "hello_forward.h"

#include <sys/mman.h>
#include <sys/socket.h>

#include "../core/proxy_protocol.h"
#include "relay.h"
#include "worker.h"

#define POOL_BYTES ((size_t)HELLO_FORWARD_BUFFERS_OUT_MAX * HELLO_FORWARD_BUFFER_SIZE)

/* Address space only: a page becomes resident when a hello is first
 * received into it. */
static bool pool_map(struct hello_buffer_pool *pool)
{
    if (pool->pages)
        return true;
    if (pool->unavailable)
        return false;
    void *pages = mmap(NULL, POOL_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (pages == MAP_FAILED) {
        pool->unavailable = true;
        return false;
    }
    pool->pages = pages;
    return true;
}

static uint8_t *buffer_get(struct hello_buffer_pool *pool, uint64_t now_ms)
{
    if (pool->out >= HELLO_FORWARD_BUFFERS_OUT_MAX || !pool_map(pool))
        return NULL;
    for (uint32_t word = 0; word < HELLO_FORWARD_BUFFERS_OUT_MAX / 64; word++) {
        if (pool->out_map[word] == UINT64_MAX)
            continue;
        uint32_t bit = (uint32_t)__builtin_ctzll(~pool->out_map[word]);
        uint32_t slot = word * 64 + bit;
        pool->out_map[word] |= 1ULL << bit;
        pool->out++;
        if (pool->out > pool->peak_out)
            pool->peak_out = pool->out;
        if (slot >= pool->resident)
            pool->resident = slot + 1;
        if (slot >= HELLO_FORWARD_BUFFERS_KEPT && pool->trim_at_ms == 0)
            pool->trim_at_ms = now_ms + HELLO_FORWARD_TRIM_MS;
        return pool->pages + (size_t)slot * HELLO_FORWARD_BUFFER_SIZE;
    }
    return NULL;
}

static void buffer_put(struct hello_buffer_pool *pool, uint8_t *buffer)
{
    uint32_t slot = (uint32_t)((size_t)(buffer - pool->pages) / HELLO_FORWARD_BUFFER_SIZE);
    pool->out_map[slot / 64] &= ~(1ULL << (slot % 64));
    pool->out--;
}

static uint32_t highest_out_plus_one(const struct hello_buffer_pool *pool)
{
    for (uint32_t word = HELLO_FORWARD_BUFFERS_OUT_MAX / 64; word-- > 0;) {
        if (pool->out_map[word])
            return word * 64 + 64 - (uint32_t)__builtin_clzll(pool->out_map[word]);
    }
    return 0;
}

/* Past the kept ones, buffers are used in bursts: their pages go back once
 * a burst is over, or it would stay in the worker's RSS for good. Not at
 * every release, and not down to what is out at the moment of a look: a
 * load that keeps hundreds out in waves (c=500) would then fault fresh
 * pages in all the time (measured: +10% CPU per connection releasing at
 * every release, +3% trimming to the moment's need every 100 ms). So a
 * look keeps as many as the most out since the last one: a burst's pages
 * go within two looks of its end. */
void hello_forward_pool_trim(struct hello_buffer_pool *pool, uint64_t now_ms)
{
    if (pool->trim_at_ms == 0 || now_ms < pool->trim_at_ms)
        return;
    uint32_t keep = highest_out_plus_one(pool);
    if (keep < pool->peak_out)
        keep = pool->peak_out;
    if (keep < HELLO_FORWARD_BUFFERS_KEPT)
        keep = HELLO_FORWARD_BUFFERS_KEPT;
    pool->peak_out = pool->out;
    if (pool->resident > keep) {
        madvise(pool->pages + (size_t)keep * HELLO_FORWARD_BUFFER_SIZE,
                (size_t)(pool->resident - keep) * HELLO_FORWARD_BUFFER_SIZE, MADV_DONTNEED);
        pool->resident = keep;
    }
    pool->trim_at_ms = pool->resident > HELLO_FORWARD_BUFFERS_KEPT ? now_ms + HELLO_FORWARD_TRIM_MS : 0;
}

void hello_forward_pool_destroy(struct hello_buffer_pool *pool)
{
    if (pool->pages)
        munmap(pool->pages, POOL_BYTES);
    pool->pages = NULL;
}

static void give_back(struct worker *worker, struct connection *connection)
{
    buffer_put(&worker->hello_buffers, connection->hello_buffer);
    connection->hello_buffer = NULL;
}

static bool may_take(const struct connection *connection)
{
    return connection->hello_length > 0 && connection->hello_length <= HELLO_FORWARD_BUFFER_SIZE &&
           connection->proxy_header == PROXY_HEADER_NONE &&
           connection->upstream->proxy_protocol == PROXY_PROTOCOL_OFF;
}

void hello_forward_take(struct worker *worker, struct connection *connection)
{
    if (!may_take(connection) ||
        !(connection->hello_buffer = buffer_get(&worker->hello_buffers, worker->now_ms)))
        return;
    struct io_uring_sqe *sqe = worker_sqe(worker);
    io_uring_prep_recv(sqe, connection->client_fd, connection->hello_buffer,
                       connection->hello_length, MSG_DONTWAIT | MSG_WAITALL);
    io_uring_sqe_set_data64(sqe, ring_tag_pack(connection, RING_TAG_HELLO));
    connection->pending_ops |= CONNECTION_OP_HELLO;
    worker_expect_inline_completion(worker);
}

bool hello_forward_send(struct worker *worker, struct connection *connection)
{
    if (!connection->hello_buffer)
        return false;
    struct io_uring_sqe *sqe = worker_sqe(worker);
    io_uring_prep_send(sqe, connection->upstream_fd, connection->hello_buffer,
                       connection->hello_length, MSG_DONTWAIT | MSG_WAITALL | MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ring_tag_pack(connection, RING_TAG_TO_UPSTREAM));
    connection->pending_ops |= CONNECTION_OP_TO_UPSTREAM;
    connection->to_upstream.state = RELAY_SENDING_HELLO;
    worker_expect_inline_completion(worker);
    return true;
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
    connection->to_upstream.bytes += (uint64_t)result;
    connection->last_activity_ms = worker->now_ms;
    relay_hello_sent(worker, connection);
}

void hello_forward_release(struct worker *worker, struct connection *connection)
{
    if (connection->hello_buffer)
        give_back(worker, connection);
}
