/*
 * upstream_hash.c - the consistent-hash ring of an upstream's primaries
 * and the walk that picks a client's server on it (see upstream_hash.h).
 *
 * Owns upstream->hash_points (upstream_release frees them). Pure: no
 * clock, no health, no I/O; a worker's view of which servers rest comes
 * in through the eligible callback.
 *
 * Must never let a point's hash depend on a server's index, on config
 * order or on a per-process seed: the ring must come out the same in every
 * worker, after every reload and restart, or clients would change server
 * for no reason.
 */
#include "upstream_hash.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "hash_mix.h"

_Static_assert(UPSTREAM_SERVERS_MAX <= UINT16_MAX + 1, "point.server is a uint16_t");
_Static_assert(UPSTREAM_SERVERS_MAX % 64 == 0, "the refused set is whole 64-bit words");

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* Our own tags, not AF_* values, so the hash names the family the same way
 * whatever the platform numbers it. */
enum { TAG_IPV4 = 4, TAG_IPV6 = 6, TAG_UNIX = 'u' };

static uint64_t fnv1a(uint64_t hash, const void *bytes, size_t length)
{
    const uint8_t *byte = bytes;
    for (size_t i = 0; i < length; i++) {
        hash ^= byte[i];
        hash *= FNV_PRIME;
    }
    return hash;
}

static uint64_t fnv1a_byte(uint64_t hash, uint8_t byte)
{
    return fnv1a(hash, &byte, 1);
}

/* The unix path's bytes, without the terminating NUL: whatever follows it
 * in sun_path is not part of the address. */
static size_t unix_path_length(const struct address *address)
{
    size_t offset = offsetof(struct sockaddr_un, sun_path);
    size_t length = address->length > offset ? address->length - offset : 0;
    if (length > sizeof ((struct sockaddr_un *)0)->sun_path)
        length = sizeof ((struct sockaddr_un *)0)->sun_path;
    const char *path = ((const struct sockaddr_un *)&address->storage)->sun_path;
    return strnlen(path, length);
}

/* FNV-1a over only the bytes that say which server this is (family, port
 * and address bytes in network order, or the unix path), never padding,
 * sin6_flowinfo or scope ids that could differ between two parses of the
 * same text. */
static uint64_t server_identity(const struct address *address)
{
    uint64_t hash = FNV_OFFSET;
    switch (address_family(address)) {
    case AF_INET: {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&address->storage;
        hash = fnv1a_byte(hash, TAG_IPV4);
        hash = fnv1a(hash, &in4->sin_port, sizeof in4->sin_port);
        return fnv1a(hash, &in4->sin_addr, sizeof in4->sin_addr);
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&address->storage;
        hash = fnv1a_byte(hash, TAG_IPV6);
        hash = fnv1a(hash, &in6->sin6_port, sizeof in6->sin6_port);
        return fnv1a(hash, &in6->sin6_addr, sizeof in6->sin6_addr);
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&address->storage;
        hash = fnv1a_byte(hash, TAG_UNIX);
        return fnv1a(hash, un->sun_path, unix_path_length(address));
    }
    default:
        return hash;
    }
}

/* Point `number` of the server whose identity is given. The identity is
 * mixed first, so two servers differ in about half the bits their points
 * start from and share no points (had the number gone into FNV after the
 * identity, identities differing only in their low bits would have shared
 * most of them); the number is spread by the golden ratio's multiplier,
 * plain arithmetic, so every byte order gets the same hashes. */
static uint64_t point_hash(uint64_t identity, uint32_t number)
{
    return hash_mix(hash_mix(identity) ^ (number * 0x9e3779b97f4a7c15ULL));
}

uint32_t upstream_hash_client(const struct client_address *client)
{
    return (uint32_t)(hash_mix(fnv1a(FNV_OFFSET, client->bytes, sizeof client->bytes)) >> 32);
}

static uint32_t weight_of(const struct upstream_server *server)
{
    return server->weight ? server->weight : 1;
}

static bool is_on_ring(const struct upstream *upstream, uint32_t index)
{
    return index < upstream->primary_count && !upstream->servers[index].down;
}

static uint64_t ring_weight(const struct upstream *upstream)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < upstream->primary_count; i++)
        if (is_on_ring(upstream, i))
            total += weight_of(&upstream->servers[i]);
    return total;
}

/* 160 per unit of weight while that fits the budget (then exactly nginx's
 * proportions); past it, the budget shared out by weight, at least one
 * each, so the ring stays within UPSTREAM_HASH_POINTS_MAX. */
