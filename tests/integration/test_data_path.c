/*
 * test_data_path.c - what the relay guarantees: the hello arrives unchanged
 * exactly once, both directions are byte-exact at volume, half-closes
 * propagate each way while the other direction keeps flowing, and garbage
 * on one connection neither reaches an upstream nor disturbs another
 * connection. Ports: blocks 1-4.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"
#include "../support/transfer.h"

#define MIB (1024u * 1024u)

static struct proxy data_proxy;
static struct backend data_backend;
static struct backend sink_backend;
static struct transfer data_transfer;
static struct hello_bytes data_hello;

static void data_fini(void)
{
    proxy_release(&data_proxy);
    integration_cleanup();
    hello_free(&data_hello);
}

static void start_proxy_routing_matrix_to(uint16_t proxy_port, const char *global_lines,
                                          uint16_t matrix_port, uint16_t default_port)
{
    char *body = text_format("[routes]\n"
                             "matrix.exceptionerror.io = matrix\n"
                             "default = 127.0.0.1:%u\n"
                             "[upstream matrix]\nserver = 127.0.0.1:%u\n",
                             default_port, matrix_port);
    char *config = config_text(proxy_port, global_lines, body);
    cr_assert(proxy_start(&data_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    free(body);
}

static void expect_clean_exit(void)
{
    int status = proxy_stop(&data_proxy, 10000);
    char *log = proxy_stderr(&data_proxy);
    cr_expect_eq(status, 0, "snisplice exit %d, stderr:\n%s", status, log);
    free(log);
}

static void load_chromium_hello(void)
{
    data_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(data_hello.data, "cannot read the Chromium capture under %s",
                       hello_shared_directory());
}

Test(data_path, sixty_four_mib_each_way_byte_exact, .init = integration_init, .fini = data_fini)
{
    uint16_t proxy_port = TEST_PORT(1, 0), backend_port = TEST_PORT(1, 1);
    load_chromium_hello();
    struct transfer_plan plan = {.hello = &data_hello, .client_bytes = 64 * MIB,
                                 .backend_bytes = 64 * MIB};
    transfer_init(&data_transfer, &plan, proxy_port);
    cr_assert(backend_start(&data_backend, "transfer", backend_port, transfer_backend_handler,
                            &data_transfer));
    start_proxy_routing_matrix_to(proxy_port, NULL, backend_port, TEST_PORT(1, 2));

    transfer_client_start(&data_transfer);
    transfer_client_join(&data_transfer);
    cr_expect(transfer_backend_wait(&data_transfer, 10000), "backend side never finished");
    char description[768];
    transfer_describe(&data_transfer, description, sizeof description);
    cr_expect(transfer_succeeded(&data_transfer), "%s", description);
    cr_expect_eq(backend_accepted(&data_backend), 1, "exactly one upstream connection");
    expect_clean_exit();
}

/* Client half-closes first: the backend sees EOF, then answers and closes. */
struct half_close_state {
    bool hello_matched;
    uint64_t request_received;
    uint64_t request_mismatch;
    bool request_eof;
    uint64_t reply_sent;
    atomic_bool done;
};

static struct half_close_state half_close;

#define REQUEST_BYTES (256u * 1024u)
#define REPLY_BYTES (1u * MIB)
#define LATE_UPLOAD_BYTES (4u * MIB)

static bool half_close_backend_finished(void)
{
    long long deadline = monotonic_ms() + 10000;
    while (!atomic_load(&half_close.done) && monotonic_ms() < deadline)
        sleep_ms(5);
    return atomic_load(&half_close.done);
}

static bool receive_hello_exactly(int fd)
{
    uint8_t *first = malloc(data_hello.length);
    size_t got = net_receive_exact(fd, first, data_hello.length, 10000);
    bool matched = got == data_hello.length && memcmp(first, data_hello.data, got) == 0;
    free(first);
    return matched;
}

/* Reads stream SEED_UP until EOF; returns bytes, sets *mismatch and *eof. */
static uint64_t receive_stream_until_eof(int fd, uint64_t *mismatch, bool *eof)
{
    struct byte_stream_verifier verifier;
    byte_stream_verifier_init(&verifier, TRANSFER_SEED_UP);
    uint64_t received = byte_stream_receive(fd, &verifier, UINT64_MAX);
    *mismatch = verifier.first_mismatch;
    uint8_t probe;
    *eof = recv(fd, &probe, 1, MSG_DONTWAIT) == 0;
    return received;
}

static void reply_after_eof_handler(struct backend *backend, int fd, void *context)
{
    net_set_timeouts(fd, 10000);
    half_close.hello_matched = receive_hello_exactly(fd);
    half_close.request_received =
        receive_stream_until_eof(fd, &half_close.request_mismatch, &half_close.request_eof);
    half_close.reply_sent = byte_stream_send(fd, TRANSFER_SEED_DOWN, REPLY_BYTES, 0, 0, NULL);
    atomic_store(&half_close.done, true);
}

