/*
 * publisher.c - one atomic pointer to the current snapshot, epochs, and
 * reclamation of retired snapshots.
 *
 * Why a freed snapshot can never be in use (the ordering argument):
 *  - publish stores the new pointer, THEN increments the epoch (release).
 *    The old snapshot is retired with that new epoch E.
 *  - A worker's quiescent point loads the epoch (acquire) and stores it in
 *    its own slot (release). Having read E, every later load of `current`
 *    by that worker sees the new pointer or a newer one, never the old.
 *  - Any use of the old snapshot by that worker happened before its
 *    quiescent store; the reclaimer's acquire load of the slot (>= E) makes
 *    those uses happen-before the free.
 *  - A connection that keeps the pointer past a quiescent point pins it
 *    first (its worker's own counter, published by the same release store);
 *    the reclaimer also waits for every pin count to drop to zero.
 * Workers that have exited are marked offline and no longer hold anything.
 */
#include "publisher.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct worker_slot {
    alignas(64) _Atomic uint64_t seen_epoch;
    _Atomic bool offline;
};

struct retired {
    struct snapshot *snapshot;
    uint64_t epoch;
    struct retired *next;
};

struct publisher {
    _Atomic(struct snapshot *) current;
    _Atomic uint64_t epoch;
    unsigned worker_count;
    struct worker_slot *slots;
    struct retired *retired; /* main thread only */
};

struct publisher *publisher_new(unsigned worker_count)
{
    struct publisher *publisher = calloc(1, sizeof *publisher);
    if (!publisher)
        return NULL;
    publisher->worker_count = worker_count;
    publisher->slots = aligned_alloc(64, sizeof(struct worker_slot) * (worker_count ? worker_count : 1));
    if (!publisher->slots) {
        free(publisher);
        return NULL;
    }
    memset(publisher->slots, 0, sizeof(struct worker_slot) * (worker_count ? worker_count : 1));
    return publisher;
}

bool publisher_publish(struct publisher *publisher, struct snapshot *snapshot)
{
    size_t pins_size = sizeof(struct snapshot_pins) * (publisher->worker_count ? publisher->worker_count : 1);
    struct retired *retired = malloc(sizeof *retired);
    snapshot->pins = aligned_alloc(64, pins_size);
    if (!retired || !snapshot->pins) {
        free(retired);
        free(snapshot->pins);
        snapshot->pins = NULL;
        return false;
    }
    memset(snapshot->pins, 0, pins_size);
    uint64_t epoch = atomic_load_explicit(&publisher->epoch, memory_order_relaxed) + 1;
    snapshot->epoch = epoch;
    struct snapshot *previous = atomic_exchange_explicit(&publisher->current, snapshot,
                                                         memory_order_acq_rel);
    /* Pointer first, epoch second: see the argument at the top. */
    atomic_store_explicit(&publisher->epoch, epoch, memory_order_release);
    if (!previous) {
        free(retired);
        return true;
    }
    retired->snapshot = previous;
    retired->epoch = epoch;
    retired->next = publisher->retired;
    publisher->retired = retired;
    return true;
}

uint64_t publisher_next_epoch(struct publisher *publisher)
{
    return atomic_load_explicit(&publisher->epoch, memory_order_relaxed) + 1;
}

struct snapshot *publisher_current(struct publisher *publisher)
{
    return atomic_load_explicit(&publisher->current, memory_order_acquire);
}

void publisher_quiescent(struct publisher *publisher, unsigned worker)
{
    uint64_t epoch = atomic_load_explicit(&publisher->epoch, memory_order_acquire);
    struct worker_slot *slot = &publisher->slots[worker];
    if (atomic_load_explicit(&slot->seen_epoch, memory_order_relaxed) != epoch)
        atomic_store_explicit(&slot->seen_epoch, epoch, memory_order_release);
}

void publisher_worker_offline(struct publisher *publisher, unsigned worker)
{
    atomic_store_explicit(&publisher->slots[worker].offline, true, memory_order_release);
}

static bool safe_to_free(const struct publisher *publisher, const struct retired *retired)
{
    for (unsigned worker = 0; worker < publisher->worker_count; worker++) {
        struct worker_slot *slot = &publisher->slots[worker];
        if (atomic_load_explicit(&slot->offline, memory_order_acquire))
            continue;
        if (atomic_load_explicit(&slot->seen_epoch, memory_order_acquire) < retired->epoch)
            return false;
        if (atomic_load_explicit(&retired->snapshot->pins[worker].count, memory_order_acquire) != 0)
            return false;
    }
    return true;
}

size_t publisher_reclaim(struct publisher *publisher)
{
    size_t waiting = 0;
    struct retired **link = &publisher->retired;
    while (*link) {
        struct retired *retired = *link;
        if (safe_to_free(publisher, retired)) {
            *link = retired->next;
            snapshot_free(retired->snapshot);
            free(retired);
        } else {
            waiting++;
            link = &retired->next;
        }
    }
    return waiting;
}

void publisher_free(struct publisher *publisher)
{
    if (!publisher)
        return;
    while (publisher->retired) {
        struct retired *next = publisher->retired->next;
        snapshot_free(publisher->retired->snapshot);
        free(publisher->retired);
        publisher->retired = next;
    }
    snapshot_free(atomic_load(&publisher->current));
    free(publisher->slots);
    free(publisher);
}
