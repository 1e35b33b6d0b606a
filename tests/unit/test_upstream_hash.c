/*
 * test_upstream_hash.c - balance = client_address: one client address
 * keeps one server, whatever the config order and across rebuilds;
 * weights share clients out; a resting, removed or added server moves only
 * the clients it loses or gains, and a lost server's clients spread over
 * the others; the ring stays bounded however big the upstream.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "../../core/upstream_hash.h"

#define CLIENTS 100000

struct server_spec {
    const char *address;
    uint16_t weight;
    bool backup;
    bool down;
};

/* An upstream of the given servers with its ring built. */
static struct upstream make_ring(const struct server_spec *specs, size_t count)
{
    struct upstream upstream = { 0 };
    for (size_t i = 0; i < count; i++) {
        struct upstream_server server = UPSTREAM_SERVER_DEFAULTS;
        char error[256] = "";
        cr_assert(address_parse(specs[i].address, &server.address, error, sizeof error), "%s", error);
        server.weight = specs[i].weight;
        server.backup = specs[i].backup;
        server.down = specs[i].down;
        cr_assert(upstream_add_server(&upstream, &server));
    }
    cr_assert(upstream_hash_build(&upstream));
    return upstream;
}

/* Client number n: 10.0.0.0 + n as it arrives from accept(). */
static struct client_address ipv4_client(uint32_t n)
{
    struct sockaddr_in in4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000u + n) };
    struct client_address client;
    cr_assert(client_address_from((const struct sockaddr *)&in4, &client));
    return client;
}

/* Client number n: 2001:db8::n. */
static struct client_address ipv6_client(uint32_t n)
{
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
    in6.sin6_addr.s6_addr[0] = 0x20;
    in6.sin6_addr.s6_addr[1] = 0x01;
    in6.sin6_addr.s6_addr[2] = 0x0d;
    in6.sin6_addr.s6_addr[3] = 0xb8;
    for (int i = 0; i < 4; i++)
        in6.sin6_addr.s6_addr[15 - i] = (uint8_t)(n >> (8 * i));
    struct client_address client;
    cr_assert(client_address_from((const struct sockaddr *)&in6, &client));
    return client;
}

/* What a worker's attempts do (io/connect.c): the servers in ring order
 * from key, skipping those eligible refuses (resting ones, or, in a
 * test, one that refused); -1 when none is left. */
static int32_t first_eligible(const struct upstream *upstream, uint32_t key, upstream_eligible_fn eligible,
                              void *context)
{
    for (uint32_t n = 0;; n++) {
        int32_t server = upstream_hash_nth(upstream, key, n);
        if (server < 0 || !eligible || eligible(&upstream->servers[server], context))
            return server;
    }
}

static int32_t pick_for(const struct upstream *upstream, uint32_t n, upstream_eligible_fn eligible,
                        void *context)
{
    struct client_address client = ipv4_client(n);
    return first_eligible(upstream, upstream_hash_client(&client), eligible, context);
}

/* The picked server's address as text, to compare servers across rings. */
static void name_of(const struct upstream *upstream, int32_t index, char *out, size_t out_size)
{
    cr_assert(index >= 0 && (uint32_t)index < upstream->server_count, "picked %d", index);
    address_format(&upstream->servers[index].address, out, out_size);
}

/* For each server of `from`, the index of the server with the same address
 * in `to` (-1: none), so picks of two rings compare by address. */
static void map_by_address(const struct upstream *from, const struct upstream *to, int32_t *map)
{
    for (uint32_t i = 0; i < from->server_count; i++) {
        map[i] = -1;
        for (uint32_t j = 0; j < to->server_count; j++)
            if (memcmp(&from->servers[i].address, &to->servers[j].address, sizeof(struct address)) == 0)
                map[i] = (int32_t)j;
    }
}

/* Eligible refuses the servers whose bit is set, counting how often each
 * is asked. */
struct refusals {
    const struct upstream *upstream;
    uint32_t refused_mask;
    uint32_t asked[UPSTREAM_SERVERS_MAX];
};

static bool not_refused(const struct upstream_server *server, void *context)
{
    struct refusals *refusals = context;
    uint32_t index = (uint32_t)(server - refusals->upstream->servers);
    refusals->asked[index]++;
    return !(refusals->refused_mask >> index & 1);
}

