/*
 * test_half_closed_stall.c - a peer that half-closes (sends its FIN) and
 * then stops reading while the other end streams: the proxy must sit
 * still (io_uring completes a POLLOUT poll at once on a socket whose peer
 * sent its FIN, so waiting that way spins a worker), and every byte must
 * arrive once the peer reads again. Both directions: a client that sends
 * its hello and FIN and downloads, an upstream that sends its FIN and
 * takes an upload; a stalled connection closed by idle_timeout, and more
 * stalled clients than one look at the epoll set takes. Ports: blocks
 * 284-285, 301-302.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"

#define STREAM_BYTES (32u << 20)

static struct proxy stall_proxy;
static struct backend streamer, half_closer;

static void stall_fini(void)
{
    proxy_release(&stall_proxy);
    integration_cleanup();
}

static void fill_pattern(uint8_t *bytes, size_t length, size_t offset)
{
    for (size_t i = 0; i < length; i++)
        bytes[i] = (uint8_t)((offset + i) % 251);
}

static bool has_pattern(const uint8_t *bytes, size_t length, size_t offset)
{
    for (size_t i = 0; i < length; i++)
        if (bytes[i] != (uint8_t)((offset + i) % 251))
            return false;
    return true;
}

/* Streams, then reads the hello and the FIN behind it: a close with
 * unread bytes would be a reset, which drops the stream's unsent tail. */
static void send_stream(struct backend *backend, int fd, void *context)
{
    (void)backend, (void)context;
    static uint8_t chunk[65536];
    for (size_t sent = 0; sent < STREAM_BYTES; sent += sizeof chunk) {
        fill_pattern(chunk, sizeof chunk, sent);
        if (!net_send_all(fd, chunk, sizeof chunk))
            return;
    }
    shutdown(fd, SHUT_WR);
    while (recv(fd, chunk, sizeof chunk, 0) > 0)
        continue;
}

static atomic_llong upload_received;
static atomic_bool upload_intact;

/* Reads the hello, sends its FIN, takes nothing for 2.5 s, then reads the
 * upload to its end, checking every byte. */
static void half_close_then_read_late(struct backend *backend, int fd, void *context)
{
    (void)backend;
    size_t hello_length = *(const size_t *)context;
    static uint8_t buffer[65536];
    size_t hello_seen = 0;
    while (hello_seen < hello_length) {
        ssize_t got = recv(fd, buffer, hello_length - hello_seen, 0);
        if (got <= 0)
            return;
        hello_seen += (size_t)got;
    }
    shutdown(fd, SHUT_WR);
    sleep_ms(2500);
    long long total = 0;
    bool intact = true;
    for (;;) {
        ssize_t got = recv(fd, buffer, sizeof buffer, 0);
        if (got <= 0)
            break;
        intact = intact && has_pattern(buffer, (size_t)got, (size_t)total);
        total += got;
    }
    atomic_store(&upload_intact, intact);
    atomic_store(&upload_received, total);
}

static void start_proxy(uint16_t port, uint16_t upstream_port)
{
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", upstream_port);
    char *config = config_text(port, NULL, body);
    cr_assert(proxy_start(&stall_proxy, config, port));
    free(body);
    free(config);
}

static long long proxy_cpu_ms_over(int wall_ms)
{
    long long ticks_before = process_cpu_ticks(stall_proxy.pid);
    sleep_ms(wall_ms);
    long long ticks = process_cpu_ticks(stall_proxy.pid) - ticks_before;
    return ticks * 1000 / sysconf(_SC_CLK_TCK);
}

Test(half_closed_stall, client_that_sent_its_fin_and_stopped_reading_costs_no_cpu_and_gets_every_byte,
     .init = integration_init, .fini = stall_fini)
{
    integration_set_limit(60);
    uint16_t port = TEST_PORT(284, 0);
    cr_assert(backend_start(&streamer, "streamer", port + 1, send_stream, NULL));
    start_proxy(port, port + 1);

    struct hello_bytes hello = hello_build("stall.example");
    int fd = net_connect(port);
    cr_assert_geq(fd, 0);
    cr_assert(net_send_all(fd, hello.data, hello.length));
    shutdown(fd, SHUT_WR);
    sleep_ms(500); /* every buffer on the way fills up */
    long long cpu_ms = proxy_cpu_ms_over(1500);
    cr_expect_lt(cpu_ms * 10, 1500, "the proxy used %lld ms of CPU in 1500 ms of stall: busy loop?", cpu_ms);

    uint8_t *received = malloc(STREAM_BYTES + 1);
    cr_assert(received);
    struct net_receive_result result = net_receive_until_closed(fd, received, STREAM_BYTES + 1, 20000);
    cr_expect(result.eof, "the stream did not end (eof %d, reset %d, timed out %d)", result.eof, result.reset,
              result.timed_out);
    cr_expect_eq(result.total, STREAM_BYTES, "got %zu of %u bytes", result.total, STREAM_BYTES);
    cr_expect(has_pattern(received, result.length, 0), "the bytes arrived changed");
    free(received);
    close(fd);
    hello_free(&hello);
    cr_expect_eq(proxy_stop(&stall_proxy, 10000), 0);
}

