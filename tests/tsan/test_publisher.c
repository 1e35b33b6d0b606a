/*
 * test_publisher.c - snapshot publication and reclamation under concurrency.
 * Built with ThreadSanitizer (and also run under ASan by the unit suite's
 * build of core): readers look routes up, pin snapshots across quiescent
 * points and unpin later, while the main thread publishes 1000 new
 * snapshots and reclaims. No reader may see a freed snapshot (TSan/ASan
 * would report it), every answer must match the generation it was read
 * from, and every snapshot must be freed in the end.
 *
 * Not a criterion suite: criterion's shared-memory arena cannot be mapped
 * under ThreadSanitizer, so this file has a small runner of its own.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static int failures;

/* The message after the condition is for the reader of the source. */
#define require(condition, ...)                                                    \
    do {                                                                           \
        if (!(condition)) {                                                        \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #condition); \
            failures++;                                                            \
            abort();                                                               \
        }                                                                          \
    } while (0)

#include "../../core/publisher.h"

enum { READERS = 3, GENERATIONS = 1000 };

static struct publisher *publisher;
static _Atomic bool stop;
static _Atomic unsigned long lookups;

/* Generation g routes "gen.test" to upstream index g % 7 and *.wild.test to
 * (g + 1) % 7; each snapshot has 7 upstreams named after their generation. */
static struct snapshot *make_snapshot(unsigned generation)
{
    struct snapshot *snapshot = snapshot_new();
    struct route_table_builder *builder = route_table_builder_new();
    require(route_table_builder_add(builder, "gen.test", (int32_t)(generation % 7)) == ROUTE_ADD_OK);
    require(route_table_builder_add(builder, "*.wild.test", (int32_t)((generation + 1) % 7)) == ROUTE_ADD_OK);
    snapshot->route_tables = calloc(1, sizeof *snapshot->route_tables);
    snapshot->route_tables[0] = route_table_build(builder);
    snapshot->route_table_count = 1;
    snapshot->upstream_count = 7;
    snapshot->upstreams = calloc(7, sizeof *snapshot->upstreams);
    for (int i = 0; i < 7; i++) {
        char name[32];
        snprintf(name, sizeof name, "%u", generation);
        snapshot->upstreams[i].name = strdup(name);
    }
    snapshot->settings.max_connections = generation; /* the generation, readable by readers */
    return snapshot;
}

static void check(const struct snapshot *snapshot)
{
    unsigned generation = snapshot->settings.max_connections;
    int32_t exact = route_lookup(snapshot->route_tables[0], "gen.test", 8);
    int32_t wild = route_lookup(snapshot->route_tables[0], "a.b.wild.test", 13);
    require((exact) == ((int32_t)(generation % 7)));
    require((wild) == ((int32_t)((generation + 1) % 7)));
    char name[32];
    snprintf(name, sizeof name, "%u", generation);
    require(strcmp(snapshot->upstreams[exact].name, name) == 0);
}

static void *reader(void *argument)
{
    unsigned index = (unsigned)(uintptr_t)argument;
    struct snapshot *pinned[4] = { 0 };
    unsigned round = 0;
    while (!atomic_load(&stop)) {
        struct snapshot *snapshot = publisher_current(publisher);
        /* Use it for a while, as a worker does across one loop iteration:
         * this is the window a wrong publish order would free it in. */
        for (int use = 0; use < 8; use++)
            check(snapshot);
        atomic_fetch_add_explicit(&lookups, 1, memory_order_relaxed);
        /* Like a connecting connection: keep some snapshots across quiescent points. */
        unsigned slot = round % 4;
        if (pinned[slot]) {
            check(pinned[slot]);
            snapshot_unpin(pinned[slot], index);
            pinned[slot] = NULL;
        }
        if (round % 3 == 0) {
            snapshot_pin(snapshot, index);
            pinned[slot] = snapshot;
        }
        publisher_quiescent(publisher, index);
        round++;
    }
    for (unsigned slot = 0; slot < 4; slot++)
        if (pinned[slot])
            snapshot_unpin(pinned[slot], index);
    publisher_worker_offline(publisher, index);
    return NULL;
}

static void publish_and_reclaim_under_readers(void)
{
    publisher = publisher_new(READERS);
    require(publisher_publish(publisher, make_snapshot(0)));
    pthread_t threads[READERS];
    for (unsigned i = 0; i < READERS; i++)
        pthread_create(&threads[i], NULL, reader, (void *)(uintptr_t)i);
    size_t most_waiting = 0;
    for (unsigned generation = 1; generation <= GENERATIONS; generation++) {
        require(publisher_publish(publisher, make_snapshot(generation)));
        size_t waiting = publisher_reclaim(publisher);
        if (waiting > most_waiting)
            most_waiting = waiting;
        if (generation % 50 == 0)
            sched_yield();
    }
    atomic_store(&stop, true);
    for (unsigned i = 0; i < READERS; i++)
        pthread_join(threads[i], NULL);
    require((publisher_reclaim(publisher)) == (0), "every retired snapshot is freed once readers are gone");
    require((atomic_load(&lookups)) > (0));
    publisher_free(publisher);
}

static void pinned_snapshot_outlives_quiescent_points(void)
{
    publisher = publisher_new(1);
    require(publisher_publish(publisher, make_snapshot(1)));
    struct snapshot *first = publisher_current(publisher);
    snapshot_pin(first, 0);
    publisher_quiescent(publisher, 0);
    require(publisher_publish(publisher, make_snapshot(2)));
    publisher_quiescent(publisher, 0);
    require((publisher_reclaim(publisher)) == (1), "pinned: must not be freed");
    check(first);
    snapshot_unpin(first, 0);
    require((publisher_reclaim(publisher)) == (0));
    publisher_free(publisher);
}

static void worker_without_quiescent_point_holds_reclamation(void)
{
    publisher = publisher_new(2);
    require(publisher_publish(publisher, make_snapshot(1)));
    publisher_quiescent(publisher, 0);
    publisher_quiescent(publisher, 1);
    require(publisher_publish(publisher, make_snapshot(2)));
    publisher_quiescent(publisher, 0);
    require((publisher_reclaim(publisher)) == (1), "worker 1 may still read the old one");
    publisher_quiescent(publisher, 1);
    require((publisher_reclaim(publisher)) == (0));
    /* An offline worker does not hold anything back. */
    publisher_worker_offline(publisher, 1);
    require(publisher_publish(publisher, make_snapshot(3)));
    publisher_quiescent(publisher, 0);
    require((publisher_reclaim(publisher)) == (0));
    publisher_free(publisher);
}

int main(void)
{
    struct { const char *name; void (*run)(void); } tests[] = {
        { "publish_and_reclaim_under_readers", publish_and_reclaim_under_readers },
        { "pinned_snapshot_outlives_quiescent_points", pinned_snapshot_outlives_quiescent_points },
        { "worker_without_quiescent_point_holds_reclamation", worker_without_quiescent_point_holds_reclamation },
    };
    size_t count = sizeof tests / sizeof tests[0];
    for (size_t i = 0; i < count; i++) {
        atomic_store(&stop, false);
        tests[i].run();
        printf("ok %zu - publisher: %s\n", i + 1, tests[i].name);
    }
    printf("publisher: %zu passed, %d failed\n", count, failures);
    return failures ? 1 : 0;
}
