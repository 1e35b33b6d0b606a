/*
 * test_no_data_loss.c - many transfers at once, random sizes both ways
 * (zero and tiny included), each ending in a half-close, while the proxy is
 * reloaded every 100 ms with alternating configurations: every byte that
 * went in must come out, checked by SHA-256 at both ends. Ports: block 78.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"
#include "../support/sha256.h"

enum { THREADS = 24, TRANSFERS_PER_THREAD = 4, TRANSFERS = THREADS * TRANSFERS_PER_THREAD };
#define SIZE_MAX_BYTES (2u << 20)
#define HEADER_BYTES 24

struct stream {
    uint64_t state;
    uint64_t left;
    uint8_t chunk[16384];
    size_t chunk_used, chunk_length;
};

/* What the backend saw of transfer `id`. */
struct seen {
    atomic_bool done;
    bool hello_ok;
    uint64_t received;
    uint8_t digest[32];
};

static struct proxy loss_proxy;
static struct backend loss_backend;
static struct seen seen[TRANSFERS];
static struct hello_bytes loss_hello;
static uint16_t loss_port;
static atomic_int failures;

static void loss_fini(void)
{
    proxy_release(&loss_proxy);
    integration_cleanup();
}

static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static void stream_init(struct stream *stream, uint64_t seed, uint64_t length)
{
    memset(stream, 0, sizeof *stream);
    stream->state = seed | 1;
    stream->left = length;
}

/* The next bytes to send (refilled from the generator). */
static const uint8_t *stream_peek(struct stream *stream, size_t *length)
{
    if (stream->chunk_used == stream->chunk_length) {
        size_t fill = stream->left < sizeof stream->chunk ? (size_t)stream->left : sizeof stream->chunk;
        for (size_t i = 0; i < fill; i += 8) {
            uint64_t value = next_random(&stream->state);
            memcpy(stream->chunk + i, &value, fill - i < 8 ? fill - i : 8);
        }
        stream->chunk_used = 0;
        stream->chunk_length = fill;
        stream->left -= fill;
    }
    *length = stream->chunk_length - stream->chunk_used;
    return stream->chunk + stream->chunk_used;
}

static void stream_digest(uint64_t seed, uint64_t length, uint8_t digest[32])
{
    struct stream stream;
    stream_init(&stream, seed, length);
    struct sha256 hash;
    sha256_init(&hash);
    size_t piece;
    const uint8_t *bytes;
    while ((bytes = stream_peek(&stream, &piece), piece > 0)) {
        sha256_update(&hash, bytes, piece);
        stream.chunk_used += piece;
    }
    sha256_final(&hash, digest);
}

/* Send `out` and half-close while receiving into `hash` until EOF. */
static bool duplex(int fd, struct stream *out, struct sha256 *hash, uint64_t *received)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    bool sent_all = false, eof = false;
    long long deadline = monotonic_ms() + 60000;
    uint8_t buffer[65536];
    while (!(sent_all && eof)) {
        size_t piece = 0;
        if (!sent_all) {
            stream_peek(out, &piece);
            if (piece == 0) {
                shutdown(fd, SHUT_WR);
                sent_all = true;
            }
        }
        struct pollfd wait = { fd, (short)((eof ? 0 : POLLIN) | (sent_all ? 0 : POLLOUT)), 0 };
        long long left = deadline - monotonic_ms();
        if (left <= 0 || poll(&wait, 1, (int)left) < 0)
            return false;
        if (!eof && (wait.revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t got = recv(fd, buffer, sizeof buffer, 0);
            if (got > 0) {
                sha256_update(hash, buffer, (size_t)got);
                *received += (uint64_t)got;
            } else if (got == 0) {
                eof = true;
            } else if (errno != EAGAIN && errno != EINTR) {
                return false;
            }
        }
        if (!sent_all && (wait.revents & POLLOUT)) {
            const uint8_t *bytes = stream_peek(out, &piece);
            ssize_t sent = send(fd, bytes, piece, MSG_NOSIGNAL);
            if (sent > 0)
                out->chunk_used += (size_t)sent;
            else if (sent < 0 && errno != EAGAIN && errno != EINTR)
                return false;
        }
    }
    return true;
}

static bool read_exact(int fd, void *buffer, size_t length)
{
    return net_receive_exact(fd, buffer, length, 20000) == length;
}

/* Backend: check the hello, read the header, then stream both ways. */
static void loss_handler(struct backend *backend, int fd, void *context)
{
    (void)backend, (void)context;
    uint8_t *hello = malloc(loss_hello.length);
    uint64_t header[3];
    if (!hello || !read_exact(fd, hello, loss_hello.length) || !read_exact(fd, header, sizeof header) ||
        header[0] >= TRANSFERS) {
        free(hello);
        return; /* the client sees a short stream and counts a failure */
    }
    struct seen *mine = &seen[header[0]];
    mine->hello_ok = memcmp(hello, loss_hello.data, loss_hello.length) == 0;
    free(hello);
    struct stream down;
    stream_init(&down, header[1], header[2]);
    struct sha256 hash;
    sha256_init(&hash);
    mine->received = 0;
    if (duplex(fd, &down, &hash, &mine->received))
        sha256_final(&hash, mine->digest);
    atomic_store(&mine->done, true);
}

