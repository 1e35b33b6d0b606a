/*
 * test_failover.c - upstream server selection as users configure it: a
 * refused server is skipped for the next one (and gets the client's exact
 * hello), backups are used only when every primary refuses, a connection
 * whose servers all refuse is closed, and a flood of connects to a server
 * that never answers holds a bounded number of hello buffers without
 * disturbing other routes; an upstream of 256 refusing servers is no
 * different; servers back from an outage are used at once; a resting
 * server's share is spread by weight, and so are the connections that fail
 * over to the backups. A listener's own connect_timeout applies to its
 * clients. A failed connect is logged without -v, at most once a second
 * per worker. A server whose address family the kernel lacks is skipped
 * too. A flapping server still reaches max_fails; retries after a
 * failure are spread as the balance spreads; a full server does not bring
 * back a dead one; a connection that outlives a reload while connecting
 * still tries every server once, and a resting server rests on across a
 * reload. Ports: blocks 5-7, 46, 49, 90, 94,
 * 101-103, 115, 176, 191, 220-222, 241, 343
 * (indexes 10+ are never listened on, except in block 101).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/upstream.h"
#include "../../io/hello_buffer_pool.h"
#include "../support/integration.h"
#include "../support/stats.h"

#define ATTEMPTS 6

static struct proxy failover_proxy;
static struct backend alpha_backend;
static struct backend bravo_backend;
static struct hello_bytes failover_hello;

static void failover_fini(void)
{
    proxy_release(&failover_proxy);
    integration_cleanup();
    hello_free(&failover_hello);
}

static void start_proxy(uint16_t proxy_port, const char *body)
{
    char *config = config_text(proxy_port, "connect_timeout = 2s\npreread_timeout = 5s\n", body);
    cr_assert(proxy_start(&failover_proxy, config, proxy_port), "snisplice did not start");
    free(config);
}

static void expect_clean_exit(void)
{
    int status = proxy_stop(&failover_proxy, 10000);
    char *log = proxy_stderr(&failover_proxy);
    cr_expect_eq(status, 0, "snisplice exit %d, stderr:\n%s", status, log);
    free(log);
}

/* The server that answered received exactly the client's hello. */
static void expect_hello_arrived(struct backend *backend, unsigned finished_before,
                                 const struct hello_bytes *hello, const char *what)
{
    cr_expect(backend_wait_finished(backend, finished_before + 1, 2000), "%s: backend did not finish", what);
    uint8_t *recorded = malloc(BACKEND_RECORD_MAX);
    cr_assert_not_null(recorded);
    size_t length = backend_last_received(backend, recorded, BACKEND_RECORD_MAX);
    cr_expect(length == hello->length && memcmp(recorded, hello->data, length) == 0,
              "%s: the server received %zu bytes, the client sent a %zu-byte hello (or they differ)",
              what, length, hello->length);
    free(recorded);
}

/* Every one of ATTEMPTS connections with `hello` must be answered by
 * `backend`, which must receive the hello unchanged. */
static void expect_every_connection_reaches(uint16_t proxy_port, const struct hello_bytes *hello,
                                            struct backend *backend, const char *what)
{
    char *wanted = text_format("%s\n", backend->name);
    for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
        unsigned finished_before = backend_finished(backend);
        char *reply = exchange_once(proxy_port, hello->data, hello->length, 10000, NULL);
        cr_expect(reply && strcmp(reply, wanted) == 0,
                  "%s, connection %d: got \"%s\", want \"%s\"", what, attempt,
                  reply ? reply : "(connect failed)", backend->name);
        if (reply && strcmp(reply, wanted) == 0)
            expect_hello_arrived(backend, finished_before, hello, what);
        free(reply);
    }
    free(wanted);
}

Test(failover, refused_server_is_skipped_for_the_next, .init = integration_init,
     .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(5, 0), refused_port = TEST_PORT(5, 10);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(failover_hello.data);
    cr_assert(backend_start(&bravo_backend, "bravo", TEST_PORT(5, 1), NULL, NULL));
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = matrix\n"
                             "[upstream matrix]\nserver = 127.0.0.1:%u\nserver = 127.0.0.1:%u\n",
                             refused_port, TEST_PORT(5, 1));
    start_proxy(proxy_port, body);
    expect_every_connection_reaches(proxy_port, &failover_hello, &bravo_backend,
                                    "first server refuses");
    cr_expect_eq(backend_accepted(&bravo_backend), ATTEMPTS);
    free(body);
    expect_clean_exit();
}

