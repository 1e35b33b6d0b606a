/*
 * test_user.c - `user = nobody`: bind the port as root, then run every
 * thread as the unprivileged user, and keep serving. The access log root
 * opened at start is handed to the user, so SIGUSR1 and reloads can
 * reopen it; a reload whose access log the user cannot open is rejected.
 * A process that may not switch users (run as nobody, as the shipped
 * systemd unit runs it unprivileged) is refused by `-t` and at start-up,
 * before binding; after the switch a reload may still add a port below
 * 1024. As root, the access log must be a file with one name reached
 * without a symlink, or a device, or /dev/stdout; -t as root creates no
 * log the service's user could not open, nor, not as root, a file behind
 * a dangling symlink, and waits for no reader of a FIFO. Ports: blocks
 * 50, 168, 169, 171, 172, 177, 281, 305, 340, and one free port in
 * 991..999.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "../support/integration.h"

static struct proxy user_proxy;
static struct backend user_backend;

static void user_fini(void)
{
    proxy_release(&user_proxy);
    integration_cleanup();
}

/* Real, effective, saved and filesystem uids of one task, all equal to uid? */
static bool task_runs_as(pid_t pid, const char *task, uid_t uid)
{
    char path[300], line[256];
    snprintf(path, sizeof path, "/proc/%d/task/%s/status", (int)pid, task);
    FILE *file = fopen(path, "r");
    if (!file)
        return false;
    bool matches = false;
    while (fgets(line, sizeof line, file)) {
        unsigned real, effective, saved, filesystem;
        if (sscanf(line, "Uid: %u %u %u %u", &real, &effective, &saved, &filesystem) == 4)
            matches = real == uid && effective == uid && saved == uid && filesystem == uid;
    }
    fclose(file);
    return matches;
}

/* How many tasks the process has, and how many do not run as uid. */
static void count_tasks(pid_t pid, uid_t uid, int *tasks, int *privileged)
{
    char tasks_path[64];
    snprintf(tasks_path, sizeof tasks_path, "/proc/%d/task", (int)pid);
    *tasks = *privileged = 0;
    DIR *directory = opendir(tasks_path);
    if (!directory)
        return;
    for (struct dirent *entry; (entry = readdir(directory)) != NULL;) {
        if (entry->d_name[0] == '.')
            continue;
        (*tasks)++;
        *privileged += !task_runs_as(pid, entry->d_name, uid);
    }
    closedir(directory);
}

Test(user, drops_to_the_configured_user_after_binding, .init = integration_init, .fini = user_fini)
{
    if (geteuid() != 0) {
        cr_skip_test("needs root to switch users");
    }
    struct passwd *nobody = getpwnam("nobody");
    cr_assert_not_null(nobody);
    uint16_t proxy_port = TEST_PORT(50, 0), backend_port = TEST_PORT(50, 1);
    cr_assert(backend_start(&user_backend, "alpha", backend_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", backend_port);
    char *config = config_text(proxy_port, "user = nobody\n", body);
    cr_assert(proxy_start(&user_proxy, config, proxy_port), "snisplice did not start");

    /* The port is bound before privileges drop and workers start: only a
     * served connection says the workers are up. */
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    char *reply = exchange_once(proxy_port, hello.data, hello.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "alpha\n") == 0, "not serving as nobody");
    free(reply);
    hello_free(&hello);

    /* Threads start one after another: wait (up to 2 s) to see them all. */
    int checked = 0, privileged = 0;
    for (int attempt = 0; attempt < 200; attempt++) {
        if (attempt > 0)
            usleep(10 * 1000);
        count_tasks(user_proxy.pid, nobody->pw_uid, &checked, &privileged);
        if (checked >= 3 && privileged == 0)
            break;
    }
    cr_expect_eq(privileged, 0, "%d of %d tasks still privileged", privileged, checked);
    cr_expect_geq(checked, 3, "main thread and two workers");

    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&user_proxy, 10000), 0);
}

/* ---- the access log after the switch ---- */

