/*
 * hash_mix.h - the 64-bit mixing step both of core's hash tables use (the
 * route table's names, the client counts' addresses): MurmurHash3's
 * finalizer, so every input bit moves every output bit in two multiplies.
 * Inline, because route_lookup() hashes on every connection.
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

#endif
