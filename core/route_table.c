/*
 * route_table.c - server name -> target, nginx `map ... hostnames` rules.
 *
 * One open-addressing table keyed by a name or a suffix. Each key has a
 * record in one arena: the target of the exact name, the target of the
 * suffix pattern ("*.x" or ".x", which also matches the apex), and the key
 * itself. A slot is 4 bytes: 8 bits of the key's hash and the record's
 * place. Small is the point: 100 000 routes make 1 MiB of slots and 4 MiB
 * of records, so the slots stay in the CPU's cache and a lookup that
 * misses never leaves it, and one that hits reads one record (bench/
 * NOTES.md: slots of 20 bytes holding the targets, 8 MiB in all, were
 * 0.8x as fast on this machine, whose cache ends between 4 and 8 MiB).
 * The builder is the table under construction: build() trims it and hands
 * it over, after which nothing writes to it. Trailing wildcards
 * ("www.example.*", longest first) and then regular expressions
 * ("~pattern", route_regex.c, in order) are short lists of their own,
 * tried only when no name or suffix matched, as nginx tries them.
 */
#include "route_table.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash_mix.h"
#include "hostname.h"
#include "route_regex.h"

/* A key and its targets, in the records arena. */
struct route_record {
    int32_t exact;        /* ROUTE_NO_MATCH if none */
    int32_t suffix;       /* ROUTE_NO_MATCH if none */
    uint8_t key_length;   /* 1..HOSTNAME_MAX */
    bool suffix_has_apex; /* ".x" form: the suffix target also matches x */
    char key[];
};

/* A slot: the hash's top 8 bits, then the record's offset in units of
 * RECORD_ALIGN in the low 24 bits. 0 is empty: no record starts at 0. */
#define RECORD_ALIGN 8
#define SLOT_OFFSET_BITS 24
_Static_assert(ROUTE_TABLE_RECORDS_MAX == (size_t)RECORD_ALIGN << SLOT_OFFSET_BITS,
               "a slot's offset must reach every record");

static uint32_t slot_tag(uint32_t hash)
{
    return hash >> SLOT_OFFSET_BITS;
}

static uint32_t slot_of(uint32_t hash, size_t record_offset)
{
    return slot_tag(hash) << SLOT_OFFSET_BITS | (uint32_t)(record_offset / RECORD_ALIGN);
}

/* Few and short (ACME's "acme-tls/1"): a linear scan is the fastest form. */
struct route_alpn {
    uint8_t length;
    char protocol[255];
    int32_t target;
};

/* A trailing wildcard "www.example.*": the name must start with the key
 * and a dot. Rare in SNI maps, so a short list, not the hash table. */
struct route_prefix {
    int32_t target;
    uint8_t key_length;
    char key[HOSTNAME_MAX + 1];
};

struct route_table {
    struct route_alpn *alpn;
    uint32_t alpn_count;
    uint32_t *slots;
    uint32_t slot_mask;
    uint32_t key_count;   /* slots in use */
    char *records;
    size_t records_length, records_capacity;
    int32_t default_target;
    size_t pattern_count;
    /* Bit n set: some suffix pattern has n labels (63: 63 or more). A
     * lookup probes only the suffixes of the name with such a count, so a
     * name with no wildcard route above it costs one probe, not one per
     * label. */
    uint64_t suffix_label_counts;
    /* Read only when no name or suffix matched (kept after the fields
     * every lookup reads). */
    struct route_prefix *prefixes; /* "www.example.*", longest first */
    uint32_t prefix_count;
    uint32_t regex_count;
    struct route_regex *regexes; /* config order */
    int32_t not_tls_target; /* "not_tls": clients whose bytes are not TLS */
};

/* The builder is the same structure while it is still growing. */
struct route_table_builder {
    struct route_table table;
};

#define INITIAL_SLOTS 16

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
    return (uint32_t)hash_mix(state ^ tail);
}

static uint64_t label_count_bit(unsigned labels)
{
    return 1ull << (labels < 63 ? labels : 63);
}

static struct route_record *record_at(const struct route_table *table, uint32_t slot)
{
    size_t offset = (size_t)(slot & ((1u << SLOT_OFFSET_BITS) - 1)) * RECORD_ALIGN;
    return (struct route_record *)(table->records + offset);
}

/* The slot holding `name`, or the empty slot where it would go. */
static uint32_t *probe(const struct route_table *table, const char *name, size_t length, uint32_t hash)
{
    for (uint32_t index = hash & table->slot_mask;; index = (index + 1) & table->slot_mask) {
        uint32_t *slot = &table->slots[index];
        if (*slot == 0)
            return slot;
        /* A record is read only when the tag matches: 1 in 256 otherwise. */
        if (slot_tag(*slot) != slot_tag(hash))
            continue;
        const struct route_record *record = record_at(table, *slot);
        if (record->key_length == length && memcmp(record->key, name, length) == 0)
            return slot;
    }
}

