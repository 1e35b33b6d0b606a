/*
 * test_clienthello.c - the ClientHello parser against real captures and
 * hand-built hostile hellos. What users rely on: the right name (or a
 * refusal) once the whole hello is in, NEED_MORE before, never a wrong name,
 * never a read out of bounds. Every parse runs on an exact-size heap copy so
 * ASan catches a read past the bytes received.
 * Captures come from $SNISPLICE_SHARED/clienthello (else tests/vectors or
 * ../shared when run from the repository root).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/clienthello.h"

#define SCRATCH_SIZE (64 * 1024)
#define RECORD_PAYLOAD_MAX (16384 + 256)

/* Offsets in a one-record hello built by build_hello(). */
#define AT_RECORD_LENGTH 3
#define AT_HANDSHAKE_TYPE 5
#define AT_HANDSHAKE_LENGTH 6

static uint8_t scratch[SCRATCH_SIZE];

/* ---- byte buffers ---- */

struct bytes {
    uint8_t *data;
    size_t length;
    size_t capacity;
};

static struct bytes bytes_new(size_t capacity)
{
    struct bytes buffer = { malloc(capacity), 0, capacity };
    cr_assert_not_null(buffer.data);
    return buffer;
}

static void bytes_free(struct bytes *buffer)
{
    free(buffer->data);
    buffer->data = NULL;
}

static void put(struct bytes *buffer, const void *data, size_t length)
{
    cr_assert_leq(buffer->length + length, buffer->capacity);
    if (length)
        memcpy(buffer->data + buffer->length, data, length);
    buffer->length += length;
}

static void put_u8(struct bytes *buffer, size_t value)
{
    uint8_t byte = (uint8_t)value;
    put(buffer, &byte, 1);
}

static void put_u16(struct bytes *buffer, size_t value)
{
    put_u8(buffer, value >> 8);
    put_u8(buffer, value);
}

static void put_u24(struct bytes *buffer, size_t value)
{
    put_u8(buffer, value >> 16);
    put_u16(buffer, value);
}

static void put_repeated(struct bytes *buffer, uint8_t byte, size_t count)
{
    for (size_t i = 0; i < count; i++)
        put_u8(buffer, byte);
}

/* ---- parsing helpers ---- */

/* Parse a copy of `length` bytes held in a buffer of exactly that size. */
static enum clienthello_status parse_with_scratch(const uint8_t *data, size_t length,
                                                  size_t scratch_size,
                                                  struct clienthello_info *info)
{
    uint8_t *exact = malloc(length ? length : 1);
    cr_assert_not_null(exact);
    if (length)
        memcpy(exact, data, length);
    enum clienthello_status status =
        clienthello_parse(exact, length, scratch_size ? scratch : NULL, scratch_size, info);
    free(exact);
    return status;
}

static enum clienthello_status parse(const uint8_t *data, size_t length,
                                     struct clienthello_info *info)
{
    return parse_with_scratch(data, length, SCRATCH_SIZE, info);
}

static enum clienthello_status parse_bytes(const struct bytes *buffer, struct clienthello_info *info)
{
    return parse(buffer->data, buffer->length, info);
}

static void assert_status(enum clienthello_status got, enum clienthello_status want,
                          const char *what)
{
    cr_assert_eq(got, want, "%s: got %s, want %s", what, clienthello_status_name(got),
                 clienthello_status_name(want));
}

/* ---- framing: one handshake message into TLS records ---- */

/* Records whose payload sizes are taken from `sizes` in turn (the last one repeats). */
static struct bytes frame_message(const uint8_t *message, size_t message_length,
                                  const size_t *sizes, size_t size_count)
{
    struct bytes stream = bytes_new(message_length * 6 + 64);
    size_t offset = 0;
    for (size_t record = 0; offset < message_length; record++) {
        size_t size = sizes[record < size_count ? record : size_count - 1];
        size_t take = message_length - offset < size ? message_length - offset : size;
        put_u8(&stream, 0x16);
        put_u16(&stream, 0x0301);
        put_u16(&stream, take);
        put(&stream, message + offset, take);
        offset += take;
    }
    return stream;
}

static struct bytes frame_uniform(const uint8_t *message, size_t message_length, size_t size)
{
    return frame_message(message, message_length, &size, 1);
}

/* ---- real captures ---- */

struct capture_case {
    const char *file;
    size_t length;
    const char *server_name;
    bool offers_h2_and_http11;
};

static const struct capture_case CAPTURES[] = {
    { "chromium156_matrix.exceptionerror.io.bin", 1932, "matrix.exceptionerror.io", true },
    { "curl_openssl3.0_matrix.exceptionerror.io.bin", 517, "matrix.exceptionerror.io", true },
    { "gnutls3.7_dimension.exceptionerror.io.bin", 409, "dimension.exceptionerror.io", false },
};
#define CAPTURE_COUNT (sizeof CAPTURES / sizeof CAPTURES[0])

static FILE *open_capture(const char *file)
{
    const char *directories[] = { getenv("SNISPLICE_SHARED"), "tests/vectors", "../shared" };
    for (size_t i = 0; i < sizeof directories / sizeof directories[0]; i++) {
        if (!directories[i])
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/clienthello/%s", directories[i], file);
        FILE *stream = fopen(path, "rb");
        if (stream)
            return stream;
    }
    cr_assert_fail("capture %s not found (set SNISPLICE_SHARED)", file);
    return NULL;
}

static struct bytes load_capture(const struct capture_case *capture)
{
    FILE *stream = open_capture(capture->file);
    struct bytes buffer = bytes_new(capture->length);
    buffer.length = fread(buffer.data, 1, capture->length, stream);
    int extra = fgetc(stream);
    fclose(stream);
    cr_assert_eq(buffer.length, capture->length, "%s length", capture->file);
    cr_assert_eq(extra, EOF, "%s is longer than expected", capture->file);
    return buffer;
}

/* The handshake message inside a one-record capture. */
static const uint8_t *capture_message(const struct bytes *capture, size_t *message_length)
{
    const uint8_t *message = capture->data + 5;
    *message_length = 4 + ((size_t)message[1] << 16 | (size_t)message[2] << 8 | message[3]);
    cr_assert_leq(*message_length + 5, capture->length);
    return message;
}

