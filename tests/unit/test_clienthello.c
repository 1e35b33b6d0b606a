/*
 * test_clienthello.c - the ClientHello parser against real captures and
 * hand-built hostile hellos. What users rely on: the right name or a refusal,
 * never a wrong name, never a read out of bounds (run under ASan).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/clienthello.h"

#define SCRATCH_SIZE (64 * 1024)
static uint8_t scratch[SCRATCH_SIZE];

struct capture {
    uint8_t *bytes;
    size_t length;
};

static struct capture load_capture(const char *name)
{
    const char *shared = getenv("SNISPLICE_SHARED");
    char path[512];
    snprintf(path, sizeof path, "%s/clienthello/%s", shared ? shared : "../shared", name);
    FILE *file = fopen(path, "rb");
    cr_assert_not_null(file, "cannot open capture %s", path);
    struct capture capture = { malloc(8192), 0 };
    capture.length = fread(capture.bytes, 1, 8192, file);
    fclose(file);
    return capture;
}

static enum clienthello_status parse(const uint8_t *data, size_t length, struct clienthello_info *info)
{
    return clienthello_parse(data, length, scratch, sizeof scratch, info);
}

static const char *const CHROMIUM = "chromium156_matrix.exceptionerror.io.bin";
static const char *const CURL = "curl_openssl3.0_matrix.exceptionerror.io.bin";
static const char *const GNUTLS = "gnutls3.7_dimension.exceptionerror.io.bin";

/* ---- real captures ---- */

static void expect_capture(const char *file, size_t length, const char *name)
{
    struct capture capture = load_capture(file);
    struct clienthello_info info;
    cr_assert_eq(capture.length, length);
    cr_assert_eq(parse(capture.bytes, capture.length, &info), CLIENTHELLO_FOUND);
    cr_assert_str_eq(info.server_name, name);
    cr_assert_eq(info.server_name_len, strlen(name));
    free(capture.bytes);
}

Test(clienthello, chromium_capture_with_sni_near_the_end)
{
    expect_capture(CHROMIUM, 1932, "matrix.exceptionerror.io");
}

Test(clienthello, curl_openssl_capture)
{
    expect_capture(CURL, 517, "matrix.exceptionerror.io");
}

Test(clienthello, gnutls_capture)
{
    expect_capture(GNUTLS, 409, "dimension.exceptionerror.io");
}

Test(clienthello, captures_offer_h2_and_http11_in_alpn)
{
    const char *files[] = { CHROMIUM, CURL };
    for (size_t i = 0; i < 2; i++) {
        struct capture capture = load_capture(files[i]);
        struct clienthello_info info;
        cr_assert_eq(parse(capture.bytes, capture.length, &info), CLIENTHELLO_FOUND);
        cr_assert(clienthello_alpn_offers(&info, "h2"), "%s offers h2", files[i]);
        cr_assert(clienthello_alpn_offers(&info, "http/1.1"), "%s offers http/1.1", files[i]);
        cr_assert_not(clienthello_alpn_offers(&info, "acme-tls/1"));
        cr_assert_not(clienthello_alpn_offers(&info, "h"));
        free(capture.bytes);
    }
}

Test(clienthello, every_strict_prefix_needs_more)
{
    const char *files[] = { CHROMIUM, CURL, GNUTLS };
    for (size_t f = 0; f < 3; f++) {
        struct capture capture = load_capture(files[f]);
        for (size_t length = 0; length < capture.length; length++) {
            /* Copy so ASan catches any read past the prefix. */
            uint8_t *prefix = malloc(length ? length : 1);
            memcpy(prefix, capture.bytes, length);
            struct clienthello_info info;
            enum clienthello_status status = parse(prefix, length, &info);
            cr_assert_eq(status, CLIENTHELLO_NEED_MORE, "%s: prefix %zu answered %s", files[f],
                         length, clienthello_status_name(status));
            cr_assert_eq(info.server_name_len, 0);
            free(prefix);
        }
        free(capture.bytes);
    }
}

/* Re-frame a single-record hello into records of at most `piece` payload bytes. */
static size_t reframe(const struct capture *capture, size_t piece, uint8_t *out)
{
    size_t payload = (size_t)capture->bytes[3] << 8 | capture->bytes[4];
    const uint8_t *message = capture->bytes + 5;
    size_t written = 0;
    for (size_t offset = 0; offset < payload; offset += piece) {
        size_t take = payload - offset < piece ? payload - offset : piece;
        out[written++] = 0x16;
        out[written++] = capture->bytes[1];
        out[written++] = capture->bytes[2];
        out[written++] = (uint8_t)(take >> 8);
        out[written++] = (uint8_t)take;
        memcpy(out + written, message + offset, take);
        written += take;
    }
    return written;
}

