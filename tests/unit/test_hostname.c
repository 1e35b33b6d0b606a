/*
 * test_hostname.c - the one definition of a valid server name, shared by the
 * ClientHello parser, the route table and the config loader. What users rely
 * on: a route written as "Example.COM." matches a client asking for
 * "example.com", and names no DNS name can have are refused.
 * Never reads shared state; every input is copied to an exact-size heap
 * buffer so ASan catches a read past `len`.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/address.h"
#include "../../core/hostname.h"

/* Normalise `length` bytes of `name`, held in a buffer of exactly that size. */
static bool normalize(const char *name, size_t length, char *out, size_t *out_length)
{
    char *exact = malloc(length ? length : 1);
    cr_assert_not_null(exact);
    memcpy(exact, name, length);
    bool valid = hostname_normalize(exact, length, out, out_length);
    free(exact);
    return valid;
}

static void expect_normal_form(const char *name, const char *expected)
{
    char out[HOSTNAME_MAX + 1];
    size_t out_length = 9999;
    cr_assert(normalize(name, strlen(name), out, &out_length), "'%s' should be valid", name);
    cr_assert_str_eq(out, expected, "'%s' normalised", name);
    cr_assert_eq(out_length, strlen(expected));
}

static void expect_refused(const char *name, size_t length)
{
    char out[HOSTNAME_MAX + 1] = "untouched";
    size_t out_length = 9999;
    cr_assert_not(normalize(name, length, out, &out_length), "'%.*s' should be refused",
                  (int)length, name);
    cr_assert_eq(out_length, 9999, "out_len must be left alone on failure");
}

/* A name of `length` bytes: labels of 63 letters separated by dots. */
static void fill_name(char *name, size_t length)
{
    for (size_t i = 0; i < length; i++)
        name[i] = (i % 64 == 63) ? '.' : 'a';
    name[length] = '\0';
}

Test(hostname, plain_names_are_kept)
{
    expect_normal_form("example.com", "example.com");
    expect_normal_form("localhost", "localhost");
    expect_normal_form("a", "a");
    expect_normal_form("matrix.exceptionerror.io", "matrix.exceptionerror.io");
    expect_normal_form("192.168.0.1", "192.168.0.1");
}

Test(hostname, upper_case_is_lowered)
{
    expect_normal_form("Blog.Example.COM", "blog.example.com");
    expect_normal_form("ABCDEFGHIJKLMNOPQRSTUVWXYZ.Z09", "abcdefghijklmnopqrstuvwxyz.z09");
}

Test(hostname, one_trailing_dot_is_dropped)
{
    expect_normal_form("example.com.", "example.com");
    expect_normal_form("EXAMPLE.com.", "example.com");
    expect_normal_form("a.", "a");
}

Test(hostname, hyphens_are_allowed_anywhere_in_a_label)
{
    expect_normal_form("my-host.example.com", "my-host.example.com");
    expect_normal_form("xn--bcher-kva.example", "xn--bcher-kva.example");
    expect_normal_form("-", "-");
    expect_normal_form("-a.com", "-a.com");
    expect_normal_form("a-.com", "a-.com");
    expect_normal_form("a.-.com", "a.-.com");
}

Test(hostname, empty_names_are_refused)
{
    expect_refused("", 0);
    expect_refused(".", 1);
    expect_refused("..", 2);
}

