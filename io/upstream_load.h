/*
 * upstream_load.h - a worker's open connections to each upstream server,
 * the counts that balance = least_connections and max_conns decide by
 * (io/upstream_health.h).
 *
 * Counted by name (upstream name and server address text), not by a
 * snapshot's slot, so that a reload neither forgets open connections nor
 * lends them to another server. Every server has a record of its own,
 * however many a worker has seen: the metrics' names (io/metrics.h) fold
 * everything past METRICS_NAMES_MAX into one "other" entry, which is fine
 * for a report but not for a limit, where one shared count makes one open
 * connection fill every server with max_conns=1.
 *
 * Records are allocated one by one (a server's first use after a reload,
 * never per connection) and never move while held, so a connection keeps
 * a pointer to its record from the pick to the close. When the worker
 * adopts a snapshot, records no connection holds are freed: the table
 * holds the current snapshot's servers plus those with connections still
 * open, however many reloads went by. Used by the owning worker only: no
 * atomics, no locks.
 */
#ifndef SNISPLICE_IO_UPSTREAM_LOAD_H
#define SNISPLICE_IO_UPSTREAM_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct upstream_load_record {
    uint32_t held;          /* connections from the pick to the close, connecting ones too */
    uint32_t hash;
    size_t upstream_length; /* names[upstream_length] is the NUL between the two */
    char names[];           /* upstream name, NUL, server address text, NUL */
};

struct upstream_load {
    struct upstream_load_record **slots; /* open addressing; NULL = empty */
    uint32_t mask;                       /* slot count - 1; no slots while count is 0 */
    uint32_t count;
};

void upstream_load_init(struct upstream_load *load);
void upstream_load_free(struct upstream_load *load);

/* The server's record, NULL if it has none. */
struct upstream_load_record *upstream_load_find(const struct upstream_load *load, const char *upstream,
                                                const char *server);
/* The server's record, made on first use; NULL only when out of memory. */
struct upstream_load_record *upstream_load_intern(struct upstream_load *load, const char *upstream,
                                                  const char *server);
/* Free the records nothing holds (held == 0). Every pointer to one of
 * them is gone with it: callers forget their cached ones first. */
void upstream_load_sweep(struct upstream_load *load);

#endif
