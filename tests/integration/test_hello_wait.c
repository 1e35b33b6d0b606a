/*
 * test_hello_wait.c - a hello that arrives in many small segments while
 * the kernel is short of receive memory for the socket. Linux then reports
 * the socket readable before SO_RCVLOWAT is reached (its receive queue past
 * 7/8 of the buffer, or the whole stack under TCP memory pressure), so a
 * wake-up with nothing new is no end of stream: the client is still
 * sending, and must be routed once its hello is complete, as nginx does.
 * Tiny segments fill the buffer fastest: each carries its own overhead, so
 * a 60 KB hello in 100-byte pieces takes about 120 KB of a 128 KB buffer.
 * Ports: blocks 296, 303.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"

#define PIECE_BYTES 100
#define PADDING_BYTES 59000 /* a hello of about 60 KB, under preread_max = 64k */

static struct proxy wait_proxy;
static struct backend named;

static void wait_fini(void)
{
    proxy_release(&wait_proxy);
    integration_cleanup();
}

static void start_proxy(uint16_t port)
{
    cr_assert(backend_start(&named, "named", port + 1, NULL, NULL));
    char *body = text_format("[routes]\nbig.example.com = named\n"
                             "[upstream named]\nserver = 127.0.0.1:%u\n", port + 1);
    char *config = config_text(port, "workers = 1\npreread_max = 64k\npreread_timeout = 10s\n", body);
    cr_assert(proxy_start(&wait_proxy, config, port));
    free(config);
    free(body);
}

static struct hello_bytes big_hello(void)
{
    struct hello_bytes one_record = hello_build_padded("big.example.com", PADDING_BYTES);
    struct hello_bytes hello = hello_split_records(&one_record, 16384);
    hello_free(&one_record);
    return hello;
}

/* Send bytes in PIECE_BYTES pieces about 1 ms apart; false when the proxy
 * closed the connection meanwhile. */
static bool send_in_pieces(int fd, const uint8_t *bytes, size_t length)
{
    for (size_t sent = 0; sent < length; sent += PIECE_BYTES) {
        size_t take = length - sent < PIECE_BYTES ? length - sent : PIECE_BYTES;
        if (send(fd, bytes + sent, take, MSG_NOSIGNAL) != (ssize_t)take)
            return false;
        sleep_ms(1);
    }
    return true;
}

/* The proxy's CPU time so far, user and system, in clock ticks. */
static long long proxy_cpu_ticks(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)wait_proxy.pid);
    size_t length = 0;
    char *stat = file_read_all(path, &length);
    cr_assert_not_null(stat);
    /* Fields 14 and 15, counted after the command's closing parenthesis. */
    const char *after_command = strrchr(stat, ')');
    long long user = 0, system = 0;
    int matched = sscanf(after_command + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld",
                         &user, &system);
    free(stat);
    cr_assert_eq(matched, 2);
    return user + system;
}

/* Half-close and expect the backend's greeting, then the hello intact. */
static void expect_routed_intact(int fd, const struct hello_bytes *hello, const char *what)
{
    shutdown(fd, SHUT_WR);
    char reply[64];
    struct net_receive_result result = net_receive_until_closed(fd, reply, sizeof reply - 1, 10000);
    reply[result.length] = '\0';
    cr_expect_str_eq(reply, "named\n", "%s: the client got '%s' (closed: %d, reset: %d)", what, reply,
                     result.eof, result.reset);
    cr_assert(backend_wait_finished(&named, 1, 5000), "%s: the backend saw no whole connection", what);
    static uint8_t received[BACKEND_RECORD_MAX];
    size_t length = backend_last_received(&named, received, sizeof received);
    cr_expect_eq(length, hello->length, "%s: the backend got %zu of %zu bytes", what, length, hello->length);
    cr_expect(length == hello->length && memcmp(received, hello->data, length) == 0,
              "%s: the hello changed on the way", what);
}

Test(hello_wait, a_hello_in_small_segments_is_routed_when_the_buffer_fills, .init = integration_init,
     .fini = wait_fini)
{
    uint16_t port = TEST_PORT(296, 0);
    start_proxy(port);
    struct hello_bytes hello = big_hello();
    int fd = net_connect(port);
    cr_assert_geq(fd, 0);
    cr_expect(send_in_pieces(fd, hello.data, hello.length), "the proxy closed the connection mid-hello");
    expect_routed_intact(fd, &hello, "60 KB in 100-byte pieces");
    close(fd);
    hello_free(&hello);
    cr_expect_eq(proxy_stop(&wait_proxy, 10000), 0);
}

