/*
 * pipe_pool.h - per-worker pool of empty pipes for splice relaying.
 *
 * A connection borrows a pipe only while bytes are in flight and gives it
 * back empty, so an idle connection holds no pipe. A pipe that may still hold
 * bytes is never returned: it is destroyed. The pool keeps at most `keep_max`
 * idle pipes; beyond that returned pipes are closed.
 *
 * Pipes start at the kernel's default capacity (64 KiB). A direction that
 * fills its pipe in one splice is a bulk transfer: pipe_pool_grow() raises
 * that pipe to 1 MiB, which cuts splices (and so TCP sends) per GiB by 16x.
 * Grown pipes go back to the pool as they are; an empty pipe holds no pages,
 * only its slot array. Unprivileged users are limited by
 * fs.pipe-user-pages-soft: when growing fails, the pool stops trying for a
 * second and relaying goes on at the smaller size.
 */
#ifndef SNISPLICE_IO_PIPE_POOL_H
#define SNISPLICE_IO_PIPE_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include <stdint.h>

/* The capacity bulk directions grow their pipe to (fs.pipe-max-size). */
#define PIPE_POOL_BULK_CAPACITY (1024 * 1024)

struct pipe_pair {
    int read_fd;
    int write_fd;
    uint32_t capacity; /* bytes the pipe can hold */
};

struct pipe_pool {
    struct pipe_pair *idle;
    size_t idle_count;
    size_t keep_max;
    size_t in_use;
    uint64_t grow_retry_ms; /* no growing before this time after a failure */
};

bool pipe_pool_init(struct pipe_pool *pool, size_t keep_max);
/* False when no pipe can be made (EMFILE/ENFILE): errno is set. */
bool pipe_pool_get(struct pipe_pool *pool, struct pipe_pair *pipe);
/* Raise the pipe to PIPE_POOL_BULK_CAPACITY; false if it is already that
 * big or the kernel refused (then no retry before now_ms + 1 s). */
bool pipe_pool_grow(struct pipe_pool *pool, struct pipe_pair *pipe, uint64_t now_ms);
/* The pipe must be empty. */
void pipe_pool_put(struct pipe_pool *pool, struct pipe_pair pipe);
/* The pipe may hold bytes: close it. */
void pipe_pool_discard(struct pipe_pool *pool, struct pipe_pair pipe);
/* Close every idle pipe: they are only a cache, and out of fds a socket
 * is worth more. Returns how many pipes were closed. */
size_t pipe_pool_release_idle(struct pipe_pool *pool);
void pipe_pool_destroy(struct pipe_pool *pool);

#endif
