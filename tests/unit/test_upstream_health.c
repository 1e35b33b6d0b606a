/*
 * test_upstream_health.c - passive health as nginx's stream upstream does
 * it: max_fails failures within fail_timeout rest a server for
 * fail_timeout (successes in between do not clear them), then one
 * connection probes it per fail_timeout; the only
 * server of an upstream never rests; when every server rests, all are
 * available again at once. And the first choices by weight among the
 * available primaries, and among the available backups; least_connections
 * and max_conns, whose counts outlive a reload and are each server's own
 * however many servers a worker has seen.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../io/upstream_health.h"

static struct upstream upstream;
static struct upstream_health health;
static struct upstream_load load; /* where the servers' records (open counts) live */

/* An upstream of `count` servers (max_fails and fail_timeout 1 s as given)
 * and a health table for it. */
static void setup(uint32_t count, uint16_t max_fails)
{
    upstream = (struct upstream){ 0 };
    upstream.name = strdup("test");
    cr_assert_not_null(upstream.name);
    for (uint32_t i = 0; i < count; i++) {
        struct upstream_server server = UPSTREAM_SERVER_DEFAULTS;
        server.max_fails = max_fails;
        server.fail_timeout_ms = 1000;
        char text[32], error[128];
        snprintf(text, sizeof text, "127.0.0.1:%u", 1000 + i);
        cr_assert(address_parse(text, &server.address, error, sizeof error), "%s", error);
        cr_assert(upstream_add_server(&upstream, &server));
    }
    cr_assert(upstream_schedule_build(&upstream));
    health = (struct upstream_health){ 0 };
    cr_assert(upstream_health_reset(&health, &load, count));
    upstream_load_init(&load);
}

static void teardown(void)
{
    upstream_release(&upstream);
    upstream_health_free(&health);
    upstream_load_free(&load);
}

static bool available(uint32_t server, uint64_t now_ms)
{
    return upstream_health_available(&health, &load, &upstream, &upstream.servers[server], now_ms);
}

/* The worker's connections to server i now, from its record. */
static uint32_t held_by(uint32_t server)
{
    char text[ADDRESS_TEXT_MAX];
    address_format(&upstream.servers[server].address, text, sizeof text);
    const struct upstream_load_record *record = upstream_load_find(&load, upstream.name, text);
    return record ? record->held : 0;
}

/* What a connection does: check, then pick. */
static bool try_server(uint32_t server, uint64_t now_ms)
{
    if (!available(server, now_ms))
        return false;
    upstream_health_picked(&health, &upstream, &upstream.servers[server], now_ms);
    return true;
}

static void fail(uint32_t server, uint64_t now_ms)
{
    upstream_health_failed(&health, &upstream, &upstream.servers[server], now_ms);
}

Test(upstream_health, max_fails_within_fail_timeout_rests_the_server, .fini = teardown)
{
    setup(2, 2);
    fail(0, 100);
    cr_expect(available(0, 150), "one failure of two allowed");
    fail(0, 1200); /* the first fell out of its 1 s window */
    cr_expect(available(0, 1250));
    fail(0, 1300);
    cr_expect_not(available(0, 1350), "two failures within 1 s");
    cr_expect_not(available(0, 2299));
    cr_expect(available(0, 2300), "rested for fail_timeout");
    cr_expect(available(1, 1350), "the other server is not affected");
}

/* After its rest a server gets one probe per fail_timeout, not a burst of
 * connections that each wait for a server that may still be dead. */
Test(upstream_health, after_its_rest_one_connection_probes, .fini = teardown)
{
    setup(2, 3);
    for (int i = 0; i < 3; i++)
        fail(0, 100);
    cr_assert_not(available(0, 500));
    cr_expect(try_server(0, 1100), "the probe");
    cr_expect_not(try_server(0, 1150), "a second connection while the probe is out");
    fail(0, 1600); /* the probe failed: one failure is enough now */
    cr_expect_not(available(0, 2500));
    cr_expect(try_server(0, 2600), "the next probe, a fail_timeout later");
    upstream_health_succeeded(&health, &upstream, &upstream.servers[0]);
    cr_expect(try_server(0, 2650) && try_server(0, 2651), "available again after a good probe");
    fail(0, 2700);
    cr_expect(available(0, 2750), "counting starts again from zero after a success");
}

