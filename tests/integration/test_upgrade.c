/*
 * test_upgrade.c - SIGUSR2 replaces the running binary: clients keep
 * connecting through it without a refusal or a reset, a transfer in flight
 * finishes byte-exact through the old process, which then exits 0, and the
 * new process serves connections and /metrics. A new config with an error,
 * a new binary that exits at once and a changed worker count leave the old
 * one serving, saying why, with no descriptor more than before; systemd is
 * told the new main pid. During the wait a second SIGUSR2 is ignored, a
 * SIGHUP waits for its end, and a SIGTERM kills the new process (never
 * left half-started) before the old one drains. After `user =` the new
 * process runs as that user and may still bind a new port below 1024.
 * Sockets handed over that name one worker twice are refused. Ports:
 * blocks 352-359 and 373, and one free port in 991..999.
 *
 * The new process is the old one's child, not this test's: the test makes
 * itself a child subreaper so that it inherits it when the old one exits,
 * and kills and reaps it in .fini.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/integration.h"
#include "../support/notify.h"
#include "../support/transfer.h"

#define MIB (1024u * 1024u)

static struct proxy upgrade_proxy;
static struct backend alpha_backend;
static struct backend bravo_backend;
static struct backend transfer_backend;
static struct transfer upgrade_transfer;
static struct hello_bytes matrix_hello;
static struct hello_bytes other_hello;
static pid_t new_pid;
static char notify_path[108];

static void upgrade_init(void)
{
    integration_init();
    /* The new process outlives its parent, the proxy under test. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
}

static void upgrade_fini(void)
{
    if (new_pid > 0) {
        kill(new_pid, SIGKILL);
        waitpid(new_pid, NULL, 0);
    }
    proxy_release(&upgrade_proxy);
    integration_cleanup();
    hello_free(&matrix_hello);
    hello_free(&other_hello);
    if (notify_path[0])
        unlink(notify_path);
}

/* matrix.exceptionerror.io -> the transfer backend, anything else -> alpha. */
static char *upgrade_config(uint16_t proxy_port, uint16_t alpha_port, uint16_t transfer_port, const char *globals)
{
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = 127.0.0.1:%u\ndefault = 127.0.0.1:%u\n",
                             transfer_port, alpha_port);
    char *config = config_text(proxy_port, globals, body);
    free(body);
    return config;
}

static bool alpha_answers(uint16_t proxy_port)
{
    char *reply = exchange_once(proxy_port, other_hello.data, other_hello.length, 5000, NULL);
    bool answered = reply && strcmp(reply, "alpha\n") == 0;
    free(reply);
    return answered;
}

static void start_proxy_and_alpha(const char *config, uint16_t proxy_port, uint16_t alpha_port)
{
    other_hello = hello_build("www.example.org");
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    cr_assert(proxy_start(&upgrade_proxy, config, proxy_port), "snisplice did not start");
    cr_assert(alpha_answers(proxy_port));
}

/* The pid the old process started, from its log line; 0 if none within timeout_ms. */
static pid_t started_pid(int timeout_ms)
{
    const char *needle = "upgrade: started ";
    if (!proxy_stderr_wait_for(&upgrade_proxy, needle, timeout_ms))
        return 0;
    char *log = proxy_stderr(&upgrade_proxy);
    const char *pid_text = strstr(strstr(log, needle), " as pid ");
    pid_t pid = pid_text ? (pid_t)atoi(pid_text + strlen(" as pid ")) : 0;
    free(log);
    return pid;
}

struct traffic {
    uint16_t proxy_port;
    atomic_bool stop;
    atomic_uint served;
    atomic_uint failed;
};

static struct traffic traffic;

static void *traffic_main(void *argument)
{
    (void)argument;
    while (!atomic_load(&traffic.stop))
        atomic_fetch_add(alpha_answers(traffic.proxy_port) ? &traffic.served : &traffic.failed, 1);
    return NULL;
}

/* Every line of the access log is one whole line (a timestamp first, an
 * outcome last): none torn or glued by the two writers; at least `lines`. */