Test(half_closed_stall, upstream_that_sent_its_fin_and_stopped_reading_costs_no_cpu_and_gets_every_byte,
     .init = integration_init, .fini = stall_fini)
{
    integration_set_limit(60);
    uint16_t port = TEST_PORT(285, 0);
    struct hello_bytes hello = hello_build("stall.example");
    cr_assert(backend_start(&half_closer, "half_closer", port + 1, half_close_then_read_late, &hello.length));
    start_proxy(port, port + 1);

    int fd = net_connect(port);
    cr_assert_geq(fd, 0);
    cr_assert(net_send_all(fd, hello.data, hello.length));
    char nothing[16];
    struct net_receive_result ended = net_receive_until_closed(fd, nothing, sizeof nothing, 2000);
    cr_assert(ended.eof && ended.total == 0, "the upstream's FIN was not passed on");
    /* Push until everything on the way is full. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    static uint8_t chunk[65536];
    size_t pushed = 0;
    for (long long quiet_since = monotonic_ms(); pushed < STREAM_BYTES && monotonic_ms() - quiet_since < 300;) {
        size_t length = STREAM_BYTES - pushed < sizeof chunk ? STREAM_BYTES - pushed : sizeof chunk;
        fill_pattern(chunk, length, pushed);
        ssize_t sent = send(fd, chunk, length, MSG_NOSIGNAL);
        if (sent > 0) {
            pushed += (size_t)sent;
            quiet_since = monotonic_ms();
        } else {
            sleep_ms(5);
        }
    }
    long long cpu_ms = proxy_cpu_ms_over(1000);
    cr_expect_lt(cpu_ms * 10, 1000, "the proxy used %lld ms of CPU in 1000 ms of stall: busy loop?", cpu_ms);

    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    while (pushed < STREAM_BYTES) {
        size_t length = STREAM_BYTES - pushed < sizeof chunk ? STREAM_BYTES - pushed : sizeof chunk;
        fill_pattern(chunk, length, pushed);
        cr_assert(net_send_all(fd, chunk, length), "the upload was cut at %zu bytes", pushed);
        pushed += length;
    }
    shutdown(fd, SHUT_WR);
    for (long long until = monotonic_ms() + 20000; atomic_load(&upload_received) == 0 && monotonic_ms() < until;)
        sleep_ms(20);
    cr_expect_eq(atomic_load(&upload_received), (long long)STREAM_BYTES, "the upstream got %lld of %u bytes",
                 (long long)atomic_load(&upload_received), STREAM_BYTES);
    cr_expect(atomic_load(&upload_intact), "the bytes arrived changed");
    close(fd);
    hello_free(&hello);
    cr_expect_eq(proxy_stop(&stall_proxy, 10000), 0);
}


/* Half-closes, then reads nothing: the proxy's idle_timeout ends it. */
static int park_a_client(uint16_t port, const struct hello_bytes *hello)
{
    int fd = net_connect(port);
    cr_assert_geq(fd, 0);
    cr_assert(net_send_all(fd, hello->data, hello->length));
    shutdown(fd, SHUT_WR);
    return fd;
}

static void expect_whole_stream(int fd, const char *what)
{
    uint8_t *received = malloc(STREAM_BYTES + 1);
    cr_assert(received);
    struct net_receive_result result = net_receive_until_closed(fd, received, STREAM_BYTES + 1, 20000);
    cr_expect(result.eof, "%s: the stream did not end (eof %d, reset %d, timed out %d)", what, result.eof,
              result.reset, result.timed_out);
    cr_expect_eq(result.total, STREAM_BYTES, "%s: got %zu of %u bytes", what, result.total, STREAM_BYTES);
    cr_expect(has_pattern(received, result.length, 0), "%s: the bytes arrived changed", what);
    free(received);
}

/* A connection closed while its client socket waits in the worker's epoll
 * set must leave it: the next connection of that worker, most likely in
 * the same slot and with the same fd number, waits there in its turn and
 * gets every byte, and no socket is left behind. */
Test(half_closed_stall, a_stalled_connection_closed_by_idle_timeout_leaves_the_wait_set_clean,
     .init = integration_init, .fini = stall_fini)
{
    integration_set_limit(60);
    uint16_t port = TEST_PORT(301, 0);
    cr_assert(backend_start(&streamer, "streamer", port + 1, send_stream, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", port + 1);
    char *config = config_text(port, "workers = 1\nidle_timeout = 1s\n", body);
    cr_assert(proxy_start(&stall_proxy, config, port));
    free(body);
    free(config);
    /* Once the start-up check's own connection (accepted when its FIN
     * passed TCP_DEFER_ACCEPT) is gone from the proxy too. */
    int sockets_before = proxy_count_when_still(&stall_proxy, proxy_socket_count, 200, 3000);
    struct hello_bytes hello = hello_build("stall.example");

    for (int round = 0; round < 3; round++) {
        int parked = park_a_client(port, &hello);
        sleep_ms(1800); /* stalled past idle_timeout: the proxy closes it */
        size_t received = 0;
        long long closed_after = net_ms_until_closed(parked, monotonic_ms(), 5000, &received);
        cr_expect_geq(closed_after, 0, "round %d: the stalled client was not closed by idle_timeout = 1s", round);
        cr_expect_lt(received, STREAM_BYTES, "round %d: the whole stream came: it was never stalled", round);
        close(parked);
    }
    int fd = park_a_client(port, &hello);
    sleep_ms(300); /* stalled: every buffer on the way is full */
    expect_whole_stream(fd, "the connection after three closed while stalled");
    close(fd);
    long long deadline = monotonic_ms() + 3000;
    while (proxy_socket_count(&stall_proxy) > sockets_before && monotonic_ms() < deadline)
        sleep_ms(20);
    int sockets_after = proxy_socket_count(&stall_proxy);
    cr_expect_eq(sockets_after, sockets_before, "sockets left behind: %d, %d before", sockets_after, sockets_before);
    hello_free(&hello);
    cr_expect_eq(proxy_stop(&stall_proxy, 10000), 0);
}

#define MANY_CLIENTS 150
#define MANY_BYTES (1u << 20)

static void send_small_stream(struct backend *backend, int fd, void *context)
{
    (void)backend, (void)context;
    static _Thread_local uint8_t chunk[65536];
    for (size_t sent = 0; sent < MANY_BYTES; sent += sizeof chunk) {
        fill_pattern(chunk, sizeof chunk, sent);
        if (!net_send_all(fd, chunk, sizeof chunk))
            return;
    }
    shutdown(fd, SHUT_WR);
    while (recv(fd, chunk, sizeof chunk, 0) > 0)
        continue;
}

/* Reads every client to its end at once; the clients still short after
 * timeout_ms are counted in *unfinished, those with changed bytes in
 * *changed. */
static void read_all_to_end(const int *fds, int count, int timeout_ms, int *unfinished, int *changed)
{
    static size_t totals[MANY_CLIENTS];
    static bool ended[MANY_CLIENTS];
    memset(totals, 0, sizeof totals);
    memset(ended, 0, sizeof ended);
    *changed = 0;
    int open = count;
    static uint8_t buffer[65536];
    for (long long until = monotonic_ms() + timeout_ms; open > 0 && monotonic_ms() < until;) {
        struct pollfd waits[MANY_CLIENTS];
        for (int i = 0; i < count; i++)
            waits[i] = (struct pollfd){ ended[i] ? -1 : fds[i], POLLIN, 0 };
        if (poll(waits, (nfds_t)count, 100) <= 0)
            continue;
        for (int i = 0; i < count; i++) {
            if (ended[i] || !(waits[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = recv(fds[i], buffer, sizeof buffer, MSG_DONTWAIT);
            if (got > 0) {
                if (!has_pattern(buffer, (size_t)got, totals[i]))
                    (*changed)++;
                totals[i] += (size_t)got;
            } else if (got == 0 || !(errno == EAGAIN || errno == EWOULDBLOCK)) {
                ended[i] = true;
                open--;
            }
        }
    }
    *unfinished = 0;
    for (int i = 0; i < count; i++)
        if (!ended[i] || totals[i] != MANY_BYTES)
            (*unfinished)++;
}

/* More stalled clients on one worker than one look at its epoll set
 * takes (64): when they all read again, every one of them is relayed to
 * its end, not only the first 64 ready. */
Test(half_closed_stall, more_stalled_clients_than_one_epoll_wait_takes_all_get_every_byte,
     .init = integration_init, .fini = stall_fini)
{
    integration_set_limit(90);
    uint16_t port = TEST_PORT(302, 0);
    cr_assert(backend_start(&streamer, "streamer", port + 1, send_small_stream, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", port + 1);
    char *config = config_text(port, "workers = 1\nidle_timeout = 8s\n", body);
    cr_assert(proxy_start(&stall_proxy, config, port));
    free(body);
    free(config);
    struct hello_bytes hello = hello_build("stall.example");
    static int fds[MANY_CLIENTS];
    int small = 4096;
    for (int i = 0; i < MANY_CLIENTS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fds[i], 0);
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        cr_assert_eq(connect(fds[i], (struct sockaddr *)&to, sizeof to), 0);
        cr_assert(net_send_all(fds[i], hello.data, hello.length));
        shutdown(fds[i], SHUT_WR);
    }
    sleep_ms(1000); /* every one stalled, its buffers full */
    int unfinished = 0, changed = 0;
    read_all_to_end(fds, MANY_CLIENTS, 30000, &unfinished, &changed);
    cr_expect_eq(unfinished, 0, "%d of %d stalled clients did not get their %u bytes and the end", unfinished,
                 MANY_CLIENTS, MANY_BYTES);
    cr_expect_eq(changed, 0, "%d reads brought changed bytes", changed);
    for (int i = 0; i < MANY_CLIENTS; i++)
        close(fds[i]);
    hello_free(&hello);
    cr_expect_eq(proxy_stop(&stall_proxy, 10000), 0);
}