static const struct route_record *find(const struct route_table *table, const char *name, size_t length,
                                       uint32_t hash)
{
    const uint32_t *slot = probe(table, name, length, hash);
    return *slot ? record_at(table, *slot) : NULL;
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
/* After names and suffixes: the longest trailing wildcard, then the
 * first regular expression that matches, then the default. Out of line:
 * most tables have neither, and route_lookup stays as small as it was. */
__attribute__((noinline)) static int32_t lookup_prefixes_and_regexes(const struct route_table *table,
                                                                     const char *name, const char *as_sent,
                                                                     size_t len)
{
    for (uint32_t i = 0; i < table->prefix_count; i++) {
        const struct route_prefix *prefix = &table->prefixes[i];
        if (len > prefix->key_length && name[prefix->key_length] == '.' &&
            memcmp(name, prefix->key, prefix->key_length) == 0)
            return prefix->target;
    }
    for (uint32_t i = 0; i < table->regex_count; i++) {
        const struct route_regex *regex = &table->regexes[i];
        if (route_regex_matches(regex, regex->case_sensitive ? as_sent : name, len))
            return regex->target;
    }
    return table->default_target;
}

int32_t route_lookup(const struct route_table *table, const char *name, size_t len)
{
    return route_lookup_as_sent(table, name, name, len);
}

int32_t route_lookup_as_sent(const struct route_table *table, const char *name, const char *as_sent, size_t len)
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
    const struct route_record *record = find(table, name, len, hash);
    if (record) {
        if (record->exact != ROUTE_NO_MATCH)
            return record->exact;
        if (record->suffix != ROUTE_NO_MATCH && record->suffix_has_apex)
            return record->suffix;
    }
    for (unsigned k = 0; k < probes.count; k++) {
        size_t start = probes.start[k];
        record = find(table, name + start, len - start, probes.hash[k]);
        if (record && record->suffix != ROUTE_NO_MATCH)
            return record->suffix;
    }
    if (table->prefix_count == 0 && table->regex_count == 0)
        return table->default_target;
    return lookup_prefixes_and_regexes(table, name, as_sent, len);
}

int32_t route_lookup_not_tls(const struct route_table *table)
{
    return table->not_tls_target != ROUTE_NO_MATCH ? table->not_tls_target : table->default_target;
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
    table->records_length = RECORD_ALIGN; /* offset 0 means "empty slot" */
    table->default_target = ROUTE_NO_MATCH;
    table->not_tls_target = ROUTE_NO_MATCH;
    return builder;
}

