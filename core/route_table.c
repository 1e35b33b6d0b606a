/*
 * route_table.c - server name -> target, nginx `map ... hostnames` rules.
 *
 * One open-addressing table keyed by a name or a suffix. A slot carries
 * the target of the exact name and the target of the suffix pattern ("*.x"
 * or ".x", which also matches the apex) next to the key's hash, offset and
 * length, so a lookup that hits touches two cache lines (the slot and the
 * key) and a miss usually one; keys live in one arena. (Slots of 8 bytes
 * pointing into an entry array cost a third dependent miss per hit:
 * bench/NOTES.md.) The builder is the table under construction: build()
 * trims it and hands it over, after which nothing writes to it.
 */
#include "route_table.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hostname.h"

struct route_slot {
    uint32_t hash;
    uint32_t key_offset;
    uint16_t key_length;  /* 0: the slot is empty (no key is empty) */
    bool suffix_has_apex; /* ".x" form: the suffix target also matches x */
    int32_t exact;        /* ROUTE_NO_MATCH if none */
    int32_t suffix;       /* ROUTE_NO_MATCH if none */
};

/* Few and short (ACME's "acme-tls/1"): a linear scan is the fastest form. */
struct route_alpn {
    uint8_t length;
    char protocol[255];
    int32_t target;
};

struct route_table {
    struct route_alpn *alpn;
    uint32_t alpn_count;
    struct route_slot *slots;
    uint32_t slot_mask;
    uint32_t key_count;   /* slots in use */
    char *keys;
    size_t keys_length, keys_capacity;
    int32_t default_target;
    size_t pattern_count;
    /* Bit n set: some suffix pattern has n labels (63: 63 or more). A
     * lookup probes only the suffixes of the name with such a count, so a
     * name with no wildcard route above it costs one probe, not one per
     * label. */
    uint64_t suffix_label_counts;
};

/* The builder is the same structure while it is still growing. */
struct route_table_builder {
    struct route_table table;
};

#define INITIAL_SLOTS 16

static uint64_t mix(uint64_t value)
{
    value ^= value >> 33;
    value *= 0xff51afd7ed558ccdull;
    value ^= value >> 33;
    value *= 0xc4ceb9fe1a85ec53ull;
    value ^= value >> 33;
    return value;
}

/* Eight bytes at a time: names are short, so this is a handful of multiplies. */
static uint32_t hash_name(const char *name, size_t length)
{
    uint64_t state = 0x9e3779b97f4a7c15ull ^ length;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, name, 8);
        state = (state ^ word) * 0x100000001b3ull;
        state ^= state >> 29;
        name += 8;
        length -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, name, length);
    return (uint32_t)mix(state ^ tail);
}

static uint64_t label_count_bit(unsigned labels)
{
    return 1ull << (labels < 63 ? labels : 63);
}

/* The slot holding `name`, or the empty slot where it would go. */
static struct route_slot *probe(const struct route_table *table, const char *name, size_t length,
                                uint32_t hash)
{
    for (uint32_t index = hash & table->slot_mask;; index = (index + 1) & table->slot_mask) {
        struct route_slot *slot = &table->slots[index];
        if (slot->key_length == 0)
            return slot;
        if (slot->hash == hash && slot->key_length == length &&
            memcmp(table->keys + slot->key_offset, name, length) == 0)
            return slot;
    }
}

static const struct route_slot *find(const struct route_table *table, const char *name,
                                     size_t length, uint32_t hash)
{
    const struct route_slot *slot = probe(table, name, length, hash);
    return slot->key_length ? slot : NULL;
}

/* The suffixes of a name a lookup may need, longest first. */
struct suffix_probes {
    unsigned count;
    uint8_t start[HOSTNAME_MAX / 2 + 1]; /* a normalised name has at most 127 labels */
    uint32_t hash[HOSTNAME_MAX / 2 + 1];
};