/* A server that refuses every other connect still reaches max_fails: the
 * connections it accepts in between do not clear its failures (nginx's
 * do not either). They used to, so a flapping server was never rested. */
Test(upstream_health, successes_between_failures_do_not_clear_them, .fini = teardown)
{
    setup(2, 2);
    cr_assert(try_server(0, 100));
    fail(0, 100);
    cr_assert(try_server(0, 200));
    upstream_health_succeeded(&health, &upstream, &upstream.servers[0]);
    cr_assert(try_server(0, 300));
    fail(0, 300);
    cr_expect_not(available(0, 350), "two failures within 1 s, a success between them");
}

/* A connection picked before the server went to rest, whose connect
 * succeeds only now, is no probe: the server keeps resting. */
Test(upstream_health, an_earlier_connections_success_is_no_probe, .fini = teardown)
{
    setup(2, 1);
    cr_assert(try_server(0, 100) && try_server(0, 100));
    fail(0, 150);
    upstream_health_succeeded(&health, &upstream, &upstream.servers[0]);
    cr_expect_not(available(0, 200), "rested by a failure, revived by an older connection's success");
    cr_expect(try_server(0, 1150), "the probe after fail_timeout");
    upstream_health_succeeded(&health, &upstream, &upstream.servers[0]);
    cr_expect(available(0, 1160), "back after a good probe");
}

/* nginx never takes the only server out: there is nothing else to try, and
 * resting it would refuse every connection for fail_timeout after one
 * failure (a backend restart). */
Test(upstream_health, the_only_server_never_rests, .fini = teardown)
{
    setup(1, 1);
    for (int i = 0; i < 5; i++)
        fail(0, 100);
    cr_expect(available(0, 101));
}

/* When every server rests, all are available again at once (older nginx's
 * "quick recovery"; 1.22 waits out fail_timeout): one connection fails,
 * the next tries them all. */
Test(upstream_health, revive_makes_every_server_available, .fini = teardown)
{
    setup(3, 1);
    for (uint32_t i = 0; i < 3; i++)
        fail(i, 100);
    for (uint32_t i = 0; i < 3; i++)
        cr_assert_not(available(i, 200));
    cr_expect(upstream_health_revive(&health, &load, &upstream));
    for (uint32_t i = 0; i < 3; i++)
        cr_expect(available(i, 200), "server %u", i);
    fail(0, 300);
    cr_expect_not(available(0, 301), "counting works as before after a revive");
}

/* A connection on an older snapshot has no table: everything available,
 * nothing recorded. */
Test(upstream_health, no_table_counts_every_server_as_available, .fini = teardown)
{
    setup(2, 1);
    upstream_health_failed(NULL, &upstream, &upstream.servers[0], 100);
    upstream_health_picked(NULL, &upstream, &upstream.servers[0], 100);
    upstream_health_revive(NULL, &load, &upstream);
    cr_expect(upstream_health_available(NULL, &load, &upstream, &upstream.servers[0], 100));
    cr_expect(available(0, 100));
}

/* Weights 5, 1, 1 (the rest as setup gives). */
static void setup_weighted(void)
{
    setup(3, 1);
    upstream.servers[0].weight = 5;
    cr_assert(upstream_schedule_build(&upstream));
}

static uint32_t first_choice(uint64_t now_ms)
{
    uint32_t first = UINT32_MAX;
    cr_assert(upstream_health_first_primary(&health, &load, &upstream, now_ms, &first));
    return first;
}

/* All available: nginx's smooth weighted round robin, a a b a c a a. */
Test(upstream_health, first_choice_is_smooth_weighted_round_robin, .fini = teardown)
{
    setup_weighted();
    const uint32_t expected[] = { 0, 0, 1, 0, 2, 0, 0 };
    for (int round = 0; round < 100; round++)
        for (size_t i = 0; i < 7; i++)
            cr_assert_eq(first_choice(100), expected[i], "round %d, pick %zu", round, i);
}

/* A resting server's share is spread over the others by weight, as nginx
 * does; it used to go whole to the next server in config order. */
