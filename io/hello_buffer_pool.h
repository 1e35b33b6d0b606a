/*
 * hello_buffer_pool.h - per-worker buffers for ClientHellos on their way to
 * an upstream (io/hello_forward.c): pages of one mapping, handed out lowest
 * first, whose pages beyond the first few go back to the kernel after a
 * burst. Never more than HELLO_BUFFER_POOL_OUT_MAX out at once.
 */
#ifndef SNISPLICE_IO_HELLO_BUFFER_POOL_H
#define SNISPLICE_IO_HELLO_BUFFER_POOL_H

#include <stdbool.h>
#include <stdint.h>

/* One page: a buffer's memory can be given back on its own. */
#define HELLO_BUFFER_SIZE 4096
/* Buffers out at once per worker; past this, hellos go through the relay,
 * so a flood of connects to a slow upstream cannot grow memory. */
#define HELLO_BUFFER_POOL_OUT_MAX 1024
/* Buffers whose pages stay resident when free; the pages of the others go
 * back to the kernel once no load has needed them for a while. */
#define HELLO_BUFFER_POOL_KEPT 32
/* While pages beyond the kept ones are resident, every this often the
 * pool keeps as many as the most it had out since the last look. */
#define HELLO_BUFFER_POOL_TRIM_MS 100

/* Handed out lowest first, so the buffers below `resident` have all been
 * used (their pages are resident) and the ones above it have not, or were
 * given back. */
struct hello_buffer_pool {
    uint8_t *pages;      /* HELLO_BUFFER_POOL_OUT_MAX buffers; NULL until first used */
    uint64_t out_map[HELLO_BUFFER_POOL_OUT_MAX / 64]; /* bit set: held by a connection */
    uint32_t out;        /* held by connections */
    uint32_t resident;   /* buffers [0, resident) have resident pages */
    uint32_t peak_out;   /* most out at once since the last trim */
    uint64_t trim_at_ms; /* 0: nothing beyond the kept buffers is resident */
    bool unavailable;    /* the mapping failed: no buffer will be handed out */
};

/* A buffer of HELLO_BUFFER_SIZE bytes, or NULL when HELLO_BUFFER_POOL_OUT_MAX
 * are out (or the mapping cannot be made). */
uint8_t *hello_buffer_pool_get(struct hello_buffer_pool *pool, uint64_t now_ms);
void hello_buffer_pool_put(struct hello_buffer_pool *pool, uint8_t *buffer);
/* Give back the pages of free buffers beyond the kept ones when due (once
 * per HELLO_BUFFER_POOL_TRIM_MS while there are any). */
void hello_buffer_pool_trim(struct hello_buffer_pool *pool, uint64_t now_ms);
/* Free buffers whose pages are resident (for the metrics). */
static inline uint32_t hello_buffer_pool_idle(const struct hello_buffer_pool *pool)
{
    return pool->resident - pool->out;
}
void hello_buffer_pool_destroy(struct hello_buffer_pool *pool);

#endif
