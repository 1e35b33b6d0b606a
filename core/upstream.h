/*
 * upstream.h - upstream groups and the order in which their servers are tried.
 *
 * An upstream is a named list of servers, primaries first then backups.
 * Choosing a server is a pure function of (upstream, round-robin start,
 * attempt number) so a worker keeps its own round-robin cursor and no state
 * is shared between workers.
 */
#ifndef SNISPLICE_CORE_UPSTREAM_H
#define SNISPLICE_CORE_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "address.h"

struct upstream_server {
    struct address address;
    bool backup;
};

struct upstream {
    char *name;                      /* config name, or the literal address text */
    struct upstream_server *servers; /* primaries first, then backups */
    uint32_t server_count;
    uint32_t primary_count;
};

/*
 * The server to try on attempt `attempt` (0-based) of a connection whose
 * round-robin start is `start`: every primary once, starting at
 * start % primary_count and wrapping, then every backup in config order.
 * NULL once all servers were tried.
 */
const struct upstream_server *upstream_server_for_attempt(const struct upstream *upstream,
                                                          uint32_t start, uint32_t attempt);

/* Append a server; backups are kept after primaries. Returns false on ENOMEM. */
bool upstream_add_server(struct upstream *upstream, const struct address *address, bool backup);

/* Free what the upstream owns (not the struct itself). */
void upstream_release(struct upstream *upstream);

#endif
