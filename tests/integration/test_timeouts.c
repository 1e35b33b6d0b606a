/*
 * test_timeouts.c - preread_timeout protects the proxy from clients that
 * connect and then send nothing or only part of a hello: they are closed
 * after the timeout and never reach an upstream. Ports: blocks 11-12.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy timeout_proxy;
static struct backend alpha_backend;

static void timeout_fini(void)
{
    proxy_release(&timeout_proxy);
    integration_cleanup();
}

static void start_proxy_with_default(uint16_t proxy_port, uint16_t alpha_port)
{
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", alpha_port);
    char *config = config_text(proxy_port, "preread_timeout = 500ms\n", body);
    cr_assert(proxy_start(&timeout_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    free(body);
}

static void expect_closed_after_preread_timeout(uint16_t proxy_port, const void *partial,
                                                size_t length, const char *what)
{
    int fd = net_connect(proxy_port);
    cr_assert(fd >= 0);
    long long start = monotonic_ms();
    if (length > 0)
        cr_assert(net_send_all(fd, partial, length));
    size_t received = 0;
    long long closed_after = net_ms_until_closed(fd, start, 5000, &received);
    close(fd);
    cr_expect(closed_after >= 300 && closed_after <= 3000,
              "%s: closed after %lld ms, want about 500 (300..3000)", what, closed_after);
    cr_expect_eq(received, 0, "%s: %zu bytes came back", what, received);
}

static void expect_clean_exit(void)
{
    int status = proxy_stop(&timeout_proxy, 10000);
    char *log = proxy_stderr(&timeout_proxy);
    cr_expect_eq(status, 0, "snisplice exit %d, stderr:\n%s", status, log);
    free(log);
}

Test(timeouts, silent_client_is_closed_after_preread_timeout, .init = integration_init,
     .fini = timeout_fini)
{
    uint16_t proxy_port = TEST_PORT(11, 0);
    start_proxy_with_default(proxy_port, TEST_PORT(11, 1));
    expect_closed_after_preread_timeout(proxy_port, NULL, 0, "silent client");
    cr_expect_eq(backend_accepted(&alpha_backend), 0, "a silent client reached an upstream");
    expect_clean_exit();
}

Test(timeouts, half_a_hello_is_closed_after_preread_timeout, .init = integration_init,
     .fini = timeout_fini)
{
    uint16_t proxy_port = TEST_PORT(12, 0);
    start_proxy_with_default(proxy_port, TEST_PORT(12, 1));
    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(chromium.data);
    expect_closed_after_preread_timeout(proxy_port, chromium.data, chromium.length / 2,
                                        "half a Chromium hello");
    expect_closed_after_preread_timeout(proxy_port, chromium.data, 3, "three bytes of a hello");
    cr_expect_eq(backend_accepted(&alpha_backend), 0, "an incomplete hello reached an upstream");
    hello_free(&chromium);
    expect_clean_exit();
}
