/*
 * client_counts.c - the shared per-address connection counts (see
 * client_counts.h).
 *
 * An open-addressing table (linear probing, power-of-two capacity, at most
 * half full) of {address, count}; an entry is removed when its count drops
 * to zero, by shifting the entries behind it back (no tombstones, so the
 * table never degrades however many clients come and go).
 *
 * One mutex guards it. Each counted connection takes and releases once, a
 * few dozen nanoseconds inside the lock, and a single lock keeps
 * check-then-take exact: two workers can never both admit a client's last
 * allowed connection. With the limit on, bench/ab.sh measured no cost per
 * connection on this 2-core machine (bench/NOTES.md); on many cores,
 * striping the table by hash is the next step if the lock ever shows.
 */
#include "client_counts.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hash_mix.h"

struct client_entry {
    struct client_address address;
    uint32_t count; /* 0: the slot is empty */
};

struct client_counts {
    pthread_mutex_t lock;
    uint64_t seed;
    uint32_t mask;      /* capacity - 1 */
    uint32_t used;
    uint32_t used_max;  /* half the capacity */
    struct client_entry *entries;
};

bool client_address_from(const struct sockaddr *address, struct client_address *out)
{
    memset(out, 0, sizeof *out);
    if (address->sa_family == AF_INET6) {
        memcpy(out->bytes, &((const struct sockaddr_in6 *)address)->sin6_addr, 16);
        return true;
    }
    if (address->sa_family != AF_INET)
        return false;
    out->bytes[10] = out->bytes[11] = 0xff;
    memcpy(out->bytes + 12, &((const struct sockaddr_in *)address)->sin_addr, 4);
    return true;
}

struct client_counts *client_counts_new(uint32_t addresses, uint64_t seed)
{
    if (addresses == 0 || addresses > (1u << 30))
        return NULL;
    uint32_t capacity = 16;
    while (capacity / 2 < addresses)
        capacity *= 2;
    struct client_counts *counts = calloc(1, sizeof *counts);
    if (!counts)
        return NULL;
    /* calloc of a large block maps zero pages: memory is touched only as
     * clients arrive. */
    counts->entries = calloc(capacity, sizeof *counts->entries);
    if (!counts->entries) {
        free(counts);
        return NULL;
    }
    pthread_mutex_init(&counts->lock, NULL);
    counts->seed = seed;
    counts->mask = capacity - 1;
    counts->used_max = capacity / 2;
    return counts;
}

void client_counts_free(struct client_counts *counts)
{
    if (!counts)
        return;
    pthread_mutex_destroy(&counts->lock);
    free(counts->entries);
    free(counts);
}

static uint32_t home_slot(const struct client_counts *counts, const struct client_address *client)
{
    uint64_t high, low;
    memcpy(&high, client->bytes, 8);
    memcpy(&low, client->bytes + 8, 8);
    return (uint32_t)hash_mix(hash_mix(high ^ counts->seed) ^ low) & counts->mask;
}

/* The slot holding `client`, or the empty slot where it would go. */
static uint32_t find_slot(const struct client_counts *counts, const struct client_address *client)
{
    uint32_t slot = home_slot(counts, client);
    while (counts->entries[slot].count != 0 &&
           memcmp(&counts->entries[slot].address, client, sizeof *client) != 0)
        slot = (slot + 1) & counts->mask;
    return slot;
}

enum client_count_result client_counts_take(struct client_counts *counts, const struct client_address *client,
                                            uint32_t limit)
{
    enum client_count_result result = CLIENT_COUNT_TAKEN;
    pthread_mutex_lock(&counts->lock);
    struct client_entry *entry = &counts->entries[find_slot(counts, client)];
    if (entry->count >= limit) {
        result = CLIENT_COUNT_AT_LIMIT;
    } else if (entry->count > 0) {
        entry->count++;
    } else if (counts->used >= counts->used_max) {
        result = CLIENT_COUNT_FULL;
    } else {
        entry->address = *client;
        entry->count = 1;
        counts->used++;
    }
    pthread_mutex_unlock(&counts->lock);
    return result;
}

/* Empty `hole` and move back every entry of the run after it whose home
 * slot does not lie between the hole and itself (cyclically): then every
 * entry stays reachable from its home slot without a gap. */
static void remove_at(struct client_counts *counts, uint32_t hole)
{
    uint32_t mask = counts->mask;
    counts->entries[hole].count = 0;
    for (uint32_t slot = (hole + 1) & mask; counts->entries[slot].count != 0; slot = (slot + 1) & mask) {
        uint32_t home = home_slot(counts, &counts->entries[slot].address);
        bool home_after_hole = ((slot - home) & mask) < ((slot - hole) & mask);
        if (home_after_hole)
            continue;
        counts->entries[hole] = counts->entries[slot];
        counts->entries[slot].count = 0;
        hole = slot;
    }
    counts->used--;
}

void client_counts_release(struct client_counts *counts, const struct client_address *client)
{
    pthread_mutex_lock(&counts->lock);
    uint32_t slot = find_slot(counts, client);
    struct client_entry *entry = &counts->entries[slot];
    if (entry->count > 1)
        entry->count--;
    else if (entry->count == 1)
        remove_at(counts, slot);
    pthread_mutex_unlock(&counts->lock);
}

uint32_t client_counts_of(struct client_counts *counts, const struct client_address *client)
{
    pthread_mutex_lock(&counts->lock);
    uint32_t count = counts->entries[find_slot(counts, client)].count;
    pthread_mutex_unlock(&counts->lock);
    return count;
}

uint32_t client_counts_addresses(struct client_counts *counts)
{
    pthread_mutex_lock(&counts->lock);
    uint32_t used = counts->used;
    pthread_mutex_unlock(&counts->lock);
    return used;
}
