/*
 * listener.c - open listening sockets, accept connections, enforce the
 * connection limit. Never reads from a client: that is preread's job.
 * Socket options decided here: TCP_DEFER_ACCEPT where the client speaks
 * first, TCP_NOTSENT_LOWAT where the address is loopback, the congestion
 * control algorithm of the accepted sockets (reno where the address is
 * loopback, by default: core/congestion.h), and CPU steering (CBPF) where
 * packets arrive spread over the workers' CPUs (read from /sys/class/net
 * at bind time). A socket kept across a reload, or inherited at an
 * upgrade, gets them again from the configuration it now serves.
 *
 * A worker's sockets follow the snapshot it runs on: the main thread binds
 * new addresses (all workers' sockets, or none, so a reload that cannot
 * bind is rejected whole) and hands them over before publishing; the
 * worker starts accepting on them when it adopts that snapshot, and closes
 * those the snapshot no longer lists. A closed socket's accept may still
 * be in flight: the listener struct waits on `closed_listeners` until its
 * last accept completion has come back.
 */
#include "listener.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/congestion.h"
#include "log.h"
#include "preread.h"
#include "relay.h"

/* SNI routing does nothing before the client's first bytes, so the kernel
 * may as well hold a new connection until they arrive (TCP_DEFER_ACCEPT):
 * accept and hello become one event instead of two (6-11% less CPU per
 * connection, bench/NOTES.md), and a client that connects and stays silent
 * costs no fd. Plain forwards must not wait: there the server may speak
 * first (SMTP, SSH banners). One second is the shortest the kernel offers:
 * a client still silent when the SYN-ACK is first retransmitted is accepted
 * on its next ACK, and preread_timeout applies from then on. */
static void wait_for_first_bytes(int fd, bool client_speaks_first)
{
    int seconds = client_speaks_first ? 1 : 0;
    if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds) < 0)
        log_warn("TCP_DEFER_ACCEPT: %s", strerror(errno));
}

/* EACCES from bind is the kernel's privileged ports rule: said plainly,
 * as a reload that adds such a port is where an operator meets it. */
static const char *bind_refusal_hint(const struct address *address, int error_number)
{
    if (error_number != EACCES || ntohs(address_port(address)) >= 1024)
        return "";
    return " (a port below 1024 needs CAP_NET_BIND_SERVICE: start snisplice as root or with that capability; "
           "with `user =` it keeps the capability only if it started with it)";
}

/* Accepted sockets inherit the listening socket's algorithm. Where the
 * listener names none, the socket may still carry one an earlier
 * configuration set (a reload kept the socket, an upgrade passed it on),
 * and the kernel has no "unset": it gets the system's default back. Set
 * only where the socket has another (a fresh socket is left untouched). */
static void apply_congestion(int fd, const struct address *address, const struct snapshot_listener *listener)
{
    const char *wanted = congestion_algorithm(&listener->congestion, address);
    if (!wanted)
        wanted = listener->congestion_system;
    char current[CONGESTION_NAME_MAX] = "";
    socklen_t length = sizeof current - 1;
    if (wanted[0] == '\0' || getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, current, &length) < 0 ||
        strcmp(current, wanted) == 0)
        return;
    if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, wanted, (socklen_t)strlen(wanted)) < 0)
        log_warn("TCP_CONGESTION %s on a listening socket: %s", wanted, strerror(errno));
}

void listener_apply_config_options(int fd, const struct address *address, const struct snapshot_listener *listener)
{
    apply_congestion(fd, address, listener);
    wait_for_first_bytes(fd, listener->routes != NULL);
}

/* The options a listening socket of `address` carries, so that accepted
 * sockets inherit them (no system call per connection): the relay's
 * (relay.h), the unsent limit only where the address is loopback (relay.h
 * says why: a listener on 0.0.0.0 serves the internet, where the limit
 * slows downloads), and those its listener's configuration decides.
 * Before listen() for a new socket: no connection may slip in undeferred. */
