/*
 * stats_server.c - a minimal HTTP/1.0 server for Prometheus scrapes (see
 * stats_server.h). One request per connection, answered and closed.
 */
#include "stats_server.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

#define REQUEST_MAX 4096
#define CLIENT_TIMEOUT_MS 2000    /* for the request head, in all */
#define RESPONSE_TIMEOUT_MS 10000 /* for the whole answer, in all */
#define ACCEPT_RETRY_MS 100       /* after accept fails (out of fds) */

bool stats_server_bind(struct stats_server *server, const struct address *address)
{
    memset(server, 0, sizeof *server);
    server->listen_fd = server->stop_fd = -1;
    char text[ADDRESS_TEXT_MAX];
    address_format(address, text, sizeof text);
    int fd = socket(address_family(address), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind(fd, (const struct sockaddr *)&address->storage, address->length) != 0 || listen(fd, 64) != 0) {
        log_error("stats %s: %s", text, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    server->listen_fd = fd;
    return true;
}

static long long now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* True once fd is ready for `events` before deadline; false at the
 * deadline or as soon as the server is told to stop, so that no client
 * holds up a shutdown. */
static bool wait_ready(int fd, short events, int stop_fd, long long deadline)
{
    long long left = deadline - now_ms();
    struct pollfd waits[2] = { { fd, events, 0 }, { stop_fd, POLLIN, 0 } };
    return left > 0 && poll(waits, 2, (int)left) > 0 && waits[1].revents == 0;
}

/* The request head, within CLIENT_TIMEOUT_MS in all: a scraper that
 * trickles bytes is dropped like a silent one. */
static bool read_request(int fd, int stop_fd, char *request, size_t size)
{
    size_t used = 0;
    long long deadline = now_ms() + CLIENT_TIMEOUT_MS;
    while (used + 1 < size) {
        if (!wait_ready(fd, POLLIN, stop_fd, deadline))
            return false;
        ssize_t got = recv(fd, request + used, size - 1 - used, MSG_DONTWAIT);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (got <= 0)
            return used > 0; /* the client closed after its request */
        used += (size_t)got;
        request[used] = '\0';
        if (strstr(request, "\r\n\r\n") || strstr(request, "\n\n"))
            return true;
    }
    return false; /* bigger than any scrape request */
}

/* Gives up at deadline: a scraper that reads a byte now and then must not
 * hold the only stats thread for longer. */
static void send_all(int fd, int stop_fd, const char *data, size_t length, long long deadline)
{
    while (length > 0) {
        if (!wait_ready(fd, POLLOUT, stop_fd, deadline))
            return;
        ssize_t sent = send(fd, data, length, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (sent <= 0)
            return;
        data += sent;
        length -= (size_t)sent;
    }
}

static void respond(int fd, int stop_fd, const char *status, const char *content_type, const char *body)
{
    char head[256];
    int length = snprintf(head, sizeof head,
                          "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                          status, content_type, strlen(body));
    long long deadline = now_ms() + RESPONSE_TIMEOUT_MS;
    send_all(fd, stop_fd, head, (size_t)length, deadline);
    send_all(fd, stop_fd, body, strlen(body), deadline);
}

static void serve_client(struct stats_server *server, int fd)
{
    char request[REQUEST_MAX];
    if (!read_request(fd, server->stop_fd, request, sizeof request))
        return;
    bool get = strncmp(request, "GET ", 4) == 0;
    char *path = request + 4;
    size_t path_length = strcspn(path, " \r\n?");
    bool metrics_path = (path_length == 8 && strncmp(path, "/metrics", 8) == 0) ||
                        (path_length == 1 && path[0] == '/');
    if (!get) {
        respond(fd, server->stop_fd, "405 Method Not Allowed", "text/plain", "only GET\n");
        return;
    }
    if (!metrics_path) {
        respond(fd, server->stop_fd, "404 Not Found", "text/plain", "try /metrics\n");
        return;
    }
    char *body = metrics_render(server->workers, server->worker_count,
                                atomic_load_explicit(server->reloads_ok, memory_order_relaxed),
                                atomic_load_explicit(server->reloads_failed, memory_order_relaxed));
    if (!body) {
        respond(fd, server->stop_fd, "503 Service Unavailable", "text/plain", "out of memory\n");
        return;
    }
    respond(fd, server->stop_fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body);
    free(body);
}

static void *serve(void *argument)
{
    struct stats_server *server = argument;
    for (;;) {
        struct pollfd waits[2] = { { server->listen_fd, POLLIN, 0 }, { server->stop_fd, POLLIN, 0 } };
        if (poll(waits, 2, -1) < 0 && errno != EINTR)
            break;
        if (waits[1].revents)
            break;
        if (!(waits[0].revents & POLLIN))
            continue;
        int client = accept4(server->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (client < 0 && (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED))
            continue;
        if (client < 0) {
            /* EMFILE and friends: the connection stays queued and the
             * listener readable, so polling it again would spin on a core
             * the workers need. Wait, still answering a stop. */
            struct pollfd stop = { server->stop_fd, POLLIN, 0 };
            if (poll(&stop, 1, ACCEPT_RETRY_MS) > 0)
                break;
            continue;
        }
        serve_client(server, client);
        close(client);
    }
    return NULL;
}

bool stats_server_start(struct stats_server *server, const struct worker *workers, unsigned worker_count,
                        const _Atomic uint64_t *reloads_ok, const _Atomic uint64_t *reloads_failed)
{
    server->workers = workers;
    server->worker_count = worker_count;
    server->reloads_ok = reloads_ok;
    server->reloads_failed = reloads_failed;
    server->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (server->stop_fd < 0 || pthread_create(&server->thread, NULL, serve, server) != 0) {
        log_error("stats: cannot start its thread");
        return false;
    }
    server->running = true;
    return true;
}

void stats_server_stop(struct stats_server *server)
{
    if (server->running) {
        uint64_t one = 1;
        if (write(server->stop_fd, &one, sizeof one) != sizeof one)
            log_warn("stats: cannot signal its thread");
        pthread_join(server->thread, NULL);
        server->running = false;
    }
    if (server->stop_fd >= 0)
        close(server->stop_fd);
    if (server->listen_fd >= 0)
        close(server->listen_fd);
    server->stop_fd = server->listen_fd = -1;
}
