/*
 * test_outputs.c - what a hostile client can make snisplice hold or hand
 * on: every descriptor the proxy opens is close-on-exec, the access log's
 * included after SIGUSR1 and reloads turned it off and on (a future child
 * must inherit none of them); clients that ask for a large /metrics page
 * and never read it cannot keep a scrape out, nor a second request cut
 * the first one's answer short; after `user =`, and as the
 * systemd unit starts it (a dynamic user with an ambient
 * CAP_NET_BIND_SERVICE), every thread holds CAP_NET_BIND_SERVICE alone,
 * passes nothing to a program it might start (no ambient capability,
 * no_new_privs) and, switched from root, dumps no core; an ALPN name
 * of any bytes leaves each access-log line one line of plain fields.
 * Ports: blocks 364 to 368.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy outputs_proxy;
static struct backend outputs_backend;

static void outputs_fini(void)
{
    proxy_release(&outputs_proxy);
    integration_cleanup();
}

/* Append to a malloc'd text (one that grows line by line). */
static void text_append(char **text, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void text_append(char **text, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    char *added = NULL;
    int length = vasprintf(&added, format, arguments);
    va_end(arguments);
    cr_assert_geq(length, 0, "out of memory");
    char *joined = text_format("%s%s", *text, added);
    free(added);
    free(*text);
    *text = joined;
}

/* ---- close-on-exec ---- */

/* Whether this test process holds the same open file: the proxy then got
 * it from us at its exec (criterion's pipes), not from its own open. */
static bool inherited(const struct stat *file)
{
    DIR *own = opendir("/proc/self/fd");
    if (!own)
        return false;
    bool found = false;
    for (struct dirent *entry; !found && (entry = readdir(own)) != NULL;) {
        char path[300];
        struct stat mine;
        snprintf(path, sizeof path, "/proc/self/fd/%s", entry->d_name);
        found = entry->d_name[0] != '.' && stat(path, &mine) == 0 && mine.st_dev == file->st_dev &&
                mine.st_ino == file->st_ino;
    }
    closedir(own);
    return found;
}

/* The open flags of one of the proxy's descriptors (/proc/PID/fdinfo), -1 if gone. */
static long descriptor_flags(pid_t pid, const char *fd)
{
    char path[300], line[256];
    snprintf(path, sizeof path, "/proc/%d/fdinfo/%s", (int)pid, fd);
    FILE *file = fopen(path, "re");
    if (!file)
        return -1;
    long flags = -1;
    while (fgets(line, sizeof line, file))
        if (sscanf(line, "flags: %lo", &flags) == 1)
            break;
    fclose(file);
    return flags;
}

/* The proxy's own descriptors (past stdin, stdout and stderr, not
 * inherited) without close-on-exec, as "fd -> target" lines; malloc'd,
 * "" when there are none. */
static char *descriptors_kept_across_exec(pid_t pid)
{
    char *kept = text_format("%s", "");
    char directory_path[64];
    snprintf(directory_path, sizeof directory_path, "/proc/%d/fd", (int)pid);
    DIR *directory = opendir(directory_path);
    cr_assert_not_null(directory);
    for (struct dirent *entry; (entry = readdir(directory)) != NULL;) {
        char path[400], target[256] = "";
        struct stat file;
        snprintf(path, sizeof path, "%s/%s", directory_path, entry->d_name);
        if (entry->d_name[0] == '.' || atoi(entry->d_name) <= STDERR_FILENO || stat(path, &file) != 0 ||
            inherited(&file))
            continue;
        long flags = descriptor_flags(pid, entry->d_name);
        if (flags < 0 || (flags & O_CLOEXEC))
            continue;
        ssize_t length = readlink(path, target, sizeof target - 1);
        target[length > 0 ? length : 0] = '\0';
        text_append(&kept, "%s -> %s\n", entry->d_name, target);
    }
    closedir(directory);
    return kept;
}

static void expect_all_close_on_exec(pid_t pid, const char *when)
{
    char *kept = descriptors_kept_across_exec(pid);
    cr_expect_str_empty(kept, "%s, descriptors a child would inherit:\n%s", when, kept);
    free(kept);
}

static void serve_a_few(uint16_t proxy_port)
{
    struct hello_bytes hello = hello_build("outputs.example.com");
    for (int i = 0; i < 4; i++) {
        char *reply = exchange_once(proxy_port, hello.data, hello.length, 5000, NULL);
        cr_expect(reply && strcmp(reply, "alpha\n") == 0, "not served: %s", reply ? reply : "(refused)");
        free(reply);
    }
    hello_free(&hello);
}

/* Up to 5 s for `needle` to be in the proxy's stderr `count` times. */
static bool stderr_wait_for_count(const struct proxy *proxy, const char *needle, int count)
{
    for (long long deadline = monotonic_ms() + 5000;; sleep_ms(20)) {
        char *text = proxy_stderr(proxy);
        bool there = text_count(text, needle) >= count;
        free(text);
        if (there || monotonic_ms() > deadline)
            return there;
    }
}

/* The access log was reopened with dup2(), which clears close-on-exec:
 * after the first SIGUSR1 (each logrotate) or reload, the log's
 * descriptor would pass to any program the process ever started. */
Test(outputs, every_descriptor_is_close_on_exec, .init = integration_init, .fini = outputs_fini)
{
    uint16_t proxy_port = TEST_PORT(364, 0), stats_port = TEST_PORT(364, 1), backend_port = TEST_PORT(364, 2);
    cr_assert(backend_start(&outputs_backend, "alpha", backend_port, NULL, NULL));
    char *directory = temp_directory_create("outputs");
    char *log_path = text_format("%s/access.log", directory);
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", backend_port);
    char *logging = text_format("stats = 127.0.0.1:%u\naccess_log = %s\n", stats_port, log_path);
    char *not_logging = text_format("stats = 127.0.0.1:%u\naccess_log = off\n", stats_port);
    char *config = config_text(proxy_port, logging, body);
    char *config_off = config_text(proxy_port, not_logging, body);
    cr_assert(proxy_start(&outputs_proxy, config, proxy_port), "snisplice did not start");

    serve_a_few(proxy_port);
    expect_all_close_on_exec(outputs_proxy.pid, "at start");

    proxy_signal(&outputs_proxy, SIGUSR1);
    cr_assert(proxy_stderr_wait_for(&outputs_proxy, "reopened access log", 5000));
    serve_a_few(proxy_port);
    expect_all_close_on_exec(outputs_proxy.pid, "after SIGUSR1");

    proxy_reload(&outputs_proxy, config_off);
    cr_assert(stderr_wait_for_count(&outputs_proxy, "] reloaded ", 1));
    expect_all_close_on_exec(outputs_proxy.pid, "after a reload turned the log off");
    proxy_reload(&outputs_proxy, config);
    cr_assert(stderr_wait_for_count(&outputs_proxy, "] reloaded ", 2));
    serve_a_few(proxy_port);
    expect_all_close_on_exec(outputs_proxy.pid, "after a reload turned it on again");

    cr_expect_eq(proxy_stop(&outputs_proxy, 10000), 0);
    free(config_off);
    free(config);
    free(not_logging);
    free(logging);
    free(body);
    free(log_path);
    free(directory);
}

/* ---- /metrics readers that never read ---- */

#define STALLED_READERS 16 /* the endpoint's slots */
#define BIG_PAGE_ROUTES 300
#define METRICS_REQUEST "GET /metrics HTTP/1.0\r\n\r\n"

/* A route and an upstream per name, every server refusing: once each is
 * asked for, the page has lines for all of them (about 90 KiB). */
static char *many_routes_body(uint16_t dead_port)
{
    char *body = text_format("[routes]\n");
    for (int i = 0; i < BIG_PAGE_ROUTES; i++) {
        text_append(&body, "h%d.example.com = up%d\n", i, i);
    }
    for (int i = 0; i < BIG_PAGE_ROUTES; i++) {
        text_append(&body, "[upstream up%d]\nserver = 127.0.0.1:%u\n", i, dead_port);
    }
    return body;
}

static void ask_every_route(uint16_t proxy_port)
{
    for (int i = 0; i < BIG_PAGE_ROUTES; i++) {
        char name[64];
        snprintf(name, sizeof name, "h%d.example.com", i);
        struct hello_bytes hello = hello_build(name);
        free(exchange_once(proxy_port, hello.data, hello.length, 5000, NULL));
        hello_free(&hello);
    }
}

/* Start the proxy on `block` with a /metrics page of about 90 KiB (its
 * length returned): every route asked for once. */
static size_t start_with_a_big_page(uint16_t block_first_port)
{
    uint16_t proxy_port = block_first_port, stats_port = block_first_port + 1, dead_port = block_first_port + 2;
    char *globals = text_format("stats = 127.0.0.1:%u\n", stats_port);
    char *body = many_routes_body(dead_port);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&outputs_proxy, config, proxy_port), "snisplice did not start");
    ask_every_route(proxy_port);
    char *page = stats_fetch(stats_port, "/metrics");
    cr_assert_not_null(page);
    size_t page_length = strlen(page);
    cr_assert_gt(page_length, 64 * 1024, "the page is too small to hold back: %zu bytes", page_length);
    free(page);
    free(config);
    free(body);
    free(globals);
    return page_length;
}