static void expect_capture_result(const struct capture_case *capture,
                                  enum clienthello_status status,
                                  const struct clienthello_info *info, const char *what)
{
    assert_status(status, CLIENTHELLO_FOUND, what);
    cr_assert_str_eq(info->server_name, capture->server_name, "%s", what);
    cr_assert_eq(info->server_name_len, strlen(capture->server_name), "%s", what);
    cr_assert_eq(clienthello_alpn_offers(info, "h2"), capture->offers_h2_and_http11, "%s", what);
    cr_assert_eq(clienthello_alpn_offers(info, "http/1.1"), capture->offers_h2_and_http11,
                 "%s", what);
}

Test(clienthello_capture, each_capture_yields_its_name_and_alpn)
{
    for (size_t c = 0; c < CAPTURE_COUNT; c++) {
        struct bytes capture = load_capture(&CAPTURES[c]);
        struct clienthello_info info;
        expect_capture_result(&CAPTURES[c], parse_bytes(&capture, &info), &info,
                              CAPTURES[c].file);
        bytes_free(&capture);
    }
}

Test(clienthello_capture, alpn_list_is_copied_as_sent)
{
    static const uint8_t h2_http11[] = { 2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
    for (size_t c = 0; c < CAPTURE_COUNT; c++) {
        struct bytes capture = load_capture(&CAPTURES[c]);
        struct clienthello_info info;
        assert_status(parse_bytes(&capture, &info), CLIENTHELLO_FOUND, CAPTURES[c].file);
        if (CAPTURES[c].offers_h2_and_http11) {
            cr_assert_eq(info.alpn_len, sizeof h2_http11);
            cr_assert_arr_eq(info.alpn, h2_http11, sizeof h2_http11);
        } else {
            cr_assert_eq(info.alpn_len, 0, "%s sends no ALPN", CAPTURES[c].file);
        }
        cr_assert_not(clienthello_alpn_offers(&info, "h3"));
        cr_assert_not(clienthello_alpn_offers(&info, "h"));
        cr_assert_not(clienthello_alpn_offers(&info, "http/1.10"));
        cr_assert_not(clienthello_alpn_offers(&info, "acme-tls/1"));
        cr_assert_not(clienthello_alpn_offers(&info, ""));
        bytes_free(&capture);
    }
}

Test(clienthello_capture, every_strict_prefix_needs_more)
{
    for (size_t c = 0; c < CAPTURE_COUNT; c++) {
        struct bytes capture = load_capture(&CAPTURES[c]);
        for (size_t length = 0; length < capture.length; length++) {
            struct clienthello_info info;
            enum clienthello_status status = parse(capture.data, length, &info);
            cr_assert_eq(status, CLIENTHELLO_NEED_MORE, "%s: prefix of %zu answered %s",
                         CAPTURES[c].file, length, clienthello_status_name(status));
            cr_assert_eq(info.server_name_len, 0);
            cr_assert_str_eq(info.server_name, "");
        }
        bytes_free(&capture);
    }
}

Test(clienthello_capture, bytes_after_the_hello_are_ignored)
{
    for (size_t c = 0; c < CAPTURE_COUNT; c++) {
        struct bytes capture = load_capture(&CAPTURES[c]);
        struct bytes stream = bytes_new(capture.length + 200);
        put(&stream, capture.data, capture.length);
        /* What a client may send next: a ChangeCipherSpec and early data. */
        const uint8_t change_cipher_spec[] = { 0x14, 0x03, 0x03, 0x00, 0x01, 0x01 };
        put(&stream, change_cipher_spec, sizeof change_cipher_spec);
        put_repeated(&stream, 0x17, 100);
        struct clienthello_info info;
        expect_capture_result(&CAPTURES[c], parse_bytes(&stream, &info), &info, "trailing bytes");
        bytes_free(&stream);
        bytes_free(&capture);
    }
}

Test(clienthello_capture, reframed_into_uniform_records)
{
    const size_t sizes[] = { 1, 2, 3, 4, 5, 7, 100, 1000, 1460, RECORD_PAYLOAD_MAX };
    for (size_t c = 0; c < CAPTURE_COUNT; c++) {
        struct bytes capture = load_capture(&CAPTURES[c]);
        size_t message_length;
        const uint8_t *message = capture_message(&capture, &message_length);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            struct bytes stream = frame_uniform(message, message_length, sizes[s]);
            struct clienthello_info info;
            char what[128];
            snprintf(what, sizeof what, "%s in %zu-byte records", CAPTURES[c].file, sizes[s]);
            expect_capture_result(&CAPTURES[c], parse_bytes(&stream, &info), &info, what);
            for (size_t cut = 0; cut < stream.length; cut++)
                cr_assert_eq(parse(stream.data, cut, &info), CLIENTHELLO_NEED_MORE,
                             "%s: prefix of %zu", what, cut);
            bytes_free(&stream);
        }
        bytes_free(&capture);
    }
}

Test(clienthello_capture, reframed_into_two_and_three_records)
{
    /* Cuts inside the handshake header, just after it, mid-body and near the end. */
    const size_t cuts[][3] = {
        { 1, RECORD_PAYLOAD_MAX }, { 2, RECORD_PAYLOAD_MAX }, { 3, RECORD_PAYLOAD_MAX },
        { 4, RECORD_PAYLOAD_MAX }, { 200, RECORD_PAYLOAD_MAX }, { 400, RECORD_PAYLOAD_MAX },
        { 1, 1, RECORD_PAYLOAD_MAX }, { 2, 300, RECORD_PAYLOAD_MAX }, { 100, 200, RECORD_PAYLOAD_MAX },
        { 1460, 1, RECORD_PAYLOAD_MAX }, { 3, 1850, RECORD_PAYLOAD_MAX },
    };
    for (size_t c = 0; c < CAPTURE_COUNT; c++) {
        struct bytes capture = load_capture(&CAPTURES[c]);
        size_t message_length;
        const uint8_t *message = capture_message(&capture, &message_length);
        for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
            size_t count = cuts[k][2] ? 3 : 2;
            struct bytes stream = frame_message(message, message_length, cuts[k], count);
            struct clienthello_info info;
            char what[128];
            snprintf(what, sizeof what, "%s split %zu/%zu", CAPTURES[c].file, cuts[k][0],
                     cuts[k][1]);
            expect_capture_result(&CAPTURES[c], parse_bytes(&stream, &info), &info, what);
            bytes_free(&stream);
        }
        bytes_free(&capture);
    }
}

/*
 * Feed `stream` as it would arrive from TCP: segments of `sizes` bytes in turn
 * (the last repeating), parsing everything received after each segment.
 * Every answer before the last segment must be NEED_MORE.
 */
