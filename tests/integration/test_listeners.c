/*
 * test_listeners.c - several listeners in one process: an SNI listener and
 * a plain TCP forward ([listen NAME] with upstream =), as nginx's
 * `server { listen 2222; proxy_pass 127.0.0.1:22; }`. A plain forward
 * connects at once, so a protocol where the server speaks first (SSH, SMTP)
 * works without the client sending a byte. With workers pinned, a new
 * connection goes to the worker on the CPU that received it. A wildcard
 * address and a specific one on the same port both listen, each with its
 * own routes (nginx's `listen 443` beside `listen 10.0.0.1:443`). Ports:
 * blocks 48, 85, 160, 330.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy listeners_proxy;
static struct backend tls_backend;
static struct backend ssh_backend;

static void listeners_fini(void)
{
    proxy_release(&listeners_proxy);
    integration_cleanup();
}

Test(listeners, plain_forward_beside_sni_routing, .init = integration_init, .fini = listeners_fini)
{
    uint16_t sni_port = TEST_PORT(48, 0), plain_port = TEST_PORT(48, 1);
    uint16_t tls_port = TEST_PORT(48, 2), ssh_port = TEST_PORT(48, 3);
    cr_assert(backend_start(&tls_backend, "tls", tls_port, NULL, NULL));
    cr_assert(backend_start(&ssh_backend, "SSH-2.0-test", ssh_port, NULL, NULL));
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = 127.0.0.1:%u\n"
                             "[listen ssh]\naddress = 127.0.0.1:%u\nupstream = ssh\n"
                             "[upstream ssh]\nserver = 127.0.0.1:%u\n",
                             tls_port, plain_port, ssh_port);
    char *config = config_text(sni_port, "preread_timeout = 10s\n", body);
    cr_assert(proxy_start(&listeners_proxy, config, sni_port), "snisplice did not start");
    /* No net_wait_accepting() probe here: through a plain forward it would be
     * a real connection to the backend. proxy_start's probe only shows that
     * the SNI port listens (the kernel completes handshakes on a deferred
     * listener by itself), and the plain port may be bound a moment later. */
    cr_assert(net_wait_listening(plain_port, 5000), "the plain forward never listened");

    /* Server speaks first: the banner arrives before the client sends anything. */
    int fd = net_connect(plain_port);
    cr_assert_geq(fd, 0);
    char banner[14] = "";
    /* 500 ms: well under the 1 s an SNI listener lets a silent client wait. */
    cr_expect_eq(net_receive_exact(fd, banner, 13, 500), 13, "no banner through the plain forward");
    cr_expect_str_eq(banner, "SSH-2.0-test\n");
    /* Then arbitrary bytes (not TLS) go through unchanged. */
    const char *line = "SSH-2.0-client\r\nnot tls at all";
    cr_assert(net_send_all(fd, line, strlen(line)));
    shutdown(fd, SHUT_WR);
    size_t received = 0;
    cr_expect_geq(net_ms_until_closed(fd, monotonic_ms(), 3000, &received), 0);
    close(fd);
    cr_assert(backend_wait_finished(&ssh_backend, 1, 3000));
    uint8_t got[128];
    size_t length = backend_last_received(&ssh_backend, got, sizeof got);
    cr_expect_eq(length, strlen(line));
    cr_expect_eq(memcmp(got, line, strlen(line)), 0, "bytes changed on the way");

    /* The SNI listener still routes by name. */
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    char *reply = exchange_once(sni_port, hello.data, hello.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "tls\n") == 0, "SNI listener: got \"%s\"", reply ? reply : "");
    free(reply);
    hello_free(&hello);
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&listeners_proxy, 10000), 0);
}

static struct backend acme_backend;

/* openssl s_client through the proxy; the backends are plain TCP, so the
 * handshake fails: what matters is which backend the proxy connected to. */
static void s_client(uint16_t port, const char *alpn)
{
    char connect[32];
    snprintf(connect, sizeof connect, "127.0.0.1:%u", port);
    const char *argv[] = { "openssl", "s_client", "-connect", connect, "-servername",
                           "matrix.exceptionerror.io", alpn ? "-alpn" : NULL, alpn, NULL };
    char *output = NULL;
    child_run(argv, NULL, "/dev/null", 5000, &output);
    free(output);
}