Test(hostname, empty_labels_are_refused)
{
    const char *bad[] = { ".example.com", "ex..com", "example.com..", "a..", ".a", "a...b" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(bad[i], strlen(bad[i]));
}

Test(hostname, bytes_outside_letters_digits_hyphen_underscore_dot_are_refused)
{
    const char *bad[] = { "a b.com", "*.example.com", "example.com:443", "a/b.com",
                          "caf\xc3\xa9.com", "a\tb", "a\rb", "a\nb", "example.com\x7f",
                          "a@b.com", "a%2eb", "a\\b", "[::1]", "a,b" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(bad[i], strlen(bad[i]));
    expect_refused("a\0b.com", 7);
    expect_refused("example.com\0", 12);
}

Test(hostname, every_single_byte_outside_the_alphabet_is_refused)
{
    for (int byte = 0; byte < 256; byte++) {
        char name[4] = { 'a', (char)byte, 'b', '\0' };
        bool allowed = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                       (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' || byte == '_';
        char out[HOSTNAME_MAX + 1];
        size_t out_length;
        cr_assert_eq(normalize(name, 3, out, &out_length), allowed, "byte 0x%02x", byte);
    }
}

Test(hostname, length_limit_is_253_without_the_trailing_dot)
{
    char name[HOSTNAME_MAX + 3];
    char out[HOSTNAME_MAX + 1];
    size_t out_length;

    fill_name(name, HOSTNAME_MAX);
    cr_assert(normalize(name, HOSTNAME_MAX, out, &out_length));
    cr_assert_eq(out_length, HOSTNAME_MAX);
    cr_assert_eq(strlen(out), HOSTNAME_MAX);

    fill_name(name, HOSTNAME_MAX + 1); /* 254 bytes */
    name[HOSTNAME_MAX] = 'a';
    expect_refused(name, HOSTNAME_MAX + 1);

    fill_name(name, HOSTNAME_MAX); /* 253 bytes plus a trailing dot is still fine */
    name[HOSTNAME_MAX] = '.';
    cr_assert(normalize(name, HOSTNAME_MAX + 1, out, &out_length));
    cr_assert_eq(out_length, HOSTNAME_MAX);
    cr_assert_eq(out[HOSTNAME_MAX - 1], 'a');

    fill_name(name, HOSTNAME_MAX + 1); /* 254 bytes plus a trailing dot is not */
    name[HOSTNAME_MAX] = 'a';
    name[HOSTNAME_MAX + 1] = '.';
    expect_refused(name, HOSTNAME_MAX + 2);
}

Test(hostname, only_len_bytes_are_read)
{
    /* "example.com" followed by junk that must not be looked at. */
    const char buffer[] = "example.com_ junk";
    char out[HOSTNAME_MAX + 1];
    size_t out_length;
    cr_assert(hostname_normalize(buffer, 11, out, &out_length));
    cr_assert_str_eq(out, "example.com");
    cr_assert(hostname_normalize(buffer, 7, out, &out_length));
    cr_assert_str_eq(out, "example");
}

Test(hostname, normal_form_is_a_fixed_point)
{
    const char *names[] = { "Example.COM.", "-", "A-b.C", "x.y.z." };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char once[HOSTNAME_MAX + 1], twice[HOSTNAME_MAX + 1];
        size_t once_length, twice_length;
        cr_assert(normalize(names[i], strlen(names[i]), once, &once_length));
        cr_assert(normalize(once, once_length, twice, &twice_length));
        cr_assert_str_eq(once, twice);
        cr_assert_eq(once_length, twice_length);
    }
}

/* The definition read plainly, one byte at a time, as a reference for
 * the 16-bytes-at-a-time path long names take. */
static bool reference_normalize(const char *name, size_t length, char *out, size_t *out_length)
{
    if (length > 0 && name[length - 1] == '.')
        length--;
    if (length == 0 || length > HOSTNAME_MAX || name[0] == '.' || name[length - 1] == '.')
        return false;
    for (size_t i = 0; i < length; i++) {
        char byte = name[i];
        bool allowed = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                       (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' || byte == '_';
        if (!allowed || (byte == '.' && name[i + 1] == '.'))
            return false;
        out[i] = (byte >= 'A' && byte <= 'Z') ? (char)(byte + 32) : byte;
    }
    out[length] = '\0';
    *out_length = length;
    return true;
}

static void expect_same_as_reference(const char *name, size_t length)
{
    char out[HOSTNAME_MAX + 1] = "untouched", want[HOSTNAME_MAX + 1];
    size_t out_length = 9999, want_length = 9999;
    bool valid = normalize(name, length, out, &out_length);
    bool want_valid = reference_normalize(name, length, want, &want_length);
    cr_assert_eq(valid, want_valid, "'%.*s' (%zu bytes): %d, reference %d", (int)length, name, length, valid,
                 want_valid);
    if (!valid) {
        cr_assert_str_eq(out, "untouched", "out must be left alone on failure");
        cr_assert_eq(out_length, 9999);
        return;
    }
    cr_assert_eq(out_length, want_length);
    cr_assert_str_eq(out, want, "'%.*s' normalised", (int)length, name);
}

/* Every length, every byte at every place of a long name, two dots at
 * every place: each chunk boundary and the overlapping last chunk. */
Test(hostname, long_names_match_a_plain_reading_at_every_length_and_place)
{
    char name[HOSTNAME_MAX + 2];
    for (size_t length = 1; length <= HOSTNAME_MAX + 1; length++) {
        for (size_t i = 0; i < length; i++)
            name[i] = "aZ9-_.Kq"[i % 8];
        expect_same_as_reference(name, length);
        name[length - 1] = '.';
        expect_same_as_reference(name, length);
    }
    for (size_t length = 15; length <= 50; length++) {
        for (size_t place = 0; place < length; place++) {
            for (int byte = 0; byte < 256; byte++) {
                memset(name, 'M', length);
                name[place] = (char)byte;
                expect_same_as_reference(name, length);
            }
            memset(name, 'x', length);
            name[place] = '.';
            if (place + 1 < length)
                name[place + 1] = '.';
            expect_same_as_reference(name, length);
        }
    }
}

Test(hostname, random_names_match_a_plain_reading)
{
    static const char alphabet[] = "abcXYZ019-_.....\x80 *\xff";
    uint64_t state = 0x2545f4914f6cdd1dull;
    char name[HOSTNAME_MAX + 2];
    for (int round = 0; round < 200000; round++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        size_t length = 1 + state % (HOSTNAME_MAX + 1);
        /* Mostly valid bytes, so that many names pass and their output is compared. */
        bool only_valid = (state >> 20) % 4 != 0;
        for (size_t i = 0; i < length; i++) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            name[i] = alphabet[state % (only_valid ? 16 : sizeof alphabet - 1)];
            if (only_valid && name[i] == '.' && i > 0 && name[i - 1] == '.')
                name[i] = 'q';
        }
        expect_same_as_reference(name, length);
    }
}

/* Which server addresses the config loader hands to the resolver: a
 * host name with a port, never a numeric form (a mistyped IPv4 address
 * must be an error, not a DNS query), unix: or a bad port. */
Test(hostname, server_address_host_names)
{
    char host[HOSTNAME_MAX + 1];
    uint16_t port = 0;
    cr_assert(address_split_host_name("Synapse.:8448", host, sizeof host, &port));
    cr_assert_str_eq(host, "synapse");
    cr_assert_eq(port, 8448);
    cr_assert(address_split_host_name("1password.example:443", host, sizeof host, &port));
    cr_assert_str_eq(host, "1password.example");
    cr_assert(address_split_host_name("matrix_synapse_1:8008", host, sizeof host, &port), "a Docker name");
    cr_assert_str_eq(host, "matrix_synapse_1");
    const char *const not_names[] = {
        "127.0.0.1:443", "300.1.1.1:80", "10.1:80", "[::1]:443", "unix:/run/x.sock", "synapse",
        "synapse:", ":443",  "synapse:0", "synapse:65536", "a..b:443", "synapse:http",
    };
    for (size_t i = 0; i < sizeof not_names / sizeof not_names[0]; i++)
        cr_assert(!address_split_host_name(not_names[i], host, sizeof host, &port), "%s", not_names[i]);
}