static int count_of(const char *text, const char *needle)
{
    int count = 0;
    for (const char *at = text; at && (at = strstr(at, needle)) != NULL; at++)
        count++;
    return count;
}

/* Until the file holds needle; false after timeout_ms. */
static bool file_wait_for(const char *path, const char *needle, int timeout_ms)
{
    for (long long deadline = monotonic_ms() + timeout_ms;; sleep_ms(50)) {
        char *text = file_read_all(path, NULL);
        bool found = text && strstr(text, needle);
        free(text);
        if (found || monotonic_ms() > deadline)
            return found;
    }
}

/* A reload reads the config as the user. */
static void let_user_read_config(const struct proxy *proxy)
{
    cr_assert_eq(chmod(proxy->directory, 0755), 0);
    cr_assert_eq(chmod(proxy->config_path, 0644), 0);
}

static void serve_once(uint16_t port, const char *server_name, const char *expected)
{
    struct hello_bytes hello = hello_build(server_name);
    char *reply = exchange_once(port, hello.data, hello.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, expected) == 0, "%s: \"%s\"", server_name, reply ? reply : "(none)");
    free(reply);
    hello_free(&hello);
}

/* Root opens the log at start; later opens happen as the user. The old
 * code left the file root's (mode 0640), so SIGUSR1 and every reload said
 * "Permission denied" even with the file still in place, and lines went on
 * to whatever file was open. Now the file is the user's: it reopens, and
 * after logrotate moved it the user creates the new one (its directory is
 * the user's, as README asks). */
Test(user, the_access_log_stays_reopenable_as_the_user, .init = integration_init, .fini = user_fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to switch users");
    struct passwd *nobody = getpwnam("nobody");
    cr_assert_not_null(nobody);
    uint16_t proxy_port = TEST_PORT(168, 0), backend_port = TEST_PORT(168, 1), stats_port = TEST_PORT(168, 2);
    char *directory = temp_directory_create("user-access-log");
    cr_assert_eq(chown(directory, nobody->pw_uid, nobody->pw_gid), 0);
    cr_assert_eq(chmod(directory, 0755), 0);
    char *path = text_format("%s/access.log", directory);
    cr_assert(backend_start(&user_backend, "alpha", backend_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", backend_port);
    char *globals = text_format("user = nobody\nstats = 127.0.0.1:%u\naccess_log = %s\n", stats_port, path);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&user_proxy, config, proxy_port), "snisplice did not start");
    let_user_read_config(&user_proxy);

    serve_once(proxy_port, "first.example.com", "alpha\n");
    cr_expect(file_wait_for(path, "sni=first.example.com", 3000), "no line for the first connection");
    struct stat status;
    cr_assert_eq(stat(path, &status), 0);
    cr_expect_eq(status.st_uid, nobody->pw_uid, "the log belongs to uid %u, not to nobody",
                 (unsigned)status.st_uid);

    /* The file still in place: SIGUSR1 and a reload reopen it. */
    proxy_signal(&user_proxy, SIGUSR1);
    cr_expect(proxy_stderr_wait_for(&user_proxy, "reopened access log", 3000), "SIGUSR1 did not reopen the log");
    proxy_reload(&user_proxy, config);
    cr_expect(proxy_stderr_wait_for(&user_proxy, "reloaded", 3000), "the reload did not apply");
    cr_expect_eq(stats_value(stats_port, "snisplice_reloads_total{result=\"ok\"}"), 1);

    /* logrotate moved it: the user makes a new one at the path. */
    char *rotated = text_format("%s.1", path);
    cr_assert_eq(rename(path, rotated), 0);
    proxy_signal(&user_proxy, SIGUSR1);
    for (long long deadline = monotonic_ms() + 3000; monotonic_ms() < deadline; sleep_ms(50)) {
        char *log = proxy_stderr(&user_proxy);
        int reopened = count_of(log, "reopened access log");
        free(log);
        if (reopened >= 2)
            break;
    }
    serve_once(proxy_port, "second.example.com", "alpha\n");
    cr_expect(file_wait_for(path, "sni=second.example.com", 3000), "no line in the new file");
    char *old = file_read_all(rotated, NULL);
    cr_expect(old && !strstr(old, "sni=second.example.com"), "a line went on to the moved file");
    char *log = proxy_stderr(&user_proxy);
    cr_expect(!strstr(log, "Permission denied"), "%s", log);

    free(log);
    free(old);
    free(rotated);
    free(config);
    free(globals);
    free(body);
    free(path);
    free(directory);
    cr_expect_eq(proxy_stop(&user_proxy, 10000), 0);
}

