/*
 * test_keepalive.c - `tcp_keepalive` (core/tcp_keepalive.h): the proxy's
 * client socket gets its listener's keepalive, its socket to a server its
 * upstream's, and a connection through a listener and upstream without
 * the setting gets none. Read from the kernel's own view of the proxy's
 * sockets, /proc/net/tcp: an idle socket with keepalive shows the
 * keepalive timer ("tr" 2) due within its idle time; one without shows no
 * timer at all. Ports: block 109.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/backend.h"
#include "../support/child_process.h"
#include "../support/hello.h"
#include "../support/integration.h"
#include "../support/net.h"
#include "../support/proxy.h"

#define KEEPALIVE_TIMER 2 /* "tr" of a socket whose keepalive timer is pending */

static struct proxy keepalive_proxy;
static struct backend keepalive_backend;
static struct backend plain_backend;

static void keepalive_fini(void)
{
    proxy_release(&keepalive_proxy);
    integration_cleanup();
}

TestSuite(keepalive, .init = integration_init, .fini = keepalive_fini);

static uint16_t local_port_of(int fd)
{
    struct sockaddr_in address;
    socklen_t length = sizeof address;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&address, &length), 0);
    return ntohs(address.sin_port);
}

/* A client relayed through proxy_port to a backend that greets with its
 * name: once the greeting is in, both of the proxy's sockets are up. */
static int relayed_client(uint16_t proxy_port, bool send_hello, const char *greeting)
{
    int client = net_connect(proxy_port);
    cr_assert_geq(client, 0);
    if (send_hello) {
        struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
        cr_assert(net_send_all(client, hello.data, hello.length));
        hello_free(&hello);
    }
    char received[32] = {0};
    size_t length = strlen(greeting);
    cr_assert_eq(net_receive_exact(client, received, length, 5000), length);
    cr_assert_str_eq(received, greeting);
    return client;
}

/* The socket's timer once the connection is idle: polled until it shows
 * `kind` (a retransmission timer can be pending for a moment after the
 * last bytes), or the last one seen after about 2 s. */
static struct net_tcp_timer idle_timer(uint16_t local_port, uint16_t remote_port, unsigned kind)
{
    struct net_tcp_timer timer = {0};
    for (int attempt = 0; attempt < 40; attempt++) {
        sleep_ms(50);
        cr_assert(net_tcp_timer(local_port, remote_port, &timer), "no socket %u -> %u in /proc/net/tcp",
                  local_port, remote_port);
        if (timer.kind == kind)
            break;
    }
    return timer;
}

static long system_keepalive_seconds(void)
{
    char *text = file_read_all("/proc/sys/net/ipv4/tcp_keepalive_time", NULL);
    cr_assert_not_null(text);
    long seconds = strtol(text, NULL, 10);
    free(text);
    return seconds;
}

Test(keepalive, listener_and_upstream_sockets_get_keepalive)
{
    uint16_t proxy_port = TEST_PORT(109, 0), backend_port = TEST_PORT(109, 1);
    uint16_t plain_port = TEST_PORT(109, 2), plain_backend_port = TEST_PORT(109, 3);
    cr_assert(backend_start(&keepalive_backend, "backend", backend_port, NULL, NULL));
    cr_assert(backend_start(&plain_backend, "plain", plain_backend_port, NULL, NULL));
    char *config = text_format("[global]\nworkers = 2\n\n"
                               "[listen]\naddress = 127.0.0.1:%u\ntcp_keepalive = 2:1:3\n\n"
                               "[listen plain]\naddress = 127.0.0.1:%u\nupstream = plain\n\n"
                               "[routes]\ndefault = app\n\n"
                               "[upstream app]\nserver = 127.0.0.1:%u\ntcp_keepalive = on\n\n"
                               "[upstream plain]\nserver = 127.0.0.1:%u\n",
                               proxy_port, plain_port, backend_port, plain_backend_port);
    cr_assert(proxy_start(&keepalive_proxy, config, proxy_port));
    free(config);
    cr_assert(net_wait_listening(plain_port, 5000));

    int client = relayed_client(proxy_port, true, "backend\n");
    int plain_client = relayed_client(plain_port, false, "plain\n");
    long clock_ticks = sysconf(_SC_CLK_TCK);

    /* The listener's 2 s: due within 2 s, never the system's hours. */
    struct net_tcp_timer timer = idle_timer(proxy_port, local_port_of(client), KEEPALIVE_TIMER);
    cr_expect_eq(timer.kind, KEEPALIVE_TIMER, "client side: tr %u", timer.kind);
    cr_expect_leq(timer.ticks, (unsigned long)(2 * clock_ticks), "client side: due in %lu ticks", timer.ticks);

    /* `on`: the system's net.ipv4.tcp_keepalive_time. */
    long system_seconds = system_keepalive_seconds();
    timer = idle_timer(0, backend_port, KEEPALIVE_TIMER);
    cr_expect_eq(timer.kind, KEEPALIVE_TIMER, "upstream side: tr %u", timer.kind);
    cr_expect_leq(timer.ticks, (unsigned long)(system_seconds * clock_ticks));
    cr_expect_geq(timer.ticks, (unsigned long)((system_seconds - 30) * clock_ticks),
                  "upstream side: due in %lu ticks, system keepalive %ld s", timer.ticks, system_seconds);

    /* Without the setting: no timer on either idle socket. */
    timer = idle_timer(plain_port, local_port_of(plain_client), 0);
    cr_expect_eq(timer.kind, 0, "plain client side: tr %u", timer.kind);
    timer = idle_timer(0, plain_backend_port, 0);
    cr_expect_eq(timer.kind, 0, "plain upstream side: tr %u", timer.kind);

    close(client);
    close(plain_client);
    cr_expect_eq(proxy_stop(&keepalive_proxy, 10000), 0);
    backend_stop(&keepalive_backend);
    backend_stop(&plain_backend);
}
