/*
 * clienthello.c - read SNI and ALPN from a TLS ClientHello (see clienthello.h).
 *
 * Owns deciding, from the bytes a client has sent so far, whether its
 * ClientHello has fully arrived and, once it has, which server name and ALPN
 * protocols it carries. Two passes:
 *   1. framing: walk the TLS records, counting handshake bytes until the
 *      ClientHello message (4-byte header + body) is complete, and refuse as
 *      soon as the prefix received is provably bad;
 *   2. content: parse the complete message, in place when it lies inside the
 *      first record, else after joining the record fragments into scratch.
 * Must never: read outside [data, data + len) or scratch, allocate, do I/O,
 * or loop without consuming input. Message content is only read through
 * struct reader, whose every read is bounds-checked.
 */
#include "clienthello.h"

#include <string.h>

#define RECORD_HEADER_SIZE 5
#define RECORD_TYPE_HANDSHAKE 0x16
#define RECORD_VERSION_MAJOR 3
#define RECORD_PAYLOAD_MAX (16384 + 256)

#define HANDSHAKE_HEADER_SIZE 4
#define HANDSHAKE_CLIENT_HELLO 1

#define LEGACY_VERSION_SIZE 2
#define RANDOM_SIZE 32
#define SESSION_ID_MAX 32
/* version + random + empty session id + one cipher suite + one compression method */
#define CLIENT_HELLO_BODY_MIN (LEGACY_VERSION_SIZE + RANDOM_SIZE + 1 + 2 + 2 + 1 + 1)

#define EXTENSION_SERVER_NAME 0
#define EXTENSION_ALPN 16
#define SERVER_NAME_TYPE_HOST 0

/* SSLv2 record header in its 2-byte form: high bit of the first byte set. */
#define SSLV2_TWO_BYTE_HEADER 0x80
#define SSLV2_MESSAGE_TYPE_OFFSET 2

/* ---- bounds-checked reading ---- */

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

/* Split the next `count` bytes off as a reader of their own. */
static bool read_part(struct reader *reader, size_t count, struct reader *part)
{
    if (reader_left(reader) < count)
        return false;
    part->cursor = reader->cursor;
    part->end = reader->cursor + count;
    reader->cursor += count;
    return true;
}

/* A TLS vector with a 1-byte length prefix, as a reader over its contents. */
static bool read_vector8(struct reader *reader, struct reader *contents)
{
    uint8_t length;
    return read_u8(reader, &length) && read_part(reader, length, contents);
}

/* A TLS vector with a 2-byte length prefix, as a reader over its contents. */
static bool read_vector16(struct reader *reader, struct reader *contents)
{
    uint16_t length;
    return read_u16(reader, &length) && read_part(reader, length, contents);
}

/* ---- pass 1: record framing ---- */

enum framing_result { FRAMING_INCOMPLETE, FRAMING_COMPLETE, FRAMING_INVALID };

struct framing {
    uint8_t header[HANDSHAKE_HEADER_SIZE]; /* handshake header, possibly split */
    size_t header_seen;
    size_t message_length; /* header + body; 0 until the header is complete */
    size_t message_seen;   /* handshake bytes received so far */
    bool in_first_record;  /* the whole message lies in the first record */
};

static size_t smaller(size_t a, size_t b)
{
    return a < b ? a : b;
}

static size_t record_payload_length(const uint8_t *record)
{
    return (size_t)record[3] << 8 | record[4];
}

/* Judge as much of a record header as has arrived (`available` bytes). */
static enum framing_result check_record_header(const uint8_t *record, size_t available)
{
    if (available >= 1 && record[0] != RECORD_TYPE_HANDSHAKE)
        return FRAMING_INVALID;
    if (available >= 2 && record[1] != RECORD_VERSION_MAJOR)
        return FRAMING_INVALID;
    if (available < RECORD_HEADER_SIZE)
        return FRAMING_INCOMPLETE;
    size_t payload_length = record_payload_length(record);
    if (payload_length == 0 || payload_length > RECORD_PAYLOAD_MAX)
        return FRAMING_INVALID;
    return FRAMING_COMPLETE;
}

/* The handshake header has just completed: check what it promises. */
static enum framing_result accept_handshake_header(struct framing *framing, bool first_record,
                                                   size_t record_payload, size_t scratch_size)
{
    const uint8_t *header = framing->header;
    size_t body_length = (size_t)header[1] << 16 | (size_t)header[2] << 8 | header[3];
    if (body_length < CLIENT_HELLO_BODY_MIN)
        return FRAMING_INVALID;
    framing->message_length = HANDSHAKE_HEADER_SIZE + body_length;
    framing->in_first_record = first_record && framing->message_length <= record_payload;
    if (!framing->in_first_record && framing->message_length > scratch_size)
        return FRAMING_INVALID;
    return FRAMING_INCOMPLETE;
}

