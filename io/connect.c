/*
 * connect.c - route lookup on the worker's current snapshot, then
 * IORING_OP_CONNECT on a non-blocking socket with the deadline kept in the
 * worker's timer wheel. The snapshot is pinned only while connecting: it
 * holds the upstream's server list, which a reload must not free under us.
 */
#include "connect.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/upstream_hash.h"
#include "admission.h"
#include "hello_forward.h"
#include "keepalive.h"
#include "listener.h"
#include "log.h"
#include "proxy_header.h"
#include "relay.h"
#include "upstream_source.h"

static uint32_t round_robin_next(struct worker *worker, int32_t upstream_index)
{
    if ((uint32_t)upstream_index >= worker->round_robin_count)
        return worker->index;
    return worker->round_robin[upstream_index]++;
}


/* The worker's health table is laid out for its current snapshot's
 * upstreams: a connection still on an older one (accepted before a
 * reload) gets none, and neither reads nor writes it. */
static struct upstream_health *health_of(struct worker *worker, const struct connection *connection)
{
    return connection->snapshot == worker->snapshot ? &worker->health : NULL;
}

/* A connection's first backup is chosen only when it runs out of
 * primaries, so that the usual one (its first primary answers) spends no
 * round-robin step on backups. Until then first_backup holds this, which
 * is no server's index: upstream_server_from reads it as config order. */
#define CONNECT_BACKUP_UNCHOSEN UINT16_MAX

/* connect_attempt must count past the last server, or the search below
 * wraps and never ends; and CONNECT_BACKUP_UNCHOSEN must be no index. */
_Static_assert(UPSTREAM_SERVERS_MAX < UINT16_MAX, "connect_attempt counts every server of an upstream");

/* By weight among the backups this worker sees available, as the first
 * primary was among the primaries. Without a health table (a connection on
 * an older snapshot, after a reload) or with no backup available, config
 * order: no schedule is kept for backups as for primaries, since only a
 * connection that outlived a reload and ran out of primaries needs one. */
static void choose_first_backup(struct worker *worker, struct connection *connection,
                                struct upstream_health *health)
{
    const struct upstream *upstream = connection->upstream;
    uint32_t first;
    if (!upstream_health_first_backup(health, &worker->load, upstream, worker->now_ms, &first))
        first = upstream->primary_count;
    connection->first_backup = (uint16_t)first;
}

/* The server of the connection's next attempt, resting or not: along the
 * ring from the client's place for client_address (so every worker sends
 * a client whose server refused to the same next one), else from its
 * first primary in config order; then the backups. The ring holds every
 * primary that is not down, so attempts past it are the backups'. */
static const struct upstream_server *server_of_attempt(const struct connection *connection)
{
    const struct upstream *upstream = connection->upstream;
    if (connection->follows_ring) {
        int32_t on_ring = upstream_hash_nth(upstream, connection->ring_key, connection->connect_attempt);
        if (on_ring >= 0)
            return &upstream->servers[on_ring];
    }
    return upstream_server_from(upstream, connection->first_primary, connection->first_backup,
                                connection->connect_attempt);
}

static bool tried_before(const struct connection *connection, const struct upstream_server *server)
{
    return upstream_health_was_tried(connection->tried_servers, (uint32_t)(server - connection->upstream->servers));
}

/* The next server in the connection's fixed order (server_of_attempt)
 * that is not resting after failures; NULL when none is left. Servers the
 * balance picked for its retries are skipped: a connection that outlived
 * a reload continues here, and must neither try one twice nor miss one. */
static const struct upstream_server *next_live_in_order(struct worker *worker, struct connection *connection,
                                                        struct upstream_health *health)
{
    for (;;) {
        const struct upstream_server *server = server_of_attempt(connection);
        if (!server)
            return NULL;
        if (server->backup && connection->first_backup == CONNECT_BACKUP_UNCHOSEN) {
            /* The same attempt again, now from the chosen backup. */
            choose_first_backup(worker, connection, health);
            continue;
        }
        connection->connect_attempt++;
        if (!tried_before(connection, server) &&
            upstream_health_available(health, &worker->load, connection->upstream, server, worker->now_ms))
            return server;
    }
}

/* After a failed attempt, as nginx: the balance's next step among the
 * available servers the connection has not tried (the primaries, then,
 * once on the backups for good, the backups), so a dead server's share is
 * spread as the balance spreads it, not handed whole to the server after
 * it in config order. The fixed order's place (connect_attempt) stays
 * where it is: after a reload the walk goes on from there, over every
 * server not tried. */
