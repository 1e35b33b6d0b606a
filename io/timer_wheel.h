/*
 * timer_wheel.h - per-worker hashed timing wheel.
 *
 * Owns every deadline of a worker (preread, connect, idle, accept pause)
 * without a syscall per timer: arming and disarming are O(1) list
 * operations; the worker advances the wheel once per loop iteration.
 * Resolution is TIMER_WHEEL_TICK_MS. A timer is embedded in its owner;
 * the wheel never allocates and never frees an owner.
 */
#ifndef SNISPLICE_IO_TIMER_WHEEL_H
#define SNISPLICE_IO_TIMER_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TIMER_WHEEL_TICK_MS 10
#define TIMER_WHEEL_SLOTS   1024 /* a power of two */

struct timer {
    struct timer *next, *prev; /* NULL when not armed */
    uint64_t expires_ms;
};

struct timer_wheel {
    struct timer slots[TIMER_WHEEL_SLOTS]; /* list heads */
    uint64_t processed_tick;               /* every tick <= this has fired */
    size_t armed;
};

typedef void timer_expired_fn(struct timer *timer, void *context);

void timer_wheel_init(struct timer_wheel *wheel, uint64_t now_ms);
/* (Re)arm: a timer already armed is moved. */
void timer_wheel_arm(struct timer_wheel *wheel, struct timer *timer, uint64_t expires_ms);
void timer_wheel_disarm(struct timer_wheel *wheel, struct timer *timer);

static inline bool timer_is_armed(const struct timer *timer) { return timer->next != NULL; }

/* Fire every timer whose expiry is <= now_ms. The callback may re-arm or
 * disarm any timer, its own included. */
void timer_wheel_advance(struct timer_wheel *wheel, uint64_t now_ms,
                         timer_expired_fn *expired, void *context);

/* Milliseconds until the next tick that may fire a timer, but never more
 * than limit_ms; only the slots up to that limit are looked at. With
 * limit_ms -1 (no limit): -1 when no timer is armed. */
int timer_wheel_wait_ms(const struct timer_wheel *wheel, uint64_t now_ms, int limit_ms);
/* Milliseconds until the next tick, armed timers or not (1..TIMER_WHEEL_TICK_MS). */
static inline int timer_wheel_ms_to_next_tick(uint64_t now_ms)
{
    return TIMER_WHEEL_TICK_MS - (int)(now_ms % TIMER_WHEEL_TICK_MS);
}

#endif
