/*
 * test_client_limit.c - max_connections_per_client with real processes
 * (nginx's limit_conn on $binary_remote_addr): a client at its limit is
 * closed before any upstream is contacted while other clients are served;
 * a closed connection makes room again; a listener with `off` does not
 * count; behind a trusted load balancer each client the header names is
 * counted, not the balancer; refusals are logged; a reload changes the
 * limit. Clients are told apart by source address (127.0.0.x).
 * Ports: block 108.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy limit_proxy;
static struct backend alpha, bravo;

static void limit_fini(void)
{
    proxy_release(&limit_proxy);
    integration_cleanup();
}

/* Connect from `source` and send, leaving the connection open. */
static int open_from(const char *source, uint16_t port, const void *payload, size_t length)
{
    int fd = net_connect_from(source, port);
    cr_assert_geq(fd, 0, "connect from %s to %u failed", source, port);
    net_set_timeouts(fd, 5000);
    cr_assert(net_send_all(fd, payload, length));
    return fd;
}

/* Until `backend` has accepted `count` connections in all; false after 5 s. */
static bool wait_accepted(struct backend *backend, unsigned count)
{
    for (int i = 0; i < 500 && backend_accepted(backend) < count; i++)
        sleep_ms(10);
    return backend_accepted(backend) >= count;
}

/* A connection the proxy closes unanswered, and `backend` never saw. */
static void expect_refused(const char *source, uint16_t port, const void *payload, size_t length,
                           struct backend *backend)
{
    unsigned before = backend_accepted(backend);
    int fd = net_connect_from(source, port);
    cr_assert_geq(fd, 0);
    net_set_timeouts(fd, 5000);
    net_send_all(fd, payload, length); /* may fail: the reset can come first */
    char reply[64];
    struct net_receive_result result = net_receive_until_closed(fd, reply, sizeof reply, 5000);
    close(fd);
    cr_expect(result.total == 0 && (result.eof || result.reset), "client %s on port %u: %zu bytes, %s", source,
              port, result.total, result.timed_out ? "still open" : "closed");
    cr_expect_eq(backend_accepted(backend), before, "client %s on port %u reached %s", source, port,
                 backend->name);
}

/* A whole exchange (send, half-close, read the answer) from `source`. */
static bool served_from(const char *source, uint16_t port, const void *payload, size_t length,
                        const char *backend)
{
    int fd = open_from(source, port, payload, length);
    shutdown(fd, SHUT_WR);
    char reply[64];
    struct net_receive_result result = net_receive_until_closed(fd, reply, sizeof reply - 1, 5000);
    close(fd);
    reply[result.length] = '\0';
    char want[40];
    snprintf(want, sizeof want, "%s\n", backend);
    return strcmp(reply, want) == 0;
}

static char *limit_config(uint16_t port, const char *globals, uint16_t plain_port, uint16_t balanced_port)
{
    char *body = text_format("routes = web\n"
                             "[listen ssh]\naddress = 127.0.0.1:%u\nupstream = bravo\n"
                             "max_connections_per_client = off\n"
                             "[listen balanced]\naddress = 127.0.0.1:%u\nroutes = web\n"
                             "proxy_protocol_from = 127.0.0.5\nmax_connections_per_client = 1\n"
                             "[routes web]\ndefault = alpha\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n"
                             "[upstream bravo]\nserver = 127.0.0.1:%u\n",
                             plain_port, balanced_port, TEST_PORT(108, 5), TEST_PORT(108, 6));
    char *config = config_text(port, globals, body);
    free(body);
    return config;
}

