/*
 * clienthello.c - find SNI and ALPN in a TLS ClientHello.
 *
 * Two passes over the bytes received so far:
 *   1. framing: walk the TLS records, counting handshake payload bytes until
 *      the ClientHello message (4-byte header + body) is complete;
 *   2. content: parse the message, in place when it sits inside the first
 *      record, else after joining the record payloads into `scratch`.
 * Every read goes through `struct reader`, which checks bounds, so the
 * parser is total over arbitrary input. It never allocates or does I/O.
 */
#include "clienthello.h"

#include <string.h>

#define RECORD_HEADER 5
#define RECORD_HANDSHAKE 0x16
#define RECORD_PAYLOAD_MAX (16384 + 256)
#define HANDSHAKE_HEADER 4
#define HANDSHAKE_CLIENT_HELLO 1
#define EXTENSION_SERVER_NAME 0
#define EXTENSION_ALPN 16
#define SERVER_NAME_HOST 0

struct reader {
    const uint8_t *cursor;
    const uint8_t *end;
};

static size_t reader_left(const struct reader *reader)
{
    return (size_t)(reader->end - reader->cursor);
}

static bool read_u8(struct reader *reader, uint8_t *value)
{
    if (reader_left(reader) < 1)
        return false;
    *value = reader->cursor[0];
    reader->cursor += 1;
    return true;
}

static bool read_u16(struct reader *reader, uint16_t *value)
{
    if (reader_left(reader) < 2)
        return false;
    *value = (uint16_t)(reader->cursor[0] << 8 | reader->cursor[1]);
    reader->cursor += 2;
    return true;
}

static bool skip(struct reader *reader, size_t count)
{
    if (reader_left(reader) < count)
        return false;
    reader->cursor += count;
    return true;
}

/* Split off the next `count` bytes as a reader of their own. */
static bool sub_reader(struct reader *reader, size_t count, struct reader *part)
{
    if (reader_left(reader) < count)
        return false;
    part->cursor = reader->cursor;
    part->end = reader->cursor + count;
    reader->cursor += count;
    return true;
}

/* A vector with a 1- or 2-byte length prefix, as a sub reader. */
static bool read_vector8(struct reader *reader, struct reader *part)
{
    uint8_t length;
    return read_u8(reader, &length) && sub_reader(reader, length, part);
}

static bool read_vector16(struct reader *reader, struct reader *part)
{
    uint16_t length;
    return read_u16(reader, &length) && sub_reader(reader, length, part);
}

/* ---- pass 1: record framing ---- */

struct framing {
    size_t message_length;   /* handshake header + body */
    size_t first_payload;    /* payload bytes of the first record */
    bool single_record;      /* the whole message lies in the first record */
};

static bool is_sslv2_client_hello(const uint8_t *data, size_t len)
{
    /* SSLv2 compatible hello: 2-byte length with the high bit set, then
     * msg_type 1 and a version 3.x or 2.0. */
    return len >= 3 && (data[0] & 0x80) && data[2] == HANDSHAKE_CLIENT_HELLO;
}

