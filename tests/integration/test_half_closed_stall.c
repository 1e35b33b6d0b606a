/*
 * test_half_closed_stall.c - a peer that half-closes (sends its FIN) and
 * then stops reading while the other end streams: the proxy must sit
 * still (io_uring completes a POLLOUT poll at once on a socket whose peer
 * sent its FIN, so waiting that way spins a worker), and every byte must
 * arrive once the peer reads again. Both directions: a client that sends
 * its hello and FIN and downloads, an upstream that sends its FIN and
 * takes an upload. Ports: blocks 284-285.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
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
