/*
 * snapshot.c - allocation and release of a routing snapshot.
 */
#include "snapshot.h"

#include <stdlib.h>

struct snapshot *snapshot_new(void)
{
    return calloc(1, sizeof(struct snapshot));
}

void snapshot_free(struct snapshot *snapshot)
{
    if (!snapshot)
        return;
    for (uint32_t i = 0; i < snapshot->route_table_count; i++)
        route_table_free(snapshot->route_tables[i]);
    free(snapshot->route_tables);
    for (uint32_t i = 0; i < snapshot->listener_count; i++) {
        free(snapshot->listeners[i].name);
        free(snapshot->listeners[i].proxy_protocol_from);
        free(snapshot->listeners[i].access_rules);
    }
    free(snapshot->listeners);
    free(snapshot->addresses);
    for (uint32_t i = 0; i < snapshot->upstream_count; i++)
        upstream_release(&snapshot->upstreams[i]);
    free(snapshot->upstreams);
    free(snapshot->pins);
    free(snapshot);
}