static enum clienthello_status feed_in_segments(const struct bytes *stream, const size_t *sizes,
                                                size_t size_count, struct clienthello_info *info)
{
    size_t received = 0;
    for (size_t segment = 0;; segment++) {
        size_t size = sizes[segment < size_count ? segment : size_count - 1];
        received = stream->length - received < size ? stream->length : received + size;
        enum clienthello_status status = parse(stream->data, received, info);
        if (received == stream->length)
            return status;
        cr_assert_eq(status, CLIENTHELLO_NEED_MORE, "after %zu bytes: %s", received,
                     clienthello_status_name(status));
    }
}

static size_t random_below(uint32_t *state, size_t bound)
{
    *state = *state * 1103515245u + 12345u;
    return (*state >> 8) % bound;
}

Test(clienthello_capture, fed_in_arbitrary_segment_sizes)
{
    const size_t fixed[][1] = { { 1 }, { 7 }, { 536 }, { 1448 }, { 1460 } };
    for (size_t c = 0; c < CAPTURE_COUNT; c++) {
        struct bytes capture = load_capture(&CAPTURES[c]);
        size_t message_length;
        const uint8_t *message = capture_message(&capture, &message_length);
        const size_t record_sizes[] = { RECORD_PAYLOAD_MAX, 1, 3, 250 };
        for (size_t r = 0; r < sizeof record_sizes / sizeof record_sizes[0]; r++) {
            struct bytes stream = frame_uniform(message, message_length, record_sizes[r]);
            struct clienthello_info info;
            for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++)
                expect_capture_result(&CAPTURES[c], feed_in_segments(&stream, fixed[f], 1, &info),
                                      &info, "fixed segments");
            uint32_t state = (uint32_t)(c * 100 + r + 1);
            for (int round = 0; round < 20; round++) {
                size_t sizes[64];
                for (size_t i = 0; i < 64; i++)
                    sizes[i] = 1 + random_below(&state, round % 2 ? 40 : 1500);
                expect_capture_result(&CAPTURES[c], feed_in_segments(&stream, sizes, 64, &info),
                                      &info, "random segments");
            }
            bytes_free(&stream);
        }
        bytes_free(&capture);
    }
}

Test(clienthello_capture, scratch_must_hold_a_message_split_across_records)
{
    struct bytes capture = load_capture(&CAPTURES[0]);
    size_t message_length;
    const uint8_t *message = capture_message(&capture, &message_length);
    struct bytes stream = frame_uniform(message, message_length, 1000);
    struct clienthello_info info;

    expect_capture_result(&CAPTURES[0],
                          parse_with_scratch(stream.data, stream.length, message_length, &info),
                          &info, "scratch exactly the message size");
    assert_status(parse_with_scratch(stream.data, stream.length, message_length - 1, &info),
                  CLIENTHELLO_INVALID, "scratch one byte short");
    assert_status(parse_with_scratch(stream.data, stream.length, 1024, &info),
                  CLIENTHELLO_INVALID, "1 KiB scratch");
    /* Refused as soon as the handshake header says it cannot fit. */
    assert_status(parse_with_scratch(stream.data, 5 + 4, 1024, &info), CLIENTHELLO_INVALID,
                  "handshake header only");
    assert_status(parse_with_scratch(stream.data, 5 + 3, 1024, &info), CLIENTHELLO_NEED_MORE,
                  "handshake header incomplete");

    /* A message inside one record is parsed in place: no scratch needed. */
    expect_capture_result(&CAPTURES[0], parse_with_scratch(capture.data, capture.length, 0, &info),
                          &info, "one record, no scratch");
    bytes_free(&stream);
    bytes_free(&capture);
}

/* ---- synthetic hellos ---- */

struct hello_parts {
    size_t session_id_length;
    size_t cipher_suite_bytes;
    size_t compression_methods;
    const struct bytes *extensions; /* NULL: no extensions block at all */
    size_t trailing_bytes;          /* garbage after the extensions, inside the message */
};

static struct hello_parts parts_with(const struct bytes *extensions)
{
    return (struct hello_parts){ .session_id_length = 32, .cipher_suite_bytes = 4,
                                 .compression_methods = 1, .extensions = extensions };
}

/* The ClientHello handshake message (4-byte header + body) assembled from parts. */
static struct bytes build_message(const struct hello_parts *parts)
{
    size_t extensions_length = parts->extensions ? parts->extensions->length : 0;
    struct bytes message = bytes_new(200 + parts->session_id_length + parts->cipher_suite_bytes +
                                     parts->compression_methods + extensions_length +
                                     parts->trailing_bytes);
    size_t body_length = 2 + 32 + 1 + parts->session_id_length + 2 + parts->cipher_suite_bytes +
                         1 + parts->compression_methods +
                         (parts->extensions ? 2 + extensions_length : 0) + parts->trailing_bytes;
    put_u8(&message, 1);
    put_u24(&message, body_length);
    put_u16(&message, 0x0303);
    put_repeated(&message, 0xab, 32);
    put_u8(&message, parts->session_id_length);
    put_repeated(&message, 0x5e, parts->session_id_length);
    put_u16(&message, parts->cipher_suite_bytes);
    for (size_t i = 0; i < parts->cipher_suite_bytes; i++)
        put_u8(&message, i % 2 ? 0x01 + i / 2 : 0x13);
    put_u8(&message, parts->compression_methods);
    put_repeated(&message, 0, parts->compression_methods);
    if (parts->extensions) {
        put_u16(&message, extensions_length);
        put(&message, parts->extensions->data, extensions_length);
    }
    put_repeated(&message, 0xee, parts->trailing_bytes);
    return message;
}

/* record + handshake + extensions, in as few records as TLS allows. */
static struct bytes build_hello(const struct hello_parts *parts)
{
    struct bytes message = build_message(parts);
    struct bytes stream = frame_uniform(message.data, message.length, RECORD_PAYLOAD_MAX);
    bytes_free(&message);
    return stream;
}

static struct bytes hello_with(const struct bytes *extensions)
{
    struct hello_parts parts = parts_with(extensions);
    return build_hello(&parts);
}

static void put_extension(struct bytes *extensions, size_t type, const void *data, size_t length)
{
    put_u16(extensions, type);
    put_u16(extensions, length);
    put(extensions, data, length);
}

