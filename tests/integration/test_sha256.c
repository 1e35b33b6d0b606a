/*
 * test_sha256.c - the tests' own SHA-256 against the FIPS 180-4 / NIST
 * example vectors, fed in one piece and byte by byte. Needs no proxy.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../support/sha256.h"

static void hex(const uint8_t digest[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static void expect_digest(const char *message, size_t repeat, const char *expected)
{
    struct sha256 whole, bytewise;
    sha256_init(&whole);
    sha256_init(&bytewise);
    for (size_t r = 0; r < repeat; r++) {
        sha256_update(&whole, message, strlen(message));
        for (const char *c = message; *c; c++)
            sha256_update(&bytewise, c, 1);
    }
    uint8_t digest[32];
    char text[65];
    sha256_final(&whole, digest);
    hex(digest, text);
    cr_expect_str_eq(text, expected, "'%.20s' x %zu", message, repeat);
    sha256_final(&bytewise, digest);
    hex(digest, text);
    cr_expect_str_eq(text, expected, "'%.20s' x %zu, byte by byte", message, repeat);
}

Test(sha256, nist_vectors)
{
    expect_digest("", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_digest("abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect_digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    expect_digest("a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
