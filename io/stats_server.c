/*
 * stats_server.c - a minimal HTTP/1.0 server for Prometheus scrapes (see
 * stats_server.h). One request per connection, answered and closed. The
 * thread polls every pending scraper at once, each against its own
 * deadline, so that silent ones wait side by side rather than in turn.
 * Must never let the clients it holds keep a new one out: when every slot
 * is taken, the silent one (else the stalled reader) that has waited
 * longest makes room.
 */
#include "stats_server.h"

#include <errno.h>
#include <netinet/in.h>
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
#define STATS_CLIENTS_MAX 16      /* scrapers waited on at once */

/* An IPv6 endpoint is IPv6-only, as the listeners are: [::]:9100 must
 * neither serve the unauthenticated endpoint on every IPv4 address too
 * nor take the port from a listener on 0.0.0.0:9100, which the config
 * check lets share it. Not an IPv4-mapped one, which only a dual-stack
 * socket may bind. */
static bool ipv6_only(int fd, const struct address *address)
{
    int on = 1;
    struct sockaddr_in unused;
    if (address_family(address) != AF_INET6 ||
        address_unmap_ipv4((const struct sockaddr *)&address->storage, &unused))
        return true;
    return setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) == 0;
}

/* NULL, or the call that failed (errno says why): named in the error,
 * as bind is not the only one that can. */
static const char *bind_and_listen(int fd, const struct address *address)
{
    int on = 1;
    if (!ipv6_only(fd, address))
        return "IPV6_V6ONLY";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
        return "SO_REUSEADDR";
    if (bind(fd, (const struct sockaddr *)&address->storage, address->length) != 0)
        return "bind";
    if (listen(fd, 64) != 0)
        return "listen";
    return NULL;
}