Test(failover, backup_is_used_only_when_primaries_refuse, .init = integration_init,
     .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(6, 0), refused_port = TEST_PORT(6, 10);
    uint16_t alpha_port = TEST_PORT(6, 1), bravo_port = TEST_PORT(6, 2);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    struct hello_bytes dimension = hello_load_capture(HELLO_GNUTLS);
    cr_assert(failover_hello.data && dimension.data);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    cr_assert(backend_start(&bravo_backend, "bravo", bravo_port, NULL, NULL));
    char *body = text_format("[routes]\n"
                             "matrix.exceptionerror.io = primary_down\n"
                             "dimension.exceptionerror.io = primary_up\n"
                             "[upstream primary_down]\n"
                             "server = 127.0.0.1:%u\nserver = 127.0.0.1:%u backup\n"
                             "[upstream primary_up]\n"
                             "server = 127.0.0.1:%u\nserver = 127.0.0.1:%u backup\n",
                             refused_port, bravo_port, alpha_port, bravo_port);
    start_proxy(proxy_port, body);
    expect_every_connection_reaches(proxy_port, &failover_hello, &bravo_backend,
                                    "primary refuses, backup up");
    expect_every_connection_reaches(proxy_port, &dimension, &alpha_backend, "primary and backup up");
    cr_expect_eq(backend_accepted(&alpha_backend), ATTEMPTS);
    cr_expect_eq(backend_accepted(&bravo_backend), ATTEMPTS,
                 "the backup was used although its primary was up");
    hello_free(&dimension);
    free(body);
    expect_clean_exit();
}

/* A connection whose every server refused is closed within max_ms, with
 * nothing sent back; `what` for messages. */
static void expect_refused_and_closed(uint16_t proxy_port, long long max_ms, const char *what)
{
    int fd = net_connect(proxy_port);
    cr_assert(fd >= 0);
    long long start = monotonic_ms();
    cr_assert(net_send_all(fd, failover_hello.data, failover_hello.length));
    size_t received = 0;
    long long closed_after = net_ms_until_closed(fd, start, 5000, &received);
    cr_expect(closed_after >= 0 && closed_after <= max_ms && received == 0,
              "%s: closed after %lld ms with %zu bytes", what, closed_after, received);
    close(fd);
}

Test(failover, all_servers_refused_closes_the_client, .init = integration_init,
     .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(7, 0);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(failover_hello.data);
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = matrix\n"
                             "[upstream matrix]\n"
                             "server = 127.0.0.1:%u\nserver = 127.0.0.1:%u\n"
                             "server = 127.0.0.1:%u backup\n",
                             TEST_PORT(7, 10), TEST_PORT(7, 11), TEST_PORT(7, 12));
    start_proxy(proxy_port, body);
    for (int attempt = 0; attempt < 3; attempt++)
        expect_refused_and_closed(proxy_port, 3000, "all servers refuse");
    free(body);
    expect_clean_exit();
}

/* An upstream may list 256 servers, the most a config takes. When every
 * one refuses, the client is closed as with three, and the worker goes on
 * serving: it once counted attempts in a byte, which wrapped at 256 and
 * left the worker spinning in its server search for good (no more
 * accepts, SIGTERM never finished). */
