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

/* Routing chose the upstream of a connection whose complete hello
 * (connection->hello_length bytes, with whatever was queued behind it when
 * it was peeked) is queued in its client socket: if the connection may,
 * take a buffer (io/hello_buffer_pool.h, HELLO_BUFFER_SIZE bytes: Chromium's
 * hello is 1932) and queue the hello's recv into it, ahead of the connect.
 * Otherwise the relay moves the hello after the connect. */
void hello_forward_take(struct worker *worker, struct connection *connection);

/* The connect completed: queue the send of the taken hello. False when the
 * connection took none (the relay moves it). */
bool hello_forward_send(struct worker *worker, struct connection *connection);
/* The same, queued now, before the connect has completed, and linked behind
 * the connect the caller queued last; the connection must have taken its
 * hello. */
void hello_forward_send_linked(struct worker *worker, struct connection *connection);

/* Completions: the recv (RING_TAG_HELLO) and the send (RING_TAG_TO_UPSTREAM
 * while connection->to_upstream.state is RELAY_SENDING_HELLO). */
void hello_forward_on_taken(struct worker *worker, struct connection *connection, int result);
void hello_forward_on_sent(struct worker *worker, struct connection *connection, int result);

/* The connection's memory is being released: no operation is pending. */
void hello_forward_release(struct worker *worker, struct connection *connection);

#endif