static const struct upstream_server *next_untried(struct worker *worker, struct connection *connection,
                                                  struct upstream_health *health)
{
    const struct upstream *upstream = connection->upstream;
    bool on_backups = connection->server && connection->server->backup;
    uint32_t next;
    if (!upstream_health_next_untried(health, &worker->load, upstream, worker->now_ms,
                                      connection->tried_servers, on_backups, &next))
        return NULL;
    return &upstream->servers[next];
}

/* The next server to try that is not resting after failures; NULL when
 * none is left (nginx's "no live upstreams"). Retries follow the ring for
 * client_address, and config order without a health table (a connection
 * on an older snapshot). */
static const struct upstream_server *next_live_server(struct worker *worker,
                                                     struct connection *connection)
{
    struct upstream_health *health = health_of(worker, connection);
    bool retry_by_balance = connection->connect_attempt > 0 && !connection->follows_ring &&
                            upstream_health_covers(health, connection->upstream);
    const struct upstream_server *server = retry_by_balance ? next_untried(worker, connection, health)
                                                            : next_live_in_order(worker, connection, health);
    if (!server)
        return NULL;
    upstream_health_note_tried(connection->tried_servers, (uint32_t)(server - connection->upstream->servers));
    upstream_health_picked(health, connection->upstream, server, worker->now_ms);
    upstream_health_hold(health, &worker->load, connection->upstream, server, &connection->held_server);
    return server;
}

/* The connection came through a listener that routes by SNI: its client
 * sent a complete ClientHello and now waits for the server's answer. */
static bool routed_by_name(const struct connection *connection)
{
    const struct snapshot_listener *listener = connect_listener_of(connection);
    return listener && listener->routes;
}

/* Bytes go out the moment the connect completes: the ClientHello queued in
 * an SNI-routed client socket, or a PROXY protocol header. */
static bool sends_at_once(const struct connection *connection)
{
    return routed_by_name(connection) || connection->upstream->proxy_protocol;
}

/* The socket towards a server, or -errno: one the worker made ahead
 * (io/socket_stash.c) for TCP, else socket(2). Out of fds, the pool's idle
 * pipes go first (a cache) and the socket is tried once more; still none,
 * and this worker stops accepting for a while: further clients wait in
 * the backlog rather than being accepted only to be closed here. */
static int upstream_socket(struct worker *worker, int family)
{
    struct socket_stash *stash = family == AF_INET    ? &worker->socket_stashes[0]
                                 : family == AF_INET6 ? &worker->socket_stashes[1]
                                                      : NULL;
    int fd = stash ? socket_stash_take(worker, stash) : -1;
    if (fd >= 0)
        return fd;
    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 || !listener_is_resource_exhaustion(errno))
        return fd >= 0 ? fd : -errno;
    if (pipe_pool_release_idle(&worker->pipes) > 0) {
        fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd >= 0)
            return fd;
    }
    int error = errno;
    listener_pause_accepting(worker, "upstream socket", error);
    return -error;
}

/* A static because an io_uring setsockopt reads it when the batch is
 * submitted, after connect_next_server has returned. */
static const int one_second = 1;

/* A server on this host: its connect completes inside the submission that
 * carries it (on loopback the whole handshake runs in the connect call;
 * a unix listener takes the connection at once), unless its accept queue
 * is full. */
static bool connects_at_once(const struct address *address)
{
    return address_family(address) == AF_UNIX || address_is_loopback(address);
}

/* To a server that connects at once, the hello's send and the relay's first
 * read of the server are queued with the connect, linked behind it: the
 * kernel runs them as the connect completes, inside the same io_uring_enter,
 * and that call then sleeps until the server answers. Unlinked, the send
 * and the read waited for the worker to handle the connect's completion:
 * one io_uring_enter more per connection (bench/NOTES.md, "the connect's
 * links"). The connect and the send are counted as completions inside the
 * submission; should the connect wait after all (a full accept queue),
 * that wait is bounded by the next tick like every wait counting on such
 * completions (io/worker.c). If the connect fails, the kernel cancels the
 * two linked operations, and the next server is tried once their
 * completions are in (connect_on_link_cancelled). Linking pauses after a
 * connect that did not complete at once (connect_check_linked). */
#define LINKED_CHAIN_SQES 3 /* the connect, the hello's send, the first read */

