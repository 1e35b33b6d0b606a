/*
 * test_access_log.c - one line per finished connection with client, SNI,
 * ALPN, route, upstream, bytes each way, duration and outcome; SIGUSR1
 * reopens the file after logrotate moved it; a reload turns it off and on
 * without disturbing traffic; lines a full disk loses are counted and said
 * once, and a line a full disk cuts in two is never glued to the next;
 * the route is the upstream's whole name, however long; the server name is
 * the one a "~" route saw, with its case as sent; a unix: path with a
 * space does not split its line; the README's logrotate block rotates the
 * log as printed; a failed reopen keeps the open file and says so.
 * Ports: blocks 51, 98, 99, 166, 167, 180, 280, 293, 309.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
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

/* ---- a full disk cuts a write short ---- */

static char *small_disk; /* a tmpfs mounted by the test; unmounted by the fini */

static void small_disk_fini(void)
{
    proxy_release(&log_proxy);
    if (small_disk)
        umount2(small_disk, MNT_DETACH);
    free(small_disk);
    small_disk = NULL;
    integration_cleanup();
}

/* Fill the disk's last free byte; the file is removed to free them again. */
static void fill_disk(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    static char block[4096];
    memset(block, 'x', sizeof block);
    while (write(fd, block, sizeof block) > 0)
        ;
    cr_assert_eq(errno, ENOSPC, "filling the disk: %s", strerror(errno));
    /* The last, partial page (if any): byte by byte. */
    while (write(fd, block, 1) > 0)
        ;
    close(fd);
}

#define STAMP "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\\.[0-9]{3}Z "
static const char WHOLE_LINE[] = "^" STAMP "[^ ]+ sni=[^ ]+ alpn=[^ ]+ route=[^ ]+ upstream=[^ ]+ "
                                 "up=[0-9]+ down=[0-9]+ ms=[0-9]+ outcome=[a-z_]+$";

struct line_census {
    int whole;        /* lines in the format */
    int torn;         /* the start of a line, cut by a short write */
    int glued;        /* a line with a second line's time stamp inside */
    int after;        /* whole lines for the connections made once space was free */
    int after_damaged;
};

static void census_of(char *text, struct line_census *census)
{
    regex_t whole, stamp;
    cr_assert_eq(regcomp(&whole, WHOLE_LINE, REG_EXTENDED | REG_NOSUB), 0);
    cr_assert_eq(regcomp(&stamp, STAMP, REG_EXTENDED | REG_NOSUB), 0);
    memset(census, 0, sizeof *census);
    for (char *line = text, *end; line && *line; line = end ? end + 1 : NULL) {
        end = strchr(line, '\n');
        if (end)
            *end = '\0';
        bool is_whole = regexec(&whole, line, 0, NULL, 0) == 0;
        bool after = strstr(line, "sni=after.example.com") != NULL;
        census->whole += is_whole;
        census->torn += !is_whole;
        census->glued += *line && regexec(&stamp, line + 1, 0, NULL, 0) == 0;
        census->after += after && is_whole;
        census->after_damaged += after && !is_whole;
        if (!is_whole)
            cr_log_info("not a whole line: \"%s\"", line);
        if (end)
            *end = '\n';
    }
    regfree(&whole);
    regfree(&stamp);
}

/* A full disk cuts the write in progress short, inside a line. The log
 * then goes on after that fragment once space is free: the old code wrote
 * the next lines right onto it, gluing a torn line to a whole one
 * ("...sni=befo2026-...Z 127.0.0.1:..."), which no log reader can split.
 * Now the torn line stands alone (the next write starts with "\n") and
 * every later line is whole. */
