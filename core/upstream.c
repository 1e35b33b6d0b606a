/*
 * upstream.c - server order within an upstream: a weighted round-robin
 * (or least-connections) first pick among the primaries, the other
 * primaries next, then the same among the backups (a first pick given by
 * the caller, the others next).
 * Pure: no clock, no health (a worker skips servers it saw failing).
 */
#include "upstream.h"

#include <stdlib.h>
#include <string.h>

/* The n-th server (in the attempt order defined in upstream.h), counting
 * down servers too; NULL past the end. */
static const struct upstream_server *nth_in_order(const struct upstream *upstream, uint32_t first_primary,
                                                  uint32_t first_backup, uint32_t n)
{
    uint32_t primaries = upstream->primary_count;
    if (n < primaries)
        return &upstream->servers[(first_primary + n) % primaries];
    n -= primaries;
    uint32_t backups = upstream->server_count - primaries;
    if (n >= backups)
        return NULL;
    /* Any index outside the backups (one below them wraps high, being
     * unsigned) means config order: see upstream.h. */
    uint32_t offset = first_backup - primaries < backups ? first_backup - primaries : 0;
    return &upstream->servers[primaries + (offset + n) % backups];
}

const struct upstream_server *upstream_server_from(const struct upstream *upstream, uint32_t first_primary,
                                                   uint32_t first_backup, uint32_t attempt)
{
    uint32_t usable = 0;
    for (uint32_t n = 0;; n++) {
        const struct upstream_server *server = nth_in_order(upstream, first_primary, first_backup, n);
        if (!server)
            return NULL;
        if (server->down)
            continue;
        if (usable++ == attempt)
            return server;
    }
}

uint32_t upstream_scheduled_primary(const struct upstream *upstream, uint32_t start)
{
    return upstream->schedule_length ? upstream->schedule[start % upstream->schedule_length] : 0;
}

const struct upstream_server *upstream_server_for_attempt(const struct upstream *upstream,
                                                          uint32_t start, uint32_t attempt)
{
    return upstream_server_from(upstream, upstream_scheduled_primary(upstream, start),
                                upstream->primary_count, attempt);
}

bool upstream_add_server(struct upstream *upstream, const struct upstream_server *server)
{
    if (upstream->server_count >= UPSTREAM_SERVERS_MAX)
        return false;
    struct upstream_server *servers =
        realloc(upstream->servers, (upstream->server_count + 1) * sizeof *servers);
    if (!servers)
        return false;
    upstream->servers = servers;
    uint32_t at = upstream->server_count;
    if (!server->backup) {
        /* Keep primaries in front: shift the backups one place back. */
        at = upstream->primary_count;
        memmove(&servers[at + 1], &servers[at], (upstream->server_count - at) * sizeof *servers);
        upstream->primary_count++;
    }
    servers[at] = *server;
    upstream->server_count++;
    return true;
}

static uint64_t weight_of(const struct upstream_server *server)
{
    return server->weight ? server->weight : 1;
}

int32_t upstream_round_robin_step(const struct upstream *upstream, uint32_t begin, uint32_t end,
                                  int64_t *current, upstream_eligible_fn eligible, void *context)
{
    int32_t best = -1;
    int64_t total = 0;
    for (uint32_t i = begin; i < end; i++) {
        const struct upstream_server *server = &upstream->servers[i];
        if (server->down || (eligible && !eligible(server, context)))
            continue;
        int64_t weight = (int64_t)weight_of(server);
        current[i] += weight;
        total += weight;
        if (best < 0 || current[i] > current[best])
            best = (int32_t)i;
    }
    if (best >= 0)
        current[best] -= total;
    return best;
}

/* The servers least_conn would pick: eligible, and no more connections
 * per unit of weight than the least loaded one. */
struct least_loaded {
    const struct upstream *upstream;
    const uint32_t *connections;
    uint64_t fewest;       /* the least loaded server's connections... */
    uint64_t fewest_weight; /* ...and weight: a ratio kept as a fraction */
    upstream_eligible_fn eligible;
    void *context;
};

static bool is_least_loaded(const struct upstream_server *server, void *context)
{
    const struct least_loaded *least = context;
    uint32_t i = (uint32_t)(server - least->upstream->servers);
    if (least->eligible && !least->eligible(server, least->context))
        return false;
    /* connections / weight == fewest / fewest_weight, without division. */
    return least->connections[i] * least->fewest_weight == least->fewest * weight_of(server);
}

int32_t upstream_least_connections_step(const struct upstream *upstream, uint32_t begin, uint32_t end,
                                        const uint32_t *connections, int64_t *current,
                                        upstream_eligible_fn eligible, void *context)
{
    struct least_loaded least = { upstream, connections, 0, 0, eligible, context };
    bool found = false;
    for (uint32_t i = begin; i < end; i++) {
        const struct upstream_server *server = &upstream->servers[i];
        if (server->down || (eligible && !eligible(server, context)))
            continue;
        uint64_t weight = weight_of(server);
        if (!found || connections[i] * least.fewest_weight < least.fewest * weight) {
            least.fewest = connections[i];
            least.fewest_weight = weight;
            found = true;
        }
    }
    if (!found)
        return -1;
    return upstream_round_robin_step(upstream, begin, end, current, is_least_loaded, &least);
}

static uint32_t greatest_common_divisor(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t rest = a % b;
        a = b;
        b = rest;
    }
    return a;
}

bool upstream_schedule_build(struct upstream *upstream)
{
    uint32_t total = 0, divisor = 0;
    for (uint32_t i = 0; i < upstream->primary_count; i++) {
        if (upstream->servers[i].down)
            continue;
        total += (uint32_t)weight_of(&upstream->servers[i]);
        divisor = greatest_common_divisor(divisor, (uint32_t)weight_of(&upstream->servers[i]));
    }
    /* Each step costs a pass over the primaries, so a cycle of the summed
     * weights made weights such as 100/200/300 (256 servers: 65 million
     * steps) cost seconds per load and reload. Weights scaled by a common
     * factor pick the same servers in the same order and repeat after
     * total / divisor picks: one such cycle is the whole schedule. */
    if (divisor > 1)
        total /= divisor;
    free(upstream->schedule);
    upstream->schedule = NULL;
    upstream->schedule_length = 0;
    if (total == 0)
        return true;
    uint16_t *schedule = malloc(total * sizeof *schedule);
    int64_t *current = calloc(upstream->primary_count, sizeof *current);
    if (!schedule || !current) {
        free(schedule);
        free(current);
        return false;
    }
    /* The round robin run once for a whole cycle. */
    for (uint32_t slot = 0; slot < total; slot++)
        schedule[slot] = (uint16_t)upstream_round_robin_step(upstream, 0, upstream->primary_count,
                                                             current, NULL, NULL);
    free(current);
    upstream->schedule = schedule;
    upstream->schedule_length = total;
    return true;
}

void upstream_release(struct upstream *upstream)
{
    free(upstream->name);
    free(upstream->servers);
    free(upstream->schedule);
    free(upstream->hash_points);
    upstream->name = NULL;
    upstream->servers = NULL;
    upstream->schedule = NULL;
    upstream->hash_points = NULL;
    upstream->server_count = upstream->primary_count = upstream->schedule_length = 0;
    upstream->hash_point_count = 0;
}
