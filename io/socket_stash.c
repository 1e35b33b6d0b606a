/*
 * socket_stash.c - upstream sockets made ahead through the worker's ring
 * (see socket_stash.h).
 *
 * Why: on this machine a system call costs about 1.2 µs of entry and exit
 * alone, and socket(2) was one of the eight a short connection made.
 * IORING_OP_SOCKET never waits, so it completes inside the io_uring_enter
 * that submits it, which the connection's connect needs anyway: the
 * socket's own work remains, its system call goes. The worker counts the
 * completion as inline (worker_expect_inline_completion), so a wait does
 * not take it for an event. Measured with bench/ab.sh: CPU per connection
 * 0.974 at c=1, 0.984 at c=50, 0.958 at c=500; at c=500, where a loop
 * iteration connects dozens, a stash of 64 did better than one of 32 or
 * 8 (which gained nothing there).
 *
 * Descriptors: a stash holds at most 1/256 of the fd limit divided among
 * the workers (64 at most: 64 per family for one worker under 20 000), so
 * under a small limit it is small or off (a limit of 40 makes none). Out
 * of fds, an IORING_OP_SOCKET fails like socket(2): the stash stops
 * refilling for a second, and the caller's socket(2) path meets the
 * shortage as before (io/connect.c). What is stashed is never wasted: the
 * next connections take it.
 */
#include "socket_stash.h"

#include <sys/socket.h>
#include <unistd.h>

#include "worker.h"

#define REFILL_PAUSE_MS 1000
#define FD_LIMIT_SHARE 256

void socket_stash_init(struct socket_stash *stash, int family, uint64_t fd_limit, unsigned worker_count)
{
    uint64_t capacity = fd_limit / FD_LIMIT_SHARE / (worker_count > 0 ? worker_count : 1);
    stash->family = family;
    stash->capacity = (uint8_t)(capacity < SOCKET_STASH_MAX ? capacity : SOCKET_STASH_MAX);
    stash->ready = 0;
    stash->queued = 0;
    stash->refill_from_ms = 0;
}

void socket_stash_fill(struct worker *worker, struct socket_stash *stash)
{
    if (worker->now_ms < stash->refill_from_ms)
        return;
    while (stash->ready + stash->queued < stash->capacity) {
        struct io_uring_sqe *sqe = worker_sqe(worker);
        io_uring_prep_socket(sqe, stash->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, 0);
        io_uring_sqe_set_data64(sqe, ring_tag_pack(stash, RING_TAG_WAKEUP));
        worker_expect_inline_completion(worker);
        stash->queued++;
    }
}

int socket_stash_take(struct worker *worker, struct socket_stash *stash)
{
    int fd = stash->ready > 0 ? stash->fds[--stash->ready] : -1;
    socket_stash_fill(worker, stash);
    return fd;
}

void socket_stash_on_made(struct worker *worker, struct socket_stash *stash, int result)
{
    stash->queued--;
    if (result < 0) {
        stash->refill_from_ms = worker->now_ms + REFILL_PAUSE_MS;
        return;
    }
    stash->fds[stash->ready++] = result;
}

void socket_stash_close(struct socket_stash *stash)
{
    while (stash->ready > 0)
        close(stash->fds[--stash->ready]);
}
