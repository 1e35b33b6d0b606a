/*
 * test_metrics.c - `stats = ADDR`: Prometheus text with the exact counts of
 * the traffic the test made (routed, invalid hello, connect failure), bytes
 * by route, connect failures by server, the preread histogram; counters
 * keep growing across a reload; a scraper that says nothing delays neither
 * a reload nor the next scrape for long, and eight of them at once do not
 * hold up a scrape for longer than one; other paths are 404. Bytes are
 * counted as they are relayed, not when the connection closes. An IPv6
 * endpoint is IPv6-only; an IPv4-mapped one serves its IPv4 address.
 * A name that is not UTF-8 leaves the page UTF-8.
 * Ports: blocks 66, 162, 163, 190, 240, 292.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
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

/* ---- bytes while they flow ---- */

#define STREAM_CHUNK 16384

static struct hello_bytes stream_hello;
static atomic_bool stream_stop;

/* The server of a long download: takes the hello (so that its close is a
 * FIN, not a reset for unread bytes), then sends a chunk every few
 * milliseconds until the test says stop. */
static void stream_handler(struct backend *backend, int fd, void *context)
{
    static char chunk[STREAM_CHUNK];
    uint8_t *hello = malloc(stream_hello.length);
    if (!hello || net_receive_exact(fd, hello, stream_hello.length, 5000) != stream_hello.length) {
        free(hello);
        return;
    }
    free(hello);
    while (!atomic_load(&stream_stop) && net_send_all(fd, chunk, sizeof chunk))
        sleep_ms(2);
}

/* Reads exactly `length` bytes of the download, or fails the test. */
static void read_download(int fd, size_t length)
{
    char *buffer = malloc(length);
    cr_assert_not_null(buffer);
    cr_assert_eq(net_receive_exact(fd, buffer, length, 10000), length, "the download stalled");
    free(buffer);
}

/* The series scraped until it reaches at_least (for up to 2 s): the
 * worker counts a splice's bytes just after the client may have read
 * them. Returns the last value seen. */
static long long scrape_until_at_least(uint16_t stats_port, const char *series, long long at_least)
{
    long long value = -1;
    for (long long deadline = monotonic_ms() + 2000; monotonic_ms() < deadline; sleep_ms(20)) {
        value = stats_value(stats_port, series);
        if (value >= at_least)
            break;
    }
    return value;
}

/* snisplice_bytes_total ("Bytes relayed by route and direction") grows
 * while a long connection relays, as a rate() over it needs, and the
 * connection's close adds nothing more: at the end it is exactly what the
 * client received. Before, a connection's bytes were added only when it
 * closed, so the series stayed absent (or flat) for as long as it ran. */
Test(metrics, bytes_are_counted_while_they_flow, .init = integration_init, .fini = metrics_fini)
{
    uint16_t proxy_port = TEST_PORT(162, 0), stats_port = TEST_PORT(162, 1), stream_port = TEST_PORT(162, 2);
    stream_hello = hello_build("stream.example.org");
    cr_assert_not_null(stream_hello.data);
    atomic_store(&stream_stop, false);
    cr_assert(backend_start(&alpha, "stream", stream_port, stream_handler, NULL));
    char *globals = text_format("stats = 127.0.0.1:%u\n", stats_port);
    char *body = text_format("[routes]\nstream.example.org = stream\n[upstream stream]\nserver = 127.0.0.1:%u\n",
                             stream_port);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&metrics_proxy, config, proxy_port), "snisplice did not start");

    const char *up = "snisplice_bytes_total{route=\"stream\",direction=\"to_upstream\"}";
    const char *down = "snisplice_bytes_total{route=\"stream\",direction=\"to_client\"}";
    int client = net_connect(proxy_port);
    cr_assert_geq(client, 0);
    cr_assert(net_send_all(client, stream_hello.data, stream_hello.length));
    read_download(client, 256 * 1024);
    long long first = scrape_until_at_least(stats_port, down, 256 * 1024);
    cr_expect_geq(first, 256 * 1024, "bytes the client already has, while the connection is open: %lld", first);
    cr_expect_eq(stats_value(stats_port, up), (long long)stream_hello.length, "the hello, while open");
    read_download(client, 256 * 1024);
    long long second = scrape_until_at_least(stats_port, down, 512 * 1024);
    cr_expect_geq(second, first, "counters never go down");
    cr_expect_geq(second, 512 * 1024, "the next 256 KiB, while the connection is open: %lld", second);
    cr_expect_eq(stats_value(stats_port, "snisplice_active_connections"), 1, "the connection is still open");

    atomic_store(&stream_stop, true);
    char buffer[65536];
    size_t received = 512 * 1024;
    for (ssize_t got; (got = recv(client, buffer, sizeof buffer, 0)) > 0;)
        received += (size_t)got;
    close(client);
    for (int i = 0; i < 300 && stats_value(stats_port, "snisplice_active_connections") != 0; i++)
        sleep_ms(10);
    char *text = http_get(stats_port, "/metrics");
    cr_expect_eq(stats_sample(text, "snisplice_active_connections"), 0);
    cr_expect_eq(stats_sample(text, down), (long long)received, "counted once: %zu bytes received\n%s", received,
                 text);
    cr_expect_eq(stats_sample(text, up), (long long)stream_hello.length, "counted once");
    free(text);
    hello_free(&stream_hello);
    free(config);
    free(body);
    free(globals);
    cr_expect_eq(proxy_stop(&metrics_proxy, 10000), 0);
}

