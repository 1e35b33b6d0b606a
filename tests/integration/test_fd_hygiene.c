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

/* Wait for the fd count to drop to at most `target`; returns the last count. */
static int fd_count_settled(const struct proxy *proxy, int target, int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    int count = proxy_fd_count(proxy);
    while (count > target && monotonic_ms() < deadline) {
        sleep_ms(50);
        count = proxy_fd_count(proxy);
    }
    return count;
}

Test(fd_hygiene, descriptors_return_to_baseline, .init = integration_init, .fini = hygiene_fini)
{
    uint16_t proxy_port = TEST_PORT(18, 0), alpha_port = TEST_PORT(18, 1);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = 127.0.0.1:%u\n", alpha_port);
    char *config = config_text(proxy_port, "preread_timeout = 1s\n", body);
    cr_assert(proxy_start(&hygiene_proxy, config, proxy_port), "snisplice did not start");
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    struct hello_bytes bad_name = hello_build("bad_name.example.com");
    cr_assert_not_null(hello.data);

    cr_expect_eq(good_connections(proxy_port, &hello, 40), 0, "warm-up connections failed");
    sleep_ms(300);
    int baseline = proxy_fd_count(&hygiene_proxy);
    cr_assert_gt(baseline, 0, "cannot read /proc/%d/fd", (int)hygiene_proxy.pid);

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
    cr_expect_leq(after, baseline, "snisplice holds %d fds, baseline was %d", after, baseline);

    hello_free(&hello);
    hello_free(&bad_name);
    free(config);
    free(body);
    int status = proxy_stop(&hygiene_proxy, 10000);
    char *log = proxy_stderr(&hygiene_proxy);
    cr_expect_eq(status, 0, "snisplice exit %d, stderr:\n%s", status, log);
    free(log);
}
