/*
 * byte_stream.h - deterministic pseudo-random byte streams for transfers.
 *
 * A stream is a pure function of (seed, offset), so a sender and a receiver
 * regenerate the same bytes independently and a receiver can name the first
 * offset that differs. Also a running checksum (FNV-1a 64) over whatever
 * bytes each side actually sent or received. No I/O, no allocation.
 */
#ifndef SNISPLICE_TESTS_BYTE_STREAM_H
#define SNISPLICE_TESTS_BYTE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BYTE_STREAM_CHECKSUM_START 0xcbf29ce484222325ULL

/* Bytes [offset, offset + length) of the stream named by seed. */
void byte_stream_fill(uint64_t seed, uint64_t offset, uint8_t *out, size_t length);

uint64_t byte_stream_checksum(uint64_t checksum, const uint8_t *data, size_t length);

/* Checks received bytes against the stream, chunk by chunk. */
struct byte_stream_verifier {
    uint64_t seed;
    uint64_t offset;          /* bytes checked so far */
    uint64_t first_mismatch;  /* UINT64_MAX while everything matched */
    uint64_t checksum;        /* over the received bytes */
};

void byte_stream_verifier_init(struct byte_stream_verifier *verifier, uint64_t seed);
/* False once any byte so far differed from the stream. */
bool byte_stream_verifier_feed(struct byte_stream_verifier *verifier, const uint8_t *data,
                               size_t length);

/*
 * Send `length` bytes of stream `seed` on fd in chunks of chunk_size (0: 64 KiB),
 * sleeping pause_ms between chunks. Returns bytes sent; *checksum gets the
 * checksum of what was sent.
 */
uint64_t byte_stream_send(int fd, uint64_t seed, uint64_t length, size_t chunk_size,
                          int pause_ms, uint64_t *checksum);

/*
 * Receive up to `length` bytes from fd (stops early on EOF, error or a
 * receive timeout) feeding them to the verifier. Returns bytes received.
 */
uint64_t byte_stream_receive(int fd, struct byte_stream_verifier *verifier, uint64_t length);

#endif