Test(upstream_health, a_resting_servers_share_is_spread_by_weight, .fini = teardown)
{
    setup_weighted();
    fail(0, 100); /* a rests */
    unsigned counts[3] = { 0 };
    for (int i = 0; i < 700; i++)
        counts[first_choice(200)]++;
    cr_expect_eq(counts[0], 0);
    cr_expect_eq(counts[1], 350);
    cr_expect_eq(counts[2], 350);
    fail(1, 100);
    fail(2, 100);
    uint32_t first = 0;
    cr_expect_not(upstream_health_first_primary(&health, &load, &upstream, 200, &first), "none available");
    cr_expect_not(upstream_health_first_primary(NULL, &load, &upstream, 200, &first), "no table");
}

/* One primary (index 0) then backups with the given weights (0 = down),
 * indexes 1.., max_fails 1; the primary rests, as when a connection runs
 * out of primaries. */
static void setup_backups(const uint16_t *weights, uint32_t count)
{
    setup(1 + count, 1);
    for (uint32_t i = 0; i < count; i++) {
        upstream.servers[1 + i].backup = true;
        upstream.servers[1 + i].weight = weights[i] ? weights[i] : 1;
        upstream.servers[1 + i].down = weights[i] == 0;
    }
    upstream.primary_count = 1;
    cr_assert(upstream_schedule_build(&upstream));
    fail(0, 100);
    cr_assert_not(available(0, 200));
}

static uint32_t first_backup(uint64_t now_ms)
{
    uint32_t first = UINT32_MAX;
    cr_assert(upstream_health_first_backup(&health, &load, &upstream, now_ms, &first));
    cr_assert(first >= upstream.primary_count && first < upstream.server_count, "%u is no backup", first);
    return first;
}

/* nginx runs a second weighted round robin over the backups: two backups
 * of equal weight share the failed-over connections 1:1. They used to go
 * all to the first backup in config order. */
Test(upstream_health, first_backup_alternates_between_equal_backups, .fini = teardown)
{
    const uint16_t weights[] = { 1, 1 };
    setup_backups(weights, 2);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(first_backup(200), 1 + (uint32_t)(i % 2), "pick %d", i);
}

/* Weights 2 and 1: a b a, over and over. */
Test(upstream_health, first_backup_follows_the_backups_weights, .fini = teardown)
{
    const uint16_t weights[] = { 2, 1 };
    setup_backups(weights, 2);
    const uint32_t expected[] = { 1, 2, 1 };
    for (int round = 0; round < 50; round++)
        for (size_t i = 0; i < 3; i++)
            cr_assert_eq(first_backup(200), expected[i], "round %d, pick %zu", round, i);
}

/* A resting backup's share goes to the other backups by weight; a down
 * backup is never chosen. */
Test(upstream_health, first_backup_skips_resting_and_down_backups, .fini = teardown)
{
    const uint16_t weights[] = { 1, 0, 3, 1 }; /* indexes 1-4, 2 is down */
    setup_backups(weights, 4);
    unsigned counts[5] = { 0 };
    for (int i = 0; i < 500; i++)
        counts[first_backup(200)]++;
    cr_expect_eq(counts[1], 100);
    cr_expect_eq(counts[2], 0, "a down backup was chosen");
    cr_expect_eq(counts[3], 300);
    cr_expect_eq(counts[4], 100);
    fail(3, 200); /* the heavy one rests */
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 100; i++)
        counts[first_backup(300)]++;
    cr_expect_eq(counts[1], 50);
    cr_expect_eq(counts[3], 0, "a resting backup was chosen");
    cr_expect_eq(counts[4], 50);
    fail(1, 200);
    fail(4, 200);
    uint32_t first = 0;
    cr_expect_not(upstream_health_first_backup(&health, &load, &upstream, 300, &first), "none available");
    cr_expect_not(upstream_health_first_backup(NULL, &load, &upstream, 300, &first), "no table");
    cr_expect(first_backup(1300) != 2, "after their rest, but never the down one");
}

/* A connection's retry, as nginx's: the next step of the round robin among
 * the available servers it has not tried, primaries first, then backups
 * (and only backups once it is on them). */