/* A client of the endpoint with a receive buffer of `window` bytes (and
 * segments of `segment`, 0: the default) that has sent its request. */
static int ask_through_a_window(uint16_t stats_port, int window, int segment)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &window, sizeof window);
    if (segment > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &segment, sizeof segment);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(stats_port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(connect(fd, (struct sockaddr *)&address, sizeof address), 0);
    cr_assert(net_send_all(fd, METRICS_REQUEST, sizeof METRICS_REQUEST - 1));
    return fd;
}

/* A scraper that asks and then reads nothing, with the smallest window
 * and segments it can ask for: the endpoint's socket takes a few KiB of
 * the answer and it must hold the rest. Returns once the answer began
 * (its first bytes arrived), so the slot is answering, not reading. */
static int stalled_reader(uint16_t stats_port)
{
    int fd = ask_through_a_window(stats_port, 1, 536);
    struct pollfd wait = { fd, POLLIN, 0 };
    cr_assert_eq(poll(&wait, 1, 5000), 1, "no answer began");
    return fd;
}

/* Sixteen clients that asked for a page larger than their windows took
 * every slot of the endpoint for RESPONSE_TIMEOUT_MS (10 s), during
 * which no scrape was accepted; asking again every 10 s kept Prometheus
 * (10 s scrape timeout) out for good. Measured before: 9.7 s. */
