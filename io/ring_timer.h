/*
 * ring_timer.h - the worker's wake-up at its next deadline: one
 * IORING_OP_TIMEOUT kept armed in the ring across waits, instead of a
 * timeout on every io_uring_enter.
 */
#ifndef SNISPLICE_IO_RING_TIMER_H
#define SNISPLICE_IO_RING_TIMER_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

struct ring_timer {
    struct __kernel_timespec expires; /* read by the kernel when the SQE is submitted */
    uint64_t expires_ms;              /* CLOCK_MONOTONIC, valid while armed */
    uint64_t timer_data;              /* user_data of the timeout's completion */
    uint64_t update_data;             /* user_data of a failed update's completion: ignored */
    bool armed;                       /* a timeout is in the ring, its completion not yet seen */
    bool failed;                      /* the kernel refused one: waits carry their own timeout */
};

/* timer_data: what the timeout's completion carries, to be handed to
 * ring_timer_completed(). update_data: what a failed move's completion
 * carries; it needs no handling (the timeout's own completion follows). */
void ring_timer_init(struct ring_timer *timer, uint64_t timer_data, uint64_t update_data);

/* Make sure the ring completes something by deadline_ms (CLOCK_MONOTONIC
 * milliseconds): nothing to do if the armed timeout expires by then, else
 * queue one or move the armed one earlier. False when that cannot be
 * promised (the submission queue is full, or the kernel refused a timeout
 * before): the caller's wait must then carry its own timeout. */
bool ring_timer_expect(struct ring_timer *timer, struct io_uring *ring, uint64_t deadline_ms);

/* The timeout's completion (timer_data) arrived with `result`. Returns
 * false when that is an error other than expiry or cancellation: the
 * timer is not used again (ring_timer_expect then answers false). */
bool ring_timer_completed(struct ring_timer *timer, int result);

#endif
