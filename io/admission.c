/*
 * admission.c - which clients a listener serves (see admission.h).
 *
 * The client's address is read once at accept with getpeername(2), and
 * only on a listener that has allow/deny rules or trusted PROXY sources:
 * every other listener pays nothing. A client of a trusted load balancer
 * is judged by the address its PROXY header names, after the header is
 * read, because nginx runs its access phase after realip has replaced the
 * address; so `deny all` behind a load balancer refuses the real clients,
 * not the balancer.
 *
 * A refused client is closed before anything of it is read and before an
 * upstream is chosen (outcome "denied"). Its ClientHello may already be
 * queued (TCP_DEFER_ACCEPT), so the kernel answers the close with a reset:
 * the client learns at once, as from nginx, and no upstream ever sees it.
 */
#include "admission.h"

#include <sys/socket.h>

#include "../core/access_rules.h"
#include "proxy_header.h"

static bool judge(struct worker *worker, struct connection *connection,
                  const struct snapshot_listener *listener, const struct sockaddr *client)
{
    if (access_rules_admit(listener->access_rules, listener->access_rule_count, client))
        return true;
    connection_close(worker, connection, OUTCOME_DENIED);
    return false;
}

/* False (and the connection closed) when the socket has no peer any more. */
static bool peer_address(struct worker *worker, struct connection *connection,
                         struct sockaddr_storage *peer)
{
    socklen_t length = sizeof *peer;
    if (getpeername(connection->client_fd, (struct sockaddr *)peer, &length) == 0)
        return true;
    connection_close(worker, connection, OUTCOME_CLIENT_ERROR);
    return false;
}

bool admission_at_accept(struct worker *worker, struct connection *connection,
                         const struct snapshot_listener *listener)
{
    if (!listener || (listener->proxy_protocol_from_count == 0 && listener->access_rule_count == 0))
        return true;
    struct sockaddr_storage peer;
    if (!peer_address(worker, connection, &peer))
        return false;
    if (proxy_header_trusted(listener, (const struct sockaddr *)&peer)) {
        connection->proxy_header = PROXY_HEADER_EXPECTED;
        return true;
    }
    return judge(worker, connection, listener, (const struct sockaddr *)&peer);
}

bool admission_after_header(struct worker *worker, struct connection *connection,
                            const struct snapshot_listener *listener,
                            const struct proxy_protocol_header *header)
{
    if (!listener || listener->access_rule_count == 0)
        return true;
    if (header->has_addresses)
        return judge(worker, connection, listener, (const struct sockaddr *)&header->source);
    struct sockaddr_storage peer;
    if (!peer_address(worker, connection, &peer))
        return false;
    return judge(worker, connection, listener, (const struct sockaddr *)&peer);
}