Test(outputs, readers_that_never_read_keep_no_scrape_out, .init = integration_init, .fini = outputs_fini)
{
    uint16_t stats_port = TEST_PORT(365, 1);
    size_t page_length = start_with_a_big_page(TEST_PORT(365, 0));
    int baseline_fds = proxy_fd_count(&outputs_proxy);

    int stalled[2 * STALLED_READERS];
    for (int round = 0; round < 2; round++) {
        /* Twice: the second sixteen make the first ones give way, as a
         * real scrape does, then stand in the way themselves. */
        for (int i = 0; i < STALLED_READERS; i++)
            stalled[round * STALLED_READERS + i] = stalled_reader(stats_port);
        long long start = monotonic_ms();
        char *page = stats_fetch(stats_port, "/metrics");
        long long took = monotonic_ms() - start;
        cr_expect(page && strncmp(page, "HTTP/1.0 200 OK\r\n", 17) == 0, "%.200s", page ? page : "(refused)");
        cr_expect(page && strlen(page) >= page_length, "the scrape got %zu of about %zu bytes",
                  page ? strlen(page) : 0, page_length);
        cr_expect_lt(took, 2000, "round %d: a scrape behind %d readers that never read took %lld ms", round,
                     STALLED_READERS, took);
        free(page);
    }
    for (int i = 0; i < 2 * STALLED_READERS; i++)
        close(stalled[i]);
    /* Nothing is kept for them: the endpoint's descriptors come back. */
    int fds = proxy_fd_count(&outputs_proxy);
    for (long long deadline = monotonic_ms() + 12000; fds > baseline_fds && monotonic_ms() < deadline;) {
        sleep_ms(100);
        fds = proxy_fd_count(&outputs_proxy);
    }
    cr_expect_leq(fds, baseline_fds, "%d fds, %d before", fds, baseline_fds);
    cr_expect_eq(proxy_stop(&outputs_proxy, 10000), 0);
}

/* A client that sent more after its request (a pipelined second one)
 * had the socket closed with those bytes unread: the kernel then sends
 * a reset and drops what of the answer it still held, so a 90 KiB page
 * arrived cut at 32 KiB (measured). Now the endpoint reads and drops
 * them until the client closes. */
