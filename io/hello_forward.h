/*
 * hello_forward.h - the ClientHello's way to the upstream through io_uring:
 * taken out of the client socket while the connect is queued, sent the
 * moment the connect completes (see hello_forward.c).
 */
#ifndef SNISPLICE_IO_HELLO_FORWARD_H
#define SNISPLICE_IO_HELLO_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

struct worker;
struct connection;

/* A hello (with whatever was queued behind it when it was peeked) larger
 * than this goes through the relay as before. Chromium's is 1932 bytes.
 * One page: a buffer's memory can be given back on its own. */
#define HELLO_FORWARD_BUFFER_SIZE 4096
/* Buffers out at once per worker; past this, hellos go through the relay,
 * so a flood of connects to a slow upstream cannot grow memory. */
#define HELLO_FORWARD_BUFFERS_OUT_MAX 1024
/* Buffers whose pages stay resident when free; the pages of the others go
 * back to the kernel once no load has needed them for a while. */
#define HELLO_FORWARD_BUFFERS_KEPT 32
/* While pages beyond the kept ones are resident, every this often the
 * pool keeps as many as the most it had out since the last look. */
#define HELLO_FORWARD_TRIM_MS 100

/* Buffers are the pages of one mapping, handed out lowest first, so the
 * buffers below `resident` have all been used (their pages are resident)
 * and the ones above it have not, or were given back. */
struct hello_buffer_pool {
    uint8_t *pages;      /* HELLO_FORWARD_BUFFERS_OUT_MAX buffers; NULL until first used */
    uint64_t out_map[HELLO_FORWARD_BUFFERS_OUT_MAX / 64]; /* bit set: held by a connection */
    uint32_t out;        /* held by connections */
    uint32_t resident;   /* buffers [0, resident) have resident pages */
    uint32_t peak_out;   /* most out at once since the last trim */
    uint64_t trim_at_ms; /* 0: nothing beyond the kept buffers is resident */
    bool unavailable;    /* the mapping failed: every hello goes through the relay */
};

void hello_forward_pool_destroy(struct hello_buffer_pool *pool);
/* Give back the pages of free buffers beyond the kept ones when due (once
 * per HELLO_FORWARD_TRIM_MS while there are any). */
void hello_forward_pool_trim(struct hello_buffer_pool *pool, uint64_t now_ms);
/* Free buffers whose pages are resident (for the metrics). */
static inline uint32_t hello_forward_pool_idle(const struct hello_buffer_pool *pool)
{
    return pool->resident - pool->out;
}

/* Routing chose the upstream of a connection whose complete hello
 * (connection->hello_length bytes) is queued in its client socket: if the
 * connection may, take a buffer and queue the hello's recv into it, ahead
 * of the connect. Otherwise the relay moves the hello after the connect. */
void hello_forward_take(struct worker *worker, struct connection *connection);

/* The connect completed: queue the send of the taken hello. False when the
 * connection took none (the relay moves it). */
bool hello_forward_send(struct worker *worker, struct connection *connection);

/* Completions: the recv (RING_TAG_HELLO) and the send (RING_TAG_TO_UPSTREAM
 * while connection->to_upstream.state is RELAY_SENDING_HELLO). */
void hello_forward_on_taken(struct worker *worker, struct connection *connection, int result);
void hello_forward_on_sent(struct worker *worker, struct connection *connection, int result);

/* The connection's memory is being released: no operation is pending. */
void hello_forward_release(struct worker *worker, struct connection *connection);

#endif