Test(data_path, client_half_close_still_gets_the_reply, .init = integration_init, .fini = data_fini)
{
    uint16_t proxy_port = TEST_PORT(2, 0), backend_port = TEST_PORT(2, 1);
    load_chromium_hello();
    cr_assert(backend_start(&data_backend, "reply", backend_port, reply_after_eof_handler, NULL));
    start_proxy_routing_matrix_to(proxy_port, NULL, backend_port, TEST_PORT(2, 2));

    int fd = net_connect(proxy_port);
    cr_assert(fd >= 0);
    net_set_timeouts(fd, 10000);
    cr_assert(net_send_all(fd, data_hello.data, data_hello.length));
    cr_assert_eq(byte_stream_send(fd, TRANSFER_SEED_UP, REQUEST_BYTES, 4096, 0, NULL),
                 REQUEST_BYTES);
    shutdown(fd, SHUT_WR);

    struct byte_stream_verifier verifier;
    byte_stream_verifier_init(&verifier, TRANSFER_SEED_DOWN);
    uint64_t received = byte_stream_receive(fd, &verifier, UINT64_MAX);
    close(fd);

    cr_assert(half_close_backend_finished(), "backend handler never finished");
    cr_expect(half_close.hello_matched, "backend did not receive the hello verbatim");
    cr_expect(half_close.request_eof && half_close.request_received == REQUEST_BYTES &&
                  half_close.request_mismatch == UINT64_MAX,
              "backend got %llu of %u request bytes (eof %d, first mismatch %lld)",
              (unsigned long long)half_close.request_received, REQUEST_BYTES,
              half_close.request_eof, (long long)half_close.request_mismatch);
    cr_expect(received == REPLY_BYTES && verifier.first_mismatch == UINT64_MAX,
              "client got %llu of %u reply bytes after its half-close (first mismatch %lld)",
              (unsigned long long)received, REPLY_BYTES, (long long)verifier.first_mismatch);
    backend_stop(&data_backend);
    expect_clean_exit();
}

/* Backend half-closes first, then keeps reading what the client still sends. */
static void send_then_half_close_handler(struct backend *backend, int fd, void *context)
{
    net_set_timeouts(fd, 10000);
    half_close.hello_matched = receive_hello_exactly(fd);
    half_close.reply_sent = byte_stream_send(fd, TRANSFER_SEED_DOWN, REPLY_BYTES, 0, 0, NULL);
    shutdown(fd, SHUT_WR);
    half_close.request_received =
        receive_stream_until_eof(fd, &half_close.request_mismatch, &half_close.request_eof);
    atomic_store(&half_close.done, true);
}

Test(data_path, backend_half_close_lets_client_keep_sending, .init = integration_init,
     .fini = data_fini)
{
    uint16_t proxy_port = TEST_PORT(3, 0), backend_port = TEST_PORT(3, 1);
    load_chromium_hello();
    cr_assert(backend_start(&data_backend, "upload", backend_port, send_then_half_close_handler,
                            NULL));
    start_proxy_routing_matrix_to(proxy_port, NULL, backend_port, TEST_PORT(3, 2));

    int fd = net_connect(proxy_port);
    cr_assert(fd >= 0);
    net_set_timeouts(fd, 10000);
    cr_assert(net_send_all(fd, data_hello.data, data_hello.length));
    struct byte_stream_verifier verifier;
    byte_stream_verifier_init(&verifier, TRANSFER_SEED_DOWN);
    uint64_t received = byte_stream_receive(fd, &verifier, UINT64_MAX);
    cr_expect(received == REPLY_BYTES && verifier.first_mismatch == UINT64_MAX,
              "client got %llu of %u bytes before EOF (first mismatch %lld)",
              (unsigned long long)received, REPLY_BYTES, (long long)verifier.first_mismatch);

    uint64_t sent = byte_stream_send(fd, TRANSFER_SEED_UP, LATE_UPLOAD_BYTES, 256 * 1024, 20, NULL);
    cr_expect_eq(sent, LATE_UPLOAD_BYTES, "sending after the backend's EOF failed at %llu",
                 (unsigned long long)sent);
    shutdown(fd, SHUT_WR);
    long long closed_after = net_ms_until_closed(fd, monotonic_ms(), 5000, NULL);
    close(fd);

    cr_assert(half_close_backend_finished(), "backend handler never finished");
    cr_expect(half_close.hello_matched, "backend did not receive the hello verbatim");
    cr_expect(half_close.request_eof && half_close.request_received == LATE_UPLOAD_BYTES &&
                  half_close.request_mismatch == UINT64_MAX,
              "backend got %llu of %u bytes sent after its half-close (eof %d, mismatch %lld)",
              (unsigned long long)half_close.request_received, LATE_UPLOAD_BYTES,
              half_close.request_eof, (long long)half_close.request_mismatch);
    cr_expect_geq(closed_after, 0, "connection not closed after both sides finished");
    backend_stop(&data_backend);
    expect_clean_exit();
}

