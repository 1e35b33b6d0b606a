/*
 * access_log.h - one line per finished connection, nginx-like:
 *
 *   2026-11-25T03:12:44.123Z 192.0.2.7:51234 sni=matrix.example.com alpn=h2
 *     route=matrix upstream=127.0.0.1:12443 up=1932 down=1024 ms=3 outcome=done
 *
 * Lines are formatted into a per-worker buffer and written with
 * IORING_OP_WRITE, two buffers taking turns, so a slow disk never blocks
 * the worker's ring. If both buffers are busy the line is dropped and
 * counted, never waited for. The file descriptor is shared by all workers
 * (O_APPEND puts each write at the end); SIGUSR1 reopens it by dup3() (keeping close-on-exec)
 * onto the same number, and a reload that turns logging off points that
 * number at /dev/null, so a write a worker queued never lands on a closed
 * descriptor or on the socket that took its number.
 * A full disk may cut a write short inside a line: the next write then
 * starts with "\n", so the torn line stands alone and is never glued to
 * the next one.
 * Costs nothing when no access_log is configured.
 */
#ifndef SNISPLICE_IO_ACCESS_LOG_H
#define SNISPLICE_IO_ACCESS_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "../core/address.h"
#include "../core/hostname.h"

#define ACCESS_LOG_BUFFER_SIZE (64 * 1024)

/* What a connection remembers for its line; allocated only when logging. */
/* An upstream's name, whole: as long as the metrics' names
 * (METRICS_NAME_SIZE, io/metrics.h), which a config line (at most 199
 * bytes) cannot outgrow, so the log and the metrics name a route alike. */
#define ACCESS_LOG_ROUTE_SIZE (2 * ADDRESS_TEXT_MAX)

struct access_record {
    uint64_t started_ms;              /* monotonic */
    struct sockaddr_storage client;   /* the socket's peer, read at accept... */
    bool client_from_header;          /* ...until a PROXY header named another */
    char server_name[HOSTNAME_MAX + 1];
    char alpn[32];                    /* first offered protocol, cut */
    char route[ACCESS_LOG_ROUTE_SIZE]; /* upstream name; "" until routed */
    char upstream[ADDRESS_TEXT_MAX];  /* server connected to */
};

struct access_log_buffer {
    char *bytes;                      /* lines; bytes[-1] is kept for a leading "\n" */
    size_t used;
    bool writing;                     /* an IORING_OP_WRITE owns it */
    bool lead;                        /* that write starts at bytes[-1] */
} __attribute__((aligned(8)));

struct access_log {
    struct access_log_buffer buffers[2];
    unsigned filling;                 /* index of the buffer taking new lines */
    bool losing;                      /* lines lost since the last good write: said once */
};

/* Process-wide: the descriptor all workers write to, -1 when off. */
extern _Atomic int access_log_fd;
/* Process-wide: a short write left the file ending inside a line, so the
 * next write, whichever worker makes it, owes it a "\n" first. */
extern atomic_bool access_log_torn;

/* Main thread, at start, as root with `user =`: the log files root opens
 * from now on are handed to uid, so that once root is gone the process can
 * still reopen them (SIGUSR1, a reload) while they exist. */
void access_log_set_owner(uid_t uid);
/* Main thread: open path, or reopen it onto the same descriptor number. */
bool access_log_open(const char *path);
/* The two halves of access_log_open, so a reload opens the file before it
 * changes anything and is rejected if it cannot: open_file returns a new
 * descriptor (-1 with the reason in error); install makes it the log's,
 * taking it over. */
int access_log_open_file(const char *path, char *error, size_t error_size);
void access_log_install(int fd);
/* Whether path can be opened for appending, as -t checks it; one that
 * does not exist yet is not created, but its directory must take it.
 * Else the reason in error. */
bool access_log_check(const char *path, char *error, size_t error_size);
/* No more lines (a reload turned the log off); the descriptor stays. */
void access_log_disable(void);
/* At exit, once no worker runs. */
void access_log_close(void);

bool access_log_init(struct access_log *log);
void access_log_destroy(struct access_log *log);

/* ---- worker side (access_log_writer.c) ---- */
struct worker;
struct connection;

/* At accept, when logging is on: remember the client and the start time. */
void access_log_begin(struct worker *worker, struct connection *connection);
/* At routing: the server name, the offered ALPN and the chosen upstream. */
void access_log_note_route(struct connection *connection, const char *server_name,
                           const uint8_t *alpn, size_t alpn_len);
/* The upstream chosen: its name is copied into the record, as the
 * snapshot that holds it may be freed before the connection ends. */
void access_log_note_upstream(struct connection *connection, const char *name);
void access_log_note_server(struct connection *connection, const struct address *server);
/* A PROXY protocol header named the real client. */
void access_log_note_client(struct connection *connection, const struct sockaddr_storage *client);
/* At close: format the line into the worker's buffer, free the record. */
void access_log_end(struct worker *worker, struct connection *connection, const char *outcome);
/* End of a loop iteration: hand a filled buffer to the ring. */
void access_log_flush(struct worker *worker);
void access_log_written(struct worker *worker, struct access_log_buffer *buffer, int result);
bool access_log_writing(const struct worker *worker);

#endif