static void expect_whole_lines(const char *path, unsigned lines)
{
    char *text = file_read_all(path, NULL);
    cr_assert_not_null(text, "no access log at %s", path);
    unsigned count = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), count++) {
        /* The outcome is the last field: nothing may follow it. */
        bool whole = strncmp(line, "20", 2) == 0 && text_count(line, " outcome=") == 1 &&
                     strchr(strstr(line, " outcome=") + 1, ' ') == NULL;
        cr_expect(whole, "access log line %u is not whole: \"%s\"", count + 1, line);
        if (!whole)
            break;
    }
    cr_expect_geq(count, lines, "access log lines");
    free(text);
}

Test(upgrade, sigusr2_refuses_nothing_and_the_old_process_finishes_its_transfer, .init = upgrade_init,
     .fini = upgrade_fini)
{
    uint16_t proxy_port = TEST_PORT(352, 0), alpha_port = TEST_PORT(352, 1);
    uint16_t transfer_port = TEST_PORT(352, 2), stats_port = TEST_PORT(352, 3);
    matrix_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(matrix_hello.data);
    struct transfer_plan plan = { .hello = &matrix_hello, .client_bytes = 2 * MIB, .backend_bytes = 8 * MIB,
                                  .backend_chunk = 128 * 1024, .backend_pause_ms = 20 };
    transfer_init(&upgrade_transfer, &plan, proxy_port);
    cr_assert(backend_start(&transfer_backend, "transfer", transfer_port, transfer_backend_handler,
                            &upgrade_transfer));
    /* Both processes append to one access log meanwhile. */
    char *log_directory = temp_directory_create("upgrade-log");
    char *access_log = text_format("%s/access.log", log_directory);
    char *globals = text_format("stats = 127.0.0.1:%u\ndrain_timeout = 20s\naccess_log = %s\n", stats_port,
                                access_log);
    char *config = upgrade_config(proxy_port, alpha_port, transfer_port, globals);
    start_proxy_and_alpha(config, proxy_port, alpha_port);
    pid_t old_pid = upgrade_proxy.pid;

    transfer_client_start(&upgrade_transfer);
    long long deadline = monotonic_ms() + 10000;
    while (atomic_load(&upgrade_transfer.client.received) < MIB && monotonic_ms() < deadline)
        sleep_ms(2);
    cr_assert_geq(atomic_load(&upgrade_transfer.client.received), MIB, "transfer never started");

    traffic.proxy_port = proxy_port;
    pthread_t clients[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&clients[i], NULL, traffic_main, NULL), 0);
    sleep_ms(300);
    proxy_signal(&upgrade_proxy, SIGUSR2);
    new_pid = started_pid(5000);
    bool ready = proxy_stderr_wait_for(&upgrade_proxy, "is ready; this one stops accepting", 20000);
    sleep_ms(500);
    atomic_store(&traffic.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(clients[i], NULL);

    char *log = proxy_stderr(&upgrade_proxy);
    cr_assert_gt(new_pid, 0, "no new process started; stderr:\n%s", log);
    cr_assert_neq(new_pid, old_pid);
    cr_assert(ready, "the new process never became ready; stderr:\n%s", log);
    cr_expect_eq(atomic_load(&traffic.failed), 0, "%u of %u connections failed across the upgrade; stderr:\n%s",
                 atomic_load(&traffic.failed), atomic_load(&traffic.failed) + atomic_load(&traffic.served), log);
    cr_expect_gt(atomic_load(&traffic.served), 10);
    free(log);

    transfer_client_join(&upgrade_transfer);
    cr_expect(transfer_backend_wait(&upgrade_transfer, 10000), "backend side never finished");
    char description[768];
    transfer_describe(&upgrade_transfer, description, sizeof description);
    cr_expect(transfer_succeeded(&upgrade_transfer), "transfer cut by the upgrade: %s", description);
    int status = proxy_wait_exit(&upgrade_proxy, 15000);
    cr_expect_eq(status, 0, "old process exit status %d after its drain", status);

    /* Only the new process is left: it serves connections and /metrics. */
    cr_expect_eq(kill(new_pid, 0), 0, "the new process is gone");
    for (int i = 0; i < 5; i++)
        cr_expect(alpha_answers(proxy_port), "connection %d after the old process exited failed", i);
    char *metrics = stats_fetch(stats_port, "/metrics");
    cr_expect(metrics && strstr(metrics, "snisplice_workers 2"), "no /metrics from the new process: %s",
              metrics ? metrics : "(nothing)");
    free(metrics);
    kill(new_pid, SIGTERM);
    int new_status = -1;
    cr_expect_eq(waitpid(new_pid, &new_status, 0), new_pid);
    cr_expect(WIFEXITED(new_status) && WEXITSTATUS(new_status) == 0, "new process status %#x", new_status);
    new_pid = 0;
    expect_whole_lines(access_log, atomic_load(&traffic.served) + 1);
    free(access_log);
    free(log_directory);
    free(globals);
    free(config);
}

