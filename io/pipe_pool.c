/*
 * pipe_pool.c - a stack of idle pipes, created on demand with pipe2().
 * Both ends are non-blocking so a splice on a full or empty pipe returns
 * EAGAIN instead of sleeping the worker.
 */
#include "pipe_pool.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

bool pipe_pool_init(struct pipe_pool *pool, size_t keep_max)
{
    pool->idle = calloc(keep_max ? keep_max : 1, sizeof *pool->idle);
    pool->idle_count = 0;
    pool->keep_max = keep_max;
    pool->in_use = 0;
    return pool->idle != NULL;
}

bool pipe_pool_get(struct pipe_pool *pool, struct pipe_pair *pipe)
{
    if (pool->idle_count > 0) {
        *pipe = pool->idle[--pool->idle_count];
    } else {
        int fds[2];
        if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
            return false;
        pipe->read_fd = fds[0];
        pipe->write_fd = fds[1];
    }
    pool->in_use++;
    return true;
}

static void close_pipe(struct pipe_pair pipe)
{
    close(pipe.read_fd);
    close(pipe.write_fd);
}

void pipe_pool_put(struct pipe_pool *pool, struct pipe_pair pipe)
{
    pool->in_use--;
    if (pool->idle_count < pool->keep_max)
        pool->idle[pool->idle_count++] = pipe;
    else
        close_pipe(pipe);
}

void pipe_pool_discard(struct pipe_pool *pool, struct pipe_pair pipe)
{
    pool->in_use--;
    close_pipe(pipe);
}

void pipe_pool_destroy(struct pipe_pool *pool)
{
    for (size_t i = 0; i < pool->idle_count; i++)
        close_pipe(pool->idle[i]);
    free(pool->idle);
    pool->idle = NULL;
    pool->idle_count = 0;
}