void listener_apply_options(int fd, const struct address *address, const struct snapshot_listener *listener)
{
    for (size_t i = 0; i < RELAY_SOCKET_OPTION_COUNT; i++) {
        const struct relay_socket_option *option = &relay_socket_options[i];
        setsockopt(fd, option->level, option->name, option->value, sizeof *option->value);
    }
    if (address_is_loopback(address))
        setsockopt(fd, relay_unsent_limit.level, relay_unsent_limit.name, relay_unsent_limit.value,
                   sizeof *relay_unsent_limit.value);
    listener_apply_config_options(fd, address, listener);
}

int listener_open(const struct address *address, const struct snapshot_listener *listener, char *error,
                  size_t error_size)
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
    const char *step = "SO_REUSEPORT"; /* named in the error: bind is not the only call that fails */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0)
        goto fail_errno;
    listener_apply_options(fd, address, listener);
    /* Like nginx's default ipv6only=on: [::]:443 and 0.0.0.0:443 can coexist. */
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    step = "bind";
    if (bind(fd, (const struct sockaddr *)&address->storage, address->length) < 0)
        goto fail_errno;
    step = "listen";
    if (listen(fd, LISTENER_BACKLOG) < 0)
        goto fail_errno;
    return fd;
fail_errno:
    snprintf(error, error_size, "%s: %s: %s%s", text, step, strerror(errno), bind_refusal_hint(address, errno));
    close(fd);
    return -1;
}

bool listener_address_taken(const struct address *address)
{
    int family = address_family(address);
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int on = 1;
    /* As the workers' sockets, less SO_REUSEPORT: connections left from
     * an earlier listener (TIME_WAIT, a draining process) are no
     * conflict, a listening socket is. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    bool taken = bind(fd, (const struct sockaddr *)&address->storage, address->length) < 0 && errno == EADDRINUSE;
    close(fd);
    return taken;
}

bool listener_steer_by_cpu(int fd, const int *worker_cpus, unsigned worker_count)
{
    /* A classic BPF program for the whole SO_REUSEPORT group: its answer is
     * an index into the group, in the order the sockets joined it, which is
     * worker order (main opens them so). "Which CPU runs the softirq for
     * this SYN" -> "the worker pinned there"; any other CPU answers out of
     * range, and the kernel falls back to its hash. */
    if (worker_count == 0 || worker_count > 1000)
        return false;
    unsigned length = 2 + 2 * worker_count, at = 0;
    struct sock_filter *code = calloc(length, sizeof *code);
    if (!code)
        return false;
    code[at++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_CPU));
    for (unsigned w = 0; w < worker_count; w++) {
        code[at++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)worker_cpus[w], 0, 1);
        code[at++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, w);
    }
    code[at++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
    struct sock_fprog program = { .len = (unsigned short)at, .filter = code };
    bool ok = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof program) == 0;
    free(code);
    return ok;
}

static bool read_small_file(const char *path, char *buffer, size_t size)
{
    FILE *file = fopen(path, "re");
    if (!file)
        return false;
    bool ok = fgets(buffer, (int)size, file) != NULL;
    fclose(file);
    return ok;
}

/* An rps_cpus mask such as "00000000,00000003\n": any CPU set? */
static bool mask_has_cpu(const char *mask)
{
    for (; *mask; mask++)
        if (isxdigit((unsigned char)*mask) && *mask != '0')
            return true;
    return false;
}

/* One interface directory under sysfs_net: does it spread received packets
 * over at least `cpus` CPUs? Virtual devices (no `device` link: veth,
 * bridges, lo) and interfaces that are down do not receive from outside. */
static bool interface_spreads(const char *sysfs_net, const char *name, unsigned cpus)
{
    char path[PATH_MAX], text[256];
    snprintf(path, sizeof path, "%s/%s/device", sysfs_net, name);
    if (access(path, F_OK) != 0)
        return true;
    snprintf(path, sizeof path, "%s/%s/operstate", sysfs_net, name);
    if (read_small_file(path, text, sizeof text) && strncmp(text, "down", 4) == 0)
        return true;
    snprintf(path, sizeof path, "%s/%s/queues", sysfs_net, name);
    DIR *queues = opendir(path);
    if (!queues)
        return false;
    unsigned receive_queues = 0;
    bool packet_steering = false;
    for (struct dirent *entry; (entry = readdir(queues)) != NULL;) {
        if (strncmp(entry->d_name, "rx-", 3) != 0)
            continue;
        receive_queues++;
        snprintf(path, sizeof path, "%s/%s/queues/%s/rps_cpus", sysfs_net, name, entry->d_name);
        if (read_small_file(path, text, sizeof text) && mask_has_cpu(text))
            packet_steering = true;
    }
    closedir(queues);
    return receive_queues >= cpus || packet_steering;
}