static enum clienthello_status frame(const uint8_t *data, size_t len, size_t scratch_size,
                                     struct framing *framing)
{
    if (len == 0)
        return CLIENTHELLO_NEED_MORE;
    if (data[0] != RECORD_HANDSHAKE) {
        if (data[0] & 0x80)
            return len < 3 ? CLIENTHELLO_NEED_MORE
                           : is_sslv2_client_hello(data, len) ? CLIENTHELLO_NO_SNI
                                                              : CLIENTHELLO_NOT_TLS;
        return CLIENTHELLO_NOT_TLS;
    }
    size_t offset = 0, payload_seen = 0;
    uint8_t header[HANDSHAKE_HEADER];
    size_t header_seen = 0;
    framing->message_length = 0;
    for (int record = 0;; record++) {
        if (len - offset < RECORD_HEADER) {
            /* Check what is there of the header: type, then version major. */
            if (len - offset >= 1 && data[offset] != RECORD_HANDSHAKE)
                return CLIENTHELLO_INVALID;
            if (len - offset >= 2 && data[offset + 1] != 3)
                return CLIENTHELLO_INVALID;
            return CLIENTHELLO_NEED_MORE;
        }
        const uint8_t *record_header = data + offset;
        size_t payload = (size_t)record_header[3] << 8 | record_header[4];
        if (record_header[0] != RECORD_HANDSHAKE || record_header[1] != 3 || payload == 0 ||
            payload > RECORD_PAYLOAD_MAX)
            return CLIENTHELLO_INVALID;
        offset += RECORD_HEADER;
        size_t available = len - offset < payload ? len - offset : payload;
        if (record == 0)
            framing->first_payload = payload;
        /* Collect the 4-byte handshake header, which may itself be split. */
        for (size_t i = 0; i < available && header_seen < HANDSHAKE_HEADER; i++)
            header[header_seen++] = data[offset + i];
        if (header_seen >= 1 && header[0] != HANDSHAKE_CLIENT_HELLO)
            return CLIENTHELLO_INVALID;
        if (header_seen == HANDSHAKE_HEADER && framing->message_length == 0) {
            size_t body = (size_t)header[1] << 16 | (size_t)header[2] << 8 | header[3];
            framing->message_length = HANDSHAKE_HEADER + body;
            if (body == 0)
                return CLIENTHELLO_INVALID;
            framing->single_record = record == 0 && framing->message_length <= payload;
            if (!framing->single_record && framing->message_length > scratch_size)
                return CLIENTHELLO_INVALID;
        }
        payload_seen += available;
        offset += available;
        if (framing->message_length && payload_seen >= framing->message_length)
            return CLIENTHELLO_FOUND; /* complete: "found" here means "parse it" */
        if (available < payload)
            return CLIENTHELLO_NEED_MORE;
    }
}

/* Join the record payloads into scratch; framing has proven they fit. */
static void join_records(const uint8_t *data, size_t message_length, uint8_t *scratch)
{
    size_t offset = 0, copied = 0;
    while (copied < message_length) {
        size_t payload = (size_t)data[offset + 3] << 8 | data[offset + 4];
        offset += RECORD_HEADER;
        size_t take = payload < message_length - copied ? payload : message_length - copied;
        memcpy(scratch + copied, data + offset, take);
        copied += take;
        offset += payload;
    }
}

/* ---- pass 2: the ClientHello message ---- */

static enum clienthello_status parse_server_name(struct reader extension,
                                                 struct clienthello_info *info)
{
    struct reader list;
    if (!read_vector16(&extension, &list) || reader_left(&extension) != 0)
        return CLIENTHELLO_INVALID;
    bool found = false;
    while (reader_left(&list) > 0) {
        uint8_t type;
        struct reader name;
        if (!read_u8(&list, &type) || !read_vector16(&list, &name))
            return CLIENTHELLO_INVALID;
        if (type != SERVER_NAME_HOST)
            continue;
        if (found)
            return CLIENTHELLO_INVALID;
        if (!hostname_normalize((const char *)name.cursor, reader_left(&name), info->server_name,
                                &info->server_name_len))
            return CLIENTHELLO_INVALID;
        found = true;
    }
    return found ? CLIENTHELLO_FOUND : CLIENTHELLO_NO_SNI;
}

static enum clienthello_status parse_alpn(struct reader extension, struct clienthello_info *info)
{
    struct reader list;
    if (!read_vector16(&extension, &list) || reader_left(&extension) != 0 ||
        reader_left(&list) == 0)
        return CLIENTHELLO_INVALID;
    const uint8_t *start = list.cursor;
    size_t kept = 0;
    while (reader_left(&list) > 0) {
        struct reader protocol;
        if (!read_vector8(&list, &protocol) || reader_left(&protocol) == 0)
            return CLIENTHELLO_INVALID;
        size_t entry_end = (size_t)(list.cursor - start);
        if (entry_end <= CLIENTHELLO_ALPN_MAX && kept == entry_end - 1 - reader_left(&protocol))
            kept = entry_end;
    }
    memcpy(info->alpn, start, kept);
    info->alpn_len = kept;
    return CLIENTHELLO_FOUND;
}

