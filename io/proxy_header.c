/*
 * proxy_header.c - PROXY protocol headers in and out (see proxy_header.h).
 *
 * A received header stays queued in the client socket with the hello while
 * the upstream is connecting (the connection keeps only its length), and is
 * read out and parsed again just before relaying: so no connection carries
 * two socket addresses around while it waits.
 */
#include "proxy_header.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "../core/proxy_protocol.h"
#include "admission.h"

bool proxy_header_trusted(const struct snapshot_listener *listener, const struct sockaddr *peer)
{
    for (uint32_t i = 0; i < listener->proxy_protocol_from_count; i++)
        if (address_range_contains(&listener->proxy_protocol_from[i], peer))
            return true;
    return false;
}

enum proxy_header_result proxy_header_read(struct connection *connection, const uint8_t *queued,
                                           size_t length, size_t *skip,
                                           struct proxy_protocol_header *header)
{
    header->length = 0;
    *skip = connection->proxy_header == PROXY_HEADER_QUEUED ? connection->proxy_header_length : 0;
    if (connection->proxy_header != PROXY_HEADER_EXPECTED)
        return PROXY_HEADER_READ_DONE;
    switch (proxy_protocol_parse(queued, length, header)) {
    case PROXY_PROTOCOL_NEED_MORE:
        return PROXY_HEADER_READ_NEED_MORE;
    case PROXY_PROTOCOL_INVALID:
        return PROXY_HEADER_READ_INVALID;
    case PROXY_PROTOCOL_FOUND:
        break;
    }
    connection->proxy_header = PROXY_HEADER_QUEUED;
    connection->proxy_header_length = (uint32_t)header->length;
    if (header->has_addresses) {
        access_log_note_client(connection, &header->source);
        /* nginx's realip: the balancer's client is the client. A counted
         * connection keeps the address it was counted under. */
        if (!connection->client_counted)
            admission_note_client(connection, (const struct sockaddr *)&header->source);
    }
    *skip = header->length;
    return PROXY_HEADER_READ_DONE;
}

/* Take the client's header out of the socket; its addresses, if it had
 * any, go to *header. */
static bool consume_client_header(struct worker *worker, struct connection *connection,
                                  struct proxy_protocol_header *header)
{
    size_t length = connection->proxy_header_length;
    ssize_t received;
    do
        received = recv(connection->client_fd, worker->peek_buffer, length, 0);
    while (received < 0 && errno == EINTR);
    /* The bytes were peeked before: all of them are queued. */
    if (received != (ssize_t)length ||
        proxy_protocol_parse(worker->peek_buffer, length, header) != PROXY_PROTOCOL_FOUND) {
        connection_close(worker, connection, OUTCOME_CLIENT_ERROR);
        return false;
    }
    connection->proxy_header = PROXY_HEADER_NONE;
    return true;
}

static bool send_header(struct worker *worker, struct connection *connection, uint8_t version,
                        const struct proxy_protocol_header *received)
{
    struct sockaddr_storage source, destination;
    if (received->has_addresses) {
        source = received->source;
        destination = received->destination;
    } else {
        socklen_t destination_length = sizeof destination;
        if (!admission_peer_address(connection, &source) ||
            getsockname(connection->client_fd, (struct sockaddr *)&destination, &destination_length) != 0) {
            connection_close(worker, connection, OUTCOME_CLIENT_ERROR);
            return false;
        }
    }
    uint8_t bytes[PROXY_PROTOCOL_ENCODED_MAX];
    size_t length = proxy_protocol_encode(version, (struct sockaddr *)&source,
                                          (struct sockaddr *)&destination, bytes, sizeof bytes);
    ssize_t sent;
    do
        sent = send(connection->upstream_fd, bytes, length, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    /* A just-connected socket's send buffer is empty and far larger than
     * a header: anything short of all of it means the socket is broken,
     * and half a header must never be followed by client bytes. */
    if (length == 0 || sent != (ssize_t)length) {
        connection_close(worker, connection, OUTCOME_UPSTREAM_ERROR);
        return false;
    }
    return true;
}

bool proxy_header_forward(struct worker *worker, struct connection *connection, uint8_t version)
{
    struct proxy_protocol_header received = { 0 };
    if (connection->proxy_header == PROXY_HEADER_QUEUED &&
        !consume_client_header(worker, connection, &received))
        return false;
    if (version == PROXY_PROTOCOL_OFF)
        return true;
    return send_header(worker, connection, version, &received);
}