/* A server_name extension holding one host_name entry. */
static void put_sni_extension(struct bytes *extensions, const char *name, size_t name_length)
{
    put_u16(extensions, 0);
    put_u16(extensions, name_length + 5);
    put_u16(extensions, name_length + 3);
    put_u8(extensions, 0);
    put_u16(extensions, name_length);
    put(extensions, name, name_length);
}

static void put_alpn_extension(struct bytes *extensions, const char *const *protocols,
                               size_t count)
{
    size_t list_length = 0;
    for (size_t i = 0; i < count; i++)
        list_length += 1 + strlen(protocols[i]);
    put_u16(extensions, 16);
    put_u16(extensions, list_length + 2);
    put_u16(extensions, list_length);
    for (size_t i = 0; i < count; i++) {
        put_u8(extensions, strlen(protocols[i]));
        put(extensions, protocols[i], strlen(protocols[i]));
    }
}

/* Every prefix of a refused hello must answer NEED_MORE or INVALID, never a name. */
static void assert_prefixes_never_found(const struct bytes *stream)
{
    for (size_t cut = 0; cut < stream->length; cut++) {
        struct clienthello_info info;
        enum clienthello_status status = parse(stream->data, cut, &info);
        cr_assert(status == CLIENTHELLO_NEED_MORE || status == CLIENTHELLO_INVALID,
                  "prefix of %zu answered %s", cut, clienthello_status_name(status));
    }
}

static enum clienthello_status status_for_name(const char *name, size_t length,
                                               struct clienthello_info *info)
{
    struct bytes extensions = bytes_new(length + 64);
    put_sni_extension(&extensions, name, length);
    struct bytes hello = hello_with(&extensions);
    enum clienthello_status status = parse_bytes(&hello, info);
    if (status == CLIENTHELLO_INVALID)
        assert_prefixes_never_found(&hello);
    bytes_free(&hello);
    bytes_free(&extensions);
    return status;
}

static void expect_invalid(const struct bytes *hello, const char *what)
{
    struct clienthello_info info;
    assert_status(parse_bytes(hello, &info), CLIENTHELLO_INVALID, what);
    cr_assert_eq(info.server_name_len, 0, "%s", what);
    cr_assert_str_eq(info.server_name, "", "%s", what);
    cr_assert_eq(info.alpn_len, 0, "%s", what);
    assert_prefixes_never_found(hello);
}

Test(clienthello_synthetic, minimal_hello_with_sni)
{
    struct clienthello_info info;
    assert_status(status_for_name("example.com", 11, &info), CLIENTHELLO_FOUND, "example.com");
    cr_assert_str_eq(info.server_name, "example.com");
    cr_assert_eq(info.server_name_len, 11);
    cr_assert_eq(info.alpn_len, 0);
}

Test(clienthello_synthetic, name_is_lowercased_and_one_trailing_dot_dropped)
{
    struct clienthello_info info;
    assert_status(status_for_name("Blog.Example.COM.", 17, &info), CLIENTHELLO_FOUND, "mixed");
    cr_assert_str_eq(info.server_name, "blog.example.com");
    cr_assert_eq(info.server_name_len, 16);
    cr_assert_str_eq(info.server_name_as_sent, "Blog.Example.COM", "the case as sent, for \"~\" routes");
    assert_status(status_for_name("example.com..", 13, &info), CLIENTHELLO_INVALID, "two dots");
}

/* OpenSSL and curl send names with underscores; nginx hands them to its
 * map like any other (found by a review: they were closed as invalid). */
Test(clienthello_synthetic, underscores_are_part_of_a_name)
{
    struct clienthello_info info;
    assert_status(status_for_name("Matrix_Synapse.lan", 18, &info), CLIENTHELLO_FOUND, "underscore");
    cr_assert_str_eq(info.server_name, "matrix_synapse.lan");
}

Test(clienthello_synthetic, invalid_server_names_are_refused)
{
    const char *bad[] = { "a b.com", "ex..com", ".example.com", "exa\x01mple.com",
                          "*.example.com", "caf\xc3\xa9.com", "example.com:443", ".", "a/b" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct clienthello_info info;
        assert_status(status_for_name(bad[i], strlen(bad[i]), &info), CLIENTHELLO_INVALID, bad[i]);
        cr_assert_eq(info.server_name_len, 0);
        cr_assert_str_eq(info.server_name, "");
    }
    struct clienthello_info info;
    assert_status(status_for_name("", 0, &info), CLIENTHELLO_INVALID, "empty name");
    assert_status(status_for_name("a\0b.com", 7, &info), CLIENTHELLO_INVALID, "NUL inside");
    assert_status(status_for_name("a.com\0", 6, &info), CLIENTHELLO_INVALID, "NUL at the end");
}

Test(clienthello_synthetic, hyphens_follow_the_hostname_rules)
{
    /* hostname.c accepts '-' anywhere in a label, as nginx does. */
    const char *names[] = { "-", "-a.com", "a-.com", "my-host.example.com", "xn--bcher-kva.ch" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct clienthello_info info;
        assert_status(status_for_name(names[i], strlen(names[i]), &info), CLIENTHELLO_FOUND,
                      names[i]);
        cr_assert_str_eq(info.server_name, names[i]);
    }
}

Test(clienthello_synthetic, name_length_limit_is_253)
{
    char name[300];
    for (size_t i = 0; i < sizeof name; i++)
        name[i] = (i % 64 == 63) ? '.' : 'a';
    name[252] = 'a';
    name[253] = 'a';
    struct clienthello_info info;
    assert_status(status_for_name(name, 253, &info), CLIENTHELLO_FOUND, "253 bytes");
    cr_assert_eq(info.server_name_len, 253);
    cr_assert_eq(strlen(info.server_name), 253);
    assert_status(status_for_name(name, 254, &info), CLIENTHELLO_INVALID, "254 bytes");
    name[253] = '.';
    assert_status(status_for_name(name, 254, &info), CLIENTHELLO_FOUND, "253 + trailing dot");
    cr_assert_eq(info.server_name_len, 253);
}

Test(clienthello_synthetic, sixteen_kib_name_is_invalid_not_a_crash)
{
    char *name = malloc(16000);
    memset(name, 'a', 16000);
    struct clienthello_info info;
    assert_status(status_for_name(name, 16000, &info), CLIENTHELLO_INVALID, "16000-byte name");
    free(name);
}