Test(upstream_health, a_retry_steps_among_the_untried_servers, .fini = teardown)
{
    setup(5, 1); /* primaries 0-2, backups 3, 4 */
    upstream.servers[3].backup = upstream.servers[4].backup = true;
    upstream.primary_count = 3;
    upstream.servers[2].weight = 3;
    cr_assert(upstream_schedule_build(&upstream));
    uint64_t tried[UPSTREAM_HEALTH_TRIED_WORDS] = { 1 }; /* 0 failed */
    uint32_t next = UINT32_MAX;
    cr_assert(upstream_health_next_untried(&health, &load, &upstream, 100, tried, false, &next));
    cr_expect_eq(next, 2, "the heavier of the untried primaries");
    tried[0] |= 1u << 2;
    cr_assert(upstream_health_next_untried(&health, &load, &upstream, 100, tried, false, &next));
    cr_expect_eq(next, 1);
    tried[0] |= 1u << 1;
    cr_assert(upstream_health_next_untried(&health, &load, &upstream, 100, tried, false, &next));
    cr_expect_eq(next, 3, "every primary tried: the backups");
    fail(4, 100);
    tried[0] |= 1u << 3;
    cr_expect_not(upstream_health_next_untried(&health, &load, &upstream, 100, tried, false, &next),
                  "the other backup rests");
    tried[0] = 1u << 3; /* a connection that went to the backups at once */
    cr_assert(upstream_health_next_untried(&health, &load, &upstream, 1200, tried, true, &next));
    cr_expect_eq(next, 4, "back to a primary from the backups, or to the tried backup");
    cr_expect_not(upstream_health_next_untried(NULL, &load, &upstream, 100, tried, false, &next), "no table");
}

/* Primaries and backups keep their own running weights: picks of one kind
 * do not shift the other's sequence. */
Test(upstream_health, primaries_and_backups_round_robin_apart, .fini = teardown)
{
    setup(4, 1); /* primaries 0, 1; backups 2, 3 */
    upstream.servers[2].backup = upstream.servers[3].backup = true;
    upstream.primary_count = 2;
    cr_assert(upstream_schedule_build(&upstream));
    uint32_t backup_picks = 0;
    for (int i = 0; i < 12; i++) {
        cr_assert_eq(first_choice(100), (uint32_t)(i % 2), "primary pick %d", i);
        if (i % 3 == 0)
            continue; /* fewer connections reach the backups */
        cr_assert_eq(first_backup(100), 2 + backup_picks % 2, "backup pick %u", backup_picks);
        backup_picks++;
    }
}

/* An upstream of backups only: the first backup by weight all the same,
 * and no primary to choose. */
Test(upstream_health, backups_only_round_robin, .fini = teardown)
{
    setup(2, 1);
    upstream.servers[0].backup = upstream.servers[1].backup = true;
    upstream.primary_count = 0;
    cr_assert(upstream_schedule_build(&upstream));
    uint32_t first = 0;
    cr_expect_not(upstream_health_first_primary(&health, &load, &upstream, 100, &first));
    cr_expect_eq(first_backup(100), 0);
    cr_expect_eq(first_backup(100), 1);
    cr_expect_eq(first_backup(100), 0);
}

/* ---- least_connections: the fewest open connections per unit of weight ---- */

/* The first choice, taken as a connection to it that stays open; *held
 * names what it holds. */
static uint32_t open_to_first(struct upstream_load_record **held)
{
    uint32_t first = first_choice(100);
    *held = NULL;
    upstream_health_hold(&health, &load, &upstream, &upstream.servers[first], held);
    return first;
}

/* Equal weights: a new connection goes where the fewest are open, and
 * ties take turns, so open connections stay level. */
Test(upstream_health, least_connections_goes_where_fewest_are_open, .fini = teardown)
{
    setup(3, 1);
    upstream.balance = UPSTREAM_BALANCE_LEAST_CONNECTIONS;
    struct upstream_load_record *held[30];
    uint32_t server_of[30];
    for (int i = 0; i < 30; i++) {
        server_of[i] = open_to_first(&held[i]);
        uint32_t most = held_by(0), fewest = held_by(0);
        for (uint32_t j = 1; j < 3; j++) {
            most = held_by(j) > most ? held_by(j) : most;
            fewest = held_by(j) < fewest ? held_by(j) : fewest;
        }
        cr_assert_leq(most - fewest, 1, "after %d connections: %u %u %u", i + 1, held_by(0), held_by(1),
                      held_by(2));
    }
    /* Server 1's connections end: the next ten go to it until it is level. */
    for (int i = 0; i < 30; i++)
        if (server_of[i] == 1)
            upstream_health_release(&held[i]);
    for (int i = 0; i < 10; i++) {
        struct upstream_load_record *one;
        cr_assert_eq(open_to_first(&one), 1, "connection %d after server 1 emptied", i);
    }
    cr_expect_eq(held_by(0), 10);
    cr_expect_eq(held_by(1), 10);
    cr_expect_eq(held_by(2), 10);
}

