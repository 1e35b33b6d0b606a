/*
 * hello.c - loading captured ClientHellos and building synthetic ones.
 *
 * Owns the byte layout of the hellos it builds (RFC 8446 section 4.1.2,
 * RFC 6066 section 3); each returned buffer belongs to the caller.
 */
#include "hello.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child_process.h"

#define TLS_RECORD_HEADER 5

const char *hello_shared_directory(void)
{
    const char *shared = getenv("SNISPLICE_SHARED");
    return shared && *shared ? shared : "../shared";
}

struct hello_bytes hello_load_capture(const char *file_name)
{
    struct hello_bytes hello = {0};
    char *path = NULL;
    if (asprintf(&path, "%s/clienthello/%s", hello_shared_directory(), file_name) < 0)
        abort();
    hello.data = (uint8_t *)file_read_all(path, &hello.length);
    free(path);
    if (!hello.data)
        hello.length = 0;
    return hello;
}

/* Growable byte writer with back-patched length prefixes. */
struct writer {
    uint8_t data[1024];
    size_t length;
};

static void put_bytes(struct writer *writer, const void *bytes, size_t count)
{
    if (writer->length + count > sizeof writer->data)
        abort();
    memcpy(writer->data + writer->length, bytes, count);
    writer->length += count;
}

static void put_u8(struct writer *writer, unsigned value)
{
    uint8_t byte = (uint8_t)value;
    put_bytes(writer, &byte, 1);
}

static void put_u16(struct writer *writer, unsigned value)
{
    put_u8(writer, value >> 8);
    put_u8(writer, value);
}

/* Reserve a big-endian length field of `width` bytes; returns its position. */
static size_t open_length(struct writer *writer, size_t width)
{
    size_t position = writer->length;
    for (size_t i = 0; i < width; i++)
        put_u8(writer, 0);
    return position;
}

static void close_length(struct writer *writer, size_t position, size_t width)
{
    size_t value = writer->length - position - width;
    for (size_t i = 0; i < width; i++)
        writer->data[position + i] = (uint8_t)(value >> (8 * (width - 1 - i)));
}

static void put_server_name_extension(struct writer *writer, const char *server_name)
{
    put_u16(writer, 0x0000); /* server_name */
    size_t extension = open_length(writer, 2);
    size_t list = open_length(writer, 2);
    put_u8(writer, 0); /* host_name */
    put_u16(writer, (unsigned)strlen(server_name));
    put_bytes(writer, server_name, strlen(server_name));
    close_length(writer, list, 2);
    close_length(writer, extension, 2);
}

/* Enough for a TLS 1.2 server with an RSA certificate to answer with a ServerHello. */
static void put_other_extensions(struct writer *writer)
{
    static const uint8_t supported_groups[] = {0x00, 0x0a, 0x00, 0x06, 0x00, 0x04,
                                               0x00, 0x1d, 0x00, 0x17};
    static const uint8_t point_formats[] = {0x00, 0x0b, 0x00, 0x02, 0x01, 0x00};
    static const uint8_t signature_algorithms[] = {0x00, 0x0d, 0x00, 0x06, 0x00, 0x04,
                                                   0x08, 0x04, 0x04, 0x01};
    static const uint8_t alpn_h2_http11[] = {0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, 'h', '2',
                                             0x08, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    put_bytes(writer, supported_groups, sizeof supported_groups);
    put_bytes(writer, point_formats, sizeof point_formats);
    put_bytes(writer, signature_algorithms, sizeof signature_algorithms);
    put_bytes(writer, alpn_h2_http11, sizeof alpn_h2_http11);
}

struct hello_bytes hello_build(const char *server_name)
{
    struct writer writer = {.length = 0};
    put_u8(&writer, 0x16);
    put_u16(&writer, 0x0301);
    size_t record = open_length(&writer, 2);
    put_u8(&writer, 0x01); /* client_hello */
    size_t handshake = open_length(&writer, 3);
    put_u16(&writer, 0x0303);
    for (unsigned i = 0; i < 32; i++)
        put_u8(&writer, 0x40 + i); /* random */
    put_u8(&writer, 0);            /* legacy_session_id */
    put_u16(&writer, 4);
    put_u16(&writer, 0xc02f); /* ECDHE-RSA-AES128-GCM-SHA256 */
    put_u16(&writer, 0x009c); /* AES128-GCM-SHA256 */
    put_u8(&writer, 1);
    put_u8(&writer, 0); /* null compression */
    size_t extensions = open_length(&writer, 2);
    if (server_name)
        put_server_name_extension(&writer, server_name);
    put_other_extensions(&writer);
    close_length(&writer, extensions, 2);
    close_length(&writer, handshake, 3);
    close_length(&writer, record, 2);

    struct hello_bytes hello = {.data = malloc(writer.length), .length = writer.length};
    if (!hello.data)
        abort();
    memcpy(hello.data, writer.data, writer.length);
    return hello;
}

/* Offsets in hello_build()'s output of the lengths a longer body changes. */
#define RECORD_LENGTH_AT 3
#define HANDSHAKE_LENGTH_AT 6
#define EXTENSIONS_LENGTH_AT (TLS_RECORD_HEADER + 4 + 2 + 32 + 1 + 2 + 4 + 1 + 1)
#define PADDING_EXTENSION 21

static void add_to_length(uint8_t *at, size_t width, size_t added)
{
    size_t value = 0;
    for (size_t i = 0; i < width; i++)
        value = value << 8 | at[i];
    value += added;
    for (size_t i = width; i-- > 0; value >>= 8)
        at[i] = (uint8_t)value;
}

struct hello_bytes hello_build_padded(const char *server_name, size_t padding_bytes)
{
    struct hello_bytes plain = hello_build(server_name);
    size_t added = 4 + padding_bytes;
    struct hello_bytes padded = {.data = calloc(1, plain.length + added), .length = plain.length + added};
    if (!padded.data)
        abort();
    memcpy(padded.data, plain.data, plain.length);
    uint8_t *extension = padded.data + plain.length;
    extension[0] = 0;
    extension[1] = PADDING_EXTENSION;
    extension[2] = (uint8_t)(padding_bytes >> 8);
    extension[3] = (uint8_t)padding_bytes;
    add_to_length(padded.data + RECORD_LENGTH_AT, 2, added);
    add_to_length(padded.data + HANDSHAKE_LENGTH_AT, 3, added);
    add_to_length(padded.data + EXTENSIONS_LENGTH_AT, 2, added);
    hello_free(&plain);
    return padded;
}

struct hello_bytes hello_split_records(const struct hello_bytes *hello, size_t record_payload)
{
    const uint8_t *message = hello->data + TLS_RECORD_HEADER;
    size_t message_length = hello->length - TLS_RECORD_HEADER;
    size_t records = (message_length + record_payload - 1) / record_payload;
    struct hello_bytes split = {.length = message_length + records * TLS_RECORD_HEADER};
    split.data = malloc(split.length);
    if (!split.data)
        abort();
    uint8_t *out = split.data;
    for (size_t offset = 0; offset < message_length; offset += record_payload) {
        size_t take = message_length - offset < record_payload ? message_length - offset
                                                                : record_payload;
        out[0] = 0x16;
        out[1] = hello->data[1];
        out[2] = hello->data[2];
        out[3] = (uint8_t)(take >> 8);
        out[4] = (uint8_t)take;
        memcpy(out + TLS_RECORD_HEADER, message + offset, take);
        out += TLS_RECORD_HEADER + take;
    }
    return split;
}

void hello_free(struct hello_bytes *hello)
{
    free(hello->data);
    hello->data = NULL;
    hello->length = 0;
}