bool stats_server_bind(struct stats_server *server, const struct address *address)
{
    memset(server, 0, sizeof *server);
    server->listen_fd = server->stop_fd = -1;
    char text[ADDRESS_TEXT_MAX];
    address_format(address, text, sizeof text);
    int fd = socket(address_family(address), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const char *failed = fd < 0 ? "socket" : bind_and_listen(fd, address);
    if (failed) {
        log_error("stats %s: %s: %s", text, failed, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    server->listen_fd = fd;
    return true;
}

void stats_server_adopt(struct stats_server *server, int fd)
{
    memset(server, 0, sizeof *server);
    server->stop_fd = -1;
    server->listen_fd = fd;
}

static long long now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* One scraper: reading its request head until CLIENT_TIMEOUT_MS after its
 * accept, then (response set) writing the answer until
 * RESPONSE_TIMEOUT_MS after that, then (lingering) reading and dropping
 * what it still sends until it closes, or for CLIENT_TIMEOUT_MS. */
struct stats_client {
    int fd;             /* -1: a free slot */
    long long deadline;
    long long progress; /* accepted, or the answer's last bytes taken */
    size_t used;        /* request bytes so far */
    char request[REQUEST_MAX];
    char *response;     /* head and body, malloc'd; NULL while reading */
    size_t response_length, sent;
    bool lingering;     /* the whole answer is with the kernel */
};

/* Every scraper the thread waits on at once, each against its own deadline. */
struct stats_clients {
    struct stats_client slots[STATS_CLIENTS_MAX];
    long long accept_paused_until; /* 0: accepting (EMFILE back-off) */
};

static void drop_client(struct stats_client *client)
{
    if (client->fd >= 0)
        close(client->fd);
    free(client->response);
    client->fd = -1;
    client->response = NULL;
    client->lingering = false;
}

/* The whole answer (head and body) in one malloc'd buffer; NULL when out
 * of memory. */
static char *format_response(const char *status, const char *content_type, const char *body, size_t *length)
{
    char head[256];
    size_t body_length = strlen(body);
    int head_length = snprintf(head, sizeof head,
                               "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                               status, content_type, body_length);
    char *response = malloc((size_t)head_length + body_length);
    if (!response)
        return NULL;
    memcpy(response, head, (size_t)head_length);
    memcpy(response + head_length, body, body_length);
    *length = (size_t)head_length + body_length;
    return response;
}

/* The answer to a complete request head. */
static char *answer(const struct stats_server *server, const char *request, size_t *length)
{
    if (strncmp(request, "GET ", 4) != 0)
        return format_response("405 Method Not Allowed", "text/plain", "only GET\n", length);
    const char *path = request + 4;
    size_t path_length = strcspn(path, " \r\n?");
    bool metrics_path = (path_length == 8 && strncmp(path, "/metrics", 8) == 0) ||
                        (path_length == 1 && path[0] == '/');
    if (!metrics_path)
        return format_response("404 Not Found", "text/plain", "try /metrics\n", length);
    char *body = metrics_render(server->workers, server->worker_count,
                                atomic_load_explicit(server->reloads_ok, memory_order_relaxed),
                                atomic_load_explicit(server->reloads_failed, memory_order_relaxed));
    if (!body)
        return format_response("503 Service Unavailable", "text/plain", "out of memory\n", length);
    char *response = format_response("200 OK", "text/plain; version=0.0.4; charset=utf-8", body, length);
    free(body);
    return response;
}

/* The whole answer is with the kernel: closed now, a socket with bytes
 * still unread (a second, pipelined request) would send a reset, and
 * the client would lose the answer's end still on its way (a 90 KiB page
 * arrived cut at 32 KiB). So the sending side is shut, and what the
 * client still sends is read and dropped until it closes (nginx's
 * lingering close); the slot then counts as a silent one. */
static void discard_input(struct stats_client *client)
{
    char scratch[4096];
    /* At most 64 KiB a wake-up: a client that streams cannot hold the
     * thread, and its deadline still comes. */
    for (int reads = 0; reads < 16; reads++) {
        ssize_t got = recv(client->fd, scratch, sizeof scratch, MSG_DONTWAIT);
        if (got > 0 || (got < 0 && errno == EINTR))
            continue;
        if (got < 0 && errno == EAGAIN)
            return;
        drop_client(client); /* its end, or an error */
        return;
    }
}

static void linger(struct stats_client *client)
{
    free(client->response);
    client->response = NULL;
    client->lingering = true;
    client->deadline = now_ms() + CLIENT_TIMEOUT_MS;
    /* A client that already sent its end (a half-close after its
     * request) is closed at once, with nothing unread: no reset. */
    discard_input(client);
    if (client->fd >= 0 && shutdown(client->fd, SHUT_WR) != 0)
        drop_client(client);
}

/* Send what the socket takes; lingering once all is sent, dropped on an
 * error. */
static void send_response(struct stats_client *client)
{
    while (client->sent < client->response_length) {
        ssize_t sent = send(client->fd, client->response + client->sent, client->response_length - client->sent,
                            MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0 && errno == EAGAIN)
            return; /* poll for POLLOUT */
        if (sent <= 0)
            break;
        client->sent += (size_t)sent;
        client->progress = now_ms();
    }
    if (client->sent == client->response_length)
        linger(client);
    else
        drop_client(client);
}

/* The answer when not even the 503's buffer can be allocated. */
static const char OUT_OF_MEMORY_RESPONSE[] = "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                             "Content-Length: 14\r\nConnection: close\r\n\r\nout of memory\n";

static void start_response(const struct stats_server *server, struct stats_client *client)
{
    client->response = answer(server, client->request, &client->response_length);
    if (!client->response) {
        /* Sent as is, not closed unanswered: a scraper then tells the
         * proxy's memory from a proxy that is gone. A new socket's
         * buffer takes these few bytes whole. */
        ssize_t ignored = send(client->fd, OUT_OF_MEMORY_RESPONSE, sizeof OUT_OF_MEMORY_RESPONSE - 1,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)ignored;
        drop_client(client);
        return;
    }
    client->sent = 0;
    /* From here, a scraper that reads a byte now and then has this long. */
    client->deadline = now_ms() + RESPONSE_TIMEOUT_MS;
    send_response(client);
}

/* Read what the request head has so far; answer it once complete. A
 * scraper that trickles bytes is dropped at its deadline like a silent
 * one. */
static void read_request(const struct stats_server *server, struct stats_client *client)
{
    for (;;) {
        ssize_t got = recv(client->fd, client->request + client->used, REQUEST_MAX - 1 - client->used,
                           MSG_DONTWAIT);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && errno == EAGAIN)
            return;
        if (got <= 0) {
            /* The client closed after its request, or before sending one. */
            if (client->used > 0)
                start_response(server, client);
            else
                drop_client(client);
            return;
        }
        client->used += (size_t)got;
        client->request[client->used] = '\0';
        if (strstr(client->request, "\r\n\r\n") || strstr(client->request, "\n\n")) {
            start_response(server, client);
            return;
        }
        if (client->used + 1 >= REQUEST_MAX) {
            drop_client(client); /* bigger than any scrape request */
            return;
        }
    }
}

/* Which of two busy slots gives way first: one still silent before any
 * answering, else the one whose reader took nothing for longest. */
static bool gives_way_before(const struct stats_client *client, const struct stats_client *other)
{
    if (!other)
        return true;
    if (!client->response != !other->response)
        return !client->response;
    return client->response ? client->progress < other->progress : client->deadline < other->deadline;
}

/* A free slot for a new scraper. With none, the one still silent the
 * longest makes room: a real scraper sends its request at once and is
 * answered within milliseconds, so only silent ones are ever old, and
 * however many connect, a real one waits behind no timeout. With every
 * slot answering, the one whose reader has taken nothing for longest
 * makes room: sixteen clients that ask and never read (a small receive
 * window holds a large page back) would otherwise keep every scrape out
 * for RESPONSE_TIMEOUT_MS, again and again, while a real scraper reads
 * as fast as its answer comes. */
static struct stats_client *free_slot(struct stats_clients *clients)
{
    struct stats_client *first_out = NULL;
    for (size_t i = 0; i < STATS_CLIENTS_MAX; i++) {
        struct stats_client *client = &clients->slots[i];
        if (client->fd < 0)
            return client;
        if (gives_way_before(client, first_out))
            first_out = client;
    }
    drop_client(first_out);
    return first_out;
}

static void accept_client(struct stats_server *server, struct stats_clients *clients)
{
    int fd = accept4(server->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0 && (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED))
        return;
    if (fd < 0) {
        /* EMFILE and friends: the connection stays queued and the
         * listener readable, so polling it again would spin on a core
         * the workers need. Wait, still serving the others and answering
         * a stop. */
        clients->accept_paused_until = now_ms() + ACCEPT_RETRY_MS;
        return;
    }
    /* Chosen after the accept: a slot is given up only for a client
     * that is really there. */
    struct stats_client *slot = free_slot(clients);
    slot->fd = fd;
    slot->used = 0;
    slot->response = NULL;
    slot->lingering = false;
    slot->progress = now_ms();
    slot->deadline = slot->progress + CLIENT_TIMEOUT_MS;
}

/* Drop the clients past their deadline; the milliseconds until the next
 * deadline (or the end of an accept pause), -1 for none. */
static int expire(struct stats_clients *clients, long long now)
{
    long long next = clients->accept_paused_until > now ? clients->accept_paused_until : -1;
    for (size_t i = 0; i < STATS_CLIENTS_MAX; i++) {
        struct stats_client *client = &clients->slots[i];
        if (client->fd < 0)
            continue;
        if (client->deadline <= now)
            drop_client(client);
        else if (next < 0 || client->deadline < next)
            next = client->deadline;
    }
    return next < 0 ? -1 : (int)(next - now);
}

/* pollfd 0 is the stop eventfd, 1 the listener (fd -1 while it must not
 * be polled), then one per client slot (fd -1 when free). */
static void serve_ready(struct stats_server *server, struct stats_clients *clients, const struct pollfd *waits)
{
    for (size_t i = 0; i < STATS_CLIENTS_MAX; i++) {
        struct stats_client *client = &clients->slots[i];
        if (client->fd < 0 || waits[2 + i].revents == 0)
            continue;
        if (client->response)
            send_response(client);
        else if (client->lingering)
            discard_input(client);
        else
            read_request(server, client);
    }
    if (waits[1].revents & POLLIN)
        accept_client(server, clients);
}

static void *serve(void *argument)
{
    struct stats_server *server = argument;
    struct stats_clients clients = { .accept_paused_until = 0 };
    for (size_t i = 0; i < STATS_CLIENTS_MAX; i++)
        clients.slots[i].fd = -1;
    for (;;) {
        long long now = now_ms();
        int timeout = expire(&clients, now);
        struct pollfd waits[2 + STATS_CLIENTS_MAX];
        waits[0] = (struct pollfd){ server->stop_fd, POLLIN, 0 };
        /* Not while out of fds (EMFILE back-off): else always, a slot
         * being made when all are taken (free_slot). */
        waits[1] = (struct pollfd){ now < clients.accept_paused_until ? -1 : server->listen_fd, POLLIN, 0 };
        for (size_t i = 0; i < STATS_CLIENTS_MAX; i++) {
            const struct stats_client *client = &clients.slots[i];
            waits[2 + i] = (struct pollfd){ client->fd, client->response ? POLLOUT : POLLIN, 0 };
        }
        if (poll(waits, 2 + STATS_CLIENTS_MAX, timeout) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (waits[0].revents)
            break;
        serve_ready(server, &clients, waits);
    }
    for (size_t i = 0; i < STATS_CLIENTS_MAX; i++)
        drop_client(&clients.slots[i]);
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
    int error = server->stop_fd < 0 ? errno : pthread_create(&server->thread, NULL, serve, server);
    if (error != 0) {
        log_error("stats: cannot start its thread: %s", strerror(error));
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
