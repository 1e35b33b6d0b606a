/*
 * upstream_health.c - per-worker failure counting for upstream servers.
 */
#include "upstream_health.h"

#include <stdlib.h>
#include <string.h>

static struct server_health *slot_of(const struct upstream_health *health,
                                     const struct upstream *upstream,
                                     const struct upstream_server *server)
{
    if (!health)
        return NULL;
    uint32_t index = upstream->health_index + (uint32_t)(server - upstream->servers);
    return index < health->count ? &health->servers[index] : NULL;
}

bool upstream_health_reset(struct upstream_health *health, uint32_t slots)
{
    if (slots > health->count) {
        /* Forgotten first: a table that failed to grow must not lend the
         * old snapshot's state to the new one's servers. */
        health->count = 0;
        struct server_health *servers = realloc(health->servers, slots * sizeof *servers);
        if (servers)
            health->servers = servers;
        int64_t *weights = servers ? realloc(health->current_weights, slots * sizeof *weights) : NULL;
        if (weights)
            health->current_weights = weights;
        uint32_t *connections = weights ? realloc(health->connections, slots * sizeof *connections) : NULL;
        if (!connections)
            return false;
        health->connections = connections;
    }
    health->count = slots;
    /* Never 0, which marks a hold as empty. */
    if (++health->generation == 0)
        health->generation = 1;
    if (slots) {
        memset(health->servers, 0, slots * sizeof *health->servers);
        memset(health->current_weights, 0, slots * sizeof *health->current_weights);
        memset(health->connections, 0, slots * sizeof *health->connections);
    }
    return true;
}

void upstream_health_free(struct upstream_health *health)
{
    free(health->servers);
    free(health->current_weights);
    free(health->connections);
    health->servers = NULL;
    health->current_weights = NULL;
    health->connections = NULL;
    health->count = 0;
}

bool upstream_health_available(const struct upstream_health *health, const struct upstream *upstream,
                               const struct upstream_server *server, uint64_t now_ms)
{
    const struct server_health *slot = slot_of(health, upstream, server);
    if (!slot)
        return true;
    if (server->max_conns && health->connections[slot - health->servers] >= server->max_conns)
        return false;
    return now_ms >= slot->unavailable_until_ms;
}

struct availability {
    const struct upstream_health *health;
    const struct upstream *upstream;
    uint64_t now_ms;
};

static bool available_now(const struct upstream_server *server, void *context)
{
    const struct availability *availability = context;
    return upstream_health_available(availability->health, availability->upstream, server,
                                     availability->now_ms);
}

/* One step of the upstream's balancing over the available servers with
 * index in [begin, end): the primaries or the backups, each with its own
 * running weights (their slots of current_weights). */
static bool first_available(struct upstream_health *health, const struct upstream *upstream,
                            uint32_t begin, uint32_t end, uint64_t now_ms, uint32_t *first)
{
    if (!health || upstream->health_index + upstream->server_count > health->count)
        return false;
    struct availability availability = { health, upstream, now_ms };
    int64_t *current = &health->current_weights[upstream->health_index];
    int32_t best = upstream->balance == UPSTREAM_BALANCE_LEAST_CONNECTIONS
                       ? upstream_least_connections_step(upstream, begin, end,
                                                         &health->connections[upstream->health_index],
                                                         current, available_now, &availability)
                       : upstream_round_robin_step(upstream, begin, end, current, available_now,
                                                   &availability);
    if (best < 0)
        return false;
    *first = (uint32_t)best;
    return true;
}

bool upstream_health_first_primary(struct upstream_health *health, const struct upstream *upstream,
                                   uint64_t now_ms, uint32_t *first)
{
    return first_available(health, upstream, 0, upstream->primary_count, now_ms, first);
}

bool upstream_health_first_backup(struct upstream_health *health, const struct upstream *upstream,
                                  uint64_t now_ms, uint32_t *first)
{
    return first_available(health, upstream, upstream->primary_count, upstream->server_count, now_ms, first);
}

void upstream_health_picked(struct upstream_health *health, const struct upstream *upstream,
                            const struct upstream_server *server, uint64_t now_ms)
{
    struct server_health *slot = slot_of(health, upstream, server);
    /* One probe per fail_timeout: the others wait for its outcome. */
    if (slot && slot->resting)
        slot->unavailable_until_ms = now_ms + server->fail_timeout_ms;
}

void upstream_health_failed(struct upstream_health *health, const struct upstream *upstream,
                            const struct upstream_server *server, uint64_t now_ms)
{
    struct server_health *slot = slot_of(health, upstream, server);
    if (!slot || server->max_fails == 0 || upstream->server_count == 1)
        return;
    if (slot->resting) {
        slot->unavailable_until_ms = now_ms + server->fail_timeout_ms;
        return;
    }
    if (now_ms - slot->window_start_ms >= server->fail_timeout_ms) {
        slot->window_start_ms = now_ms;
        slot->fails = 0;
    }
    if (++slot->fails >= server->max_fails) {
        slot->resting = true;
        slot->unavailable_until_ms = now_ms + server->fail_timeout_ms;
        slot->fails = 0;
    }
}

void upstream_health_succeeded(struct upstream_health *health, const struct upstream *upstream,
                               const struct upstream_server *server)
{
    struct server_health *slot = slot_of(health, upstream, server);
    if (slot)
        memset(slot, 0, sizeof *slot);
}

void upstream_health_hold(struct upstream_health *health, const struct upstream *upstream,
                          const struct upstream_server *server, struct upstream_hold *hold)
{
    if (upstream->balance != UPSTREAM_BALANCE_LEAST_CONNECTIONS && server->max_conns == 0)
        return;
    const struct server_health *slot = slot_of(health, upstream, server);
    if (!slot)
        return;
    hold->slot = (uint32_t)(slot - health->servers);
    hold->generation = health->generation;
    health->connections[hold->slot]++;
}

void upstream_health_release(struct upstream_health *health, struct upstream_hold *hold)
{
    if (hold->generation != 0 && hold->generation == health->generation && hold->slot < health->count &&
        health->connections[hold->slot] > 0)
        health->connections[hold->slot]--;
    hold->generation = 0;
}

void upstream_health_revive(struct upstream_health *health, const struct upstream *upstream)
{
    for (uint32_t i = 0; health && i < upstream->server_count; i++) {
        struct server_health *slot = slot_of(health, upstream, &upstream->servers[i]);
        if (slot)
            memset(slot, 0, sizeof *slot);
    }
}
