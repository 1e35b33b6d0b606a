/*
 * test_access_log.c - one line per finished connection with client, SNI,
 * ALPN, route, upstream, bytes each way, duration and outcome; SIGUSR1
 * reopens the file after logrotate moved it. Ports: block 51.
 */
#include <criterion/criterion.h>
#include <signal.h>
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
    struct hello_bytes bad = hello_build("bad_name.example.com");
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
