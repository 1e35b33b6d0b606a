/*
 * backend.c - threaded plain TCP upstreams for the integration tests.
 *
 * Owns each connection's fd (closed as soon as it is served) and thread
 * until backend_stop() joins it; a
 * finished connection thread is joined by the accept loop so a long test
 * does not pile up threads. Never detaches a thread.
 */
#include "backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child_process.h"
#include "net.h"

#define IDENTIFY_READ_TIMEOUT_MS 10000
#define BACKEND_REGISTRY_MAX 16

static struct backend *running_backends[BACKEND_REGISTRY_MAX];

struct backend_connection {
    struct backend *backend;
    int fd;
    pthread_t thread;
    atomic_bool done;
    struct backend_connection *next;
};

static void identify_connection(struct backend *backend, int fd)
{
    char greeting[40];
    int greeting_length = snprintf(greeting, sizeof greeting, "%s\n", backend->name);
    uint8_t *received = malloc(BACKEND_RECORD_MAX);
    if (!received)
        abort();
    net_set_timeouts(fd, IDENTIFY_READ_TIMEOUT_MS);
    net_send_all(fd, greeting, (size_t)greeting_length);
    struct net_receive_result result =
        net_receive_until_closed(fd, received, BACKEND_RECORD_MAX, IDENTIFY_READ_TIMEOUT_MS);
    pthread_mutex_lock(&backend->lock);
    memcpy(backend->last_received, received, result.length);
    backend->last_received_length = result.length;
    backend->finished++;
    pthread_mutex_unlock(&backend->lock);
    free(received);
}

static void *connection_main(void *argument)
{
    struct backend_connection *connection = argument;
    struct backend *backend = connection->backend;
    if (backend->handler)
        backend->handler(backend, connection->fd, backend->context);
    else
        identify_connection(backend, connection->fd);
    pthread_mutex_lock(&backend->lock);
    close(connection->fd);
    connection->fd = -1;
    atomic_store(&connection->done, true);
    pthread_mutex_unlock(&backend->lock);
    return NULL;
}

/* Join and free finished connections; with `all`, shut down and join the rest too. */
static void reap_connections(struct backend *backend, bool all)
{
    pthread_mutex_lock(&backend->lock);
    struct backend_connection **link = &backend->connections;
    while (*link) {
        struct backend_connection *connection = *link;
        if (all && connection->fd >= 0)
            shutdown(connection->fd, SHUT_RDWR);
        if (!all && !atomic_load(&connection->done)) {
            link = &connection->next;
            continue;
        }
        *link = connection->next;
        pthread_mutex_unlock(&backend->lock);
        pthread_join(connection->thread, NULL);
        free(connection);
        pthread_mutex_lock(&backend->lock);
    }
    pthread_mutex_unlock(&backend->lock);
}

static void start_connection(struct backend *backend, int fd)
{
    struct backend_connection *connection = calloc(1, sizeof *connection);
    if (!connection)
        abort();
    connection->backend = backend;
    connection->fd = fd;
    pthread_mutex_lock(&backend->lock);
    connection->next = backend->connections;
    backend->connections = connection;
    if (pthread_create(&connection->thread, NULL, connection_main, connection) != 0) {
        fprintf(stderr, "backend %s: pthread_create failed\n", backend->name);
        abort();
    }
    pthread_mutex_unlock(&backend->lock);
}

static void *accept_main(void *argument)
{
    struct backend *backend = argument;
    while (!atomic_load(&backend->stopping)) {
        int fd = accept4(backend->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* shutdown() of the listening socket by backend_stop() */
        }
        if (atomic_load(&backend->stopping)) {
            close(fd);
            break;
        }
        atomic_fetch_add(&backend->accepted, 1);
        reap_connections(backend, false);
        start_connection(backend, fd);
    }
    return NULL;
}

bool backend_start(struct backend *backend, const char *name, uint16_t port,
                   backend_handler handler, void *context)
{
    memset(backend, 0, sizeof *backend);
    snprintf(backend->name, sizeof backend->name, "%s", name);
    backend->port = port;
    backend->handler = handler;
    backend->context = context;
    pthread_mutex_init(&backend->lock, NULL);
    backend->listen_fd = net_listen(port);
    if (backend->listen_fd < 0) {
        pthread_mutex_destroy(&backend->lock);
        return false;
    }
    if (pthread_create(&backend->accept_thread, NULL, accept_main, backend) != 0)
        abort();
    backend->running = true;
    for (size_t i = 0; i < BACKEND_REGISTRY_MAX; i++) {
        if (!running_backends[i]) {
            running_backends[i] = backend;
            break;
        }
    }
    return true;
}

void backend_stop(struct backend *backend)
{
    if (!backend->running)
        return;
    backend->running = false;
    for (size_t i = 0; i < BACKEND_REGISTRY_MAX; i++) {
        if (running_backends[i] == backend)
            running_backends[i] = NULL;
    }
    atomic_store(&backend->stopping, true);
    shutdown(backend->listen_fd, SHUT_RDWR);
    pthread_join(backend->accept_thread, NULL);
    close(backend->listen_fd);
    backend->listen_fd = -1;
    reap_connections(backend, true);
    pthread_mutex_destroy(&backend->lock);
}

void backend_stop_all(void)
{
    for (size_t i = 0; i < BACKEND_REGISTRY_MAX; i++) {
        if (running_backends[i])
            backend_stop(running_backends[i]);
    }
}

unsigned backend_accepted(struct backend *backend)
{
    return atomic_load(&backend->accepted);
}

size_t backend_last_received(struct backend *backend, uint8_t *out, size_t capacity)
{
    pthread_mutex_lock(&backend->lock);
    size_t length = backend->last_received_length < capacity ? backend->last_received_length
                                                             : capacity;
    memcpy(out, backend->last_received, length);
    pthread_mutex_unlock(&backend->lock);
    return length;
}

unsigned backend_finished(struct backend *backend)
{
    pthread_mutex_lock(&backend->lock);
    unsigned finished = backend->finished;
    pthread_mutex_unlock(&backend->lock);
    return finished;
}

bool backend_wait_finished(struct backend *backend, unsigned count, int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        if (backend_finished(backend) >= count)
            return true;
        if (monotonic_ms() >= deadline)
            return false;
        sleep_ms(5);
    }
}
