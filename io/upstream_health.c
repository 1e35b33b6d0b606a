/*
 * upstream_health.c - per-worker failure counting for upstream servers,
 * and the choice among the available ones (see upstream_health.h).
 */
#include "upstream_health.h"

#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static struct server_health *slot_of(const struct upstream_health *health,
                                     const struct upstream *upstream,
                                     const struct upstream_server *server)
{
    if (!health)
        return NULL;
    uint32_t index = upstream->health_index + (uint32_t)(server - upstream->servers);
    return index < health->count ? &health->servers[index] : NULL;
}

bool upstream_health_reset(struct upstream_health *health, struct upstream_load *load, uint32_t slots)
{
    /* The cached records go below (forgotten, or the whole table is). */
    upstream_load_sweep(load);
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
        struct metrics_server **entries = weights ? realloc(health->entries, slots * sizeof *entries) : NULL;
        if (entries)
            health->entries = entries;
        struct upstream_load_record **loads = entries ? realloc(health->loads, slots * sizeof *loads) : NULL;
        if (!loads)
            return false;
        health->loads = loads;
    }
    health->count = slots;
    if (slots) {
        memset(health->servers, 0, slots * sizeof *health->servers);
        memset(health->current_weights, 0, slots * sizeof *health->current_weights);
        /* The slots are the new snapshot's servers: look each up again. */
        memset(health->entries, 0, slots * sizeof *health->entries);
        memset(health->loads, 0, slots * sizeof *health->loads);
    }
    return true;
}

/* A server's state worth carrying over a reload: it failed lately, rests,
 * or was kept out until some time. */
struct kept_health {
    const char *upstream; /* the previous snapshot's name, valid during the adoption */
    char server[ADDRESS_TEXT_MAX];
    struct server_health state;
};

static bool worth_keeping(const struct server_health *state)
{
    return state->fails != 0 || state->resting || state->unavailable_until_ms != 0;
}

static int compare_kept(const void *a, const void *b)
{
    return strcmp(((const struct kept_health *)a)->upstream, ((const struct kept_health *)b)->upstream);
}

/* The table's servers worth keeping, sorted by upstream name; NULL when
 * none (or no memory: then nothing is kept, as before reloads kept any). */
static struct kept_health *keep_failing(const struct upstream_health *health, const struct upstream *upstreams,
                                        uint32_t count, size_t *kept_count)
{
    struct kept_health *kept = NULL;
    size_t capacity = 0;
    *kept_count = 0;
    for (uint32_t u = 0; u < count; u++) {
        const struct upstream *upstream = &upstreams[u];
        if (!upstream_health_covers(health, upstream))
            continue;
        for (uint32_t i = 0; i < upstream->server_count; i++) {
            const struct server_health *state = &health->servers[upstream->health_index + i];
            if (!worth_keeping(state))
                continue;
            if (*kept_count == capacity) {
                capacity = capacity ? 2 * capacity : 16;
                struct kept_health *grown = realloc(kept, capacity * sizeof *kept);
                if (!grown) {
                    free(kept);
                    *kept_count = 0;
                    return NULL;
                }
                kept = grown;
            }
            struct kept_health *entry = &kept[(*kept_count)++];
            entry->upstream = upstream->name;
            address_format(&upstream->servers[i].address, entry->server, sizeof entry->server);
            entry->state = *state;
        }
    }
    if (kept)
        qsort(kept, *kept_count, sizeof *kept, compare_kept);
    return kept;
}

/* The first kept entry of upstream `name`, or kept_count. */
static size_t first_kept_of(const struct kept_health *kept, size_t kept_count, const char *name)
{
    size_t low = 0, high = kept_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (strcmp(kept[middle].upstream, name) < 0)
            low = middle + 1;
        else
            high = middle;
    }
    return low < kept_count && strcmp(kept[low].upstream, name) == 0 ? low : kept_count;
}

/* Each kept state to the new table's slot of the same upstream name and
 * server address, unless the new config says that server never rests
 * (max_fails=0, or the only server of its upstream), as
 * upstream_health_failed would never have marked it. Cost: the upstreams,
 * plus a format per server of the upstreams that have a kept one. */
static void restore_kept(struct upstream_health *health, const struct kept_health *kept, size_t kept_count,
                         const struct upstream *upstreams, uint32_t count)
{
    for (uint32_t u = 0; u < count; u++) {
        const struct upstream *upstream = &upstreams[u];
        size_t first = first_kept_of(kept, kept_count, upstream->name);
        if (first == kept_count || !upstream_health_covers(health, upstream))
            continue;
        for (uint32_t i = 0; i < upstream->server_count && upstream->server_count > 1; i++) {
            if (upstream->servers[i].max_fails == 0)
                continue;
            char text[ADDRESS_TEXT_MAX];
            address_format(&upstream->servers[i].address, text, sizeof text);
            for (size_t k = first; k < kept_count && strcmp(kept[k].upstream, upstream->name) == 0; k++) {
                if (strcmp(kept[k].server, text) == 0) {
                    health->servers[upstream->health_index + i] = kept[k].state;
                    break;
                }
            }
        }
    }
}

