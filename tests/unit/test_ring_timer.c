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

static struct io_uring ring;
static struct ring_timer timer;

static void ring_open(unsigned entries)
{
    struct io_uring_params params = {
        .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    };
    cr_assert_eq(io_uring_queue_init_params(entries, &ring, &params), 0);
    ring_timer_init(&timer, TIMER_DATA, UPDATE_DATA);
}

static void ring_open_8(void) { ring_open(8); }
static void ring_open_2(void) { ring_open(2); }
static void ring_close(void) { io_uring_queue_exit(&ring); }

struct completion {
    uint64_t user_data;
    int result;
};

/* Submit what is queued, wait for one completion, take it. */
static struct completion next_completion(void)
{
    struct io_uring_cqe *cqe = NULL;
    cr_assert_geq(io_uring_submit_and_wait(&ring, 1), 0);
    cr_assert_eq(io_uring_peek_cqe(&ring, &cqe), 0);
    struct completion taken = { .user_data = cqe->user_data, .result = cqe->res };
    io_uring_cqe_seen(&ring, cqe);
    return taken;
}

/* Wait for the next completion: it must be the timeout's expiry, no
 * sooner than `at_least` ms after `start` and sooner than `below`. */
static void expect_expiry(uint64_t start, uint64_t at_least, uint64_t below)
{
    struct completion fired = next_completion();
    uint64_t waited = monotonic_ms() - start;
    cr_assert_eq(fired.user_data, TIMER_DATA);
    cr_assert_eq(fired.result, -ETIME);
    cr_assert_geq(waited, at_least);
    cr_assert_lt(waited, below, "the wait ended after %llu ms, want %llu to %llu", (unsigned long long)waited,
                 (unsigned long long)at_least, (unsigned long long)below);
    cr_assert(ring_timer_completed(&timer, fired.result));
}

Test(ring_timer, ends_a_wait_at_the_deadline_not_before, .init = ring_open_8, .fini = ring_close)
{
    uint64_t start = monotonic_ms();
    cr_assert(ring_timer_expect(&timer, &ring, start + 60));
    cr_assert_eq(io_uring_sq_ready(&ring), 1);
    expect_expiry(start, 60, 1000);
    cr_assert_not(timer.armed);
}

Test(ring_timer, a_later_deadline_keeps_the_armed_timeout, .init = ring_open_8, .fini = ring_close)
{
    uint64_t start = monotonic_ms();
    cr_assert(ring_timer_expect(&timer, &ring, start + 40));
    cr_assert_eq(io_uring_submit(&ring), 1);
    cr_assert(ring_timer_expect(&timer, &ring, start + 5000));
    cr_assert_eq(io_uring_sq_ready(&ring), 0, "nothing is queued for a deadline the armed timeout covers");
    expect_expiry(start, 40, 1000);
}

Test(ring_timer, an_earlier_deadline_moves_the_armed_timeout, .init = ring_open_8, .fini = ring_close)
{
    uint64_t start = monotonic_ms();
    cr_assert(ring_timer_expect(&timer, &ring, start + 10000));
    cr_assert_eq(io_uring_submit(&ring), 1);
    cr_assert(ring_timer_expect(&timer, &ring, start + 40));
    cr_assert_eq(io_uring_sq_ready(&ring), 1);
    /* A successful move posts nothing: the first completion is the expiry,
     * long before the first deadline. */
    expect_expiry(start, 40, 5000);
    cr_assert_eq(io_uring_cq_ready(&ring), 0, "one timeout, one completion");
    /* Moved, not doubled: no second timeout is left in the ring. */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_timeout_remove(sqe, TIMER_DATA, 0);
    io_uring_sqe_set_data64(sqe, UPDATE_DATA);
    struct completion removal = next_completion();
    cr_assert_eq(removal.user_data, UPDATE_DATA);
    cr_assert_eq(removal.result, -ENOENT);
}

/* The timeout expired, its completion not yet taken (deferred task work),
 * and the worker asks for an earlier deadline: the move fails, and the
 * expiry's completion still arrives, once; then a new timeout is armed. */
Test(ring_timer, a_move_that_finds_the_timeout_expired_leaves_one_expiry, .init = ring_open_8, .fini = ring_close)
{
    uint64_t start = monotonic_ms();
    cr_assert(ring_timer_expect(&timer, &ring, start + 5));
    cr_assert_eq(io_uring_submit(&ring), 1);
    usleep(50 * 1000);
    cr_assert(ring_timer_expect(&timer, &ring, start + 2));
    cr_assert_eq(io_uring_sq_ready(&ring), 1, "an earlier deadline than the armed one queues a move");
    unsigned expiries = 0, failed_moves = 0;
    while (expiries == 0 || failed_moves == 0) {
        struct completion taken = next_completion();
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
    uint64_t again = monotonic_ms();
    cr_assert(ring_timer_expect(&timer, &ring, again + 20));
    expect_expiry(again, 20, 1000);
}

Test(ring_timer, a_refused_timeout_hands_the_deadline_back_to_the_wait, .init = ring_open_8, .fini = ring_close)
{
    cr_assert(ring_timer_expect(&timer, &ring, monotonic_ms() + 1000));
    cr_assert_eq(io_uring_submit(&ring), 1);
    cr_assert_not(ring_timer_completed(&timer, -EINVAL));
    cr_assert_not(ring_timer_expect(&timer, &ring, monotonic_ms() + 10));
    cr_assert_eq(io_uring_sq_ready(&ring), 0);
}

Test(ring_timer, a_full_submission_queue_is_no_promise, .init = ring_open_2, .fini = ring_close)
{
    while (io_uring_get_sqe(&ring))
        ;
    cr_assert_not(ring_timer_expect(&timer, &ring, monotonic_ms() + 10));
    cr_assert_not(timer.armed);
}
