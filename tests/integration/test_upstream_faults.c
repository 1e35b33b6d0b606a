/*
 * test_upstream_faults.c - upstreams that misbehave after the connect
 * (refused and black-holed connects are in test_failover.c): a reset in
 * the middle of a stream and a close before reading anything end the
 * client's connection promptly, never hang it; a very slow reader gets
 * back-pressure: the proxy's memory stays flat and it does not spin while
 * the reader stalls. Ports: blocks 75-76.
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

static struct proxy faults_proxy;
static struct backend resetter, early_closer, slow_reader;

static void faults_fini(void)
{
    proxy_release(&faults_proxy);
    integration_cleanup();
}

static void reset_after_100k(struct backend *backend, int fd, void *context)
{
    (void)backend, (void)context;
    static const char chunk[100 * 1024];
    net_send_all(fd, chunk, sizeof chunk);
    sleep_ms(50);
    struct linger reset = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    /* the backend support closes fd on return: with linger 0, a reset */
}

static void close_at_once(struct backend *backend, int fd, void *context)
{
    (void)backend, (void)fd, (void)context;
}

static atomic_llong slow_received;

static void read_slowly(struct backend *backend, int fd, void *context)
{
    (void)backend, (void)context;
    char buffer[4096];
    long long until = monotonic_ms() + 4000;
    while (monotonic_ms() < until) {
        ssize_t got = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (got > 0)
            atomic_fetch_add(&slow_received, got);
        if (got == 0)
            return;
        sleep_ms(100);
    }
}

static char *start(uint16_t port)
{
    char *body = text_format("[routes]\nreset.example = resetter\nearly.example = early\nslow.example = slow\n"
                             "[upstream resetter]\nserver = 127.0.0.1:%u\n"
                             "[upstream early]\nserver = 127.0.0.1:%u\n"
                             "[upstream slow]\nserver = 127.0.0.1:%u\n",
                             port + 1, port + 2, port + 3);
    char *config = config_text(port, NULL, body);
    free(body);
    cr_assert(proxy_start(&faults_proxy, config, port));
    return config;
}

Test(upstream_faults, reset_mid_stream_and_early_close_end_the_client_promptly, .init = integration_init,
     .fini = faults_fini)
{
    uint16_t port = TEST_PORT(75, 0);
    cr_assert(backend_start(&resetter, "resetter", port + 1, reset_after_100k, NULL));
    cr_assert(backend_start(&early_closer, "early", port + 2, close_at_once, NULL));
    char *config = start(port);

    struct hello_bytes reset = hello_build("reset.example");
    int fd = net_connect(port);
    cr_assert_geq(fd, 0);
    cr_assert(net_send_all(fd, reset.data, reset.length));
    long long started = monotonic_ms();
    static char buffer[256 * 1024];
    struct net_receive_result result = net_receive_until_closed(fd, buffer, sizeof buffer, 5000);
    long long took = monotonic_ms() - started;
    close(fd);
    cr_expect((result.eof || result.reset) && !result.timed_out, "the client still waits after its upstream reset");
    cr_expect_lt(took, 3000, "took %lld ms to pass the reset on", took);
    cr_expect_leq(result.total, 100 * 1024);

    struct hello_bytes early = hello_build("early.example");
    bool closed = false;
    started = monotonic_ms();
    char *reply = exchange_once(port, early.data, early.length, 5000, &closed);
    took = monotonic_ms() - started;
    cr_expect(closed && reply && reply[0] == '\0', "early close: got '%s'", reply ? reply : "(null)");
    cr_expect_lt(took, 3000);
    free(reply);

    hello_free(&reset);
    hello_free(&early);
    free(config);
    cr_expect_eq(proxy_stop(&faults_proxy, 10000), 0);
}

Test(upstream_faults, slow_reader_gets_back_pressure_not_memory_or_spinning, .init = integration_init,
     .fini = faults_fini)
{
    integration_set_limit(30);
    uint16_t port = TEST_PORT(76, 0);
    cr_assert(backend_start(&slow_reader, "slow", port + 3, read_slowly, NULL));
    char *config = start(port);
    long rss_before = proxy_status_value(&faults_proxy, "VmRSS:");

    struct hello_bytes slow = hello_build("slow.example");
    int fd = net_connect(port);
    cr_assert_geq(fd, 0);
    cr_assert(net_send_all(fd, slow.data, slow.length));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* Push as fast as the path takes it: 256 MiB if it would. */
    static char chunk[65536];
    long long pushed = 0, until = monotonic_ms() + 1000;
    while (pushed < 256LL << 20 && monotonic_ms() < until) {
        ssize_t sent = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);
        if (sent > 0)
            pushed += sent;
        else
            sleep_ms(5);
    }
    /* Everything is full now: the proxy must sit still while the reader crawls. */
    long long ticks_before = process_cpu_ticks(faults_proxy.pid);
    long long wall_before = monotonic_ms();
    for (long long end = wall_before + 2000; monotonic_ms() < end;) {
        ssize_t sent = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);
        if (sent > 0)
            pushed += sent;
        sleep_ms(20);
    }
    long long ticks = process_cpu_ticks(faults_proxy.pid) - ticks_before;
    long long wall_ms = monotonic_ms() - wall_before;
    long ticks_per_second = sysconf(_SC_CLK_TCK);
    long long cpu_ms = ticks * 1000 / ticks_per_second;
    long rss_after = proxy_status_value(&faults_proxy, "VmRSS:");
    cr_log_info("pushed %lld B, reader got %lld B, proxy CPU %lld ms in %lld ms, RSS %ld -> %ld KiB", pushed,
                (long long)atomic_load(&slow_received), cpu_ms, wall_ms, rss_before, rss_after);
    cr_expect_lt(pushed, 64LL << 20, "%lld bytes accepted for a reader that took %lld: buffering without bound?",
                 pushed, (long long)atomic_load(&slow_received));
    cr_expect_lt(cpu_ms * 10, wall_ms, "the proxy used %lld ms of CPU in %lld ms of stall: busy loop?", cpu_ms,
                 wall_ms);
    cr_expect_lt(rss_after - rss_before, 8 * 1024, "RSS grew %ld KiB during back-pressure", rss_after - rss_before);
    close(fd);
    hello_free(&slow);
    free(config);
    cr_expect_eq(proxy_stop(&faults_proxy, 10000), 0);
}
