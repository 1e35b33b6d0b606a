/*
 * test_memory.c - what connections cost in memory, as the benchmark's idle
 * scenario measures it: a burst of connections that each sent a hello and
 * got the server's first bytes, then stay idle, must add at most 1 KiB of
 * RSS each to the proxy. A burst also takes hello buffers beyond the kept
 * ones (io/hello_forward.c), whose pages must not stay behind. RSS says
 * something only without ASan (its shadow memory and quarantine): `make
 * test` runs this suite on the release binary too, and skips it under ASan.
 * And a reload, which builds a second config beside the serving one, finds
 * the memory for it in the heap, reserved at start, rather than faulting in
 * its route table page by page (io/main.c, reserve_reload_memory).
 * Ports: block 91.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
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
     .fini = memory_fini)
{
    integration_set_limit(60);
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

/* 100 000 routes to one backend: about 10 MiB of tables. */
static char *hundred_thousand_routes(uint16_t proxy_port, uint16_t backend_port, const char *first_name)
{
    char *routes = generated_routes(100000, "a", "a");
    char *body = text_format("[routes]\n%s = 127.0.0.1:%u\n%s[upstream a]\nserver = 127.0.0.1:%u\n", first_name,
                             backend_port, routes, backend_port);
    char *config = config_text(proxy_port, "workers = 1\n", body);
    free(routes);
    free(body);
    return config;
}

/* Without the reservation the first reload took about 2 100 faults (the new
 * table's pages), with it about 150. */
#define FIRST_RELOAD_FAULTS_MAX 1000

Test(memory, first_reload_of_100000_routes_finds_its_memory_in_the_heap, .init = integration_init,
     .fini = memory_fini)
{
    integration_set_limit(60);
    uint16_t proxy_port = TEST_PORT(91, 2), alpha_port = TEST_PORT(91, 3);
    char *config = hundred_thousand_routes(proxy_port, alpha_port, "first.example.com");
    cr_assert(proxy_start(&memory_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    if (proxy_runs_under_asan(&memory_proxy)) {
        cr_assert_eq(proxy_stop(&memory_proxy, 10000), 0);
        cr_skip_test("page faults are judged on the release binary (ASan has its own allocator)");
    }
    long faults_before = proxy_minor_faults(&memory_proxy);
    cr_assert_geq(faults_before, 0, "no minflt in /proc/PID/stat");
    config = hundred_thousand_routes(proxy_port, alpha_port, "second.example.com");
    proxy_reload(&memory_proxy, config);
    free(config);
    cr_assert(proxy_stderr_wait_for(&memory_proxy, "reloaded", 20000), "no reload in the log");
    long faults = proxy_minor_faults(&memory_proxy) - faults_before;
    cr_log_info("first reload of 100 000 routes: %ld minor faults", faults);
    cr_expect_leq(faults, FIRST_RELOAD_FAULTS_MAX, "the first reload took %ld page faults", faults);
    cr_expect_eq(proxy_stop(&memory_proxy, 10000), 0);
}
