/*
 * test_balance.c - how an upstream's servers share connections out, as
 * users of nginx's least_conn and hash $remote_addr consistent rely on:
 * least_connections sends new clients to the server with the fewest open
 * connections; client_address keeps each client address on one server, in
 * every worker, across a reload that reorders the servers and behind a
 * trusted PROXY-protocol balancer, and moves only the clients of a server
 * that stopped answering. Ports: blocks 110-112.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/integration.h"

#define SERVERS 3

static struct proxy balance_proxy;
static struct backend servers[SERVERS];
static const char *const server_names[SERVERS] = { "alpha", "bravo", "charlie" };
static struct hello_bytes balance_hello;

static void balance_fini(void)
{
    proxy_release(&balance_proxy);
    integration_cleanup();
    hello_free(&balance_hello);
}

/* Start the three servers on block's ports 1-3 and the proxy on port 0,
 * routing the hello's name to [upstream shared] with `balance` (NULL: no
 * key) and `listen_lines` added to [listen]. */
static uint16_t start_all(int block, const char *global_lines, const char *listen_lines, const char *balance)
{
    uint16_t proxy_port = TEST_PORT(block, 0);
    balance_hello = hello_build("shared.example.org");
    cr_assert_not_null(balance_hello.data);
    for (int i = 0; i < SERVERS; i++)
        cr_assert(backend_start(&servers[i], server_names[i], TEST_PORT(block, 1 + i), NULL, NULL));
    char *balance_line = balance ? text_format("balance = %s\n", balance) : strdup("");
    char *body = text_format("%s[routes]\nshared.example.org = shared\n[upstream shared]\n%s"
                             "server = 127.0.0.1:%u\nserver = 127.0.0.1:%u\nserver = 127.0.0.1:%u\n",
                             listen_lines, balance_line, TEST_PORT(block, 1), TEST_PORT(block, 2),
                             TEST_PORT(block, 3));
    char *config = config_text(proxy_port, global_lines, body);
    cr_assert(proxy_start(&balance_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    free(body);
    free(balance_line);
    return proxy_port;
}

/* Which server answered a reply ("bravo\n"), or -1. */
static int server_of(const char *reply)
{
    for (int i = 0; reply && i < SERVERS; i++)
        if (strncmp(reply, server_names[i], strlen(server_names[i])) == 0 &&
            reply[strlen(server_names[i])] == '\n')
            return i;
    return -1;
}

/* A connection that stays open: the hello sent, the server's name read
 * back, nothing closed. Returns the fd; *server says who holds it. */
static int open_held(uint16_t port, int *server)
{
    int fd = net_connect(port);
    cr_assert(fd >= 0);
    cr_assert(net_send_all(fd, balance_hello.data, balance_hello.length));
    char reply[16] = { 0 };
    size_t received = 0;
    while (received < sizeof reply - 1 && (received == 0 || reply[received - 1] != '\n')) {
        size_t got = net_receive_exact(fd, reply + received, 1, 5000);
        cr_assert_eq(got, 1, "no answer on a held connection");
        received += got;
    }
    *server = server_of(reply);
    cr_assert_geq(*server, 0, "answered by '%s'", reply);
    return fd;
}

static int short_exchange(uint16_t port)
{
    char *reply = exchange_once(port, balance_hello.data, balance_hello.length, 5000, NULL);
    int server = server_of(reply);
    cr_assert_geq(server, 0, "short connection answered '%s'", reply ? reply : "(nothing)");
    free(reply);
    return server;
}

static void expect_clean_exit(void)
{
    int status = proxy_stop(&balance_proxy, 10000);
    char *log = proxy_stderr(&balance_proxy);
    cr_expect_eq(status, 0, "snisplice exit %d, stderr:\n%s", status, log);
    free(log);
}

/* Two servers each hold two long connections (a Matrix sync, a
 * websocket): every short connection then goes to the third, which has
 * none open, where round robin would send two of three to the busy ones.
 * When the long ones end, the others are used again. */
Test(balance, least_connections_sends_new_clients_to_the_emptier_server, .init = integration_init,
     .fini = balance_fini)
{
    uint16_t port = start_all(110, "workers = 1\n", "", "least_connections");
    int held[2 * SERVERS];
    int held_server[2 * SERVERS];
    unsigned per_server[SERVERS] = { 0 };
    for (int i = 0; i < 2 * SERVERS; i++) {
        held[i] = open_held(port, &held_server[i]);
        per_server[held_server[i]]++;
    }
    for (int i = 0; i < SERVERS; i++)
        cr_assert_eq(per_server[i], 2, "long connections on server %d: %u of 6", i, per_server[i]);
    /* charlie's two end: it now has none open, the others two each. A
     * short connection's own count lingers until the proxy has closed it,
     * which is at most one: still fewer than two. */
    const int idle_server = 2;
    for (int i = 0; i < 2 * SERVERS; i++)
        if (held_server[i] == idle_server)
            close(held[i]);
    cr_assert(backend_wait_finished(&servers[idle_server], 2, 5000));
    usleep(100 * 1000);
    for (int i = 0; i < 9; i++)
        cr_expect_eq(short_exchange(port), idle_server, "short connection %d", i);
    for (int i = 0; i < 2 * SERVERS; i++)
        if (held_server[i] != idle_server)
            close(held[i]);
    for (int i = 0; i < SERVERS; i++)
        cr_assert(backend_wait_finished(&servers[i], 2 + (i == idle_server ? 9 : 0), 5000));
    usleep(100 * 1000);
    unsigned served[SERVERS] = { 0 };
    for (int i = 0; i < 9; i++)
        served[short_exchange(port)]++;
    cr_expect(served[0] > 0 && served[1] > 0, "with nothing open: %u %u %u of 9", served[0], served[1],
              served[2]);
    expect_clean_exit();
}
