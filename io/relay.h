/*
 * relay.h - move bytes both ways between client and upstream with splice(2)
 * through pipes borrowed from the worker's pool, honouring half-close.
 */
#ifndef SNISPLICE_IO_RELAY_H
#define SNISPLICE_IO_RELAY_H

#include "worker.h"

/*
 * Options every socket that carries relayed bytes gets (the unsent limit
 * below apart), in one list so
 * both ends stay alike: set on each listening socket (accepted sockets
 * inherit them, no system call per connection) and queued on each
 * upstream socket before it connects. The values live in static storage
 * because an io_uring setsockopt reads them when the batch is submitted.
 *
 * TCP_NODELAY: relayed TLS records leave at once, never held for an ACK.
 *
 * SO_OOBINLINE: a TCP urgent byte (MSG_OOB) stays in the stream as an
 * ordinary byte and is relayed with the rest. Out of line the kernel
 * keeps it beside the stream: a read steps over it but leaves it queued,
 * so the final close found unread data and answered with a reset that
 * threw away the reply's unsent tail; and a socket holding nothing else
 * polls as not readable while a wake-up says it is, which made io_uring
 * hand a pending recv to a kernel thread of its own (see relay.c).
 *
 * relay_unsent_limit, TCP_NOTSENT_LOWAT = RELAY_UNSENT_LOW_WATER, is set
 * apart: on every upstream socket, but on client sockets only behind a
 * listener bound to a loopback address (listener.c), whose clients are on
 * this host. It is bytes a socket may hold that
 * it has not sent yet. Without a limit a socket whose reader is slower
 * than its writer queues its whole send buffer, megabytes per connection;
 * each ACK from the reader then releases some of it, and the kernel
 * transmits it in the context that processed that ACK: on loopback (an
 * upstream on the same host) that is the reader's process and CPU, so the
 * proxy's send work is done, and paid for, by its peer. With the limit the
 * socket reports full while more than this is unsent and the proxy, woken
 * when half of it has left, sends the rest itself. Bytes in flight are not
 * limited: a long path still fills its window. Measured in bench/NOTES.md
 * ("unsent bytes"). But across a real path with loss it cost a download
 * 35-40% of its throughput against nginx and a direct connection (1% loss,
 * 50 ms, bench/netpath.sh; NOTES.md, twentieth session): there the
 * reader's ACKs run on another machine, so the limit saves nothing and
 * only makes the worker refill the socket 16 KiB at a time while the
 * kernel recovers losses.
 */
#define RELAY_UNSENT_LOW_WATER (32 * 1024)
#define RELAY_SOCKET_OPTION_COUNT 2

struct relay_socket_option {
    int level;
    int name;
    const int *value;
};

extern const struct relay_socket_option relay_socket_options[RELAY_SOCKET_OPTION_COUNT];
extern const struct relay_socket_option relay_unsent_limit;

/* client_waits: the client sent a complete ClientHello and waits for the
 * server's answer, so its poll can be deferred (see relay.c). */
void relay_start(struct worker *worker, struct connection *connection, bool client_waits);
/* The poll for the server's first bytes, queued before relay_start: linked
 * behind the connect and the hello's send (io/connect.c). relay_start
 * then arms nothing more for the connection. */
void relay_arm_first_read(struct worker *worker, struct connection *connection);
/* The hello's send completed (hello_forward.c): the client -> upstream
 * direction waits for the client's next bytes. */
void relay_hello_sent(struct worker *worker, struct connection *connection);
/* Arm the client polls deferred before the last wait; called once per loop
 * iteration, right before the next submission. While any is deferred the
 * worker sleeps no longer than to the next timer-wheel tick. */
void relay_arm_deferred_polls(struct worker *worker);
/* A deferred client poll's connection is being closed: drop it from the list. */
void relay_forget_deferred(struct worker *worker, struct connection *connection);
/* A relay operation completed: tag says which direction; result is revents
 * (poll), bytes queued (end-of-stream peek) or sent (the hello), or -errno. */
void relay_on_ready(struct worker *worker, struct connection *connection, enum ring_tag tag,
                    int result);
/* The connection's timer fired while relaying: close it if idle too long. */
void relay_on_idle_timer(struct worker *worker, struct connection *connection);

#endif
