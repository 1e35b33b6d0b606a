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

    char tasks_path[64];
    snprintf(tasks_path, sizeof tasks_path, "/proc/%d/task", (int)user_proxy.pid);
    DIR *tasks = opendir(tasks_path);
    cr_assert_not_null(tasks);
    int checked = 0;
    for (struct dirent *entry; (entry = readdir(tasks)) != NULL;) {
        if (entry->d_name[0] == '.')
            continue;
        cr_expect(task_runs_as(user_proxy.pid, entry->d_name, nobody->pw_uid), "task %s still privileged",
                  entry->d_name);
        checked++;
    }
    closedir(tasks);
    cr_expect_geq(checked, 3, "main thread and two workers");

    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    char *reply = exchange_once(proxy_port, hello.data, hello.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "alpha\n") == 0, "not serving as nobody");
    free(reply);
    hello_free(&hello);
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&user_proxy, 10000), 0);
}