Test(access_log, a_line_a_full_disk_cuts_is_not_glued_to_the_next, .init = integration_init,
     .fini = small_disk_fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to mount a small tmpfs");
    uint16_t proxy_port = TEST_PORT(166, 0), backend_port = TEST_PORT(166, 1), stats_port = TEST_PORT(166, 2);
    small_disk = temp_directory_create("access-log-full");
    if (mount("tmpfs", small_disk, "tmpfs", 0, "size=16k,mode=0700") != 0)
        cr_skip_test("cannot mount a tmpfs: %s", strerror(errno));
    char *path = text_format("%s/access.log", small_disk);
    char *filler = text_format("%s/filler", small_disk);
    cr_assert(backend_start(&log_backend, "alpha", backend_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = alpha\n[upstream alpha]\nserver = 127.0.0.1:%u\n", backend_port);
    char *globals = text_format("workers = 1\nstats = 127.0.0.1:%u\naccess_log = %s\n", stats_port, path);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&log_proxy, config, proxy_port), "snisplice did not start");

    /* The log's first page is taken; the rest of the disk is filled, so
     * lines fit until that page is full, then one write is cut short. */
    struct hello_bytes before = hello_build("before.example.com");
    free(exchange_once(proxy_port, before.data, before.length, 5000, NULL));
    const char *const first[] = {"sni=before.example.com", NULL};
    free(wait_for_text(path, first, 3000));
    fill_disk(filler);
    long long lost = 0;
    for (int i = 0; i < 200 && lost <= 0; i++) {
        free(exchange_once(proxy_port, before.data, before.length, 5000, NULL));
        lost = stats_value(stats_port, "snisplice_access_log_lost_lines_total");
    }
    cr_assert_gt(lost, 0, "the disk never filled");
    cr_assert(proxy_stderr_wait_for(&log_proxy, "access log: write: short write", 3000),
              "no write was cut short (the first loss was another):\n%s", proxy_stderr(&log_proxy));

    /* Space again: later lines must be whole, each on its own. */
    cr_assert_eq(unlink(filler), 0);
    enum { AFTER = 5 };
    struct hello_bytes after = hello_build("after.example.com");
    for (int i = 0; i < AFTER; i++)
        free(exchange_once(proxy_port, after.data, after.length, 5000, NULL));
    cr_expect_eq(proxy_stop(&log_proxy, 10000), 0);
    char *text = file_read_all(path, NULL);
    cr_assert_not_null(text);
    struct line_census census;
    census_of(text, &census);
    cr_expect_eq(census.glued, 0, "%d lines glued onto a torn one:\n%s", census.glued, text);
    cr_expect_eq(census.after_damaged, 0, "%d lines written after space was free are damaged:\n%s",
                 census.after_damaged, text);
    cr_expect_eq(census.after, AFTER, "whole lines written after space was free: %d of %d:\n%s", census.after,
                 AFTER, text);
    cr_expect_leq(census.torn, 1, "torn lines: %d (one write was cut short):\n%s", census.torn, text);
    cr_expect_gt(census.whole, 1, "whole lines: %d", census.whole);

    free(text);
    hello_free(&before);
    hello_free(&after);
    free(config);
    free(globals);
    free(body);
    free(filler);
    free(path);
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

/* nginx logs $ssl_preread_server_name as the client sent it, and a "~"
 * route matches it so. The line logged the lower-cased name instead: a
 * client sending "Mixed.Case.example.com" missed "~^mixed\.case\." (as it
 * does in nginx) while the line said sni=mixed.case.example.com, which
 * that route matches, so the log showed a routing error where there was
 * none. */
Test(access_log, the_server_name_is_logged_as_sent, .init = integration_init, .fini = log_fini)
{
    uint16_t proxy_port = TEST_PORT(180, 0), backend_port = TEST_PORT(180, 1), unused_port = TEST_PORT(180, 2);
    char *directory = temp_directory_create("access-log-as-sent");
    char *path = text_format("%s/access.log", directory);
    cr_assert(backend_start(&log_backend, "alpha", backend_port, NULL, NULL));
    char *body = text_format("[routes]\n~^mixed\\.case\\. = 127.0.0.1:%u\ndefault = alpha\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n", unused_port, backend_port);
    char *globals = text_format("access_log = %s\n", path);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&log_proxy, config, proxy_port), "snisplice did not start");
    /* One trailing dot is dropped, as for routing. */
    struct hello_bytes hello = hello_build("Mixed.Case.example.com.");
    char *reply = exchange_once(proxy_port, hello.data, hello.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "alpha\n") == 0, "not routed as nginx routes it: \"%s\"", reply ? reply : "");
    free(reply);

    const char *const done[] = {"outcome=done", NULL};
    char *text = wait_for_text(path, done, 3000);
    cr_expect(text && strstr(text, " sni=Mixed.Case.example.com alpn=h2 route=alpha ") != NULL,
              "the server name is not the one sent:\n%s", text ? text : "");

    free(text);
    hello_free(&hello);
    free(config);
    free(globals);
    free(body);
    free(path);
    free(directory);
    cr_expect_eq(proxy_stop(&log_proxy, 10000), 0);
}

/* A line's fields are split at spaces. A unix: path, which names the
 * route and the server of a literal target, may hold a space or any
 * other byte: written as it was, it split its line into fields that
 * were not there, so such bytes show as '?', as in alpn. */
