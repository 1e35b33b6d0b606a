/*
 * ring_wait.h - how a worker hands its queued submissions to the kernel and
 * waits for completions: for one, or, while busy, for a batch.
 */
#ifndef SNISPLICE_IO_RING_WAIT_H
#define SNISPLICE_IO_RING_WAIT_H

#include <liburing.h>
#include <stdbool.h>

/* A wait that returned this many completions or more marks the worker busy. */
#define RING_WAIT_BUSY_BATCH 4
/* While busy: wait up to this long for RING_WAIT_BATCH completions.
 * 150 us and 16 measured best against 50/8 and 300/32 (bench/NOTES.md). */
#define RING_WAIT_BATCH_US 150
#define RING_WAIT_BATCH 16

struct ring_wait {
    bool can_batch;          /* the kernel has a minimum wait time (Linux 6.12+) */
    bool ring_fd_registered; /* enter through the registered ring fd */
};

/* What the ring supports; `features` is io_uring_params.features. */
void ring_wait_init(struct ring_wait *how, unsigned features, bool ring_fd_registered);

/* Submit what is queued; wait for one completion or until timeout_ms passed
 * (-1: no deadline). When `busy` and the kernel can, wait instead up to
 * RING_WAIT_BATCH_US for RING_WAIT_BATCH completions, returning with
 * whatever came by then (at least one). `inline_completions` queued
 * operations complete inside the submission itself: each is one more
 * completion to wait for, so they never end a wait on their own.
 * Returns io_uring_enter's result. */
int ring_wait_submit_and_wait(struct io_uring *ring, const struct ring_wait *how, int timeout_ms,
                              bool busy, unsigned inline_completions);

#endif
