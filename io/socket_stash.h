/*
 * socket_stash.h - upstream sockets made ahead through the worker's ring.
 *
 * A connection's upstream TCP socket is taken from a small per-family
 * stash instead of a socket(2) call; the one taken is replaced by an
 * IORING_OP_SOCKET queued in the submission that carries the connection's
 * connect, where it completes inline: one system call less per connection
 * (bench/NOTES.md, "the socket stash"). Owned by one worker; never shared.
 */
#ifndef SNISPLICE_IO_SOCKET_STASH_H
#define SNISPLICE_IO_SOCKET_STASH_H

#include <stdint.h>

#define SOCKET_STASH_MAX 64

/* The sockets of one address family (AF_INET or AF_INET6), ready to
 * connect: SOCK_STREAM, non-blocking, close-on-exec, no option set. A
 * completion's owner with RING_TAG_WAKEUP: aligned like every owner. */
struct socket_stash {
    int family;
    uint8_t capacity;        /* at most SOCKET_STASH_MAX; 0: no stash */
    uint8_t ready;           /* fds[0..ready) */
    uint8_t queued;          /* IORING_OP_SOCKET in flight */
    uint64_t refill_from_ms; /* after a refusal (EMFILE...): no refill before */
    int fds[SOCKET_STASH_MAX];
} __attribute__((aligned(8)));

struct worker;

/* fd_limit: the process's RLIMIT_NOFILE; worker_count: the workers that
 * share it. The stash takes a small share of it (socket_stash.c). */
void socket_stash_init(struct socket_stash *stash, int family, uint64_t fd_limit, unsigned worker_count);
/* Queue sockets for what the stash lacks (none for a second after a
 * refusal); they are made in the worker's next submission. */
void socket_stash_fill(struct worker *worker, struct socket_stash *stash);
/* A stashed socket, or -1 when the stash is empty; its replacement is
 * queued in the worker's next submission. */
int socket_stash_take(struct worker *worker, struct socket_stash *stash);
/* The completion of a queued IORING_OP_SOCKET: result is the fd or -errno. */
void socket_stash_on_made(struct worker *worker, struct socket_stash *stash, int result);
/* Close what is stashed (worker exit, once no IORING_OP_SOCKET is in flight). */
void socket_stash_close(struct socket_stash *stash);

#endif