Test(client_limit, connections_per_client_address, .init = integration_init, .fini = limit_fini)
{
    uint16_t port = TEST_PORT(108, 0), plain_port = TEST_PORT(108, 1), balanced_port = TEST_PORT(108, 2);
    cr_assert(backend_start(&alpha, "alpha", TEST_PORT(108, 5), NULL, NULL));
    cr_assert(backend_start(&bravo, "bravo", TEST_PORT(108, 6), NULL, NULL));
    char *directory = temp_directory_create("client-limit");
    char *log_path = text_format("%s/access.log", directory);
    char *globals = text_format("access_log = %s\nmax_connections_per_client = 2\n", log_path);
    char *config = limit_config(port, globals, plain_port, balanced_port);
    cr_assert(proxy_start(&limit_proxy, config, port), "snisplice did not start");
    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(chromium.data);

    /* Two held by 127.0.0.2 (its limit), across both workers. */
    unsigned accepted = backend_accepted(&alpha);
    int held[2];
    for (int i = 0; i < 2; i++)
        held[i] = open_from("127.0.0.2", port, chromium.data, chromium.length);
    cr_assert(wait_accepted(&alpha, accepted + 2), "the two connections were not relayed");
    expect_refused("127.0.0.2", port, chromium.data, chromium.length, &alpha);
    cr_expect(served_from("127.0.0.3", port, chromium.data, chromium.length, "alpha"), "another client");

    /* One closes: room for one more, once the proxy has seen the close. */
    close(held[0]);
    bool room = false;
    for (int i = 0; i < 100 && !room; i++) {
        sleep_ms(10);
        room = served_from("127.0.0.2", port, chromium.data, chromium.length, "alpha");
    }
    cr_expect(room, "a closed connection did not make room");
    held[0] = open_from("127.0.0.2", port, chromium.data, chromium.length);
    cr_assert(wait_accepted(&alpha, backend_accepted(&alpha)));

    /* A listener with `off` neither limits nor counts. */
    unsigned bravo_before = backend_accepted(&bravo);
    int plain[3];
    for (int i = 0; i < 3; i++)
        plain[i] = open_from("127.0.0.2", plain_port, "ping", 4);
    cr_expect(wait_accepted(&bravo, bravo_before + 3), "the plain listener limited 127.0.0.2");
    for (int i = 0; i < 3; i++)
        close(plain[i]);

    /* Behind the balancer (limit 1) each named client is counted. */
    static uint8_t payload[4096];
    int header = snprintf((char *)payload, 64, "PROXY TCP4 203.0.113.7 192.0.2.1 40000 443\r\n");
    memcpy(payload + header, chromium.data, chromium.length);
    size_t length = (size_t)header + chromium.length;
    unsigned alpha_before = backend_accepted(&alpha);
    int balanced = open_from("127.0.0.5", balanced_port, payload, length);
    cr_assert(wait_accepted(&alpha, alpha_before + 1));
    expect_refused("127.0.0.5", balanced_port, payload, length, &alpha);
    payload[strlen("PROXY TCP4 203.0.113.")] = '8'; /* 203.0.113.8 */
    cr_expect(served_from("127.0.0.5", balanced_port, payload, length, "alpha"),
              "another client of the same balancer");
    close(balanced);

    /* A reload raises the limit for the next connections. */
    char *raised_globals = text_format("access_log = %s\nmax_connections_per_client = 3\n", log_path);
    char *raised = limit_config(port, raised_globals, plain_port, balanced_port);
    proxy_reload(&limit_proxy, raised);
    cr_assert(proxy_stderr_wait_for(&limit_proxy, "reloaded", 3000));
    sleep_ms(100);
    cr_expect(served_from("127.0.0.2", port, chromium.data, chromium.length, "alpha"), "limit 3 after reload");

    for (int i = 0; i < 2; i++)
        close(held[i]);
    cr_expect_eq(proxy_stop(&limit_proxy, 10000), 0);
    char *log = file_read_all(log_path, NULL);
    cr_assert_not_null(log);
    int refused = 0;
    for (const char *at = log; (at = strstr(at, "outcome=client_limit")); at++)
        refused++;
    cr_expect_eq(refused, 2, "client_limit lines: %d\n%s", refused, log);
    cr_expect(strstr(log, " 203.0.113.7:40000 "), "the header's client is logged:\n%s", log);
    free(log);

    hello_free(&chromium);
    free(raised);
    free(raised_globals);
    free(config);
    free(globals);
    free(log_path);
    free(directory);
}