Test(outputs, a_pipelined_request_does_not_cut_the_answer_short, .init = integration_init, .fini = outputs_fini)
{
    uint16_t stats_port = TEST_PORT(368, 1);
    size_t page_length = start_with_a_big_page(TEST_PORT(368, 0));
    /* A small window: the answer stays on its way while the client waits. */
    int fd = ask_through_a_window(stats_port, 4096, 0);
    sleep_ms(50);
    cr_assert(net_send_all(fd, METRICS_REQUEST, sizeof METRICS_REQUEST - 1));
    sleep_ms(300);
    char *answer = calloc(1, 2 * page_length);
    cr_assert_not_null(answer);
    struct net_receive_result got = net_receive_until_closed(fd, answer, 2 * page_length - 1, 5000);
    cr_expect(got.eof && !got.reset, "eof %d, reset %d, timed out %d", got.eof, got.reset, got.timed_out);
    cr_expect_geq(got.total, page_length, "%zu bytes of about %zu", got.total, page_length);
    cr_expect_lt(got.total, 2 * page_length, "one answer only: %zu bytes", got.total);
    free(answer);
    close(fd);
    cr_expect_eq(proxy_stop(&outputs_proxy, 10000), 0);
}

/* ---- privileges ---- */

#define NET_BIND_SERVICE_ONLY "0000000000000400"
#define NO_CAPABILITIES "0000000000000000"

/* The value of `field` ("CapEff:") in one task's status, whitespace
 * squeezed to single spaces; malloc'd, NULL when unreadable. */
static char *task_status_field(pid_t pid, const char *task, const char *field)
{
    char path[300], line[512];
    snprintf(path, sizeof path, "/proc/%d/task/%s/status", (int)pid, task);
    FILE *file = fopen(path, "re");
    if (!file)
        return NULL;
    char *value = NULL;
    size_t field_length = strlen(field);
    while (!value && fgets(line, sizeof line, file)) {
        if (strncmp(line, field, field_length) != 0)
            continue;
        value = calloc(1, sizeof line);
        size_t used = 0;
        for (const char *at = line + field_length; *at; at++) {
            bool space = *at == ' ' || *at == '\t' || *at == '\n';
            if (space && used > 0 && value[used - 1] != ' ')
                value[used++] = ' ';
            else if (!space)
                value[used++] = *at;
        }
        while (used > 0 && value[used - 1] == ' ')
            value[--used] = '\0';
    }
    fclose(file);
    return value;
}

/* For every task (thread) of pid: "task field=value" lines where field
 * is not `expected`; malloc'd, "" when all match. *tasks counts them. */
static char *tasks_differing(pid_t pid, const char *field, const char *expected, int *tasks)
{
    char *differing = text_format("%s", "");
    char directory_path[64];
    snprintf(directory_path, sizeof directory_path, "/proc/%d/task", (int)pid);
    DIR *directory = opendir(directory_path);
    cr_assert_not_null(directory);
    *tasks = 0;
    for (struct dirent *entry; (entry = readdir(directory)) != NULL;) {
        if (entry->d_name[0] == '.')
            continue;
        (*tasks)++;
        char *value = task_status_field(pid, entry->d_name, field);
        if (!value || strcmp(value, expected) != 0) {
            text_append(&differing, "%s %s%s\n", entry->d_name, field, value ? value : "(none)");
        }
        free(value);
    }
    closedir(directory);
    return differing;
}

static void expect_every_task(pid_t pid, const char *field, const char *expected)
{
    /* Threads start one after another: up to 2 s for all of them. */
    int tasks = 0;
    char *differing = NULL;
    for (int attempt = 0; attempt < 100; attempt++, sleep_ms(20)) {
        free(differing);
        differing = tasks_differing(pid, field, expected, &tasks);
        if (tasks >= 3 && differing[0] == '\0')
            break;
    }
    cr_expect_geq(tasks, 3, "main thread and two workers");
    cr_expect_str_empty(differing, "%s is not %s in:\n%s", field, expected, differing);
    free(differing);
}

/* The groups NAME's process has after initgroups: its own and those it
 * is a member of, as "a b c" in the order /proc lists them (sorted). */
