/*
 * route_lookup_bench.c - how long a connection's route lookup takes with
 * 100,000 routes: 80% exact names, 15% "*.x" wildcards, 5% ".x" suffixes.
 *
 * Times the path a connection takes after the parser has the raw SNI
 * bytes: hostname_normalize() then route_lookup(). Queries mix exact hits,
 * wildcard hits 1-3 labels deep, suffix hits, and misses that fall to the
 * default, in shuffled order. Every answer is first checked against a
 * plain reference implementation: a fast wrong answer is worth nothing.
 * Both timed loops read their names packed end to end, as a connection
 * reads its name from a reused buffer. Also reports the table's build
 * time. Run: make bench-route.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/hostname.h"
#include "../core/route_table.h"

#define ROUTES 100000
#define QUERIES (1 << 20)
#define BATCH 1024
#define DEFAULT_TARGET 7

struct pattern {
    char text[96];
    int32_t target;
};

static uint64_t random_state = 0x853c49e6748fea9bULL;
static uint64_t next_random(void)
{
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return random_state;
}

static double now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1e9 + now.tv_nsec;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- the reference: nginx hostnames semantics, written plainly ---- */

static struct pattern *patterns;

static int32_t reference_lookup(const char *name)
{
    for (size_t i = 0; i < ROUTES; i++)
        if (patterns[i].text[0] != '*' && patterns[i].text[0] != '.' && strcmp(patterns[i].text, name) == 0)
            return patterns[i].target;
    /* ".x" matches x itself: the longest possible suffix. */
    for (size_t i = 0; i < ROUTES; i++)
        if (patterns[i].text[0] == '.' && strcmp(patterns[i].text + 1, name) == 0)
            return patterns[i].target;
    /* Longest suffix: try each shorter suffix of the name, longest first. */
    for (const char *dot = strchr(name, '.'); dot; dot = strchr(dot + 1, '.')) {
        for (size_t i = 0; i < ROUTES; i++) {
            const char *text = patterns[i].text;
            if (text[0] == '*' && strcmp(text + 1, dot) == 0)
                return patterns[i].target;
            if (text[0] == '.' && strcmp(text, dot) == 0)
                return patterns[i].target;
        }
    }
    return DEFAULT_TARGET;
}

/* ---- the queries ---- */

/* Names packed end to end: in a connection the SNI sits in the worker's
 * reused receive buffer, so the bench's own reading of its queries should
 * evict as little of the table as it can (a 128-byte row per query
 * streamed 128 MiB through the cache each pass). */
struct packed_names {
    char bytes[QUERIES * 48];
    uint32_t offsets[QUERIES];
    uint8_t lengths[QUERIES];
    size_t count;
    size_t used;
};

static bool packed_names_add(struct packed_names *names, const char *name, size_t length)
{
    if (names->count == QUERIES || names->used + length > sizeof names->bytes)
        return false;
    memcpy(names->bytes + names->used, name, length);
    names->offsets[names->count] = (uint32_t)names->used;
    names->lengths[names->count++] = (uint8_t)length;
    names->used += length;
    return true;
}

/* One query as a client sends it: a routed name or one under a routed
 * wildcard or suffix (half), a routed name in capitals with a trailing dot
 * (a fifth), or a near miss that falls to the default (the rest). */
static void make_query(char *query, size_t size)
{
    int i = (int)(next_random() % ROUTES);
    const char *text = patterns[i].text;
    switch (next_random() % 10) {
    case 0: case 1: case 2: case 3: case 4: /* the pattern itself, or a name under it */
        if (text[0] == '*')
            snprintf(query, size, "%s%s", next_random() % 2 ? "a.b" : "www", text + 1);
        else if (text[0] == '.')
            snprintf(query, size, "%s", next_random() % 2 ? text + 1 : "x.y.z");
        else
            snprintf(query, size, "%s", text);
        if (strcmp(query, "x.y.z") == 0)
            snprintf(query, size, "x.y.z%s", text);
        break;
    case 5: case 6: /* capitals and a trailing dot */
        snprintf(query, size, "%s.", text[0] == '*' ? text + 2 : text[0] == '.' ? text + 1 : text);
        for (char *c = query; *c; c++)
            if (next_random() % 3 == 0 && *c >= 'a' && *c <= 'z')
                *c = (char)(*c - 32);
        break;
    default: /* misses: near names that are not routed */
        snprintf(query, size, "svc%05d.tenant%03d.example.net", (int)(next_random() % 99999),
                 (int)(next_random() % 1000));
        break;
    }
}

