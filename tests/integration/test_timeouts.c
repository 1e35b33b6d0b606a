/*
 * test_timeouts.c - preread_timeout protects the proxy from clients that
 * connect and then send nothing or only part of a hello: they are closed
 * after the timeout and never reach an upstream; one that leaves in the
 * middle of its hello is closed at once. Ports: blocks 11-12, 19.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy timeout_proxy;
static struct backend alpha_backend;

static void timeout_fini(void)
{
    proxy_release(&timeout_proxy);
    integration_cleanup();
}

static void start_proxy_with_timeout(uint16_t proxy_port, uint16_t alpha_port, const char *timeout)
{
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", alpha_port);
    char *globals = text_format("preread_timeout = %s\n", timeout);
    char *config = config_text(proxy_port, globals, body);
    free(globals);
    cr_assert(proxy_start(&timeout_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    free(body);
}

static void start_proxy_with_default(uint16_t proxy_port, uint16_t alpha_port)
{
    start_proxy_with_timeout(proxy_port, alpha_port, "500ms");
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
    /* A client that sent nothing is only accepted after the listener's
     * 1 s TCP_DEFER_ACCEPT, then waits preread_timeout like the others. */
    long long expected = length > 0 ? 500 : 1500;
    cr_expect(closed_after >= expected - 200 && closed_after <= expected + 2500,
              "%s: closed after %lld ms, want about %lld", what, closed_after, expected);
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

/* The hello is left queued in the client socket while it is incomplete and
 * the proxy waits for "more than what is queued": end of stream must still
 * wake it, long before the 5 s preread timeout. */
Test(timeouts, client_leaving_mid_hello_is_closed_at_once, .init = integration_init,
     .fini = timeout_fini)
{
    uint16_t proxy_port = TEST_PORT(19, 0);
    start_proxy_with_timeout(proxy_port, TEST_PORT(19, 1), "5s");
    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(chromium.data);
    int fd = net_connect(proxy_port);
    cr_assert(fd >= 0);
    cr_assert(net_send_all(fd, chromium.data, 100));
    sleep_ms(100);
    cr_assert(net_send_all(fd, chromium.data + 100, 100));
    sleep_ms(100);
    long long start = monotonic_ms();
    shutdown(fd, SHUT_WR);
    size_t received = 0;
    long long closed_after = net_ms_until_closed(fd, start, 6000, &received);
    close(fd);
    cr_expect(closed_after >= 0 && closed_after < 2000,
              "closed %lld ms after the client's FIN; want well before the 5 s preread timeout",
              closed_after);
    cr_expect_eq(received, 0);
    cr_expect_eq(backend_accepted(&alpha_backend), 0, "an incomplete hello reached an upstream");
    hello_free(&chromium);
    expect_clean_exit();
}
