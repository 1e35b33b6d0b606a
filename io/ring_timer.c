/*
 * ring_timer.c - the worker's wake-up at its next deadline.
 *
 * A wait with a timeout makes io_uring_enter set up an hrtimer before it
 * sleeps and cancel it when a completion wakes it up. A worker that keeps
 * up with its load sleeps twice per short connection (for the next
 * connection, for the server's answer) and its deadline is nearly always
 * later than the event that ends the sleep, so that pair of timer
 * operations is pure cost, and on a VM programming the timer can trap into
 * the hypervisor. Instead one IORING_OP_TIMEOUT stays in the ring across
 * waits, at the worker's next deadline (absolute, so it does not drift).
 * Measured at concurrency 1: 1.2% less proxy CPU per connection (the
 * median of nine paired series, every one below 1.0; bench/NOTES.md,
 * "the wait's own timer"). What it pays instead: while connections come
 * and go, the deferred-poll tick (relay.c) now fires every 10 ms even when
 * other events ended the waits in between.
 *
 * It is moved only earlier (IORING_TIMEOUT_UPDATE, in the same submission
 * as the wait). A timeout that is armed for earlier than needed is left to
 * expire: the worker then wakes once for nothing and arms the next. An
 * update that finds the timeout already expired fails, and that failure
 * is ignored: the expiry's own completion is certain to follow (it may
 * still sit in deferred task work), and marks the timer unarmed.
 *
 * Never: two timeouts in the ring at once (armed is cleared only by the
 * timeout's own completion), or a promise that nothing will keep.
 */
#include "ring_timer.h"

#include <errno.h>

void ring_timer_init(struct ring_timer *timer, uint64_t timer_data, uint64_t update_data)
{
    *timer = (struct ring_timer){.timer_data = timer_data, .update_data = update_data};
}

bool ring_timer_expect(struct ring_timer *timer, struct io_uring *ring, uint64_t deadline_ms)
{
    if (timer->failed)
        return false;
    if (timer->armed && timer->expires_ms <= deadline_ms)
        return true;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe)
        return false;
    timer->expires.tv_sec = (long long)(deadline_ms / 1000);
    timer->expires.tv_nsec = (long long)(deadline_ms % 1000) * 1000000;
    if (timer->armed) {
        io_uring_prep_timeout_update(sqe, &timer->expires, timer->timer_data, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(sqe, timer->update_data);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    } else {
        io_uring_prep_timeout(sqe, &timer->expires, 0, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(sqe, timer->timer_data);
        timer->armed = true;
    }
    timer->expires_ms = deadline_ms;
    return true;
}

bool ring_timer_completed(struct ring_timer *timer, int result)
{
    timer->armed = false;
    if (result == -ETIME || result == -ECANCELED)
        return true;
    timer->failed = true;
    return false;
}