/* ---- scrapers that say nothing ---- */

#define SILENT_SCRAPERS 8

/* Each silent scraper held the one stats thread for its 2 s request
 * timeout in turn, so eight of them made a real scrape wait 16 s, past
 * Prometheus's default 10 s scrape timeout. It must be answered within
 * about one timeout; the silent ones are still dropped after it; and
 * forty of them delay a scrape no more. */
Test(metrics, silent_scrapers_do_not_queue_up_a_scrape, .init = integration_init, .fini = metrics_fini)
{
    uint16_t proxy_port = TEST_PORT(163, 0), stats_port = TEST_PORT(163, 1);
    cr_assert(backend_start(&alpha, "alpha", TEST_PORT(163, 2), NULL, NULL));
    char *globals = text_format("stats = 127.0.0.1:%u\n", stats_port);
    char *body = text_format("[routes]\ndefault = alpha\n[upstream alpha]\nserver = 127.0.0.1:%u\n",
                             TEST_PORT(163, 2));
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&metrics_proxy, config, proxy_port), "snisplice did not start");

    int silent[SILENT_SCRAPERS];
    long long opened = monotonic_ms();
    for (int i = 0; i < SILENT_SCRAPERS; i++) {
        silent[i] = net_connect(stats_port);
        cr_assert_geq(silent[i], 0);
    }
    sleep_ms(100); /* all of them accepted, or waiting in the backlog */
    long long start = monotonic_ms();
    char *text = http_get(stats_port, "/metrics");
    long long took = monotonic_ms() - start;
    cr_expect(strncmp(text, "HTTP/1.0 200 OK\r\n", 17) == 0, "%.200s", text);
    cr_expect_lt(took, 3000, "a scrape behind %d silent scrapers took %lld ms", SILENT_SCRAPERS, took);
    free(text);
    for (int i = 0; i < SILENT_SCRAPERS; i++) {
        size_t bytes = 0;
        long long closed_after = net_ms_until_closed(silent[i], opened, 6000, &bytes);
        cr_expect(closed_after >= 0 && closed_after < 4000, "silent scraper %d closed after %lld ms", i,
                  closed_after);
        close(silent[i]);
    }

    /* More of them than the thread waits on at once: the ones silent the
     * longest make room, so a scrape still waits behind no timeout. */
    int crowd[5 * SILENT_SCRAPERS];
    for (int i = 0; i < 5 * SILENT_SCRAPERS; i++) {
        crowd[i] = net_connect(stats_port);
        cr_assert_geq(crowd[i], 0);
    }
    sleep_ms(100);
    start = monotonic_ms();
    text = http_get(stats_port, "/metrics");
    took = monotonic_ms() - start;
    cr_expect(strncmp(text, "HTTP/1.0 200 OK\r\n", 17) == 0, "%.200s", text);
    cr_expect_lt(took, 3000, "a scrape behind %d silent scrapers took %lld ms", 5 * SILENT_SCRAPERS, took);
    free(text);
    for (int i = 0; i < 5 * SILENT_SCRAPERS; i++)
        close(crowd[i]);
    free(config);
    free(body);
    free(globals);
    cr_expect_eq(proxy_stop(&metrics_proxy, 10000), 0);
}

/* ---- an IPv6 endpoint ---- */

/* GET /metrics from [::1]:port: the whole response, NULL if refused. */
static char *fetch_over_ipv6(uint16_t port)
{
    struct sockaddr_in6 address = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
    inet_pton(AF_INET6, "::1", &address.sin6_addr);
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    net_set_timeouts(fd, 5000);
    static const char request[] = "GET /metrics HTTP/1.0\r\n\r\n";
    char *response = calloc(1, 1 << 20);
    if (response && net_send_all(fd, request, sizeof request - 1))
        net_receive_exact(fd, response, (1 << 20) - 1, 5000);
    close(fd);
    return response;
}

/* `stats = [::]:PORT` is IPv6-only, as `address = [::]:PORT` is (and as
 * the config check assumes when it lets a listener have 0.0.0.0:PORT):
 * IPv4 clients of that port reach the listener. Before, the endpoint's
 * socket was dual-stack: start-up failed on the listener's port ("another
 * program listens there") after -t had passed the config, and without
 * such a listener the unauthenticated metrics were served on every IPv4
 * address too. */