Test(access_log, a_unix_path_does_not_split_the_line, .init = integration_init, .fini = log_fini)
{
    uint16_t proxy_port = TEST_PORT(293, 0);
    char *directory = temp_directory_create("access-log-unix-path");
    char *path = text_format("%s/access.log", directory);
    /* Nothing listens there: the connect fails, and its line names it. */
    char *body = text_format("[routes]\ndefault = unix:%s/my socket\xe9.sock\n", directory);
    char *globals = text_format("access_log = %s\n", path);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&log_proxy, config, proxy_port), "snisplice did not start");
    struct hello_bytes hello = hello_build("unix.example.com");
    free(exchange_once(proxy_port, hello.data, hello.length, 5000, NULL));

    const char *const failed[] = {"sni=unix.example.com", NULL};
    char *text = wait_for_text(path, failed, 3000);
    char *line = text ? strstr(text, "sni=unix.example.com") : NULL;
    cr_assert_not_null(line, "no line:\n%s", text ? text : "");
    *strchrnul(line, '\n') = '\0';
    char *fields = text_format("sni=unix.example.com alpn=h2 route=unix:%s/my?socket?.sock "
                               "upstream=unix:%s/my?socket?.sock up=0 down=0 ms=",
                               directory, directory);
    cr_expect(strncmp(line, fields, strlen(fields)) == 0, "%s", line);
    const char *rest = line + strlen(fields);
    rest += strspn(rest, "0123456789");
    cr_expect_str_eq(rest, " outcome=connect_failed");

    free(fields);
    free(text);
    hello_free(&hello);
    free(config);
    free(globals);
    free(body);
    free(path);
    free(directory);
    cr_expect_eq(proxy_stop(&log_proxy, 10000), 0);
}

/* text with every `from` replaced by `to`; malloc'd. */
static char *text_replace(const char *text, const char *from, const char *to)
{
    char *result = strdup(text);
    for (char *at; (at = strstr(result, from)) != NULL;) {
        char *next = text_format("%.*s%s%s", (int)(at - result), result, to, at + strlen(from));
        free(result);
        result = next;
    }
    return result;
}

/* The README's logrotate block, the one after `start` in its "## Access
 * log" section, as it is printed there; malloc'd, NULL if not found. */
static char *readme_logrotate_block(const char *start)
{
    FILE *readme = fopen("README.md", "r");
    cr_assert_not_null(readme, "run from the repository root");
    char line[512];
    bool in_section = false, in_block = false;
    char *block = NULL;
    size_t block_size = 0;
    FILE *out = open_memstream(&block, &block_size);
    cr_assert_not_null(out);
    while (fgets(line, sizeof line, readme)) {
        if (strncmp(line, "## ", 3) == 0)
            in_section = strcmp(line, "## Access log\n") == 0;
        else if (in_section && !in_block && strcmp(line, start) == 0)
            in_block = true;
        else if (in_block && strcmp(line, "```\n") == 0)
            break;
        if (in_block)
            fputs(line, out);
    }
    fclose(readme);
    fclose(out);
    if (block_size > 0)
        return block;
    free(block);
    return NULL;
}

/* Users copy the README's logrotate block into /etc/logrotate.d. It held
 * a comment after `create`'s arguments, which logrotate takes as more
 * arguments: it refused the whole block ("extra arguments for create"),
 * so the log was never rotated. Run here as printed, with only the path,
 * NAME GROUP (this test's user) and the signal's target put in. */
