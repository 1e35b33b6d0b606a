/*
 * admission.c - which clients a listener serves (see admission.h).
 *
 * The client's address is read once at accept (admission_peer_address:
 * the access log's copy, or getpeername(2)), and only on a listener that
 * has allow/deny rules, a per-client limit or trusted PROXY sources: every
 * other listener pays nothing. A client of a trusted load balancer
 * is judged by the address its PROXY header names, after the header is
 * read, because nginx runs its access phase after realip has replaced the
 * address; so `deny all` behind a load balancer refuses the real clients,
 * not the balancer.
 *
 * A client the rules admit is then counted, when its listener has
 * max_connections_per_client: one more connection of its address in the
 * table all workers share (core/client_counts.c), released when the
 * connection closes (io/connection.c). nginx counts in the phase before
 * its allow/deny; here the rules come first, so a denied client never
 * holds a slot, even for the moment before its close. Both refuse the
 * same clients.
 *
 * A refused client is closed before anything of it is read and before an
 * upstream is chosen (outcome "denied" or "client_limit"). Its ClientHello
 * may already be queued (TCP_DEFER_ACCEPT), so the kernel answers the
 * close with a reset: the client learns at once, as from nginx, and no
 * upstream ever sees it.
 */
#include "admission.h"

#include <errno.h>
#include <sys/socket.h>

#include "../core/access_rules.h"
#include "access_log.h"
#include "proxy_header.h"

/* One more connection for the client's address, or the close when it has
 * its listener's limit. */
static bool count(struct worker *worker, struct connection *connection,
                  const struct snapshot_listener *listener)
{
    uint32_t limit = listener->max_connections_per_client;
    if (limit == 0 || !connection->client_address_known)
        return true;
    switch (client_counts_take(worker->client_counts, &connection->client_address, limit)) {
    case CLIENT_COUNT_TAKEN:
        connection->client_counted = true;
        return true;
    case CLIENT_COUNT_FULL:
        /* The table holds more addresses than the process has fds, so this
         * cannot happen; serving uncounted beats refusing a good client. */
        return true;
    case CLIENT_COUNT_AT_LIMIT:
        break;
    }
    connection_close(worker, connection, OUTCOME_CLIENT_LIMIT);
    return false;
}

void admission_note_client(struct connection *connection, const struct sockaddr *client)
{
    connection->client_address_known = client_address_from(client, &connection->client_address);
}

static bool judge(struct worker *worker, struct connection *connection,
                  const struct snapshot_listener *listener, const struct sockaddr *client)
{
    /* Kept for the client_address balancing and source = client too. */
    admission_note_client(connection, client);
    if (access_rules_admit(listener->access_rules, listener->access_rule_count, client))
        return count(worker, connection, listener);
    connection_close(worker, connection, OUTCOME_DENIED);
    return false;
}

/* Whether anything about this listener depends on who the client is. */
static bool judges_clients(const struct snapshot_listener *listener)
{
    return listener->access_rule_count > 0 || listener->max_connections_per_client > 0;
}

bool admission_peer_address(struct connection *connection, struct sockaddr_storage *peer)
{
    const struct access_record *record = connection->access;
    if (record && !record->client_from_header && record->client.ss_family != AF_UNSPEC) {
        *peer = record->client;
        return true;
    }
    socklen_t length = sizeof *peer;
    return getpeername(connection->client_fd, (struct sockaddr *)peer, &length) == 0;
}

bool admission_client_address(struct connection *connection)
{
    if (connection->client_address_known)
        return true;
    struct sockaddr_storage peer;
    if (!admission_peer_address(connection, &peer))
        return false;
    admission_note_client(connection, (const struct sockaddr *)&peer);
    return connection->client_address_known;
}

/* False (and the connection closed) when the socket has no peer any more.
 * ENOTCONN: the client reset the connection before the worker got to it,
 * as a load balancer's health check does at once (HAProxy's `check` with
 * send-proxy-v2: a LOCAL header, then a reset). It left before its hello,
 * like any client_closed one; nothing failed. */
static bool peer_address(struct worker *worker, struct connection *connection,
                         struct sockaddr_storage *peer)
{
    if (admission_peer_address(connection, peer))
        return true;
    connection_close(worker, connection, errno == ENOTCONN ? OUTCOME_CLIENT_CLOSED : OUTCOME_CLIENT_ERROR);
    return false;
}

bool admission_at_accept(struct worker *worker, struct connection *connection,
                         const struct snapshot_listener *listener)
{
    if (!listener || (listener->proxy_protocol_from_count == 0 && !judges_clients(listener)))
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
    if (!listener || !judges_clients(listener))
        return true;
    if (header->has_addresses)
        return judge(worker, connection, listener, (const struct sockaddr *)&header->source);
    struct sockaddr_storage peer;
    if (!peer_address(worker, connection, &peer))
        return false;
    return judge(worker, connection, listener, (const struct sockaddr *)&peer);
}
