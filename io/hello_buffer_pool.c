/*
 * hello_buffer_pool.c - see hello_buffer_pool.h. One mapping of address
 * space per worker; a page becomes resident when a hello is first received
 * into it and goes back with madvise(MADV_DONTNEED) when a look finds it
 * beyond what the load needs (malloc would keep a burst's buffers in the
 * heap, and so in the RSS, for good: the idle benchmark's 2 000
 * connections at once measured 2.3 KiB per connection that way). Touched
 * by the owning worker only; a trim never gives back a page that is out.
 */
#include "hello_buffer_pool.h"

#include <stddef.h>
#include <sys/mman.h>

#define POOL_BYTES ((size_t)HELLO_BUFFER_POOL_OUT_MAX * HELLO_BUFFER_SIZE)

/* Address space only: a page becomes resident when a hello is first
 * received into it. */
static bool pool_map(struct hello_buffer_pool *pool)
{
    if (pool->pages)
        return true;
    if (pool->unavailable)
        return false;
    void *pages = mmap(NULL, POOL_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (pages == MAP_FAILED) {
        pool->unavailable = true;
        return false;
    }
    pool->pages = pages;
    return true;
}

uint8_t *hello_buffer_pool_get(struct hello_buffer_pool *pool, uint64_t now_ms)
{
    if (pool->out >= HELLO_BUFFER_POOL_OUT_MAX || !pool_map(pool))
        return NULL;
    for (uint32_t word = 0; word < HELLO_BUFFER_POOL_OUT_MAX / 64; word++) {
        if (pool->out_map[word] == UINT64_MAX)
            continue;
        uint32_t bit = (uint32_t)__builtin_ctzll(~pool->out_map[word]);
        uint32_t slot = word * 64 + bit;
        pool->out_map[word] |= 1ULL << bit;
        pool->out++;
        if (pool->out > pool->peak_out)
            pool->peak_out = pool->out;
        if (slot >= pool->resident)
            pool->resident = slot + 1;
        if (slot >= HELLO_BUFFER_POOL_KEPT && pool->trim_at_ms == 0)
            pool->trim_at_ms = now_ms + HELLO_BUFFER_POOL_TRIM_MS;
        return pool->pages + (size_t)slot * HELLO_BUFFER_SIZE;
    }
    return NULL;
}

void hello_buffer_pool_put(struct hello_buffer_pool *pool, uint8_t *buffer)
{
    uint32_t slot = (uint32_t)((size_t)(buffer - pool->pages) / HELLO_BUFFER_SIZE);
    pool->out_map[slot / 64] &= ~(1ULL << (slot % 64));
    pool->out--;
}

static uint32_t highest_out_plus_one(const struct hello_buffer_pool *pool)
{
    for (uint32_t word = HELLO_BUFFER_POOL_OUT_MAX / 64; word-- > 0;) {
        if (pool->out_map[word])
            return word * 64 + 64 - (uint32_t)__builtin_clzll(pool->out_map[word]);
    }
    return 0;
}

/* Past the kept ones, buffers are used in bursts: their pages go back once
 * a burst is over, or it would stay in the worker's RSS for good. Not at
 * every release, and not down to what is out at the moment of a look: a
 * load that keeps hundreds out in waves (c=500) would then fault fresh
 * pages in all the time (measured: +10% CPU per connection releasing at
 * every release, +3% trimming to the moment's need every 100 ms). So a
 * look keeps as many as the most out since the last one: a burst's pages
 * go within two looks of its end. */
void hello_buffer_pool_trim(struct hello_buffer_pool *pool, uint64_t now_ms)
{
    if (pool->trim_at_ms == 0 || now_ms < pool->trim_at_ms)
        return;
    uint32_t keep = highest_out_plus_one(pool);
    if (keep < pool->peak_out)
        keep = pool->peak_out;
    if (keep < HELLO_BUFFER_POOL_KEPT)
        keep = HELLO_BUFFER_POOL_KEPT;
    pool->peak_out = pool->out;
    if (pool->resident > keep) {
        madvise(pool->pages + (size_t)keep * HELLO_BUFFER_SIZE,
                (size_t)(pool->resident - keep) * HELLO_BUFFER_SIZE, MADV_DONTNEED);
        pool->resident = keep;
    }
    pool->trim_at_ms = pool->resident > HELLO_BUFFER_POOL_KEPT ? now_ms + HELLO_BUFFER_POOL_TRIM_MS : 0;
}

void hello_buffer_pool_destroy(struct hello_buffer_pool *pool)
{
    if (pool->pages)
        munmap(pool->pages, POOL_BYTES);
    pool->pages = NULL;
}
