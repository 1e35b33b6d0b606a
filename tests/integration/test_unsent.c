/*
 * test_unsent.c - what a reader slower than its writer leaves queued in
 * snisplice's sockets. Every relay socket keeps at most 32 KiB it has not
 * sent yet (TCP_NOTSENT_LOWAT, io/relay.h): the proxy sends the rest
 * itself when the reader makes room, instead of leaving its whole send
 * buffer, megabytes, in the kernel for the reader's ACKs to release.
 * Checked in both directions on the proxy's own socket (a duplicate taken
 * with pidfd_getfd, read with TCP_INFO), then the whole stream must still
 * arrive intact.
 * Behind a listener on an address other than loopback the client's socket
 * has no such limit (a real path's client, see the last tests).
 * Ports: blocks 89 and 380.
 */
#include <criterion/criterion.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/byte_stream.h"
#include "../support/integration.h"
#include "../support/routed.h"
#include "../support/transfer.h"

#define STREAM_BYTES (16u * 1024 * 1024)
/* The proxy's limit (32 KiB) plus one segment it may queue beyond it
 * (up to 64 KiB on loopback), with room to spare. Without the limit the
 * socket holds its whole send buffer: megabytes. */
#define UNSENT_AT_MOST (256u * 1024)
#define STALL_MS 300
/* io/relay.h's RELAY_UNSENT_LOW_WATER, as the kernel reports it back. */
#define RELAY_UNSENT_LOW_WATER_TEST (32 * 1024)

static struct routed unsent_routed;

static void unsent_fini(void)
{
    proxy_release(&unsent_routed.proxy);
    integration_cleanup();
}

TestSuite(unsent, .init = integration_init, .fini = unsent_fini);

/* Bytes queued in the proxy's socket to 127.0.0.1:peer_port that it has
 * not sent yet; fails the test if that socket cannot be found. */
static uint32_t proxy_unsent_bytes(uint16_t peer_port)
{
    int fd = proxy_socket_with_peer(&unsent_routed.proxy, peer_port);
    cr_assert_geq(fd, 0, "no socket of the proxy with peer port %u (or pidfd_getfd refused)", peer_port);
    struct tcp_info info;
    bool got = net_tcp_info(fd, &info);
    close(fd);
    cr_assert(got, "TCP_INFO of the proxy's socket");
    cr_log_info("the proxy's socket to port %u holds %u unsent bytes", peer_port,
                info.tcpi_notsent_bytes);
    return info.tcpi_notsent_bytes;
}

static uint16_t local_port(int fd)
{
    struct sockaddr_in address;
    socklen_t length = sizeof address;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&address, &length), 0);
    return ntohs(address.sin_port);
}

/* ---- download: the backend streams, the client does not read yet ---- */

static void stream_down(struct backend *backend, int fd, void *context)
{
    (void)backend;
    if (!routed_receive_hello(context, fd))
        return;
    net_set_timeouts(fd, 20000);
    uint64_t checksum;
    if (byte_stream_send(fd, TRANSFER_SEED_DOWN, STREAM_BYTES, 0, 0, &checksum) == STREAM_BYTES)
        shutdown(fd, SHUT_WR);
}

Test(unsent, slow_client_leaves_little_unsent_in_the_proxy)
{
    uint16_t port = TEST_PORT(89, 0);
    cr_assert(routed_start(&unsent_routed, port, TEST_PORT(89, 1), "stream-down", stream_down));
    int fd = net_connect(port);
    cr_assert_geq(fd, 0);
    cr_assert(net_send_all(fd, unsent_routed.hello.data, unsent_routed.hello.length));
    sleep_ms(STALL_MS); /* every buffer on the way fills; the backend blocks */

    uint32_t unsent = proxy_unsent_bytes(local_port(fd));
    cr_expect_leq(unsent, UNSENT_AT_MOST, "the proxy holds %u unsent bytes for a client that does not read",
                  unsent);

    net_set_timeouts(fd, 10000);
    struct byte_stream_verifier verifier;
    byte_stream_verifier_init(&verifier, TRANSFER_SEED_DOWN);
    uint64_t received = byte_stream_receive(fd, &verifier, STREAM_BYTES);
    char after;
    cr_expect_eq(received, STREAM_BYTES);
    cr_expect_eq(verifier.first_mismatch, UINT64_MAX, "byte %llu differs",
                 (unsigned long long)verifier.first_mismatch);
    cr_expect_eq(recv(fd, &after, 1, 0), 0, "no end of stream after the stream");
    close(fd);
    cr_expect_eq(routed_stop(&unsent_routed), 0);
}

/* ---- upload: the client streams, the backend does not read yet ---- */

static atomic_bool backend_may_read;
static _Atomic uint64_t backend_received;
static _Atomic uint64_t backend_mismatch;
static atomic_bool backend_saw_end;

static void read_when_allowed(struct backend *backend, int fd, void *context)
{
    if (!routed_receive_hello(context, fd))
        return;
    /* Until the test has looked, or gives up (then the backend stops). */
    for (int waited = 0; waited < 10000; waited += 10) {
        if (atomic_load(&backend_may_read) || atomic_load(&backend->stopping))
            break;
        sleep_ms(10);
    }
    net_set_timeouts(fd, 10000);
    struct byte_stream_verifier verifier;
    byte_stream_verifier_init(&verifier, TRANSFER_SEED_UP);
    atomic_store(&backend_received, byte_stream_receive(fd, &verifier, STREAM_BYTES));
    atomic_store(&backend_mismatch, verifier.first_mismatch);
    char after;
    atomic_store(&backend_saw_end, recv(fd, &after, 1, 0) == 0);
}

