/*
 * transfer.h - a full-duplex byte-exact transfer through the proxy.
 *
 * The client sends a ClientHello, then `client_bytes` of stream
 * TRANSFER_SEED_UP, then half-closes; at the same time the backend checks it
 * received exactly the hello, sends `backend_bytes` of stream
 * TRANSFER_SEED_DOWN and half-closes, and each side checks the other's
 * stream byte by byte, its checksum and the EOF after it. Owns the client
 * thread(s) and the backend's sender thread; every one is joined.
 */
#ifndef SNISPLICE_TESTS_TRANSFER_H
#define SNISPLICE_TESTS_TRANSFER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "hello.h"

#define TRANSFER_SEED_UP 0x75702d7374726561ULL
#define TRANSFER_SEED_DOWN 0x646f776e2d737472ULL
#define TRANSFER_TIMEOUT_MS 30000

struct transfer_plan {
    const struct hello_bytes *hello; /* first bytes, expected verbatim at the backend */
    uint64_t client_bytes;
    uint64_t backend_bytes;
    size_t backend_chunk;            /* 0: 64 KiB */
    int backend_pause_ms;            /* pacing between backend chunks */
};

/* What one side saw; the `sent*` fields describe what it sent. */
struct transfer_side {
    bool connected;
    bool hello_matched;              /* backend side only */
    uint64_t sent;
    uint64_t sent_checksum;
    _Atomic uint64_t received;       /* readable while running */
    uint64_t first_mismatch;         /* UINT64_MAX: none */
    uint64_t received_checksum;
    bool eof_after_stream;           /* clean EOF right after the expected bytes */
    atomic_bool finished;
};

struct transfer {
    struct transfer_plan plan;
    uint16_t proxy_port;
    struct transfer_side client;
    struct transfer_side backend;
    pthread_t client_thread;
    bool client_thread_started;
};

void transfer_init(struct transfer *transfer, const struct transfer_plan *plan,
                   uint16_t proxy_port);

/* backend_handler for backend_start(); context is the struct transfer. Serves one transfer. */
void transfer_backend_handler(struct backend *backend, int fd, void *context);

/* Run the client side in a thread / wait for it. */
void transfer_client_start(struct transfer *transfer);
void transfer_client_join(struct transfer *transfer);

/* Wait until the backend side finished; false on timeout. */
bool transfer_backend_wait(struct transfer *transfer, int timeout_ms);

/* True when both directions arrived complete, identical, with matching checksums and EOFs. */
bool transfer_succeeded(const struct transfer *transfer);

/* One-line description of what went wrong (or "ok"), for assertion messages. */
void transfer_describe(const struct transfer *transfer, char *out, size_t size);

#endif
