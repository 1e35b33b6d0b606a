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
    pool->grow_retry_ms = 0;
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
        /* Smaller than 64 KiB when the user is over fs.pipe-user-pages-soft. */
        int capacity = fcntl(fds[1], F_GETPIPE_SZ);
        pipe->capacity = capacity > 0 ? (uint32_t)capacity : 4096;
    }
    pool->in_use++;
    return true;
}

bool pipe_pool_grow(struct pipe_pool *pool, struct pipe_pair *pipe, uint64_t now_ms)
{
    if (pipe->capacity >= PIPE_POOL_BULK_CAPACITY || now_ms < pool->grow_retry_ms)
        return false;
    int capacity = fcntl(pipe->write_fd, F_SETPIPE_SZ, PIPE_POOL_BULK_CAPACITY);
    if (capacity < 0) {
        pool->grow_retry_ms = now_ms + 1000;
        return false;
    }
    pipe->capacity = (uint32_t)capacity;
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

size_t pipe_pool_release_idle(struct pipe_pool *pool)
{
    size_t released = pool->idle_count;
    for (size_t i = 0; i < released; i++)
        close_pipe(pool->idle[i]);
    pool->idle_count = 0;
    return released;
}

void pipe_pool_destroy(struct pipe_pool *pool)
{
    pipe_pool_release_idle(pool);
    free(pool->idle);
    pool->idle = NULL;
    pool->idle_count = 0;
}