static const struct server_spec four[] = {
    { "192.0.2.1:443", 1, false, false },
    { "192.0.2.2:443", 1, false, false },
    { "192.0.2.3:443", 1, false, false },
    { "192.0.2.4:443", 1, false, false },
};

Test(upstream_hash, a_client_keeps_its_server)
{
    struct upstream upstream = make_ring(four, 4);
    int32_t first[1000];
    for (uint32_t n = 0; n < 1000; n++) {
        first[n] = pick_for(&upstream, n, NULL, NULL);
        cr_assert_eq(pick_for(&upstream, n, NULL, NULL), first[n], "client %u asked twice", n);
    }
    cr_assert(upstream_hash_build(&upstream), "a reload rebuilds the ring");
    for (uint32_t n = 0; n < 1000; n++)
        cr_assert_eq(pick_for(&upstream, n, NULL, NULL), first[n], "client %u after a rebuild", n);
    upstream_release(&upstream);
}

Test(upstream_hash, config_order_does_not_change_the_pick)
{
    const struct server_spec reordered[] = { four[2], four[0], four[3], four[1] };
    struct upstream a = make_ring(four, 4);
    struct upstream b = make_ring(reordered, 4);
    int32_t a_to_b[4];
    map_by_address(&a, &b, a_to_b);
    for (uint32_t n = 0; n < CLIENTS; n++)
        cr_assert_eq(a_to_b[pick_for(&a, n, NULL, NULL)], pick_for(&b, n, NULL, NULL), "client %u", n);
    upstream_release(&a);
    upstream_release(&b);
}

Test(upstream_hash, weights_share_out_clients)
{
    const struct server_spec specs[] = {
        { "192.0.2.1:443", 1, false, false },
        { "192.0.2.2:443", 1, false, false },
        { "192.0.2.3:443", 2, false, false },
    };
    struct upstream upstream = make_ring(specs, 3);
    cr_assert_eq(upstream.hash_point_count, 4 * UPSTREAM_HASH_POINTS_PER_WEIGHT);
    uint32_t got[3] = { 0 };
    for (uint32_t n = 0; n < CLIENTS; n++)
        got[pick_for(&upstream, n, NULL, NULL)]++;
    double expected[3] = { 0.25, 0.25, 0.50 };
    for (int i = 0; i < 3; i++) {
        double share = (double)got[i] / CLIENTS;
        cr_expect(share > expected[i] - 0.05 && share < expected[i] + 0.05, "server %d: %.3f of clients, want %.2f",
                  i, share, expected[i]);
    }
    upstream_release(&upstream);
}

Test(upstream_hash, a_resting_server_hands_its_clients_to_several_others)
{
    struct upstream upstream = make_ring(four, 4);
    uint32_t received[4] = { 0 };
    uint32_t moved = 0;
    for (uint32_t n = 0; n < CLIENTS; n++) {
        struct refusals resting = { .upstream = &upstream, .refused_mask = 1u << 1 };
        int32_t before = pick_for(&upstream, n, NULL, NULL);
        int32_t after = pick_for(&upstream, n, not_refused, &resting);
        cr_assert_neq(after, 1, "client %u sent to the resting server", n);
        if (before != 1) {
            cr_assert_eq(after, before, "client %u of a server still up moved", n);
            continue;
        }
        moved++;
        received[after]++;
    }
    cr_assert_gt(moved, CLIENTS / 8, "the resting server had its share of clients");
    for (int i = 0; i < 4; i++) {
        if (i == 1)
            continue;
        cr_expect_gt(received[i], moved / 6, "server %d took %u of the %u moved clients: not spread", i,
                     received[i], moved);
    }
    upstream_release(&upstream);
}

/* What fraction of clients changed server (by address) from ring a to b,
 * asserting that every one that moved went to `only_to` in b (NULL: went
 * nowhere in particular) and came from `only_from` in a (NULL: anywhere). */
