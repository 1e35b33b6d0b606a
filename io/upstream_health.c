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

/* Healthy again; its place in the round robin stays. */
static void forget_failures(struct server_health *slot)
{
    int64_t current_weight = slot->current_weight;
    memset(slot, 0, sizeof *slot);
    slot->current_weight = current_weight;
}

bool upstream_health_reset(struct upstream_health *health, uint32_t slots)
{
    if (slots > health->count) {
        struct server_health *servers = realloc(health->servers, slots * sizeof *servers);
        if (!servers)
            return false;
        health->servers = servers;
    }
    health->count = slots;
    if (slots)
        memset(health->servers, 0, slots * sizeof *health->servers);
    return true;
}

void upstream_health_free(struct upstream_health *health)
{
    free(health->servers);
    health->servers = NULL;
    health->count = 0;
}

bool upstream_health_available(const struct upstream_health *health, const struct upstream *upstream,
                               const struct upstream_server *server, uint64_t now_ms)
{
    const struct server_health *slot = slot_of(health, upstream, server);
    return !slot || now_ms >= slot->unavailable_until_ms;
}

bool upstream_health_first_primary(struct upstream_health *health, const struct upstream *upstream,
                                   uint64_t now_ms, uint32_t *first)
{
    struct server_health *best = NULL;
    int64_t total = 0;
    for (uint32_t i = 0; health && i < upstream->primary_count; i++) {
        const struct upstream_server *server = &upstream->servers[i];
        struct server_health *slot = slot_of(health, upstream, server);
        if (!slot || server->down || now_ms < slot->unavailable_until_ms)
            continue;
        int64_t weight = server->weight ? server->weight : 1;
        slot->current_weight += weight;
        total += weight;
        if (!best || slot->current_weight > best->current_weight) {
            best = slot;
            *first = i;
        }
    }
    if (!best)
        return false;
    best->current_weight -= total;
    return true;
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
        forget_failures(slot);
}

void upstream_health_revive(struct upstream_health *health, const struct upstream *upstream)
{
    for (uint32_t i = 0; health && i < upstream->server_count; i++) {
        struct server_health *slot = slot_of(health, upstream, &upstream->servers[i]);
        if (slot)
            forget_failures(slot);
    }
}