Test(clienthello_synthetic, duplicate_sni_extension_is_invalid)
{
    const uint8_t empty_list[] = { 0x00, 0x00 };
    struct bytes extensions = bytes_new(100);
    put_sni_extension(&extensions, "a.com", 5);
    put_sni_extension(&extensions, "b.com", 5);
    struct bytes hello = hello_with(&extensions);
    expect_invalid(&hello, "two server_name extensions");
    bytes_free(&hello);

    /* The second one carries no host_name: still a duplicate extension. */
    extensions.length = 0;
    put_sni_extension(&extensions, "a.com", 5);
    put_extension(&extensions, 0, empty_list, sizeof empty_list);
    hello = hello_with(&extensions);
    expect_invalid(&hello, "server_name, then one without host_name");
    bytes_free(&hello);

    extensions.length = 0;
    put_extension(&extensions, 0, empty_list, sizeof empty_list);
    put_extension(&extensions, 0, empty_list, sizeof empty_list);
    hello = hello_with(&extensions);
    expect_invalid(&hello, "two server_name extensions without host_name");
    bytes_free(&hello);
    bytes_free(&extensions);
}

Test(clienthello_synthetic, two_host_names_in_one_extension_are_invalid)
{
    struct bytes extensions = bytes_new(100);
    put_u16(&extensions, 0);
    put_u16(&extensions, 2 + 2 * (3 + 5));
    put_u16(&extensions, 2 * (3 + 5));
    for (int i = 0; i < 2; i++) {
        put_u8(&extensions, 0);
        put_u16(&extensions, 5);
        put(&extensions, i ? "b.com" : "a.com", 5);
    }
    struct bytes hello = hello_with(&extensions);
    expect_invalid(&hello, "two host_name entries");
    bytes_free(&hello);
    bytes_free(&extensions);
}

Test(clienthello_synthetic, sni_extension_without_host_name_means_no_sni)
{
    struct clienthello_info info;
    /* Only an entry of another name type. */
    struct bytes extensions = bytes_new(100);
    const uint8_t other_type[] = { 0x00, 0x08, 0x01, 0x00, 0x05, 'a', '.', 'c', 'o', 'm' };
    put_extension(&extensions, 0, other_type, sizeof other_type);
    struct bytes hello = hello_with(&extensions);
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_NO_SNI, "other name type");
    cr_assert_eq(info.server_name_len, 0);
    bytes_free(&hello);

    /* An empty server_name_list. */
    extensions.length = 0;
    const uint8_t empty_list[] = { 0x00, 0x00 };
    put_extension(&extensions, 0, empty_list, sizeof empty_list);
    hello = hello_with(&extensions);
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_NO_SNI, "empty list");
    bytes_free(&hello);
    bytes_free(&extensions);
}

Test(clienthello_synthetic, host_name_next_to_other_name_types_is_found)
{
    struct bytes extensions = bytes_new(100);
    const uint8_t entries[] = { 0x00, 0x10, 0x07, 0x00, 0x02, 'x', 'y',
                                0x00, 0x00, 0x08, 'E', 'x', '.', 'c', 'o', 'm', '.', '.' };
    /* The host_name is "Ex.com.." (invalid) on purpose first, then fixed below. */
    put_extension(&extensions, 0, entries, sizeof entries);
    struct bytes hello = hello_with(&extensions);
    expect_invalid(&hello, "bad host_name after another type");
    bytes_free(&hello);

    uint8_t fixed[sizeof entries];
    memcpy(fixed, entries, sizeof entries);
    fixed[sizeof fixed - 1] = 'x';
    extensions.length = 0;
    put_extension(&extensions, 0, fixed, sizeof fixed);
    hello = hello_with(&extensions);
    struct clienthello_info info;
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_FOUND, "host_name after another type");
    cr_assert_str_eq(info.server_name, "ex.com.x");
    bytes_free(&hello);
    bytes_free(&extensions);
}

Test(clienthello_synthetic, malformed_sni_extension_is_invalid)
{
    const struct {
        const char *what;
        uint8_t data[16];
        size_t length;
    } cases[] = {
        { "no extension data", { 0 }, 0 },
        { "list length one byte", { 0x00 }, 1 },
        { "list longer than the extension", { 0x00, 0x09, 0x00, 0x00, 0x03, 'a', '.', 'b' }, 8 },
        { "list shorter than the extension", { 0x00, 0x06, 0x00, 0x00, 0x03, 'a', '.', 'b', 0xff }, 9 },
        { "name longer than the list", { 0x00, 0x06, 0x00, 0x00, 0x04, 'a', '.', 'b' }, 8 },
        { "entry cut inside its length", { 0x00, 0x02, 0x00, 0x00 }, 4 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bytes extensions = bytes_new(100);
        put_extension(&extensions, 0, cases[i].data, cases[i].length);
        struct bytes hello = hello_with(&extensions);
        expect_invalid(&hello, cases[i].what);
        bytes_free(&hello);
        bytes_free(&extensions);
    }
}

Test(clienthello_synthetic, no_extensions_means_no_sni)
{
    struct clienthello_info info;
    struct hello_parts parts = parts_with(NULL);
    struct bytes hello = build_hello(&parts);
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_NO_SNI, "no extensions block");
    cr_assert_eq(info.server_name_len, 0);
    cr_assert_eq(info.alpn_len, 0);
    for (size_t cut = 0; cut < hello.length; cut++)
        assert_status(parse(hello.data, cut, &info), CLIENTHELLO_NEED_MORE, "prefix");
    bytes_free(&hello);

    struct bytes empty = bytes_new(1);
    hello = hello_with(&empty);
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_NO_SNI, "empty extensions block");
    bytes_free(&hello);
    bytes_free(&empty);
}

Test(clienthello_synthetic, hundreds_of_extensions)
{
    struct bytes extensions = bytes_new(8192);
    for (size_t i = 0; i < 600; i++) {
        uint8_t data[4] = { (uint8_t)(i >> 8), (uint8_t)i, 0xaa, 0xbb };
        put_extension(&extensions, 1000 + i, data, i % 3 ? sizeof data : 0);
    }
    put_sni_extension(&extensions, "late.example.com", 16);
    struct bytes hello = hello_with(&extensions);
    struct clienthello_info info;
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_FOUND, "600 extensions then SNI");
    cr_assert_str_eq(info.server_name, "late.example.com");

    /* The same hello split into 100-byte records. */
    struct bytes message = build_message(&(struct hello_parts){ .session_id_length = 0,
                                                               .cipher_suite_bytes = 2,
                                                               .compression_methods = 1,
                                                               .extensions = &extensions });
    struct bytes stream = frame_uniform(message.data, message.length, 100);
    assert_status(parse_bytes(&stream, &info), CLIENTHELLO_FOUND, "in 100-byte records");
    cr_assert_str_eq(info.server_name, "late.example.com");
    bytes_free(&stream);
    bytes_free(&message);
    bytes_free(&hello);
    bytes_free(&extensions);
}