Test(clienthello, hello_split_across_records)
{
    const char *files[] = { CHROMIUM, CURL, GNUTLS };
    const size_t pieces[] = { 1, 2, 3, 100, 1000 };
    static uint8_t framed[20 * 8192];
    for (size_t f = 0; f < 3; f++) {
        struct capture capture = load_capture(files[f]);
        for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
            size_t length = reframe(&capture, pieces[p], framed);
            struct clienthello_info info;
            cr_assert_eq(parse(framed, length, &info), CLIENTHELLO_FOUND, "%s in %zu-byte records",
                         files[f], pieces[p]);
            cr_assert_str_eq(info.server_name, f == 2 ? "dimension.exceptionerror.io"
                                                      : "matrix.exceptionerror.io");
            /* Every prefix of the re-framed stream still needs more. */
            if (pieces[p] >= 100)
                for (size_t cut = 0; cut < length; cut++)
                    cr_assert_eq(parse(framed, cut, &info), CLIENTHELLO_NEED_MORE);
        }
        free(capture.bytes);
    }
}

Test(clienthello, split_hello_larger_than_scratch_is_invalid)
{
    struct capture capture = load_capture(CHROMIUM);
    static uint8_t framed[4096];
    size_t length = reframe(&capture, 1000, framed);
    struct clienthello_info info;
    cr_assert_eq(clienthello_parse(framed, length, scratch, 1024, &info), CLIENTHELLO_INVALID);
    free(capture.bytes);
}

Test(clienthello, bytes_after_the_hello_are_ignored)
{
    struct capture capture = load_capture(CURL);
    uint8_t data[1024];
    memcpy(data, capture.bytes, capture.length);
    memset(data + capture.length, 0x17, 100); /* e.g. early application data */
    struct clienthello_info info;
    cr_assert_eq(parse(data, capture.length + 100, &info), CLIENTHELLO_FOUND);
    cr_assert_str_eq(info.server_name, "matrix.exceptionerror.io");
    free(capture.bytes);
}

/* ---- synthetic hellos ---- */

struct hello_builder {
    uint8_t bytes[80000];
    size_t length;
};

static void put(struct hello_builder *b, const void *data, size_t length)
{
    cr_assert_leq(b->length + length, sizeof b->bytes);
    memcpy(b->bytes + b->length, data, length);
    b->length += length;
}

static void put_u8(struct hello_builder *b, unsigned value) { uint8_t v = (uint8_t)value; put(b, &v, 1); }
static void put_u16(struct hello_builder *b, unsigned value) { put_u8(b, value >> 8); put_u8(b, value); }

/* A server_name extension holding one host_name entry. */
static void put_sni_extension(struct hello_builder *b, const char *name, size_t name_length)
{
    put_u16(b, 0);
    put_u16(b, (unsigned)(name_length + 5));
    put_u16(b, (unsigned)(name_length + 3));
    put_u8(b, 0);
    put_u16(b, (unsigned)name_length);
    put(b, name, name_length);
}

/* Wrap extensions into record + handshake + body. extensions == NULL: none at all. */
static void build_hello(struct hello_builder *out, const struct hello_builder *extensions)
{
    struct hello_builder body = { .length = 0 };
    put_u16(&body, 0x0303);
    uint8_t random[32] = { 0 };
    put(&body, random, 32);
    put_u8(&body, 0);             /* session id */
    put_u16(&body, 2);            /* cipher suites */
    put_u16(&body, 0x1301);
    put_u8(&body, 1);             /* compression */
    put_u8(&body, 0);
    if (extensions) {
        put_u16(&body, (unsigned)extensions->length);
        put(&body, extensions->bytes, extensions->length);
    }
    out->length = 0;
    size_t message = body.length + 4;
    put_u8(out, 0x16);
    put_u16(out, 0x0301);
    put_u16(out, (unsigned)message);
    put_u8(out, 1);
    put_u8(out, 0);
    put_u16(out, (unsigned)body.length);
    put(out, body.bytes, body.length);
}

static enum clienthello_status parse_with_sni(const char *name, size_t name_length, struct clienthello_info *info)
{
    static struct hello_builder extensions, hello;
    extensions.length = 0;
    put_sni_extension(&extensions, name, name_length);
    build_hello(&hello, &extensions);
    return parse(hello.bytes, hello.length, info);
}

Test(clienthello, name_is_lowercased_and_trailing_dot_dropped)
{
    struct clienthello_info info;
    cr_assert_eq(parse_with_sni("Blog.Example.COM.", 17, &info), CLIENTHELLO_FOUND);
    cr_assert_str_eq(info.server_name, "blog.example.com");
}