static double moved_between(const struct upstream *a, const struct upstream *b, const char *only_from,
                            const char *only_to)
{
    int32_t a_to_b[UPSTREAM_SERVERS_MAX];
    map_by_address(a, b, a_to_b);
    uint32_t moved = 0;
    for (uint32_t n = 0; n < CLIENTS; n++) {
        int32_t before = pick_for(a, n, NULL, NULL);
        int32_t after = pick_for(b, n, NULL, NULL);
        if (a_to_b[before] == after)
            continue;
        moved++;
        char from[ADDRESS_TEXT_MAX], to[ADDRESS_TEXT_MAX];
        name_of(a, before, from, sizeof from);
        name_of(b, after, to, sizeof to);
        if (only_from)
            cr_assert_str_eq(from, only_from, "client %u moved off a server that stayed", n);
        if (only_to)
            cr_assert_str_eq(to, only_to, "client %u moved to a server it did not need", n);
    }
    return (double)moved / CLIENTS;
}

Test(upstream_hash, removing_a_server_moves_only_its_clients)
{
    const struct server_spec without_third[] = { four[0], four[1], four[3] };
    struct upstream before = make_ring(four, 4);
    struct upstream after = make_ring(without_third, 3);
    double moved = moved_between(&before, &after, "192.0.2.3:443", NULL);
    cr_expect(moved > 0.15 && moved < 0.35, "%.3f of clients moved, want about 1/4", moved);
    upstream_release(&before);
    upstream_release(&after);
}

Test(upstream_hash, adding_a_server_moves_a_fifth_onto_it)
{
    const struct server_spec five[] = { four[0], four[1], four[2], four[3], { "192.0.2.5:443", 1, false, false } };
    struct upstream before = make_ring(four, 4);
    struct upstream after = make_ring(five, 5);
    double moved = moved_between(&before, &after, NULL, "192.0.2.5:443");
    cr_expect(moved > 0.15 && moved < 0.25, "%.3f of clients moved, want about 1/5", moved);
    upstream_release(&before);
    upstream_release(&after);
}

Test(upstream_hash, down_servers_and_backups_get_no_points)
{
    const struct server_spec specs[] = {
        { "192.0.2.1:443", 0, false, false }, /* weight 0 counts as 1 */
        { "192.0.2.2:443", 5, false, true },
        { "192.0.2.3:443", 5, true, false },
    };
    struct upstream upstream = make_ring(specs, 3);
    cr_assert_eq(upstream.hash_point_count, UPSTREAM_HASH_POINTS_PER_WEIGHT);
    for (uint32_t i = 0; i < upstream.hash_point_count; i++)
        cr_assert_eq(upstream.hash_points[i].server, 0);
    for (uint32_t n = 0; n < 1000; n++)
        cr_assert_eq(pick_for(&upstream, n, NULL, NULL), 0);
    struct refusals resting = { .upstream = &upstream, .refused_mask = 1u << 0 };
    cr_assert_eq(pick_for(&upstream, 7, not_refused, &resting), -1, "a backup is not on the ring");
    upstream_release(&upstream);
}

Test(upstream_hash, no_primary_means_no_ring)
{
    struct upstream empty = { 0 };
    cr_assert(upstream_hash_build(&empty));
    cr_assert_eq(empty.hash_point_count, 0);
    cr_assert_eq(pick_for(&empty, 1, NULL, NULL), -1);
    const struct server_spec backups_only[] = { { "192.0.2.9:443", 1, true, false } };
    struct upstream upstream = make_ring(backups_only, 1);
    cr_assert_eq(upstream.hash_point_count, 0);
    cr_assert_null(upstream.hash_points);
    cr_assert_eq(pick_for(&upstream, 1, NULL, NULL), -1);
    upstream_release(&upstream);
}

Test(upstream_hash, every_server_refused_gives_none_asking_each_once)
{
    struct upstream upstream = make_ring(four, 4);
    for (uint32_t n = 0; n < 1000; n++) {
        struct refusals all = { .upstream = &upstream, .refused_mask = 0xf };
        cr_assert_eq(pick_for(&upstream, n, not_refused, &all), -1);
        for (int i = 0; i < 4; i++)
            cr_assert_eq(all.asked[i], 1, "server %d asked %u times", i, all.asked[i]);
    }
    upstream_release(&upstream);
}