Test(clienthello_synthetic, message_larger_than_one_record)
{
    /* A 20000-byte padding extension forces the message over two records. */
    struct bytes extensions = bytes_new(21000);
    put_sni_extension(&extensions, "big.example.com", 15);
    uint8_t *padding = calloc(20000, 1);
    put_extension(&extensions, 21, padding, 20000);
    free(padding);
    struct bytes hello = hello_with(&extensions);
    struct clienthello_info info;
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_FOUND, "two full records");
    cr_assert_str_eq(info.server_name, "big.example.com");
    assert_status(parse_with_scratch(hello.data, hello.length, 16384, &info), CLIENTHELLO_INVALID,
                  "16 KiB scratch");
    bytes_free(&hello);
    bytes_free(&extensions);
}

Test(clienthello_synthetic, extension_lengths_must_match)
{
    struct bytes extensions = bytes_new(100);
    put_sni_extension(&extensions, "a.com", 5);
    struct bytes good = hello_with(&extensions);
    size_t at_extensions_length = good.length - extensions.length - 2;
    struct clienthello_info info;
    assert_status(parse_bytes(&good, &info), CLIENTHELLO_FOUND, "unmodified");

    struct bytes hello = hello_with(&extensions);
    hello.data[at_extensions_length + 1] += 1;
    expect_invalid(&hello, "extensions length one too long");

    memcpy(hello.data, good.data, good.length);
    hello.data[at_extensions_length + 1] -= 1;
    expect_invalid(&hello, "extensions length one too short");

    memcpy(hello.data, good.data, good.length);
    hello.data[at_extensions_length + 2 + 3] += 1;
    expect_invalid(&hello, "SNI extension longer than the block");

    memcpy(hello.data, good.data, good.length);
    hello.data[at_extensions_length + 2 + 3] -= 1;
    expect_invalid(&hello, "SNI extension shorter than its list");
    bytes_free(&hello);
    bytes_free(&good);

    struct hello_parts parts = parts_with(&extensions);
    parts.trailing_bytes = 3;
    hello = build_hello(&parts);
    expect_invalid(&hello, "garbage after the extensions");
    bytes_free(&hello);

    /* A lone byte where the extensions length would be. */
    parts = parts_with(NULL);
    parts.trailing_bytes = 1;
    hello = build_hello(&parts);
    expect_invalid(&hello, "one byte after compression methods");
    bytes_free(&hello);

    /* An extension header cut short at the end of the block. */
    struct bytes truncated = bytes_new(100);
    put_sni_extension(&truncated, "a.com", 5);
    put_u16(&truncated, 23);
    put_u8(&truncated, 0);
    hello = hello_with(&truncated);
    expect_invalid(&hello, "extension header cut short");
    bytes_free(&hello);
    bytes_free(&truncated);
    bytes_free(&extensions);
}

Test(clienthello_synthetic, fixed_fields_are_checked)
{
    struct bytes extensions = bytes_new(100);
    put_sni_extension(&extensions, "a.com", 5);
    const struct {
        const char *what;
        size_t session_id_length, cipher_suite_bytes, compression_methods;
    } cases[] = {
        { "session id of 33 bytes", 33, 2, 1 },
        { "no cipher suites", 0, 0, 1 },
        { "odd cipher suites length", 0, 3, 1 },
        { "no compression methods", 0, 2, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hello_parts parts = parts_with(&extensions);
        parts.session_id_length = cases[i].session_id_length;
        parts.cipher_suite_bytes = cases[i].cipher_suite_bytes;
        parts.compression_methods = cases[i].compression_methods;
        struct bytes hello = build_hello(&parts);
        expect_invalid(&hello, cases[i].what);
        bytes_free(&hello);
    }
    bytes_free(&extensions);
}

Test(clienthello_synthetic, bad_record_header_is_invalid)
{
    struct bytes extensions = bytes_new(100);
    put_sni_extension(&extensions, "a.com", 5);
    struct bytes hello = hello_with(&extensions);
    struct clienthello_info info;

    hello.data[AT_RECORD_LENGTH] = 0;
    hello.data[AT_RECORD_LENGTH + 1] = 0;
    assert_status(parse(hello.data, 5, &info), CLIENTHELLO_INVALID, "empty record, header only");
    expect_invalid(&hello, "empty record");

    hello.data[AT_RECORD_LENGTH] = 0x41; /* 16641: one more than TLS allows */
    hello.data[AT_RECORD_LENGTH + 1] = 0x01;
    assert_status(parse(hello.data, 5, &info), CLIENTHELLO_INVALID, "16641-byte record");
    hello.data[AT_RECORD_LENGTH + 1] = 0x00; /* 16640 is allowed; the message inside is complete */
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_FOUND, "16640-byte record");

    const uint8_t bad_version[] = { 0x16, 0x02 };
    assert_status(parse(bad_version, 2, &info), CLIENTHELLO_INVALID, "record version 2.x");
    const uint8_t good_start[] = { 0x16, 0x03 };
    assert_status(parse(good_start, 1, &info), CLIENTHELLO_NEED_MORE, "one byte");
    assert_status(parse(good_start, 2, &info), CLIENTHELLO_NEED_MORE, "two bytes");
    bytes_free(&hello);
    bytes_free(&extensions);
}

