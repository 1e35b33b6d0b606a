/*
 * buffer_pool.c - an intrusive free list: an idle buffer's first bytes hold
 * the link to the next idle buffer.
 */
#include "buffer_pool.h"

#include <stdlib.h>

struct buffer_pool_entry {
    struct buffer_pool_entry *next;
};

void buffer_pool_init(struct buffer_pool *pool, size_t buffer_size, size_t keep_max)
{
    pool->idle = NULL;
    pool->idle_count = 0;
    pool->keep_max = keep_max;
    pool->buffer_size = buffer_size;
}

static void free_idle(struct buffer_pool *pool)
{
    while (pool->idle) {
        struct buffer_pool_entry *next = pool->idle->next;
        free(pool->idle);
        pool->idle = next;
    }
    pool->idle_count = 0;
}

void buffer_pool_resize(struct buffer_pool *pool, size_t buffer_size)
{
    if (buffer_size == pool->buffer_size)
        return;
    free_idle(pool);
    pool->buffer_size = buffer_size;
}

uint8_t *buffer_pool_get(struct buffer_pool *pool)
{
    if (!pool->idle)
        return malloc(pool->buffer_size);
    struct buffer_pool_entry *entry = pool->idle;
    pool->idle = entry->next;
    pool->idle_count--;
    return (uint8_t *)entry;
}

void buffer_pool_put(struct buffer_pool *pool, uint8_t *buffer, size_t buffer_size)
{
    if (buffer_size != pool->buffer_size || pool->idle_count >= pool->keep_max) {
        free(buffer);
        return;
    }
    struct buffer_pool_entry *entry = (struct buffer_pool_entry *)buffer;
    entry->next = pool->idle;
    pool->idle = entry;
    pool->idle_count++;
}

void buffer_pool_destroy(struct buffer_pool *pool)
{
    free_idle(pool);
}
