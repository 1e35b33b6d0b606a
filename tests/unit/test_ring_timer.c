/*
 * test_ring_timer.c - the worker's timeout kept in the ring: it ends a wait
 * at the deadline, is moved only earlier, never doubles, and says when a
 * wait must carry its own timeout. A real ring, set up as the workers set
 * theirs (deferred task work), since what matters is the kernel's answer.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "../../io/ring_timer.h"

#define TIMER_DATA 0x1008u
#define UPDATE_DATA 0x2008u

static uint64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static void ring_open(struct io_uring *ring, unsigned entries)
{
    struct io_uring_params params = {
        .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    };
    cr_assert_eq(io_uring_queue_init_params(entries, ring, &params), 0);
}

struct completion {
    uint64_t user_data;
    int result;
};

/* Submit what is queued, wait for one completion, take it. */
static struct completion next_completion(struct io_uring *ring)
{
    struct io_uring_cqe *cqe = NULL;
    cr_assert_geq(io_uring_submit_and_wait(ring, 1), 0);
    cr_assert_eq(io_uring_peek_cqe(ring, &cqe), 0);
    struct completion taken = { .user_data = cqe->user_data, .result = cqe->res };
    io_uring_cqe_seen(ring, cqe);
    return taken;
}

Test(ring_timer, ends_a_wait_at_the_deadline_not_before)
{
    struct io_uring ring;
    struct ring_timer timer;
    ring_open(&ring, 8);
    ring_timer_init(&timer, TIMER_DATA, UPDATE_DATA);
    uint64_t start = monotonic_ms();
    cr_assert(ring_timer_expect(&timer, &ring, start + 60));
    cr_assert_eq(io_uring_sq_ready(&ring), 1);
    struct completion fired = next_completion(&ring);
    uint64_t waited = monotonic_ms() - start;
    cr_assert_eq(fired.user_data, TIMER_DATA);
    cr_assert_eq(fired.result, -ETIME);
    cr_assert_geq(waited, 60);
    cr_assert_lt(waited, 1000, "a 60 ms deadline ended the wait after %llu ms", (unsigned long long)waited);
    cr_assert(ring_timer_completed(&timer, fired.result));
    cr_assert_not(timer.armed);
    io_uring_queue_exit(&ring);
}

Test(ring_timer, a_later_deadline_keeps_the_armed_timeout)
{
    struct io_uring ring;
    struct ring_timer timer;
    ring_open(&ring, 8);
    ring_timer_init(&timer, TIMER_DATA, UPDATE_DATA);
    uint64_t start = monotonic_ms();
    cr_assert(ring_timer_expect(&timer, &ring, start + 40));
    cr_assert_eq(io_uring_submit(&ring), 1);
    cr_assert(ring_timer_expect(&timer, &ring, start + 5000));
    cr_assert_eq(io_uring_sq_ready(&ring), 0, "nothing is queued for a deadline the armed timeout covers");
    struct completion fired = next_completion(&ring);
    cr_assert_eq(fired.user_data, TIMER_DATA);
    cr_assert_lt(monotonic_ms() - start, 1000);
    io_uring_queue_exit(&ring);
}