bool listener_nics_spread_over(const char *sysfs_net, unsigned cpus)
{
    DIR *interfaces = opendir(sysfs_net);
    if (!interfaces)
        return false;
    bool spread = true;
    for (struct dirent *entry; spread && (entry = readdir(interfaces)) != NULL;)
        if (entry->d_name[0] != '.')
            spread = interface_spreads(sysfs_net, entry->d_name, cpus);
    closedir(interfaces);
    return spread;
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
    /* Closing at a drain refuses what arrives meanwhile; at an upgrade's
     * handover the connection is served: no client may see a reset. */
    if (worker->draining && !worker->handing_off) {
        close(fd);
        return;
    }
    if (worker->open_connections >= worker->max_connections) {
        close(fd);
        counter_add(&worker->counters.rejected_at_limit, 1);
        /* Said, as nginx says its worker_connections are not enough: such a
         * client gets no access-log line, not being accepted. */
        if (log_once_a_second(&worker->limit_warned_ms, worker->now_ms))
            log_warn("worker %u: max_connections reached (%u open, its share): new clients are closed at once "
                     "(counted in snisplice_rejected_total)", worker->index, worker->max_connections);
        return;
    }
    struct connection *connection = connection_new(worker, fd);
    if (!connection) {
        /* Out of memory: said once, and the next clients wait in the
         * backlog for the pause rather than be closed one after another. */
        close(fd);
        listener_pause_accepting(worker, "new connection", ENOMEM);
        return;
    }
    counter_add(&worker->counters.accepted, 1);
    /* The listener's index is one of this snapshot's: the connection keeps
     * it (pinned) until connected, so a reload that reorders or removes
     * listen sections meanwhile cannot give it another listener's routes,
     * upstream or PROXY-header trust. Like nginx, a connection is served by
     * the configuration it was accepted under. */
    snapshot_pin(worker->snapshot, worker->index);
    connection->snapshot = worker->snapshot;
    connection->listener = (uint16_t)listener->index;
    access_log_begin(worker, connection);
    preread_start(worker, connection);
}

