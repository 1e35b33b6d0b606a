/*
 * buffer_pool.h - per-worker free list of ClientHello preread buffers.
 *
 * A connection holds a buffer only while it has received hello bytes that
 * are not yet forwarded; a client that has sent nothing holds none. All
 * buffers of a pool have one size; a pool resized on reload frees its idle
 * buffers, and buffers of the old size are freed when they come back.
 */
#ifndef SNISPLICE_IO_BUFFER_POOL_H
#define SNISPLICE_IO_BUFFER_POOL_H

#include <stddef.h>
#include <stdint.h>

struct buffer_pool_entry;

struct buffer_pool {
    struct buffer_pool_entry *idle;
    size_t idle_count;
    size_t keep_max;
    size_t buffer_size;
};

void buffer_pool_init(struct buffer_pool *pool, size_t buffer_size, size_t keep_max);
void buffer_pool_resize(struct buffer_pool *pool, size_t buffer_size);
/* NULL on ENOMEM. The buffer has pool->buffer_size bytes at the time of the call. */
uint8_t *buffer_pool_get(struct buffer_pool *pool);
void buffer_pool_put(struct buffer_pool *pool, uint8_t *buffer, size_t buffer_size);
void buffer_pool_destroy(struct buffer_pool *pool);

#endif