static bool one_transfer(uint64_t id, uint64_t *random_state)
{
    uint64_t up_size = next_random(random_state) % (SIZE_MAX_BYTES + 1);
    uint64_t down_size = next_random(random_state) % (SIZE_MAX_BYTES + 1);
    if (id % 8 == 0)
        up_size = 0; /* nothing after the hello */
    if (id % 8 == 1)
        down_size = 0;
    if (id % 8 == 2)
        up_size = down_size = 1;
    uint64_t up_seed = next_random(random_state), down_seed = next_random(random_state);
    int fd = net_connect(loss_port);
    if (fd < 0)
        return false;
    uint64_t header[3] = { id, down_seed, down_size };
    bool ok = net_send_all(fd, loss_hello.data, loss_hello.length) && net_send_all(fd, header, sizeof header);
    struct stream up;
    stream_init(&up, up_seed, up_size);
    struct sha256 hash;
    sha256_init(&hash);
    uint64_t received = 0;
    ok = ok && duplex(fd, &up, &hash, &received);
    close(fd);
    uint8_t got_down[32], want_down[32], want_up[32];
    sha256_final(&hash, got_down);
    stream_digest(down_seed, down_size, want_down);
    stream_digest(up_seed, up_size, want_up);
    long long deadline = monotonic_ms() + 20000;
    while (!atomic_load(&seen[id].done) && monotonic_ms() < deadline)
        sleep_ms(5);
    ok = ok && received == down_size && memcmp(got_down, want_down, 32) == 0;
    ok = ok && atomic_load(&seen[id].done) && seen[id].hello_ok && seen[id].received == up_size &&
         memcmp(seen[id].digest, want_up, 32) == 0;
    if (!ok)
        cr_log_error("transfer %llu: up %llu B (backend got %llu), down %llu B (client got %llu)",
                     (unsigned long long)id, (unsigned long long)up_size, (unsigned long long)seen[id].received,
                     (unsigned long long)down_size, (unsigned long long)received);
    return ok;
}

static void *client_thread(void *argument)
{
    uint64_t index = (uint64_t)(uintptr_t)argument;
    uint64_t random_state = 0x9E3779B97F4A7C15ULL * (index + 1);
    for (uint64_t t = 0; t < TRANSFERS_PER_THREAD; t++)
        if (!one_transfer(index * TRANSFERS_PER_THREAD + t, &random_state))
            atomic_fetch_add(&failures, 1);
    return NULL;
}

Test(no_data_loss, parallel_random_transfers_across_reloads, .init = integration_init, .fini = loss_fini)
{
    integration_set_limit(120);
    loss_port = TEST_PORT(78, 0);
    uint16_t backend_port = TEST_PORT(78, 1);
    cr_assert(backend_start(&loss_backend, "loss", backend_port, loss_handler, NULL));
    loss_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(loss_hello.data);
    char *body_a = text_format("[routes]\ndefault = b\n[upstream b]\nserver = 127.0.0.1:%u\n", backend_port);
    char *body_b = text_format("[routes]\nmatrix.exceptionerror.io = b\nother.example = b\ndefault = b\n"
                               "[upstream b]\nserver = 127.0.0.1:%u weight=2\n", backend_port);
    char *config_a = config_text(loss_port, "idle_timeout = 1m\n", body_a);
    char *config_b = config_text(loss_port, "idle_timeout = 2m\n", body_b);
    cr_assert(proxy_start(&loss_proxy, config_a, loss_port));

    pthread_t threads[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, client_thread, (void *)i), 0);
    /* Reload every 100 ms while they run. */
    int reloads = 0;
    for (;;) {
        bool all_done = true;
        for (int i = 0; i < TRANSFERS; i++)
            all_done &= atomic_load(&seen[i].done);
        if (all_done || reloads >= 600)
            break;
        proxy_reload(&loss_proxy, reloads % 2 ? config_a : config_b);
        reloads++;
        sleep_ms(100);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    cr_expect_eq(atomic_load(&failures), 0, "%d of %d transfers lost or changed bytes", atomic_load(&failures),
                 TRANSFERS);
    cr_expect_geq(reloads, 5, "the transfers did not overlap reloads (%d)", reloads);
    char *log = proxy_stderr(&loss_proxy);
    cr_expect(strstr(log, "reload rejected") == NULL, "%s", log);
    free(log);
    hello_free(&loss_hello);
    free(config_a);
    free(config_b);
    free(body_a);
    free(body_b);
    cr_expect_eq(proxy_stop(&loss_proxy, 10000), 0);
}
