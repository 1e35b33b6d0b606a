/*
 * test_user.c - `user = nobody`: bind the port as root, then run every
 * thread as the unprivileged user, and keep serving. Ports: block 50.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