static void prefetch_slot(const struct route_table *table, uint32_t hash)
{
    __builtin_prefetch(&table->slots[hash & table->slot_mask]);
}

/* Proper suffixes whose label count some suffix pattern has (the one after
 * the k-th dot has labels - k labels), hashed, their slots requested. */
static void collect_suffix_probes(const struct route_table *table, const char *name, size_t len,
                                  struct suffix_probes *probes)
{
    probes->count = 0;
    if (table->suffix_label_counts == 0)
        return;
    unsigned labels = 1;
    for (size_t i = 0; i < len; i++)
        labels += name[i] == '.';
    for (size_t i = 0; i < len && probes->count < sizeof probes->start; i++) {
        if (name[i] != '.')
            continue;
        labels--;
        if (!(table->suffix_label_counts & label_count_bit(labels)))
            continue;
        uint32_t hash = hash_name(name + i + 1, len - i - 1);
        prefetch_slot(table, hash);
        probes->start[probes->count] = (uint8_t)(i + 1);
        probes->hash[probes->count++] = hash;
    }
}

/* A name longer than HOSTNAME_MAX is no host name: it matches no route. */
int32_t route_lookup(const struct route_table *table, const char *name, size_t len)
{
    if (len == 0 || len > HOSTNAME_MAX)
        return table->default_target;
    /* The probes for the name and for its suffixes do not depend on each
     * other: every slot they need is requested before the first is read,
     * so their cache misses overlap instead of queueing (bench/NOTES.md). */
    uint32_t hash = hash_name(name, len);
    prefetch_slot(table, hash);
    struct suffix_probes probes;
    collect_suffix_probes(table, name, len, &probes);
    const struct route_slot *entry = find(table, name, len, hash);
    if (entry) {
        if (entry->exact != ROUTE_NO_MATCH)
            return entry->exact;
        if (entry->suffix != ROUTE_NO_MATCH && entry->suffix_has_apex)
            return entry->suffix;
    }
    for (unsigned k = 0; k < probes.count; k++) {
        size_t start = probes.start[k];
        entry = find(table, name + start, len - start, probes.hash[k]);
        if (entry && entry->suffix != ROUTE_NO_MATCH)
            return entry->suffix;
    }
    return table->default_target;
}

int32_t route_lookup_alpn(const struct route_table *table, const uint8_t *alpn, size_t alpn_len)
{
    if (table->alpn_count == 0)
        return ROUTE_NO_MATCH;
    size_t offset = 0;
    while (offset < alpn_len) {
        size_t length = alpn[offset];
        if (length == 0 || offset + 1 + length > alpn_len)
            return ROUTE_NO_MATCH;
        const char *offered = (const char *)alpn + offset + 1;
        for (uint32_t i = 0; i < table->alpn_count; i++)
            if (table->alpn[i].length == length && memcmp(table->alpn[i].protocol, offered, length) == 0)
                return table->alpn[i].target;
        offset += 1 + length;
    }
    return ROUTE_NO_MATCH;
}

/* ---- building ---- */

struct route_table_builder *route_table_builder_new(void)
{
    struct route_table_builder *builder = calloc(1, sizeof *builder);
    if (!builder)
        return NULL;
    struct route_table *table = &builder->table;
    table->slots = calloc(INITIAL_SLOTS, sizeof *table->slots);
    if (!table->slots) {
        free(builder);
        return NULL;
    }
    table->slot_mask = INITIAL_SLOTS - 1;
    table->default_target = ROUTE_NO_MATCH;
    return builder;
}

static bool resize_slots(struct route_table *table, uint32_t capacity)
{
    struct route_slot *slots = calloc(capacity, sizeof *slots);
    if (!slots)
        return false;
    for (uint32_t i = 0; i <= table->slot_mask; i++) {
        struct route_slot slot = table->slots[i];
        if (slot.key_length == 0)
            continue;
        uint32_t index = slot.hash & (capacity - 1);
        while (slots[index].key_length != 0)
            index = (index + 1) & (capacity - 1);
        slots[index] = slot;
    }
    free(table->slots);
    table->slots = slots;
    table->slot_mask = capacity - 1;
    return true;
}