Test(ring_timer, an_earlier_deadline_moves_the_armed_timeout)
{
    struct io_uring ring;
    struct ring_timer timer;
    ring_open(&ring, 8);
    ring_timer_init(&timer, TIMER_DATA, UPDATE_DATA);
    uint64_t start = monotonic_ms();
    cr_assert(ring_timer_expect(&timer, &ring, start + 10000));
    cr_assert_eq(io_uring_submit(&ring), 1);
    cr_assert(ring_timer_expect(&timer, &ring, start + 40));
    cr_assert_eq(io_uring_sq_ready(&ring), 1);
    struct completion fired = next_completion(&ring);
    uint64_t waited = monotonic_ms() - start;
    /* A successful move posts nothing: the first completion is the expiry. */
    cr_assert_eq(fired.user_data, TIMER_DATA);
    cr_assert_eq(fired.result, -ETIME);
    cr_assert_geq(waited, 40);
    cr_assert_lt(waited, 5000, "the timeout was not moved: the wait took %llu ms", (unsigned long long)waited);
    cr_assert(ring_timer_completed(&timer, fired.result));
    cr_assert_eq(io_uring_cq_ready(&ring), 0, "one timeout, one completion");
    /* Moved, not doubled: no second timeout is left in the ring. */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_timeout_remove(sqe, TIMER_DATA, 0);
    io_uring_sqe_set_data64(sqe, UPDATE_DATA);
    struct completion removal = next_completion(&ring);
    cr_assert_eq(removal.user_data, UPDATE_DATA);
    cr_assert_eq(removal.result, -ENOENT);
    io_uring_queue_exit(&ring);
}

/* The timeout expired, its completion not yet taken (deferred task work),
 * and the worker asks for an earlier deadline: the move fails, and the
 * expiry's completion still arrives, once; then a new timeout is armed. */
Test(ring_timer, a_move_that_finds_the_timeout_expired_leaves_one_expiry)
{
    struct io_uring ring;
    struct ring_timer timer;
    ring_open(&ring, 8);
    ring_timer_init(&timer, TIMER_DATA, UPDATE_DATA);
    uint64_t start = monotonic_ms();
    cr_assert(ring_timer_expect(&timer, &ring, start + 5));
    cr_assert_eq(io_uring_submit(&ring), 1);
    usleep(50 * 1000);
    cr_assert(ring_timer_expect(&timer, &ring, start + 2));
    cr_assert_eq(io_uring_sq_ready(&ring), 1, "an earlier deadline than the armed one queues a move");
    unsigned expiries = 0, failed_moves = 0;
    while (expiries == 0 || failed_moves == 0) {
        struct completion taken = next_completion(&ring);
        if (taken.user_data == TIMER_DATA) {
            expiries++;
            cr_assert_eq(taken.result, -ETIME);
            cr_assert(ring_timer_completed(&timer, taken.result));
        } else {
            cr_assert_eq(taken.user_data, UPDATE_DATA);
            cr_assert_lt(taken.result, 0);
            failed_moves++;
        }
    }
    cr_assert_eq(expiries, 1);
    cr_assert_eq(io_uring_cq_ready(&ring), 0);
    cr_assert_not(timer.armed);
    cr_assert(ring_timer_expect(&timer, &ring, monotonic_ms() + 20));
    struct completion fired = next_completion(&ring);
    cr_assert_eq(fired.user_data, TIMER_DATA);
    cr_assert_eq(fired.result, -ETIME);
    io_uring_queue_exit(&ring);
}

Test(ring_timer, a_refused_timeout_hands_the_deadline_back_to_the_wait)
{
    struct io_uring ring;
    struct ring_timer timer;
    ring_open(&ring, 8);
    ring_timer_init(&timer, TIMER_DATA, UPDATE_DATA);
    cr_assert(ring_timer_expect(&timer, &ring, monotonic_ms() + 1000));
    cr_assert_eq(io_uring_submit(&ring), 1);
    cr_assert_not(ring_timer_completed(&timer, -EINVAL));
    cr_assert_not(ring_timer_expect(&timer, &ring, monotonic_ms() + 10));
    cr_assert_eq(io_uring_sq_ready(&ring), 0);
    io_uring_queue_exit(&ring);
}

Test(ring_timer, a_full_submission_queue_is_no_promise)
{
    struct io_uring ring;
    struct ring_timer timer;
    ring_open(&ring, 2);
    ring_timer_init(&timer, TIMER_DATA, UPDATE_DATA);
    while (io_uring_get_sqe(&ring))
        ;
    cr_assert_not(ring_timer_expect(&timer, &ring, monotonic_ms() + 10));
    cr_assert_not(timer.armed);
    io_uring_queue_exit(&ring);
}
