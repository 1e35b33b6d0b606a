/*
 * name_index.c - text -> index by open addressing (see name_index.h).
 * Owns its entry array only; never copies or frees the texts.
 */
#include "name_index.h"

#include <stdlib.h>
#include <string.h>

static size_t hash_text(const char *text)
{
    uint64_t hash = 0xcbf29ce484222325ull; /* FNV-1a, 64-bit */
    for (; *text; text++)
        hash = (hash ^ (unsigned char)*text) * 0x100000001b3ull;
    return (size_t)(hash ^ hash >> 32);
}

/* The entry holding `text`, or the empty one where it would go. */
static struct name_index_entry *slot_for(const struct name_index *index, const char *text)
{
    size_t mask = index->capacity - 1;
    for (size_t slot = hash_text(text) & mask;; slot = (slot + 1) & mask) {
        struct name_index_entry *entry = &index->entries[slot];
        if (!entry->text || strcmp(entry->text, text) == 0)
            return entry;
    }
}

int32_t name_index_get(const struct name_index *index, const char *text)
{
    if (index->count == 0)
        return NAME_INDEX_NONE;
    const struct name_index_entry *entry = slot_for(index, text);
    return entry->text ? entry->value : NAME_INDEX_NONE;
}

static bool grow(struct name_index *index)
{
    struct name_index bigger = { .capacity = index->capacity ? index->capacity * 2 : 64 };
    bigger.entries = calloc(bigger.capacity, sizeof *bigger.entries);
    if (!bigger.entries)
        return false;
    for (size_t i = 0; i < index->capacity; i++)
        if (index->entries[i].text)
            *slot_for(&bigger, index->entries[i].text) = index->entries[i];
    bigger.count = index->count;
    free(index->entries);
    *index = bigger;
    return true;
}

bool name_index_put(struct name_index *index, const char *text, int32_t value)
{
    if ((index->count + 1) * 2 > index->capacity && !grow(index))
        return false;
    struct name_index_entry *entry = slot_for(index, text);
    if (!entry->text)
        index->count++;
    *entry = (struct name_index_entry){ text, value };
    return true;
}

void name_index_free(struct name_index *index)
{
    free(index->entries);
    *index = (struct name_index){ 0 };
}