Test(clienthello, invalid_server_names_are_refused)
{
    const char *bad[] = { "a b.com", "a_b.com", "ex..com", ".example.com", "exa\x01mple.com",
                          "example.com..", "*.example.com", "caf\xc3\xa9.com" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct clienthello_info info;
        cr_assert_eq(parse_with_sni(bad[i], strlen(bad[i]), &info), CLIENTHELLO_INVALID, "'%s'", bad[i]);
        cr_assert_eq(info.server_name_len, 0);
    }
    struct clienthello_info info;
    cr_assert_eq(parse_with_sni("", 0, &info), CLIENTHELLO_INVALID, "empty name");
    cr_assert_eq(parse_with_sni("a\0b.com", 7, &info), CLIENTHELLO_INVALID, "NUL inside");
}

Test(clienthello, name_length_limit)
{
    char name[300];
    /* 253 bytes: labels of 63 separated by dots. */
    memset(name, 'a', sizeof name);
    for (size_t i = 63; i < 253; i += 64)
        name[i] = '.';
    struct clienthello_info info;
    cr_assert_eq(parse_with_sni(name, 253, &info), CLIENTHELLO_FOUND);
    cr_assert_eq(info.server_name_len, 253);
    cr_assert_eq(parse_with_sni(name, 254, &info), CLIENTHELLO_INVALID);
}

Test(clienthello, sixty_four_kib_name_is_invalid_not_a_crash)
{
    static char name[65000];
    memset(name, 'a', sizeof name);
    struct clienthello_info info;
    static struct hello_builder extensions, hello;
    extensions.length = 0;
    put_sni_extension(&extensions, name, 16000);
    build_hello(&hello, &extensions);
    cr_assert_eq(parse(hello.bytes, hello.length, &info), CLIENTHELLO_INVALID);
}

Test(clienthello, duplicate_sni_extension_is_invalid)
{
    static struct hello_builder extensions, hello;
    extensions.length = 0;
    put_sni_extension(&extensions, "a.com", 5);
    put_sni_extension(&extensions, "b.com", 5);
    build_hello(&hello, &extensions);
    struct clienthello_info info;
    cr_assert_eq(parse(hello.bytes, hello.length, &info), CLIENTHELLO_INVALID);
}

Test(clienthello, two_host_names_in_one_extension_are_invalid)
{
    static struct hello_builder extensions, hello;
    extensions.length = 0;
    put_u16(&extensions, 0);
    put_u16(&extensions, 2 + 2 * (3 + 5));
    put_u16(&extensions, 2 * (3 + 5));
    for (int i = 0; i < 2; i++) {
        put_u8(&extensions, 0);
        put_u16(&extensions, 5);
        put(&extensions, i ? "b.com" : "a.com", 5);
    }
    build_hello(&hello, &extensions);
    struct clienthello_info info;
    cr_assert_eq(parse(hello.bytes, hello.length, &info), CLIENTHELLO_INVALID);
}

Test(clienthello, no_extensions_or_no_host_name_means_no_sni)
{
    static struct hello_builder extensions, hello;
    struct clienthello_info info;
    build_hello(&hello, NULL);
    cr_assert_eq(parse(hello.bytes, hello.length, &info), CLIENTHELLO_NO_SNI);
    /* SNI extension with an empty server_name_list. */
    extensions.length = 0;
    put_u16(&extensions, 0);
    put_u16(&extensions, 2);
    put_u16(&extensions, 0);
    build_hello(&hello, &extensions);
    cr_assert_eq(parse(hello.bytes, hello.length, &info), CLIENTHELLO_NO_SNI);
}

Test(clienthello, hundreds_of_extensions)
{
    static struct hello_builder extensions, hello;
    extensions.length = 0;
    for (unsigned i = 0; i < 500; i++) {
        put_u16(&extensions, 1000 + i);
        put_u16(&extensions, 4);
        put_u16(&extensions, i);
        put_u16(&extensions, i);
    }
    put_sni_extension(&extensions, "late.example.com", 16);
    build_hello(&hello, &extensions);
    struct clienthello_info info;
    cr_assert_eq(parse(hello.bytes, hello.length, &info), CLIENTHELLO_FOUND);
    cr_assert_str_eq(info.server_name, "late.example.com");
}

