/*
 * upstream.c - server order within an upstream: primaries round robin from
 * the caller's start, then backups in config order.
 */
#include "upstream.h"

#include <stdlib.h>
#include <string.h>

const struct upstream_server *upstream_server_for_attempt(const struct upstream *upstream,
                                                          uint32_t start, uint32_t attempt)
{
    uint32_t primaries = upstream->primary_count;
    if (attempt < primaries)
        return &upstream->servers[(start % primaries + attempt) % primaries];
    attempt -= primaries;
    if (attempt < upstream->server_count - primaries)
        return &upstream->servers[primaries + attempt];
    return NULL;
}

bool upstream_add_server(struct upstream *upstream, const struct address *address, bool backup)
{
    struct upstream_server *servers =
        realloc(upstream->servers, (upstream->server_count + 1) * sizeof *servers);
    if (!servers)
        return false;
    upstream->servers = servers;
    uint32_t at = upstream->server_count;
    if (!backup) {
        /* Keep primaries in front: shift the backups one place back. */
        at = upstream->primary_count;
        memmove(&servers[at + 1], &servers[at],
                (upstream->server_count - at) * sizeof *servers);
        upstream->primary_count++;
    }
    servers[at].address = *address;
    servers[at].backup = backup;
    upstream->server_count++;
    return true;
}

void upstream_release(struct upstream *upstream)
{
    free(upstream->name);
    free(upstream->servers);
    upstream->name = NULL;
    upstream->servers = NULL;
    upstream->server_count = upstream->primary_count = 0;
}
