/*
 * test_outputs.c - what a hostile client can make snisplice hold or hand
 * on: every descriptor the proxy opens is close-on-exec, the access log's
 * included after SIGUSR1 and reloads turned it off and on (a future child
 * must inherit none of them). Ports: block 364.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
        char *more = text_format("%s%s -> %s\n", kept, entry->d_name, target);
        free(kept);
        kept = more;
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