Test(clienthello_synthetic, bad_handshake_header_is_invalid)
{
    struct bytes extensions = bytes_new(100);
    put_sni_extension(&extensions, "a.com", 5);
    struct bytes good = hello_with(&extensions);
    struct bytes hello = hello_with(&extensions);
    struct clienthello_info info;

    hello.data[AT_HANDSHAKE_TYPE] = 2; /* a ServerHello */
    assert_status(parse(hello.data, 6, &info), CLIENTHELLO_INVALID, "type known at byte 6");
    expect_invalid(&hello, "handshake type 2");

    memcpy(hello.data, good.data, good.length);
    memset(hello.data + AT_HANDSHAKE_LENGTH, 0, 3);
    assert_status(parse(hello.data, 9, &info), CLIENTHELLO_INVALID, "length 0 known at byte 9");
    expect_invalid(&hello, "handshake length 0");

    memcpy(hello.data, good.data, good.length);
    hello.data[AT_HANDSHAKE_LENGTH + 2] = 40; /* one byte below the smallest ClientHello */
    expect_invalid(&hello, "handshake length 40");

    /* Shorter than the record: the message ends inside the extensions. */
    memcpy(hello.data, good.data, good.length);
    hello.data[AT_HANDSHAKE_LENGTH + 2] -= 4;
    expect_invalid(&hello, "handshake length 4 short");

    /* Longer than the record: more records must follow, and cannot fit a 1 KiB scratch. */
    memcpy(hello.data, good.data, good.length);
    hello.data[AT_HANDSHAKE_LENGTH + 1] = 0x03;
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_NEED_MORE, "awaiting more records");
    assert_status(parse_with_scratch(hello.data, 9, 512, &info), CLIENTHELLO_INVALID,
                  "cannot fit scratch");
    hello.data[AT_HANDSHAKE_LENGTH] = 0xff; /* 16 MiB: beyond any scratch */
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_INVALID, "16 MiB message");
    bytes_free(&hello);
    bytes_free(&good);
    bytes_free(&extensions);
}

Test(clienthello_synthetic, non_handshake_record_before_the_hello_completes_is_invalid)
{
    struct bytes extensions = bytes_new(100);
    put_sni_extension(&extensions, "a.com", 5);
    struct bytes message = build_message(&(struct hello_parts){ .session_id_length = 0,
                                                               .cipher_suite_bytes = 2,
                                                               .compression_methods = 1,
                                                               .extensions = &extensions });
    const size_t sizes[] = { 20, RECORD_PAYLOAD_MAX };
    struct bytes first = frame_message(message.data, message.length, sizes, 2);
    first.length = 5 + 20; /* only the first record */
    const uint8_t intruders[][7] = {
        { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28 }, /* alert */
        { 0x14, 0x03, 0x03, 0x00, 0x01, 0x01 },       /* change_cipher_spec */
        { 0x17, 0x03, 0x03, 0x00, 0x02, 0xaa, 0xbb }, /* application data */
        { 0x16, 0x02, 0x00, 0x00, 0x02, 0xaa, 0xbb }, /* handshake, bad version */
    };
    struct clienthello_info info;
    assert_status(parse_bytes(&first, &info), CLIENTHELLO_NEED_MORE, "first record alone");
    for (size_t i = 0; i < sizeof intruders / sizeof intruders[0]; i++) {
        struct bytes stream = bytes_new(100);
        put(&stream, first.data, first.length);
        put(&stream, intruders[i], sizeof intruders[i]);
        expect_invalid(&stream, "intruding record");
        /* Refused as soon as the intruder's type (or version) byte arrives. */
        assert_status(parse(stream.data, first.length + 2, &info), CLIENTHELLO_INVALID,
                      "early abort");
        bytes_free(&stream);
    }
    bytes_free(&first);
    bytes_free(&message);
    bytes_free(&extensions);
}

Test(clienthello_synthetic, alpn_is_validated_and_copied)
{
    const char *protocols[] = { "acme-tls/1", "h2", "http/1.1" };
    struct bytes extensions = bytes_new(200);
    put_alpn_extension(&extensions, protocols, 3);
    put_sni_extension(&extensions, "a.com", 5);
    struct bytes hello = hello_with(&extensions);
    struct clienthello_info info;
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_FOUND, "ALPN then SNI");
    cr_assert(clienthello_alpn_offers(&info, "acme-tls/1"));
    cr_assert(clienthello_alpn_offers(&info, "h2"));
    cr_assert(clienthello_alpn_offers(&info, "http/1.1"));
    cr_assert_not(clienthello_alpn_offers(&info, "acme-tls"));
    cr_assert_not(clienthello_alpn_offers(&info, "h2c"));
    cr_assert_eq(info.alpn_len, 11 + 3 + 9);
    bytes_free(&hello);

    /* ALPN is reported without SNI too. */
    extensions.length = 0;
    put_alpn_extension(&extensions, protocols, 1);
    hello = hello_with(&extensions);
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_NO_SNI, "ALPN only");
    cr_assert(clienthello_alpn_offers(&info, "acme-tls/1"));
    cr_assert_not(clienthello_alpn_offers(&info, "h2"));
    bytes_free(&hello);
    bytes_free(&extensions);
}

Test(clienthello_synthetic, malformed_alpn_is_invalid)
{
    const struct {
        const char *what;
        uint8_t data[16];
        size_t length;
    } cases[] = {
        { "no extension data", { 0 }, 0 },
        { "empty list", { 0x00, 0x00 }, 2 },
        { "empty protocol name", { 0x00, 0x04, 0x02, 'h', '2', 0x00 }, 6 },
        { "list longer than the extension", { 0x00, 0x04, 0x02, 'h', '2' }, 5 },
        { "list shorter than the extension", { 0x00, 0x02, 0x01, 'h', 0x01 }, 5 },
        { "name longer than the list", { 0x00, 0x03, 0x03, 'h', '2' }, 5 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bytes extensions = bytes_new(100);
        put_sni_extension(&extensions, "a.com", 5);
        put_extension(&extensions, 16, cases[i].data, cases[i].length);
        struct bytes hello = hello_with(&extensions);
        expect_invalid(&hello, cases[i].what);
        bytes_free(&hello);
        bytes_free(&extensions);
    }

    const char *protocols[] = { "h2" };
    struct bytes extensions = bytes_new(100);
    put_alpn_extension(&extensions, protocols, 1);
    put_alpn_extension(&extensions, protocols, 1);
    struct bytes hello = hello_with(&extensions);
    expect_invalid(&hello, "duplicate ALPN extension");
    bytes_free(&hello);
    bytes_free(&extensions);
}

Test(clienthello_synthetic, long_alpn_list_is_truncated_at_an_entry)
{
    /* 40 entries of "proto-NN" (9 bytes each on the wire): 28 fit in 256 bytes. */
    char names[40][16];
    const char *protocols[40];
    for (size_t i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "proto-%02zu", i);
        protocols[i] = names[i];
    }
    struct bytes extensions = bytes_new(1000);
    put_alpn_extension(&extensions, protocols, 40);
    put_sni_extension(&extensions, "a.com", 5);
    struct bytes hello = hello_with(&extensions);
    struct clienthello_info info;
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_FOUND, "40 protocols");
    cr_assert_eq(info.alpn_len, 28 * 9);
    cr_assert(clienthello_alpn_offers(&info, "proto-00"));
    cr_assert(clienthello_alpn_offers(&info, "proto-27"));
    cr_assert_not(clienthello_alpn_offers(&info, "proto-28"));
    cr_assert_not(clienthello_alpn_offers(&info, "proto-39"));
    bytes_free(&hello);

    /* A single 255-byte name fills the 256 bytes exactly; a later one is dropped. */
    char longest[256];
    memset(longest, 'p', 255);
    longest[255] = '\0';
    const char *exact[] = { longest, "h2" };
    extensions.length = 0;
    put_alpn_extension(&extensions, exact, 2);
    hello = hello_with(&extensions);
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_NO_SNI, "255-byte name");
    cr_assert_eq(info.alpn_len, CLIENTHELLO_ALPN_MAX);
    cr_assert(clienthello_alpn_offers(&info, longest));
    cr_assert_not(clienthello_alpn_offers(&info, "h2"));
    bytes_free(&hello);

    /* Entries after one that does not fit are dropped too, keeping the order. */
    const char *order[] = { "h2", longest, "x" };
    extensions.length = 0;
    put_alpn_extension(&extensions, order, 3);
    hello = hello_with(&extensions);
    assert_status(parse_bytes(&hello, &info), CLIENTHELLO_NO_SNI, "h2 then 255-byte name");
    cr_assert_eq(info.alpn_len, 3);
    cr_assert(clienthello_alpn_offers(&info, "h2"));
    cr_assert_not(clienthello_alpn_offers(&info, "x"));
    bytes_free(&hello);
    bytes_free(&extensions);
}

