/*
 * test_metrics.c - the per-worker metric storage: routes interned by name
 * (same entry every time, "other" once full), connect failures by server,
 * preread histogram bucket edges, label escaping of the exposition
 * format, and sums over workers that never go backwards while names are
 * being interned.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../io/metrics.h"
#include "../../io/worker.h"

Test(metrics, routes_are_interned_by_name)
{
    struct metrics metrics;
    cr_assert(metrics_init(&metrics));
    struct metrics_route *alpha = metrics_route(&metrics, "alpha");
    cr_expect_eq(metrics_route(&metrics, "alpha"), alpha, "one entry per name");
    cr_expect_neq(metrics_route(&metrics, "bravo"), alpha);
    cr_expect_str_eq(metrics_unrouted(&metrics)->name, "-");
    /* Fill the table: the rest share the "other" entry, nothing is lost. */
    char name[32];
    for (int i = 0; i < METRICS_NAMES_MAX + 10; i++) {
        snprintf(name, sizeof name, "route%d", i);
        metrics_add(&metrics_route(&metrics, name)->outcomes[OUTCOME_DONE], 1);
    }
    cr_expect_eq(atomic_load(&metrics.route_count), METRICS_NAMES_MAX);
    struct metrics_route *other = metrics_route(&metrics, "one-more");
    cr_expect_str_eq(other->name, "other");
    cr_expect_eq(atomic_load(&other->outcomes[OUTCOME_DONE]), 13, "3 + 10 names past the limit");
    cr_expect_eq(metrics_route(&metrics, "alpha"), alpha, "old names are still found");
    metrics_destroy(&metrics);
}

Test(metrics, connect_failures_by_upstream_and_server)
{
    struct metrics metrics;
    cr_assert(metrics_init(&metrics));
    metrics_count_connect_failure(&metrics, "matrix", "127.0.0.1:12443");
    metrics_count_connect_failure(&metrics, "matrix", "127.0.0.1:12443");
    metrics_count_connect_failure(&metrics, "matrix", "127.0.0.1:12444");
    metrics_count_connect_failure(&metrics, "blog", "127.0.0.1:12443");
    cr_assert_eq(atomic_load(&metrics.server_count), 3);
    cr_expect_eq(atomic_load(&metrics.servers[0].connect_failures), 2);
    cr_expect_eq(atomic_load(&metrics.servers[1].connect_failures), 1);
    cr_expect_str_eq(metrics.servers[2].upstream, "blog");
    metrics_destroy(&metrics);
}

Test(metrics, preread_bucket_edges)
{
    struct metrics metrics;
    cr_assert(metrics_init(&metrics));
    const uint64_t observed[] = { 0, 1, 2, 5, 6, 5000, 5001, 600000 };
    const unsigned bucket[] = { 0, 0, 1, 1, 2, 7, 8, 8 };
    for (size_t i = 0; i < sizeof observed / sizeof observed[0]; i++)
        metrics_observe_preread(&metrics, observed[i]);
    unsigned expected[METRICS_PREREAD_BUCKETS] = { 0 };
    for (size_t i = 0; i < sizeof bucket / sizeof bucket[0]; i++)
        expected[bucket[i]]++;
    for (unsigned b = 0; b < METRICS_PREREAD_BUCKETS; b++)
        cr_expect_eq(atomic_load(&metrics.preread_buckets[b]), expected[b], "bucket %u", b);
    cr_expect_eq(atomic_load(&metrics.preread_ms_sum), 0 + 1 + 2 + 5 + 6 + 5000 + 5001 + 600000);
    metrics_destroy(&metrics);
}

Test(metrics, label_escaping)
{
    char out[64];
    metrics_escape_label("plain-name_1", out, sizeof out);
    cr_expect_str_eq(out, "plain-name_1");
    metrics_escape_label("a\"b\\c\nd", out, sizeof out);
    cr_expect_str_eq(out, "a\\\"b\\\\c\\nd");
    metrics_escape_label("[::1]:443", out, sizeof out);
    cr_expect_str_eq(out, "[::1]:443");
    /* UTF-8 passes whole; a byte of anything else becomes '?' (Latin-1,
     * a cut character, an overlong '/', a surrogate, past U+10FFFF). */
    metrics_escape_label("caf\xc3\xa9-\xf0\x9f\x93\x88", out, sizeof out);
    cr_expect_str_eq(out, "caf\xc3\xa9-\xf0\x9f\x93\x88");
    metrics_escape_label("caf\xe9|\xc3|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80", out, sizeof out);
    cr_expect_str_eq(out, "caf?|?|??|???|????");
    char tiny[6];
    metrics_escape_label("\"\"\"\"", tiny, sizeof tiny);
    cr_expect_leq(strlen(tiny), 5, "never past the buffer");
}

/* Worker 0 interns names as fast as it can while the stats thread
 * renders: worker 1's entries must be in every sum all the same. */
struct interning {
    struct metrics *metrics;
    atomic_bool done;
};

static void *intern_names(void *argument)
{
    struct interning *interning = argument;
    char name[32];
    for (int i = 0; i < METRICS_NAMES_MAX - 8; i++) {
        snprintf(name, sizeof name, "new%d", i);
        metrics_route(interning->metrics, name);
        metrics_server(interning->metrics, name, "10.0.0.1:443");
    }
    atomic_store(&interning->done, true);
    return NULL;
}

static void count_web(struct metrics *metrics)
{
    metrics_add(&metrics_route(metrics, "web")->outcomes[OUTCOME_DONE], 5);
    metrics_add(&metrics_server(metrics, "web", "127.0.0.1:12443")->connections, 5);
}

static bool sums_whole(const struct worker *workers)
{
    char *text = metrics_render(workers, 2, 0, 0);
    cr_assert_not_null(text);
    bool whole = strstr(text, "snisplice_connections_total{route=\"web\",outcome=\"done\"} 10\n") &&
                 strstr(text, "snisplice_upstream_connections_total{upstream=\"web\",server=\"127.0.0.1:12443\"} 10\n");
    free(text);
    return whole;
}

/* A counter that goes down is a counter reset to Prometheus: rate() of
 * it shows a spike of the whole count. A worker that interns a name (a
 * reload's new route, a server's first connection) between the stats
 * thread's count of the entries and its walk over them must not push
 * another worker's entries out of the sums. The window is short: many
 * rounds, each scraping only while names are being interned. */
Test(metrics, sums_stay_whole_while_a_worker_interns_names)
{
    struct worker *workers = calloc(2, sizeof *workers);
    cr_assert_not_null(workers);
    cr_assert(metrics_init(&workers[1].metrics));
    count_web(&workers[1].metrics);
    long scrapes = 0, partial = 0;
    for (int round = 0; round < 40 && partial == 0; round++) {
        cr_assert(metrics_init(&workers[0].metrics));
        count_web(&workers[0].metrics);
        struct interning interning = { .metrics = &workers[0].metrics };
        pthread_t thread;
        cr_assert_eq(pthread_create(&thread, NULL, intern_names, &interning), 0);
        while (!atomic_load(&interning.done) && partial == 0) {
            scrapes++;
            if (!sums_whole(workers))
                partial = scrapes;
        }
        pthread_join(thread, NULL);
        metrics_destroy(&workers[0].metrics);
    }
    cr_expect_eq(partial, 0, "scrape %ld of %ld summed only part of the workers' counts", partial, scrapes);
    cr_log_info("%ld scrapes", scrapes);
    metrics_destroy(&workers[1].metrics);
    free(workers);
}
