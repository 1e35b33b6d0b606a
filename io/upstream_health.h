/*
 * upstream_health.h - passive health of upstream servers, as nginx's
 * max_fails / fail_timeout: a server that failed max_fails connects within
 * fail_timeout is skipped for fail_timeout.
 *
 * One table per worker, indexed by upstream.health_index + server index,
 * reset when the worker adopts a new snapshot. Each worker judges from its
 * own connections only (no shared writes on the connection path); with N
 * workers a dead server costs at most N * max_fails failed attempts per
 * fail_timeout instead of max_fails.
 */
#ifndef SNISPLICE_IO_UPSTREAM_HEALTH_H
#define SNISPLICE_IO_UPSTREAM_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/upstream.h"

struct server_health {
    uint64_t window_start_ms;
    uint64_t unavailable_until_ms;
    uint32_t fails;
};

struct upstream_health {
    struct server_health *servers;
    uint32_t count;
};

/* Size the table for a snapshot's health_slots and forget the old state. */
bool upstream_health_reset(struct upstream_health *health, uint32_t slots);
void upstream_health_free(struct upstream_health *health);

/* A NULL table (a connection on an older snapshot) counts every server as
 * available and records nothing. */
bool upstream_health_available(const struct upstream_health *health, const struct upstream *upstream,
                               const struct upstream_server *server, uint64_t now_ms);
void upstream_health_failed(struct upstream_health *health, const struct upstream *upstream,
                            const struct upstream_server *server, uint64_t now_ms);
void upstream_health_succeeded(struct upstream_health *health, const struct upstream *upstream,
                               const struct upstream_server *server);

#endif
