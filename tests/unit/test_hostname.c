/*
 * test_hostname.c - the one definition of a valid server name, shared by the
 * ClientHello parser, the route table and the config loader. What users rely
 * on: a route written as "Example.COM." matches a client asking for
 * "example.com", and names no DNS name can have are refused.
 * Never reads shared state; every input is copied to an exact-size heap
 * buffer so ASan catches a read past `len`.
 */
#include <criterion/criterion.h>
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
