/*
 * listener.c - open listening sockets, accept connections, enforce the
 * connection limit. Never reads from a client: that is preread's job.
 */
#include "listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "preread.h"

int listener_open(const struct address *address, char *error, size_t error_size)
{
    char text[ADDRESS_TEXT_MAX];
    address_format(address, text, sizeof text);
    int family = address_family(address);
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(error, error_size, "%s: socket: %s", text, strerror(errno));
        return -1;
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0)
        goto fail_errno;
    /* Accepted sockets inherit TCP_NODELAY: one setsockopt here instead of
     * one per connection. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    /* Like nginx's default ipv6only=on: [::]:443 and 0.0.0.0:443 can coexist. */
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, (const struct sockaddr *)&address->storage, address->length) < 0)
        goto fail_errno;
    if (listen(fd, LISTENER_BACKLOG) < 0)
        goto fail_errno;
    return fd;
fail_errno:
    snprintf(error, error_size, "%s: %s", text, strerror(errno));
    close(fd);
    return -1;
}

/* Kernel quirk: io_uring reads RLIMIT_NOFILE when the multishot accept is
 * prepared and keeps that value for every connection it accepts, so a limit
 * changed at run time (prlimit) only applies after the next re-arm. */
void listener_arm_accept(struct worker *worker, struct listener *listener)
{
    if (listener->fd < 0 || listener->accept_armed)
        return;
    struct io_uring_sqe *sqe = worker_sqe(worker);
    io_uring_prep_multishot_accept(sqe, listener->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ring_tag_pack(listener, RING_TAG_ACCEPT));
    listener->accept_armed = true;
}

static void accept_connection(struct worker *worker, const struct listener *listener, int fd)
{
    if (worker->draining) {
        close(fd);
        return;
    }
    if (worker->open_connections >= worker->max_connections) {
        close(fd);
        counter_add(&worker->counters.rejected_at_limit, 1);
        return;
    }
    struct connection *connection = connection_new(worker, fd);
    if (!connection) {
        close(fd);
        return;
    }
    counter_add(&worker->counters.accepted, 1);
    connection->listener = (uint16_t)listener->index;
    access_log_begin(worker, connection);
    preread_start(worker, connection);
}

static bool is_resource_exhaustion(int error)
{
    return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

void listener_on_accept(struct worker *worker, struct listener *listener, int result,
                        uint32_t flags)
{
    if (!(flags & IORING_CQE_F_MORE))
        listener->accept_armed = false;
    if (result >= 0) {
        worker->accept_exhausted = false;
        accept_connection(worker, listener, result);
    } else if (is_resource_exhaustion(-result)) {
        if (!worker->accept_exhausted)
            log_warn("worker %u: accept: %s; retrying every %d ms until it recovers",
                     worker->index, strerror(-result), LISTENER_PAUSE_MS);
        worker->accept_exhausted = true;
        worker->accept_paused_until_ms = worker->now_ms + LISTENER_PAUSE_MS;
        /* A still-armed multishot would keep failing: stop it until the pause ends. */
        if (listener->accept_armed)
            worker_cancel(worker, listener, RING_TAG_ACCEPT);
        return;
    } else if (result != -ECANCELED && result != -ECONNABORTED && result != -EAGAIN) {
        log_warn("worker %u: accept: %s", worker->index, strerror(-result));
    }
    if (!listener->accept_armed && !worker->draining && worker->accept_paused_until_ms == 0)
        listener_arm_accept(worker, listener);
}

void listener_resume(struct worker *worker)
{
    if (worker->accept_paused_until_ms == 0 || worker->now_ms < worker->accept_paused_until_ms)
        return;
    worker->accept_paused_until_ms = 0;
    for (size_t i = 0; i < worker->listener_count; i++)
        listener_arm_accept(worker, &worker->listeners[i]);
}

void listener_close_all(struct worker *worker)
{
    for (size_t i = 0; i < worker->listener_count; i++) {
        struct listener *listener = &worker->listeners[i];
        if (listener->fd < 0)
            continue;
        if (listener->accept_armed)
            worker_cancel(worker, listener, RING_TAG_ACCEPT);
        close(listener->fd);
        listener->fd = -1;
    }
}
