/*
 * test_access_log.c - one line per finished connection with client, SNI,
 * ALPN, route, upstream, bytes each way, duration and outcome; SIGUSR1
 * reopens the file after logrotate moved it; a reload turns it off and on
 * without disturbing traffic; lines a full disk loses are counted and said
 * once; the route is the upstream's whole name, however long. Ports:
 * blocks 51, 98, 99, 167.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy log_proxy;
static struct backend log_backend;

static void log_fini(void)
{
    proxy_release(&log_proxy);
    integration_cleanup();
}

/* Wait until the file holds every one of `needles` (NULL-terminated);
 * returns its text. Line counts are not enough: the start-up probe adds a
 * line of its own, at a time of the proxy's choosing. */
static char *wait_for_text(const char *path, const char *const *needles, int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        char *text = file_read_all(path, NULL);
        bool all = text != NULL;
        for (int i = 0; all && needles[i]; i++)
            all = strstr(text, needles[i]) != NULL;
        if (all || monotonic_ms() > deadline)
            return text;
        free(text);
        sleep_ms(50);
    }
}

Test(access_log, one_line_per_connection_and_reopen, .init = integration_init, .fini = log_fini)
{
    uint16_t proxy_port = TEST_PORT(51, 0), backend_port = TEST_PORT(51, 1);
    char *directory = temp_directory_create("access-log");
    char *path = text_format("%s/access.log", directory);
    cr_assert(backend_start(&log_backend, "alpha", backend_port, NULL, NULL));
    char *globals = text_format("access_log = %s\n", path);
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = alpha\n[upstream alpha]\nserver = 127.0.0.1:%u\n",
                             backend_port);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&log_proxy, config, proxy_port), "snisplice did not start");

    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    char *reply = exchange_once(proxy_port, hello.data, hello.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "alpha\n") == 0);
    free(reply);
    struct hello_bytes bad = hello_build("bad name.example.com");
    free(exchange_once(proxy_port, bad.data, bad.length, 5000, NULL));

    const char *const first_lines[] = {"outcome=done", "outcome=invalid_hello", NULL};
    char *text = wait_for_text(path, first_lines, 3000);
    cr_assert_not_null(text, "no access log at %s", path);
    char *good = strstr(text, "sni=matrix.exceptionerror.io");
    cr_expect_not_null(good, "no line for the routed connection:\n%s", text);
    if (good) {
        char *line_end = strchr(good, '\n');
        *line_end = '\0';
        cr_expect(strstr(good, "alpn=h2 route=alpha upstream=127.0.0.1:") != NULL, "%s", good);
        char *up = text_format("up=%zu ", hello.length);
        cr_expect(strstr(good, up) != NULL, "bytes to the upstream: %s", good);
        cr_expect(strstr(good, "down=6 ") != NULL, "bytes to the client: %s", good);
        cr_expect(strstr(good, "outcome=done") != NULL, "%s", good);
        free(up);
        *line_end = '\n';
    }
    cr_expect(strstr(text, "outcome=invalid_hello") != NULL, "no line for the refused hello:\n%s", text);
    cr_expect(strncmp(text, "20", 2) == 0 && strstr(text, "Z 127.0.0.1:") != NULL, "time and client:\n%s", text);
    free(text);

    /* logrotate: move the file away, SIGUSR1, new lines go to a new file. */
    char *rotated = text_format("%s.1", path);
    cr_assert_eq(rename(path, rotated), 0);
    proxy_signal(&log_proxy, SIGUSR1);
    cr_assert(proxy_stderr_wait_for(&log_proxy, "reopened access log", 3000));
    free(exchange_once(proxy_port, hello.data, hello.length, 5000, NULL));
    const char *const reopened_lines[] = {"outcome=done", NULL};
    text = wait_for_text(path, reopened_lines, 3000);
    cr_expect(text && strstr(text, "outcome=done") != NULL, "nothing in the reopened log");
    free(text);
    /* The rotated file keeps its one routed connection (the start-up probe
     * adds a client_closed line); the later one is not in it. */
    const char *const nothing[] = {NULL};
    char *old = wait_for_text(rotated, nothing, 0);
    int done_lines = 0;
    for (char *at = old; at && (at = strstr(at, "outcome=done")) != NULL; at++)
        done_lines++;
    cr_expect_eq(done_lines, 1, "the rotated file changed after SIGUSR1:\n%s", old ? old : "");
    free(old);

    hello_free(&hello);
    hello_free(&bad);
    free(rotated);
    free(config);
    free(body);
    free(globals);
    free(path);
    free(directory);
    cr_expect_eq(proxy_stop(&log_proxy, 10000), 0);
}