/* README: a reload naming a new access log that cannot be opened is
 * rejected. The same path is only reopened: when the user cannot (here
 * logrotate moved the file and the directory is root's; under Docker,
 * root's stdout), the reload applies with a warning that says so, and
 * lines go on to the file already open: new routes must not wait for a
 * log. (Rejecting it, as this session's first fix did, left every reload
 * of such a setup refused.) */
Test(user, a_reload_that_cannot_reopen_its_access_log_applies_with_a_warning, .init = integration_init,
     .fini = user_fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to switch users");
    uint16_t proxy_port = TEST_PORT(169, 0), alpha_port = TEST_PORT(169, 1), beta_port = TEST_PORT(169, 2),
             stats_port = TEST_PORT(169, 3);
    char *directory = temp_directory_create("user-access-log-root");
    cr_assert_eq(chmod(directory, 0755), 0);
    char *path = text_format("%s/access.log", directory);
    cr_assert(backend_start(&user_backend, "alpha", alpha_port, NULL, NULL));
    static struct backend beta;
    cr_assert(backend_start(&beta, "beta", beta_port, NULL, NULL));
    char *globals = text_format("user = nobody\nstats = 127.0.0.1:%u\naccess_log = %s\n", stats_port, path);
    char *body_alpha = text_format("[routes]\ndefault = 127.0.0.1:%u\n", alpha_port);
    char *body_beta = text_format("[routes]\ndefault = 127.0.0.1:%u\n", beta_port);
    char *config_alpha = config_text(proxy_port, globals, body_alpha);
    char *config_beta = config_text(proxy_port, globals, body_beta);
    cr_assert(proxy_start(&user_proxy, config_alpha, proxy_port), "snisplice did not start");
    let_user_read_config(&user_proxy);
    serve_once(proxy_port, "first.example.com", "alpha\n");
    cr_expect(file_wait_for(path, "sni=first.example.com", 3000), "no line for the first connection");

    char *rotated = text_format("%s.1", path);
    cr_assert_eq(rename(path, rotated), 0);
    proxy_reload(&user_proxy, config_beta);
    cr_expect(proxy_stderr_wait_for(&user_proxy, "lines go on to the file already open", 3000),
              "no warning that the log could not be reopened");
    cr_expect(proxy_stderr_wait_for(&user_proxy, "reloaded", 3000), "the reload did not apply");
    sleep_ms(200);
    cr_expect_eq(stats_value(stats_port, "snisplice_reloads_total{result=\"failed\"}"), 0);
    cr_expect_eq(stats_value(stats_port, "snisplice_reloads_total{result=\"ok\"}"), 1);
    serve_once(proxy_port, "second.example.com", "beta\n");
    cr_expect(file_wait_for(rotated, "sni=second.example.com", 3000), "the line did not go to the open file");
    char *log = proxy_stderr(&user_proxy);

    free(log);
    free(rotated);
    free(config_alpha);
    free(config_beta);
    free(body_alpha);
    free(body_beta);
    free(globals);
    free(path);
    free(directory);
    cr_expect_eq(proxy_stop(&user_proxy, 10000), 0);
}

/* A config in `directory` that anyone may read, logging to log_path,
 * listening on listen_port and routing to route_port: what the tests of
 * `-t` run as other users check. Its path, allocated. */