Test(listeners, alpn_route_wins_over_server_name, .init = integration_init, .fini = listeners_fini)
{
    uint16_t proxy_port = TEST_PORT(48, 10), tls_port = TEST_PORT(48, 11), acme_port = TEST_PORT(48, 12);
    cr_assert(backend_start(&tls_backend, "matrix", tls_port, NULL, NULL));
    cr_assert(backend_start(&acme_backend, "acme", acme_port, NULL, NULL));
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = 127.0.0.1:%u\n"
                             "alpn acme-tls/1 = 127.0.0.1:%u\n", tls_port, acme_port);
    char *config = config_text(proxy_port, "", body);
    cr_assert(proxy_start(&listeners_proxy, config, proxy_port), "snisplice did not start");
    s_client(proxy_port, "acme-tls/1");
    cr_expect_eq(backend_accepted(&acme_backend), 1, "ALPN acme-tls/1 did not reach the ACME helper");
    cr_expect_eq(backend_accepted(&tls_backend), 0);
    s_client(proxy_port, "h2,http/1.1");
    s_client(proxy_port, NULL);
    cr_expect_eq(backend_accepted(&tls_backend), 2, "other ALPN or none: routed by name");
    cr_expect_eq(backend_accepted(&acme_backend), 1);
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&listeners_proxy, 10000), 0);
}

/* Run the calling thread on `cpu` only. */
static void pin_this_thread(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    cr_assert_eq(pthread_setaffinity_np(pthread_self(), sizeof set, &set), 0);
}

/* One sample of the proxy's /metrics on stats_port. */
static long long metric(uint16_t stats_port, const char *series)
{
    long long value = stats_value(stats_port, series);
    cr_assert_geq(value, 0, "no stats endpoint (or no %s)", series);
    return value;
}

static long long worker_accepted(uint16_t stats_port, unsigned worker)
{
    char series[96];
    snprintf(series, sizeof series, "snisplice_worker_accepted_total{worker=\"%u\"}", worker);
    return metric(stats_port, series);
}

/* snisplice routing every name to the "tls" backend on tls_port, with its
 * stats endpoint on stats_port; `globals` adds [global] lines. Returns once
 * proxy_start's probe connection has been counted: deferred by
 * TCP_DEFER_ACCEPT until its FIN, it could otherwise land in a test's count. */