/* SIGUSR2 that must fail: the old process keeps serving, holding exactly
 * the descriptors it held before, and says `why` in its log. */
static void expect_failed_upgrade_keeps_serving(uint16_t proxy_port, uint16_t stats_port, const char *why)
{
    long long pipes_in_use;
    int fds_before = stats_fds_outside_pool(&upgrade_proxy, stats_port, &pipes_in_use);
    cr_assert_geq(fds_before, 0, "no /metrics");
    proxy_signal(&upgrade_proxy, SIGUSR2);
    bool failed = proxy_stderr_wait_for(&upgrade_proxy, "upgrade failed:", 20000);
    char *log = proxy_stderr(&upgrade_proxy);
    cr_expect(failed, "no failure said; stderr:\n%s", log);
    cr_expect(strstr(log, why) != NULL, "the log does not say \"%s\"; stderr:\n%s", why, log);
    free(log);
    cr_expect_eq(kill(upgrade_proxy.pid, 0), 0, "the old process is gone");
    for (int i = 0; i < 5; i++)
        cr_expect(alpha_answers(proxy_port), "connection %d after the failed upgrade failed", i);
    /* The last connection's sockets are closed through io_uring, just
     * after its client saw the end: give that a moment. */
    int fds_after = stats_fds_outside_pool(&upgrade_proxy, stats_port, &pipes_in_use);
    for (long long deadline = monotonic_ms() + 2000; fds_after != fds_before && monotonic_ms() < deadline;) {
        sleep_ms(20);
        fds_after = stats_fds_outside_pool(&upgrade_proxy, stats_port, &pipes_in_use);
    }
    cr_expect_eq(fds_after, fds_before, "descriptors: %d before the failed upgrade, %d after", fds_before, fds_after);
    cr_expect_eq(proxy_stop(&upgrade_proxy, 10000), 0);
}

Test(upgrade, a_new_config_with_an_error_leaves_the_old_process_serving, .init = upgrade_init,
     .fini = upgrade_fini)
{
    uint16_t proxy_port = TEST_PORT(353, 0), alpha_port = TEST_PORT(353, 1), stats_port = TEST_PORT(353, 3);
    char *globals = text_format("stats = 127.0.0.1:%u\n", stats_port);
    char *config = upgrade_config(proxy_port, alpha_port, TEST_PORT(353, 2), globals);
    start_proxy_and_alpha(config, proxy_port, alpha_port);
    char *broken = text_format("%s\n[routes]\nbad line without equals\n", config);
    free(temp_file_write(NULL, upgrade_proxy.config_path, broken));
    expect_failed_upgrade_keeps_serving(proxy_port, stats_port, "exited with status 1");
    free(globals);
    free(broken);
    free(config);
}

/* Start the proxy from a copy of the binary, then replace that file with
 * a shell script, as a package upgrade replaces it (a new file renamed
 * over the path): the next SIGUSR2 runs the script. */
