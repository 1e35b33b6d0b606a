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

static struct proxy service_proxy;
static char notify_path[108];

static void service_fini(void)
{
    proxy_release(&service_proxy);
    integration_cleanup();
    if (notify_path[0])
        unlink(notify_path);
}

/* Next notification, or "" after timeout_ms. */
static void next_notification(int fd, char *out, size_t size, int timeout_ms)
{
    out[0] = '\0';
    struct pollfd ready = { .fd = fd, .events = POLLIN };
    if (poll(&ready, 1, timeout_ms) != 1)
        return;
    ssize_t length = recv(fd, out, size - 1, 0);
    out[length > 0 ? length : 0] = '\0';
}

Test(service, sd_notify_ready_reloading_stopping, .init = integration_init, .fini = service_fini)
{
    uint16_t proxy_port = TEST_PORT(47, 0);
    snprintf(notify_path, sizeof notify_path, "/tmp/snisplice-notify-%d", (int)getpid());
    unlink(notify_path);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    strcpy(address.sun_path, notify_path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
    setenv("NOTIFY_SOCKET", notify_path, 1);
    char *config = config_text(proxy_port, "", "[routes]\ndefault = 127.0.0.1:9\n");
    bool started = proxy_start(&service_proxy, config, proxy_port);
    unsetenv("NOTIFY_SOCKET");
    cr_assert(started);

    char message[256];
    next_notification(fd, message, sizeof message, 3000);
    cr_expect(strstr(message, "READY=1") != NULL, "first notification: \"%s\"", message);

    proxy_signal(&service_proxy, SIGHUP);
    next_notification(fd, message, sizeof message, 3000);
    cr_expect(strstr(message, "RELOADING=1") != NULL, "on SIGHUP: \"%s\"", message);
    next_notification(fd, message, sizeof message, 3000);
    cr_expect(strstr(message, "READY=1") != NULL, "after reload: \"%s\"", message);

    proxy_signal(&service_proxy, SIGTERM);
    next_notification(fd, message, sizeof message, 3000);
    cr_expect(strstr(message, "STOPPING=1") != NULL, "on SIGTERM: \"%s\"", message);
    cr_expect_eq(proxy_wait_exit(&service_proxy, 5000), 0);
    close(fd);
    free(config);
}
