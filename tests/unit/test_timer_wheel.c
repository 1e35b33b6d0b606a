/*
 * test_timer_wheel.c - deadlines fire once, not early, not late by more than
 * a tick; re-arming moves a timer; far deadlines survive wheel turns.
 */
#include <criterion/criterion.h>
#include <stddef.h>

#include "../../io/timer_wheel.h"

struct fired_log {
    struct timer *timers[64];
    size_t count;
};

static void record(struct timer *timer, void *context)
{
    struct fired_log *log = context;
    cr_assert_lt(log->count, 64);
    log->timers[log->count++] = timer;
}

static struct timer_wheel wheel;

Test(timer_wheel, fires_at_deadline_not_before)
{
    struct fired_log log = { .count = 0 };
    struct timer timer = { 0 };
    timer_wheel_init(&wheel, 1000);
    timer_wheel_arm(&wheel, &timer, 1500);
    timer_wheel_advance(&wheel, 1499, record, &log);
    cr_assert_eq(log.count, 0);
    cr_assert(timer_is_armed(&timer));
    timer_wheel_advance(&wheel, 1510, record, &log);
    cr_assert_eq(log.count, 1);
    cr_assert_eq(log.timers[0], &timer);
    cr_assert_not(timer_is_armed(&timer));
    cr_assert_eq(timer_wheel_wait_ms(&wheel, 1510, -1), -1);
}

Test(timer_wheel, disarm_prevents_firing)
{
    struct fired_log log = { .count = 0 };
    struct timer timer = { 0 };
    timer_wheel_init(&wheel, 0);
    timer_wheel_arm(&wheel, &timer, 100);
    timer_wheel_disarm(&wheel, &timer);
    timer_wheel_advance(&wheel, 1000, record, &log);
    cr_assert_eq(log.count, 0);
    cr_assert_eq(wheel.armed, 0);
}

Test(timer_wheel, rearm_moves_the_deadline)
{
    struct fired_log log = { .count = 0 };
    struct timer timer = { 0 };
    timer_wheel_init(&wheel, 0);
    timer_wheel_arm(&wheel, &timer, 100);
    timer_wheel_arm(&wheel, &timer, 5000);
    cr_assert_eq(wheel.armed, 1);
    timer_wheel_advance(&wheel, 4990, record, &log);
    cr_assert_eq(log.count, 0);
    timer_wheel_advance(&wheel, 5000, record, &log);
    cr_assert_eq(log.count, 1);
}

Test(timer_wheel, deadline_beyond_one_turn_waits_its_turn)
{
    struct fired_log log = { .count = 0 };
    struct timer near = { 0 }, far = { 0 };
    uint64_t turn_ms = (uint64_t)TIMER_WHEEL_SLOTS * TIMER_WHEEL_TICK_MS;
    timer_wheel_init(&wheel, 0);
    timer_wheel_arm(&wheel, &near, 50);
    /* Same slot as `near`, three turns later (an idle timeout of minutes). */
    timer_wheel_arm(&wheel, &far, 50 + 3 * turn_ms);
    timer_wheel_advance(&wheel, 60, record, &log);
    cr_assert_eq(log.count, 1);
    cr_assert_eq(log.timers[0], &near);
    for (uint64_t now = 60; now < 50 + 3 * turn_ms; now += 777)
        timer_wheel_advance(&wheel, now, record, &log);
    cr_assert_eq(log.count, 1);
    timer_wheel_advance(&wheel, 60 + 3 * turn_ms, record, &log);
    cr_assert_eq(log.count, 2);
    cr_assert_eq(log.timers[1], &far);
}

Test(timer_wheel, long_sleep_fires_everything_due)
{
    struct fired_log log = { .count = 0 };
    struct timer timers[10] = { 0 };
    timer_wheel_init(&wheel, 0);
    for (int i = 0; i < 10; i++)
        timer_wheel_arm(&wheel, &timers[i], (uint64_t)(i + 1) * 3000);
    /* One jump past all of them, much longer than a wheel turn. */
    timer_wheel_advance(&wheel, 1000000, record, &log);
    cr_assert_eq(log.count, 10);
    cr_assert_eq(wheel.armed, 0);
}

