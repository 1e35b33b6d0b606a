/*
 * test_fd_hygiene.c - a long-running proxy must not leak descriptors: after
 * hundreds of finished, garbage and abandoned connections its /proc/PID/fd
 * count returns to the baseline taken after a warm-up (the warm-up fills
 * the pipe pool, which legitimately keeps idle pipes). Ports: block 18.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy hygiene_proxy;
static struct backend alpha_backend;

static void hygiene_fini(void)
{
    proxy_release(&hygiene_proxy);
    integration_cleanup();
}

static int good_connections(uint16_t proxy_port, const struct hello_bytes *hello, int count)
{
    int failed = 0;
    for (int i = 0; i < count; i++) {
        char *reply = exchange_once(proxy_port, hello->data, hello->length, 5000, NULL);
        failed += !reply || strcmp(reply, "alpha\n") != 0;
        free(reply);
    }
    return failed;
}

#define STATS_PORT TEST_PORT(18, 2)

/* The proxy's fds outside its pipe pools (which keep up to the peak number
 * of pipes lent at once, by design), once they are back at `target` and no
 * pipe is lent, or when timeout_ms ran out. */
static int fd_count_settled(const struct proxy *proxy, int target, int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms, in_use = 0;
    int count = stats_fds_outside_pool(proxy, STATS_PORT, &in_use);
    while ((count != target || in_use != 0) && monotonic_ms() < deadline) {
        sleep_ms(50);
        count = stats_fds_outside_pool(proxy, STATS_PORT, &in_use);
    }
    return count;
}

Test(fd_hygiene, descriptors_return_to_baseline, .init = integration_init, .fini = hygiene_fini)
{
    uint16_t proxy_port = TEST_PORT(18, 0), alpha_port = TEST_PORT(18, 1);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = 127.0.0.1:%u\n", alpha_port);
    char *globals = text_format("preread_timeout = 1s\nstats = 127.0.0.1:%u\n", STATS_PORT);
    char *config = config_text(proxy_port, globals, body);
    free(globals);
    cr_assert(proxy_start(&hygiene_proxy, config, proxy_port), "snisplice did not start");
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    struct hello_bytes bad_name = hello_build("bad name.example.com");
    cr_assert_not_null(hello.data);

    cr_expect_eq(good_connections(proxy_port, &hello, 40), 0, "warm-up connections failed");
    sleep_ms(300);
    long long pipes_in_use;
    int baseline = stats_fds_outside_pool(&hygiene_proxy, STATS_PORT, &pipes_in_use);
    cr_assert_gt(baseline, 0, "cannot read /proc/%d/fd or the stats endpoint", (int)hygiene_proxy.pid);

    cr_expect_eq(good_connections(proxy_port, &hello, 200), 0, "short connections failed");
    uint8_t lying[69] = {0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x03};
    for (int i = 0; i < 50; i++) {
        int fd = net_connect(proxy_port);
        cr_assert(fd >= 0);
        if (i % 2 == 0) {
            net_send_all(fd, bad_name.data, bad_name.length);
        } else {
            byte_stream_fill((uint64_t)i, 0, lying + 9, sizeof lying - 9);
            net_send_all(fd, lying, sizeof lying);
        }
        long long closed_after = net_ms_until_closed(fd, monotonic_ms(), 3000, NULL);
        cr_expect_geq(closed_after, 0, "garbage connection %d was not closed", i);
        close(fd);
    }
    for (int i = 0; i < 20; i++) {
        int fd = net_connect(proxy_port); /* abandoned during preread */
        cr_assert(fd >= 0);
        if (i % 2 == 0)
            net_send_all(fd, hello.data, 100);
        close(fd);
    }
    cr_expect_eq(good_connections(proxy_port, &hello, 5), 0, "proxy stopped serving");

    int after = fd_count_settled(&hygiene_proxy, baseline, 5000);
    cr_expect_eq(after, baseline, "snisplice holds %d fds outside its pipe pools, baseline was %d", after,
                 baseline);

    hello_free(&hello);
    hello_free(&bad_name);
    free(config);
    free(body);
    int status = proxy_stop(&hygiene_proxy, 10000);
    char *log = proxy_stderr(&hygiene_proxy);
    cr_expect_eq(status, 0, "snisplice exit %d, stderr:\n%s", status, log);
    free(log);
}
