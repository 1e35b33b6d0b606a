/*
 * test_segments.c - packets snisplice saves on the wire, counted by the
 * receiving socket's TCP_INFO (tcpi_segs_in) and compared with the same
 * exchange without the proxy:
 *   - the upstream gets the hello in the segment that completes the
 *     handshake (client-side TCP_DEFER_ACCEPT on the connecting socket);
 *   - a plain forward does not hold that ACK: a server that speaks first
 *     sees the connection at once;
 *   - an upstream's last bytes and its FIN reach the client in one segment,
 *     as the upstream sent them;
 *   - reading on after POLLRDHUP loses nothing: a FIN behind megabytes
 *     still queued, then the other direction keeps flowing. (A hello in
 *     7-byte pieces with the FIN right behind, where one read takes only
 *     16 of the pieces, is in test_proxy_protocol.c and test_routing.c.)
 * Ports: block 87.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"
#include "../support/routed.h"

static struct routed segments_routed;

static void segments_fini(void)
{
    proxy_release(&segments_routed.proxy);
    integration_cleanup();
}

static int segments_in(int fd)
{
    struct tcp_info info;
    return net_tcp_info(fd, &info) ? (int)info.tcpi_segs_in : -1;
}

static atomic_int hello_segments; /* the backend's count once it had the hello */

static void start_routed(uint16_t proxy_port, uint16_t backend_port, const char *name,
                         backend_handler handler)
{
    cr_assert(routed_start(&segments_routed, proxy_port, backend_port, name, handler),
              "backend or snisplice did not start");
}

static void stop_routed(void)
{
    cr_expect_eq(routed_stop(&segments_routed), 0);
}

/* Read the hello, note how many segments it took to get here, answer. */
static void count_hello_segments(struct backend *backend, int fd, void *context)
{
    (void)backend;
    if (!routed_receive_hello(context, fd))
        return;
    atomic_store(&hello_segments, segments_in(fd));
    net_send_all(fd, "ok\n", 3);
}

/* Send the hello and wait for the answer; nothing else is sent, so the
 * backend's count holds only the handshake and the hello. */
static int hello_segments_via(uint16_t port)
{
    atomic_store(&hello_segments, 0);
    int fd = net_connect(port);
    cr_assert_geq(fd, 0);
    cr_assert(net_send_all(fd, segments_routed.hello.data, segments_routed.hello.length));
    char reply[4] = "";
    cr_assert_eq(net_receive_exact(fd, reply, 3, 5000), 3, "no reply via port %u", port);
    close(fd);
    return atomic_load(&hello_segments);
}

/* The most segments any of five exchanges through the proxy took. */
static int most_segments_via(int (*segments_via)(uint16_t port), uint16_t proxy_port)
{
    int most = 0;
    for (int i = 0; i < 5; i++) {
        int segments = segments_via(proxy_port);
        if (segments > most)
            most = segments;
    }
    return most;
}

Test(segments, upstream_gets_the_hello_with_the_handshake_ack, .init = integration_init,
     .fini = segments_fini)
{
    uint16_t proxy_port = TEST_PORT(87, 0), backend_port = TEST_PORT(87, 1);
    start_routed(proxy_port, backend_port, "hello", count_hello_segments);

    /* A client that connects and then sends: SYN, ACK, hello. */
    int direct = hello_segments_via(backend_port);
    int proxied = most_segments_via(hello_segments_via, proxy_port);
    cr_expect_lt(proxied, direct,
                 "the upstream got the hello in up to %d segments, a direct client takes %d: "
                 "the handshake's last ACK went out on its own", proxied, direct);
    stop_routed();
}

/* The held ACK is released by the first data or after 200 ms: a plain
 * forward, where the server may speak first, must never hold it. */
Test(segments, plain_forward_reaches_a_server_that_speaks_first_at_once, .init = integration_init,
     .fini = segments_fini)
{
    uint16_t sni_port = TEST_PORT(87, 2), plain_port = TEST_PORT(87, 3);
    uint16_t banner_port = TEST_PORT(87, 4);
    cr_assert(backend_start(&segments_routed.backend, "SSH-2.0-test", banner_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n"
                             "[listen ssh]\naddress = 127.0.0.1:%u\nupstream = ssh\n"
                             "[upstream ssh]\nserver = 127.0.0.1:%u\n",
                             banner_port, plain_port, banner_port);
    char *config = config_text(sni_port, NULL, body);
    cr_assert(proxy_start(&segments_routed.proxy, config, sni_port));
    /* proxy_start saw the SNI port listen; the plain port is bound next. */
    cr_assert(net_wait_listening(plain_port, 5000), "the plain forward never listened");
    for (int i = 0; i < 3; i++) {
        long long started = monotonic_ms();
        int fd = net_connect(plain_port);
        cr_assert_geq(fd, 0, "connect %d: %s", i, strerror(errno));
        char banner[14] = "";
        cr_expect_eq(net_receive_exact(fd, banner, 13, 1000), 13, "no banner");
        long long took = monotonic_ms() - started;
        cr_expect_lt(took, 150, "the banner took %lld ms: the connect's ACK was held", took);
        close(fd);
    }
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&segments_routed.proxy, 10000), 0);
}

