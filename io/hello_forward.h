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
 * than this goes through the relay as before. Chromium's is 1932 bytes. */
#define HELLO_FORWARD_BUFFER_SIZE 4096
/* Buffers out at once per worker; past this, hellos go through the relay,
 * so a flood of connects to a slow upstream cannot grow memory. */
#define HELLO_FORWARD_BUFFERS_OUT_MAX 1024
/* Free buffers kept for reuse; the rest go back to malloc. */
#define HELLO_FORWARD_BUFFERS_KEPT 64

struct hello_buffer_pool {
    void *free_list;     /* free buffers; each one's first bytes link the next */
    uint32_t free_count;
    uint32_t out;        /* held by connections */
};

void hello_forward_pool_destroy(struct hello_buffer_pool *pool);

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
