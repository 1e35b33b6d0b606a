/*
 * client_counts.h - how many connections each client address has open,
 * shared by every worker: nginx's `limit_conn` on a zone keyed by
 * $binary_remote_addr. Exact (one entry per address, no sketch), bounded
 * (the capacity is fixed when the table is made) and never allocating
 * after that. No I/O.
 */
#ifndef SNISPLICE_CORE_CLIENT_COUNTS_H
#define SNISPLICE_CORE_CLIENT_COUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 address in one form: IPv4 as ::ffff:a.b.c.d, so a client
 * counts the same whichever way its address arrived. */
struct client_address {
    uint8_t bytes[16];
};

/* False for anything but AF_INET and AF_INET6. */
bool client_address_from(const struct sockaddr *address, struct client_address *out);

struct client_counts;

/* Room for `addresses` distinct addresses at once (connections, not
 * counted: one address with many connections takes one entry). `seed`
 * keys the hash, so clients cannot choose addresses that collide. NULL on
 * ENOMEM. */
struct client_counts *client_counts_new(uint32_t addresses, uint64_t seed);
void client_counts_free(struct client_counts *counts);

enum client_count_result {
    CLIENT_COUNT_TAKEN,    /* counted: release it when the connection ends */
    CLIENT_COUNT_AT_LIMIT, /* the address already has `limit` connections: not counted */
    CLIENT_COUNT_FULL,     /* more distinct addresses than the table was made for: not counted */
};

/* One more connection for `client` unless it already has `limit` (>= 1).
 * Thread-safe. */
enum client_count_result client_counts_take(struct client_counts *counts, const struct client_address *client,
                                            uint32_t limit);

/* One connection of `client` ended (it was TAKEN). Thread-safe. */
void client_counts_release(struct client_counts *counts, const struct client_address *client);

/* The connections `client` has now (tests, metrics). Thread-safe. */
uint32_t client_counts_of(struct client_counts *counts, const struct client_address *client);

/* Distinct addresses with a connection now. Thread-safe. */
uint32_t client_counts_addresses(struct client_counts *counts);

#endif
