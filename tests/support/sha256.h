/*
 * sha256.h - SHA-256 (FIPS 180-4) for the tests' "no byte lost" checks:
 * both ends of a transfer hash what they sent and what they received.
 * Written here so the tests need no crypto library.
 */
#ifndef SNISPLICE_TESTS_SHA256_H
#define SNISPLICE_TESTS_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
    uint32_t state[8];
    uint64_t length;     /* bytes hashed so far */
    uint8_t block[64];
    size_t used;         /* bytes waiting in block */
};

void sha256_init(struct sha256 *hash);
void sha256_update(struct sha256 *hash, const void *data, size_t length);
void sha256_final(struct sha256 *hash, uint8_t digest[32]);

#endif