static char *write_check_config(const char *directory, const char *log_path, uint16_t listen_port,
                                uint16_t route_port)
{
    char *globals = text_format("access_log = %s\n", log_path);
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", route_port);
    char *config = config_text(listen_port, globals, body);
    char *path = temp_file_write(directory, "snisplice.ini", config);
    cr_assert_eq(chmod(path, 0644), 0);
    free(config);
    free(body);
    free(globals);
    return path;
}

/* Run snisplice through setpriv (its options before the binary's); exit
 * code, output in *output. */
static int run_through_setpriv(const char *const *setpriv_options, const char *flag, const char *path, char **output)
{
    const char *argv[16];
    size_t count = 0;
    argv[count++] = "/usr/bin/setpriv";
    while (*setpriv_options)
        argv[count++] = *setpriv_options++;
    argv[count++] = proxy_binary();
    if (flag)
        argv[count++] = flag;
    argv[count++] = "-c";
    argv[count++] = path;
    argv[count] = NULL;
    *output = NULL;
    return child_run(argv, NULL, NULL, 15000, output);
}

/* `-t` used to call such a config valid, so the unit's ExecStartPre
 * passed, and the start then bound its port and failed with "cannot
 * switch to user 'www-data': Operation not permitted". Now both refuse
 * it, before binding, with what to do under the unit; a process that
 * runs as the user already, or that may switch, is fine. */
Test(user, refused_where_the_process_may_not_switch_users, .init = integration_init, .fini = user_fini)
{
    if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0 || !getpwnam("www-data"))
        cr_skip_test("needs root, setpriv and a www-data user");
    char *directory = temp_directory_create("user-switch");
    cr_assert_eq(chmod(directory, 0755), 0);
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", TEST_PORT(171, 1));
    char *config = config_text(TEST_PORT(171, 0), "user = www-data\n", body);
    char *path = temp_file_write(directory, "www-data.ini", config);
    cr_assert_eq(chmod(path, 0644), 0);
    const char *as_nobody[] = { "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", NULL };
    const char *want = "user 'www-data': this process (uid 65534) may not switch users";
    const char *hint = "under the shipped systemd unit, which starts it unprivileged with CAP_NET_BIND_SERVICE, "
                       "leave `user` unset";

    char *output;
    int status = run_through_setpriv(as_nobody, "-t", path, &output);
    cr_expect_eq(status, 1, "-t as nobody: exit %d, output:\n%s", status, output);
    cr_expect(output && strstr(output, want) && strstr(output, hint), "-t output:\n%s", output);
    free(output);

    status = run_through_setpriv(as_nobody, NULL, path, &output);
    cr_expect_eq(status, 1, "start as nobody: exit %d, output:\n%s", status, output);
    cr_expect(output && strstr(output, want) && strstr(output, hint), "start output:\n%s", output);
    cr_expect(output && !strstr(output, "cannot switch to user"), "refused only after binding:\n%s", output);
    free(output);

    /* Root without CAP_SETUID and CAP_SETGID (a container's bounding set). */
    const char *without_setuid[] = { "--bounding-set", "-setuid,-setgid", "--", NULL };
    status = run_through_setpriv(without_setuid, "-t", path, &output);
    cr_expect_eq(status, 1, "-t as root without CAP_SETUID: exit %d, output:\n%s", status, output);
    cr_expect(output && strstr(output, "user 'www-data': this process (uid 0) may not switch users"), "%s", output);
    free(output);

    /* Nothing to switch: nobody with `user = nobody`. */
    free(config);
    config = config_text(TEST_PORT(171, 0), "user = nobody\n", body);
    free(path);
    path = temp_file_write(directory, "nobody.ini", config);
    cr_assert_eq(chmod(path, 0644), 0);
    status = run_through_setpriv(as_nobody, "-t", path, &output);
    cr_expect_eq(status, 0, "-t as nobody with user = nobody: exit %d, output:\n%s", status, output);
    free(output);
    free(path);
    free(config);
    free(body);
    free(directory);
}

