/*
 * test_upstream_address.c - server order within an upstream (round robin
 * over the primaries, then the backups from a chosen one) and the address
 * forms of the config file.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "../../core/address.h"
#include "../../core/upstream.h"

static struct address parse_ok(const char *text)
{
    struct address address;
    char error[256] = "";
    cr_assert(address_parse(text, &address, error, sizeof error), "%s: %s", text, error);
    return address;
}

static void expect_round_trip(const char *text, int family)
{
    struct address address = parse_ok(text);
    char printed[ADDRESS_TEXT_MAX];
    address_format(&address, printed, sizeof printed);
    cr_assert_str_eq(printed, text);
    cr_assert_eq(address_family(&address), family);
}

Test(address, forms_round_trip)
{
    expect_round_trip("127.0.0.1:8443", AF_INET);
    expect_round_trip("0.0.0.0:443", AF_INET);
    expect_round_trip("[::1]:443", AF_INET6);
    expect_round_trip("[::]:443", AF_INET6);
    expect_round_trip("[2001:db8::5]:65535", AF_INET6);
    expect_round_trip("unix:/run/matrix.sock", AF_UNIX);
}

Test(address, bad_forms_are_explained)
{
    const char *bad[] = { "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                          "127.0.0.1:44x", "localhost:443", "::1:443", "[::1]443", "[::1:443",
                          "300.1.1.1:80", "unix:", "127.0.0.1:-1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct address address;
        char error[256] = "";
        cr_assert_not(address_parse(bad[i], &address, error, sizeof error), "'%s' accepted", bad[i]);
        cr_assert_neq(error[0], '\0', "'%s' has no message", bad[i]);
    }
    char long_path[200] = "unix:/";
    memset(long_path + 6, 'p', 150);
    struct address address;
    char error[256];
    cr_assert_not(address_parse(long_path, &address, error, sizeof error));
}

static struct upstream make_upstream(int primaries, int backups, int backup_first)
{
    struct upstream upstream = { 0 };
    char text[32];
    /* Interleave the config order to check primaries end up in front. */
    for (int i = 0; i < primaries + backups; i++) {
        struct upstream_server server = UPSTREAM_SERVER_DEFAULTS;
        server.backup = backup_first ? i < backups : i >= primaries;
        snprintf(text, sizeof text, "127.0.0.1:%d", 1000 + i);
        server.address = parse_ok(text);
        cr_assert(upstream_add_server(&upstream, &server));
    }
    cr_assert(upstream_schedule_build(&upstream));
    return upstream;
}

static int port_of(const struct upstream_server *server)
{
    return ntohs(((const struct sockaddr_in *)&server->address.storage)->sin_port);
}

Test(upstream, primaries_round_robin_from_start_then_backups_in_order)
{
    struct upstream upstream = make_upstream(3, 2, 0); /* ports 1000-1002 primary, 1003-1004 backup */
    cr_assert_eq(upstream.primary_count, 3);
    int expected[] = { 1001, 1002, 1000, 1003, 1004 };
    for (uint32_t attempt = 0; attempt < 5; attempt++) {
        const struct upstream_server *server = upstream_server_for_attempt(&upstream, 4, attempt);
        cr_assert_not_null(server);
        cr_assert_eq(port_of(server), expected[attempt], "attempt %u", attempt);
        cr_assert_eq(server->backup, attempt >= 3);
    }
    cr_assert_null(upstream_server_for_attempt(&upstream, 4, 5));
    upstream_release(&upstream);
}

/* A connection that reached the backups tries its chosen first backup,
 * then the other backups in config order, wrapping; an index that is no
 * backup's (one not chosen yet) means config order. */
Test(upstream, backups_from_the_chosen_first_backup_wrapping)
{
    struct upstream upstream = make_upstream(2, 3, 0); /* 1000-1001 primary, 1002-1004 backup */
    upstream.servers[3].down = true;                   /* 1003 */
    int from_1004[] = { 1001, 1000, 1004, 1002 };
    for (uint32_t attempt = 0; attempt < 4; attempt++)
        cr_assert_eq(port_of(upstream_server_from(&upstream, 1, 4, attempt)), from_1004[attempt],
                     "attempt %u", attempt);
    cr_assert_null(upstream_server_from(&upstream, 1, 4, 4));
    int config_order[] = { 1000, 1001, 1002, 1004 };
    const uint32_t unchosen[] = { 0, 1, 5, UINT16_MAX };
    for (size_t i = 0; i < sizeof unchosen / sizeof *unchosen; i++)
        for (uint32_t attempt = 0; attempt < 4; attempt++)
            cr_assert_eq(port_of(upstream_server_from(&upstream, 0, unchosen[i], attempt)),
                         config_order[attempt], "first_backup %u, attempt %u", unchosen[i], attempt);
    upstream_release(&upstream);
}