static void start_routed_with_stats(uint16_t proxy_port, uint16_t tls_port, uint16_t stats_port,
                                    const char *globals)
{
    cr_assert(backend_start(&tls_backend, "tls", tls_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", tls_port);
    char *all_globals = text_format("stats = 127.0.0.1:%u\n%s", stats_port, globals);
    char *config = config_text(proxy_port, all_globals, body);
    cr_assert(proxy_start(&listeners_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    free(all_globals);
    free(body);
    for (int waited = 0; metric(stats_port, "snisplice_accepted_total") < 1; waited += 10) {
        cr_assert_lt(waited, 2000, "the start-up probe was never accepted");
        sleep_ms(10);
    }
}

/* On loopback the SYN is received on the CPU of the thread that sends it,
 * so a client pinned to a CPU must always reach the worker pinned there
 * (without steering, SO_REUSEPORT's hash spreads them over both). */
Test(listeners, new_connections_go_to_the_worker_on_their_cpu, .init = integration_init, .fini = listeners_fini)
{
    cpu_set_t allowed;
    cr_assert_eq(sched_getaffinity(0, sizeof allowed, &allowed), 0);
    int cpus[2], found = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && found < 2; cpu++)
        if (CPU_ISSET(cpu, &allowed))
            cpus[found++] = cpu;
    if (found < 2)
        cr_skip_test("one CPU: workers are not pinned");
    enum { PER_CPU = 30 };
    uint16_t proxy_port = TEST_PORT(85, 0), stats_port = TEST_PORT(85, 2);
    start_routed_with_stats(proxy_port, TEST_PORT(85, 1), stats_port, "");
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);

    for (unsigned worker = 0; worker < 2; worker++) {
        long long before[2] = { worker_accepted(stats_port, 0), worker_accepted(stats_port, 1) };
        pin_this_thread(cpus[worker]);
        for (int i = 0; i < PER_CPU; i++) {
            char *reply = exchange_once(proxy_port, hello.data, hello.length, 5000, NULL);
            cr_expect_str_eq(reply ? reply : "(nothing)", "tls\n");
            free(reply);
        }
        long long after[2] = { worker_accepted(stats_port, 0), worker_accepted(stats_port, 1) };
        cr_expect_eq(after[worker] - before[worker], PER_CPU,
                     "a client on CPU %d: worker %u accepted %lld of %d connections (the other: %lld)",
                     cpus[worker], worker, after[worker] - before[worker], PER_CPU,
                     after[1 - worker] - before[1 - worker]);
    }
    CPU_ZERO(&allowed);
    for (int i = 0; i < found; i++)
        CPU_SET(cpus[i], &allowed);
    pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed);
    hello_free(&hello);
    cr_expect_eq(proxy_stop(&listeners_proxy, 10000), 0);
}

static long long total_accepted(uint16_t stats_port)
{
    return metric(stats_port, "snisplice_accepted_total");
}

/* An SNI listener lets the kernel hold a new connection until its first
 * bytes arrive (TCP_DEFER_ACCEPT): a client that connects and says nothing
 * is not accepted for about a second, so it costs the proxy no fd; one that
 * sends its hello is served at once. (The plain forward test above checks
 * that a server-speaks-first listener does not wait.) */
Test(listeners, sni_listener_accepts_a_connection_once_it_speaks, .init = integration_init,
     .fini = listeners_fini)
{
    uint16_t proxy_port = TEST_PORT(86, 0), stats_port = TEST_PORT(86, 2);
    start_routed_with_stats(proxy_port, TEST_PORT(86, 1), stats_port, "preread_timeout = 10s\n");
    long long before = total_accepted(stats_port);

    int silent = net_connect(proxy_port);
    cr_assert_geq(silent, 0);
    sleep_ms(400);
    cr_expect_eq(total_accepted(stats_port) - before, 0, "a silent client was accepted before it spoke");

    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    long long start = monotonic_ms();
    cr_assert(net_send_all(silent, hello.data, hello.length));
    char reply[8] = "";
    cr_expect_eq(net_receive_exact(silent, reply, 4, 2000), 4, "no reply once the hello was sent");
    cr_expect_str_eq(reply, "tls\n");
    cr_expect_lt(monotonic_ms() - start, 500, "the hello waited for something");
    cr_expect_eq(total_accepted(stats_port) - before, 1);
    close(silent);

    /* Still silent after the deferral: accepted on the client's next ACK,
     * then preread_timeout applies as to any other client. */
    silent = net_connect(proxy_port);
    cr_assert_geq(silent, 0);
    long long waited = 0;
    while (total_accepted(stats_port) - before < 2 && waited < 5000) {
        sleep_ms(50);
        waited += 50;
    }
    cr_expect_eq(total_accepted(stats_port) - before, 2, "a silent client was never accepted");
    cr_expect(waited >= 700, "a silent client was accepted after %lld ms, before the deferral", waited);
    close(silent);
    hello_free(&hello);
    cr_expect_eq(proxy_stop(&listeners_proxy, 10000), 0);
}

/* The README's own reference config has `0.0.0.0:443` and `10.0.0.1:443`.
 * The start-up check for an address another program holds once probed
 * the second after binding the first, met snisplice's own wildcard
 * socket and refused to start ("another socket listens there"), while
 * -t had said the config was valid. */
Test(listeners, wildcard_and_specific_address_on_one_port, .init = integration_init, .fini = listeners_fini)
{
    uint16_t port = TEST_PORT(160, 0), tls_port = TEST_PORT(160, 1), inner_port = TEST_PORT(160, 2);
    cr_assert(backend_start(&tls_backend, "outer", tls_port, NULL, NULL));
    cr_assert(backend_start(&ssh_backend, "inner", inner_port, NULL, NULL));
    char *config = text_format("[global]\nworkers = 2\n"
                               "[listen]\naddress = 0.0.0.0:%u\n"
                               "[listen inner]\naddress = 127.0.0.7:%u\nupstream = 127.0.0.1:%u\n"
                               "[routes]\ndefault = 127.0.0.1:%u\n",
                               port, port, inner_port, tls_port);
    cr_assert(proxy_start(&listeners_proxy, config, port), "snisplice did not start; stderr:\n%s",
              proxy_stderr(&listeners_proxy));
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    char *reply = exchange_once(port, hello.data, hello.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "outer\n") == 0, "127.0.0.1 (the wildcard): got \"%s\"", reply ? reply : "");
    free(reply);

    /* The specific address takes its own connections: a plain forward,
     * whose server speaks first. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in inner = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, "127.0.0.7", &inner.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&inner, sizeof inner), 0);
    char banner[7] = "";
    cr_expect_eq(net_receive_exact(fd, banner, 6, 3000), 6);
    cr_expect_str_eq(banner, "inner\n");
    close(fd);
    hello_free(&hello);
    free(config);
    cr_expect_eq(proxy_stop(&listeners_proxy, 10000), 0);
}

/* The first IPv4 address of an interface that is up and not loopback
 * (dotted, into text); false when the host has none. */
static bool non_loopback_ipv4(char *text, size_t size)
{
    struct ifaddrs *all = NULL;
    if (getifaddrs(&all) != 0)
        return false;
    bool found = false;
    for (struct ifaddrs *at = all; at && !found; at = at->ifa_next) {
        if (!at->ifa_addr || at->ifa_addr->sa_family != AF_INET || (at->ifa_flags & IFF_LOOPBACK) ||
            !(at->ifa_flags & IFF_UP))
            continue;
        found = inet_ntop(AF_INET, &((struct sockaddr_in *)at->ifa_addr)->sin_addr, text, (socklen_t)size) != NULL;
    }
    freeifaddrs(all);
    return found;
}

/* A host with hundreds of listen addresses on a NIC with fewer receive
 * queues than workers (most VPSes) is told once per start or reload that
 * connections are spread by hash, not once per address: the cause is the
 * machine's, and a line each buried the log. (A host whose NICs spread
 * packets says nothing at all.) */
Test(listeners, spread_by_hash_is_said_once_for_many_addresses, .init = integration_init, .fini = listeners_fini)
{
    char host[INET_ADDRSTRLEN];
    if (!non_loopback_ipv4(host, sizeof host))
        cr_skip_test("no non-loopback IPv4 address");
    enum { EXTRA = 6 };
    uint16_t proxy_port = TEST_PORT(330, 0);
    char *addresses = text_format("%s", ""), *more = text_format("%s", "");
    for (int i = 0; i < EXTRA; i++) {
        char *next = text_format("%saddress = %s:%u\n", addresses, host, TEST_PORT(330, 1 + i));
        free(addresses);
        addresses = next;
        next = text_format("%saddress = %s:%u\n", more, host, TEST_PORT(330, 1 + EXTRA + i));
        free(more);
        more = next;
    }
    char *body = text_format("%supstream = 127.0.0.1:%u\n", addresses, TEST_PORT(330, 19));
    char *config = config_text(proxy_port, "", body);
    cr_assert(proxy_start(&listeners_proxy, config, proxy_port), "snisplice did not start");
    char *grown_body = text_format("%s%supstream = 127.0.0.1:%u\n", addresses, more, TEST_PORT(330, 19));
    char *grown = config_text(proxy_port, "", grown_body);
    proxy_reload(&listeners_proxy, grown);
    cr_assert(proxy_stderr_wait_for(&listeners_proxy, "reloaded", 10000), "the reload never finished");
    char *log = proxy_stderr(&listeners_proxy);
    cr_expect_leq(text_count(log, "fewer receive queues"), 2,
                  "one line per start or reload, not per address:\n%s", log);
    free(log);
    free(grown);
    free(grown_body);
    free(config);
    free(body);
    free(more);
    free(addresses);
    cr_expect_eq(proxy_stop(&listeners_proxy, 10000), 0);
}