Test(access_log, the_readme_logrotate_block_rotates_the_log, .init = integration_init, .fini = log_fini)
{
    uint16_t proxy_port = TEST_PORT(280, 0), backend_port = TEST_PORT(280, 1);
    char *directory = temp_directory_create("access-log-logrotate");
    char *path = text_format("%s/access.log", directory);
    cr_assert(backend_start(&log_backend, "alpha", backend_port, NULL, NULL));
    char *globals = text_format("access_log = %s\n", path);
    char *body = text_format("[routes]\ndefault = alpha\n[upstream alpha]\nserver = 127.0.0.1:%u\n", backend_port);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&log_proxy, config, proxy_port), "snisplice did not start");
    struct hello_bytes first = hello_build("first.example.com");
    free(exchange_once(proxy_port, first.data, first.length, 5000, NULL));
    const char *const first_line[] = {"sni=first.example.com", NULL};
    free(wait_for_text(path, first_line, 3000));

    char *block = readme_logrotate_block("/var/log/snisplice/access.log {\n");
    cr_assert_not_null(block, "no logrotate block under \"## Access log\"");
    struct passwd *user = getpwuid(geteuid());
    struct group *group = getgrgid(getegid());
    cr_assert(user && group);
    char *owner = text_format("%s %s", user->pw_name, group->gr_name);
    char *signal_it = text_format("kill -USR1 %d", (int)log_proxy.pid);
    char *step1 = text_replace(block, "/var/log/snisplice/access.log", path);
    char *step2 = text_replace(step1, "NAME GROUP", owner);
    char *rotate_config = text_replace(step2, "systemctl kill -s USR1 snisplice.service", signal_it);
    cr_assert_neq(strcmp(rotate_config, step2), 0, "the block no longer signals the service");
    char *config_path = temp_file_write(directory, "logrotate.conf", rotate_config);
    char *state_path = text_format("%s/logrotate.state", directory);
    const char *argv[] = {"/usr/sbin/logrotate", "-f", "-s", state_path, config_path, NULL};
    char *output = NULL;
    int status = child_run(argv, NULL, NULL, 15000, &output);
    cr_expect_eq(status, 0, "logrotate refused the README's block:\n%s\n%s", output ? output : "", rotate_config);
    cr_expect(output && strstr(output, "error") == NULL, "logrotate:\n%s", output ? output : "");

    cr_expect(proxy_stderr_wait_for(&log_proxy, "reopened access log", 3000), "no SIGUSR1 from postrotate");
    struct hello_bytes second = hello_build("second.example.com");
    free(exchange_once(proxy_port, second.data, second.length, 5000, NULL));
    const char *const second_line[] = {"sni=second.example.com", NULL};
    char *text = wait_for_text(path, second_line, 3000);
    cr_expect(text && strstr(text, "sni=second.example.com") && !strstr(text, "sni=first.example.com"),
              "the new file:\n%s", text ? text : "");
    char *rotated_path = text_format("%s.1", path);
    const char *const nothing[] = {NULL};
    char *rotated = wait_for_text(rotated_path, nothing, 0);
    cr_expect(rotated && strstr(rotated, "sni=first.example.com") && !strstr(rotated, "sni=second.example.com"),
              "the rotated file:\n%s", rotated ? rotated : "");

    free(rotated);
    free(rotated_path);
    free(text);
    hello_free(&second);
    free(output);
    free(state_path);
    free(config_path);
    free(rotate_config);
    free(step2);
    free(step1);
    free(signal_it);
    free(owner);
    free(block);
    hello_free(&first);
    free(config);
    free(body);
    free(globals);
    free(path);
    free(directory);
    cr_expect_eq(proxy_stop(&log_proxy, 10000), 0);
}

/* A SIGUSR1 whose reopen fails (here the log's directory is gone) keeps
 * the file already open, as the README says, and says so: the error
 * alone left an operator guessing whether lines were now lost. */
Test(access_log, a_failed_reopen_keeps_writing_to_the_open_file, .init = integration_init, .fini = log_fini)
{
    uint16_t proxy_port = TEST_PORT(309, 0);
    char *directory = temp_directory_create("access-log-reopen");
    char *log_directory = text_format("%s/logs", directory);
    cr_assert_eq(mkdir(log_directory, 0755), 0);
    char *path = text_format("%s/access.log", log_directory);
    char *globals = text_format("access_log = %s\n", path);
    char *config = config_text(proxy_port, globals, "[routes]\ndefault = 127.0.0.1:21341\n");
    cr_assert(proxy_start(&log_proxy, config, proxy_port), "snisplice did not start");

    char *moved_directory = text_format("%s/logs.old", directory);
    cr_assert_eq(rename(log_directory, moved_directory), 0);
    proxy_signal(&log_proxy, SIGUSR1);
    cr_expect(proxy_stderr_wait_for(&log_proxy, "lines go on to the file already open", 3000),
              "a failed reopen did not say where the lines go");
    struct hello_bytes hello = hello_build("after.example.com");
    free(exchange_once(proxy_port, hello.data, hello.length, 5000, NULL));
    char *moved = text_format("%s/access.log", moved_directory);
    const char *const after[] = {"sni=after.example.com", NULL};
    char *text = wait_for_text(moved, after, 3000);
    cr_expect(text && strstr(text, "sni=after.example.com"), "the line after the failed reopen is lost:\n%s",
              text ? text : "");

    free(text);
    hello_free(&hello);
    free(moved);
    free(moved_directory);
    free(config);
    free(globals);
    free(path);
    free(log_directory);
    free(directory);
    cr_expect_eq(proxy_stop(&log_proxy, 10000), 0);
}