bool upstream_health_adopt(struct upstream_health *health, struct upstream_load *load,
                           const struct upstream *previous, uint32_t previous_count,
                           const struct upstream *upstreams, uint32_t count, uint32_t slots)
{
    size_t kept_count = 0;
    struct kept_health *kept = previous ? keep_failing(health, previous, previous_count, &kept_count) : NULL;
    bool reset = upstream_health_reset(health, load, slots);
    if (reset && kept)
        restore_kept(health, kept, kept_count, upstreams, count);
    free(kept);
    return reset;
}

void upstream_health_free(struct upstream_health *health)
{
    free(health->servers);
    free(health->current_weights);
    free(health->entries);
    free(health->loads);
    health->servers = NULL;
    health->current_weights = NULL;
    health->entries = NULL;
    health->loads = NULL;
    health->count = 0;
}

struct metrics_server *upstream_health_entry(struct upstream_health *health, struct metrics *metrics,
                                             const struct upstream *upstream,
                                             const struct upstream_server *server)
{
    const struct server_health *slot = slot_of(health, upstream, server);
    struct metrics_server **cached = slot ? &health->entries[slot - health->servers] : NULL;
    if (cached && *cached)
        return *cached;
    char text[ADDRESS_TEXT_MAX];
    address_format(&server->address, text, sizeof text);
    struct metrics_server *entry = metrics_server(metrics, upstream->name, text);
    if (cached)
        *cached = entry;
    return entry;
}

/* The server's record of open connections. For a table laid out for
 * upstream's snapshot it is made at first use and cached, so a
 * connection's choice costs no lookups; without one (a connection on an
 * older snapshot) it is only looked up, unless `make`: a server no
 * connection holds needs no record to be counted at zero. NULL when it
 * has none (or no memory for one). */
static struct upstream_load_record *load_of(struct upstream_health *health, struct upstream_load *load,
                                            const struct upstream *upstream,
                                            const struct upstream_server *server, bool make)
{
    const struct server_health *slot = slot_of(health, upstream, server);
    struct upstream_load_record **cached = slot ? &health->loads[slot - health->servers] : NULL;
    if (cached && *cached)
        return *cached;
    char text[ADDRESS_TEXT_MAX];
    address_format(&server->address, text, sizeof text);
    struct upstream_load_record *record = cached || make ? upstream_load_intern(load, upstream->name, text)
                                                         : upstream_load_find(load, upstream->name, text);
    if (cached)
        *cached = record;
    return record;
}

static uint32_t held_by(struct upstream_health *health, struct upstream_load *load,
                        const struct upstream *upstream, const struct upstream_server *server)
{
    const struct upstream_load_record *record = load_of(health, load, upstream, server, false);
    return record ? record->held : 0;
}

static bool at_max_conns(struct upstream_health *health, struct upstream_load *load,
                         const struct upstream *upstream, const struct upstream_server *server)
{
    return server->max_conns && held_by(health, load, upstream, server) >= server->max_conns;
}

bool upstream_health_available(struct upstream_health *health, struct upstream_load *load,
                               const struct upstream *upstream, const struct upstream_server *server,
                               uint64_t now_ms)
{
    if (at_max_conns(health, load, upstream, server))
        return false;
    const struct server_health *slot = slot_of(health, upstream, server);
    return !slot || now_ms >= slot->unavailable_until_ms;
}

struct availability {
    struct upstream_health *health;
    struct upstream_load *load;
    const struct upstream *upstream;
    uint64_t now_ms;
    const uint64_t *tried; /* servers the connection tried, skipped; NULL: none */
};

static bool tried_already(const struct availability *availability, const struct upstream_server *server)
{
    return availability->tried &&
           upstream_health_was_tried(availability->tried, (uint32_t)(server - availability->upstream->servers));
}

static bool available_now(const struct upstream_server *server, void *context)
{
    const struct availability *availability = context;
    return !tried_already(availability, server) &&
           upstream_health_available(availability->health, availability->load, availability->upstream, server,
                                     availability->now_ms);
}

/* least_connections compares the worker's open connections to each
 * server in [begin, end), indexed like upstream->servers. */