static bool may_link(const struct worker *worker, const struct connection *connection,
                     const struct upstream_server *server)
{
    return connection->hello_buffer && worker->now_ms >= worker->link_connects_from_ms &&
           connects_at_once(&server->address);
}

static void link_first_exchange(struct worker *worker, struct connection *connection,
                                struct io_uring_sqe *connect)
{
    connection->linked_at_wait = (uint32_t)worker->waits;
    worker->linked_queued++;
    connect->flags |= IOSQE_IO_LINK;
    worker_expect_inline_completion(worker);
    hello_forward_send_linked(worker, connection);
    relay_arm_first_read(worker, connection);
}

/* A server that refuses or times out is worth a line at the default
 * level, as nginx logs each failed connect: at most one a second per
 * worker (a dead server under load must not flood the journal), the rest
 * with -v. */
static bool connect_warning_due(struct worker *worker)
{
    return log_once_a_second(&worker->connect_warned_ms, worker->now_ms);
}

static void connect_next_server(struct worker *worker, struct connection *connection);

/* connection->server could not be connected to (`error`, negative, or a
 * timeout): counted against it, and the next server is tried. */
static void server_failed(struct worker *worker, struct connection *connection, int error)
{
    const struct upstream_server *server = connection->server;
    upstream_health_failed(health_of(worker, connection), connection->upstream, server, worker->now_ms);
    upstream_health_release(&connection->held_server);
    char text[ADDRESS_TEXT_MAX];
    address_format(&server->address, text, sizeof text);
    metrics_count_connect_failure(&worker->metrics, connection->upstream->name, text);
    const char *why = connection->connect_timed_out ? "timed out" : strerror(-error);
    log_message(connect_warning_due(worker) ? LOG_WARN : LOG_DEBUG, "worker %u: upstream %s: connect to %s: %s",
                worker->index, connection->upstream->name, text, why);
    connect_next_server(worker, connection);
}

static void connect_next_server(struct worker *worker, struct connection *connection)
{
    const struct upstream_server *server = next_live_server(worker, connection);
    if (!server) {
        /* This connection fails, the next tries every server (older
         * nginx's quick recovery; 1.22 refuses until fail_timeout), unless
         * one is full: a busy pool is no dead one. */
        bool revived = upstream_health_revive(health_of(worker, connection), &worker->load, connection->upstream);
        const char *after = revived ? "all servers available again" : "a server is at max_conns";
        if (connect_warning_due(worker))
            log_warn("worker %u: upstream %s: no server left to try; client closed, %s", worker->index,
                     connection->upstream->name, after);
        else
            log_debug("worker %u: upstream %s: no live server left; %s", worker->index, connection->upstream->name,
                      after);
        connection_close(worker, connection, OUTCOME_CONNECT_FAILED);
        return;
    }
    connection->server = server;
    access_log_note_server(connection, &server->address);
    int family = address_family(&server->address);
    connection->connect_timed_out = false;
    int fd = upstream_socket(worker, family);
    if (fd < 0 && listener_is_resource_exhaustion(-fd)) {
        connection_close(worker, connection, OUTCOME_NO_RESOURCES);
        return;
    }
    if (fd < 0) {
        /* This server's family is not in the kernel (IPv6 on one booted
         * with ipv6.disable=1): unreachable from here, as a refusal. */
        server_failed(worker, connection, fd);
        return;
    }
    const struct snapshot_listener *listener = connect_listener_of(connection);
    if (listener && listener->source.kind != UPSTREAM_SOURCE_NONE && family != AF_UNIX &&
        !upstream_source_bind(worker, connection, fd, family, &listener->source)) {
        /* Not the server's fault: no failure counted against it, and no
         * other server tried, since each would be tried from the same
         * address. */
        close(fd);
        connection_close(worker, connection, OUTCOME_SOURCE_FAILED);
        return;
    }
    if (family != AF_UNIX) {
        for (size_t i = 0; i < RELAY_SOCKET_OPTION_COUNT; i++) {
            const struct relay_socket_option *option = &relay_socket_options[i];
            worker_queue_socket_option(worker, fd, option->level, option->name, option->value,
                                       sizeof *option->value);
        }
        worker_queue_socket_option(worker, fd, relay_unsent_limit.level, relay_unsent_limit.name,
                                   relay_unsent_limit.value, sizeof *relay_unsent_limit.value);
        /* Before the connect, so that the connection starts with it (reno
         * towards loopback servers by default: core/congestion.h). The
         * name is static or in the snapshot this connection pins. */
        const char *algorithm = congestion_algorithm(&connection->upstream->congestion, &server->address);
        if (algorithm)
            worker_queue_socket_option(worker, fd, IPPROTO_TCP, TCP_CONGESTION, algorithm,
                                       (socklen_t)strlen(algorithm));
        /* TCP_DEFER_ACCEPT on a connecting socket makes the kernel hold the
         * handshake's last ACK (up to 200 ms) and send it with the first
         * data segment: one packet less per connection, and the upstream
         * accepts the connection and its first bytes as one event. Only
         * where bytes follow at once: a server that speaks first would
         * otherwise wait for that timer. */
        if (sends_at_once(connection))
            worker_queue_socket_option(worker, fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one_second,
                                       sizeof one_second);
        /* The values are in the snapshot this connection pins. */
        keepalive_queue(worker, fd, &connection->upstream->keepalive);
    }
    connection->upstream_fd = fd;
    /* The kernel copies the address when the SQE is submitted, within this
     * loop iteration, while the snapshot holding it is pinned. */
    connection->connect_linked = may_link(worker, connection, server);
    if (connection->connect_linked)
        worker_reserve_sqes(worker, LINKED_CHAIN_SQES);
    struct io_uring_sqe *sqe = worker_sqe(worker);
    io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&server->address.storage,
                          server->address.length);
    worker_track_op(sqe, connection, RING_TAG_STEP);
    if (connection->connect_linked)
        link_first_exchange(worker, connection, sqe);
    uint32_t timeout_ms = listener ? listener->connect_timeout_ms
                                   : connection->snapshot->settings.connect_timeout_ms;
    timer_wheel_arm(&worker->timers, &connection->timer, worker->now_ms + timeout_ms);
}