Test(upstream_hash, ipv4_and_ipv6_clients_both_spread)
{
    struct upstream upstream = make_ring(four, 4);
    uint32_t v4[4] = { 0 }, v6[4] = { 0 };
    for (uint32_t n = 0; n < CLIENTS; n++) {
        struct client_address a4 = ipv4_client(n), a6 = ipv6_client(n);
        v4[upstream_hash_nth(&upstream, upstream_hash_client(&a4), 0)]++;
        v6[upstream_hash_nth(&upstream, upstream_hash_client(&a6), 0)]++;
    }
    for (int i = 0; i < 4; i++) {
        cr_expect(v4[i] > CLIENTS / 6 && v4[i] < CLIENTS / 3, "IPv4: server %d has %u", i, v4[i]);
        cr_expect(v6[i] > CLIENTS / 6 && v6[i] < CLIENTS / 3, "IPv6: server %d has %u", i, v6[i]);
    }
    struct client_address mapped = ipv4_client(1), native = ipv6_client(1);
    cr_expect_neq(upstream_hash_client(&mapped), upstream_hash_client(&native));
    upstream_release(&upstream);
}

Test(upstream_hash, the_largest_upstream_stays_within_the_point_bound)
{
    struct upstream upstream = { 0 };
    for (uint32_t i = 0; i < UPSTREAM_SERVERS_MAX; i++) {
        struct upstream_server server = UPSTREAM_SERVER_DEFAULTS;
        char text[64], error[256] = "";
        snprintf(text, sizeof text, "10.1.%u.%u:443", i / 256, i % 256);
        cr_assert(address_parse(text, &server.address, error, sizeof error), "%s", error);
        server.weight = i == 0 ? 1 : UPSTREAM_WEIGHT_MAX; /* the lightest keeps a point */
        cr_assert(upstream_add_server(&upstream, &server));
    }
    cr_assert(upstream_hash_build(&upstream));
    cr_assert_leq(upstream.hash_point_count, UPSTREAM_HASH_POINTS_MAX);
    cr_assert_geq(upstream.hash_point_count, UPSTREAM_HASH_POINTS_BUDGET / 2);
    uint32_t points[UPSTREAM_SERVERS_MAX] = { 0 };
    for (uint32_t i = 0; i < upstream.hash_point_count; i++) {
        points[upstream.hash_points[i].server]++;
        if (i > 0)
            cr_assert_leq(upstream.hash_points[i - 1].hash, upstream.hash_points[i].hash, "sorted");
    }
    cr_expect_geq(points[0], 1);
    for (uint32_t i = 1; i < UPSTREAM_SERVERS_MAX; i++)
        cr_expect_gt(points[i], 100 * points[0], "server %u has %u points", i, points[i]);
    cr_assert(pick_for(&upstream, 12345, NULL, NULL) >= 0);
    upstream_release(&upstream);
}

/* The points of a one-server ring: they depend only on that server. */
static void points_of(const char *address, uint32_t *hashes)
{
    const struct server_spec spec = { address, 1, false, false };
    struct upstream upstream = make_ring(&spec, 1);
    cr_assert_eq(upstream.hash_point_count, UPSTREAM_HASH_POINTS_PER_WEIGHT);
    for (uint32_t i = 0; i < upstream.hash_point_count; i++)
        hashes[i] = upstream.hash_points[i].hash;
    upstream_release(&upstream);
}

Test(upstream_hash, unix_servers_hash_by_path)
{
    uint32_t x[UPSTREAM_HASH_POINTS_PER_WEIGHT], x_again[UPSTREAM_HASH_POINTS_PER_WEIGHT];
    uint32_t y[UPSTREAM_HASH_POINTS_PER_WEIGHT];
    points_of("unix:/run/x.sock", x);
    points_of("unix:/run/x.sock", x_again);
    points_of("unix:/run/y.sock", y);
    cr_assert_arr_eq(x, x_again, sizeof x, "the same path, the same points");
    cr_assert(memcmp(x, y, sizeof x) != 0, "another path, other points");

    /* Bytes after the path's NUL are no part of the address. */
    const struct server_spec spec = { "unix:/run/x.sock", 1, false, false };
    struct upstream upstream = make_ring(&spec, 1);
    char *path = ((struct sockaddr_un *)&upstream.servers[0].address.storage)->sun_path;
    memset(path + strlen(path) + 1, 'z', 20);
    cr_assert(upstream_hash_build(&upstream));
    for (uint32_t i = 0; i < upstream.hash_point_count; i++)
        cr_assert_eq(upstream.hash_points[i].hash, x[i]);
    upstream_release(&upstream);

    const struct server_spec paths[] = {
        { "unix:/run/a.sock", 1, false, false },
        { "unix:/run/b.sock", 1, false, false },
        { "unix:/run/c.sock", 1, false, false },
    };
    const struct server_spec reordered[] = { paths[2], paths[0], paths[1] };
    struct upstream a = make_ring(paths, 3), b = make_ring(reordered, 3);
    int32_t a_to_b[3];
    map_by_address(&a, &b, a_to_b);
    uint32_t used[3] = { 0 };
    for (uint32_t n = 0; n < 10000; n++) {
        int32_t picked = pick_for(&a, n, NULL, NULL);
        used[picked]++;
        cr_assert_eq(a_to_b[picked], pick_for(&b, n, NULL, NULL), "client %u", n);
    }
    for (int i = 0; i < 3; i++)
        cr_expect_gt(used[i], 10000 / 6, "path server %d has %u clients", i, used[i]);
    upstream_release(&a);
    upstream_release(&b);
}