Test(failover, two_hundred_fifty_six_refusing_servers_close_the_client, .init = integration_init,
     .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(94, 0), alpha_port = TEST_PORT(94, 1), refused_port = TEST_PORT(94, 10);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(failover_hello.data);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = many\ndefault = alpha\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n[upstream many]\n", alpha_port);
    for (int i = 0; i < UPSTREAM_SERVERS_MAX; i++) {
        char *longer = text_format("%sserver = 127.0.0.1:%u\n", body, refused_port);
        free(body);
        body = longer;
    }
    char *config = config_text(proxy_port, "workers = 1\nconnect_timeout = 2s\n", body);
    cr_assert(proxy_start(&failover_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    free(body);

    expect_refused_and_closed(proxy_port, 3000, "256 servers refuse");

    struct hello_bytes other = hello_build("other.example.net");
    cr_assert_not_null(other.data);
    expect_every_connection_reaches(proxy_port, &other, &alpha_backend, "the same worker, another route");
    hello_free(&other);
    expect_clean_exit();
}

/* Outages end: as in nginx, the only server of an upstream is never put to
 * rest (it used to refuse every connection for fail_timeout after one
 * failure, e.g. while the backend restarted), and when every server of a
 * pool rests they are all tried again by the next connection (where nginx
 * 1.22 refuses every client until fail_timeout has passed: README). */
Test(failover, servers_back_from_an_outage_are_used_at_once, .init = integration_init,
     .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(101, 0), alpha_port = TEST_PORT(101, 1), bravo_port = TEST_PORT(101, 2);
    uint16_t single_port = TEST_PORT(101, 3);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(failover_hello.data);
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = pair\ndefault = 127.0.0.1:%u\n"
                             "[upstream pair]\nserver = 127.0.0.1:%u\nserver = 127.0.0.1:%u\n",
                             single_port, alpha_port, bravo_port);
    char *config = config_text(proxy_port, "workers = 1\nconnect_timeout = 2s\n", body);
    cr_assert(proxy_start(&failover_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    free(body);

    expect_refused_and_closed(proxy_port, 3000, "the pool, both servers down");
    static struct backend single_backend;
    struct hello_bytes other = hello_build("single.example.net");
    int fd = net_connect(proxy_port);
    cr_assert(fd >= 0);
    cr_assert(net_send_all(fd, other.data, other.length));
    size_t received = 0;
    cr_expect_geq(net_ms_until_closed(fd, monotonic_ms(), 5000, &received), 0, "the single server, down");
    close(fd);

    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    cr_assert(backend_start(&bravo_backend, "bravo", bravo_port, NULL, NULL));
    cr_assert(backend_start(&single_backend, "single", single_port, NULL, NULL));
    char *reply = exchange_once(proxy_port, failover_hello.data, failover_hello.length, 5000, NULL);
    cr_expect(reply && (strcmp(reply, "alpha\n") == 0 || strcmp(reply, "bravo\n") == 0),
              "the pool after its outage: \"%s\" (both servers were left resting)", reply ? reply : "(closed)");
    free(reply);
    reply = exchange_once(proxy_port, other.data, other.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "single\n") == 0,
              "the single server after its restart: \"%s\" (it was left resting)", reply ? reply : "(closed)");
    free(reply);
    hello_free(&other);
    backend_stop(&single_backend);
    expect_clean_exit();
}

/* alpha and bravo, and one worker (one set of running weights sees every
 * connection) in front of `upstream pool`, whose servers `servers` gives
 * as a format taking a refusing port, then alpha's and bravo's. */
static uint16_t start_pool_with_refusing_server(unsigned block, const char *servers)
{
    uint16_t proxy_port = TEST_PORT(block, 0), alpha_port = TEST_PORT(block, 1), bravo_port = TEST_PORT(block, 2);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(failover_hello.data);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    cr_assert(backend_start(&bravo_backend, "bravo", bravo_port, NULL, NULL));
    char *server_lines = text_format(servers, TEST_PORT(block, 10), alpha_port, bravo_port);
    char *body = text_format("[routes]\ndefault = pool\n[upstream pool]\n%s", server_lines);
    char *config = config_text(proxy_port, "workers = 1\n", body);
    cr_assert(proxy_start(&failover_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    free(body);
    free(server_lines);
    return proxy_port;
}

/* `connections` hellos, each answered by alpha or bravo; how many each got. */
static void exchange_with_pool(uint16_t proxy_port, int connections, int *alpha, int *bravo)
{
    for (int i = 0; i < connections; i++) {
        char *reply = exchange_once(proxy_port, failover_hello.data, failover_hello.length, 5000, NULL);
        cr_expect(reply && (strcmp(reply, "alpha\n") == 0 || strcmp(reply, "bravo\n") == 0),
                  "connection %d: \"%s\"", i, reply ? reply : "(closed)");
        free(reply);
    }
    *alpha = (int)backend_accepted(&alpha_backend);
    *bravo = (int)backend_accepted(&bravo_backend);
    cr_expect_eq(*alpha + *bravo, connections);
}

/* While a primary rests, its share goes to the other primaries by weight
 * (nginx re-runs its weighted round robin over the available ones); it
 * used to go whole to the next primary in config order, doubling that
 * one's load. */
Test(failover, a_resting_servers_share_is_spread_over_the_others, .init = integration_init,
     .fini = failover_fini)
{
    uint16_t proxy_port = start_pool_with_refusing_server(
        102, "server = 127.0.0.1:%u\nserver = 127.0.0.1:%u\nserver = 127.0.0.1:%u\n");
    int alpha, bravo;
    exchange_with_pool(proxy_port, 30, &alpha, &bravo);
    cr_expect_leq(abs(alpha - bravo), 2, "alpha served %d, bravo %d: the refusing server's share was not spread",
                  alpha, bravo);
    expect_clean_exit();
}

/* Once the primaries are out, nginx runs a second weighted round robin over
 * the backups: with the only primary refusing, two backups of equal weight
 * each serve about half the connections. They used to go all to the first
 * backup in config order. */
Test(failover, failed_over_connections_are_spread_over_the_backups, .init = integration_init,
     .fini = failover_fini)
{
    uint16_t proxy_port = start_pool_with_refusing_server(
        103, "server = 127.0.0.1:%u\nserver = 127.0.0.1:%u backup\nserver = 127.0.0.1:%u backup\n");
    int alpha, bravo;
    exchange_with_pool(proxy_port, 20, &alpha, &bravo);
    cr_expect_geq(alpha, 7, "alpha served %d, bravo %d: the backups were not shared", alpha, bravo);
    cr_expect_geq(bravo, 7, "alpha served %d, bravo %d: the backups were not shared", alpha, bravo);
    expect_clean_exit();
}

Test(failover, connect_timeout_moves_to_the_next_server, .init = integration_init,
     .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(46, 0), hole_port = TEST_PORT(46, 1), alpha_port = TEST_PORT(46, 2);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    int fillers[4];
    int hole = net_black_hole(hole_port, fillers, 4);
    cr_assert_geq(hole, 0, "no black hole on port %u", hole_port);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = matrix\n"
                             "[upstream matrix]\nserver = 127.0.0.1:%u\nserver = 127.0.0.1:%u\n",
                             hole_port, alpha_port);
    char *config = config_text(proxy_port, "workers = 1\nconnect_timeout = 500ms\n", body);
    cr_assert(proxy_start(&failover_proxy, config, proxy_port), "snisplice did not start");
    /* Round robin starts each connection at another server: over three
     * connections at least one meets the black hole first. */
    long long slowest = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        unsigned finished_before = backend_finished(&alpha_backend);
        long long start = monotonic_ms();
        char *reply = exchange_once(proxy_port, failover_hello.data, failover_hello.length, 5000, NULL);
        long long took = monotonic_ms() - start;
        cr_expect(reply && strcmp(reply, "alpha\n") == 0, "connection %d: got \"%s\"", attempt,
                  reply ? reply : "(nothing)");
        if (reply && strcmp(reply, "alpha\n") == 0)
            expect_hello_arrived(&alpha_backend, finished_before, &failover_hello,
                                 "after a connect timeout");
        if (took > slowest)
            slowest = took;
        free(reply);
    }
    cr_expect_geq(slowest, 450, "no connection waited for the black hole's connect_timeout");
    cr_expect_leq(slowest, 2500, "connect_timeout of 500ms took %lld ms", slowest);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(hole);
    free(config);
    free(body);
    expect_clean_exit();
}

/* A listener's own connect_timeout: through it a connect to the black
 * hole gives up after 300 ms; through the other listener, to the same
 * upstream, after [global]'s 2 s. */
Test(failover, each_listener_keeps_its_own_connect_timeout, .init = integration_init, .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(115, 0), hole_port = TEST_PORT(115, 1), other_port = TEST_PORT(115, 2);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(failover_hello.data);
    int fillers[4];
    int hole = net_black_hole(hole_port, fillers, 4);
    cr_assert_geq(hole, 0, "no black hole on port %u", hole_port);
    char *body = text_format("connect_timeout = 300ms\n[listen other]\naddress = 127.0.0.1:%u\n"
                             "[routes]\ndefault = 127.0.0.1:%u\n[routes other]\ndefault = 127.0.0.1:%u\n",
                             other_port, hole_port, hole_port);
    start_proxy(proxy_port, body);
    cr_assert(net_wait_listening(other_port, 5000));
    long long start = monotonic_ms();
    char *reply = exchange_once(proxy_port, failover_hello.data, failover_hello.length, 5000, NULL);
    long long own = monotonic_ms() - start;
    free(reply);
    start = monotonic_ms();
    reply = exchange_once(other_port, failover_hello.data, failover_hello.length, 5000, NULL);
    long long global = monotonic_ms() - start;
    free(reply);
    cr_expect(own >= 250 && own <= 1500, "own connect_timeout 300ms: closed after %lld ms", own);
    cr_expect(global >= 1900 && global <= 4000, "[global]'s 2s: closed after %lld ms", global);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(hole);
    free(body);
    expect_clean_exit();
}

/* A black hole (a server that never answers) and alpha behind it in
 * upstream matrix, the hole first with max_fails=1 and `fail_timeout`;
 * one worker, connect_timeout 500 ms. Returns the hole's socket; its
 * fillers go to fillers[4] (close_black_hole). */
static int start_hole_then_alpha(uint16_t proxy_port, uint16_t hole_port, uint16_t alpha_port,
                                 const char *fail_timeout, int *fillers)
{
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    int hole = net_black_hole(hole_port, fillers, 4);
    cr_assert_geq(hole, 0, "no black hole on port %u", hole_port);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = matrix\n[upstream matrix]\n"
                             "server = 127.0.0.1:%u max_fails=1 fail_timeout=%s\n"
                             "server = 127.0.0.1:%u\n", hole_port, fail_timeout, alpha_port);
    char *config = config_text(proxy_port, "workers = 1\nconnect_timeout = 500ms\n", body);
    cr_assert(proxy_start(&failover_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    free(body);
    return hole;
}

static void close_black_hole(int hole, const int *fillers)
{
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(hole);
}

/* Connections through the proxy, and how many of them waited for the
 * black hole's connect_timeout (500 ms) before reaching alpha. */
static int connections_that_waited(uint16_t proxy_port, int count)
{
    int slow = 0;
    for (int attempt = 0; attempt < count; attempt++) {
        long long start = monotonic_ms();
        char *reply = exchange_once(proxy_port, failover_hello.data, failover_hello.length, 5000, NULL);
        cr_expect(reply && strcmp(reply, "alpha\n") == 0, "connection %d: \"%s\"", attempt, reply ? reply : "");
        slow += monotonic_ms() - start >= 400;
        free(reply);
    }
    return slow;
}

Test(failover, failed_server_rests_for_fail_timeout, .init = integration_init, .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(49, 0);
    int fillers[4];
    int hole = start_hole_then_alpha(proxy_port, TEST_PORT(49, 1), TEST_PORT(49, 2), "5s", fillers);
    /* Round robin alternates the first pick: without passive health every
     * second connection would wait 500 ms for the black hole. */
    int slow = connections_that_waited(proxy_port, 6);
    cr_expect_leq(slow, 1, "%d of 6 connections waited for the failed server", slow);
    cr_expect_geq(slow, 1, "the black hole was never tried: round robin broken?");
    close_black_hole(hole, fillers);
    expect_clean_exit();
}

static long long hello_buffers(uint16_t stats_port, const char *state)
{
    char *series = text_format("snisplice_hello_buffers{state=\"%s\"}", state);
    long long value = stats_value(stats_port, series);
    free(series);
    return value;
}

/* Connections that wait for a server that never answers each hold their
 * hello in a buffer (io/hello_forward.c); past the per-worker cap the rest
 * keep theirs queued in the socket, and another route still works. Every
 * buffer is back when the connects have timed out. */
Test(failover, connect_flood_to_a_black_hole_holds_bounded_hello_buffers, .init = integration_init,
     .fini = failover_fini)
{
    integration_set_limit(60);
    enum { FLOOD = HELLO_BUFFER_POOL_OUT_MAX + 100 };
    uint16_t proxy_port = TEST_PORT(90, 0), hole_port = TEST_PORT(90, 1);
    uint16_t alpha_port = TEST_PORT(90, 2), stats_port = TEST_PORT(90, 3);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    struct hello_bytes dimension = hello_load_capture(HELLO_GNUTLS);
    cr_assert(failover_hello.data && dimension.data);
    int fillers[4];
    int hole = net_black_hole(hole_port, fillers, 4);
    cr_assert_geq(hole, 0, "no black hole on port %u", hole_port);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *body = routes_to_hole_and_alpha(hole_port, alpha_port);
    char *globals = text_format("workers = 1\nconnect_timeout = 4s\nmax_connections = 4000\n"
                                "stats = 127.0.0.1:%u\n", stats_port);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&failover_proxy, config, proxy_port), "snisplice did not start");

    static int clients[FLOOD];
    for (int i = 0; i < FLOOD; i++) {
        clients[i] = net_connect(proxy_port);
        cr_assert_geq(clients[i], 0, "client %d could not connect", i);
        cr_assert(net_send_all(clients[i], failover_hello.data, failover_hello.length));
    }
    long long deadline = monotonic_ms() + 5000;
    while (hello_buffers(stats_port, "in_use") < HELLO_BUFFER_POOL_OUT_MAX && monotonic_ms() < deadline)
        sleep_ms(20);
    sleep_ms(200);
    cr_expect_eq(hello_buffers(stats_port, "in_use"), HELLO_BUFFER_POOL_OUT_MAX,
                 "%d connections waiting for a connect should hold the cap of %d hello buffers",
                 FLOOD, HELLO_BUFFER_POOL_OUT_MAX);

    /* Buffers exhausted: this hello reaches its server through the relay. */
    unsigned finished_before = backend_finished(&alpha_backend);
    char *reply = exchange_once(proxy_port, dimension.data, dimension.length, 3000, NULL);
    cr_expect(reply && strcmp(reply, "alpha\n") == 0, "another route during the flood: got \"%s\"",
              reply ? reply : "(nothing)");
    if (reply && strcmp(reply, "alpha\n") == 0)
        expect_hello_arrived(&alpha_backend, finished_before, &dimension, "during the flood");
    free(reply);

    /* connect_timeout closes every flooded client, whichever way its hello waited. */
    int closed = 0;
    for (int i = 0; i < FLOOD; i++) {
        size_t received = 0;
        if (net_ms_until_closed(clients[i], monotonic_ms(), 8000, &received) >= 0 && received == 0)
            closed++;
        close(clients[i]);
    }
    cr_expect_eq(closed, FLOOD, "%d of %d flooded clients closed without bytes", closed, FLOOD);
    deadline = monotonic_ms() + 3000;
    while (hello_buffers(stats_port, "in_use") != 0 && monotonic_ms() < deadline)
        sleep_ms(20);
    cr_expect_eq(hello_buffers(stats_port, "in_use"), 0, "hello buffers still held after the flood");
    /* Their pages go back within two looks (HELLO_BUFFER_POOL_TRIM_MS apart). */
    deadline = monotonic_ms() + 2000;
    while (hello_buffers(stats_port, "idle") > HELLO_BUFFER_POOL_KEPT && monotonic_ms() < deadline)
        sleep_ms(20);
    cr_expect_leq(hello_buffers(stats_port, "idle"), HELLO_BUFFER_POOL_KEPT,
                  "the pages of the flood's hello buffers were not given back");

    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(hole);
    hello_free(&dimension);
    free(config);
    free(globals);
    free(body);
    expect_clean_exit();
}

/* A dead server left no trace without -v (nginx logs each failed connect
 * at error): now a warning names the upstream, the server and the error,
 * and says when a client found no server at all; at most one such line a
 * second per worker, so a dead server under load does not flood the log. */
Test(failover, a_failed_connect_is_logged_without_verbose, .init = integration_init, .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(176, 0), refused_port = TEST_PORT(176, 10);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(failover_hello.data);
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = dead\n[upstream dead]\nserver = 127.0.0.1:%u\n",
                             refused_port);
    char *config = config_text(proxy_port, "workers = 1\n", body);
    cr_assert(proxy_start(&failover_proxy, config, proxy_port), "snisplice did not start");
    expect_refused_and_closed(proxy_port, 3000, "the only server refuses");
    char *wanted = text_format("[warn] worker 0: upstream dead: connect to 127.0.0.1:%u: Connection refused",
                               refused_port);
    cr_expect(proxy_stderr_wait_for(&failover_proxy, wanted, 2000), "no warning \"%s\"", wanted);

    /* Twenty more within a second: no more lines than the seconds. */
    long long start = monotonic_ms();
    for (int i = 0; i < 20; i++)
        expect_refused_and_closed(proxy_port, 3000, "the only server refuses");
    long long seconds = (monotonic_ms() - start) / 1000 + 1;
    char *log = proxy_stderr(&failover_proxy);
    int lines = text_count(log, "[warn]");
    cr_expect_leq(lines, 1 + 2 * seconds, "%d warnings for 21 failed clients in %lld s:\n%s", lines, seconds, log);
    free(log);
    free(wanted);
    free(config);
    free(body);
    expect_clean_exit();
}