Test(upstream, successive_starts_spread_over_primaries)
{
    struct upstream upstream = make_upstream(2, 0, 0);
    cr_assert_eq(port_of(upstream_server_for_attempt(&upstream, 0, 0)), 1000);
    cr_assert_eq(port_of(upstream_server_for_attempt(&upstream, 1, 0)), 1001);
    cr_assert_eq(port_of(upstream_server_for_attempt(&upstream, 2, 0)), 1000);
    upstream_release(&upstream);
}

Test(upstream, backups_declared_first_still_come_last)
{
    struct upstream upstream = make_upstream(1, 2, 1); /* 1000,1001 backup; 1002 primary */
    cr_assert_eq(port_of(upstream_server_for_attempt(&upstream, 7, 0)), 1002);
    cr_assert_eq(port_of(upstream_server_for_attempt(&upstream, 7, 1)), 1000);
    cr_assert_eq(port_of(upstream_server_for_attempt(&upstream, 7, 2)), 1001);
    cr_assert_null(upstream_server_for_attempt(&upstream, 7, 3));
    upstream_release(&upstream);
}

Test(upstream, only_backups)
{
    struct upstream upstream = make_upstream(0, 2, 0);
    cr_assert_eq(port_of(upstream_server_for_attempt(&upstream, 3, 0)), 1000);
    cr_assert_eq(port_of(upstream_server_for_attempt(&upstream, 3, 1)), 1001);
    cr_assert_null(upstream_server_for_attempt(&upstream, 3, 2));
    upstream_release(&upstream);
}

/* Primaries with the given weights (0 = down), ports 1000+i. */
static struct upstream weighted(const int *weights, int count)
{
    struct upstream upstream = { 0 };
    char text[32];
    for (int i = 0; i < count; i++) {
        struct upstream_server server = UPSTREAM_SERVER_DEFAULTS;
        snprintf(text, sizeof text, "127.0.0.1:%d", 1000 + i);
        server.address = parse_ok(text);
        server.weight = (uint16_t)(weights[i] ? weights[i] : 1);
        server.down = weights[i] == 0;
        cr_assert(upstream_add_server(&upstream, &server));
    }
    cr_assert(upstream_schedule_build(&upstream));
    return upstream;
}

Test(upstream, weights_share_first_picks_smoothly)
{
    const int weights[] = { 5, 1, 1 };
    struct upstream upstream = weighted(weights, 3);
    cr_assert_eq(upstream.schedule_length, 7);
    int picks[3] = { 0 };
    int longest_run = 0, run = 0, previous = -1;
    for (uint32_t start = 0; start < 700; start++) {
        int port = port_of(upstream_server_for_attempt(&upstream, start, 0));
        picks[port - 1000]++;
        run = port == previous ? run + 1 : 1;
        previous = port;
        if (run > longest_run)
            longest_run = run;
    }
    cr_assert_eq(picks[0], 500);
    cr_assert_eq(picks[1], 100);
    cr_assert_eq(picks[2], 100);
    /* nginx's cycle for 5,1,1 is a a b a c a a: runs of 4 across cycles; a
     * naive schedule (a a a a a b c) would give 5. */
    cr_assert_leq(longest_run, 4, "smooth: the heavy server is interleaved, got a run of %d", longest_run);
    upstream_release(&upstream);
}

/* Weights with a common factor (100/200/300 style) share out as their
 * reduced ones do, in one short cycle: the schedule is built at every
 * load and reload, a pass over the primaries per entry, so a cycle of the
 * summed weights cost seconds for 256 servers of weight 1000. */
