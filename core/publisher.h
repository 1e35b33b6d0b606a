/*
 * publisher.h - lock-free publication and safe reclamation of snapshots.
 *
 * One writer (the main thread) publishes a new snapshot with one atomic
 * store; workers read the current pointer with one atomic load and no shared
 * write. An old snapshot is freed only when
 *   1. every worker has passed a quiescent point (a moment where it holds no
 *      unpinned snapshot pointer) after the swap, and
 *   2. no worker still pins it.
 * Workers report quiescence by storing the epoch they saw into their own
 * cache line; the reclaimer reads those lines. Never frees memory a worker
 * might still read; never blocks a worker.
 */
#ifndef SNISPLICE_CORE_PUBLISHER_H
#define SNISPLICE_CORE_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

struct publisher;

struct publisher *publisher_new(unsigned worker_count);

/* Main thread only. Takes ownership of snapshot; retires the previous one.
 * Returns false (and frees nothing) on ENOMEM. */
bool publisher_publish(struct publisher *publisher, struct snapshot *snapshot);

/* Main thread only: the epoch the next publish gives its snapshot. */
uint64_t publisher_next_epoch(struct publisher *publisher);

/* Any thread. Valid until the caller's next publisher_quiescent(), or longer
 * if pinned. */
struct snapshot *publisher_current(struct publisher *publisher);

/* Worker `worker`: it holds no unpinned snapshot pointer at this moment. */
void publisher_quiescent(struct publisher *publisher, unsigned worker);

/* Worker `worker` is leaving for good: it no longer holds back reclamation. */
void publisher_worker_offline(struct publisher *publisher, unsigned worker);

/* Main thread only. Frees every retired snapshot that is safe to free;
 * returns how many are still waiting. */
size_t publisher_reclaim(struct publisher *publisher);

/* After all workers have stopped: frees everything, current included. */
void publisher_free(struct publisher *publisher);

#endif
