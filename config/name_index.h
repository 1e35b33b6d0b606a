/*
 * name_index.h - text -> index, for the config loaders' lookups by name.
 *
 * A config with 100,000 routes names up to 100,000 upstreams or addresses;
 * a scan per route made loading quadratic (19 s for snisplice.ini, 74 s
 * for an nginx map). Open addressing, load at most 1/2. The index keeps
 * pointers to the texts, not copies: each text must stay unchanged while
 * the index lives.
 */
#ifndef SNISPLICE_CONFIG_NAME_INDEX_H
#define SNISPLICE_CONFIG_NAME_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAME_INDEX_NONE (-1)

struct name_index_entry {
    const char *text; /* NULL: empty */
    int32_t value;
};

struct name_index {
    struct name_index_entry *entries;
    size_t capacity; /* 0 or a power of two */
    size_t count;
};

/* The value stored for `text`, or NAME_INDEX_NONE. */
int32_t name_index_get(const struct name_index *index, const char *text);
/* Store value (>= 0) for text, replacing any value it had. false on ENOMEM
 * (the index is unchanged). */
bool name_index_put(struct name_index *index, const char *text, int32_t value);
void name_index_free(struct name_index *index);

#endif