/* Connections made back to back from a thread while the test reloads. */
struct steady_client {
    uint16_t port;
    const struct hello_bytes *hello;
    atomic_bool stop;
    int exchanges;
    int wrong;           /* answers that were not exactly "alpha\n" */
    pthread_t thread;
};

static void *steady_loop(void *argument)
{
    struct steady_client *client = argument;
    while (!atomic_load(&client->stop)) {
        char *reply = exchange_once(client->port, client->hello->data, client->hello->length, 5000, NULL);
        client->exchanges++;
        if (!reply || strcmp(reply, "alpha\n") != 0)
            client->wrong++;
        free(reply);
    }
    return NULL;
}

static int count_in(const char *text, const char *needle)
{
    int count = 0;
    for (const char *at = text; at && (at = strstr(at, needle)) != NULL; at++)
        count++;
    return count;
}

/* A reload may turn the log off and on again. Off, no line is written; on
 * again, lines go to the file. The descriptor workers write to is never
 * closed while they run (pointed at /dev/null instead): a closed number is
 * the next socket's or pipe's, and a write a worker had queued just before
 * the reload would have put log lines into another client's stream. So
 * under steady traffic every answer stays exact, and toggling leaks no
 * descriptor. */
Test(access_log, off_and_on_again_by_reload, .init = integration_init, .fini = log_fini)
{
    uint16_t proxy_port = TEST_PORT(98, 0), backend_port = TEST_PORT(98, 1), stats_port = TEST_PORT(98, 2);
    char *directory = temp_directory_create("access-log-toggle");
    char *path = text_format("%s/access.log", directory);
    cr_assert(backend_start(&log_backend, "alpha", backend_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = alpha\n[upstream alpha]\nserver = 127.0.0.1:%u\n", backend_port);
    char *globals_on = text_format("stats = 127.0.0.1:%u\naccess_log = %s\n", stats_port, path);
    char *globals_off = text_format("stats = 127.0.0.1:%u\n", stats_port);
    char *config_on = config_text(proxy_port, globals_on, body);
    char *config_off = config_text(proxy_port, globals_off, body);
    cr_assert(proxy_start(&log_proxy, config_on, proxy_port), "snisplice did not start");
    struct hello_bytes hello = hello_build("toggle.example.com");
    free(exchange_once(proxy_port, hello.data, hello.length, 5000, NULL));
    const char *const done[] = {"sni=toggle.example.com", NULL};
    free(wait_for_text(path, done, 3000));

    proxy_reload(&log_proxy, config_off);
    cr_assert(proxy_stderr_wait_for(&log_proxy, "reloaded", 3000));
    sleep_ms(200);
    char *before = file_read_all(path, NULL);
    for (int i = 0; i < 5; i++)
        free(exchange_once(proxy_port, hello.data, hello.length, 5000, NULL));
    sleep_ms(300);
    char *after = file_read_all(path, NULL);
    cr_expect(before && after && strcmp(before, after) == 0, "lines were written with the log off");
    long long pipes_in_use = 0;
    int fds_off = stats_fds_outside_pool(&log_proxy, stats_port, &pipes_in_use);
    free(before);
    free(after);

    static struct steady_client client;
    client = (struct steady_client){ .port = proxy_port, .hello = &hello };
    cr_assert_eq(pthread_create(&client.thread, NULL, steady_loop, &client), 0);
    enum { TOGGLES = 20 };
    for (int i = 0; i < TOGGLES; i++) {
        proxy_reload(&log_proxy, i % 2 == 0 ? config_on : config_off);
        sleep_ms(50);
    }
    atomic_store(&client.stop, true);
    pthread_join(client.thread, NULL);
    cr_expect_gt(client.exchanges, TOGGLES, "too few connections during the reloads: %d", client.exchanges);
    cr_expect_eq(client.wrong, 0, "%d of %d answers were not exactly the server's", client.wrong, client.exchanges);
    sleep_ms(300);
    int fds_after = stats_fds_outside_pool(&log_proxy, stats_port, &pipes_in_use);
    cr_expect_eq(fds_after, fds_off, "descriptors after %d toggles: %d, before: %d", TOGGLES, fds_after, fds_off);

    proxy_reload(&log_proxy, config_on);
    sleep_ms(300);
    char *text = file_read_all(path, NULL);
    int lines_before = count_in(text, "sni=toggle.example.com");
    free(text);
    free(exchange_once(proxy_port, hello.data, hello.length, 5000, NULL));
    sleep_ms(300);
    text = file_read_all(path, NULL);
    cr_expect_eq(count_in(text, "sni=toggle.example.com"), lines_before + 1, "no line once the log is on again");
    cr_expect(text && strstr(text, "\n\n") == NULL, "a damaged line:\n%s", text ? text : "");
    free(text);

    hello_free(&hello);
    free(config_on);
    free(config_off);
    free(globals_on);
    free(globals_off);
    free(body);
    free(path);
    free(directory);
    cr_expect_eq(proxy_stop(&log_proxy, 10000), 0);
}

/* A log that cannot be written (here /dev/full: every write says ENOSPC)
 * never disturbs traffic, and what it loses is said once and counted. */
Test(access_log, lost_lines_are_counted_and_said_once, .init = integration_init, .fini = log_fini)
{
    uint16_t proxy_port = TEST_PORT(99, 0), backend_port = TEST_PORT(99, 1), stats_port = TEST_PORT(99, 2);
    cr_assert(backend_start(&log_backend, "alpha", backend_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = alpha\n[upstream alpha]\nserver = 127.0.0.1:%u\n", backend_port);
    char *globals = text_format("workers = 1\nstats = 127.0.0.1:%u\naccess_log = /dev/full\n", stats_port);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&log_proxy, config, proxy_port), "snisplice did not start");
    struct hello_bytes hello = hello_build("full.example.com");
    enum { CONNECTIONS = 3 };
    for (int i = 0; i < CONNECTIONS; i++) {
        char *reply = exchange_once(proxy_port, hello.data, hello.length, 5000, NULL);
        cr_expect(reply && strcmp(reply, "alpha\n") == 0, "connection %d: \"%s\"", i, reply ? reply : "(none)");
        free(reply);
    }
    /* The start-up probe's connection may add a line of its own. */
    long long lost = -1;
    for (long long deadline = monotonic_ms() + 3000; monotonic_ms() < deadline; sleep_ms(50)) {
        lost = stats_value(stats_port, "snisplice_access_log_lost_lines_total");
        if (lost >= CONNECTIONS)
            break;
    }
    cr_expect_geq(lost, CONNECTIONS, "lost lines counted: %lld", lost);
    cr_expect_leq(lost, CONNECTIONS + 1, "lost lines counted: %lld", lost);
    char *log = proxy_stderr(&log_proxy);
    cr_expect_eq(count_in(log, "access log: write: No space left on device"), 1, "said once:\n%s", log);
    free(log);
    hello_free(&hello);
    free(config);
    free(globals);
    free(body);
    cr_expect_eq(proxy_stop(&log_proxy, 10000), 0);
}

/* Upstream names have no length limit of their own, and metrics carry
 * them whole: so must the log. The old record kept 63 characters. */
Test(access_log, the_route_is_the_whole_upstream_name, .init = integration_init, .fini = log_fini)
{
    uint16_t proxy_port = TEST_PORT(167, 0), backend_port = TEST_PORT(167, 1), stats_port = TEST_PORT(167, 2);
    const char *name = "tenant-42_production-eu-west-1_matrix-synapse-federation-endpoint-backend-pool-primary";
    cr_assert_eq(strlen(name), 86);
    char *directory = temp_directory_create("access-log-long-route");
    char *path = text_format("%s/access.log", directory);
    cr_assert(backend_start(&log_backend, "alpha", backend_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = %s\n[upstream %s]\nserver = 127.0.0.1:%u\n", name, name,
                             backend_port);
    char *globals = text_format("stats = 127.0.0.1:%u\naccess_log = %s\n", stats_port, path);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&log_proxy, config, proxy_port), "snisplice did not start");
    struct hello_bytes hello = hello_build("long.example.com");
    char *reply = exchange_once(proxy_port, hello.data, hello.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "alpha\n") == 0);
    free(reply);

    const char *const done[] = {"sni=long.example.com", NULL};
    char *text = wait_for_text(path, done, 3000);
    char *route = text_format("sni=long.example.com alpn=h2 route=%s upstream=127.0.0.1:%u ", name, backend_port);
    cr_expect(text && strstr(text, route) != NULL, "no line with the whole route name:\n%s", text ? text : "");
    /* The same name metrics count under. */
    char *series = text_format("snisplice_connections_total{route=\"%s\",outcome=\"done\"}", name);
    cr_expect_eq(stats_value(stats_port, series), 1, "%s", series);

    free(series);
    free(route);
    free(text);
    hello_free(&hello);
    free(config);
    free(globals);
    free(body);
    free(path);
    free(directory);
    cr_expect_eq(proxy_stop(&log_proxy, 10000), 0);
}
