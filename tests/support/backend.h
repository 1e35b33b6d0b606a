/*
 * backend.h - in-test plain TCP upstream servers, one thread per connection.
 *
 * Owns a listening socket, its accept thread and every connection thread,
 * all joined by backend_stop(). Two modes: IDENTIFY (write "<name>\n" at
 * once, then read until EOF, remembering what arrived, then close) and
 * HANDLER (a test function owns each connection). Never outlives
 * backend_stop(): no detached threads. A backend must live in static
 * storage: backend_stop_all() reaches it after a failed assertion.
 */
#ifndef SNISPLICE_TESTS_BACKEND_H
#define SNISPLICE_TESTS_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct backend;

/* Serves one accepted connection; the backend closes fd when it returns. */
typedef void (*backend_handler)(struct backend *backend, int fd, void *context);

#define BACKEND_RECORD_MAX 65536

struct backend_connection;

struct backend {
    char name[32];
    uint16_t port;
    int listen_fd;
    bool running;                /* between backend_start() and backend_stop() */
    backend_handler handler; /* NULL: IDENTIFY mode */
    void *context;
    pthread_t accept_thread;
    atomic_bool stopping;
    atomic_uint accepted;        /* connections accepted so far */
    pthread_mutex_t lock;        /* guards the fields below */
    struct backend_connection *connections;
    uint8_t last_received[BACKEND_RECORD_MAX]; /* IDENTIFY: bytes of the last finished connection */
    size_t last_received_length;
    unsigned finished;           /* IDENTIFY: connections fully served */
};

/* Listen on 127.0.0.1:port and start serving; false if the port is taken. */
bool backend_start(struct backend *backend, const char *name, uint16_t port,
                   backend_handler handler, void *context);

/* Stop accepting, unblock and join every connection thread, close everything. */
void backend_stop(struct backend *backend);

/* Stop every backend still running in this process (criterion .fini). */
void backend_stop_all(void);

unsigned backend_accepted(struct backend *backend);

/* IDENTIFY: copy what the last finished connection received; returns its length. */
size_t backend_last_received(struct backend *backend, uint8_t *out, size_t capacity);

/* IDENTIFY: connections fully served so far. */
unsigned backend_finished(struct backend *backend);

/* IDENTIFY: wait until `count` connections were fully served. */
bool backend_wait_finished(struct backend *backend, unsigned count, int timeout_ms);

#endif
