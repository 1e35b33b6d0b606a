/*
 * fuzz_route_table.c - libFuzzer harness: route_lookup() against a plain
 * reference of nginx `map ... hostnames` matching.
 *
 * Input: lines. Up to the first empty line, route patterns (target = line
 * number), added with route_table_builder_add_all(); after it, queries.
 * Owns checking that every add result equals the reference's verdict
 * (invalid, duplicate, ok) and that every query that is a host name gets
 * the reference's answer: exact name, then ".x" for x itself, then the
 * longest suffix pattern, then the longest trailing wildcard ("x.*"), then
 * default; and that a client that is not TLS gets "not_tls", else the
 * default. A table this small has few slots,
 * so colliding tags and long probe runs come up often.
 * Must never: keep state between inputs.
 *
 * Run with `make fuzz` (seeded from tests/fuzz/corpus/route_table).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/hostname.h"
#include "../../core/route_table.h"

#define PATTERNS_MAX 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum kind { EXACT, STAR, DOT, PREFIX, DEFAULT, NOT_TLS };

struct reference_route {
    enum kind kind;
    char key[HOSTNAME_MAX + 1];
    int32_t target;
};

static struct reference_route reference[PATTERNS_MAX];
static size_t reference_count;

/* The verdict adding `pattern` must get, recording it when accepted. */
static enum route_add_result reference_add(const char *pattern, int32_t target)
{
    struct reference_route route = { .target = target };
    size_t skip = 0;
    if (strcmp(pattern, "default") == 0) {
        route.kind = DEFAULT;
    } else if (strcmp(pattern, "not_tls") == 0) {
        route.kind = NOT_TLS;
    } else {
        route.kind = strncmp(pattern, "*.", 2) == 0 ? STAR : pattern[0] == '.' ? DOT : EXACT;
        size_t pattern_length = strlen(pattern);
        if (route.kind == EXACT && pattern_length > 2 && strcmp(pattern + pattern_length - 2, ".*") == 0)
            route.kind = PREFIX;
        skip = route.kind == STAR ? 2 : route.kind == DOT ? 1 : 0;
        size_t key_length = pattern_length - skip - (route.kind == PREFIX ? 2 : 0);
        size_t length;
        if (!hostname_normalize(pattern + skip, key_length, route.key, &length))
            return ROUTE_ADD_INVALID;
    }
    for (size_t i = 0; i < reference_count; i++) {
        const struct reference_route *seen = &reference[i];
        bool both_suffix = (seen->kind == STAR || seen->kind == DOT) && (route.kind == STAR || route.kind == DOT);
        /* (a PREFIX only meets another PREFIX: its own kind) */
        if ((seen->kind == route.kind || both_suffix) && strcmp(seen->key, route.key) == 0)
            return ROUTE_ADD_DUPLICATE;
    }
    reference[reference_count++] = route;
    return ROUTE_ADD_OK;
}

static int32_t reference_not_tls(void)
{
    int32_t fallback = ROUTE_NO_MATCH;
    for (size_t i = 0; i < reference_count; i++) {
        if (reference[i].kind == NOT_TLS)
            return reference[i].target;
        if (reference[i].kind == DEFAULT)
            fallback = reference[i].target;
    }
    return fallback;
}

static int32_t reference_lookup(const char *name)
{
    int32_t fallback = ROUTE_NO_MATCH;
    for (size_t i = 0; i < reference_count; i++) {
        if (reference[i].kind == EXACT && strcmp(reference[i].key, name) == 0)
            return reference[i].target;
        if (reference[i].kind == DEFAULT)
            fallback = reference[i].target;
    }
    for (size_t i = 0; i < reference_count; i++)
        if (reference[i].kind == DOT && strcmp(reference[i].key, name) == 0)
            return reference[i].target;
    for (const char *dot = strchr(name, '.'); dot; dot = strchr(dot + 1, '.'))
        for (size_t i = 0; i < reference_count; i++)
            if ((reference[i].kind == STAR || reference[i].kind == DOT) && strcmp(reference[i].key, dot + 1) == 0)
                return reference[i].target;
    const struct reference_route *longest = NULL;
    for (size_t i = 0; i < reference_count; i++) {
        const struct reference_route *route = &reference[i];
        size_t length = strlen(route->key);
        if (route->kind == PREFIX && strncmp(name, route->key, length) == 0 && name[length] == '.' &&
            (!longest || length > strlen(longest->key)))
            longest = route;
    }
    return longest ? longest->target : fallback;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *patterns[PATTERNS_MAX];
    int32_t targets[PATTERNS_MAX];
    size_t count = 0;
    char *line = text, *queries = NULL;
    while (line && count < PATTERNS_MAX) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (*line == '\0') {
            queries = end ? end + 1 : NULL;
            break;
        }
        patterns[count] = line;
        targets[count] = (int32_t)count;
        count++;
        line = end ? end + 1 : NULL;
    }
    reference_count = 0;
    struct route_table_builder *builder = route_table_builder_new();
    if (!builder) {
        free(text);
        return 0;
    }
    enum route_add_result results[PATTERNS_MAX];
    route_table_builder_add_all(builder, patterns, targets, count, results);
    for (size_t i = 0; i < count; i++)
        if (results[i] != reference_add(patterns[i], targets[i]))
            abort();
    struct route_table *table = route_table_build(builder);
    if (!table || route_lookup_not_tls(table) != reference_not_tls())
        abort();
    for (line = queries; line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        char name[HOSTNAME_MAX + 1];
        size_t length;
        if (hostname_normalize(line, strlen(line), name, &length) &&
            route_lookup(table, name, length) != reference_lookup(name))
            abort();
        line = end ? end + 1 : NULL;
    }
    route_table_free(table);
    free(text);
    return 0;
}