bool listener_is_resource_exhaustion(int error)
{
    return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

static void unlink_listener(struct listener **list, struct listener *listener)
{
    for (struct listener **at = list; *at; at = &(*at)->next) {
        if (*at == listener) {
            *at = listener->next;
            return;
        }
    }
}

/* Close the socket; free the struct now or when its accept comes back. */
static void retire(struct worker *worker, struct listener *listener)
{
    unlink_listener(&worker->listeners, listener);
    if (listener->accept_armed)
        worker_cancel(worker, listener, RING_TAG_ACCEPT);
    /* Queued behind the cancel, and behind a re-arm this batch may hold:
     * a number closed at once could be reused by another socket before
     * that re-arm reaches the kernel. */
    worker_queue_close(worker, listener->fd);
    listener->fd = -1;
    /* Its index stays this snapshot's: the drain publishes no other. */
    listener->serve_late = worker->handing_off;
    if (listener->accept_armed) {
        listener->next = worker->closed_listeners;
        worker->closed_listeners = listener;
    } else {
        free(listener);
    }
}

void listener_on_accept(struct worker *worker, struct listener *listener, int result,
                        uint32_t flags)
{
    if (!(flags & IORING_CQE_F_MORE))
        listener->accept_armed = false;
    if (listener->fd < 0) {
        /* Accepted just before its socket was closed: nobody serves that
         * address any more, unless it was closed for an upgrade, where
         * the socket lives on in the new process and this client's
         * connection is as good as any. */
        if (result >= 0 && listener->serve_late)
            accept_connection(worker, listener, result);
        else if (result >= 0)
            close(result);
        if (!listener->accept_armed) {
            unlink_listener(&worker->closed_listeners, listener);
            free(listener);
        }
        return;
    }
    if (result >= 0) {
        accept_connection(worker, listener, result);
    } else if (listener_is_resource_exhaustion(-result)) {
        /* Idle pooled pipes are a cache: their fds go first. */
        if (pipe_pool_release_idle(&worker->pipes) == 0) {
            listener_pause_accepting(worker, "accept", -result);
            return;
        }
    } else if (result != -ECANCELED && result != -ECONNABORTED && result != -EAGAIN) {
        log_warn("worker %u: accept: %s", worker->index, strerror(-result));
    }
    if (!listener->accept_armed && !worker->draining && worker->accept_paused_until_ms == 0)
        listener_arm_accept(worker, listener);
}

void listener_pause_accepting(struct worker *worker, const char *step, int error)
{
    /* Once per shortage. Not "until the next accept": with fds coming
     * and going (each failed connection gives its client's back), accepts
     * and failed upstream sockets alternate all through one shortage. */
    if (worker->fd_shortage_seen_ms == 0 || worker->now_ms - worker->fd_shortage_seen_ms >= LISTENER_SHORTAGE_OVER_MS)
        log_warn("worker %u: %s: %s; retrying every %d ms until it recovers", worker->index, step,
                 strerror(error), LISTENER_PAUSE_MS);
    worker->fd_shortage_seen_ms = worker->now_ms;
    worker->accept_paused_until_ms = worker->now_ms + LISTENER_PAUSE_MS;
    /* A still-armed multishot would keep failing: stop it until the pause ends. */
    for (struct listener *listener = worker->listeners; listener; listener = listener->next)
        if (listener->accept_armed)
            worker_cancel(worker, listener, RING_TAG_ACCEPT);
}

void listener_resume(struct worker *worker)
{
    if (worker->accept_paused_until_ms == 0 || worker->now_ms < worker->accept_paused_until_ms)
        return;
    worker->accept_paused_until_ms = 0;
    for (struct listener *listener = worker->listeners; listener; listener = listener->next)
        listener_arm_accept(worker, listener);
}

void listener_close_all(struct worker *worker)
{
    while (worker->listeners)
        retire(worker, worker->listeners);
}

void listener_match_snapshot(struct worker *worker, const struct snapshot *snapshot)
{
    /* Only what was handed over for this snapshot or an older one: a
     * reload right behind may already have put its new addresses in the
     * inbox, which this snapshot does not list, and which must wait for
     * theirs rather than be closed. */
    pthread_mutex_lock(&worker->inbox_lock);
    for (struct listener **at = &worker->inbox; *at;) {
        struct listener *handed_over = *at;
        if (handed_over->epoch > snapshot->epoch) {
            at = &handed_over->next;
            continue;
        }
        *at = handed_over->next;
        handed_over->next = worker->listeners;
        worker->listeners = handed_over;
    }
    pthread_mutex_unlock(&worker->inbox_lock);
    struct listener *next;
    for (struct listener *listener = worker->listeners; listener; listener = next) {
        next = listener->next;
        const struct snapshot_address *match = NULL;
        for (uint32_t i = 0; i < snapshot->address_count && !match; i++)
            if (address_equal(&snapshot->addresses[i].address, &listener->address))
                match = &snapshot->addresses[i];
        if (!match || worker->draining) {
            retire(worker, listener);
            continue;
        }
        listener->index = match->listener;
        /* Again on every snapshot: a reload may turn a kept address into a
         * plain forward or back, or change its congestion control
         * (listener_open set them for the first one). */
        listener_apply_config_options(listener->fd, &listener->address, &snapshot->listeners[match->listener]);
        if (worker->accept_paused_until_ms == 0)
            listener_arm_accept(worker, listener);
    }
}

static void free_list(struct listener *listener)
{
    while (listener) {
        struct listener *next = listener->next;
        if (listener->fd >= 0)
            close(listener->fd);
        free(listener);
        listener = next;
    }
}

void listener_free_all(struct worker *worker)
{
    free_list(worker->listeners);
    free_list(worker->closed_listeners);
    free_list(worker->inbox);
    worker->listeners = worker->closed_listeners = worker->inbox = NULL;
}
