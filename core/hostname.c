/*
 * hostname.c - the one definition of a valid server name (see hostname.h).
 *
 * Owns validating a DNS host name and writing its normal form: lower case,
 * one trailing dot dropped. Bytes allowed: [A-Za-z0-9._-]; no empty label;
 * at most HOSTNAME_MAX bytes once the trailing dot is gone. Hyphens are
 * accepted anywhere in a label (like nginx, which does not enforce the LDH
 * rule on server names), so "-", "-a.com" and "a-.com" are valid; so are
 * underscores, which clients send (OpenSSL, curl) and nginx routes
 * ("my_app.lan"), and which Docker names containers with.
 * Must never: read past name + len, write past out + HOSTNAME_MAX + 1,
 * touch *out_len or out on failure, allocate or do I/O.
 * Names of 16 bytes or more are checked and lowered 16 bytes at a time
 * where the CPU has SSE2 (every x86-64); shorter names, and other CPUs,
 * take the byte loop. Both give the same answer (tests/unit/test_hostname.c
 * compares them with a plain reading at every length).
 */
#include "hostname.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The bytes a name may hold; a table, as the ClientHello parser asks for
 * every byte of every SNI. */
static const bool is_name_byte[256] = {
    ['-'] = true, ['.'] = true, ['0' ... '9'] = true, ['A' ... 'Z'] = true, ['_'] = true, ['a' ... 'z'] = true,
};

static char to_lower(unsigned char byte)
{
    return (char)((unsigned)(byte - 'A') < 26u ? byte | 0x20 : byte);
}

/* Allowed bytes only, and no empty label (so no leading, trailing or double dot). */
static bool has_valid_labels(const char *name, size_t len)
{
    unsigned char previous = '.';
    for (size_t i = 0; i < len; i++) {
        unsigned char byte = (unsigned char)name[i];
        if (!is_name_byte[byte] || (byte == '.' && previous == '.'))
            return false;
        previous = byte;
    }
    return previous != '.';
}

#ifdef __SSE2__
/* Lanes where (unsigned)(byte - low) < count: all ones. SSE2 compares
 * bytes as signed, so the range test is an unsigned minimum instead. */
static __m128i lanes_in_range(__m128i bytes, char low, unsigned char count)
{
    __m128i offset = _mm_sub_epi8(bytes, _mm_set1_epi8(low));
    return _mm_cmpeq_epi8(_mm_min_epu8(offset, _mm_set1_epi8((char)(count - 1))), offset);
}

/* Bit i set: byte i of the 16 is a dot. *invalid gets a bit for each byte
 * outside [A-Za-z0-9._-]. */
static unsigned chunk_dots(__m128i bytes, unsigned *invalid)
{
    /* Setting bit 5 turns 'A'-'Z' into 'a'-'z' and no other byte into one. */
    __m128i letter = lanes_in_range(_mm_or_si128(bytes, _mm_set1_epi8(0x20)), 'a', 26);
    __m128i digit = lanes_in_range(bytes, '0', 10);
    __m128i dot = _mm_cmpeq_epi8(bytes, _mm_set1_epi8('.'));
    __m128i hyphen = _mm_cmpeq_epi8(bytes, _mm_set1_epi8('-'));
    __m128i underscore = _mm_cmpeq_epi8(bytes, _mm_set1_epi8('_'));
    __m128i allowed = _mm_or_si128(_mm_or_si128(letter, digit), _mm_or_si128(dot, _mm_or_si128(hyphen, underscore)));
    *invalid |= ~(unsigned)_mm_movemask_epi8(allowed) & 0xffffu;
    return (unsigned)_mm_movemask_epi8(dot);
}

static __m128i chunk_lowered(__m128i bytes)
{
    __m128i upper = lanes_in_range(bytes, 'A', 26);
    return _mm_or_si128(bytes, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
}

/* has_valid_labels() for len >= 16. The last 16 bytes are read as one
 * chunk even when it overlaps the one before: a byte checked twice gets
 * the same answer, and every pair of neighbours lies inside one chunk or
 * across a boundary carried in previous_dot. */
static bool has_valid_labels_wide(const char *name, size_t len)
{
    unsigned invalid = 0;
    unsigned previous_dot = 1; /* a leading dot is an empty label */
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        unsigned dots = chunk_dots(_mm_loadu_si128((const __m128i *)(name + i)), &invalid);
        if (dots & (dots << 1 | previous_dot))
            return false;
        previous_dot = dots >> 15;
    }
    if (i < len) {
        unsigned dots = chunk_dots(_mm_loadu_si128((const __m128i *)(name + len - 16)), &invalid);
        if (dots & dots << 1)
            return false;
    }
    return invalid == 0 && name[len - 1] != '.';
}

static void write_lowered_wide(const char *name, size_t len, char *out)
{
    size_t i = 0;
    for (; i + 16 <= len; i += 16)
        _mm_storeu_si128((__m128i *)(out + i), chunk_lowered(_mm_loadu_si128((const __m128i *)(name + i))));
    if (i < len)
        _mm_storeu_si128((__m128i *)(out + len - 16),
                         chunk_lowered(_mm_loadu_si128((const __m128i *)(name + len - 16))));
}
#endif

bool hostname_normalize(const char *name, size_t len, char *out, size_t *out_len)
{
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > HOSTNAME_MAX)
        return false;
#ifdef __SSE2__
    if (len >= 16) {
        if (!has_valid_labels_wide(name, len))
            return false;
        write_lowered_wide(name, len, out);
        out[len] = '\0';
        *out_len = len;
        return true;
    }
#endif
    if (!has_valid_labels(name, len))
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = to_lower((unsigned char)name[i]);
    out[len] = '\0';
    *out_len = len;
    return true;
}
