/* bench/pattern.h - wire protocol and data pattern shared by bench/backend.c
 * and bench/loadgen.c.
 *
 * Connection: client sends a TLS ClientHello (one or more TLS records, the
 * handshake message may span records), then a 16-byte request:
 *   uint32 magic (0x534e4950 "SNIP"), uint32 mode, uint64 size  (host order,
 *   both programs run on the same machine).
 * Modes:
 *   1 CPS      backend sends `size` pattern bytes, then closes.
 *   2 DOWNLOAD backend sends `size` pattern bytes, then closes.
 *   3 UPLOAD   client sends `size` pattern bytes; backend verifies them and
 *              replies with an 8-byte ack: the count of correct bytes
 *              (== size on success, a different value on a mismatch), then closes.
 *   4 IDLE     backend sends 1 pattern byte (offset 0), keeps the connection
 *              open until the client closes it.
 * Pattern: byte at stream offset i is (uint8_t)((i * 131) >> 3).  Since 131
 * is odd this repeats every 2048 bytes, so both sides keep one precomputed
 * buffer (PATTERN_BUF bytes, a multiple of the period) and use memcmp/send
 * from offset (i % PATTERN_PERIOD).
 */
#ifndef BENCH_PATTERN_H
#define BENCH_PATTERN_H
#include <stdint.h>
#include <stddef.h>

#define BENCH_MAGIC 0x534e4950u
enum { MODE_CPS = 1, MODE_DOWN = 2, MODE_UP = 3, MODE_IDLE = 4 };

struct bench_req {
    uint32_t magic;
    uint32_t mode;
    uint64_t size;
};

#define PATTERN_PERIOD 2048u
#define PATTERN_BUF (PATTERN_PERIOD * 128u) /* 256 KiB */

static inline uint8_t pattern_byte(uint64_t i) { return (uint8_t)((i * 131u) >> 3); }

/* buf must hold PATTERN_BUF + PATTERN_PERIOD bytes so that any offset
 * (off % PATTERN_PERIOD) can be followed by PATTERN_BUF contiguous bytes. */
static inline void pattern_fill(uint8_t *buf)
{
    for (size_t i = 0; i < PATTERN_BUF + PATTERN_PERIOD; i++) buf[i] = pattern_byte(i);
}
static inline const uint8_t *pattern_at(const uint8_t *buf, uint64_t off)
{
    return buf + (off % PATTERN_PERIOD);
}
#endif