/* Account for `count` handshake bytes arrived in one record. */
static enum framing_result take_fragment(struct framing *framing, const uint8_t *bytes,
                                         size_t count, bool first_record, size_t record_payload,
                                         size_t scratch_size)
{
    bool header_was_complete = framing->header_seen == HANDSHAKE_HEADER_SIZE;
    for (size_t i = 0; i < count && framing->header_seen < HANDSHAKE_HEADER_SIZE; i++)
        framing->header[framing->header_seen++] = bytes[i];
    framing->message_seen += count;
    if (framing->header_seen >= 1 && framing->header[0] != HANDSHAKE_CLIENT_HELLO)
        return FRAMING_INVALID;
    if (framing->header_seen < HANDSHAKE_HEADER_SIZE)
        return FRAMING_INCOMPLETE;
    if (!header_was_complete &&
        accept_handshake_header(framing, first_record, record_payload, scratch_size) ==
            FRAMING_INVALID)
        return FRAMING_INVALID;
    return framing->message_seen >= framing->message_length ? FRAMING_COMPLETE
                                                            : FRAMING_INCOMPLETE;
}

/* Walk the records of data (which starts with a handshake record type). */
static enum framing_result frame_records(const uint8_t *data, size_t len, size_t scratch_size,
                                         struct framing *framing)
{
    size_t offset = 0;
    for (bool first_record = true;; first_record = false) {
        enum framing_result header = check_record_header(data + offset, len - offset);
        if (header != FRAMING_COMPLETE)
            return header;
        size_t payload_length = record_payload_length(data + offset);
        offset += RECORD_HEADER_SIZE;
        size_t available = smaller(len - offset, payload_length);
        enum framing_result taken = take_fragment(framing, data + offset, available, first_record,
                                                  payload_length, scratch_size);
        if (taken != FRAMING_INCOMPLETE || available < payload_length)
            return taken;
        offset += payload_length;
    }
}

/* Copy the message's fragments into scratch; framing proved they have arrived and fit. */
static void join_fragments(const uint8_t *data, size_t message_length, uint8_t *scratch)
{
    size_t offset = 0, joined = 0;
    while (joined < message_length) {
        size_t payload_length = record_payload_length(data + offset);
        offset += RECORD_HEADER_SIZE;
        size_t take = smaller(payload_length, message_length - joined);
        memcpy(scratch + joined, data + offset, take);
        joined += take;
        offset += payload_length;
    }
}

/* ---- pass 2: the ClientHello message ---- */

struct extension_scan {
    bool seen_server_name;
    bool seen_alpn;
    bool found_host_name;
};

static bool parse_server_name(struct reader extension_data, struct extension_scan *scan,
                              struct clienthello_info *info)
{
    struct reader list;
    if (!read_vector16(&extension_data, &list) || reader_left(&extension_data) != 0)
        return false;
    while (reader_left(&list) > 0) {
        uint8_t name_type;
        struct reader name;
        if (!read_u8(&list, &name_type) || !read_vector16(&list, &name))
            return false;
        if (name_type != SERVER_NAME_TYPE_HOST)
            continue; /* unknown name types also carry a 16-bit length (RFC 6066) */
        if (scan->found_host_name)
            return false;
        if (!hostname_normalize((const char *)name.cursor, reader_left(&name), info->server_name,
                                &info->server_name_len))
            return false;
        memcpy(info->server_name_as_sent, name.cursor, info->server_name_len);
        info->server_name_as_sent[info->server_name_len] = '\0';
        scan->found_host_name = true;
    }
    return true;
}

/* Validate the protocol list and keep as many whole entries as fit in info->alpn. */
static bool parse_alpn(struct reader extension_data, struct clienthello_info *info)
{
    struct reader list;
    if (!read_vector16(&extension_data, &list) || reader_left(&extension_data) != 0 ||
        reader_left(&list) == 0)
        return false;
    bool truncated = false;
    while (reader_left(&list) > 0) {
        const uint8_t *entry = list.cursor;
        struct reader protocol;
        if (!read_vector8(&list, &protocol) || reader_left(&protocol) == 0)
            return false;
        size_t entry_size = (size_t)(list.cursor - entry);
        truncated = truncated || info->alpn_len + entry_size > CLIENTHELLO_ALPN_MAX;
        if (truncated)
            continue;
        memcpy(info->alpn + info->alpn_len, entry, entry_size);
        info->alpn_len += entry_size;
    }
    return true;
}