Test(hello_wait, a_client_pausing_past_the_buffer_mark_is_waited_for_without_spinning,
     .init = integration_init, .fini = wait_fini)
{
    uint16_t port = TEST_PORT(296, 2);
    start_proxy(port);
    struct hello_bytes hello = big_hello();
    size_t before_pause = hello.length - 1000;
    int fd = net_connect(port);
    cr_assert_geq(fd, 0);
    cr_expect(send_in_pieces(fd, hello.data, before_pause), "the proxy closed the connection mid-hello");
    long long ticks_before = proxy_cpu_ticks();
    sleep_ms(1000);
    long long ticks_in_pause = proxy_cpu_ticks() - ticks_before;
    long ticks_per_second = sysconf(_SC_CLK_TCK);
    cr_expect_lt(ticks_in_pause * 10, ticks_per_second,
                 "the proxy used %lld of %ld ticks while the client paused", ticks_in_pause, ticks_per_second);
    cr_expect(send_in_pieces(fd, hello.data + before_pause, hello.length - before_pause),
              "the proxy closed the connection in the pause");
    expect_routed_intact(fd, &hello, "a pause 1000 bytes before the end");
    close(fd);
    hello_free(&hello);
    cr_expect_eq(proxy_stop(&wait_proxy, 10000), 0);
}

Test(hello_wait, a_client_leaving_past_the_buffer_mark_is_closed_at_once, .init = integration_init,
     .fini = wait_fini)
{
    uint16_t port = TEST_PORT(296, 4);
    start_proxy(port);
    struct hello_bytes hello = big_hello();
    int fd = net_connect(port);
    cr_assert_geq(fd, 0);
    send_in_pieces(fd, hello.data, hello.length - 1000);
    long long start = monotonic_ms();
    shutdown(fd, SHUT_WR);
    size_t received = 0;
    long long closed_after = net_ms_until_closed(fd, start, 12000, &received);
    cr_expect(closed_after >= 0 && closed_after < 2000, "closed %lld ms after the client's FIN (preread_timeout 10 s)",
              closed_after);
    cr_expect_eq(received, 0);
    cr_expect_eq(backend_accepted(&named), 0, "half a hello reached the upstream");
    close(fd);
    hello_free(&hello);
    cr_expect_eq(proxy_stop(&wait_proxy, 10000), 0);
}

/* The drain's cut (a second SIGTERM) while a client waits below the mark,
 * its poll re-armed from a timer: the connection is closed with the rest,
 * and the process exits 0 at once with nothing left pending. */
Test(hello_wait, a_second_sigterm_closes_a_client_waited_for_below_the_mark, .init = integration_init,
     .fini = wait_fini)
{
    uint16_t port = TEST_PORT(303, 0);
    start_proxy(port);
    struct hello_bytes hello = big_hello();
    int fd = net_connect(port);
    cr_assert_geq(fd, 0);
    cr_expect(send_in_pieces(fd, hello.data, hello.length - 1000), "the proxy closed the connection mid-hello");
    sleep_ms(300); /* retries every 160 ms by now */
    proxy_signal(&wait_proxy, SIGTERM);
    cr_assert(proxy_stderr_wait_for(&wait_proxy, "draining connections", 3000), "the drain never began");
    sleep_ms(200);
    cr_assert_eq(kill(wait_proxy.pid, 0), 0, "exited before the second signal: nothing was waited for");
    long long start = monotonic_ms();
    proxy_signal(&wait_proxy, SIGTERM);
    int status = proxy_wait_exit(&wait_proxy, 8000);
    long long exit_after = monotonic_ms() - start;
    char *log = proxy_stderr(&wait_proxy);
    cr_expect_eq(status, 0, "exit status %d; stderr:\n%s", status, log);
    cr_expect_leq(exit_after, 1000, "exit %lld ms after the second signal; stderr:\n%s", exit_after, log);
    cr_expect(strstr(log, "cutting 1 open connections"), "the waiting client was not cut:\n%s", log);
    cr_expect_geq(net_ms_until_closed(fd, monotonic_ms(), 2000, NULL), 0, "the client was not closed");
    cr_expect_eq(backend_accepted(&named), 0, "half a hello reached the upstream");
    free(log);
    close(fd);
    hello_free(&hello);
}
