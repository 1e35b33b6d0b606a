/*
 * hash_mix.h - the 64-bit mixing step both of core's hash tables use (the
 * route table's names, the client counts' addresses): MurmurHash3's
 * finalizer, so every input bit moves every output bit in two multiplies.
 * Inline, because route_lookup() hashes on every connection. And the
 * string-pair hash of the worker's tables keyed by (upstream, server)
 * names (io/metrics.c, io/upstream_load.c), which hash only when a name
 * is first seen.
 */
#ifndef SNISPLICE_CORE_HASH_MIX_H
#define SNISPLICE_CORE_HASH_MIX_H

#include <stdint.h>

static inline uint64_t hash_mix(uint64_t value)
{
    value ^= value >> 33;
    value *= 0xff51afd7ed558ccdULL;
    value ^= value >> 33;
    value *= 0xc4ceb9fe1a85ec53ULL;
    value ^= value >> 33;
    return value;
}

/* FNV-1a over two strings with a byte between them that no name holds,
 * so ("ab", "c") and ("a", "bc") differ. */
static inline uint32_t hash_name_pair(const char *first, const char *second)
{
    uint32_t hash = 2166136261u;
    for (const char *text = first; *text; text++)
        hash = (hash ^ (uint8_t)*text) * 16777619u;
    hash = (hash ^ 0xff) * 16777619u;
    for (const char *text = second; *text; text++)
        hash = (hash ^ (uint8_t)*text) * 16777619u;
    return hash;
}

#endif
