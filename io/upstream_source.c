/*
 * upstream_source.c - binding upstream sockets to their listener's
 * `source` (see upstream_source.h).
 *
 * Plain system calls right after socket(), and only on listeners that set
 * a source: the bind must precede the connect in the same submission, and
 * a listener without one pays a single branch (io/connect.c).
 * IP_BIND_ADDRESS_NO_PORT makes bind() leave the port to connect(), which
 * picks one by the whole 4-tuple: many servers may share a local port, so
 * a fixed source address does not run out of ports at 28,000 connections.
 */
#include "upstream_source.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admission.h"
#include "log.h"

static const int on = 1;

/* The client's address as a socket address of `family`: an IPv4 client
 * (its address is kept IPv4-mapped) for an IPv4 server, an IPv6 one for
 * an IPv6 server. False when the families differ. */
static bool client_source(const struct client_address *client, int family, struct address *out)
{
    static const uint8_t mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    bool mapped = memcmp(client->bytes, mapped_prefix, sizeof mapped_prefix) == 0;
    memset(out, 0, sizeof *out);
    if (family == AF_INET && mapped) {
        struct sockaddr_in *in = (struct sockaddr_in *)&out->storage;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, client->bytes + 12, 4);
        out->length = sizeof *in;
        return true;
    }
    if (family == AF_INET6 && !mapped) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->storage;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, client->bytes, 16);
        out->length = sizeof *in6;
        return true;
    }
    return false;
}

static bool set_transparent(int fd, int family)
{
    if (family == AF_INET6)
        return setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &on, sizeof on) == 0;
    return setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &on, sizeof on) == 0;
}

/* A source that cannot be bound fails every connection of its listener:
 * a warning a second at most per worker, the rest at debug level. */
static void report_failure(struct worker *worker, const struct address *source, const char *step, int error)
{
    char text[ADDRESS_TEXT_MAX];
    if (source)
        address_format(source, text, sizeof text);
    else
        snprintf(text, sizeof text, "the client's address");
    if (log_once_a_second(&worker->source_warned_ms, worker->now_ms)) {
        log_warn("worker %u: source %s: %s: %s; connection closed, no server tried", worker->index, text, step,
                 strerror(error));
        return;
    }
    log_debug("worker %u: source %s: %s: %s; connection closed", worker->index, text, step, strerror(error));
}

bool upstream_source_bind(struct worker *worker, struct connection *connection, int fd, int family,
                          const struct upstream_source *source)
{
    struct address client;
    const struct address *bound = &source->address;
    if (source->kind == UPSTREAM_SOURCE_CLIENT) {
        if (!admission_client_address(connection)) {
            report_failure(worker, NULL, "cannot read it", errno ? errno : ENOTCONN);
            return false;
        }
        if (!client_source(&connection->client_address, family, &client))
            return true;
        bound = &client;
    } else if (address_family(bound) != family) {
        return true;
    }
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on) != 0) {
        report_failure(worker, bound, "IP_BIND_ADDRESS_NO_PORT", errno);
        return false;
    }
    if (source->kind == UPSTREAM_SOURCE_CLIENT && !set_transparent(fd, family)) {
        report_failure(worker, bound, "IP_TRANSPARENT", errno);
        return false;
    }
    if (bind(fd, (const struct sockaddr *)&bound->storage, bound->length) != 0) {
        report_failure(worker, bound, "bind", errno);
        return false;
    }
    return true;
}

bool upstream_source_transparent_allowed(char *problem, size_t problem_size)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(problem, problem_size, "cannot make a probe socket: %s", strerror(errno));
        return false;
    }
    bool allowed = setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &on, sizeof on) == 0;
    int error = errno;
    close(fd);
    if (!allowed)
        snprintf(problem, problem_size, "binding the client's address needs CAP_NET_ADMIN or CAP_NET_RAW, and "
                                        "IP_TRANSPARENT was refused: %s", strerror(error));
    return allowed;
}