static bool resize_slots(struct route_table *table, uint32_t capacity)
{
    uint32_t *slots = calloc(capacity, sizeof *slots);
    if (!slots)
        return false;
    for (uint32_t i = 0; i <= table->slot_mask; i++) {
        uint32_t slot = table->slots[i];
        if (slot == 0)
            continue;
        /* Slots keep 8 bits of the hash: the rest is the key's again. */
        const struct route_record *record = record_at(table, slot);
        uint32_t index = hash_name(record->key, record->key_length) & (capacity - 1);
        while (slots[index] != 0)
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

/* The record of `key` (length 1..HOSTNAME_MAX, normalised), added with
 * no targets if it is new. */
static enum route_add_result find_or_insert(struct route_table *table, const char *key, size_t length,
                                            uint32_t hash, struct route_record **found)
{
    uint32_t *slot = probe(table, key, length, hash);
    if (*slot) {
        *found = record_at(table, *slot);
        return ROUTE_ADD_OK;
    }
    size_t offset = table->records_length;
    size_t size = (offsetof(struct route_record, key) + length + RECORD_ALIGN - 1) / RECORD_ALIGN * RECORD_ALIGN;
    if (offset + size > ROUTE_TABLE_RECORDS_MAX)
        return ROUTE_ADD_FULL;
    /* Load factor at most 1/2 keeps probe sequences short. */
    if ((table->key_count + 1) * 2 > table->slot_mask + 1) {
        if (!resize_slots(table, (table->slot_mask + 1) * 2))
            return ROUTE_ADD_NO_MEMORY;
        slot = probe(table, key, length, hash);
    }
    if (!reserve((void **)&table->records, &table->records_capacity, offset + size, 1))
        return ROUTE_ADD_NO_MEMORY;
    struct route_record *record = (struct route_record *)(table->records + offset);
    *record = (struct route_record){ .exact = ROUTE_NO_MATCH, .suffix = ROUTE_NO_MATCH,
                                     .key_length = (uint8_t)length, .suffix_has_apex = false };
    memcpy(record->key, key, length);
    *slot = slot_of(hash, offset);
    table->records_length += size;
    table->key_count++;
    *found = record;
    return ROUTE_ADD_OK;
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
    bool is_default, is_not_tls, wildcard, dot, trailing;
    int32_t target;
    uint32_t hash;
    size_t key_length;
    char key[HOSTNAME_MAX + 1];
};

static void parse_pattern(const char *pattern, int32_t target, struct parsed_pattern *parsed)
{
    parsed->status = target < 0 ? ROUTE_ADD_INVALID : ROUTE_ADD_OK;
    parsed->target = target;
    parsed->trailing = false;
    parsed->is_default = strcmp(pattern, "default") == 0;
    parsed->is_not_tls = strcmp(pattern, "not_tls") == 0;
    if (parsed->status != ROUTE_ADD_OK || parsed->is_default || parsed->is_not_tls)
        return;
    parsed->wildcard = strncmp(pattern, "*.", 2) == 0;
    parsed->dot = !parsed->wildcard && pattern[0] == '.';
    size_t length = strlen(pattern);
    /* "www.example.*"; a pattern with a wildcard at both ends is refused
     * (its key keeps the '*'), as nginx refuses it. */
    parsed->trailing = !parsed->wildcard && !parsed->dot && length > 2 && strcmp(pattern + length - 2, ".*") == 0;
    const char *name = pattern + (parsed->wildcard ? 2 : parsed->dot ? 1 : 0);
    size_t name_length = strlen(name) - (parsed->trailing ? 2 : 0);
    if (!hostname_normalize(name, name_length, parsed->key, &parsed->key_length)) {
        parsed->status = ROUTE_ADD_INVALID;
        return;
    }
    parsed->hash = hash_name(parsed->key, parsed->key_length);
}

/* Kept longest first, so the first that matches is nginx's choice. */
static enum route_add_result insert_prefix(struct route_table *table, const struct parsed_pattern *parsed)
{
    for (uint32_t i = 0; i < table->prefix_count; i++)
        if (table->prefixes[i].key_length == parsed->key_length &&
            memcmp(table->prefixes[i].key, parsed->key, parsed->key_length) == 0)
            return ROUTE_ADD_DUPLICATE;
    uint32_t at = 0;
    while (at < table->prefix_count && table->prefixes[at].key_length >= parsed->key_length)
        at++;
    struct route_prefix *grown = realloc(table->prefixes, (table->prefix_count + 1) * sizeof *grown);
    if (!grown)
        return ROUTE_ADD_NO_MEMORY;
    table->prefixes = grown;
    memmove(&grown[at + 1], &grown[at], (table->prefix_count - at) * sizeof *grown);
    grown[at].target = parsed->target;
    grown[at].key_length = (uint8_t)parsed->key_length;
    memcpy(grown[at].key, parsed->key, parsed->key_length);
    table->prefix_count++;
    table->pattern_count++;
    return ROUTE_ADD_OK;
}

static enum route_add_result insert_pattern(struct route_table *table, const struct parsed_pattern *parsed)
{
    if (parsed->status != ROUTE_ADD_OK)
        return parsed->status;
    if (parsed->trailing)
        return insert_prefix(table, parsed);
    if (parsed->is_default || parsed->is_not_tls) {
        int32_t *special = parsed->is_default ? &table->default_target : &table->not_tls_target;
        if (*special != ROUTE_NO_MATCH)
            return ROUTE_ADD_DUPLICATE;
        *special = parsed->target;
        return ROUTE_ADD_OK;
    }
    struct route_record *record;
    enum route_add_result added = find_or_insert(table, parsed->key, parsed->key_length, parsed->hash, &record);
    if (added != ROUTE_ADD_OK)
        return added;
    bool suffix = parsed->wildcard || parsed->dot;
    int32_t *target = suffix ? &record->suffix : &record->exact;
    if (*target != ROUTE_NO_MATCH)
        return ROUTE_ADD_DUPLICATE;
    *target = parsed->target;
    if (parsed->dot)
        record->suffix_has_apex = true;
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
            const struct parsed_pattern *parsed = &window[i];
            if (parsed->status == ROUTE_ADD_OK && !parsed->is_default && !parsed->is_not_tls && !parsed->trailing)
                prefetch_slot(table, parsed->hash);
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

enum route_add_result route_table_builder_add_regex(struct route_table_builder *builder, const char *pattern,
                                                    int32_t target, char *error, size_t error_size)
{
    struct route_table *table = &builder->table;
    if (target < 0) {
        snprintf(error, error_size, "no target");
        return ROUTE_ADD_INVALID;
    }
    struct route_regex *grown = realloc(table->regexes, (table->regex_count + 1) * sizeof *grown);
    if (!grown)
        return ROUTE_ADD_NO_MEMORY;
    table->regexes = grown;
    if (!route_regex_compile(&grown[table->regex_count], pattern, target, error, error_size))
        return ROUTE_ADD_INVALID;
    table->regex_count++;
    table->pattern_count++;
    return ROUTE_ADD_OK;
}

static void release_table(struct route_table *table)
{
    for (uint32_t i = 0; i < table->regex_count; i++)
        route_regex_free(&table->regexes[i]);
    free(table->regexes);
    free(table->prefixes);
    free(table->alpn);
    free(table->slots);
    free(table->records);
}

struct route_table *route_table_build(struct route_table_builder *builder)
{
    if (!builder)
        return NULL;
    /* The builder's first member is the table: hand the allocation over,
     * trimmed to size. */
    struct route_table *table = &builder->table;
    if (table->key_count > 0) {
        void *records = realloc(table->records, table->records_length);
        if (records)
            table->records = records;
        table->records_capacity = table->records_length;
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