/* ---- not TLS at all ---- */

Test(clienthello_other, plain_http_is_not_tls_from_the_first_byte)
{
    const char *request = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    struct clienthello_info info;
    assert_status(parse((const uint8_t *)request, strlen(request), &info), CLIENTHELLO_NOT_TLS,
                  "whole request");
    assert_status(parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &info), CLIENTHELLO_NOT_TLS,
                  "request line");
    assert_status(parse((const uint8_t *)request, 1, &info), CLIENTHELLO_NOT_TLS, "one byte");
    cr_assert_eq(info.server_name_len, 0);
    assert_status(parse((const uint8_t *)"", 0, &info), CLIENTHELLO_NEED_MORE, "nothing yet");
    assert_status(clienthello_parse(NULL, 0, NULL, 0, &info), CLIENTHELLO_NEED_MORE, "NULL");
    const uint8_t ssh[] = "SSH-2.0-OpenSSH_9.2\r\n";
    assert_status(parse(ssh, sizeof ssh - 1, &info), CLIENTHELLO_NOT_TLS, "ssh banner");
    const uint8_t application_data[] = { 0x17, 0x03, 0x03, 0x00, 0x01, 0x00 };
    assert_status(parse(application_data, sizeof application_data, &info), CLIENTHELLO_NOT_TLS,
                  "TLS application data first");
}

Test(clienthello_other, sslv2_style_hello_has_no_sni)
{
    /* SSLv2-compatible ClientHello: 2-byte length with the high bit set, type 1, version 3.1. */
    const uint8_t hello[] = { 0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10 };
    struct clienthello_info info;
    assert_status(parse(hello, sizeof hello, &info), CLIENTHELLO_NO_SNI, "SSLv2 hello");
    cr_assert_eq(info.server_name_len, 0);
    assert_status(parse(hello, 3, &info), CLIENTHELLO_NO_SNI, "type byte is enough");
    assert_status(parse(hello, 2, &info), CLIENTHELLO_NEED_MORE, "before the type byte");
    assert_status(parse(hello, 1, &info), CLIENTHELLO_NEED_MORE, "one byte");
    const uint8_t other[] = { 0x80, 0x2e, 0x04, 0x03, 0x01 };
    assert_status(parse(other, sizeof other, &info), CLIENTHELLO_NOT_TLS, "SSLv2 other type");
}

Test(clienthello_other, status_names)
{
    cr_assert_str_eq(clienthello_status_name(CLIENTHELLO_NEED_MORE), "need_more");
    cr_assert_str_eq(clienthello_status_name(CLIENTHELLO_FOUND), "found");
    cr_assert_str_eq(clienthello_status_name(CLIENTHELLO_NO_SNI), "no_sni");
    cr_assert_str_eq(clienthello_status_name(CLIENTHELLO_NOT_TLS), "not_tls");
    cr_assert_str_eq(clienthello_status_name(CLIENTHELLO_INVALID), "invalid");
}

/* ---- robustness ---- */

Test(clienthello_robustness, mutated_captures_never_misbehave)
{
    /* A cheap in-suite fuzz: flip bytes of real hellos. A complete verdict
     * must not change when a prefix already gave one, and FOUND always
     * carries a valid normalised name. */
    uint32_t state = 12345;
    for (size_t c = 0; c < CAPTURE_COUNT; c++) {
        struct bytes capture = load_capture(&CAPTURES[c]);
        for (int round = 0; round < 3000; round++) {
            struct bytes mutated = bytes_new(capture.length);
            put(&mutated, capture.data, capture.length);
            for (size_t flips = 1 + random_below(&state, 4); flips > 0; flips--)
                mutated.data[random_below(&state, mutated.length)] = (uint8_t)random_below(&state, 256);
            mutated.length = 1 + random_below(&state, mutated.length);
            struct clienthello_info info, prefix_info;
            enum clienthello_status status = parse_bytes(&mutated, &info);
            if (status == CLIENTHELLO_FOUND) {
                char normal[HOSTNAME_MAX + 1];
                size_t normal_length;
                cr_assert(hostname_normalize(info.server_name, info.server_name_len, normal,
                                             &normal_length));
                cr_assert_str_eq(normal, info.server_name);
            } else {
                cr_assert_eq(info.server_name_len, 0);
            }
            enum clienthello_status prefix = parse(mutated.data, mutated.length / 2, &prefix_info);
            cr_assert(prefix == CLIENTHELLO_NEED_MORE || prefix == status,
                      "prefix said %s, whole said %s", clienthello_status_name(prefix),
                      clienthello_status_name(status));
            bytes_free(&mutated);
        }
        bytes_free(&capture);
    }
}