static void held_counts(struct availability *availability, uint32_t begin, uint32_t end, uint32_t *held)
{
    const struct upstream *upstream = availability->upstream;
    for (uint32_t i = begin; i < end; i++)
        held[i] = held_by(availability->health, availability->load, upstream, &upstream->servers[i]);
}

/* One step of the upstream's balancing over the available servers with
 * index in [begin, end): the primaries or the backups, each with its own
 * running weights (their slots of current_weights). */
static bool first_available(struct upstream_health *health, struct upstream_load *load,
                            const struct upstream *upstream, uint32_t begin, uint32_t end, uint64_t now_ms,
                            const uint64_t *tried, uint32_t *first)
{
    if (!upstream_health_covers(health, upstream))
        return false;
    struct availability availability = { health, load, upstream, now_ms, tried };
    int64_t *current = &health->current_weights[upstream->health_index];
    int32_t best;
    if (upstream->balance == UPSTREAM_BALANCE_LEAST_CONNECTIONS) {
        uint32_t held[UPSTREAM_SERVERS_MAX];
        held_counts(&availability, begin, end, held);
        best = upstream_least_connections_step(upstream, begin, end, held, current, available_now, &availability);
    } else {
        best = upstream_round_robin_step(upstream, begin, end, current, available_now, &availability);
    }
    if (best < 0)
        return false;
    *first = (uint32_t)best;
    return true;
}

bool upstream_health_covers(const struct upstream_health *health, const struct upstream *upstream)
{
    return health && upstream->health_index + upstream->server_count <= health->count;
}

bool upstream_health_first_primary(struct upstream_health *health, struct upstream_load *load,
                                   const struct upstream *upstream, uint64_t now_ms, uint32_t *first)
{
    return first_available(health, load, upstream, 0, upstream->primary_count, now_ms, NULL, first);
}

bool upstream_health_first_backup(struct upstream_health *health, struct upstream_load *load,
                                  const struct upstream *upstream, uint64_t now_ms, uint32_t *first)
{
    return first_available(health, load, upstream, upstream->primary_count, upstream->server_count, now_ms,
                           NULL, first);
}

bool upstream_health_next_untried(struct upstream_health *health, struct upstream_load *load,
                                  const struct upstream *upstream, uint64_t now_ms, const uint64_t *tried,
                                  bool backups, uint32_t *next)
{
    if (!backups && first_available(health, load, upstream, 0, upstream->primary_count, now_ms, tried, next))
        return true;
    return first_available(health, load, upstream, upstream->primary_count, upstream->server_count, now_ms,
                           tried, next);
}

void upstream_health_picked(struct upstream_health *health, const struct upstream *upstream,
                            const struct upstream_server *server, uint64_t now_ms)
{
    struct server_health *slot = slot_of(health, upstream, server);
    /* One probe per fail_timeout: the others wait for its outcome. */
    if (slot && slot->resting) {
        slot->unavailable_until_ms = now_ms + server->fail_timeout_ms;
        slot->probed = true;
    }
}

void upstream_health_failed(struct upstream_health *health, const struct upstream *upstream,
                            const struct upstream_server *server, uint64_t now_ms)
{
    struct server_health *slot = slot_of(health, upstream, server);
    if (!slot || server->max_fails == 0 || upstream->server_count == 1)
        return;
    if (slot->resting) {
        slot->unavailable_until_ms = now_ms + server->fail_timeout_ms;
        slot->probed = false;
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
    /* Failures within the window stay counted (a flapping server must
     * still reach max_fails); a resting one comes back by its probe, not
     * by a connection that was picked before it failed. */
    if (slot && slot->probed)
        memset(slot, 0, sizeof *slot);
}

void upstream_health_hold(struct upstream_health *health, struct upstream_load *load,
                          const struct upstream *upstream, const struct upstream_server *server,
                          struct upstream_load_record **held)
{
    if (upstream->balance != UPSTREAM_BALANCE_LEAST_CONNECTIONS && server->max_conns == 0)
        return;
    *held = load_of(health, load, upstream, server, true);
    if (*held)
        (*held)->held++;
}

void upstream_health_release(struct upstream_load_record **held)
{
    if (*held)
        (*held)->held--;
    *held = NULL;
}

bool upstream_health_revive(struct upstream_health *health, struct upstream_load *load,
                            const struct upstream *upstream)
{
    for (uint32_t i = 0; i < upstream->server_count; i++)
        if (!upstream->servers[i].down && at_max_conns(health, load, upstream, &upstream->servers[i]))
            return false;
    for (uint32_t i = 0; health && i < upstream->server_count; i++) {
        struct server_health *slot = slot_of(health, upstream, &upstream->servers[i]);
        if (slot)
            memset(slot, 0, sizeof *slot);
    }
    return true;
}