static enum clienthello_status parse_extensions(struct reader *body, struct clienthello_info *info)
{
    if (reader_left(body) == 0)
        return CLIENTHELLO_NO_SNI;
    struct reader extensions;
    if (!read_vector16(body, &extensions) || reader_left(body) != 0)
        return CLIENTHELLO_INVALID;
    enum clienthello_status status = CLIENTHELLO_NO_SNI;
    bool seen_server_name = false, seen_alpn = false;
    while (reader_left(&extensions) > 0) {
        uint16_t type;
        struct reader extension;
        if (!read_u16(&extensions, &type) || !read_vector16(&extensions, &extension))
            return CLIENTHELLO_INVALID;
        if (type == EXTENSION_SERVER_NAME) {
            if (seen_server_name)
                return CLIENTHELLO_INVALID;
            seen_server_name = true;
            status = parse_server_name(extension, info);
            if (status == CLIENTHELLO_INVALID)
                return status;
        } else if (type == EXTENSION_ALPN) {
            if (seen_alpn || parse_alpn(extension, info) == CLIENTHELLO_INVALID)
                return CLIENTHELLO_INVALID;
            seen_alpn = true;
        }
    }
    return status;
}

static enum clienthello_status parse_message(const uint8_t *message, size_t length,
                                             struct clienthello_info *info)
{
    struct reader body = { message + HANDSHAKE_HEADER, message + length };
    struct reader session_id, cipher_suites, compression;
    if (!skip(&body, 2 + 32) || !read_vector8(&body, &session_id) ||
        reader_left(&session_id) > 32 || !read_vector16(&body, &cipher_suites) ||
        reader_left(&cipher_suites) < 2 || reader_left(&cipher_suites) % 2 != 0 ||
        !read_vector8(&body, &compression) || reader_left(&compression) < 1)
        return CLIENTHELLO_INVALID;
    return parse_extensions(&body, info);
}

enum clienthello_status clienthello_parse(const uint8_t *data, size_t len,
                                          uint8_t *scratch, size_t scratch_size,
                                          struct clienthello_info *info)
{
    info->server_name[0] = '\0';
    info->server_name_len = 0;
    info->alpn_len = 0;
    struct framing framing = { 0 };
    enum clienthello_status framed = frame(data, len, scratch_size, &framing);
    if (framed != CLIENTHELLO_FOUND)
        return framed;
    const uint8_t *message = data + RECORD_HEADER;
    if (!framing.single_record) {
        join_records(data, framing.message_length, scratch);
        message = scratch;
    }
    enum clienthello_status status = parse_message(message, framing.message_length, info);
    if (status != CLIENTHELLO_FOUND) {
        info->server_name[0] = '\0';
        info->server_name_len = 0;
    }
    if (status == CLIENTHELLO_INVALID)
        info->alpn_len = 0;
    return status;
}

bool clienthello_alpn_offers(const struct clienthello_info *info, const char *protocol)
{
    size_t want = strlen(protocol);
    struct reader list = { info->alpn, info->alpn + info->alpn_len };
    struct reader entry;
    while (read_vector8(&list, &entry))
        if (reader_left(&entry) == want && memcmp(entry.cursor, protocol, want) == 0)
            return true;
    return false;
}

const char *clienthello_status_name(enum clienthello_status status)
{
    switch (status) {
    case CLIENTHELLO_NEED_MORE: return "need_more";
    case CLIENTHELLO_FOUND: return "found";
    case CLIENTHELLO_NO_SNI: return "no_sni";
    case CLIENTHELLO_NOT_TLS: return "not_tls";
    case CLIENTHELLO_INVALID: return "invalid";
    }
    return "unknown";
}