/* Weights 5, 1, 1: five open connections on the heavy server weigh as
 * much as one on each light one, so the light ones get the next two, and
 * then open connections grow in proportion to weight. */
Test(upstream_health, least_connections_counts_per_unit_of_weight, .fini = teardown)
{
    setup_weighted();
    upstream.balance = UPSTREAM_BALANCE_LEAST_CONNECTIONS;
    struct upstream_load_record *held;
    for (int i = 0; i < 5; i++)
        upstream_health_hold(&health, &load, &upstream, &upstream.servers[0], &held);
    uint32_t first = open_to_first(&held);
    uint32_t second = open_to_first(&held);
    cr_expect(first != 0 && second != 0 && first != second, "picked %u then %u", first, second);
    for (int i = 0; i < 63; i++)
        open_to_first(&held);
    cr_expect_eq(held_by(0), 50);
    cr_expect_eq(held_by(1), 10);
    cr_expect_eq(held_by(2), 10);
}

/* A resting server is skipped however few connections it has. */
Test(upstream_health, least_connections_skips_resting_servers, .fini = teardown)
{
    setup(3, 1);
    upstream.balance = UPSTREAM_BALANCE_LEAST_CONNECTIONS;
    fail(2, 100);
    struct upstream_load_record *held;
    for (int i = 0; i < 20; i++)
        cr_assert_neq(open_to_first(&held), 2, "connection %d", i);
}

/* A reload lays the table out again; the open connections still count
 * against their servers (a long-lived connection does not vanish from the
 * counts), and each close gives back exactly what it took. */
Test(upstream_health, open_connections_count_across_a_reset, .fini = teardown)
{
    setup(2, 1);
    upstream.balance = UPSTREAM_BALANCE_LEAST_CONNECTIONS;
    struct upstream_load_record *before = NULL, *after = NULL, *twice = NULL;
    upstream_health_hold(&health, &load, &upstream, &upstream.servers[0], &before);
    upstream_health_hold(&health, &load, &upstream, &upstream.servers[0], &twice);
    cr_assert(upstream_health_reset(&health, &load, 2));
    cr_expect_eq(held_by(0), 2, "still open after the reset");
    cr_expect_eq(first_choice(100), 1, "so the other server is the least loaded");
    upstream_health_hold(&health, &load, &upstream, &upstream.servers[0], &after);
    upstream_health_release(&before);
    cr_expect_null(before);
    cr_expect_eq(held_by(0), 2);
    upstream_health_release(&twice);
    upstream_health_release(&twice);
    cr_expect_eq(held_by(0), 1, "a second release of one hold gives nothing back");
    upstream_health_release(&after);
    cr_expect_eq(held_by(0), 0);
}

/* Round robin keeps no counts: nothing to hold. */
Test(upstream_health, round_robin_holds_nothing, .fini = teardown)
{
    setup(2, 1);
    struct upstream_load_record *held = NULL;
    upstream_health_hold(&health, &load, &upstream, &upstream.servers[0], &held);
    cr_expect_null(held);
    cr_expect_eq(held_by(0), 0);
}

/* ---- max_conns: a server with that many open connections is skipped ---- */

/* Round robin over two servers, the first with max_conns=2: it takes its
 * turns until two of its connections are open, then the other takes every
 * connection; one of the two ending makes room again. Being full is no
 * failure: the server does not rest. */
Test(upstream_health, max_conns_skips_a_full_server_until_one_ends, .fini = teardown)
{
    setup(2, 1);
    upstream.servers[0].max_conns = 2;
    struct upstream_load_record *held[10] = { NULL };
    unsigned taken = 0;
    int first_taken = -1;
    for (int i = 0; i < 10; i++) {
        uint32_t first = first_choice(100);
        cr_assert(taken < 2 || first == 1, "connection %d went to the full server", i);
        upstream_health_hold(&health, &load, &upstream, &upstream.servers[first], &held[i]);
        if (first == 0 && taken++ == 0)
            first_taken = i;
    }
    cr_expect_eq(taken, 2);
    cr_expect_not(available(0, 100), "full");
    cr_expect(available(1, 100), "no limit");
    cr_expect_null(held[first_taken == 0 ? 1 : 0], "the unlimited server keeps no count");
    upstream_health_release(&held[first_taken]);
    cr_expect(available(0, 100), "one ended: room for one more");
    cr_expect_not(health.servers[0].resting, "being full is no failure");
}

