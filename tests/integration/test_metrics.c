/*
 * test_metrics.c - `stats = ADDR`: Prometheus text with the exact counts of
 * the traffic the test made (routed, invalid hello, connect failure), bytes
 * by route, connect failures by server, the preread histogram; counters
 * keep growing across a reload; a scraper that says nothing delays neither
 * a reload nor the next scrape for long; other paths are 404. Ports: block 66.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy metrics_proxy;
static struct backend alpha;

static void metrics_fini(void)
{
    proxy_release(&metrics_proxy);
    integration_cleanup();
}

/* The whole response; the test fails if nothing answers. */
static char *http_get(uint16_t port, const char *path)
{
    char *response = stats_fetch(port, path);
    cr_assert_not_null(response, "stats port %u refused", port);
    return response;
}

Test(metrics, counts_what_happened_and_survives_reloads, .init = integration_init, .fini = metrics_fini)
{
    uint16_t proxy_port = TEST_PORT(66, 0), stats_port = TEST_PORT(66, 1);
    uint16_t alpha_port = TEST_PORT(66, 2), dead_port = TEST_PORT(66, 3);
    cr_assert(backend_start(&alpha, "alpha", alpha_port, NULL, NULL));
    char *globals = text_format("stats = 127.0.0.1:%u\n", stats_port);
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = alpha\ndefault = dead\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n"
                             "[upstream dead]\nserver = 127.0.0.1:%u\n",
                             alpha_port, dead_port);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&metrics_proxy, config, proxy_port), "snisplice did not start");

    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    struct hello_bytes invalid = hello_build("bad name.example.com");
    cr_assert_not_null(chromium.data);
    for (int i = 0; i < 2; i++)
        free(exchange_once(proxy_port, chromium.data, chromium.length, 5000, NULL));
    free(exchange_once(proxy_port, "GET / HTTP/1.1\r\n\r\n", 18, 5000, NULL)); /* -> dead: refused */
    free(exchange_once(proxy_port, invalid.data, invalid.length, 5000, NULL));
    cr_assert(backend_wait_finished(&alpha, 2, 5000));

    /* A connection's counters are bumped as it is torn down, which can be
     * just after its client saw the close: scrape until all four are in. */
    char *text = NULL;
    for (long long deadline = monotonic_ms() + 3000;;) {
        free(text);
        text = http_get(stats_port, "/metrics");
        if ((stats_sample(text, "snisplice_active_connections") == 0 &&
             stats_sample(text, "snisplice_connections_total{route=\"dead\",outcome=\"connect_failed\"}") == 1) ||
            monotonic_ms() > deadline)
            break;
        sleep_ms(50);
    }
    cr_assert(strncmp(text, "HTTP/1.0 200 OK\r\n", 17) == 0, "%.200s", text);
    cr_expect(strstr(text, "Content-Type: text/plain; version=0.0.4") != NULL);
    cr_expect_eq(stats_sample(text, "snisplice_workers"), 2);
    cr_expect_eq(stats_sample(text, "snisplice_connections_total{route=\"alpha\",outcome=\"done\"}"), 2, "%s", text);
    cr_expect_eq(stats_sample(text, "snisplice_connections_total{route=\"dead\",outcome=\"connect_failed\"}"), 1);
    cr_expect_eq(stats_sample(text, "snisplice_connections_total{route=\"-\",outcome=\"invalid_hello\"}"), 1);
    cr_expect_eq(stats_sample(text, "snisplice_bytes_total{route=\"alpha\",direction=\"to_upstream\"}"),
                 2 * (long long)chromium.length);
    cr_expect_eq(stats_sample(text, "snisplice_bytes_total{route=\"alpha\",direction=\"to_client\"}"), 2 * 6);
    char *failures = text_format("snisplice_upstream_connect_failures_total{upstream=\"dead\",server=\"127.0.0.1:%u\"}",
                                 dead_port);
    cr_expect_eq(stats_sample(text, failures), 1, "%s", text);
    /* Two hellos and the plain-HTTP request were complete; the invalid one is not timed. */
    cr_expect_eq(stats_sample(text, "snisplice_preread_seconds_count"), 3);
    cr_expect_eq(stats_sample(text, "snisplice_preread_seconds_bucket{le=\"+Inf\"}"), 3);
    cr_expect_eq(stats_sample(text, "snisplice_active_connections"), 0);
    cr_expect_geq(stats_sample(text, "snisplice_pipe_pool_pipes{state=\"idle\"}"), 1);
    free(text);

    /* A scraper that connects and says nothing holds up neither a reload... */
    int silent = net_connect(stats_port);
    cr_assert_geq(silent, 0);
    long long start = monotonic_ms();
    proxy_reload(&metrics_proxy, config);
    cr_expect(proxy_stderr_wait_for(&metrics_proxy, "reloaded", 5000));
    cr_expect_lt(monotonic_ms() - start, 1500, "the reload waited for the stats client");
    /* ...nor the next scrape for longer than its 2 s timeout. */
    start = monotonic_ms();
    free(exchange_once(proxy_port, chromium.data, chromium.length, 5000, NULL));
    cr_assert(backend_wait_finished(&alpha, 3, 5000));
    for (long long deadline = monotonic_ms() + 6000;;) {
        text = http_get(stats_port, "/metrics");
        if (stats_sample(text, "snisplice_connections_total{route=\"alpha\",outcome=\"done\"}") == 3 ||
            monotonic_ms() > deadline)
            break;
        free(text);
        sleep_ms(50);
    }
    cr_expect_lt(monotonic_ms() - start, 5000);
    close(silent);
    cr_expect_eq(stats_sample(text, "snisplice_connections_total{route=\"alpha\",outcome=\"done\"}"), 3,
                 "counters keep counting across a reload:\n%s", text);
    cr_expect_eq(stats_sample(text, "snisplice_reloads_total{result=\"ok\"}"), 1);
    free(text);

    text = http_get(stats_port, "/nothing-here");
    cr_expect(strncmp(text, "HTTP/1.0 404", 12) == 0, "%.100s", text);
    free(text);

    hello_free(&chromium);
    hello_free(&invalid);
    free(failures);
    free(config);
    free(body);
    free(globals);
    cr_expect_eq(proxy_stop(&metrics_proxy, 10000), 0);
}

Test(metrics, no_stats_no_socket, .init = integration_init, .fini = metrics_fini)
{
    uint16_t proxy_port = TEST_PORT(66, 10), stats_port = TEST_PORT(66, 11);
    cr_assert(backend_start(&alpha, "alpha", TEST_PORT(66, 12), NULL, NULL));
    char *body = text_format("[routes]\ndefault = alpha\n[upstream alpha]\nserver = 127.0.0.1:%u\n",
                             TEST_PORT(66, 12));
    char *config = config_text(proxy_port, NULL, body);
    cr_assert(proxy_start(&metrics_proxy, config, proxy_port));
    int fd = net_connect(stats_port);
    cr_expect_lt(fd, 0, "something listens on the stats port without `stats`");
    if (fd >= 0)
        close(fd);
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&metrics_proxy, 10000), 0);
}
