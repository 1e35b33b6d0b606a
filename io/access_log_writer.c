/*
 * access_log_writer.c - the worker half of the access log: per-connection
 * records, line formatting, and double-buffered IORING_OP_WRITE.
 * Never blocks, never waits for the disk: a line that finds both buffers
 * busy is dropped and counted. Every write ends with a whole line, so a
 * file ends inside one only after a short write (disk full); the next
 * write, by any worker, then begins with "\n" (access_log_torn).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "access_log.h"
#include "log.h"
#include "worker.h"

#define LINE_MAX_BYTES 1024

/* Lines lost are counted (snisplice_access_log_lost_lines_total) and said
 * once per episode: the first loss after a good write logs a warning. */
static void lose_lines(struct worker *worker, uint64_t lines, const char *why)
{
    counter_add(&worker->counters.access_log_lines_lost, lines);
    if (worker->access_log.losing)
        return;
    worker->access_log.losing = true;
    log_warn("worker %u: access log: %s; lines are lost until a write succeeds (counted in "
             "snisplice_access_log_lost_lines_total)", worker->index, why);
}

void access_log_begin(struct worker *worker, struct connection *connection)
{
    if (atomic_load_explicit(&access_log_fd, memory_order_relaxed) < 0)
        return;
    struct access_record *record = calloc(1, sizeof *record);
    if (!record) {
        lose_lines(worker, 1, "out of memory for a connection's line");
        return;
    }
    record->started_ms = worker->now_ms;
    socklen_t length = sizeof record->client;
    if (getpeername(connection->client_fd, (struct sockaddr *)&record->client, &length) != 0)
        record->client.ss_family = AF_UNSPEC;
    snprintf(record->upstream, sizeof record->upstream, "-");
    connection->access = record;
}

void access_log_note_client(struct connection *connection, const struct sockaddr_storage *client)
{
    if (!connection->access)
        return;
    connection->access->client = *client;
    connection->access->client_from_header = true;
}

/* A byte of a field as the line shows it: printable ASCII but the space
 * that separates fields, else '?'. Quotes and backslashes too (nginx
 * writes both as \xHH): a logfmt parser (Loki, Vector) reads alpn="
 * as the start of a quoted value, and the fields after it are swallowed
 * or the whole line refused. */
static char field_byte(unsigned char byte)
{
    return byte > ' ' && byte <= '~' && byte != '"' && byte != '\\' ? (char)byte : '?';
}

void access_log_note_route(struct connection *connection, const char *server_name,
                           const uint8_t *alpn, size_t alpn_len)
{
    struct access_record *record = connection->access;
    if (!record)
        return;
    snprintf(record->server_name, sizeof record->server_name, "%s", server_name);
    if (alpn_len > 1 && alpn[0] > 0 && (size_t)alpn[0] < alpn_len) {
        size_t first = alpn[0] < sizeof record->alpn - 1 ? alpn[0] : sizeof record->alpn - 1;
        /* Printable only: an ALPN name is client-chosen bytes. */
        for (size_t i = 0; i < first; i++)
            record->alpn[i] = field_byte(alpn[1 + i]);
        record->alpn[first] = '\0';
    }
}

/* Fields are split at spaces, and a unix: path, in a route or a server,
 * may hold any byte: a space or a byte outside printable ASCII shows as
 * '?', as in alpn. */
static void keep_printable(char *field)
{
    for (char *at = field; *at; at++)
        *at = field_byte((unsigned char)*at);
}

void access_log_note_upstream(struct connection *connection, const char *name)
{
    struct access_record *record = connection->access;
    if (!record)
        return;
    snprintf(record->route, sizeof record->route, "%s", name);
    keep_printable(record->route);
}

void access_log_note_server(struct connection *connection, const struct address *server)
{
    if (!connection->access)
        return;
    address_format(server, connection->access->upstream, sizeof connection->access->upstream);
    keep_printable(connection->access->upstream);
}

static void format_client(const struct sockaddr_storage *client, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "-";
    if (client->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)client;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        snprintf(out, size, "%s:%u", host, ntohs(in4->sin_port));
    } else if (client->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)client;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(out, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(out, size, "-");
    }
}

static int format_line(const struct worker *worker, const struct connection *connection,
                       const char *outcome, char *line)
{
    const struct access_record *record = connection->access;
    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    char stamp[32], client[80];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    format_client(&record->client, client, sizeof client);
    return snprintf(line, LINE_MAX_BYTES,
                    "%s.%03ldZ %s sni=%s alpn=%s route=%s upstream=%s up=%llu down=%llu ms=%llu outcome=%s\n",
                    stamp, now.tv_nsec / 1000000, client,
                    record->server_name[0] ? record->server_name : "-",
                    record->alpn[0] ? record->alpn : "-", record->route[0] ? record->route : "-", record->upstream,
                    (unsigned long long)connection->to_upstream.bytes,
                    (unsigned long long)connection->to_client.bytes,
                    (unsigned long long)(worker->now_ms - record->started_ms), outcome);
}

