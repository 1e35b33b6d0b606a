/*
 * test_user.c - `user = nobody`: bind the port as root, then run every
 * thread as the unprivileged user, and keep serving. A process that may
 * not switch users (run as nobody, as the shipped systemd unit runs it
 * unprivileged) is refused by `-t` and at start-up, before binding.
 * A reload as the user may still add a port below 1024. Ports: blocks 50,
 * 171, 172, and one free port in 991..999.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pwd.h>
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
static uint16_t free_low_port(void)
{
    for (uint16_t port = 991; port <= 999; port++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return 0;
        int on = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(port),
                                       .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        bool free_here = bind(fd, (struct sockaddr *)&address, sizeof address) == 0;
        close(fd);
        if (free_here)
            return port;
    }
    return 0;
}

/* nginx's master stays root, so a reload there may add `listen 995`;
 * snisplice's main thread runs as the user after start-up, and such a
 * reload failed with "Permission denied". It keeps CAP_NET_BIND_SERVICE
 * across the switch for that. Where the bind is still refused (started
 * as nobody, without the capability), the message says why. */
Test(user, reload_as_the_user_adds_a_port_below_1024, .init = integration_init, .fini = user_fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to switch users");
    uint16_t low_port = free_low_port();
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