Test(upstream_hash, ports_and_families_are_part_of_a_server)
{
    uint32_t a[UPSTREAM_HASH_POINTS_PER_WEIGHT], other_port[UPSTREAM_HASH_POINTS_PER_WEIGHT];
    uint32_t v6[UPSTREAM_HASH_POINTS_PER_WEIGHT];
    points_of("192.0.2.1:443", a);
    points_of("192.0.2.1:8443", other_port);
    points_of("[::ffff:192.0.2.1]:443", v6);
    cr_expect(memcmp(a, other_port, sizeof a) != 0);
    cr_expect(memcmp(a, v6, sizeof a) != 0);
}

/* Pinned values: a change here moves every client of every upstream to
 * another server on upgrade, so it must be deliberate (and it would show a
 * seed or an index creeping into the hashes). */
Test(upstream_hash, hashes_are_the_same_in_every_process_and_version)
{
    struct { const char *address; uint32_t lowest, highest; } pinned[] = {
        { "192.0.2.1:443", 0x021c31d0, 0xff57d465 },
        { "[2001:db8::1]:443", 0x00eb2574, 0xff0e7c11 },
        { "unix:/run/x.sock", 0x00015b7c, 0xff8b94d2 },
    };
    for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; i++) {
        uint32_t hashes[UPSTREAM_HASH_POINTS_PER_WEIGHT];
        points_of(pinned[i].address, hashes);
        cr_expect_eq(hashes[0], pinned[i].lowest, "%s: %08x", pinned[i].address, hashes[0]);
        cr_expect_eq(hashes[UPSTREAM_HASH_POINTS_PER_WEIGHT - 1], pinned[i].highest, "%s", pinned[i].address);
    }
    struct client_address client;
    for (int i = 0; i < 16; i++)
        client.bytes[i] = (uint8_t)i;
    cr_expect_eq(upstream_hash_client(&client), 0xf110b958);
}

/* A client's attempts meet every primary on the ring exactly once (the
 * down one and the backup never), then end: a connection whose servers
 * all refuse tries each once and goes on to the backups. */
Test(upstream_hash, attempts_meet_each_server_once)
{
    const struct server_spec specs[] = {
        { "192.0.2.1:443", 1, false, false }, { "192.0.2.2:443", 3, false, false },
        { "192.0.2.3:443", 1, false, true },  { "192.0.2.4:443", 2, false, false },
        { "192.0.2.5:443", 1, true, false },
    };
    struct upstream upstream = make_ring(specs, sizeof specs / sizeof specs[0]);
    for (uint32_t n = 0; n < 1000; n++) {
        struct client_address client = ipv4_client(n);
        uint32_t key = upstream_hash_client(&client);
        unsigned met[5] = { 0 };
        for (uint32_t attempt = 0; attempt < 3; attempt++) {
            int32_t server = upstream_hash_nth(&upstream, key, attempt);
            cr_assert(server >= 0 && server < 5, "client %u attempt %u: %d", n, attempt, server);
            met[server]++;
        }
        cr_assert_eq(upstream_hash_nth(&upstream, key, 3), -1, "client %u: a fourth server", n);
        for (int i = 0; i < 5; i++) {
            unsigned expected = upstream.servers[i].down || upstream.servers[i].backup ? 0 : 1;
            cr_assert_eq(met[i], expected, "client %u met server %d %u times", n, i, met[i]);
        }
    }
    upstream_release(&upstream);
}