Test(timer_wheel, past_deadline_fires_on_next_advance)
{
    struct fired_log log = { .count = 0 };
    struct timer timer = { 0 };
    timer_wheel_init(&wheel, 10000);
    timer_wheel_arm(&wheel, &timer, 5);
    cr_assert_geq(timer_wheel_wait_ms(&wheel, 10000, -1), 0);
    cr_assert_leq(timer_wheel_wait_ms(&wheel, 10000, -1), TIMER_WHEEL_TICK_MS);
    timer_wheel_advance(&wheel, 10000 + TIMER_WHEEL_TICK_MS, record, &log);
    cr_assert_eq(log.count, 1);
}

static void rearm_self(struct timer *timer, void *context)
{
    struct fired_log *log = context;
    log->timers[log->count++] = timer;
    if (log->count < 3)
        timer_wheel_arm(&wheel, timer, timer->expires_ms + 100);
}

Test(timer_wheel, callback_may_rearm_its_own_timer)
{
    struct fired_log log = { .count = 0 };
    struct timer timer = { 0 };
    timer_wheel_init(&wheel, 0);
    timer_wheel_arm(&wheel, &timer, 100);
    timer_wheel_advance(&wheel, 100, rearm_self, &log);
    cr_assert_eq(log.count, 1);
    timer_wheel_advance(&wheel, 150, rearm_self, &log);
    cr_assert_eq(log.count, 1);
    timer_wheel_advance(&wheel, 200, rearm_self, &log);
    timer_wheel_advance(&wheel, 300, rearm_self, &log);
    cr_assert_eq(log.count, 3);
    cr_assert_not(timer_is_armed(&timer));
}

Test(timer_wheel, wait_skips_to_first_occupied_slot)
{
    struct timer timer = { 0 };
    timer_wheel_init(&wheel, 0);
    timer_wheel_arm(&wheel, &timer, 2000);
    int wait = timer_wheel_wait_ms(&wheel, 0, -1);
    cr_assert_geq(wait, 2000 - TIMER_WHEEL_TICK_MS);
    cr_assert_leq(wait, 2000 + TIMER_WHEEL_TICK_MS);
}

Test(timer_wheel, deadline_inside_a_tick_fires_within_one_tick)
{
    /* Regression: a deadline in the middle of a tick, with the worker waking
     * exactly when timer_wheel_wait_ms() says, must fire on that wake-up. */
    struct fired_log log = { .count = 0 };
    struct timer timer = { 0 };
    timer_wheel_init(&wheel, 8788077);
    timer_wheel_arm(&wheel, &timer, 8788077 + 500);
    uint64_t now = 8788077;
    for (int wakeups = 0; wakeups < 3 && log.count == 0; wakeups++) {
        now += (uint64_t)timer_wheel_wait_ms(&wheel, now, -1);
        timer_wheel_advance(&wheel, now, record, &log);
    }
    cr_assert_eq(log.count, 1);
    cr_assert_geq(now, 8788577);
    cr_assert_leq(now, 8788577 + TIMER_WHEEL_TICK_MS);
}

Test(timer_wheel, wait_at_most_stops_at_the_limit)
{
    struct timer far = { 0 }, near = { 0 };
    timer_wheel_init(&wheel, 1000);
    cr_assert_eq(timer_wheel_wait_ms(&wheel, 1000, 7), 7, "no timer: the limit");
    cr_assert_eq(timer_wheel_wait_ms(&wheel, 1000, -1), -1);
    timer_wheel_arm(&wheel, &far, 1000 + 60000);
    cr_assert_eq(timer_wheel_wait_ms(&wheel, 1000, 10), 10, "a timer beyond the limit");
    cr_assert_eq(timer_wheel_wait_ms(&wheel, 1003, 4), 4);
    timer_wheel_arm(&wheel, &near, 1025);
    int unlimited = timer_wheel_wait_ms(&wheel, 1000, -1);
    cr_assert_leq(unlimited, 30);
    cr_assert_eq(timer_wheel_wait_ms(&wheel, 1000, 500), unlimited, "a timer within the limit");
    cr_assert_eq(timer_wheel_wait_ms(&wheel, 1000, 5), 5);
}
