/*
 * test_timeouts.c - preread_timeout protects the proxy from clients that
 * connect and then send nothing or only part of a hello: they are closed
 * after the timeout and never reach an upstream; one that leaves in the
 * middle of its hello is closed at once. idle_timeout closes a relayed
 * connection on which nothing moves, and never one that is still
 * delivering to a slow reader. A listener's own preread_timeout and
 * idle_timeout apply to its clients only. Ports: blocks 11-12, 19, 95-96,
 * 114.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy timeout_proxy;
static struct backend alpha_backend;

static void timeout_fini(void)
{
    proxy_release(&timeout_proxy);
    integration_cleanup();
}

/* The proxy with `globals`, every name routed to alpha (handler NULL:
 * an identifying backend). */
static void start_proxy_to_alpha(uint16_t proxy_port, uint16_t alpha_port, backend_handler handler,
                                 const char *globals)
{
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, handler, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", alpha_port);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(proxy_start(&timeout_proxy, config, proxy_port), "snisplice did not start");
    free(config);
    free(body);
}

static void start_proxy_with_timeout(uint16_t proxy_port, uint16_t alpha_port, const char *timeout)
{
    char *globals = text_format("preread_timeout = %s\n", timeout);
    start_proxy_to_alpha(proxy_port, alpha_port, NULL, globals);
    free(globals);
}

static void start_proxy_with_default(uint16_t proxy_port, uint16_t alpha_port)
{
    start_proxy_with_timeout(proxy_port, alpha_port, "500ms");
}

static void expect_closed_after_preread_timeout(uint16_t proxy_port, const void *partial,
                                                size_t length, const char *what)
{
    int fd = net_connect(proxy_port);
    cr_assert(fd >= 0);
    long long start = monotonic_ms();
    if (length > 0)
        cr_assert(net_send_all(fd, partial, length));
    size_t received = 0;
    long long closed_after = net_ms_until_closed(fd, start, 5000, &received);
    close(fd);
    /* A client that sent nothing is only accepted after the listener's
     * 1 s TCP_DEFER_ACCEPT, then waits preread_timeout like the others. */
    long long expected = length > 0 ? 500 : 1500;
    cr_expect(closed_after >= expected - 200 && closed_after <= expected + 2500,
              "%s: closed after %lld ms, want about %lld", what, closed_after, expected);
    cr_expect_eq(received, 0, "%s: %zu bytes came back", what, received);
}

static void expect_clean_exit(void)
{
    int status = proxy_stop(&timeout_proxy, 10000);
    char *log = proxy_stderr(&timeout_proxy);
    cr_expect_eq(status, 0, "snisplice exit %d, stderr:\n%s", status, log);
    free(log);
}

Test(timeouts, silent_client_is_closed_after_preread_timeout, .init = integration_init,
     .fini = timeout_fini)
{
    uint16_t proxy_port = TEST_PORT(11, 0);
    start_proxy_with_default(proxy_port, TEST_PORT(11, 1));
    expect_closed_after_preread_timeout(proxy_port, NULL, 0, "silent client");
    cr_expect_eq(backend_accepted(&alpha_backend), 0, "a silent client reached an upstream");
    expect_clean_exit();
}

Test(timeouts, half_a_hello_is_closed_after_preread_timeout, .init = integration_init,
     .fini = timeout_fini)
{
    uint16_t proxy_port = TEST_PORT(12, 0);
    start_proxy_with_default(proxy_port, TEST_PORT(12, 1));
    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(chromium.data);
    expect_closed_after_preread_timeout(proxy_port, chromium.data, chromium.length / 2,
                                        "half a Chromium hello");
    expect_closed_after_preread_timeout(proxy_port, chromium.data, 3, "three bytes of a hello");
    cr_expect_eq(backend_accepted(&alpha_backend), 0, "an incomplete hello reached an upstream");
    hello_free(&chromium);
    expect_clean_exit();
}

/* The hello is left queued in the client socket while it is incomplete and
 * the proxy waits for "more than what is queued": end of stream must still
 * wake it, long before the 5 s preread timeout. */