/* A pool whose live server is only full is busy, not dead: finding no
 * server then revives nothing, and a server that failed keeps resting
 * (it was revived, and every next client waited for it again). */
Test(upstream_health, a_full_server_keeps_the_others_resting, .fini = teardown)
{
    setup(2, 1);
    upstream.servers[1].max_conns = 1;
    struct upstream_load_record *held = NULL;
    upstream_health_hold(&health, &load, &upstream, &upstream.servers[1], &held);
    fail(0, 100);
    cr_assert_not(available(0, 200) || available(1, 200));
    cr_expect_not(upstream_health_revive(&health, &load, &upstream), "revived beside a full server");
    cr_expect_not(available(0, 200), "the failed server was revived");
    upstream_health_release(&held);
    fail(1, 150);
    cr_expect(upstream_health_revive(&health, &load, &upstream), "both failed: both come back");
    cr_expect(available(0, 200) && available(1, 200));
}

/* The limit holds across a reload: connections opened before it still
 * count, so the server stays full. */
Test(upstream_health, max_conns_holds_across_a_reset, .fini = teardown)
{
    setup(2, 1);
    upstream.servers[0].max_conns = 1;
    struct upstream_load_record *held = NULL;
    upstream_health_hold(&health, &load, &upstream, &upstream.servers[0], &held);
    cr_assert(upstream_health_reset(&health, &load, 2));
    cr_expect_not(available(0, 100), "still full after the reset");
    cr_expect_not(upstream_health_available(NULL, &load, &upstream, &upstream.servers[0], 100),
                  "and for a connection on an older snapshot");
    upstream_health_release(&held);
    cr_expect(available(0, 100));
}

/* The metrics fold servers past their 4096 names into one "other" entry;
 * the open counts must not: with that many other servers known, two
 * servers of max_conns=1 each still take one connection. */
Test(upstream_health, every_server_keeps_its_own_count_past_the_metrics_names, .fini = teardown)
{
    setup(2, 1);
    upstream.servers[0].max_conns = upstream.servers[1].max_conns = 1;
    for (int i = 0; i < 5000; i++) {
        char name[32];
        snprintf(name, sizeof name, "other%d", i);
        cr_assert_not_null(upstream_load_intern(&load, name, "127.0.0.1:1"));
    }
    struct upstream_load_record *held[2] = { NULL, NULL };
    for (int i = 0; i < 2; i++) {
        uint32_t first = first_choice(100);
        cr_assert(available(first, 100), "connection %d: server %u is full", i, first);
        upstream_health_hold(&health, &load, &upstream, &upstream.servers[first], &held[i]);
    }
    cr_expect_eq(held_by(0), 1);
    cr_expect_eq(held_by(1), 1);
    cr_expect(held[0] != held[1], "two servers, one record");
}

/* A reset frees the records nothing holds, so names from configs long
 * gone do not pile up; held ones stay, with their counts. */
Test(upstream_health, a_reset_frees_the_records_nothing_holds, .fini = teardown)
{
    setup(2, 1);
    upstream.balance = UPSTREAM_BALANCE_LEAST_CONNECTIONS;
    for (int i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "gone%d", i);
        cr_assert_not_null(upstream_load_intern(&load, name, "127.0.0.1:1"));
    }
    struct upstream_load_record *held = NULL;
    upstream_health_hold(&health, &load, &upstream, &upstream.servers[1], &held);
    cr_assert(upstream_health_reset(&health, &load, 2));
    cr_expect_eq(load.count, 1, "records left after the reset");
    cr_expect_leq(load.mask + 1, 64, "the table shrank");
    cr_expect_eq(held_by(1), 1);
    cr_expect_eq(first_choice(100), 0, "server 1 still has its connection");
    upstream_health_release(&held);
    cr_expect_eq(held_by(1), 0);
}

