/*
 * keepalive.c - queues a socket's keepalive options (see keepalive.h).
 *
 * Per connection rather than on the listening socket (which accepted
 * sockets would inherit): a listening socket outlives reloads and may
 * serve another listener section after one, while a connection keeps the
 * settings of the snapshot it was accepted under. Errors are ignored, as
 * for the other tuning options: a unix socket takes SO_KEEPALIVE but not
 * the TCP timers, and serves as well without them.
 */
#include "keepalive.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

/* Static: the io_uring setsockopt reads it at submission. */
static const int keepalive_on = 1;

static void queue_timer(struct worker *worker, int fd, int name, const int *value)
{
    if (*value == 0)
        return; /* the system's net.ipv4.tcp_keepalive_* */
    worker_queue_socket_option(worker, fd, IPPROTO_TCP, name, value, sizeof *value);
}

void keepalive_queue(struct worker *worker, int fd, const struct tcp_keepalive *keepalive)
{
    if (!keepalive->enabled)
        return;
    /* The timers first: on a connected socket SO_KEEPALIVE arms the timer
     * with the idle time set at that moment (a later TCP_KEEPIDLE re-arms it). */
    queue_timer(worker, fd, TCP_KEEPIDLE, &keepalive->idle);
    queue_timer(worker, fd, TCP_KEEPINTVL, &keepalive->interval);
    queue_timer(worker, fd, TCP_KEEPCNT, &keepalive->count);
    worker_queue_socket_option(worker, fd, SOL_SOCKET, SO_KEEPALIVE, &keepalive_on, sizeof keepalive_on);
}