/* The client's place on an upstream's ring: its address as admission or a
 * trusted PROXY header noted it, else the socket's peer. */
static bool client_key(struct connection *connection, uint32_t *key)
{
    if (!admission_client_address(connection))
        return false;
    *key = upstream_hash_client(&connection->client_address);
    return true;
}

/* Where the connection's attempts start, as the upstream's balance says:
 * the client's place on the ring; or the first primary among those this
 * worker sees available (all of them without a health table: a connection
 * on an older snapshot); with none available, or a client whose address
 * cannot be read, round robin by the upstream's fixed schedule. */
static void choose_first_primary(struct worker *worker, struct connection *connection, int32_t target)
{
    const struct upstream *upstream = connection->upstream;
    connection->follows_ring = upstream->balance == UPSTREAM_BALANCE_CLIENT_ADDRESS &&
                               client_key(connection, &connection->ring_key);
    if (connection->follows_ring)
        return;
    if (upstream_health_first_primary(health_of(worker, connection), &worker->load, upstream, worker->now_ms,
                                      &connection->first_primary))
        return;
    connection->first_primary = upstream_scheduled_primary(upstream, round_robin_next(worker, target));
}

const struct snapshot_listener *connect_listener_of(const struct connection *connection)
{
    const struct snapshot *snapshot = connection->snapshot;
    if (!snapshot || connection->listener >= snapshot->listener_count)
        return NULL;
    return &snapshot->listeners[connection->listener];
}

/* The route is chosen: connect, or close when there is none. */
static void connect_target(struct worker *worker, struct connection *connection, int32_t target,
                           const char *name)
{
    if (target == ROUTE_NO_MATCH) {
        log_debug("worker %u: no route for '%s'", worker->index, name);
        connection_close(worker, connection, OUTCOME_NO_ROUTE);
        return;
    }
    connect_upstream(worker, connection, target);
}

void connect_route(struct worker *worker, struct connection *connection, const char *name,
                   const char *name_as_sent, size_t len, const uint8_t *alpn, size_t alpn_len)
{
    const struct snapshot_listener *listener = connect_listener_of(connection);
    int32_t target = ROUTE_NO_MATCH;
    if (listener && listener->routes) {
        target = route_lookup_alpn(listener->routes, alpn, alpn_len);
        if (target == ROUTE_NO_MATCH)
            target = route_lookup_as_sent(listener->routes, name, name_as_sent, len);
    }
    else if (listener)
        target = listener->upstream;
    /* Logged as sent, as nginx's $ssl_preread_server_name: the case a
     * "~" route was matched against, so its choice can be read off the
     * line. */
    access_log_note_route(connection, name_as_sent, alpn, alpn_len);
    connect_target(worker, connection, target, name_as_sent);
}