static uint32_t points_for(uint32_t weight, uint64_t total_weight)
{
    uint64_t budget = total_weight * UPSTREAM_HASH_POINTS_PER_WEIGHT;
    if (budget > UPSTREAM_HASH_POINTS_BUDGET)
        budget = UPSTREAM_HASH_POINTS_BUDGET;
    uint64_t points = weight * budget / total_weight;
    return points ? (uint32_t)points : 1;
}

/* A point while the ring is sorted. Two points tying on the 32 bits kept
 * are ordered by the rest of their 64-bit hash, which comes from the
 * addresses, not by index, so config order cannot decide between them;
 * only two servers with the same address tie on all 64 bits, and then
 * either one is the same server to the client. */
struct sort_point {
    uint64_t hash;
    uint16_t server;
};

static int compare_sort_points(const void *left, const void *right)
{
    const struct sort_point *a = left, *b = right;
    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    return (a->server > b->server) - (a->server < b->server);
}

/* Every point of every server on the ring, unsorted, into points (room
 * for ring_point_count of them). */
static void fill_sort_points(const struct upstream *upstream, uint64_t total_weight, struct sort_point *points)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < upstream->primary_count; i++) {
        if (!is_on_ring(upstream, i))
            continue;
        uint64_t identity = server_identity(&upstream->servers[i].address);
        uint32_t own = points_for(weight_of(&upstream->servers[i]), total_weight);
        for (uint32_t number = 0; number < own; number++)
            points[count++] = (struct sort_point){ point_hash(identity, number), (uint16_t)i };
    }
}

static uint32_t ring_point_count(const struct upstream *upstream, uint64_t total_weight)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < upstream->primary_count; i++)
        if (is_on_ring(upstream, i))
            count += points_for(weight_of(&upstream->servers[i]), total_weight);
    return count;
}

bool upstream_hash_build(struct upstream *upstream)
{
    free(upstream->hash_points);
    upstream->hash_points = NULL;
    upstream->hash_point_count = 0;
    uint64_t total_weight = ring_weight(upstream);
    if (total_weight == 0)
        return true;
    uint32_t count = ring_point_count(upstream, total_weight);
    struct sort_point *sorted = malloc(count * sizeof *sorted);
    struct upstream_hash_point *points = malloc(count * sizeof *points);
    if (!sorted || !points) {
        free(sorted);
        free(points);
        return false;
    }
    fill_sort_points(upstream, total_weight, sorted);
    qsort(sorted, count, sizeof *sorted, compare_sort_points);
    for (uint32_t i = 0; i < count; i++)
        points[i] = (struct upstream_hash_point){ (uint32_t)(sorted[i].hash >> 32), sorted[i].server };
    free(sorted);
    upstream->hash_points = points;
    upstream->hash_point_count = count;
    return true;
}

/* The first point whose hash is >= key, or the first point of all when
 * key is past the last (the ring wraps). count > 0. */
static uint32_t first_at_or_after(const struct upstream_hash_point *points, uint32_t count, uint32_t key)
{
    uint32_t low = 0, high = count;
    while (low < high) {
        uint32_t middle = low + (high - low) / 2;
        if (points[middle].hash < key)
            low = middle + 1;
        else
            high = middle;
    }
    return low == count ? 0 : low;
}

/* The servers met so far along the ring. */
struct server_set {
    uint64_t words[UPSTREAM_SERVERS_MAX / 64];
};

/* Adds server; false if it was there already. */
static bool server_set_add(struct server_set *set, uint16_t server)
{
    uint64_t bit = 1ULL << (server % 64);
    if (set->words[server / 64] & bit)
        return false;
    set->words[server / 64] |= bit;
    return true;
}

static uint32_t ring_server_count(const struct upstream *upstream)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < upstream->primary_count; i++)
        count += is_on_ring(upstream, i);
    return count;
}

int32_t upstream_hash_nth(const struct upstream *upstream, uint32_t key, uint32_t n)
{
    const struct upstream_hash_point *points = upstream->hash_points;
    uint32_t count = upstream->hash_point_count;
    if (count == 0)
        return -1;
    uint32_t at = first_at_or_after(points, count, key);
    /* The usual case, a connection's first attempt: no walk. */
    if (n == 0)
        return points[at].server;
    if (n >= ring_server_count(upstream))
        return -1;
    struct server_set met = { { 0 } };
    uint32_t distinct = 0;
    for (uint32_t walked = 0; walked < count; walked++, at = at + 1 < count ? at + 1 : 0)
        if (server_set_add(&met, points[at].server) && distinct++ == n)
            return points[at].server;
    return -1;
}