static void start_then_replace_binary(const char *config, uint16_t proxy_port, uint16_t alpha_port,
                                      const char *script_text)
{
    char *directory = temp_directory_create("upgrade-binary");
    char *binary = text_format("%s/snisplice", directory);
    char *copy = text_format("cp '%s' '%s'", proxy_binary(), binary);
    cr_assert_eq(system(copy), 0);
    setenv("SNISPLICE_BIN", binary, 1);
    start_proxy_and_alpha(config, proxy_port, alpha_port);
    unsetenv("SNISPLICE_BIN");
    char *script = temp_file_write(directory, "new", script_text);
    cr_assert_eq(chmod(script, 0755), 0);
    cr_assert_eq(rename(script, binary), 0);
    free(script);
    free(copy);
    free(binary);
    free(directory);
}

Test(upgrade, a_new_binary_that_exits_at_once_leaves_the_old_process_serving, .init = upgrade_init,
     .fini = upgrade_fini)
{
    uint16_t proxy_port = TEST_PORT(354, 0), alpha_port = TEST_PORT(354, 1), stats_port = TEST_PORT(354, 3);
    char *globals = text_format("stats = 127.0.0.1:%u\n", stats_port);
    char *config = upgrade_config(proxy_port, alpha_port, TEST_PORT(354, 2), globals);
    start_then_replace_binary(config, proxy_port, alpha_port, "#!/bin/sh\nexit 3\n");
    expect_failed_upgrade_keeps_serving(proxy_port, stats_port, "exited with status 3");
    free(globals);
    free(config);
}

Test(upgrade, during_the_wait_usr2_is_ignored_and_hup_waits_for_its_end, .init = upgrade_init,
     .fini = upgrade_fini)
{
    uint16_t proxy_port = TEST_PORT(357, 0), alpha_port = TEST_PORT(357, 1), bravo_port = TEST_PORT(357, 2);
    char *config = upgrade_config(proxy_port, alpha_port, TEST_PORT(357, 3), "");
    start_then_replace_binary(config, proxy_port, alpha_port, "#!/bin/sh\nsleep 5\nexit 4\n");
    cr_assert(backend_start(&bravo_backend, "bravo", bravo_port, NULL, NULL));
    proxy_signal(&upgrade_proxy, SIGUSR2);
    cr_assert_gt(started_pid(5000), 0);
    proxy_signal(&upgrade_proxy, SIGUSR2);
    cr_expect(proxy_stderr_wait_for(&upgrade_proxy, "an upgrade is already in progress", 5000));
    char *to_bravo = upgrade_config(proxy_port, bravo_port, TEST_PORT(357, 3), "");
    free(temp_file_write(NULL, upgrade_proxy.config_path, to_bravo));
    proxy_signal(&upgrade_proxy, SIGHUP);
    cr_expect(proxy_stderr_wait_for(&upgrade_proxy, "SIGHUP during an upgrade: the reload waits", 5000));
    cr_expect(alpha_answers(proxy_port), "the reload applied during the wait");
    bool reloaded = proxy_stderr_wait_for(&upgrade_proxy, "reloaded ", 10000);
    char *log = proxy_stderr(&upgrade_proxy);
    cr_expect(reloaded, "the reload was not applied after the upgrade failed; stderr:\n%s", log);
    cr_expect_eq(text_count(log, "upgrade: started "), 1, "stderr:\n%s", log);
    cr_expect(strstr(log, "exited with status 4") != NULL, "stderr:\n%s", log);
    cr_expect_lt(strstr(log, "exited with status 4"), strstr(log, "reloaded "), "reloaded before the wait ended");
    free(log);
    char *reply = exchange_once(proxy_port, other_hello.data, other_hello.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "bravo\n") == 0, "after the reload: %s", reply ? reply : "(nothing)");
    free(reply);
    cr_expect_eq(proxy_stop(&upgrade_proxy, 10000), 0);
    free(to_bravo);
    free(config);
}

