/*
 * upgrade.h - replacing the running binary without refusing a connection
 * (SIGUSR2), both ends of it.
 *
 * The old process starts the executable it was started from (its path
 * read at start, before a package upgrade could replace the file) with the
 * same arguments, passing its listening sockets as inherited descriptors
 * named in the environment, and the write end of a pipe on which the new
 * process says "ready" once every worker accepts. The sockets are the same
 * kernel objects, so nothing queued on them is lost; the old one then stops
 * accepting (closing its copies, never shutting a socket down) and drains.
 *
 * Owns: the old side's child (until it is ready or reaped) and its pipe;
 * the new side's inherited descriptors until main takes them. Never
 * touches a worker: main.c decides what each socket becomes.
 */
#ifndef SNISPLICE_IO_UPGRADE_H
#define SNISPLICE_IO_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../core/address.h"

/* How long the old process waits for the new one to say it is ready
 * (config loaded, host names resolved, every worker accepting) before it
 * gives up, kills it and keeps serving. */
#define UPGRADE_READY_TIMEOUT_MS 30000

/* ---- old side ---- */

/* At start, before anything can replace the file: this executable's path
 * and the arguments to start it with again. False (logged) if unreadable. */
bool upgrade_remember_self(char **argv);

/* One listening socket to hand over: worker w's socket of an address. */
struct upgrade_socket {
    int fd;
    unsigned worker;
};

struct upgrade {
    pid_t child;       /* 0: no upgrade in progress */
    int ready_fd;      /* read end of the ready pipe */
    uint64_t deadline_ms;
};

/* Start the new process with sockets[0..count) and stats_fd (-1: none)
 * inherited. The caller's descriptors stay its own. False (logged, nothing
 * left open or running) if it could not be started. */
bool upgrade_start(struct upgrade *upgrade, const struct upgrade_socket *sockets, size_t count, int stats_fd);

enum upgrade_state {
    UPGRADE_WAITING,   /* still starting */
    UPGRADE_READY,     /* every worker of the new process accepts */
    UPGRADE_FAILED,    /* it exited or timed out: reaped, logged why */
};

/* Non-blocking: what became of the new process. After READY or FAILED
 * upgrade->child is 0 and the pipe is closed. */
enum upgrade_state upgrade_poll(struct upgrade *upgrade);

/* The old process stops during the wait: the new one, not ready yet, is
 * killed and reaped rather than left half-started (logged); one whose
 * ready byte came since the last upgrade_poll is sent SIGTERM instead,
 * so that it drains what it may have accepted. */
void upgrade_abandon(struct upgrade *upgrade);

/* ---- new side ---- */

struct upgrade_inherited_socket {
    int fd;            /* -1 once taken or closed */
    unsigned worker;
    struct address address;
};

struct upgrade_inherited {
    struct upgrade_inherited_socket *sockets;
    size_t count;
    int stats_fd;      /* -1: none */
    struct address stats_address;
    int ready_fd;      /* -1: not started by an upgrade */
};

/* Read (and remove) the environment an upgrading process left: false with
 * the reason in error when it names descriptors that are not listening
 * TCP sockets or is malformed. An empty result when the process was not
 * started by an upgrade. */
bool upgrade_inherited_take(struct upgrade_inherited *inherited, char *error, size_t error_size);

/* The descriptors inherited for address, in worker order, into fds (room
 * for `max`); how many there are (possibly more than max: not stored).
 * Each one returned is the caller's: marked taken here. When they do not
 * name each worker below their count once, nothing is taken and the
 * result is UPGRADE_CLAIM_NOT_ONE_PER_WORKER. */
#define UPGRADE_CLAIM_NOT_ONE_PER_WORKER ((size_t)-1)
size_t upgrade_inherited_claim(struct upgrade_inherited *inherited, const struct address *address, int *fds,
                               size_t max);

/* How many inherited sockets there are for address. */
size_t upgrade_inherited_count(const struct upgrade_inherited *inherited, const struct address *address);

/* Every worker accepts: tell the old process, then close what is left
 * unclaimed (addresses the new config no longer names). */
void upgrade_inherited_ready(struct upgrade_inherited *inherited);

/* Close everything still held and free the list (any path). */
void upgrade_inherited_free(struct upgrade_inherited *inherited);

#endif
