/*
 * ring_wait.c - submit and wait, one completion or a batch.
 *
 * A worker that keeps up with its load sleeps between events, and every
 * sleep costs a wake-up: an IPI from the CPU that queued the event (here a
 * trap into the hypervisor) and a switch back in. Saturated peers never
 * sleep. While the last wait returned a batch, the next one asks the kernel
 * to collect more: wait up to RING_WAIT_BATCH_US for RING_WAIT_BATCH
 * completions, and return with whatever is there once that time has
 * passed (io_uring's minimum wait, Linux 6.12+; with DEFER_TASKRUN the
 * completions before that do not even wake the thread). Measured at c=50
 * with 50 us and 8: 0.87 -> 0.28 sleeps per connection, conn/s +3-7%, p99
 * -3-6%; 150 us and 16 then took another 4-8% of CPU per connection at
 * c=50 and c=500 (bench/NOTES.md). Never when idle: a lone event would
 * wait the whole RING_WAIT_BATCH_US (c=1 latency tripled when tried
 * without the gate).
 *
 * liburing 2.3 has no call for a minimum wait, so the batched wait flushes
 * the submission queue itself and enters with IORING_ENTER_EXT_ARG, the
 * minimum in the field that older headers call `pad`.
 */
#include "ring_wait.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif

void ring_wait_init(struct ring_wait *how, unsigned features, bool ring_fd_registered)
{
    how->can_batch = (features & IORING_FEAT_MIN_TIMEOUT) && (features & IORING_FEAT_EXT_ARG);
    how->ring_fd_registered = ring_fd_registered;
}

static void timeout_of(struct __kernel_timespec *timeout, int timeout_ms)
{
    timeout->tv_sec = timeout_ms / 1000;
    timeout->tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
}

/* Publish the queued SQEs to the kernel; returns how many it has not consumed. */
static unsigned flush_submissions(struct io_uring *ring)
{
    struct io_uring_sq *sq = &ring->sq;
    unsigned tail = sq->sqe_tail;
    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        io_uring_smp_store_release(sq->ktail, tail);
    }
    return tail - io_uring_smp_load_acquire(sq->khead);
}

static int submit_and_wait_batch(struct io_uring *ring, const struct ring_wait *how, int timeout_ms,
                                 unsigned inline_completions)
{
    struct __kernel_timespec timeout;
    struct io_uring_getevents_arg argument = {
        .sigmask = 0,
        .sigmask_sz = _NSIG / 8,
        .pad = RING_WAIT_BATCH_US, /* min_wait_usec since Linux 6.12 */
        .ts = 0,
    };
    if (timeout_ms >= 0) {
        timeout_of(&timeout, timeout_ms);
        argument.ts = (uint64_t)(uintptr_t)&timeout;
    }
    unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
    int fd = ring->ring_fd;
    if (how->ring_fd_registered) {
        flags |= IORING_ENTER_REGISTERED_RING;
        fd = ring->enter_ring_fd;
    }
    long result = syscall(__NR_io_uring_enter, fd, flush_submissions(ring),
                          RING_WAIT_BATCH + inline_completions, flags, &argument, sizeof argument);
    return result < 0 ? -errno : (int)result;
}

int ring_wait_submit_and_wait(struct io_uring *ring, const struct ring_wait *how, int timeout_ms,
                              bool busy, unsigned inline_completions)
{
    if (busy && how->can_batch)
        return submit_and_wait_batch(ring, how, timeout_ms, inline_completions);
    unsigned wanted = 1 + inline_completions;
    if (timeout_ms < 0)
        return io_uring_submit_and_wait(ring, wanted);
    struct __kernel_timespec timeout;
    timeout_of(&timeout, timeout_ms);
    struct io_uring_cqe *cqe = NULL;
    return io_uring_submit_and_wait_timeout(ring, &cqe, wanted, &timeout, NULL);
}