static bool reserve(void **array, size_t *capacity, size_t needed, size_t element_size)
{
    if (needed <= *capacity)
        return true;
    size_t grown = *capacity ? *capacity * 2 : 64;
    while (grown < needed)
        grown *= 2;
    void *resized = realloc(*array, grown * element_size);
    if (!resized)
        return false;
    *array = resized;
    *capacity = grown;
    return true;
}

/* length: 1..HOSTNAME_MAX (a normalised name). */
static struct route_slot *find_or_insert(struct route_table *table, const char *key, size_t length,
                                         uint32_t hash)
{
    struct route_slot *slot = probe(table, key, length, hash);
    if (slot->key_length)
        return slot;
    /* Load factor at most 1/2 keeps probe sequences short. */
    if ((table->key_count + 1) * 2 > table->slot_mask + 1) {
        if (!resize_slots(table, (table->slot_mask + 1) * 2))
            return NULL;
        slot = probe(table, key, length, hash);
    }
    if (!reserve((void **)&table->keys, &table->keys_capacity, table->keys_length + length, 1))
        return NULL;
    memcpy(table->keys + table->keys_length, key, length);
    *slot = (struct route_slot){ .hash = hash, .key_offset = (uint32_t)table->keys_length,
                                 .key_length = (uint16_t)length, .suffix_has_apex = false,
                                 .exact = ROUTE_NO_MATCH, .suffix = ROUTE_NO_MATCH };
    table->keys_length += length;
    table->key_count++;
    return slot;
}

bool route_table_builder_reserve(struct route_table_builder *builder, size_t patterns)
{
    struct route_table *table = &builder->table;
    if (patterns > UINT32_MAX / 4)
        return false;
    uint32_t capacity = table->slot_mask + 1;
    while (capacity < patterns * 2)
        capacity *= 2;
    return capacity == table->slot_mask + 1 || resize_slots(table, capacity);
}

/* A pattern read and normalised: what inserting it needs. */
struct parsed_pattern {
    enum route_add_result status; /* ROUTE_ADD_OK: ready to insert */
    bool is_default, wildcard, dot;
    int32_t target;
    uint32_t hash;
    size_t key_length;
    char key[HOSTNAME_MAX + 1];
};

static void parse_pattern(const char *pattern, int32_t target, struct parsed_pattern *parsed)
{
    parsed->status = target < 0 ? ROUTE_ADD_INVALID : ROUTE_ADD_OK;
    parsed->target = target;
    parsed->is_default = strcmp(pattern, "default") == 0;
    if (parsed->status != ROUTE_ADD_OK || parsed->is_default)
        return;
    parsed->wildcard = strncmp(pattern, "*.", 2) == 0;
    parsed->dot = !parsed->wildcard && pattern[0] == '.';
    const char *name = pattern + (parsed->wildcard ? 2 : parsed->dot ? 1 : 0);
    if (!hostname_normalize(name, strlen(name), parsed->key, &parsed->key_length)) {
        parsed->status = ROUTE_ADD_INVALID;
        return;
    }
    parsed->hash = hash_name(parsed->key, parsed->key_length);
}

static enum route_add_result insert_pattern(struct route_table *table, const struct parsed_pattern *parsed)
{
    if (parsed->status != ROUTE_ADD_OK)
        return parsed->status;
    if (parsed->is_default) {
        if (table->default_target != ROUTE_NO_MATCH)
            return ROUTE_ADD_DUPLICATE;
        table->default_target = parsed->target;
        return ROUTE_ADD_OK;
    }
    struct route_slot *entry = find_or_insert(table, parsed->key, parsed->key_length, parsed->hash);
    if (!entry)
        return ROUTE_ADD_NO_MEMORY;
    bool suffix = parsed->wildcard || parsed->dot;
    int32_t *target = suffix ? &entry->suffix : &entry->exact;
    if (*target != ROUTE_NO_MATCH)
        return ROUTE_ADD_DUPLICATE;
    *target = parsed->target;
    if (parsed->dot)
        entry->suffix_has_apex = true;
    if (suffix) {
        unsigned labels = 1;
        for (size_t i = 0; i < parsed->key_length; i++)
            labels += parsed->key[i] == '.';
        table->suffix_label_counts |= label_count_bit(labels);
    }
    table->pattern_count++;
    return ROUTE_ADD_OK;
}

