/*
 * timer_wheel.c - hashed timing wheel: slot = expiry tick mod SLOTS; a timer
 * further away than one turn simply stays in its slot until its tick comes
 * round (its expiry is checked, not assumed).
 */
#include "timer_wheel.h"

static uint64_t tick_of(uint64_t ms) { return ms / TIMER_WHEEL_TICK_MS; }

static void list_insert(struct timer *head, struct timer *timer)
{
    timer->next = head->next;
    timer->prev = head;
    head->next->prev = timer;
    head->next = timer;
}

static void list_remove(struct timer *timer)
{
    timer->prev->next = timer->next;
    timer->next->prev = timer->prev;
    timer->next = timer->prev = NULL;
}

void timer_wheel_init(struct timer_wheel *wheel, uint64_t now_ms)
{
    for (size_t i = 0; i < TIMER_WHEEL_SLOTS; i++)
        wheel->slots[i].next = wheel->slots[i].prev = &wheel->slots[i];
    wheel->processed_tick = tick_of(now_ms);
    wheel->armed = 0;
}

void timer_wheel_arm(struct timer_wheel *wheel, struct timer *timer, uint64_t expires_ms)
{
    if (timer_is_armed(timer))
        list_remove(timer);
    else
        wheel->armed++;
    timer->expires_ms = expires_ms;
    /* Round up: when the wheel reaches this tick, the deadline has passed,
     * so a timer is never visited too early (and then forgotten for a turn). */
    uint64_t tick = tick_of(expires_ms + TIMER_WHEEL_TICK_MS - 1);
    /* A deadline already in the past fires on the next tick processed. */
    if (tick <= wheel->processed_tick)
        tick = wheel->processed_tick + 1;
    list_insert(&wheel->slots[tick & (TIMER_WHEEL_SLOTS - 1)], timer);
}

void timer_wheel_disarm(struct timer_wheel *wheel, struct timer *timer)
{
    if (!timer_is_armed(timer))
        return;
    list_remove(timer);
    wheel->armed--;
}

static void fire_slot(struct timer_wheel *wheel, struct timer *head, uint64_t now_ms,
                      timer_expired_fn *expired, void *context)
{
    /* Move the slot aside first: callbacks may re-arm into this very slot. */
    struct timer pending = { .next = &pending, .prev = &pending };
    if (head->next != head) {
        pending.next = head->next;
        pending.prev = head->prev;
        pending.next->prev = &pending;
        pending.prev->next = &pending;
        head->next = head->prev = head;
    }
    while (pending.next != &pending) {
        struct timer *timer = pending.next;
        list_remove(timer);
        if (timer->expires_ms <= now_ms) {
            wheel->armed--;
            expired(timer, context);
        } else {
            list_insert(head, timer);
        }
    }
}

void timer_wheel_advance(struct timer_wheel *wheel, uint64_t now_ms,
                         timer_expired_fn *expired, void *context)
{
    uint64_t now_tick = tick_of(now_ms);
    if (wheel->armed == 0) {
        wheel->processed_tick = now_tick;
        return;
    }
    uint64_t first = wheel->processed_tick + 1;
    /* After a long sleep, one turn of the wheel visits every slot once. */
    if (now_tick >= first + TIMER_WHEEL_SLOTS)
        first = now_tick - TIMER_WHEEL_SLOTS + 1;
    for (uint64_t tick = first; tick <= now_tick; tick++) {
        wheel->processed_tick = tick;
        fire_slot(wheel, &wheel->slots[tick & (TIMER_WHEEL_SLOTS - 1)], now_ms, expired, context);
    }
    wheel->processed_tick = now_tick;
}

int timer_wheel_wait_ms(const struct timer_wheel *wheel, uint64_t now_ms, int limit_ms)
{
    if (wheel->armed == 0)
        return limit_ms;
    /* Sleep to the first non-empty slot: an idle worker with thousands of
     * idle-timeout timers minutes away must not wake every tick. The scan
     * stops at the limit: with timers minutes away it would otherwise walk
     * the whole wheel before every sleep. */
    uint64_t tick = wheel->processed_tick + 1;
    uint64_t last_tick = limit_ms < 0 ? UINT64_MAX : tick_of(now_ms + (uint64_t)limit_ms);
    for (size_t scanned = 1; scanned < TIMER_WHEEL_SLOTS && tick < last_tick; scanned++, tick++) {
        const struct timer *head = &wheel->slots[tick & (TIMER_WHEEL_SLOTS - 1)];
        if (head->next != head)
            break;
    }
    uint64_t wake_ms = tick * TIMER_WHEEL_TICK_MS;
    int wait = wake_ms > now_ms ? (int)(wake_ms - now_ms) : 0;
    return limit_ms >= 0 && wait > limit_ms ? limit_ms : wait;
}
