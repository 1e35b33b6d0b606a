/*
 * net.c - blocking loopback TCP helpers with deadlines (see net.h).
 *
 * Owns nothing beyond the sockets it returns; never blocks past a deadline
 * the caller gave.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "child_process.h"

static struct sockaddr_in loopback(uint16_t port)
{
    struct sockaddr_in address = {
        .sin_family = AF_INET,
        .sin_port = htons(port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    return address;
}

static int listen_on(uint16_t port, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = loopback(port);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(fd, backlog) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int net_listen(uint16_t port)
{
    /* The system's maximum: a test server whose accept queue overflows
     * drops a connection's first data, which TCP then resends only after
     * its timer backs off (seconds): a proxy's burst would stall on the
     * test server's overload, not on anything the proxy does. */
    return listen_on(port, SOMAXCONN);
}

int net_black_hole(uint16_t port, int *fillers, int filler_count)
{
    int fd = listen_on(port, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in address = loopback(port);
    for (int i = 0; i < filler_count; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(fillers[i], (struct sockaddr *)&address, sizeof address);
    }
    sleep_ms(200); /* the fillers' handshakes fill the queue */
    return fd;
}

int net_connect(uint16_t port)
{
    return net_connect_from(NULL, port);
}

int net_connect_from(const char *source, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (source) {
        struct sockaddr_in from = { .sin_family = AF_INET };
        if (inet_pton(AF_INET, source, &from.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&from, sizeof from) != 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
    }
    struct sockaddr_in address = loopback(port);
    int result;
    do {
        result = connect(fd, (struct sockaddr *)&address, sizeof address);
    } while (result != 0 && errno == EINTR);
    if (result != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

bool net_wait_accepting(uint16_t port, int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    do {
        int fd = net_connect(port);
        if (fd >= 0) {
            close(fd);
            return true;
        }
        sleep_ms(10);
    } while (monotonic_ms() < deadline);
    return false;
}

/* Is a socket listening on 127.0.0.1:port (or 0.0.0.0:port)? Read from
 * /proc/net/tcp: "sl: LOCAL_HEX_IP:HEX_PORT REMOTE st ...", 0A = LISTEN. */
static bool listening_now(uint16_t port)
{
    FILE *table = fopen("/proc/net/tcp", "r");
    if (!table)
        return false;
    char line[256];
    bool found = false;
    while (!found && fgets(line, sizeof line, table)) {
        unsigned address, local_port, state;
        if (sscanf(line, " %*u: %8X:%4X %*8X:%*4X %2X", &address, &local_port, &state) != 3)
            continue;
        bool loopback_or_any = address == htonl(INADDR_LOOPBACK) || address == 0;
        found = state == 0x0A && local_port == port && loopback_or_any;
    }
    fclose(table);
    return found;
}

bool net_wait_listening(uint16_t port, int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    while (!listening_now(port)) {
        if (monotonic_ms() >= deadline)
            return false;
        sleep_ms(10);
    }
    return true;
}

/* One table's matching line, in the kernel's tcp4_seq_show / tcp6_seq_show
 * format: "sl: LOCAL:PORT REMOTE:PORT st tx_queue:rx_queue tr:tm->when ..."
 * (addresses 8 or 32 hex digits, all numbers hex). */
static bool timer_in_table(const char *path, uint16_t local_port, uint16_t remote_port,
                           struct net_tcp_timer *timer)
{
    FILE *table = fopen(path, "r");
    if (!table)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, table)) {
        unsigned local, remote, state, kind;
        unsigned long ticks;
        if (sscanf(line, " %*u: %*[0-9A-Fa-f]:%X %*[0-9A-Fa-f]:%X %X %*X:%*X %X:%lX", &local, &remote, &state,
                   &kind, &ticks) != 5)
            continue;
        /* Established only: an earlier run's TIME_WAIT sockets may share the ports. */
        found = state == 0x01 && (local_port == 0 || local == local_port) &&
                (remote_port == 0 || remote == remote_port);
        if (found)
            *timer = (struct net_tcp_timer){ .kind = kind, .ticks = ticks };
    }
    fclose(table);
    return found;
}

bool net_tcp_timer(uint16_t local_port, uint16_t remote_port, struct net_tcp_timer *timer)
{
    return timer_in_table("/proc/net/tcp", local_port, remote_port, timer) ||
           timer_in_table("/proc/net/tcp6", local_port, remote_port, timer);
}

void net_set_timeouts(int fd, int timeout_ms)
{
    struct timeval timeout = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

bool net_send_all(int fd, const void *data, size_t length)
{
    const uint8_t *cursor = data;
    while (length > 0) {
        ssize_t sent = send(fd, cursor, length, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return false;
        cursor += sent;
        length -= (size_t)sent;
    }
    return true;
}

/* Wait for readability until deadline; false on timeout. */
static bool wait_readable(int fd, long long deadline)
{
    for (;;) {
        long long remaining = deadline - monotonic_ms();
        if (remaining <= 0)
            return false;
        struct pollfd poller = {.fd = fd, .events = POLLIN};
        int ready = poll(&poller, 1, (int)remaining);
        if (ready > 0)
            return true;
        if (ready < 0 && errno != EINTR)
            return true; /* let the read report the error */
    }
}

size_t net_receive_exact(int fd, void *buffer, size_t length, int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    uint8_t *cursor = buffer;
    size_t received = 0;
    while (received < length) {
        if (!wait_readable(fd, deadline))
            break;
        ssize_t got = recv(fd, cursor + received, length - received, 0);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0)
            break;
        received += (size_t)got;
    }
    return received;
}

struct net_receive_result net_receive_until_closed(int fd, void *buffer, size_t capacity,
                                                   int timeout_ms)
{
    struct net_receive_result result = {0};
    long long deadline = monotonic_ms() + timeout_ms;
    uint8_t scratch[16384];
    for (;;) {
        if (!wait_readable(fd, deadline)) {
            result.timed_out = true;
            return result;
        }
        uint8_t *target = scratch;
        size_t room = sizeof scratch;
        if (result.length < capacity) {
            target = (uint8_t *)buffer + result.length;
            room = capacity - result.length;
        }
        ssize_t got = recv(fd, target, room, 0);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got == 0) {
            result.eof = true;
            return result;
        }
        if (got < 0) {
            result.reset = (errno == ECONNRESET);
            return result;
        }
        if (target != scratch)
            result.length += (size_t)got;
        result.total += (size_t)got;
    }
}

long long net_ms_until_closed(int fd, long long since_ms, int timeout_ms, size_t *bytes_received)
{
    long long deadline = since_ms + timeout_ms;
    struct net_receive_result result =
        net_receive_until_closed(fd, NULL, 0, (int)(deadline - monotonic_ms()));
    if (bytes_received)
        *bytes_received = result.total;
    if (!result.eof && !result.reset)
        return -1;
    return monotonic_ms() - since_ms;
}

bool net_tcp_info(int fd, struct tcp_info *info)
{
    socklen_t length = sizeof *info;
    memset(info, 0, sizeof *info);
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, &length) == 0;
}

uint16_t net_free_low_port(void)
{
    for (uint16_t port = 991; port <= 999; port++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return 0;
        int on = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(port),
                                       .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        bool free_here = bind(fd, (struct sockaddr *)&address, sizeof address) == 0;
        close(fd);
        if (free_here)
            return port;
    }
    return 0;
}
