/*
 * pipe_pool.h - per-worker pool of empty pipes for splice relaying.
 *
 * A connection borrows a pipe only while bytes are in flight and gives it
 * back empty, so an idle connection holds no pipe. A pipe that may still hold
 * bytes is never returned: it is destroyed. The pool keeps at most `keep_max`
 * idle pipes; beyond that returned pipes are closed.
 */
#ifndef SNISPLICE_IO_PIPE_POOL_H
#define SNISPLICE_IO_PIPE_POOL_H

#include <stdbool.h>
#include <stddef.h>

struct pipe_pair {
    int read_fd;
    int write_fd;
};

struct pipe_pool {
    struct pipe_pair *idle;
    size_t idle_count;
    size_t keep_max;
    size_t in_use;
};

bool pipe_pool_init(struct pipe_pool *pool, size_t keep_max);
/* False when no pipe can be made (EMFILE/ENFILE): errno is set. */
bool pipe_pool_get(struct pipe_pool *pool, struct pipe_pair *pipe);
/* The pipe must be empty. */
void pipe_pool_put(struct pipe_pool *pool, struct pipe_pair pipe);
/* The pipe may hold bytes: close it. */
void pipe_pool_discard(struct pipe_pool *pool, struct pipe_pair pipe);
void pipe_pool_destroy(struct pipe_pool *pool);

#endif
