/*
 * upstream_load.c - open connections per upstream server by name (see
 * upstream_load.h): a linear-probing table of pointers to records that
 * stay put, kept at most half full.
 */
#include "upstream_load.h"

#include <stdlib.h>
#include <string.h>

#include "../core/hash_mix.h"

#define LOAD_SLOTS_MIN 64

static bool record_is(const struct upstream_load_record *record, uint32_t hash, const char *upstream,
                      const char *server)
{
    return record->hash == hash && strcmp(record->names, upstream) == 0 &&
           strcmp(record->names + record->upstream_length + 1, server) == 0;
}

void upstream_load_init(struct upstream_load *load)
{
    memset(load, 0, sizeof *load);
}

void upstream_load_free(struct upstream_load *load)
{
    for (uint32_t i = 0; load->slots && i <= load->mask; i++)
        free(load->slots[i]);
    free(load->slots);
    upstream_load_init(load);
}

/* Where record goes in slots (mask + 1 of them, at least one empty). */
static void place(struct upstream_load_record **slots, uint32_t mask, struct upstream_load_record *record)
{
    uint32_t slot = record->hash & mask;
    while (slots[slot])
        slot = (slot + 1) & mask;
    slots[slot] = record;
}

/* Lay the records out again in a fresh array of slot_count slots (a
 * power of two, more than twice the records kept); with keep_idle false,
 * those nothing holds are freed instead. False when out of memory,
 * changing nothing. */
static bool rebuild(struct upstream_load *load, uint32_t slot_count, bool keep_idle)
{
    struct upstream_load_record **slots = calloc(slot_count, sizeof *slots);
    if (!slots)
        return false;
    uint32_t count = 0;
    for (uint32_t i = 0; load->slots && i <= load->mask; i++) {
        struct upstream_load_record *record = load->slots[i];
        if (!record)
            continue;
        if (!keep_idle && record->held == 0) {
            free(record);
            continue;
        }
        place(slots, slot_count - 1, record);
        count++;
    }
    free(load->slots);
    load->slots = slots;
    load->mask = slot_count - 1;
    load->count = count;
    return true;
}

struct upstream_load_record *upstream_load_find(const struct upstream_load *load, const char *upstream,
                                                const char *server)
{
    if (!load->slots)
        return NULL;
    uint32_t hash = hash_name_pair(upstream, server);
    for (uint32_t slot = hash & load->mask; load->slots[slot]; slot = (slot + 1) & load->mask)
        if (record_is(load->slots[slot], hash, upstream, server))
            return load->slots[slot];
    return NULL;
}

struct upstream_load_record *upstream_load_intern(struct upstream_load *load, const char *upstream,
                                                  const char *server)
{
    struct upstream_load_record *known = upstream_load_find(load, upstream, server);
    if (known)
        return known;
    uint32_t slot_count = load->slots ? load->mask + 1 : 0;
    if (2 * (load->count + 1) > slot_count &&
        !rebuild(load, slot_count ? 2 * slot_count : LOAD_SLOTS_MIN, true))
        return NULL;
    size_t upstream_length = strlen(upstream), server_length = strlen(server);
    struct upstream_load_record *record = malloc(sizeof *record + upstream_length + server_length + 2);
    if (!record)
        return NULL;
    record->held = 0;
    record->hash = hash_name_pair(upstream, server);
    record->upstream_length = upstream_length;
    memcpy(record->names, upstream, upstream_length + 1);
    memcpy(record->names + upstream_length + 1, server, server_length + 1);
    place(load->slots, load->mask, record);
    load->count++;
    return record;
}

void upstream_load_sweep(struct upstream_load *load)
{
    uint32_t held = 0;
    for (uint32_t i = 0; load->slots && i <= load->mask; i++)
        held += load->slots[i] && load->slots[i]->held > 0;
    /* Shrunk too, so that one huge config does not keep its table. */
    uint32_t slot_count = LOAD_SLOTS_MIN;
    while (slot_count < 2 * held + 2)
        slot_count *= 2;
    /* Out of memory, every record stays: the next adoption tries again. */
    if (load->slots)
        rebuild(load, slot_count, false);
}