void connect_route_not_tls(struct worker *worker, struct connection *connection)
{
    const struct snapshot_listener *listener = connect_listener_of(connection);
    int32_t target = listener && listener->routes ? route_lookup_not_tls(listener->routes) : ROUTE_NO_MATCH;
    access_log_note_route(connection, "", NULL, 0);
    connect_target(worker, connection, target, "(not TLS)");
}

void connect_upstream(struct worker *worker, struct connection *connection, int32_t target)
{
    struct snapshot *snapshot = connection->snapshot;
    if (target < 0 || (uint32_t)target >= snapshot->upstream_count) {
        connection_close(worker, connection, OUTCOME_NO_ROUTE);
        return;
    }
    connection->upstream = &snapshot->upstreams[target];
    /* Kept: the snapshot is unpinned once connected, and a reload must not
     * change an open connection's timeout (README: timeouts are for new
     * connections). */
    const struct snapshot_listener *listener = connect_listener_of(connection);
    connection->idle_timeout_ms = listener ? listener->idle_timeout_ms : snapshot->settings.idle_timeout_ms;
    connection->route_metrics = metrics_route(&worker->metrics, connection->upstream->name);
    access_log_note_upstream(connection, connection->upstream->name);
    choose_first_primary(worker, connection, target);
    connection->first_backup = CONNECT_BACKUP_UNCHOSEN;
    connection->connect_attempt = 0;
    memset(connection->tried_servers, 0, sizeof connection->tried_servers);
    connection->state = CONNECTION_CONNECT;
    hello_forward_take(worker, connection);
    connect_next_server(worker, connection);
}

/* A linked connect counts its completion and its send's as certain inside
 * the submission. One that waited (a full accept queue, a server that
 * drops SYNs) made the worker's wait ask for more completions than came:
 * that wait ended only at the next tick, and every connection of the
 * worker waited with it. So after one such wait no connect is linked for
 * LINK_PAUSE_MS: a server flooded with connects costs one tick a pause,
 * not one tick a connection. */
#define LINK_PAUSE_MS 1000

void connect_check_linked(struct worker *worker)
{
    if (worker->linked_completed < worker->linked_waited)
        worker->link_connects_from_ms = worker->now_ms + LINK_PAUSE_MS;
}

static void count_linked_completion(struct worker *worker, const struct connection *connection)
{
    if (connection->connect_linked && connection->linked_at_wait + 1 == (uint32_t)worker->waits)
        worker->linked_completed++;
}

void connect_on_complete(struct worker *worker, struct connection *connection, int result)
{
    count_linked_completion(worker, connection);
    const struct upstream_server *server = connection->server;
    if (result == 0) {
        connection->server_metrics = upstream_health_entry(health_of(worker, connection), &worker->metrics,
                                                           connection->upstream, server);
        metrics_add(&connection->server_metrics->connections, 1);
        uint8_t proxy_protocol = connection->upstream->proxy_protocol;
        bool client_waits = routed_by_name(connection);
        upstream_health_succeeded(health_of(worker, connection), connection->upstream, server);
        /* Nothing queued in this batch points into the snapshot: the
         * connect and its socket options were submitted long before. */
        connection_unpin_snapshot(worker, connection);
        if (proxy_header_forward(worker, connection, proxy_protocol))
            relay_start(worker, connection, client_waits);
        return;
    }
    close(connection->upstream_fd);
    connection->upstream_fd = -1;
    if (connection->pending_ops & CONNECTION_OPS_LINKED) {
        connection->failed_connect_result = result;
        return;
    }
    server_failed(worker, connection, result);
}

void connect_on_link_cancelled(struct worker *worker, struct connection *connection)
{
    /* The connect's own completion, or the other linked one, is still to come. */
    if (connection->pending_ops & (CONNECTION_OP_STEP | CONNECTION_OPS_LINKED))
        return;
    server_failed(worker, connection, connection->failed_connect_result);
}

void connect_on_timeout(struct worker *worker, struct connection *connection)
{
    /* A linked connect that has failed already waits only for its
     * cancelled links (connect_on_link_cancelled): its own error is the
     * reason to log, and the next server's timer is armed then. */
    if (!(connection->pending_ops & CONNECTION_OP_STEP))
        return;
    /* The cancelled connect completes with an error; the next server is
     * tried from connect_on_complete, once the operation slot is free. */
    connection->connect_timed_out = true;
    worker_cancel(worker, connection, RING_TAG_STEP);
}