Test(upgrade, sigterm_during_the_wait_kills_the_new_process_and_drains, .init = upgrade_init,
     .fini = upgrade_fini)
{
    uint16_t proxy_port = TEST_PORT(358, 0), alpha_port = TEST_PORT(358, 1);
    char *config = upgrade_config(proxy_port, alpha_port, TEST_PORT(358, 2), "");
    start_then_replace_binary(config, proxy_port, alpha_port, "#!/bin/sh\nexec sleep 60\n");
    proxy_signal(&upgrade_proxy, SIGUSR2);
    pid_t child = started_pid(5000);
    cr_assert_gt(child, 0);
    cr_expect(alpha_answers(proxy_port), "the old process stopped serving during the wait");
    cr_expect_eq(proxy_stop(&upgrade_proxy, 10000), 0);
    errno = 0;
    cr_expect(kill(child, 0) != 0 && errno == ESRCH, "the new process (pid %d) was left running", (int)child);
    if (kill(child, 0) == 0)
        new_pid = child; /* .fini kills it */
    char *log = proxy_stderr(&upgrade_proxy);
    cr_expect(strstr(log, "upgrade abandoned") != NULL, "stderr:\n%s", log);
    free(log);
    free(config);
}

Test(upgrade, a_changed_worker_count_is_refused_clearly, .init = upgrade_init, .fini = upgrade_fini)
{
    uint16_t proxy_port = TEST_PORT(355, 0), alpha_port = TEST_PORT(355, 1), stats_port = TEST_PORT(355, 3);
    char *globals = text_format("stats = 127.0.0.1:%u\n", stats_port);
    char *config = upgrade_config(proxy_port, alpha_port, TEST_PORT(355, 2), globals);
    start_proxy_and_alpha(config, proxy_port, alpha_port);
    char *one_globals = text_format("stats = 127.0.0.1:%u\nworkers = 1\n", stats_port);
    char *one_worker = upgrade_config(proxy_port, alpha_port, TEST_PORT(355, 2), one_globals);
    free(temp_file_write(NULL, upgrade_proxy.config_path, one_worker));
    expect_failed_upgrade_keeps_serving(proxy_port, stats_port,
                                        "and this config has 1 workers: an upgrade keeps `workers`");
    free(one_globals);
    free(globals);
    free(one_worker);
    free(config);
}

Test(upgrade, systemd_is_told_the_new_main_pid, .init = upgrade_init, .fini = upgrade_fini)
{
    uint16_t proxy_port = TEST_PORT(356, 0), alpha_port = TEST_PORT(356, 1);
    int fd = notify_socket_bind("upgrade-notify", notify_path, sizeof notify_path);
    cr_assert_geq(fd, 0);
    setenv("NOTIFY_SOCKET", notify_path, 1);
    char *config = upgrade_config(proxy_port, alpha_port, TEST_PORT(356, 2), "");
    start_proxy_and_alpha(config, proxy_port, alpha_port);
    unsetenv("NOTIFY_SOCKET");
    char message[256];
    notify_next(fd, message, sizeof message, 3000);
    cr_expect(strstr(message, "READY=1") != NULL, "first notification: \"%s\"", message);

    proxy_signal(&upgrade_proxy, SIGUSR2);
    new_pid = started_pid(5000);
    cr_assert_gt(new_pid, 0);
    notify_next(fd, message, sizeof message, 20000);
    char *wanted = text_format("MAINPID=%d\n", (int)new_pid);
    cr_expect(strncmp(message, wanted, strlen(wanted)) == 0, "after SIGUSR2: \"%s\", wanted \"%s\"", message, wanted);
    cr_expect_eq(proxy_wait_exit(&upgrade_proxy, 10000), 0);
    cr_expect(alpha_answers(proxy_port), "the new process does not serve");
    free(wanted);
    free(config);
    close(fd);
}

/* Started as root with `user = nobody`: the old process runs as nobody
 * with CAP_NET_BIND_SERVICE alone, which an exec as nobody would drop.
 * It is passed on as an ambient capability, so the new process, already
 * nobody (no switch needed, not an error), binds a new port below 1024. */