/* Send the hello, read the reply (1 KiB and the FIN in one segment, from
 * routed_reply_and_close) to its end; segments received by then. */
static int reply_segments_via(uint16_t port)
{
    struct routed_exchange exchange = routed_short_exchange(&segments_routed, port);
    cr_assert_geq(exchange.fd, 0);
    cr_assert(exchange.eof && exchange.reply_bytes == ROUTED_REPLY_BYTES,
              "reply via port %u: %zu bytes, eof %d", port, exchange.reply_bytes, exchange.eof);
    int count = segments_in(exchange.fd);
    close(exchange.fd);
    return count;
}

Test(segments, last_bytes_and_fin_reach_the_client_in_one_segment, .init = integration_init,
     .fini = segments_fini)
{
    uint16_t proxy_port = TEST_PORT(87, 5), backend_port = TEST_PORT(87, 6);
    start_routed(proxy_port, backend_port, "reply", routed_reply_and_close);

    int direct = reply_segments_via(backend_port);
    /* At most as many: an ACK joining the data would only lower it. */
    int proxied = most_segments_via(reply_segments_via, proxy_port);
    cr_expect_leq(proxied, direct,
                  "the client got up to %d segments through the proxy, %d from the upstream itself",
                  proxied, direct);
    stop_routed();
}

#define BACKLOG_BYTES (8000 * 1000) /* a whole number of writes */
#define BACKLOG_WRITE 1000

static atomic_int tail_received; /* bytes the backend got after its FIN */

static char backlog_byte(size_t index) { return (char)('a' + index % 26); }

/* After the hello: 8 MB in 1000-byte writes and the FIN right behind,
 * then keep reading what the client sends. */
static void backlog_then_fin(struct backend *backend, int fd, void *context)
{
    (void)backend;
    static _Thread_local char buffer[4096];
    if (!routed_receive_hello(context, fd))
        return;
    net_set_timeouts(fd, 10000);
    for (size_t sent = 0; sent < BACKLOG_BYTES; sent += BACKLOG_WRITE) {
        char piece[BACKLOG_WRITE];
        for (size_t j = 0; j < BACKLOG_WRITE; j++)
            piece[j] = backlog_byte(sent + j);
        if (!net_send_all(fd, piece, sizeof piece))
            return;
    }
    shutdown(fd, SHUT_WR);
    ssize_t got;
    while ((got = recv(fd, buffer, sizeof buffer, 0)) > 0)
        atomic_fetch_add(&tail_received, (int)got);
}

/* The client reads nothing for a while, so the upstream's bytes and FIN
 * pile up in the proxy's socket: once the client reads, the relay meets a
 * source that said POLLRDHUP with far more queued than one read takes (a
 * pipe has 16 slots). Every byte must still arrive, then the end of
 * stream, and the client's direction must keep flowing after it. */
Test(segments, fin_behind_a_backlog_loses_nothing, .init = integration_init, .fini = segments_fini)
{
    uint16_t proxy_port = TEST_PORT(87, 7), backend_port = TEST_PORT(87, 8);
    start_routed(proxy_port, backend_port, "backlog", backlog_then_fin);
    static char got[BACKLOG_BYTES + 16];

    for (int round = 0; round < 2; round++) {
        atomic_store(&tail_received, 0);
        int fd = net_connect(proxy_port);
        cr_assert_geq(fd, 0);
        net_set_timeouts(fd, 10000);
        cr_assert(net_send_all(fd, segments_routed.hello.data, segments_routed.hello.length));
        sleep_ms(300);
        struct net_receive_result result = net_receive_until_closed(fd, got, sizeof got, 10000);
        cr_assert(result.eof, "round %d: no end of stream after %zu bytes", round, result.total);
        cr_assert_eq(result.total, BACKLOG_BYTES, "round %d: %zu bytes", round, result.total);
        for (size_t i = 0; i < result.total; i++)
            cr_assert_eq(got[i], backlog_byte(i), "round %d: byte %zu changed", round, i);
        /* Half-close: the client's direction still reaches the upstream. */
        cr_assert(net_send_all(fd, "after the fin", 13));
        shutdown(fd, SHUT_WR);
        size_t ignored = 0;
        cr_expect_geq(net_ms_until_closed(fd, monotonic_ms(), 3000, &ignored), 0);
        close(fd);
        for (int waited = 0; atomic_load(&tail_received) < 13 && waited < 3000; waited += 10)
            sleep_ms(10);
        cr_expect_eq(atomic_load(&tail_received), 13, "round %d: the upstream got %d bytes after its FIN",
                     round, atomic_load(&tail_received));
    }
    stop_routed();
}
