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

    /* Raw SNI bytes as clients send them: some in capitals, some with a trailing dot. */
    static char queries[QUERIES][128];
    static size_t lengths[QUERIES];
    for (size_t q = 0; q < QUERIES; q++) {
        int i = (int)(next_random() % ROUTES);
        const char *text = patterns[i].text;
        switch (next_random() % 10) {
        case 0: case 1: case 2: case 3: case 4: /* the pattern itself, or a name under it */
            if (text[0] == '*')
                snprintf(queries[q], sizeof queries[q], "%s%s", next_random() % 2 ? "a.b" : "www", text + 1);
            else if (text[0] == '.')
                snprintf(queries[q], sizeof queries[q], "%s", next_random() % 2 ? text + 1 : "x.y.z");
            else
                snprintf(queries[q], sizeof queries[q], "%s", text);
            if (strcmp(queries[q], "x.y.z") == 0)
                snprintf(queries[q], sizeof queries[q], "x.y.z%s", text);
            break;
        case 5: case 6: /* capitals and a trailing dot */
            snprintf(queries[q], sizeof queries[q], "%s.", text[0] == '*' ? text + 2 : text[0] == '.' ? text + 1 : text);
            for (char *c = queries[q]; *c; c++)
                if (next_random() % 3 == 0 && *c >= 'a' && *c <= 'z')
                    *c = (char)(*c - 32);
            break;
        default: /* misses: near names that are not routed */
            snprintf(queries[q], sizeof queries[q], "svc%05d.tenant%03d.example.net", (int)(next_random() % 99999),
                     (int)(next_random() % 1000));
            break;
        }
        lengths[q] = strlen(queries[q]);
    }

    /* Check a sample against the reference (it is slow: 500 queries). */
    for (size_t q = 0; q < QUERIES; q += QUERIES / 500) {
        char name[256];
        size_t name_length = 0;
        if (!hostname_normalize(queries[q], lengths[q], name, &name_length)) {
            fprintf(stderr, "not a host name: %s\n", queries[q]);
            return 1;
        }
        name[name_length] = '\0';
        int32_t got = route_lookup(table, name, name_length), want = reference_lookup(name);
        if (got != want) {
            fprintf(stderr, "WRONG: %s -> %d, reference %d\n", queries[q], got, want);
            return 1;
        }
    }

    /* Raw names packed end to end too: in a connection the SNI sits in the
     * worker's reused receive buffer, so the bench's own reading of its
     * queries should evict as little of the table as it can (a 128-byte
     * row per query streamed 128 MiB through the cache each pass). */
    static char raw[QUERIES * 48];
    static uint32_t raw_offsets[QUERIES];
    size_t raw_packed = 0;
    for (size_t q = 0; q < QUERIES; q++) {
        if (raw_packed + lengths[q] > sizeof raw) {
            fprintf(stderr, "query names longer than planned\n");
            return 1;
        }
        memcpy(raw + raw_packed, queries[q], lengths[q]);
        raw_offsets[q] = (uint32_t)raw_packed;
        raw_packed += lengths[q];
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
                hostname_normalize(raw + raw_offsets[q], lengths[q], name, &name_length);
                sink += route_lookup(table, name, name_length);
            }
            per_lookup[pass * ROUNDS + round] = (now_ns() - t0) / BATCH;
        }
    }
    qsort(per_lookup, ROUNDS * PASSES, sizeof per_lookup[0], compare_double);

    /* The same with names normalised beforehand, as the ClientHello parser
     * hands them to route_lookup() in a connection. */
    /* Packed one after the other, as few cache lines as the names need: a
     * connection's name sits in a buffer the worker reuses, so the bench's
     * own reading of it should evict as little of the table as it can. */
    static char normalised[QUERIES * 48];
    static uint32_t normalised_offsets[QUERIES];
    static uint8_t normalised_lengths[QUERIES];
    size_t packed = 0;
    for (size_t q = 0; q < QUERIES; q++) {
        char name[HOSTNAME_MAX + 1];
        size_t name_length = 0;
        hostname_normalize(queries[q], lengths[q], name, &name_length);
        if (packed + name_length > sizeof normalised) {
            fprintf(stderr, "query names longer than planned\n");
            return 1;
        }
        memcpy(normalised + packed, name, name_length);
        normalised_offsets[q] = (uint32_t)packed;
        normalised_lengths[q] = (uint8_t)name_length;
        packed += name_length;
    }
    static double lookup_only[ROUNDS * PASSES];
    for (int pass = 0; pass < PASSES; pass++) {
        for (int round = 0; round < ROUNDS; round++) {
            double t0 = now_ns();
            for (int b = 0; b < BATCH; b++) {
                size_t q = (size_t)round * BATCH + (size_t)b;
                sink += route_lookup(table, normalised + normalised_offsets[q], normalised_lengths[q]);
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
