/*
 * fuzz_clienthello.c - libFuzzer harness for clienthello_parse().
 *
 * Owns checking, over arbitrary bytes, what the proxy relies on: no read
 * outside the input or the 16 KiB scratch (ASan), no undefined behaviour
 * (UBSan), no hang, and these invariants:
 *   - FOUND carries a non-empty name that hostname_normalize() accepts and
 *     leaves unchanged; any other status carries no name;
 *   - the ALPN copy is a well-formed list of non-empty entries within
 *     CLIENTHELLO_ALPN_MAX;
 *   - a prefix of the input answers NEED_MORE or the same verdict as the
 *     whole input (more bytes never turn a verdict around).
 * Must never: allocate per input or keep state between inputs.
 *
 * Run with `make fuzz` (seeded from tests/fuzz/corpus/clienthello), or by hand:
 *   clang -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *         core/clienthello.c core/hostname.c tests/fuzz/fuzz_clienthello.c -o fuzz_clienthello
 *   ./fuzz_clienthello -max_total_time=60 -max_len=20000 corpus/ tests/fuzz/corpus/clienthello
 */
#include <stdlib.h>
#include <string.h>

#include "../../core/clienthello.h"

#define FUZZ_SCRATCH_SIZE (16 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t scratch[FUZZ_SCRATCH_SIZE];

static void require(bool condition)
{
    if (!condition)
        abort();
}

static void check_server_name(enum clienthello_status status, const struct clienthello_info *info)
{
    require(info->server_name_len <= HOSTNAME_MAX);
    require(strlen(info->server_name) == info->server_name_len);
    if (status != CLIENTHELLO_FOUND) {
        require(info->server_name_len == 0);
        return;
    }
    char normal[HOSTNAME_MAX + 1];
    size_t normal_length = 0;
    require(info->server_name_len > 0);
    require(hostname_normalize(info->server_name, info->server_name_len, normal, &normal_length));
    require(normal_length == info->server_name_len);
    require(memcmp(normal, info->server_name, normal_length) == 0);
}

static void check_alpn(enum clienthello_status status, const struct clienthello_info *info)
{
    require(info->alpn_len <= CLIENTHELLO_ALPN_MAX);
    if (status != CLIENTHELLO_FOUND && status != CLIENTHELLO_NO_SNI)
        require(info->alpn_len == 0);
    size_t offset = 0;
    while (offset < info->alpn_len) {
        size_t entry_length = info->alpn[offset];
        require(entry_length > 0);
        require(offset + 1 + entry_length <= info->alpn_len);
        offset += 1 + entry_length;
    }
    clienthello_alpn_offers(info, "h2");
}

static enum clienthello_status parse_checked(const uint8_t *data, size_t size,
                                             struct clienthello_info *info)
{
    enum clienthello_status status = clienthello_parse(data, size, scratch, sizeof scratch, info);
    require(status >= CLIENTHELLO_NEED_MORE && status <= CLIENTHELLO_INVALID);
    check_server_name(status, info);
    check_alpn(status, info);
    return status;
}

/* A prefix answers NEED_MORE or the whole input's verdict, and never another name. */
static void check_prefix(const uint8_t *data, size_t cut, enum clienthello_status status,
                         const struct clienthello_info *whole)
{
    struct clienthello_info prefix;
    enum clienthello_status prefix_status = parse_checked(data, cut, &prefix);
    require(prefix_status == CLIENTHELLO_NEED_MORE || prefix_status == status);
    if (prefix_status == CLIENTHELLO_FOUND)
        require(strcmp(prefix.server_name, whole->server_name) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct clienthello_info whole;
    enum clienthello_status status = parse_checked(data, size, &whole);
    if (size == 0)
        return 0;
    check_prefix(data, size - 1, status, &whole);
    check_prefix(data, data[size - 1] % size, status, &whole); /* a cut the input chooses */
    if (status == CLIENTHELLO_NEED_MORE)
        return 0;
    for (size_t cut = 0; cut < size; cut += 1 + cut / 4)
        check_prefix(data, cut, status, &whole);
    return 0;
}