struct upload {
    int fd;
    uint64_t sent;
};

static void *send_stream(void *argument)
{
    struct upload *upload = argument;
    uint64_t checksum;
    upload->sent = byte_stream_send(upload->fd, TRANSFER_SEED_UP, STREAM_BYTES, 0, 0, &checksum);
    shutdown(upload->fd, SHUT_WR);
    return NULL;
}

Test(unsent, slow_upstream_leaves_little_unsent_in_the_proxy)
{
    uint16_t port = TEST_PORT(89, 2), backend_port = TEST_PORT(89, 3);
    atomic_store(&backend_may_read, false);
    atomic_store(&backend_received, 0);
    atomic_store(&backend_saw_end, false);
    cr_assert(routed_start(&unsent_routed, port, backend_port, "read-late", read_when_allowed));
    struct upload upload = {.fd = net_connect(port), .sent = 0};
    cr_assert_geq(upload.fd, 0);
    cr_assert(net_send_all(upload.fd, unsent_routed.hello.data, unsent_routed.hello.length));
    net_set_timeouts(upload.fd, 20000);
    pthread_t sender;
    cr_assert_eq(pthread_create(&sender, NULL, send_stream, &upload), 0);
    sleep_ms(STALL_MS); /* every buffer on the way fills; the client blocks */

    uint32_t unsent = proxy_unsent_bytes(backend_port);
    atomic_store(&backend_may_read, true);
    pthread_join(sender, NULL);
    cr_expect_leq(unsent, UNSENT_AT_MOST, "the proxy holds %u unsent bytes for a server that does not read",
                  unsent);
    cr_expect_eq(upload.sent, STREAM_BYTES);

    char answer;
    net_set_timeouts(upload.fd, 10000);
    cr_expect_eq(recv(upload.fd, &answer, 1, 0), 0, "the backend's end of stream reaches the client");
    close(upload.fd);
    cr_expect_eq(atomic_load(&backend_received), STREAM_BYTES);
    cr_expect_eq(atomic_load(&backend_mismatch), UINT64_MAX);
    cr_expect(atomic_load(&backend_saw_end), "the client's end of stream reaches the backend");
    cr_expect_eq(routed_stop(&unsent_routed), 0);
}

/* ---- the client leg's limit: only where the client is on this host ---- */

/* TCP_NOTSENT_LOWAT of the proxy's socket to the client connected from
 * client_port (0: none set). */
static int proxy_client_unsent_limit(uint16_t client_port)
{
    int fd = proxy_socket_with_peer(&unsent_routed.proxy, client_port);
    cr_assert_geq(fd, 0, "no socket of the proxy with peer port %u (or pidfd_getfd refused)", client_port);
    int limit = -1;
    socklen_t length = sizeof limit;
    int got = getsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &limit, &length);
    close(fd);
    cr_assert_eq(got, 0, "TCP_NOTSENT_LOWAT of the proxy's socket");
    return limit;
}

/* Start snisplice on listen_host:port (its backend on port + 1), relay
 * one short exchange and return the client socket's limit, read while the
 * client still holds its end open. */
static int client_unsent_limit_behind(const char *listen_host, uint16_t port)
{
    cr_assert(routed_start_on(&unsent_routed, listen_host, port, (uint16_t)(port + 1), "reply",
                              routed_reply_and_close));
    struct routed_exchange exchange = routed_short_exchange(&unsent_routed, port);
    cr_assert_geq(exchange.fd, 0);
    cr_assert(exchange.eof && exchange.reply_bytes == ROUTED_REPLY_BYTES, "the reply came whole (%zu bytes)",
              exchange.reply_bytes);
    int limit = proxy_client_unsent_limit(local_port(exchange.fd));
    close(exchange.fd);
    cr_expect_eq(routed_stop(&unsent_routed), 0);
    return limit;
}

/* A listener on an address other than loopback serves clients across a
 * real path. There the limit cost 35-40% of a download's throughput at
 * 1% loss and 50 ms (bench/NOTES.md, twentieth session): the client's
 * socket relays with the kernel's default, as nginx's and a server's own
 * do. (A client reaching it over loopback shows what such a listener's
 * sockets get.) */
Test(unsent, client_of_a_wildcard_listener_has_no_unsent_limit)
{
    int limit = client_unsent_limit_behind("0.0.0.0", TEST_PORT(380, 0));
    cr_expect_eq(limit, 0, "the client's socket has TCP_NOTSENT_LOWAT %d", limit);
}

/* Behind a loopback listener the client is on this host, where the limit
 * moves the proxy's send work off its peer's CPU (relay.h): kept. */
Test(unsent, client_of_a_loopback_listener_keeps_the_unsent_limit)
{
    int limit = client_unsent_limit_behind("127.0.0.1", TEST_PORT(380, 2));
    cr_expect_eq(limit, RELAY_UNSENT_LOW_WATER_TEST, "the client's socket has TCP_NOTSENT_LOWAT %d", limit);
}
