/*
 * fuzz_proxy_protocol.c - libFuzzer harness for proxy_protocol_parse():
 * any bytes must give need-more, found or invalid without reading past the
 * input; a found header must lie inside the input, and its addresses must
 * survive a v1 and a v2 round trip through proxy_protocol_encode().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/proxy_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(enum proxy_protocol_version version, const struct proxy_protocol_header *header)
{
    uint8_t encoded[PROXY_PROTOCOL_ENCODED_MAX];
    size_t length = proxy_protocol_encode(version, (const struct sockaddr *)&header->source,
                                          (const struct sockaddr *)&header->destination, encoded,
                                          sizeof encoded);
    struct proxy_protocol_header again;
    if (length == 0 || proxy_protocol_parse(encoded, length, &again) != PROXY_PROTOCOL_FOUND ||
        again.length != length || !again.has_addresses ||
        again.source.ss_family != header->source.ss_family)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy: ASan then catches any read past `size`. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    struct proxy_protocol_header header;
    enum proxy_protocol_status status = proxy_protocol_parse(copy, size, &header);
    if (status == PROXY_PROTOCOL_FOUND) {
        if (header.length == 0 || header.length > size)
            abort();
        if (header.has_addresses) {
            round_trip(PROXY_PROTOCOL_V1, &header);
            round_trip(PROXY_PROTOCOL_V2, &header);
        }
    }
    free(copy);
    return 0;
}