Test(timeouts, client_leaving_mid_hello_is_closed_at_once, .init = integration_init,
     .fini = timeout_fini)
{
    uint16_t proxy_port = TEST_PORT(19, 0);
    start_proxy_with_timeout(proxy_port, TEST_PORT(19, 1), "5s");
    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(chromium.data);
    int fd = net_connect(proxy_port);
    cr_assert(fd >= 0);
    cr_assert(net_send_all(fd, chromium.data, 100));
    sleep_ms(100);
    cr_assert(net_send_all(fd, chromium.data + 100, 100));
    sleep_ms(100);
    long long start = monotonic_ms();
    shutdown(fd, SHUT_WR);
    size_t received = 0;
    long long closed_after = net_ms_until_closed(fd, start, 6000, &received);
    close(fd);
    cr_expect(closed_after >= 0 && closed_after < 2000,
              "closed %lld ms after the client's FIN; want well before the 5 s preread timeout",
              closed_after);
    cr_expect_eq(received, 0);
    cr_expect_eq(backend_accepted(&alpha_backend), 0, "an incomplete hello reached an upstream");
    hello_free(&chromium);
    expect_clean_exit();
}

/* idle_timeout: a relayed connection on which nothing moves either way
 * is closed after the timeout. */
Test(timeouts, idle_relayed_connection_is_closed_after_idle_timeout, .init = integration_init,
     .fini = timeout_fini)
{
    uint16_t proxy_port = TEST_PORT(95, 0), alpha_port = TEST_PORT(95, 1);
    start_proxy_to_alpha(proxy_port, alpha_port, NULL, "idle_timeout = 1s\n");
    struct hello_bytes hello = hello_build("idle.example.net");
    int fd = net_connect(proxy_port);
    cr_assert(fd >= 0);
    cr_assert(net_send_all(fd, hello.data, hello.length));
    char name[6];
    cr_assert_eq(net_receive_exact(fd, name, sizeof name, 5000), sizeof name, "no answer from the backend");
    long long start = monotonic_ms();
    size_t received = 0;
    long long closed_after = net_ms_until_closed(fd, start, 5000, &received);
    close(fd);
    cr_expect(closed_after >= 900 && closed_after <= 2500, "idle connection closed after %lld ms, want about 1000",
              closed_after);
    hello_free(&hello);
    expect_clean_exit();
}

#define SLOW_DOWNLOAD_BYTES (2u << 20)
#define SLOW_DOWNLOAD_SEED 95

/* The server sends its whole answer at once, then waits for the client to
 * leave (it must read the hello first: closing over unread bytes resets). */
static void send_download(struct backend *backend, int fd, void *context)
{
    (void)backend, (void)context;
    uint8_t hello[4096];
    net_set_timeouts(fd, 5000);
    if (recv(fd, hello, sizeof hello, 0) <= 0)
        return;
    uint64_t checksum;
    byte_stream_send(fd, SLOW_DOWNLOAD_SEED, SLOW_DOWNLOAD_BYTES, 0, 0, &checksum);
    shutdown(fd, SHUT_WR);
    net_set_timeouts(fd, 15000);
    while (recv(fd, hello, sizeof hello, 0) > 0) {
    }
}

/* Bytes moving towards a slow reader are activity: the proxy writing its
 * pipe out to the client counts, not only reading from the server. With a
 * 1 MiB pipe and a client taking 16 KiB every 25 ms, one pipe takes about
 * 1.6 s to leave, longer than idle_timeout; such a download was cut off. */
Test(timeouts, slow_reader_of_a_download_is_not_idle, .init = integration_init, .fini = timeout_fini)
{
    uint16_t proxy_port = TEST_PORT(96, 0), alpha_port = TEST_PORT(96, 1);
    start_proxy_to_alpha(proxy_port, alpha_port, send_download, "workers = 1\nidle_timeout = 1s\n");

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    int receive_buffer = 32 * 1024; /* so the pipe, not the client socket, holds the answer */
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer), 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(proxy_port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(connect(fd, (struct sockaddr *)&address, sizeof address), 0);
    net_set_timeouts(fd, 5000);
    struct hello_bytes hello = hello_build("download.example.net");
    cr_assert(net_send_all(fd, hello.data, hello.length));

    struct byte_stream_verifier verifier;
    byte_stream_verifier_init(&verifier, SLOW_DOWNLOAD_SEED);
    uint8_t piece[16384];
    uint64_t total = 0;
    bool intact = true;
    long long start = monotonic_ms();
    while (total < SLOW_DOWNLOAD_BYTES) {
        ssize_t got = recv(fd, piece, sizeof piece, 0);
        if (got <= 0)
            break;
        intact &= byte_stream_verifier_feed(&verifier, piece, (size_t)got);
        total += (uint64_t)got;
        sleep_ms(25);
    }
    long long took = monotonic_ms() - start;
    close(fd);
    cr_expect_eq(total, SLOW_DOWNLOAD_BYTES, "the slow reader got %llu of %u bytes in %lld ms",
                 (unsigned long long)total, SLOW_DOWNLOAD_BYTES, took);
    cr_expect(intact, "the bytes differ from what the server sent");
    cr_expect_gt(took, 2000, "the download was not slow (%lld ms): the test proves nothing", took);
    hello_free(&hello);
    expect_clean_exit();
}

