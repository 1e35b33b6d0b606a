/*
 * test_memory.c - what connections cost in memory, as the benchmark's idle
 * scenario measures it: a burst of connections that each sent a hello and
 * got the server's first bytes, then stay idle, must add at most 1 KiB of
 * RSS each to the proxy. A burst also takes hello buffers beyond the kept
 * ones (io/hello_forward.c), whose pages must not stay behind. RSS says
 * something only without ASan (its shadow memory and quarantine): `make
 * test` runs this suite on the release binary too, and skips it under ASan.
 * Ports: block 91.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/integration.h"

/* The benchmark's bound (issue: "at most 1 KiB RSS per idle connection"). */
#define IDLE_RSS_PER_CONNECTION_MAX_KIB 1.0

static struct proxy memory_proxy;
static struct backend memory_alpha;

static void memory_fini(void)
{
    proxy_release(&memory_proxy);
    integration_cleanup();
}

Test(memory, a_burst_of_idle_connections_costs_under_1_KiB_each, .init = integration_init,
     .fini = memory_fini, .timeout = 60)
{
    /* Below 3/4 of tcp_max_syn_backlog (2048 here): connections a stopped
     * listener holds beyond that get SYN cookies, and some never arrive. */
    enum { BURST = 1000 };
    uint16_t proxy_port = TEST_PORT(91, 0), alpha_port = TEST_PORT(91, 1);
    cr_assert(backend_start(&memory_alpha, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", alpha_port);
    char *config = config_text(proxy_port, "workers = 1\n", body);
    cr_assert(proxy_start(&memory_proxy, config, proxy_port), "snisplice did not start");
    if (proxy_runs_under_asan(&memory_proxy)) {
        free(config);
        free(body);
        cr_assert_eq(proxy_stop(&memory_proxy, 10000), 0);
        cr_skip_test("RSS is judged on the release binary (this one runs under ASan)");
    }
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(hello.data);
    long rss_before = proxy_status_value(&memory_proxy, "VmRSS:");
    cr_assert_gt(rss_before, 0, "no VmRSS in /proc/PID/status");

    /* Every connection and hello wait in the listener's queue while the
     * proxy is stopped; continued, it routes them in batches, with many
     * connections connecting (and holding hello buffers) at once. */
    static int clients[BURST];
    cr_assert_eq(kill(memory_proxy.pid, SIGSTOP), 0);
    for (int i = 0; i < BURST; i++) {
        clients[i] = net_connect(proxy_port);
        cr_assert_geq(clients[i], 0, "client %d could not connect", i);
        cr_assert(net_send_all(clients[i], hello.data, hello.length));
    }
    cr_assert_eq(kill(memory_proxy.pid, SIGCONT), 0);
    for (int i = 0; i < BURST; i++) {
        char greeting[7] = "";
        cr_assert_eq(net_receive_exact(clients[i], greeting, 6, 10000), 6, "client %d: no greeting", i);
    }
    sleep_ms(300);
    long rss_with = proxy_status_value(&memory_proxy, "VmRSS:");
    double per_connection = (double)(rss_with - rss_before) / BURST;
    cr_log_info("%d idle connections: RSS %ld -> %ld KiB, %.2f KiB each", BURST, rss_before,
                rss_with, per_connection);
    cr_expect_leq(per_connection, IDLE_RSS_PER_CONNECTION_MAX_KIB,
                  "%d idle connections: RSS %ld -> %ld KiB, %.2f KiB each", BURST, rss_before,
                  rss_with, per_connection);

    for (int i = 0; i < BURST; i++)
        close(clients[i]);
    hello_free(&hello);
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&memory_proxy, 10000), 0);
}