static bool parse_extension(uint16_t type, struct reader extension_data,
                            struct extension_scan *scan, struct clienthello_info *info)
{
    if (type == EXTENSION_SERVER_NAME) {
        if (scan->seen_server_name)
            return false;
        scan->seen_server_name = true;
        return parse_server_name(extension_data, scan, info);
    }
    if (type == EXTENSION_ALPN) {
        if (scan->seen_alpn)
            return false;
        scan->seen_alpn = true;
        return parse_alpn(extension_data, info);
    }
    return true;
}

static enum clienthello_status parse_extensions(struct reader *body, struct clienthello_info *info)
{
    if (reader_left(body) == 0)
        return CLIENTHELLO_NO_SNI;
    struct reader extensions;
    if (!read_vector16(body, &extensions) || reader_left(body) != 0)
        return CLIENTHELLO_INVALID;
    struct extension_scan scan = { 0 };
    while (reader_left(&extensions) > 0) {
        uint16_t type;
        struct reader extension_data;
        if (!read_u16(&extensions, &type) || !read_vector16(&extensions, &extension_data))
            return CLIENTHELLO_INVALID;
        if (!parse_extension(type, extension_data, &scan, info))
            return CLIENTHELLO_INVALID;
    }
    return scan.found_host_name ? CLIENTHELLO_FOUND : CLIENTHELLO_NO_SNI;
}

/* legacy_version, random, session_id, cipher_suites, compression_methods. */
static bool skip_fixed_fields(struct reader *body)
{
    struct reader session_id, cipher_suites, compression_methods;
    return skip(body, LEGACY_VERSION_SIZE + RANDOM_SIZE) &&
           read_vector8(body, &session_id) && reader_left(&session_id) <= SESSION_ID_MAX &&
           read_vector16(body, &cipher_suites) && reader_left(&cipher_suites) >= 2 &&
           reader_left(&cipher_suites) % 2 == 0 &&
           read_vector8(body, &compression_methods) && reader_left(&compression_methods) >= 1;
}

static enum clienthello_status parse_message(const uint8_t *message, size_t message_length,
                                             struct clienthello_info *info)
{
    struct reader body = { message + HANDSHAKE_HEADER_SIZE, message + message_length };
    if (!skip_fixed_fields(&body))
        return CLIENTHELLO_INVALID;
    return parse_extensions(&body, info);
}

/* ---- entry points ---- */

/* data[0] is not a TLS handshake record: an SSLv2-compatible hello or not TLS at all. */
static enum clienthello_status classify_other_protocol(const uint8_t *data, size_t len)
{
    if (!(data[0] & SSLV2_TWO_BYTE_HEADER))
        return CLIENTHELLO_NOT_TLS;
    if (len <= SSLV2_MESSAGE_TYPE_OFFSET)
        return CLIENTHELLO_NEED_MORE;
    /* SSLv2 hellos cannot carry extensions, so they have no SNI. */
    return data[SSLV2_MESSAGE_TYPE_OFFSET] == HANDSHAKE_CLIENT_HELLO ? CLIENTHELLO_NO_SNI
                                                                     : CLIENTHELLO_NOT_TLS;
}

static void clear_server_name(struct clienthello_info *info)
{
    info->server_name[0] = '\0';
    info->server_name_as_sent[0] = '\0';
    info->server_name_len = 0;
}

enum clienthello_status clienthello_parse(const uint8_t *data, size_t len,
                                          uint8_t *scratch, size_t scratch_size,
                                          struct clienthello_info *info)
{
    clear_server_name(info);
    info->alpn_len = 0;
    if (len == 0)
        return CLIENTHELLO_NEED_MORE;
    if (data[0] != RECORD_TYPE_HANDSHAKE)
        return classify_other_protocol(data, len);
    struct framing framing = { .header_seen = 0 };
    enum framing_result framed = frame_records(data, len, scratch_size, &framing);
    if (framed != FRAMING_COMPLETE)
        return framed == FRAMING_INCOMPLETE ? CLIENTHELLO_NEED_MORE : CLIENTHELLO_INVALID;
    const uint8_t *message = data + RECORD_HEADER_SIZE;
    if (!framing.in_first_record) {
        join_fragments(data, framing.message_length, scratch);
        message = scratch;
    }
    enum clienthello_status status = parse_message(message, framing.message_length, info);
    if (status != CLIENTHELLO_FOUND)
        clear_server_name(info);
    if (status == CLIENTHELLO_INVALID)
        info->alpn_len = 0;
    return status;
}

bool clienthello_alpn_offers(const struct clienthello_info *info, const char *protocol)
{
    size_t wanted_length = strlen(protocol);
    struct reader list = { info->alpn, info->alpn + info->alpn_len };
    struct reader entry;
    while (read_vector8(&list, &entry)) {
        if (reader_left(&entry) == wanted_length &&
            memcmp(entry.cursor, protocol, wanted_length) == 0)
            return true;
    }
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