/* An upstream named `name` of servers 127.0.0.1:PORT for each port, laid
 * out in a health table from slot `first`. */
static struct upstream reloaded_upstream(const char *name, const unsigned *ports, uint32_t count, uint32_t first)
{
    struct upstream made = { 0 };
    made.name = strdup(name);
    cr_assert_not_null(made.name);
    for (uint32_t i = 0; i < count; i++) {
        struct upstream_server server = UPSTREAM_SERVER_DEFAULTS;
        server.fail_timeout_ms = 1000;
        char text[32], error[128];
        snprintf(text, sizeof text, "127.0.0.1:%u", ports[i]);
        cr_assert(address_parse(text, &server.address, error, sizeof error), "%s", error);
        cr_assert(upstream_add_server(&made, &server));
    }
    cr_assert(upstream_schedule_build(&made));
    made.health_index = first;
    return made;
}

/* A reload keeps what the table knew of a failing server, found by
 * upstream name and address wherever the new snapshot lists it; a server
 * of the same address in another upstream, and a new one, start afresh. */
Test(upstream_health, a_reload_keeps_a_resting_servers_state_by_name, .fini = teardown)
{
    setup(3, 1); /* "test": 127.0.0.1:1000, :1001, :1002 */
    cr_assert(try_server(0, 100));
    fail(0, 100);
    cr_assert(try_server(1, 100));
    fail(1, 100);
    cr_expect(!available(0, 200) && !available(1, 200), "two servers rest before the reload");

    const unsigned other_ports[] = { 1000 };
    const unsigned test_ports[] = { 1003, 1001, 1000 }; /* reordered, one new, :1002 gone */
    struct upstream upstreams[2] = { reloaded_upstream("other", other_ports, 1, 0),
                                     reloaded_upstream("test", test_ports, 3, 1) };
    struct upstream layout = upstream; /* the table's snapshot, kept for the next adoption */
    cr_assert(upstream_health_adopt(&health, &load, &layout, 1, upstreams, 2, 4));
    cr_expect(upstream_health_available(&health, &load, &upstreams[0], &upstreams[0].servers[0], 200),
              "another upstream's server of the same address rests too");
    cr_expect(upstream_health_available(&health, &load, &upstreams[1], &upstreams[1].servers[0], 200),
              "a new server rests");
    cr_expect(!upstream_health_available(&health, &load, &upstreams[1], &upstreams[1].servers[1], 200),
              "127.0.0.1:1001 was forgotten");
    cr_expect(!upstream_health_available(&health, &load, &upstreams[1], &upstreams[1].servers[2], 200),
              "127.0.0.1:1000 was forgotten");
    cr_expect(upstream_health_available(&health, &load, &upstreams[1], &upstreams[1].servers[2], 1200),
              "the kept rest does not end with its fail_timeout");

    /* A server the new config says never rests (max_fails=0, the only
     * server of its upstream) keeps nothing. */
    struct upstream again = reloaded_upstream("test", test_ports, 3, 0);
    again.servers[1].max_fails = 0;
    cr_assert(upstream_health_adopt(&health, &load, upstreams, 2, &again, 1, 3));
    cr_expect(upstream_health_available(&health, &load, &again, &again.servers[1], 200),
              "127.0.0.1:1001 rests with max_fails=0");
    cr_expect(!upstream_health_available(&health, &load, &again, &again.servers[2], 200),
              "127.0.0.1:1000 was forgotten at the second reload");
    const unsigned alone_ports[] = { 1000 };
    struct upstream alone = reloaded_upstream("test", alone_ports, 1, 0);
    cr_assert(upstream_health_adopt(&health, &load, &again, 1, &alone, 1, 1));
    cr_expect(upstream_health_available(&health, &load, &alone, &alone.servers[0], 200),
              "127.0.0.1:1000 rests as the only server of its upstream");

    /* Without the previous layout nothing is kept. */
    cr_assert(upstream_health_adopt(&health, &load, &layout, 1, upstreams, 2, 4));
    cr_assert(upstream_health_adopt(&health, &load, NULL, 0, upstreams, 2, 4));
    cr_expect(upstream_health_available(&health, &load, &upstreams[1], &upstreams[1].servers[2], 200));
    upstream_release(&upstreams[0]);
    upstream_release(&upstreams[1]);
    upstream_release(&again);
    upstream_release(&alone);
}