/* A port in 991..999 nothing listens on (ports nobody's services use
 * seldom: 993 and 995 are mail's), probed by binding it; 0 if none. */
/* nginx's master stays root, so a reload there may add `listen 995`;
 * snisplice's main thread runs as the user after start-up, and such a
 * reload failed with "Permission denied". It keeps CAP_NET_BIND_SERVICE
 * across the switch for that. Where the bind is still refused (started
 * as nobody, without the capability), the message says why. */
Test(user, reload_as_the_user_adds_a_port_below_1024, .init = integration_init, .fini = user_fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to switch users");
    uint16_t low_port = net_free_low_port();
    if (low_port == 0)
        cr_skip_test("every port in 991..999 is in use");
    uint16_t proxy_port = TEST_PORT(172, 0), backend_port = TEST_PORT(172, 1);
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", backend_port);
    if (access("/usr/bin/setpriv", X_OK) == 0) {
        char *directory = temp_directory_create("low-port");
        cr_assert_eq(chmod(directory, 0755), 0);
        char *low_config = config_text(low_port, NULL, body);
        char *path = temp_file_write(directory, "low.ini", low_config);
        cr_assert_eq(chmod(path, 0644), 0);
        const char *as_nobody[] = { "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", NULL };
        char *output;
        int status = run_through_setpriv(as_nobody, NULL, path, &output);
        cr_expect_eq(status, 1, "start as nobody on port %u: exit %d, output:\n%s", low_port, status, output);
        cr_expect(output && strstr(output, "Permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE"),
                  "no hint at the cause:\n%s", output);
        free(output);
        free(path);
        free(low_config);
        free(directory);
    }
    cr_assert(backend_start(&user_backend, "alpha", backend_port, NULL, NULL));
    char *config = config_text(proxy_port, "user = nobody\n", body);
    cr_assert(proxy_start(&user_proxy, config, proxy_port), "snisplice did not start");
    /* nobody reads the config file at the reload. */
    cr_assert_eq(chmod(user_proxy.directory, 0755), 0);
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    char *reply = exchange_once(proxy_port, hello.data, hello.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "alpha\n") == 0, "not serving as nobody");
    free(reply);

    char *low_body = text_format("address = 127.0.0.1:%u\n%s", low_port, body);
    char *reloaded = config_text(proxy_port, "user = nobody\n", low_body);
    proxy_reload(&user_proxy, reloaded);
    bool applied = proxy_stderr_wait_for(&user_proxy, "reloaded ", 5000);
    char *log = proxy_stderr(&user_proxy);
    cr_expect(applied, "the reload adding 127.0.0.1:%u was not applied; stderr:\n%s", low_port, log);
    free(log);
    reply = exchange_once(low_port, hello.data, hello.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "alpha\n") == 0, "127.0.0.1:%u did not serve after the reload: '%s'", low_port,
              reply ? reply : "(no connect)");
    free(reply);
    hello_free(&hello);
    free(reloaded);
    free(low_body);
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&user_proxy, 10000), 0);
}

/* Whoever may write the log's directory (the user, once given it for
 * logrotate) could put a symlink or a hard link to a file of root's there,
 * and root appended log lines to it at the next start: lines whose ALPN
 * and server name any client chooses (a cold review made a root-owned
 * file run a command that way). As root the log must be the file itself:
 * -t and start-up refuse a symlink and a file with other names, write
 * nothing to the target, and take /dev/stdout as the process's own
 * stdout. */
