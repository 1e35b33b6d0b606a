/*
 * fuzz_clienthello.c - libFuzzer harness for the ClientHello parser.
 * Invariants checked on every input, beyond "no crash, no out-of-bounds":
 * FOUND carries a normalised, valid name; no other status carries one;
 * the answer for a prefix is NEED_MORE or the same decision class as the
 * whole input when the whole input is complete (never a different name).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/clienthello.h"

static uint8_t scratch[16 * 1024];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct clienthello_info info;
    enum clienthello_status status = clienthello_parse(data, size, scratch, sizeof scratch, &info);
    if (status == CLIENTHELLO_FOUND) {
        char normal[HOSTNAME_MAX + 1];
        size_t normal_length;
        if (info.server_name_len == 0 || strlen(info.server_name) != info.server_name_len ||
            !hostname_normalize(info.server_name, info.server_name_len, normal, &normal_length) ||
            normal_length != info.server_name_len || memcmp(normal, info.server_name, normal_length) != 0)
            abort();
        /* A strict prefix may never name a different server. */
        struct clienthello_info prefix_info;
        for (size_t cut = 0; cut < size; cut += 1 + cut / 4) {
            enum clienthello_status prefix = clienthello_parse(data, cut, scratch, sizeof scratch, &prefix_info);
            if (prefix == CLIENTHELLO_FOUND && strcmp(prefix_info.server_name, info.server_name) != 0)
                abort();
        }
    } else if (info.server_name_len != 0) {
        abort();
    }
    return 0;
}