int main(void)
{
    patterns = calloc(ROUTES, sizeof *patterns);
    for (int i = 0; i < ROUTES; i++) {
        int kind = i % 20; /* 16 exact, 3 wildcard, 1 suffix */
        if (kind < 16)
            snprintf(patterns[i].text, sizeof patterns[i].text, "svc%05d.tenant%03d.example.net", i, i % 997);
        else if (kind < 19)
            snprintf(patterns[i].text, sizeof patterns[i].text, "*.apps%05d.cluster%02d.example.org", i, i % 61);
        else
            snprintf(patterns[i].text, sizeof patterns[i].text, ".site%05d.example.com", i);
        patterns[i].target = i % 500;
    }
    double start = now_ns();
    struct route_table_builder *builder = route_table_builder_new();
    for (int i = 0; i < ROUTES; i++)
        if (route_table_builder_add(builder, patterns[i].text, patterns[i].target) != ROUTE_ADD_OK) {
            fprintf(stderr, "cannot add %s\n", patterns[i].text);
            return 1;
        }
    route_table_builder_add(builder, "default", DEFAULT_TARGET);
    struct route_table *table = route_table_build(builder);
    double build_ms = (now_ns() - start) / 1e6;

    /* Raw SNI bytes as clients send them (some in capitals, some with a
     * trailing dot), and the same names normalised, as the ClientHello
     * parser hands them to route_lookup() in a connection. */
    static struct packed_names raw, normalised;
    for (size_t q = 0; q < QUERIES; q++) {
        char query[128], name[HOSTNAME_MAX + 1];
        size_t name_length = 0;
        make_query(query, sizeof query);
        if (!hostname_normalize(query, strlen(query), name, &name_length)) {
            fprintf(stderr, "not a host name: %s\n", query);
            return 1;
        }
        if (!packed_names_add(&raw, query, strlen(query)) || !packed_names_add(&normalised, name, name_length)) {
            fprintf(stderr, "query names longer than planned\n");
            return 1;
        }
    }

    /* Check a sample against the reference (it is slow: 500 queries). */
    for (size_t q = 0; q < QUERIES; q += QUERIES / 500) {
        char name[HOSTNAME_MAX + 1];
        size_t name_length = normalised.lengths[q];
        memcpy(name, normalised.bytes + normalised.offsets[q], name_length);
        name[name_length] = '\0';
        int32_t got = route_lookup(table, name, name_length), want = reference_lookup(name);
        if (got != want) {
            fprintf(stderr, "WRONG: %.*s -> %d, reference %d\n", (int)raw.lengths[q], raw.bytes + raw.offsets[q],
                    got, want);
            return 1;
        }
    }

    enum { ROUNDS = QUERIES / BATCH, PASSES = 3 };
    static double per_lookup[ROUNDS * PASSES];
    volatile int64_t sink = 0;
    for (int pass = 0; pass < PASSES; pass++) {
        for (int round = 0; round < ROUNDS; round++) {
            double t0 = now_ns();
            for (int b = 0; b < BATCH; b++) {
                size_t q = (size_t)round * BATCH + (size_t)b;
                char name[HOSTNAME_MAX + 1];
                size_t name_length = 0;
                hostname_normalize(raw.bytes + raw.offsets[q], raw.lengths[q], name, &name_length);
                sink += route_lookup(table, name, name_length);
            }
            per_lookup[pass * ROUNDS + round] = (now_ns() - t0) / BATCH;
        }
    }
    qsort(per_lookup, ROUNDS * PASSES, sizeof per_lookup[0], compare_double);

    /* The same with the names normalised beforehand. */
    static double lookup_only[ROUNDS * PASSES];
    for (int pass = 0; pass < PASSES; pass++) {
        for (int round = 0; round < ROUNDS; round++) {
            double t0 = now_ns();
            for (int b = 0; b < BATCH; b++) {
                size_t q = (size_t)round * BATCH + (size_t)b;
                sink += route_lookup(table, normalised.bytes + normalised.offsets[q], normalised.lengths[q]);
            }
            lookup_only[pass * ROUNDS + round] = (now_ns() - t0) / BATCH;
        }
    }
    qsort(lookup_only, ROUNDS * PASSES, sizeof lookup_only[0], compare_double);
    printf("routes: %d (80%% exact, 15%% *.x, 5%% .x); table built in %.1f ms\n", ROUTES, build_ms);
    printf("lookup incl. normalisation, %d distinct queries in %d-query batches, %d passes:\n", QUERIES, BATCH, PASSES);
    printf("  median %.1f ns, p99 %.1f ns, min %.1f ns (all answers checked against a reference on 500 samples)\n",
           per_lookup[ROUNDS * PASSES / 2], per_lookup[ROUNDS * PASSES * 99 / 100], per_lookup[0]);
    printf("route_lookup() alone on normalised names (the connection path):\n");
    printf("  median %.1f ns, p99 %.1f ns, min %.1f ns\n", lookup_only[ROUNDS * PASSES / 2],
           lookup_only[ROUNDS * PASSES * 99 / 100], lookup_only[0]);
    route_table_free(table);
    free(patterns);
    return sink == 42 ? 2 : 0;
}