static char *expected_groups(const struct passwd *user)
{
    gid_t groups[256];
    int count = 256;
    cr_assert_geq(getgrouplist(user->pw_name, user->pw_gid, groups, &count), 0);
    for (int i = 1; i < count; i++)
        for (int j = i; j > 0 && groups[j - 1] > groups[j]; j--) {
            gid_t swap = groups[j];
            groups[j] = groups[j - 1];
            groups[j - 1] = swap;
        }
    char *text = text_format("%s", "");
    for (int i = 0; i < count; i++) {
        if (i > 0 && groups[i] == groups[i - 1])
            continue;
        text_append(&text, "%s%u", text[0] ? " " : "", (unsigned)groups[i]);
    }
    return text;
}

static void expect_serves(uint16_t proxy_port)
{
    struct hello_bytes hello = hello_build("outputs.example.com");
    char *reply = exchange_once(proxy_port, hello.data, hello.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "alpha\n") == 0, "not served: %s", reply ? reply : "(refused)");
    free(reply);
    hello_free(&hello);
}

/* After `user = nobody` the threads held CAP_NET_BIND_SERVICE alone, as
 * README says, but without no_new_privs: a compromised worker could run
 * a setuid program (or one with file capabilities) and gain what nobody
 * may not have. */
Test(outputs, after_user_every_thread_holds_what_readme_says, .init = integration_init, .fini = outputs_fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to switch users");
    struct passwd *nobody = getpwnam("nobody");
    cr_assert_not_null(nobody);
    uint16_t proxy_port = TEST_PORT(366, 0), backend_port = TEST_PORT(366, 1);
    cr_assert(backend_start(&outputs_backend, "alpha", backend_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", backend_port);
    char *config = config_text(proxy_port, "user = nobody\n", body);
    cr_assert(proxy_start(&outputs_proxy, config, proxy_port), "snisplice did not start");
    expect_serves(proxy_port);

    pid_t pid = outputs_proxy.pid;
    char *uids = text_format("%u %u %u %u", nobody->pw_uid, nobody->pw_uid, nobody->pw_uid, nobody->pw_uid);
    char *gids = text_format("%u %u %u %u", nobody->pw_gid, nobody->pw_gid, nobody->pw_gid, nobody->pw_gid);
    char *groups = expected_groups(nobody);
    expect_every_task(pid, "Uid:", uids);
    expect_every_task(pid, "Gid:", gids);
    expect_every_task(pid, "Groups:", groups);
    expect_every_task(pid, "CapPrm:", NET_BIND_SERVICE_ONLY);
    expect_every_task(pid, "CapEff:", NET_BIND_SERVICE_ONLY);
    expect_every_task(pid, "CapInh:", NO_CAPABILITIES);
    expect_every_task(pid, "CapAmb:", NO_CAPABILITIES);
    expect_every_task(pid, "NoNewPrivs:", "1");
    /* Switched from root, it is not dumpable (no core of memory that
     * held root's, no ptrace by nobody): its /proc files stay root's. */
    char environ_path[64];
    struct stat environ_status;
    snprintf(environ_path, sizeof environ_path, "/proc/%d/environ", (int)pid);
    cr_assert_eq(stat(environ_path, &environ_status), 0);
    cr_expect_eq(environ_status.st_uid, 0, "dumpable: /proc/PID/environ belongs to uid %u",
                 (unsigned)environ_status.st_uid);
    expect_serves(proxy_port);

    cr_expect_eq(proxy_stop(&outputs_proxy, 10000), 0);
    free(groups);
    free(gids);
    free(uids);
    free(config);
    free(body);
}

/* Started as the shipped unit starts it, unprivileged with an ambient
 * CAP_NET_BIND_SERVICE, it kept that ambient capability, which any
 * program it started would have inherited. */
Test(outputs, as_the_systemd_unit_starts_it_nothing_passes_to_a_program, .init = integration_init,
     .fini = outputs_fini)
{
    if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0)
        cr_skip_test("needs root and setpriv");
    uint16_t proxy_port = TEST_PORT(366, 2), backend_port = TEST_PORT(366, 3);
    cr_assert(backend_start(&outputs_backend, "alpha", backend_port, NULL, NULL));
    char *directory = temp_directory_create("outputs-unit");
    cr_assert_eq(chmod(directory, 0755), 0);
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", backend_port);
    char *config = config_text(proxy_port, NULL, body);
    char *path = temp_file_write(directory, "snisplice.ini", config);
    cr_assert_eq(chmod(path, 0644), 0);
    char *stderr_path = text_format("%s/stderr", directory);
    const char *argv[] = { "/usr/bin/setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                           "--inh-caps", "+net_bind_service", "--ambient-caps", "+net_bind_service",
                           proxy_binary(), "-c", path, NULL };
    struct child_spawn_options options = { .stderr_path = stderr_path };
    pid_t pid = child_spawn(argv, &options);
    cr_assert_gt(pid, 0);
    cr_assert(net_wait_accepting(proxy_port, 10000), "snisplice did not start");
    expect_serves(proxy_port);

    expect_every_task(pid, "CapEff:", NET_BIND_SERVICE_ONLY);
    expect_every_task(pid, "CapAmb:", NO_CAPABILITIES);
    expect_every_task(pid, "NoNewPrivs:", "1");
    expect_serves(proxy_port);

    kill(pid, SIGTERM);
    cr_expect_eq(child_wait(pid, 10000), 0);
    free(stderr_path);
    free(path);
    free(config);
    free(body);
    free(directory);
}

/* ---- the access log's client-chosen fields ---- */

/* hello_build's hello with its first ALPN protocol ("h2") replaced by
 * the two bytes `first`. */
static struct hello_bytes hello_with_alpn(const char first[2])
{
    struct hello_bytes hello = hello_build("alpn.example.com");
    uint8_t *at = memmem(hello.data, hello.length, "\x02h2\x08http/1.1", 12);
    cr_assert_not_null(at);
    memcpy(at + 1, first, 2);
    return hello;
}

/* An ALPN name is any bytes the client chooses. A quote or backslash
 * went into the line as sent (nginx writes both as \xHH), so alpn="
 * began a quoted value for a logfmt parser, which then swallowed the
 * fields after it or refused the line; control bytes (a newline, an
 * ANSI escape) and bytes past ASCII already showed as '?'. */
Test(outputs, an_alpn_name_cannot_break_its_line, .init = integration_init, .fini = outputs_fini)
{
    uint16_t proxy_port = TEST_PORT(367, 0), backend_port = TEST_PORT(367, 1);
    cr_assert(backend_start(&outputs_backend, "alpha", backend_port, NULL, NULL));
    char *directory = temp_directory_create("outputs-alpn");
    char *log_path = text_format("%s/access.log", directory);
    char *globals = text_format("access_log = %s\n", log_path);
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", backend_port);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&outputs_proxy, config, proxy_port), "snisplice did not start");

    static const char *const hostile[] = { "\"x", "x\\", "\n\x1b", "\r\x00", "\xff\x80", "\t=" };
    size_t count = sizeof hostile / sizeof hostile[0];
    for (size_t i = 0; i < count; i++) {
        struct hello_bytes hello = hello_with_alpn(hostile[i]);
        free(exchange_once(proxy_port, hello.data, hello.length, 5000, NULL));
        hello_free(&hello);
    }
    cr_expect_eq(proxy_stop(&outputs_proxy, 10000), 0); /* the last lines written */

    char *log = file_read_all(log_path, NULL);
    cr_assert_not_null(log);
    static const char *const shown[] = { " alpn=?x ", " alpn=x? ", " alpn=?? ", " alpn=?? ", " alpn=?? ", " alpn=?= " };
    for (size_t i = 0; i < count; i++)
        cr_expect(strstr(log, shown[i]), "no line with%s:\n%s", shown[i], log);
    /* Each line whole: as many line ends as lines that begin with a
     * stamp and end with an outcome (proxy_start's probe has one too). */
    cr_expect_eq(text_count(log, " sni=alpn.example.com "), (int)count, "%s", log);
    cr_expect_eq(text_count(log, " outcome=done\n"), (int)count, "%s", log);
    cr_expect_eq(text_count(log, "\n"), text_count(log, "Z 127.0.0.1:"), "%s", log);
    cr_expect_eq(text_count(log, "\n"), text_count(log, " outcome="), "%s", log);
    for (const char *at = log; *at; at++)
        cr_expect((*at >= ' ' && *at <= '~' && *at != '"' && *at != '\\') || *at == '\n',
                  "byte 0x%02x in the log:\n%s", (unsigned char)*at, log);
    free(log);
    free(config);
    free(body);
    free(globals);
    free(log_path);
    free(directory);
}