Test(upgrade, after_user_the_new_process_binds_a_port_below_1024, .init = upgrade_init, .fini = upgrade_fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to switch users");
    uint16_t low_port = net_free_low_port();
    if (low_port == 0)
        cr_skip_test("every port in 991..999 is in use");
    struct passwd *nobody = getpwnam("nobody");
    cr_assert_not_null(nobody);
    uid_t nobody_uid = nobody->pw_uid;
    uint16_t proxy_port = TEST_PORT(359, 0), alpha_port = TEST_PORT(359, 1);
    char *config = upgrade_config(proxy_port, alpha_port, TEST_PORT(359, 2), "user = nobody\n");
    start_proxy_and_alpha(config, proxy_port, alpha_port);
    /* nobody reads the config file at the upgrade. */
    cr_assert_eq(chmod(upgrade_proxy.directory, 0755), 0);
    cr_assert_eq(chmod(upgrade_proxy.config_path, 0644), 0);
    char *globals = text_format("user = nobody\n[listen low]\naddress = 127.0.0.1:%u\nupstream = 127.0.0.1:%u\n",
                                low_port, alpha_port);
    char *with_low = upgrade_config(proxy_port, alpha_port, TEST_PORT(359, 2), globals);
    free(temp_file_write(NULL, upgrade_proxy.config_path, with_low));
    proxy_signal(&upgrade_proxy, SIGUSR2);
    new_pid = started_pid(5000);
    bool ready = proxy_stderr_wait_for(&upgrade_proxy, "is ready; this one stops accepting", 20000);
    char *log = proxy_stderr(&upgrade_proxy);
    cr_assert(ready, "the new process never became ready; stderr:\n%s", log);
    free(log);
    cr_expect_eq(proxy_wait_exit(&upgrade_proxy, 10000), 0);
    char *status_path = text_format("/proc/%d/status", (int)new_pid);
    char *status = file_read_all(status_path, NULL);
    char *uid_line = text_format("Uid:\t%u\t%u\t%u\t%u", nobody_uid, nobody_uid, nobody_uid, nobody_uid);
    cr_expect(status && strstr(status, uid_line), "the new process does not run as nobody:\n%s",
              status ? status : "(no status)");
    int fd = net_connect(low_port);
    cr_expect_geq(fd, 0, "nothing accepts on 127.0.0.1:%u", low_port);
    if (fd >= 0) {
        char line[16] = "";
        net_receive_exact(fd, line, 6, 5000);
        cr_expect_str_eq(line, "alpha\n");
        close(fd);
    }
    cr_expect(alpha_answers(proxy_port));
    free(uid_line);
    free(status);
    free(status_path);
    free(with_low);
    free(globals);
    free(config);
}

/* A listening socket on 127.0.0.1:port that a child inherits (no
 * close-on-exec), shareable by SO_REUSEPORT as the old process's are. */
static int inheritable_listener(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    int one = 1;
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(fd, (struct sockaddr *)&address, sizeof address), 0, "bind %u: %s", port, strerror(errno));
    cr_assert_eq(listen(fd, 16), 0);
    return fd;
}

Test(upgrade, handed_over_sockets_naming_one_worker_twice_are_refused, .init = upgrade_init, .fini = upgrade_fini)
{
    uint16_t proxy_port = TEST_PORT(373, 0), alpha_port = TEST_PORT(373, 1);
    /* As a hand-made environment could say: two sockets, both for worker
     * 0, and none for worker 1, which would be left with nothing to accept. */
    int first = inheritable_listener(proxy_port), second = inheritable_listener(proxy_port);
    char *listen = text_format("%d/0,%d/0", first, second);
    cr_assert_eq(setenv("SNISPLICE_UPGRADE_LISTEN", listen, 1), 0);
    char *directory = temp_directory_create("upgrade-env");
    char *config = upgrade_config(proxy_port, alpha_port, TEST_PORT(373, 2), "workers = 2\n");
    char *config_path = temp_file_write(directory, "snisplice.ini", config);
    const char *start[] = { proxy_binary(), "-c", config_path, NULL };
    char *output = NULL;
    int status = child_run(start, NULL, NULL, 10000, &output);
    unsetenv("SNISPLICE_UPGRADE_LISTEN");
    cr_expect_eq(status, 1, "exit %d:\n%s", status, output);
    cr_expect(output && strstr(output, "do not name each of the 2 workers once"), "%s", output);
    free(output);
    free(config_path);
    free(config);
    free(directory);
    free(listen);
    close(first);
    close(second);
}
