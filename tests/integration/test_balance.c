/*
 * test_balance.c - how an upstream's servers share connections out, as
 * users of nginx's least_conn and hash $remote_addr consistent rely on:
 * least_connections sends new clients to the server with the fewest open
 * connections; client_address keeps each client address on one server, in
 * every worker, across a reload that reorders the servers and behind a
 * trusted PROXY-protocol balancer, and moves only the clients of a server
 * that stopped answering. A connect that fails gives its server's count
 * back. The stats endpoint reports connections made and open per server.
 * max_conns sends the connections past a server's limit elsewhere, and
 * counts each server's own connections even past the 4096 names the
 * metrics keep apart. Ports: blocks 110-113, 116, 161.
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

/* The config of start_all, its servers listed in reverse when `reversed`. */
static char *balance_config(int block, const char *global_lines, const char *listen_lines, const char *balance,
                            bool reversed)
{
    char *balance_line = balance ? text_format("balance = %s\n", balance) : strdup("");
    int first = reversed ? 3 : 1, step = reversed ? -1 : 1;
    char *body = text_format("%s[routes]\nshared.example.org = shared\n[upstream shared]\n%s"
                             "server = 127.0.0.1:%u\nserver = 127.0.0.1:%u\nserver = 127.0.0.1:%u\n",
                             listen_lines, balance_line, TEST_PORT(block, first),
                             TEST_PORT(block, first + step), TEST_PORT(block, first + 2 * step));
    char *config = config_text(TEST_PORT(block, 0), global_lines, body);
    free(body);
    free(balance_line);
    return config;
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
    char *config = balance_config(block, global_lines, listen_lines, balance, false);
    cr_assert(proxy_start(&balance_proxy, config, proxy_port), "snisplice did not start");
    free(config);
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

/* Until the proxy has `count` connections open (its stats endpoint on
 * stats_port): a server's count drops only once the proxy has closed the
 * connection, after the client's close has gone all the way through. */
static bool wait_active(uint16_t stats_port, long long count)
{
    for (int i = 0; i < 500; i++) {
        if (stats_value(stats_port, "snisplice_active_connections") == count)
            return true;
        sleep_ms(10);
    }
    return false;
}

/* A per-server sample of the stats endpoint for server `index` of block. */
static long long server_stat(uint16_t stats_port, const char *family, int block, int index)
{
    char *series = text_format("%s{upstream=\"shared\",server=\"127.0.0.1:%u\"}", family,
                               TEST_PORT(block, 1 + index));
    long long value = stats_value(stats_port, series);
    free(series);
    return value;
}

/* Two servers each hold two long connections (a Matrix sync, a
 * websocket): every short connection then goes to the third, which has
 * none open, where round robin would send two of three to the busy ones.
 * When the long ones end, the others are used again. */
Test(balance, least_connections_sends_new_clients_to_the_emptier_server, .init = integration_init,
     .fini = balance_fini)
{
    uint16_t stats_port = TEST_PORT(110, 9);
    char *globals = text_format("workers = 1\nstats = 127.0.0.1:%u\n", stats_port);
    uint16_t port = start_all(110, globals, "", "least_connections");
    free(globals);
    int held[2 * SERVERS];
    int held_server[2 * SERVERS];
    unsigned per_server[SERVERS] = { 0 };
    for (int i = 0; i < 2 * SERVERS; i++) {
        held[i] = open_held(port, &held_server[i]);
        per_server[held_server[i]]++;
    }
    for (int i = 0; i < SERVERS; i++) {
        cr_assert_eq(per_server[i], 2, "long connections on server %d: %u of 6", i, per_server[i]);
        cr_expect_eq(server_stat(stats_port, "snisplice_upstream_open_connections", 110, i), 2,
                     "the open connections reported for server %d", i);
    }
    /* charlie's two end: it now has none open, the others two each. A
     * short connection's own count lingers until the proxy has closed it,
     * which is at most one: still fewer than two. */
    const int idle_server = 2;
    for (int i = 0; i < 2 * SERVERS; i++)
        if (held_server[i] == idle_server)
            close(held[i]);
    cr_assert(wait_active(stats_port, 2 * SERVERS - 2), "charlie's connections were not closed");
    for (int i = 0; i < 9; i++)
        cr_expect_eq(short_exchange(port), idle_server, "short connection %d", i);
    for (int i = 0; i < 2 * SERVERS; i++)
        if (held_server[i] != idle_server)
            close(held[i]);
    cr_assert(wait_active(stats_port, 0), "the long connections were not closed");
    unsigned served[SERVERS] = { 0 };
    for (int i = 0; i < 9; i++)
        served[short_exchange(port)]++;
    cr_expect(served[0] > 0 && served[1] > 0, "with nothing open: %u %u %u of 9", served[0], served[1],
              served[2]);
    cr_assert(wait_active(stats_port, 0));
    for (int i = 0; i < SERVERS; i++) {
        long long made = 2 + (i == idle_server ? 9 : 0) + served[i];
        cr_expect_eq(server_stat(stats_port, "snisplice_upstream_connections_total", 110, i), made,
                     "connections reported for server %d", i);
        cr_expect_eq(server_stat(stats_port, "snisplice_upstream_open_connections", 110, i), 0,
                     "server %d: all closed", i);
    }
    expect_clean_exit();
}

#define CLIENTS 16

/* Which server answers the client at 127.0.0.`client`, asked three
 * times; -1 unless all three agree. */
static int server_of_client(uint16_t port, int client)
{
    char source[32];
    snprintf(source, sizeof source, "127.0.0.%d", client);
    int server = -2;
    for (int i = 0; i < 3; i++) {
        char *reply = exchange_from(source, port, balance_hello.data, balance_hello.length, 5000, NULL);
        int this_time = server_of(reply);
        free(reply);
        if (this_time < 0 || (server != -2 && this_time != server))
            return -1;
        server = this_time;
    }
    return server;
}

/* Clients 127.0.0.1-16, each three times, with two workers (the kernel
 * spreads connections over both): each keeps its server, and the clients
 * are shared over the servers. Reordering the server lines at a reload
 * moves nobody. When a server stops answering, its clients go to the
 * others and nobody else moves. */
Test(balance, client_address_keeps_each_client_on_one_server, .init = integration_init, .fini = balance_fini)
{
    const int block = 111;
    uint16_t port = start_all(block, "workers = 2\nconnect_timeout = 2s\n", "", "client_address");
    int first[CLIENTS + 1];
    unsigned per_server[SERVERS] = { 0 };
    for (int client = 1; client <= CLIENTS; client++) {
        first[client] = server_of_client(port, client);
        cr_assert_geq(first[client], 0, "client %d changed servers", client);
        per_server[first[client]]++;
    }
    int busiest = 0;
    for (int i = 0; i < SERVERS; i++) {
        cr_expect_lt(per_server[i], CLIENTS, "every client on server %d", i);
        busiest = per_server[i] > per_server[busiest] ? i : busiest;
    }

    char *reordered = balance_config(block, "workers = 2\nconnect_timeout = 2s\n", "", "client_address", true);
    proxy_reload(&balance_proxy, reordered);
    free(reordered);
    cr_assert(proxy_stderr_wait_for(&balance_proxy, "reloaded", 3000));
    sleep_ms(100);
    for (int client = 1; client <= CLIENTS; client++)
        cr_expect_eq(server_of_client(port, client), first[client], "client %d after the reload", client);

    backend_stop(&servers[busiest]);
    for (int client = 1; client <= CLIENTS; client++) {
        int now = server_of_client(port, client);
        if (first[client] == busiest)
            cr_expect(now >= 0 && now != busiest, "client %d of the stopped server: now %d", client, now);
        else
            cr_expect_eq(now, first[client], "client %d moved although its server is up", client);
    }
    expect_clean_exit();
}

/* Behind a trusted load balancer every connection comes from its one
 * address: the clients its PROXY headers name are what is hashed, so
 * they keep their servers and are shared out, instead of all landing on
 * the server of the balancer's address. */
Test(balance, client_address_behind_a_load_balancer_hashes_the_named_clients, .init = integration_init,
     .fini = balance_fini)
{
    uint16_t port = start_all(112, "workers = 1\n", "proxy_protocol_from = 127.0.0.1\n", "client_address");
    unsigned per_server[SERVERS] = { 0 };
    uint8_t payload[4096];
    for (int client = 1; client <= CLIENTS; client++) {
        char named[32];
        snprintf(named, sizeof named, "203.0.113.%d", client);
        size_t length = (size_t)snprintf((char *)payload, sizeof payload, "PROXY TCP4 %s 192.0.2.1 40000 443\r\n",
                                         named);
        cr_assert(length + balance_hello.length <= sizeof payload);
        memcpy(payload + length, balance_hello.data, balance_hello.length);
        length += balance_hello.length;
        int server = -2;
        for (int i = 0; i < 3; i++) {
            char *reply = exchange_once(port, payload, length, 5000, NULL);
            int this_time = server_of(reply);
            free(reply);
            cr_assert(this_time >= 0 && (server == -2 || this_time == server), "client %s changed servers", named);
            server = this_time;
        }
        per_server[server]++;
    }
    for (int i = 0; i < SERVERS; i++)
        cr_expect_lt(per_server[i], CLIENTS, "every named client on server %d", i);
    expect_clean_exit();
}

/* alpha and bravo on block's ports 1-2, and one worker with its stats on
 * port 9 routing the hello's name to [upstream shared] made of
 * upstream_lines. Returns the config, for a reload. */
static char *start_two_servers(int block, const char *upstream_lines)
{
    uint16_t port = TEST_PORT(block, 0);
    balance_hello = hello_build("shared.example.org");
    cr_assert_not_null(balance_hello.data);
    for (int i = 0; i < 2; i++)
        cr_assert(backend_start(&servers[i], server_names[i], TEST_PORT(block, 1 + i), NULL, NULL));
    char *globals = text_format("workers = 1\nstats = 127.0.0.1:%u\n", TEST_PORT(block, 9));
    char *body = text_format("[routes]\nshared.example.org = shared\n[upstream shared]\n%s", upstream_lines);
    char *config = config_text(port, globals, body);
    cr_assert(proxy_start(&balance_proxy, config, port), "snisplice did not start");
    free(body);
    free(globals);
    return config;
}

/* A server that refuses (and never rests: max_fails=0) while the two
 * others each hold a long connection: it has the fewest open, so every
 * new connection tries it first and then goes on. That stays so only if
 * each failed attempt gives its count back; one that kept it would make
 * the refusing server look as busy as the others after the first try,
 * and later connections would skip it. */
Test(balance, least_connections_gives_back_a_failed_servers_count, .init = integration_init,
     .fini = balance_fini)
{
    const int block = 113;
    uint16_t port = TEST_PORT(block, 0), stats_port = TEST_PORT(block, 9), refused_port = TEST_PORT(block, 10);
    char *upstream = text_format("balance = least_connections\nserver = 127.0.0.1:%u\nserver = 127.0.0.1:%u\n"
                                 "server = 127.0.0.1:%u max_fails=0\n",
                                 TEST_PORT(block, 1), TEST_PORT(block, 2), refused_port);
    free(start_two_servers(block, upstream));
    free(upstream);

    int held[6], held_count = 0;
    bool holds[2] = { false, false };
    while (!(holds[0] && holds[1])) {
        cr_assert_lt(held_count, 6, "the long connections never reached both servers");
        int server;
        held[held_count++] = open_held(port, &server);
        holds[server] = true;
    }
    char *series = text_format("snisplice_upstream_connect_failures_total{upstream=\"shared\",server=\"127.0.0.1:%u\"}",
                               refused_port);
    long long failures_before = stats_value(stats_port, series);
    if (failures_before < 0)
        failures_before = 0;
    const int connections = 8;
    for (int i = 0; i < connections; i++)
        short_exchange(port);
    cr_expect_eq(stats_value(stats_port, series) - failures_before, connections,
                 "every new connection should have tried the refusing server first");
    free(series);
    for (int i = 0; i < held_count; i++)
        close(held[i]);
    expect_clean_exit();
}

/* nginx's max_conns: a primary with max_conns=2 and a backup. Two long
 * connections fill the primary, so the next ones go to the backup, a
 * reload changes nothing about that, and when one of the long ones ends
 * the primary takes new ones again. */
Test(balance, max_conns_sends_the_connections_past_the_limit_elsewhere, .init = integration_init,
     .fini = balance_fini)
{
    const int block = 116;
    uint16_t port = TEST_PORT(block, 0), stats_port = TEST_PORT(block, 9);
    char *upstream = text_format("server = 127.0.0.1:%u max_conns=2\nserver = 127.0.0.1:%u backup\n",
                                 TEST_PORT(block, 1), TEST_PORT(block, 2));
    char *config = start_two_servers(block, upstream);
    free(upstream);

    int held[2], server;
    for (int i = 0; i < 2; i++) {
        held[i] = open_held(port, &server);
        cr_assert_eq(server, 0, "long connection %d: the primary has room", i);
    }
    for (int i = 0; i < 4; i++)
        cr_expect_eq(short_exchange(port), 1, "connection %d past the primary's max_conns", i);
    cr_expect_eq(server_stat(stats_port, "snisplice_upstream_open_connections", block, 0), 2);
    /* A reload lays everything out again; the two open connections still
     * count against the primary's limit. */
    proxy_reload(&balance_proxy, config);
    cr_assert(proxy_stderr_wait_for(&balance_proxy, "reloaded", 3000));
    sleep_ms(100);
    cr_expect_eq(short_exchange(port), 1, "after a reload, the primary is still full");
    close(held[0]);
    cr_assert(wait_active(stats_port, 1), "the long connection was not closed");
    cr_expect_eq(short_exchange(port), 0, "room again on the primary");
    cr_expect_eq(server_stat(stats_port, "snisplice_upstream_connect_failures_total", block, 0), 0,
                 "a full server is no failed connect");
    close(held[1]);
    free(config);
    expect_clean_exit();
}

/* What a long connection's server answered: its index, or -1 when the
 * proxy closed it without one (no server could be had). */
static int try_open_held(uint16_t port, int *fd)
{
    *fd = net_connect(port);
    cr_assert(*fd >= 0);
    cr_assert(net_send_all(*fd, balance_hello.data, balance_hello.length));
    char reply[16] = { 0 };
    size_t received = 0;
    while (received < sizeof reply - 1 && (received == 0 || reply[received - 1] != '\n')) {
        if (net_receive_exact(*fd, reply + received, 1, 5000) != 1)
            return -1;
        received++;
    }
    return server_of(reply);
}

#define DEAD_UPSTREAMS 16
#define DEAD_SERVERS 256 /* DEAD_UPSTREAMS * DEAD_SERVERS = METRICS_NAMES_MAX */

/* The config of max_conns_counts_each_server_past_the_metrics_names: 16
 * least_connections upstreams dead0..dead15 of 256 servers each where
 * nothing listens (127.161.x.y), and `shared` with two live servers of
 * max_conns=1. */
static char *many_servers_config(int block)
{
    size_t capacity = 256 * 1024, used = 0;
    char *body = malloc(capacity);
    cr_assert_not_null(body);
    used += (size_t)snprintf(body + used, capacity - used, "[routes]\nshared.example.org = shared\n");
    for (int u = 0; u < DEAD_UPSTREAMS; u++)
        used += (size_t)snprintf(body + used, capacity - used, "dead%d.example.org = dead%d\n", u, u);
    for (int u = 0; u < DEAD_UPSTREAMS; u++) {
        used += (size_t)snprintf(body + used, capacity - used, "[upstream dead%d]\nbalance = least_connections\n",
                                 u);
        for (int i = 0; i < DEAD_SERVERS; i++)
            used += (size_t)snprintf(body + used, capacity - used, "server = 127.161.%d.%d:%u\n",
                                     u * 2 + i / 128, 1 + i % 128, TEST_PORT(block, 5));
    }
    used += (size_t)snprintf(body + used, capacity - used,
                             "[upstream shared]\nserver = 127.0.0.1:%u max_conns=1\n"
                             "server = 127.0.0.1:%u max_conns=1\n",
                             TEST_PORT(block, 1), TEST_PORT(block, 2));
    cr_assert_lt(used, capacity);
    char *globals = text_format("workers = 1\nstats = 127.0.0.1:%u\n", TEST_PORT(block, 9));
    char *config = config_text(TEST_PORT(block, 0), globals, body);
    free(globals);
    free(body);
    return config;
}

/* A worker keeps metrics for 4096 (upstream, server) names and folds the
 * rest into upstream="other". Its count of open connections per server,
 * which max_conns and least_connections decide by, must not be folded:
 * once the worker had seen 4096 servers (here 16 least_connections
 * upstreams of 256 dead ones, one connection each), the two servers of
 * `shared` shared one count, so one open connection made both look full
 * and the second long connection was closed (connect_failed). Each must
 * take one, while /metrics still reports them as "other". */
Test(balance, max_conns_counts_each_server_past_the_metrics_names, .init = integration_init,
     .fini = balance_fini)
{
    const int block = 161;
    uint16_t port = TEST_PORT(block, 0), stats_port = TEST_PORT(block, 9);
    balance_hello = hello_build("shared.example.org");
    cr_assert_not_null(balance_hello.data);
    for (int i = 0; i < 2; i++)
        cr_assert(backend_start(&servers[i], server_names[i], TEST_PORT(block, 1 + i), NULL, NULL));
    char *config = many_servers_config(block);
    cr_assert(proxy_start(&balance_proxy, config, port), "snisplice did not start");
    free(config);

    for (int u = 0; u < DEAD_UPSTREAMS; u++) {
        char name[64];
        snprintf(name, sizeof name, "dead%d.example.org", u);
        struct hello_bytes hello = hello_build(name);
        cr_assert_not_null(hello.data);
        free(exchange_once(port, hello.data, hello.length, 10000, NULL));
        hello_free(&hello);
    }
    cr_assert(wait_active(stats_port, 0), "the connections to the dead upstreams were not closed");
    cr_assert_eq(stats_value(stats_port, "snisplice_connections_total{route=\"dead15\",outcome=\"connect_failed\"}"),
                 1);

    int held[2], server[2];
    for (int i = 0; i < 2; i++)
        server[i] = try_open_held(port, &held[i]);
    cr_expect_geq(server[0], 0, "the first long connection found no server");
    cr_expect_geq(server[1], 0, "the second long connection found no server: the other one's max_conns=1 "
                                "was taken by the first one's connection");
    cr_expect_neq(server[0], server[1], "both long connections on one server with max_conns=1");
    char *text = stats_fetch(stats_port, "/metrics");
    /* (The page is longer than stats_fetch reads: not the last family.) */
    long long other = stats_sample(text, "snisplice_upstream_connections_total{upstream=\"other\",server=\"other\"}");
    cr_expect_eq(other, 2, "the shared servers are past the metrics' names: reported as other, %lld connected",
                 other);
    long long failed = stats_sample(text, "snisplice_connections_total{route=\"shared\",outcome=\"connect_failed\"}");
    cr_expect_eq(failed, -1, "%lld long connections to shared failed", failed);
    free(text);
    for (int i = 0; i < 2; i++)
        close(held[i]);
    cr_assert(wait_active(stats_port, 0), "the long connections were not closed");
    expect_clean_exit();
}
