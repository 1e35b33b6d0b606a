/*
 * stats_server.h - the `stats = ADDR` endpoint: a thread of its own serving
 * `GET /metrics` in Prometheus text format (io/metrics.c renders it).
 *
 * Owns its listening socket, its thread and up to 16 clients at once,
 * all waited on together. Never touches a worker's ring: it only reads
 * the workers' metrics. A slow or silent scraper is bounded by its own
 * deadlines and a request size limit, so it cannot make another scraper
 * wait for them, and cannot delay signals or reloads, which the main
 * thread handles.
 */
#ifndef SNISPLICE_IO_STATS_SERVER_H
#define SNISPLICE_IO_STATS_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/address.h"
#include "worker.h"

struct stats_server {
    int listen_fd;
    int stop_fd;                  /* eventfd: written once to end the thread */
    pthread_t thread;
    bool running;
    const struct worker *workers;
    unsigned worker_count;
    const _Atomic uint64_t *reloads_ok;
    const _Atomic uint64_t *reloads_failed;
};

/* Bind and listen (call before privileges are dropped). False with a log line. */
bool stats_server_bind(struct stats_server *server, const struct address *address);

/* Take fd, an endpoint socket bound and listening already (the old
 * process's, handed over by an upgrade), instead of binding. */
void stats_server_adopt(struct stats_server *server, int fd);

/* Start serving once the workers run. */
bool stats_server_start(struct stats_server *server, const struct worker *workers, unsigned worker_count,
                        const _Atomic uint64_t *reloads_ok, const _Atomic uint64_t *reloads_failed);

/* Stop the thread and close everything (safe if never bound or started). */
void stats_server_stop(struct stats_server *server);

#endif