Test(metrics, ipv6_endpoint_is_ipv6_only, .init = integration_init, .fini = metrics_fini)
{
    uint16_t proxy_port = TEST_PORT(190, 0), shared_port = TEST_PORT(190, 1), alpha_port = TEST_PORT(190, 2);
    cr_assert(backend_start(&alpha, "alpha", alpha_port, NULL, NULL));
    char *globals = text_format("stats = [::]:%u\n", shared_port);
    char *body = text_format("[routes]\ndefault = alpha\n[upstream alpha]\nserver = 127.0.0.1:%u\n"
                             "[listen ipv4]\naddress = 0.0.0.0:%u\nupstream = alpha\n",
                             alpha_port, shared_port);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&metrics_proxy, config, proxy_port), "snisplice did not start");

    char *metrics = fetch_over_ipv6(shared_port);
    cr_assert_not_null(metrics, "nothing answers on [::1]:%u", shared_port);
    cr_expect(strncmp(metrics, "HTTP/1.0 200 OK\r\n", 17) == 0, "%.200s", metrics);
    char *reply = exchange_once(shared_port, "x", 1, 5000, NULL);
    cr_expect_str_eq(reply ? reply : "(refused)", "alpha\n", "an IPv4 client of the port reaches the listener");
    free(reply);
    free(metrics);
    free(config);
    free(body);
    free(globals);
    cr_expect_eq(proxy_stop(&metrics_proxy, 10000), 0);
}

/* stats = [::ffff:127.0.0.1]:PORT served before the endpoint became
 * IPv6-only, and still does, on 127.0.0.1: the loader used to refuse it
 * with the listeners' reason (their sockets are IPv6-only, the
 * endpoint's is dual-stack for such an address). */
Test(metrics, ipv4_mapped_endpoint_serves_its_ipv4_address, .init = integration_init, .fini = metrics_fini)
{
    uint16_t proxy_port = TEST_PORT(240, 0), stats_port = TEST_PORT(240, 1), alpha_port = TEST_PORT(240, 2);
    cr_assert(backend_start(&alpha, "alpha", alpha_port, NULL, NULL));
    char *globals = text_format("stats = [::ffff:127.0.0.1]:%u\n", stats_port);
    char *body = text_format("[routes]\ndefault = alpha\n[upstream alpha]\nserver = 127.0.0.1:%u\n", alpha_port);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&metrics_proxy, config, proxy_port), "snisplice did not start");

    char *metrics = http_get(stats_port, "/metrics");
    cr_expect_not_null(strstr(metrics, "snisplice_workers"), "%.200s", metrics);
    free(metrics);
    free(config);
    free(body);
    free(globals);
    cr_expect_eq(proxy_stop(&metrics_proxy, 10000), 0);
}

/* ---- label values ---- */

/* Prometheus refuses a whole scrape over one label value that is not
 * UTF-8 ("invalid UTF-8 label value"), and a unix: path names a route or
 * server with whatever bytes it holds: one Latin-1 "café" in a path left
 * every metric unscraped. Such a byte is reported as '?'. */
Test(metrics, a_name_that_is_not_utf8_leaves_the_page_utf8, .init = integration_init, .fini = metrics_fini)
{
    uint16_t proxy_port = TEST_PORT(292, 0), stats_port = TEST_PORT(292, 1);
    char *directory = temp_directory_create("metrics-latin1");
    /* Nothing listens there: the connect fails, and the name is counted all the same. */
    char *body = text_format("[routes]\ndefault = unix:%s/caf\xe9.sock\n", directory);
    char *globals = text_format("stats = 127.0.0.1:%u\n", stats_port);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&metrics_proxy, config, proxy_port), "snisplice did not start");
    struct hello_bytes hello = hello_build("cafe.example.com");
    free(exchange_once(proxy_port, hello.data, hello.length, 5000, NULL));

    char *series = text_format("snisplice_connections_total{route=\"unix:%s/caf?.sock\",outcome=\"connect_failed\"}",
                               directory);
    char *text = NULL;
    for (int i = 0; i < 300; i++) {
        free(text);
        text = http_get(stats_port, "/metrics");
        if (stats_sample(text, series) == 1)
            break;
        sleep_ms(10);
    }
    cr_expect_eq(stats_sample(text, series), 1, "%s\n%s", series, text);
    size_t outside_ascii = 0;
    for (const unsigned char *at = (const unsigned char *)text; *at; at++)
        outside_ascii += *at >= 0x80;
    cr_expect_eq(outside_ascii, 0, "only ASCII was configured besides the Latin-1 byte:\n%s", text);

    free(text);
    free(series);
    hello_free(&hello);
    free(config);
    free(globals);
    free(body);
    free(directory);
    cr_expect_eq(proxy_stop(&metrics_proxy, 10000), 0);
}
