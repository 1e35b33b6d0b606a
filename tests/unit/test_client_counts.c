/*
 * test_client_counts.c - the per-address connection counts behind
 * max_connections_per_client: limits, one form for IPv4 and mapped IPv6,
 * entries gone when their last connection ends, a full table, and long
 * random churn in a small table checked against a plain array.
 * (Concurrent use: tests/tsan/test_client_counts.c.)
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/client_counts.h"
#include "socket_address.h"

static struct client_address address_of(const char *text)
{
    struct sockaddr_storage storage = socket_address_of(text);
    struct client_address address;
    cr_assert(client_address_from((struct sockaddr *)&storage, &address));
    return address;
}

Test(client_counts, limit_per_address)
{
    struct client_counts *counts = client_counts_new(100, 42);
    cr_assert_not_null(counts);
    struct client_address a = address_of("192.0.2.1"), b = address_of("2001:db8::1");
    for (int i = 0; i < 3; i++)
        cr_expect_eq(client_counts_take(counts, &a, 3), CLIENT_COUNT_TAKEN);
    cr_expect_eq(client_counts_take(counts, &a, 3), CLIENT_COUNT_AT_LIMIT, "the fourth is refused");
    cr_expect_eq(client_counts_of(counts, &a), 3, "a refusal is not counted");
    cr_expect_eq(client_counts_take(counts, &b, 3), CLIENT_COUNT_TAKEN, "other clients are not affected");
    cr_expect_eq(client_counts_take(counts, &a, 5), CLIENT_COUNT_TAKEN, "a higher limit elsewhere admits it");
    client_counts_release(counts, &a);
    client_counts_release(counts, &a);
    cr_expect_eq(client_counts_take(counts, &a, 3), CLIENT_COUNT_TAKEN, "room again after a close");
    cr_expect_eq(client_counts_of(counts, &a), 3);
    cr_expect_eq(client_counts_addresses(counts), 2);
    for (int i = 0; i < 3; i++)
        client_counts_release(counts, &a);
    client_counts_release(counts, &b);
    cr_expect_eq(client_counts_addresses(counts), 0, "entries go with their last connection");
    cr_expect_eq(client_counts_of(counts, &a), 0);
    client_counts_free(counts);
}

Test(client_counts, ipv4_and_mapped_ipv6_are_one_client)
{
    struct client_counts *counts = client_counts_new(10, 7);
    struct client_address v4 = address_of("198.51.100.9"), mapped = address_of("::ffff:198.51.100.9");
    cr_expect(memcmp(&v4, &mapped, sizeof v4) == 0);
    cr_expect_eq(client_counts_take(counts, &v4, 2), CLIENT_COUNT_TAKEN);
    cr_expect_eq(client_counts_take(counts, &mapped, 2), CLIENT_COUNT_TAKEN);
    cr_expect_eq(client_counts_take(counts, &v4, 2), CLIENT_COUNT_AT_LIMIT);
    struct sockaddr_storage unix_address = { .ss_family = AF_UNIX };
    struct client_address ignored;
    cr_expect_not(client_address_from((struct sockaddr *)&unix_address, &ignored));
    client_counts_free(counts);
}

Test(client_counts, full_table_says_so_and_keeps_counting_known_clients)
{
    struct client_counts *counts = client_counts_new(8, 1);
    char text[32];
    struct client_address addresses[8];
    for (int i = 0; i < 8; i++) {
        snprintf(text, sizeof text, "10.0.0.%d", i + 1);
        addresses[i] = address_of(text);
        cr_assert_eq(client_counts_take(counts, &addresses[i], 10), CLIENT_COUNT_TAKEN);
    }
    struct client_address extra = address_of("10.0.1.1");
    cr_expect_eq(client_counts_take(counts, &extra, 10), CLIENT_COUNT_FULL);
    cr_expect_eq(client_counts_take(counts, &addresses[3], 10), CLIENT_COUNT_TAKEN);
    client_counts_release(counts, &addresses[0]);
    cr_expect_eq(client_counts_take(counts, &extra, 10), CLIENT_COUNT_TAKEN, "room after one left");
    client_counts_free(counts);
}

/* Random takes and releases over few addresses in a small table: runs of
 * collisions, wrap-around and removals from the middle of runs, checked
 * after every step against counts kept in an array. */
Test(client_counts, churn_matches_a_plain_array)
{
    enum { ADDRESSES = 64, STEPS = 200000, LIMIT = 4 }; /* the table at half full: long runs */
    struct client_counts *counts = client_counts_new(ADDRESSES, 0x5eed);
    struct client_address addresses[ADDRESSES];
    uint32_t expected[ADDRESSES] = { 0 };
    char text[48];
    for (int i = 0; i < ADDRESSES; i++) {
        snprintf(text, sizeof text, i % 2 ? "2001:db8::%x" : "203.0.113.%d", i + 1);
        addresses[i] = address_of(text);
    }
    srand(12345);
    for (int step = 0; step < STEPS; step++) {
        int i = rand() % ADDRESSES;
        if (rand() % 2) {
            enum client_count_result result = client_counts_take(counts, &addresses[i], LIMIT);
            cr_assert_eq(result, expected[i] < LIMIT ? CLIENT_COUNT_TAKEN : CLIENT_COUNT_AT_LIMIT, "step %d", step);
            if (result == CLIENT_COUNT_TAKEN)
                expected[i]++;
        } else if (expected[i] > 0) {
            client_counts_release(counts, &addresses[i]);
            expected[i]--;
        }
        int probe = rand() % ADDRESSES;
        cr_assert_eq(client_counts_of(counts, &addresses[probe]), expected[probe], "step %d", step);
    }
    uint32_t present = 0;
    for (int i = 0; i < ADDRESSES; i++) {
        cr_assert_eq(client_counts_of(counts, &addresses[i]), expected[i]);
        present += expected[i] > 0;
    }
    cr_expect_eq(client_counts_addresses(counts), present);
    client_counts_free(counts);
}