Test(clienthello, lying_lengths_are_invalid)
{
    static struct hello_builder extensions, hello;
    struct clienthello_info info;
    extensions.length = 0;
    put_sni_extension(&extensions, "a.com", 5);
    build_hello(&hello, &extensions);
    size_t extensions_length_at = hello.length - extensions.length - 2;

    struct hello_builder copy = hello;
    copy.bytes[extensions_length_at + 1] += 1; /* extensions length one too long */
    cr_assert_eq(parse(copy.bytes, copy.length, &info), CLIENTHELLO_INVALID);

    copy = hello;
    copy.bytes[extensions_length_at + 1] -= 1; /* one too short: trailing byte */
    cr_assert_eq(parse(copy.bytes, copy.length, &info), CLIENTHELLO_INVALID);

    copy = hello;
    copy.bytes[extensions_length_at + 2 + 3] += 3; /* SNI extension longer than its block */
    cr_assert_eq(parse(copy.bytes, copy.length, &info), CLIENTHELLO_INVALID);

    copy = hello;
    copy.bytes[extensions_length_at + 2 + 2 + 2 + 2 + 1 + 1] = 200; /* name length past the end */
    cr_assert_eq(parse(copy.bytes, copy.length, &info), CLIENTHELLO_INVALID);

    copy = hello;
    copy.bytes[3] = 0;
    copy.bytes[4] = 0; /* empty record */
    cr_assert_eq(parse(copy.bytes, copy.length, &info), CLIENTHELLO_INVALID);

    copy = hello;
    copy.bytes[3] = 0x50; /* record longer than TLS allows */
    cr_assert_eq(parse(copy.bytes, copy.length, &info), CLIENTHELLO_INVALID);

    copy = hello;
    copy.bytes[6] = 0;
    copy.bytes[7] = 0;
    copy.bytes[8] = 0; /* handshake length 0 */
    cr_assert_eq(parse(copy.bytes, copy.length, &info), CLIENTHELLO_INVALID);

    copy = hello;
    copy.bytes[5] = 2; /* a ServerHello, not a ClientHello */
    cr_assert_eq(parse(copy.bytes, copy.length, &info), CLIENTHELLO_INVALID);

    copy = hello;
    copy.bytes[5 + 4 + 2 + 32] = 33; /* session id longer than 32 */
    cr_assert_eq(parse(copy.bytes, copy.length, &info), CLIENTHELLO_INVALID);
}

Test(clienthello, handshake_claiming_more_than_its_records_need_more_then_invalid)
{
    /* Handshake length says 1000 bytes but the record carries less: more
     * records must follow; a non-handshake record instead is invalid. */
    static struct hello_builder extensions, hello;
    extensions.length = 0;
    put_sni_extension(&extensions, "a.com", 5);
    build_hello(&hello, &extensions);
    hello.bytes[7] = 0x03;
    struct clienthello_info info;
    cr_assert_eq(parse(hello.bytes, hello.length, &info), CLIENTHELLO_NEED_MORE);
    uint8_t alert[] = { 0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28 };
    put(&hello, alert, sizeof alert);
    cr_assert_eq(parse(hello.bytes, hello.length, &info), CLIENTHELLO_INVALID);
}

Test(clienthello, plain_http_is_not_tls)
{
    const char *request = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    struct clienthello_info info;
    cr_assert_eq(parse((const uint8_t *)request, strlen(request), &info), CLIENTHELLO_NOT_TLS);
    cr_assert_eq(parse((const uint8_t *)request, 1, &info), CLIENTHELLO_NOT_TLS);
    cr_assert_eq(parse((const uint8_t *)"", 0, &info), CLIENTHELLO_NEED_MORE);
}

Test(clienthello, sslv2_style_hello_has_no_sni)
{
    /* SSLv2-compatible ClientHello: 2-byte length with the high bit, type 1, version 3.1. */
    uint8_t hello[] = { 0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10 };
    struct clienthello_info info;
    cr_assert_eq(parse(hello, sizeof hello, &info), CLIENTHELLO_NO_SNI);
    cr_assert_eq(parse(hello, 2, &info), CLIENTHELLO_NEED_MORE);
}

Test(clienthello, garbage_never_crashes)
{
    /* A cheap in-suite fuzz: random bytes behind a plausible record header. */
    uint32_t state = 12345;
    static uint8_t data[4096];
    for (int round = 0; round < 20000; round++) {
        size_t length = 5 + (state % 600);
        for (size_t i = 0; i < length; i++) {
            state = state * 1103515245u + 12345u;
            data[i] = (uint8_t)(state >> 16);
        }
        data[0] = 0x16;
        data[1] = 0x03;
        if (round % 2)
            data[5] = 0x01;
        struct clienthello_info info;
        enum clienthello_status status = parse(data, length, &info);
        if (status == CLIENTHELLO_FOUND)
            cr_assert_gt(info.server_name_len, 0);
        else
            cr_assert_eq(info.server_name_len, 0);
    }
}