Test(user, the_access_log_is_no_symlink_or_hard_link_as_root, .init = integration_init, .fini = user_fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root");
    uint16_t proxy_port = TEST_PORT(177, 0), alpha_port = TEST_PORT(177, 1);
    char *directory = temp_directory_create("access-log-links");
    char *victim = temp_file_write(directory, "victim", "root's own\n");
    char *logs = text_format("%s/logs", directory);
    cr_assert_eq(mkdir(logs, 0755), 0);
    char *symlinked = text_format("%s/symlinked.log", logs);
    char *linked = text_format("%s/linked.log", logs);
    cr_assert_eq(symlink(victim, symlinked), 0);
    cr_assert_eq(link(victim, linked), 0);
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", alpha_port);
    struct { const char *path; const char *why; int status; } cases[] = {
        { symlinked, "is a symbolic link", 1 },
        { linked, "has other names (hard links)", 1 },
        { "/dev/stdout", NULL, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *globals = text_format("user = nobody\naccess_log = %s\n", cases[i].path);
        char *config = config_text(proxy_port, globals, body);
        char *config_path = temp_file_write(directory, "snisplice.ini", config);
        const char *check[] = { proxy_binary(), "-t", "-c", config_path, NULL };
        char *output = NULL;
        int status = child_run(check, NULL, NULL, 5000, &output);
        cr_expect_eq(status, cases[i].status, "-t with access_log = %s: exit %d:\n%s", cases[i].path, status, output);
        if (cases[i].why)
            cr_expect(output && strstr(output, cases[i].why), "%s: %s", cases[i].path, output);
        free(output);
        if (cases[i].why) {
            const char *start[] = { proxy_binary(), "-c", config_path, NULL };
            status = child_run(start, NULL, NULL, 5000, &output);
            cr_expect_eq(status, 1, "start with access_log = %s: exit %d:\n%s", cases[i].path, status, output);
            free(output);
        }
        free(config_path);
        free(config);
        free(globals);
    }
    char *after = file_read_all(victim, NULL);
    cr_expect(after && strcmp(after, "root's own\n") == 0, "the linked file was written: %s", after ? after : "");
    free(after);
    free(body);
    free(linked);
    free(symlinked);
    free(logs);
    free(victim);
    free(directory);
}

/* The shipped unit runs snisplice as a dynamic user that owns
 * /var/log/snisplice. `snisplice -t` run by hand as root (the README's
 * migration steps do) created a missing access log there, root's with
 * mode 0640, and the unit's own -t and start were then refused
 * ("Permission denied"). A check creates no file now, and still refuses
 * a directory the checking process could not create the log in. */
Test(user, a_check_as_root_leaves_the_access_log_to_the_service, .init = integration_init, .fini = user_fini)
{
    if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0)
        cr_skip_test("needs root and setpriv");
    char *directory = temp_directory_create("check-creates-no-log");
    cr_assert_eq(chmod(directory, 0755), 0);
    char *logs = text_format("%s/logs", directory);
    cr_assert_eq(mkdir(logs, 0755), 0);
    cr_assert_eq(chown(logs, 61000, 61000), 0, "a dynamic user's uid, as LogsDirectory= makes it");
    char *log_path = text_format("%s/access.log", logs);
    char *path = write_check_config(directory, log_path, TEST_PORT(281, 0), TEST_PORT(281, 1));

    const char *as_root[] = { "--", NULL };
    char *output;
    int status = run_through_setpriv(as_root, "-t", path, &output);
    cr_expect_eq(status, 0, "-t as root: exit %d, output:\n%s", status, output);
    free(output);
    cr_expect_neq(access(log_path, F_OK), 0, "-t as root created %s", log_path);

    const char *as_service[] = { "--reuid", "61000", "--regid", "61000", "--clear-groups", NULL };
    status = run_through_setpriv(as_service, "-t", path, &output);
    cr_expect_eq(status, 0, "-t as the directory's owner after root's -t: exit %d, output:\n%s", status, output);
    free(output);

    const char *as_other[] = { "--reuid", "61001", "--regid", "61001", "--clear-groups", NULL };
    status = run_through_setpriv(as_other, "-t", path, &output);
    cr_expect_eq(status, 1, "-t as a user who cannot create the log: exit %d, output:\n%s", status, output);
    char *why = text_format("access_log %s: Permission denied", log_path);
    cr_expect(output && strstr(output, why), "-t output:\n%s", output);
    free(output);

    free(why);
    free(path);
    free(log_path);
    free(logs);
    free(directory);
}