/* Send bytes on a fresh connection; ms until the proxy closed it (-1: never), bytes received. */
static long long garbage_closed_after(uint16_t proxy_port, const uint8_t *bytes, size_t length,
                                      size_t *received)
{
    int fd = net_connect(proxy_port);
    cr_assert(fd >= 0, "connect to the proxy failed");
    net_set_timeouts(fd, 3000);
    long long start = monotonic_ms();
    net_send_all(fd, bytes, length); /* the proxy may close before it has all of it */
    long long closed_after = net_ms_until_closed(fd, start, 3000, received);
    close(fd);
    return closed_after;
}

Test(data_path, garbage_is_closed_without_disturbing_a_transfer, .init = integration_init,
     .fini = data_fini)
{
    uint16_t proxy_port = TEST_PORT(4, 0), backend_port = TEST_PORT(4, 1);
    uint16_t sink_port = TEST_PORT(4, 2);
    load_chromium_hello();
    struct transfer_plan plan = {.hello = &data_hello, .client_bytes = 32 * MIB,
                                 .backend_bytes = 32 * MIB, .backend_chunk = 256 * 1024,
                                 .backend_pause_ms = 25};
    transfer_init(&data_transfer, &plan, proxy_port);
    cr_assert(backend_start(&data_backend, "transfer", backend_port, transfer_backend_handler,
                            &data_transfer));
    cr_assert(backend_start(&sink_backend, "sink", sink_port, NULL, NULL));
    start_proxy_routing_matrix_to(proxy_port, "preread_timeout = 1s\npreread_max = 16k\n",
                                  backend_port, sink_port);

    transfer_client_start(&data_transfer);
    long long deadline = monotonic_ms() + 10000;
    while (atomic_load(&data_transfer.client.received) < MIB && monotonic_ms() < deadline)
        sleep_ms(5);
    cr_assert_geq(atomic_load(&data_transfer.client.received), MIB, "transfer never started");

    const char *bad_names[] = {"bad/host.example.com", "exa mple.com", "ctl\x01.example.com",
                               "matrix.exceptionerror.io\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        struct hello_bytes bad = hello_build(bad_names[i]);
        size_t received = 0;
        long long closed_after = garbage_closed_after(proxy_port, bad.data, bad.length, &received);
        cr_expect(closed_after >= 0 && closed_after <= 2000 && received == 0,
                  "hello with SNI \"%s\": closed after %lld ms, %zu bytes came back",
                  bad_names[i], closed_after, received);
        hello_free(&bad);
    }
    cr_expect_eq(backend_accepted(&sink_backend), 0,
                 "an invalid SNI reached the default upstream");

    /* A one-record hello whose ClientHello body claims 3 bytes. */
    uint8_t lying[69] = {0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x03};
    byte_stream_fill(7, 0, lying + 9, sizeof lying - 9);
    size_t received = 0;
    long long closed_after = garbage_closed_after(proxy_port, lying, sizeof lying, &received);
    cr_expect(closed_after >= 0 && closed_after <= 2000 && received == 0,
              "hello with a lying length: closed after %lld ms, %zu bytes came back",
              closed_after, received);
    /* Random bytes behind a TLS handshake record header, more than preread_max. */
    size_t noise_length = 20000;
    uint8_t *noise = malloc(noise_length);
    byte_stream_fill(11, 0, noise, noise_length);
    memcpy(noise, "\x16\x03\x01", 3);
    closed_after = garbage_closed_after(proxy_port, noise, noise_length, &received);
    cr_expect(closed_after >= 0 && closed_after <= 2500 && received == 0,
              "random bytes after 16 03 01: closed after %lld ms, %zu bytes came back",
              closed_after, received);
    free(noise);
    cr_expect_eq(backend_accepted(&sink_backend), 0, "garbage reached the default upstream");

    cr_expect_lt(atomic_load(&data_transfer.client.received), 32 * MIB,
                 "transfer finished before the garbage was sent: test proves nothing");
    transfer_client_join(&data_transfer);
    cr_expect(transfer_backend_wait(&data_transfer, 10000), "backend side never finished");
    char description[768];
    transfer_describe(&data_transfer, description, sizeof description);
    cr_expect(transfer_succeeded(&data_transfer), "%s", description);
    expect_clean_exit();
}
