/*
 * transfer.c - both ends of the byte-exact duplex transfer (see transfer.h).
 *
 * Owns the client socket and the helper sender threads; never leaves a
 * thread unjoined.
 */
#include "transfer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "byte_stream.h"
#include "child_process.h"
#include "net.h"

struct sender {
    int fd;
    const struct hello_bytes *hello; /* sent first when non-NULL */
    uint64_t seed;
    uint64_t length;
    size_t chunk;
    int pause_ms;
    struct transfer_side *side;
};

static void *sender_main(void *argument)
{
    struct sender *sender = argument;
    if (sender->hello && !net_send_all(sender->fd, sender->hello->data, sender->hello->length))
        return NULL;
    sender->side->sent = byte_stream_send(sender->fd, sender->seed, sender->length,
                                          sender->chunk, sender->pause_ms,
                                          &sender->side->sent_checksum);
    shutdown(sender->fd, SHUT_WR);
    return NULL;
}

/* True when the next read reports an orderly EOF. */
static bool next_read_is_eof(int fd)
{
    uint8_t byte;
    ssize_t got;
    do {
        got = recv(fd, &byte, 1, 0);
    } while (got < 0 && errno == EINTR);
    return got == 0;
}

static void receive_stream(int fd, uint64_t seed, uint64_t length, struct transfer_side *side)
{
    struct byte_stream_verifier verifier;
    byte_stream_verifier_init(&verifier, seed);
    uint8_t chunk[65536];
    while (atomic_load(&side->received) < length) {
        uint64_t left = length - atomic_load(&side->received);
        ssize_t got = recv(fd, chunk, left < sizeof chunk ? (size_t)left : sizeof chunk, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        byte_stream_verifier_feed(&verifier, chunk, (size_t)got);
        atomic_fetch_add(&side->received, (uint64_t)got);
    }
    side->first_mismatch = verifier.first_mismatch;
    side->received_checksum = verifier.checksum;
    side->eof_after_stream = atomic_load(&side->received) == length && next_read_is_eof(fd);
}

void transfer_init(struct transfer *transfer, const struct transfer_plan *plan,
                   uint16_t proxy_port)
{
    memset(transfer, 0, sizeof *transfer);
    transfer->plan = *plan;
    transfer->proxy_port = proxy_port;
    transfer->client.first_mismatch = UINT64_MAX;
    transfer->backend.first_mismatch = UINT64_MAX;
}

void transfer_backend_handler(struct backend *backend, int fd, void *context)
{
    struct transfer *transfer = context;
    struct transfer_side *side = &transfer->backend;
    const struct hello_bytes *hello = transfer->plan.hello;
    side->connected = true;
    net_set_timeouts(fd, TRANSFER_TIMEOUT_MS);
    uint8_t *first = malloc(hello->length);
    if (!first)
        abort();
    size_t got = net_receive_exact(fd, first, hello->length, TRANSFER_TIMEOUT_MS);
    side->hello_matched = got == hello->length && memcmp(first, hello->data, got) == 0;
    free(first);

    struct sender sender = {.fd = fd, .seed = TRANSFER_SEED_DOWN,
                            .length = transfer->plan.backend_bytes,
                            .chunk = transfer->plan.backend_chunk,
                            .pause_ms = transfer->plan.backend_pause_ms, .side = side};
    pthread_t sender_thread;
    if (pthread_create(&sender_thread, NULL, sender_main, &sender) != 0)
        abort();
    receive_stream(fd, TRANSFER_SEED_UP, transfer->plan.client_bytes, side);
    pthread_join(sender_thread, NULL);
    atomic_store(&side->finished, true);
}

static void *client_main(void *argument)
{
    struct transfer *transfer = argument;
    struct transfer_side *side = &transfer->client;
    int fd = net_connect(transfer->proxy_port);
    if (fd < 0) {
        atomic_store(&side->finished, true);
        return NULL;
    }
    side->connected = true;
    net_set_timeouts(fd, TRANSFER_TIMEOUT_MS);
    struct sender sender = {.fd = fd, .hello = transfer->plan.hello, .seed = TRANSFER_SEED_UP,
                            .length = transfer->plan.client_bytes, .side = side};
    pthread_t sender_thread;
    if (pthread_create(&sender_thread, NULL, sender_main, &sender) != 0)
        abort();
    receive_stream(fd, TRANSFER_SEED_DOWN, transfer->plan.backend_bytes, side);
    pthread_join(sender_thread, NULL);
    close(fd);
    atomic_store(&side->finished, true);
    return NULL;
}

void transfer_client_start(struct transfer *transfer)
{
    if (pthread_create(&transfer->client_thread, NULL, client_main, transfer) != 0)
        abort();
    transfer->client_thread_started = true;
}

void transfer_client_join(struct transfer *transfer)
{
    if (!transfer->client_thread_started)
        return;
    pthread_join(transfer->client_thread, NULL);
    transfer->client_thread_started = false;
}

bool transfer_backend_wait(struct transfer *transfer, int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    while (!atomic_load(&transfer->backend.finished)) {
        if (monotonic_ms() >= deadline)
            return false;
        sleep_ms(5);
    }
    return true;
}

static bool direction_ok(const struct transfer_side *sender, const struct transfer_side *receiver,
                         uint64_t expected)
{
    return sender->sent == expected && atomic_load(&receiver->received) == expected &&
           receiver->first_mismatch == UINT64_MAX &&
           receiver->received_checksum == sender->sent_checksum && receiver->eof_after_stream;
}

bool transfer_succeeded(const struct transfer *transfer)
{
    return transfer->client.connected && transfer->backend.connected &&
           transfer->backend.hello_matched &&
           direction_ok(&transfer->client, &transfer->backend, transfer->plan.client_bytes) &&
           direction_ok(&transfer->backend, &transfer->client, transfer->plan.backend_bytes);
}

static long long mismatch_text(uint64_t first_mismatch)
{
    return first_mismatch == UINT64_MAX ? -1 : (long long)first_mismatch;
}

void transfer_describe(const struct transfer *transfer, char *out, size_t size)
{
    const struct transfer_side *client = &transfer->client;
    const struct transfer_side *backend = &transfer->backend;
    snprintf(out, size,
             "client connected=%d backend connected=%d hello_matched=%d | "
             "up: sent %llu of %llu, backend got %llu, first mismatch %lld, checksums %s, eof %d | "
             "down: sent %llu of %llu, client got %llu, first mismatch %lld, checksums %s, eof %d",
             client->connected, backend->connected, backend->hello_matched,
             (unsigned long long)client->sent, (unsigned long long)transfer->plan.client_bytes,
             (unsigned long long)atomic_load(&backend->received),
             mismatch_text(backend->first_mismatch),
             backend->received_checksum == client->sent_checksum ? "equal" : "DIFFER",
             backend->eof_after_stream,
             (unsigned long long)backend->sent, (unsigned long long)transfer->plan.backend_bytes,
             (unsigned long long)atomic_load(&client->received),
             mismatch_text(client->first_mismatch),
             client->received_checksum == backend->sent_checksum ? "equal" : "DIFFER",
             client->eof_after_stream);
}
