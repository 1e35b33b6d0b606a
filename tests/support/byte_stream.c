/*
 * byte_stream.c - the splitmix64 byte stream, its verifier and socket pumps.
 *
 * Owns only stack buffers; never holds a socket beyond one call.
 */
#include "byte_stream.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "child_process.h"
#include "net.h"

#define PUMP_CHUNK_DEFAULT 65536
#define PUMP_CHUNK_MAX 262144

static uint64_t splitmix64(uint64_t value)
{
    value += 0x9e3779b97f4a7c15ULL;
    value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
    value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
    return value ^ (value >> 31);
}

void byte_stream_fill(uint64_t seed, uint64_t offset, uint8_t *out, size_t length)
{
    uint64_t word_index = offset / 8;
    size_t skip = (size_t)(offset % 8);
    while (length > 0) {
        uint64_t word = splitmix64(seed ^ (word_index * 0x2545f4914f6cdd1dULL));
        uint8_t bytes[8];
        memcpy(bytes, &word, sizeof bytes);
        size_t take = 8 - skip < length ? 8 - skip : length;
        memcpy(out, bytes + skip, take);
        out += take;
        length -= take;
        skip = 0;
        word_index++;
    }
}

uint64_t byte_stream_checksum(uint64_t checksum, const uint8_t *data, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        checksum ^= data[i];
        checksum *= 0x100000001b3ULL;
    }
    return checksum;
}

void byte_stream_verifier_init(struct byte_stream_verifier *verifier, uint64_t seed)
{
    verifier->seed = seed;
    verifier->offset = 0;
    verifier->first_mismatch = UINT64_MAX;
    verifier->checksum = BYTE_STREAM_CHECKSUM_START;
}

bool byte_stream_verifier_feed(struct byte_stream_verifier *verifier, const uint8_t *data,
                               size_t length)
{
    uint8_t expected[4096];
    verifier->checksum = byte_stream_checksum(verifier->checksum, data, length);
    while (length > 0) {
        size_t take = length < sizeof expected ? length : sizeof expected;
        if (verifier->first_mismatch == UINT64_MAX) {
            byte_stream_fill(verifier->seed, verifier->offset, expected, take);
            for (size_t i = 0; i < take; i++) {
                if (data[i] != expected[i]) {
                    verifier->first_mismatch = verifier->offset + i;
                    break;
                }
            }
        }
        verifier->offset += take;
        data += take;
        length -= take;
    }
    return verifier->first_mismatch == UINT64_MAX;
}

uint64_t byte_stream_send(int fd, uint64_t seed, uint64_t length, size_t chunk_size,
                          int pause_ms, uint64_t *checksum)
{
    static _Thread_local uint8_t chunk[PUMP_CHUNK_MAX];
    if (chunk_size == 0)
        chunk_size = PUMP_CHUNK_DEFAULT;
    if (chunk_size > PUMP_CHUNK_MAX)
        chunk_size = PUMP_CHUNK_MAX;
    uint64_t sent = 0;
    uint64_t sum = BYTE_STREAM_CHECKSUM_START;
    while (sent < length) {
        size_t take = length - sent < chunk_size ? (size_t)(length - sent) : chunk_size;
        byte_stream_fill(seed, sent, chunk, take);
        if (!net_send_all(fd, chunk, take))
            break;
        sum = byte_stream_checksum(sum, chunk, take);
        sent += take;
        if (pause_ms > 0 && sent < length)
            sleep_ms(pause_ms);
    }
    if (checksum)
        *checksum = sum;
    return sent;
}

uint64_t byte_stream_receive(int fd, struct byte_stream_verifier *verifier, uint64_t length)
{
    static _Thread_local uint8_t chunk[PUMP_CHUNK_DEFAULT];
    uint64_t received = 0;
    while (received < length) {
        size_t want = length - received < sizeof chunk ? (size_t)(length - received) : sizeof chunk;
        ssize_t got = recv(fd, chunk, want, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        byte_stream_verifier_feed(verifier, chunk, (size_t)got);
        received += (uint64_t)got;
    }
    return received;
}