static uint64_t count_lines(const char *bytes, size_t length)
{
    uint64_t lines = 0;
    for (const char *end = bytes + length; (bytes = memchr(bytes, '\n', (size_t)(end - bytes))) != NULL; bytes++)
        lines++;
    return lines;
}

/* Submit the filling buffer if it has lines and the other one is free to
 * take over. */
static void submit_filling(struct worker *worker)
{
    struct access_log *log = &worker->access_log;
    struct access_log_buffer *filling = &log->buffers[log->filling];
    struct access_log_buffer *other = &log->buffers[!log->filling];
    int fd = atomic_load_explicit(&access_log_fd, memory_order_relaxed);
    if (filling->used == 0 || filling->writing || other->writing || fd < 0)
        return;
    struct io_uring_sqe *sqe = worker_sqe(worker);
    /* Claimed here, by one writer: access_log_written gives it back if
     * this write does not land. */
    filling->lead = atomic_exchange_explicit(&access_log_torn, false, memory_order_relaxed);
    /* Offset -1: the file position; O_APPEND puts every write at the end. */
    io_uring_prep_write(sqe, fd, filling->bytes - filling->lead, (unsigned)(filling->used + filling->lead),
                        (uint64_t)-1);
    io_uring_sqe_set_data64(sqe, ring_tag_pack(filling, RING_TAG_ACCESS_LOG));
    filling->writing = true;
    log->filling = !log->filling;
}

void access_log_end(struct worker *worker, struct connection *connection, const char *outcome)
{
    struct access_record *record = connection->access;
    if (!record)
        return;
    struct access_log *log = &worker->access_log;
    char line[LINE_MAX_BYTES];
    int length = format_line(worker, connection, outcome, line);
    free(record);
    connection->access = NULL;
    if (length <= 0)
        return;
    /* Cut, it still ends the line: a write must never end inside one. */
    if ((size_t)length > LINE_MAX_BYTES - 1) {
        length = LINE_MAX_BYTES - 1;
        line[length - 1] = '\n';
    }
    struct access_log_buffer *filling = &log->buffers[log->filling];
    if (filling->used + (size_t)length > ACCESS_LOG_BUFFER_SIZE) {
        submit_filling(worker);
        filling = &log->buffers[log->filling];
    }
    if (filling->writing || filling->used + (size_t)length > ACCESS_LOG_BUFFER_SIZE) {
        lose_lines(worker, 1, "both buffers are still being written (disk too slow)");
        return;
    }
    memcpy(filling->bytes + filling->used, line, (size_t)length);
    filling->used += (size_t)length;
}

void access_log_flush(struct worker *worker)
{
    submit_filling(worker);
}

/* Whether the file now ends inside a line, after a write that did not
 * land whole: if nothing landed, a "\n" it was to lead with is owed still;
 * if part did, its last byte says. A write that landed whole leaves the
 * flag alone: another worker's torn write may have landed just before it,
 * and an empty line is better than two glued together. */
static void note_torn_end(const struct access_log_buffer *buffer, size_t written)
{
    if (written == 0) {
        if (buffer->lead)
            atomic_store_explicit(&access_log_torn, true, memory_order_relaxed);
    } else if (buffer->bytes[(ptrdiff_t)written - buffer->lead - 1] != '\n') {
        atomic_store_explicit(&access_log_torn, true, memory_order_relaxed);
    }
}

void access_log_written(struct worker *worker, struct access_log_buffer *buffer, int result)
{
    size_t submitted = buffer->used + buffer->lead;
    size_t written = result > 0 ? (size_t)result : 0;
    if (result < 0 || written < submitted) {
        /* Disk full or similar: the rest of this buffer is lost, a line
         * cut in two with it. */
        note_torn_end(buffer, written);
        size_t kept = written > buffer->lead ? written - buffer->lead : 0;
        char why[128];
        snprintf(why, sizeof why, "write: %s", result < 0 ? strerror(-result) : "short write");
        lose_lines(worker, count_lines(buffer->bytes + kept, buffer->used - kept), why);
    } else {
        worker->access_log.losing = false;
    }
    buffer->used = 0;
    buffer->lead = false;
    buffer->writing = false;
}

bool access_log_writing(const struct worker *worker)
{
    return worker->access_log.buffers[0].writing || worker->access_log.buffers[1].writing;
}