/* Connect to port, send the hello, read the backend's "alpha\n" and then
 * wait, sending nothing: how long until the proxy closes, or -1 if it
 * is still open after wait_ms. */
static long long idle_close_after(uint16_t port, const struct hello_bytes *hello, int wait_ms)
{
    int fd = net_connect(port);
    cr_assert(fd >= 0);
    cr_assert(net_send_all(fd, hello->data, hello->length));
    char name[6];
    cr_assert_eq(net_receive_exact(fd, name, sizeof name, 5000), sizeof name, "no answer from the backend");
    long long start = monotonic_ms();
    size_t received = 0;
    long long closed_after = net_ms_until_closed(fd, start, wait_ms, &received);
    close(fd);
    return closed_after;
}

/* Half a hello on port, then silence: how long until the proxy closes,
 * or -1 if it is still open after wait_ms. */
static long long preread_close_after(uint16_t port, const struct hello_bytes *hello, int wait_ms)
{
    int fd = net_connect(port);
    cr_assert(fd >= 0);
    long long start = monotonic_ms();
    cr_assert(net_send_all(fd, hello->data, hello->length / 2));
    size_t received = 0;
    long long closed_after = net_ms_until_closed(fd, start, wait_ms, &received);
    close(fd);
    return closed_after;
}

/* nginx's SSH-and-HTTPS setup: one listener's clients get their own short
 * timeouts, the other listener keeps [global]'s longer ones. */
Test(timeouts, each_listener_keeps_its_own_timeouts, .init = integration_init, .fini = timeout_fini)
{
    uint16_t short_port = TEST_PORT(114, 0), alpha_port = TEST_PORT(114, 1), long_port = TEST_PORT(114, 2);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("idle_timeout = 1s\npreread_timeout = 500ms\n"
                             "[listen long]\naddress = 127.0.0.1:%u\n"
                             "[routes]\ndefault = 127.0.0.1:%u\n[routes long]\ndefault = 127.0.0.1:%u\n",
                             long_port, alpha_port, alpha_port);
    /* config_text's [listen] comes first: the body's first lines are its keys. */
    char *config = config_text(short_port, "idle_timeout = 4s\npreread_timeout = 4s\n", body);
    cr_assert(proxy_start(&timeout_proxy, config, short_port), "snisplice did not start");
    cr_assert(net_wait_listening(long_port, 5000));
    struct hello_bytes hello = hello_build("idle.example.net");
    cr_assert_not_null(hello.data);

    long long short_idle = idle_close_after(short_port, &hello, 5000);
    cr_expect(short_idle >= 900 && short_idle <= 2500, "short listener: idle closed after %lld ms, want about 1000",
              short_idle);
    long long long_idle = idle_close_after(long_port, &hello, 2500);
    cr_expect_eq(long_idle, -1, "long listener: closed after %lld ms, before [global]'s 4 s", long_idle);

    long long short_preread = preread_close_after(short_port, &hello, 5000);
    cr_expect(short_preread >= 300 && short_preread <= 2500,
              "short listener: half a hello closed after %lld ms, want about 500", short_preread);
    long long long_preread = preread_close_after(long_port, &hello, 2000);
    cr_expect_eq(long_preread, -1, "long listener: half a hello closed after %lld ms, before 4 s", long_preread);
    hello_free(&hello);
    free(config);
    free(body);
    expect_clean_exit();
}