/* Not as root, `-t` opened the access log to check it, and an open
 * follows a symlink: a dangling one at the log's path (a log moved
 * elsewhere, the symlink made first) had its target created by the
 * check, against "an access_log not there yet is not created". Now the
 * target's directory is judged instead, and nothing is made. */
Test(user, a_check_not_as_root_creates_no_file_behind_a_dangling_symlink, .init = integration_init,
     .fini = user_fini)
{
    if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0)
        cr_skip_test("needs root and setpriv");
    char *directory = temp_directory_create("check-dangling-link");
    cr_assert_eq(chmod(directory, 0755), 0);
    char *logs = text_format("%s/logs", directory);
    cr_assert_eq(mkdir(logs, 0755), 0);
    cr_assert_eq(chown(logs, 61002, 61002), 0);
    char *log_path = text_format("%s/access.log", logs);
    char *target = text_format("%s/target.log", logs);
    cr_assert_eq(symlink("target.log", log_path), 0);
    char *path = write_check_config(directory, log_path, TEST_PORT(305, 0), TEST_PORT(305, 1));

    const char *as_owner[] = { "--reuid", "61002", "--regid", "61002", "--clear-groups", NULL };
    char *output;
    int status = run_through_setpriv(as_owner, "-t", path, &output);
    cr_expect_eq(status, 0, "-t as the directory's owner: exit %d, output:\n%s", status, output);
    free(output);
    cr_expect_neq(access(target, F_OK), 0, "-t created %s through the symlink", target);

    const char *as_other[] = { "--reuid", "61003", "--regid", "61003", "--clear-groups", NULL };
    status = run_through_setpriv(as_other, "-t", path, &output);
    cr_expect_eq(status, 1, "-t as a user who cannot create the target: exit %d, output:\n%s", status, output);
    char *why = text_format("access_log %s: Permission denied", log_path);
    cr_expect(output && strstr(output, why), "-t output:\n%s", output);
    free(output);

    free(why);
    free(path);
    free(target);
    free(log_path);
    free(logs);
    free(directory);
}

/* Not as root, the access log was opened with a plain blocking open, and
 * a FIFO at its path that no process read held `-t` (and the start, and
 * a SIGUSR1 reopen) until one came: the unit's ExecStartPre hung. Now
 * that is an error that says so; a FIFO that a process reads (a log
 * shipper) is still accepted. */
Test(user, a_fifo_log_with_no_reader_is_told_not_waited_for, .init = integration_init, .fini = user_fini)
{
    if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0)
        cr_skip_test("needs root and setpriv");
    char *directory = temp_directory_create("check-fifo");
    cr_assert_eq(chmod(directory, 0755), 0);
    char *log_path = text_format("%s/access.fifo", directory);
    cr_assert_eq(mkfifo(log_path, 0666), 0);
    cr_assert_eq(chmod(log_path, 0666), 0);
    char *path = write_check_config(directory, log_path, TEST_PORT(340, 10), TEST_PORT(340, 11));

    const char *as_other[] = { "--reuid", "61004", "--regid", "61004", "--clear-groups", NULL };
    char *output;
    long long started_ms = monotonic_ms();
    int status = run_through_setpriv(as_other, "-t", path, &output);
    long long took_ms = monotonic_ms() - started_ms;
    cr_expect_eq(status, 1, "-t with a FIFO no one reads: exit %d after %lld ms, output:\n%s", status, took_ms,
                 output);
    cr_expect_lt(took_ms, 5000, "-t waited %lld ms for a reader", took_ms);
    char *why = text_format("access_log %s: a FIFO that no process reads", log_path);
    cr_expect(output && strstr(output, why), "-t output:\n%s", output);
    free(output);

    int reader = open(log_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert_geq(reader, 0);
    status = run_through_setpriv(as_other, "-t", path, &output);
    cr_expect_eq(status, 0, "-t with a FIFO that is read: exit %d, output:\n%s", status, output);
    free(output);
    close(reader);

    free(why);
    free(path);
    free(log_path);
    free(directory);
}