/* On a kernel without IPv6 (ipv6.disable=1, some VPS images) an IPv6
 * server cannot even have a socket: such a server is failed like one
 * that refuses, with a warning naming it and the error, and the next
 * server serves the client. A name with both an AAAA and an A record
 * (Debian's `localhost` is ::1 and 127.0.0.1) gives such an upstream.
 * Before, the client was closed at once as `no_resources`, with no line
 * in the log and no other server tried, on every turn of the IPv6
 * server. build/no_ipv6.so makes socket(AF_INET6) fail as that kernel
 * does. */
Test(failover, server_of_a_family_the_kernel_lacks_is_skipped, .init = integration_init, .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(191, 0), bravo_port = TEST_PORT(191, 1), ipv6_port = TEST_PORT(191, 10);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(failover_hello.data);
    cr_assert(backend_start(&bravo_backend, "bravo", bravo_port, NULL, NULL));
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = matrix\n"
                             "[upstream matrix]\nserver = [::1]:%u\nserver = 127.0.0.1:%u\n",
                             ipv6_port, bravo_port);
    char *config = config_text(proxy_port, "workers = 1\n", body);
    cr_assert(integration_preload("no_ipv6.so"), "build/no_ipv6.so missing (make test builds it)");
    bool started = proxy_start(&failover_proxy, config, proxy_port);
    unsetenv("LD_PRELOAD");
    cr_assert(started, "snisplice did not start");
    expect_every_connection_reaches(proxy_port, &failover_hello, &bravo_backend, "no IPv6 in the kernel");
    char *wanted = text_format("[warn] worker 0: upstream matrix: connect to [::1]:%u: "
                               "Address family not supported by protocol", ipv6_port);
    cr_expect(proxy_stderr_wait_for(&failover_proxy, wanted, 2000), "no warning \"%s\"", wanted);
    free(wanted);
    free(config);
    free(body);
    expect_clean_exit();
}

