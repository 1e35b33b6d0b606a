/*
 * test_service.c - running under systemd (Type=notify): READY=1 once
 * listening, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM,
 * sent to the datagram socket named by NOTIFY_SOCKET. Ports: block 47.
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../support/integration.h"
#include "../support/notify.h"

static struct proxy service_proxy;
static char notify_path[108];

static void service_fini(void)
{
    proxy_release(&service_proxy);
    integration_cleanup();
    if (notify_path[0])
        unlink(notify_path);
}

Test(service, sd_notify_ready_reloading_stopping, .init = integration_init, .fini = service_fini)
{
    uint16_t proxy_port = TEST_PORT(47, 0);
    int fd = notify_socket_bind("notify", notify_path, sizeof notify_path);
    cr_assert_geq(fd, 0);
    setenv("NOTIFY_SOCKET", notify_path, 1);
    char *config = config_text(proxy_port, "", "[routes]\ndefault = 127.0.0.1:9\n");
    bool started = proxy_start(&service_proxy, config, proxy_port);
    unsetenv("NOTIFY_SOCKET");
    cr_assert(started);

    char message[256];
    notify_next(fd, message, sizeof message, 3000);
    cr_expect(strstr(message, "READY=1") != NULL, "first notification: \"%s\"", message);

    proxy_signal(&service_proxy, SIGHUP);
    notify_next(fd, message, sizeof message, 3000);
    cr_expect(strstr(message, "RELOADING=1") != NULL, "on SIGHUP: \"%s\"", message);
    notify_next(fd, message, sizeof message, 3000);
    cr_expect(strstr(message, "READY=1") != NULL, "after reload: \"%s\"", message);

    proxy_signal(&service_proxy, SIGTERM);
    notify_next(fd, message, sizeof message, 3000);
    cr_expect(strstr(message, "STOPPING=1") != NULL, "on SIGTERM: \"%s\"", message);
    cr_expect_eq(proxy_wait_exit(&service_proxy, 5000), 0);
    close(fd);
    free(config);
}