enum route_add_result route_table_builder_add(struct route_table_builder *builder,
                                              const char *pattern, int32_t target)
{
    struct parsed_pattern parsed;
    parse_pattern(pattern, target, &parsed);
    return insert_pattern(&builder->table, &parsed);
}

/* Patterns parsed and hashed ahead of their insertion. */
#define ADD_WINDOW 16

void route_table_builder_add_all(struct route_table_builder *builder, const char *const *patterns,
                                 const int32_t *targets, size_t count, enum route_add_result *results)
{
    struct route_table *table = &builder->table;
    struct parsed_pattern window[ADD_WINDOW];
    for (size_t first = 0; first < count; first += ADD_WINDOW) {
        size_t size = count - first < ADD_WINDOW ? count - first : ADD_WINDOW;
        /* Each insertion's slot is a cache miss of its own: request the
         * whole window's slots, then insert in order (so duplicates are
         * found exactly as one add after the other would find them). */
        for (size_t i = 0; i < size; i++) {
            parse_pattern(patterns[first + i], targets[first + i], &window[i]);
            if (window[i].status == ROUTE_ADD_OK && !window[i].is_default)
                prefetch_slot(table, window[i].hash);
        }
        for (size_t i = 0; i < size; i++)
            results[first + i] = insert_pattern(table, &window[i]);
    }
}

enum route_add_result route_table_builder_add_alpn(struct route_table_builder *builder,
                                                   const char *protocol, int32_t target)
{
    struct route_table *table = &builder->table;
    size_t length = strlen(protocol);
    if (target < 0 || length == 0 || length > 255)
        return ROUTE_ADD_INVALID;
    for (size_t i = 0; i < length; i++)
        if (protocol[i] <= ' ' || protocol[i] > '~')
            return ROUTE_ADD_INVALID;
    for (uint32_t i = 0; i < table->alpn_count; i++)
        if (table->alpn[i].length == length && memcmp(table->alpn[i].protocol, protocol, length) == 0)
            return ROUTE_ADD_DUPLICATE;
    struct route_alpn *grown = realloc(table->alpn, (table->alpn_count + 1) * sizeof *grown);
    if (!grown)
        return ROUTE_ADD_NO_MEMORY;
    table->alpn = grown;
    struct route_alpn *entry = &grown[table->alpn_count++];
    entry->length = (uint8_t)length;
    memcpy(entry->protocol, protocol, length);
    entry->target = target;
    return ROUTE_ADD_OK;
}

static void release_table(struct route_table *table)
{
    free(table->alpn);
    free(table->slots);
    free(table->keys);
}

struct route_table *route_table_build(struct route_table_builder *builder)
{
    if (!builder)
        return NULL;
    /* The builder's first member is the table: hand the allocation over,
     * trimmed to size. */
    struct route_table *table = &builder->table;
    if (table->key_count > 0) {
        void *keys = realloc(table->keys, table->keys_length);
        if (keys)
            table->keys = keys;
        table->keys_capacity = table->keys_length;
    }
    return (struct route_table *)builder;
}

void route_table_builder_free(struct route_table_builder *builder)
{
    if (!builder)
        return;
    release_table(&builder->table);
    free(builder);
}

size_t route_table_size(const struct route_table *table)
{
    return table->pattern_count;
}

void route_table_free(struct route_table *table)
{
    if (!table)
        return;
    release_table(table);
    free(table);
}