Test(upstream, weights_with_a_common_factor_keep_one_short_cycle)
{
    const int scaled_weights[] = { 500, 100, 100 }, weights[] = { 5, 1, 1 };
    struct upstream scaled = weighted(scaled_weights, 3), reduced = weighted(weights, 3);
    cr_assert_eq(scaled.schedule_length, 7, "got a cycle of %u", scaled.schedule_length);
    for (uint32_t start = 0; start < 700; start++)
        cr_assert_eq(port_of(upstream_server_for_attempt(&scaled, start, 0)),
                     port_of(upstream_server_for_attempt(&reduced, start, 0)), "pick %u", start);
    upstream_release(&scaled);
    upstream_release(&reduced);
}

Test(upstream, down_servers_are_never_tried)
{
    const int weights[] = { 1, 0, 1 };
    struct upstream upstream = weighted(weights, 3);
    for (uint32_t start = 0; start < 10; start++) {
        for (uint32_t attempt = 0; attempt < 2; attempt++)
            cr_assert_neq(port_of(upstream_server_for_attempt(&upstream, start, attempt)), 1001);
        cr_assert_null(upstream_server_for_attempt(&upstream, start, 2), "only two servers are up");
    }
    upstream_release(&upstream);
}

/* congestion_control (core/congestion.h): what a socket to each server gets. */
static const char *algorithm_for(const struct upstream *upstream, const char *address_text)
{
    struct upstream_server server = UPSTREAM_SERVER_DEFAULTS;
    server.address = parse_ok(address_text);
    return congestion_algorithm(&upstream->congestion, &server.address);
}

Test(upstream, congestion_control_reno_only_towards_loopback_by_default)
{
    struct upstream automatic = { 0 };
    const char *const loopback[] = { "127.0.0.1:8443", "127.255.0.9:1", "[::1]:8443", "[::ffff:127.0.0.2]:8443" };
    for (size_t i = 0; i < sizeof loopback / sizeof *loopback; i++) {
        const char *algorithm = algorithm_for(&automatic, loopback[i]);
        cr_assert_not_null(algorithm, "%s", loopback[i]);
        cr_expect_str_eq(algorithm, "reno", "%s", loopback[i]);
    }
    const char *const elsewhere[] = { "10.0.0.1:443", "128.0.0.1:443", "[2001:db8::1]:443",
                                      "[::ffff:10.0.0.1]:443", "unix:/run/app.sock" };
    for (size_t i = 0; i < sizeof elsewhere / sizeof *elsewhere; i++)
        cr_expect_null(algorithm_for(&automatic, elsewhere[i]), "%s keeps the system's", elsewhere[i]);
}

Test(upstream, congestion_control_system_and_named)
{
    struct upstream system = { .congestion = { .choice = CONGESTION_SYSTEM } };
    cr_expect_null(algorithm_for(&system, "127.0.0.1:8443"));
    struct upstream named = { .congestion = { .choice = CONGESTION_NAMED, .name = "cubic" } };
    cr_expect_str_eq(algorithm_for(&named, "127.0.0.1:8443"), "cubic");
    cr_expect_str_eq(algorithm_for(&named, "10.0.0.1:443"), "cubic");
    cr_expect_null(algorithm_for(&named, "unix:/run/app.sock"), "no TCP, no algorithm");
}

/* A listener's leg is the address it is bound to: only a loopback one
 * cannot take a client from off the host, so only there does auto pick
 * reno; a wildcard address serves the internet. */
Test(upstream, congestion_control_of_a_listener_follows_its_address)
{
    struct congestion automatic = { .choice = CONGESTION_AUTO };
    const char *const loopback[] = { "127.0.0.1:443", "127.0.0.7:443", "[::1]:443" };
    for (size_t i = 0; i < sizeof loopback / sizeof *loopback; i++) {
        struct address address = parse_ok(loopback[i]);
        const char *algorithm = congestion_algorithm(&automatic, &address);
        cr_assert_not_null(algorithm, "%s", loopback[i]);
        cr_expect_str_eq(algorithm, "reno", "%s", loopback[i]);
    }
    const char *const open_to_others[] = { "0.0.0.0:443", "[::]:443", "192.0.2.1:443" };
    for (size_t i = 0; i < sizeof open_to_others / sizeof *open_to_others; i++) {
        struct address address = parse_ok(open_to_others[i]);
        cr_expect_null(congestion_algorithm(&automatic, &address), "%s keeps the system's", open_to_others[i]);
    }
}