/* The server the next hello reaches, or "(closed)"; freed by the caller. */
static char *reached_by_next(uint16_t proxy_port)
{
    char *reply = exchange_once(proxy_port, failover_hello.data, failover_hello.length, 5000, NULL);
    return reply ? reply : strdup("(closed)\n");
}

/* A flapping server (refused, accepted, refused) reaches max_fails=2
 * within fail_timeout and rests, as nginx 1.22 rests it on the same
 * sequence: the connection it accepted in between used to clear its
 * failures, so it was never rested and every other client paid a failed
 * connect (a connect_timeout each, where it dropped SYNs). */
Test(failover, a_flapping_server_still_reaches_max_fails, .init = integration_init, .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(220, 0), alpha_port = TEST_PORT(220, 1), bravo_port = TEST_PORT(220, 2);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(failover_hello.data);
    cr_assert(backend_start(&bravo_backend, "bravo", bravo_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = flapping\n[upstream flapping]\n"
                             "server = 127.0.0.1:%u max_fails=2 fail_timeout=30s\n"
                             "server = 127.0.0.1:%u backup\n", alpha_port, bravo_port);
    char *config = config_text(proxy_port, "workers = 1\nconnect_timeout = 2s\n", body);
    cr_assert(proxy_start(&failover_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    free(body);

    const char *expected[] = { "bravo\n", "alpha\n", "bravo\n", "bravo\n" };
    for (int i = 0; i < 4; i++) {
        /* alpha refuses the even connections, accepts the odd ones. */
        if (i % 2)
            cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
        char *reply = reached_by_next(proxy_port);
        cr_expect_str_eq(reply, expected[i], "connection %d (alpha %s): reached %s", i,
                         i % 2 ? "accepting" : "refusing", reply);
        free(reply);
        backend_stop(&alpha_backend);
    }
    expect_clean_exit();
}

/* With max_fails=0 a refusing server is never rested, so a quarter of the
 * connections meet it first. nginx 1.22 retries each by its round robin
 * over the servers not tried yet, which spreads them: alpha, bravo and
 * charlie serve 4 of 12 each (measured side by side). They all used to
 * go to alpha, the server after it in config order: 6, 3 and 3. */
Test(failover, retries_are_spread_by_the_balance, .init = integration_init, .fini = failover_fini)
{
    static struct backend charlie_backend;
    uint16_t proxy_port = TEST_PORT(221, 0), refused_port = TEST_PORT(221, 10);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(failover_hello.data);
    cr_assert(backend_start(&alpha_backend, "alpha", TEST_PORT(221, 1), NULL, NULL));
    cr_assert(backend_start(&bravo_backend, "bravo", TEST_PORT(221, 2), NULL, NULL));
    cr_assert(backend_start(&charlie_backend, "charlie", TEST_PORT(221, 3), NULL, NULL));
    char *body = text_format("[routes]\ndefault = pool\n[upstream pool]\n"
                             "server = 127.0.0.1:%u max_fails=0\nserver = 127.0.0.1:%u max_fails=0\n"
                             "server = 127.0.0.1:%u max_fails=0\nserver = 127.0.0.1:%u max_fails=0\n",
                             refused_port, TEST_PORT(221, 1), TEST_PORT(221, 2), TEST_PORT(221, 3));
    char *config = config_text(proxy_port, "workers = 1\n", body);
    cr_assert(proxy_start(&failover_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    free(body);
    for (int i = 0; i < 12; i++) {
        char *reply = reached_by_next(proxy_port);
        cr_expect(strcmp(reply, "(closed)\n") != 0, "connection %d was closed", i);
        free(reply);
    }
    unsigned alpha = backend_accepted(&alpha_backend), bravo = backend_accepted(&bravo_backend);
    unsigned charlie = backend_accepted(&charlie_backend);
    cr_expect(alpha == 4 && bravo == 4 && charlie == 4,
              "alpha served %u, bravo %u, charlie %u of 12 (nginx: 4 each)", alpha, bravo, charlie);
    backend_stop(&charlie_backend);
    expect_clean_exit();
}

/* A black-holed server rests after one timeout; bravo, the other, is
 * full (max_conns=1, one client holds it). Every further client is
 * closed at once, as nginx 1.22 closes them ("no live upstreams"): finding
 * no server used to revive the resting one too, so every other client
 * waited connect_timeout for the server known dead. */
Test(failover, a_full_server_does_not_revive_a_dead_one, .init = integration_init, .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(222, 0), hole_port = TEST_PORT(222, 1), bravo_port = TEST_PORT(222, 2);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(failover_hello.data);
    int fillers[4];
    int hole = net_black_hole(hole_port, fillers, 4);
    cr_assert_geq(hole, 0, "no black hole on port %u", hole_port);
    cr_assert(backend_start(&bravo_backend, "bravo", bravo_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = pool\n[upstream pool]\n"
                             "server = 127.0.0.1:%u fail_timeout=30s\nserver = 127.0.0.1:%u max_conns=1\n",
                             hole_port, bravo_port);
    char *config = config_text(proxy_port, "workers = 1\nconnect_timeout = 1s\n", body);
    cr_assert(proxy_start(&failover_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    free(body);

    /* The black hole comes first in the round robin: this one waits it
     * out, then holds bravo open. */
    int holder = net_connect(proxy_port);
    cr_assert_geq(holder, 0);
    cr_assert(net_send_all(holder, failover_hello.data, failover_hello.length));
    char name[16] = { 0 };
    cr_assert_gt(recv(holder, name, sizeof name - 1, 0), 0, "the first client reached no server");
    cr_assert_str_eq(name, "bravo\n");

    for (int i = 0; i < 3; i++)
        expect_refused_and_closed(proxy_port, 500, "the dead server resting, the live one full");
    close(holder);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(hole);
    expect_clean_exit();
}

/* A connection whose retry was picked by the balance and which then
 * outlived a reload (its snapshot is no longer the worker's) goes on in
 * config order: it must still skip the servers it tried and try those it
 * has not. Pool: hole1 (weight 2), alpha, hole2 (weight 2). The round
 * robin picks hole1, then hole2 over alpha; a reload comes while hole2
 * times out. The config-order walk used to take its third step, hole2
 * again (another connect_timeout), and close the client: alpha, alive,
 * was never tried. */
Test(failover, a_reload_while_connecting_still_tries_every_server, .init = integration_init,
     .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(241, 0), hole1_port = TEST_PORT(241, 1), alpha_port = TEST_PORT(241, 2);
    uint16_t hole2_port = TEST_PORT(241, 3);
    failover_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(failover_hello.data);
    int fillers1[4], fillers2[4];
    int hole1 = net_black_hole(hole1_port, fillers1, 4);
    cr_assert_geq(hole1, 0, "no black hole on port %u", hole1_port);
    int hole2 = net_black_hole(hole2_port, fillers2, 4);
    cr_assert_geq(hole2, 0, "no black hole on port %u", hole2_port);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = pool\n[upstream pool]\nserver = 127.0.0.1:%u weight=2\n"
                             "server = 127.0.0.1:%u\nserver = 127.0.0.1:%u weight=2\n",
                             hole1_port, alpha_port, hole2_port);
    char *config = config_text(proxy_port, "workers = 1\nconnect_timeout = 1s\n", body);
    cr_assert(proxy_start(&failover_proxy, config, proxy_port), "snisplice did not start");

    int client = net_connect(proxy_port);
    cr_assert_geq(client, 0);
    cr_assert(net_send_all(client, failover_hello.data, failover_hello.length));
    /* hole1 timed out at 1 s; hole2 is being waited for until 2 s. */
    sleep_ms(1400);
    char *with_route = text_format("[routes]\nother.example.com = pool\n%s", body + strlen("[routes]\n"));
    char *reloaded = config_text(proxy_port, "workers = 1\nconnect_timeout = 1s\n", with_route);
    proxy_reload(&failover_proxy, reloaded);
    char name[16] = { 0 };
    size_t got = net_receive_exact(client, name, 6, 6000);
    cr_expect_str_eq(got ? name : "(closed)", "alpha\n", "the live server was never tried");
    close(client);
    for (int i = 0; i < 4; i++) {
        close(fillers1[i]);
        close(fillers2[i]);
    }
    close(hole1);
    close(hole2);
    free(with_route);
    free(reloaded);
    free(config);
    free(body);
    expect_clean_exit();
}

/* A reload forgot which servers rest: with a config manager reloading
 * every minute, a server that drops connections cost one client per
 * worker a connect_timeout after each reload. Its state now outlives the
 * reload (by upstream name and address), also when the servers are
 * listed in another order and a route is added. */
Test(failover, a_resting_server_keeps_resting_across_a_reload, .init = integration_init, .fini = failover_fini)
{
    uint16_t proxy_port = TEST_PORT(343, 0), hole_port = TEST_PORT(343, 1), alpha_port = TEST_PORT(343, 2);
    int fillers[4];
    int hole = start_hole_then_alpha(proxy_port, hole_port, alpha_port, "60s", fillers);
    cr_expect_eq(connections_that_waited(proxy_port, 4), 1, "the black hole was not tried once, then rested");

    char *reordered = text_format("[routes]\nother.example = alpha\ndefault = matrix\n"
                                  "[upstream alpha]\nserver = 127.0.0.1:%u\n[upstream matrix]\n"
                                  "server = 127.0.0.1:%u\nserver = 127.0.0.1:%u max_fails=1 fail_timeout=60s\n",
                                  alpha_port, alpha_port, hole_port);
    char *reloaded = config_text(proxy_port, "workers = 1\nconnect_timeout = 500ms\n", reordered);
    proxy_reload(&failover_proxy, reloaded);
    cr_assert(proxy_stderr_wait_for(&failover_proxy, "reloaded", 3000));
    sleep_ms(100);
    int slow = connections_that_waited(proxy_port, 6);
    cr_expect_eq(slow, 0, "%d of 6 connections after the reload waited for the resting server", slow);

    close_black_hole(hole, fillers);
    free(reloaded);
    free(reordered);
    expect_clean_exit();
}
