/*
 * listener.h - listening sockets and multishot accept.
 *
 * Each worker owns one SO_REUSEPORT socket per configured address, so the
 * kernel spreads new connections across workers with no shared accept
 * queue. Accept errors caused by fd or memory exhaustion pause accepting
 * briefly instead of spinning; at max_connections new sockets are closed at
 * once.
 */
#ifndef SNISPLICE_IO_LISTENER_H
#define SNISPLICE_IO_LISTENER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/address.h"
#include "../core/snapshot.h"
#include "worker.h"

#define LISTENER_BACKLOG 4096
#define LISTENER_PAUSE_MS 100
/* A shortage of fds is over, and the next is warned about again, after this
 * long without one. */
#define LISTENER_SHORTAGE_OVER_MS 1000

/* Main thread: a bound, listening, non-blocking socket with `listener`'s
 * options (listener_apply_options). -1 with a message in error on failure. */
int listener_open(const struct address *address, const struct snapshot_listener *listener, char *error,
                  size_t error_size);

/* Whether some socket already listens on address. The workers' sockets
 * set SO_REUSEPORT, which would let them join the group of any socket of
 * the same user there (a second snisplice, another program) and share
 * its connections without a word: nginx refuses such an address, and so
 * does snisplice, by this probe bound without SO_REUSEPORT. */
bool listener_address_taken(const struct address *address);

/* Every option a listening socket of `address` carries for `listener`
 * (the relay's, the unsent limit where loopback, and
 * listener_apply_config_options'): listener_open's, and again on a socket
 * inherited at an upgrade. */
void listener_apply_options(int fd, const struct address *address, const struct snapshot_listener *listener);
/* The options `listener`'s configuration decides, which a reload may
 * change on a socket it keeps: TCP_DEFER_ACCEPT where routed by name
 * (the client speaks first), and the congestion control of accepted
 * sockets (core/congestion.h; the system's default put back where a
 * former configuration set another). A worker applies them to its
 * sockets at every snapshot it adopts. */
void listener_apply_config_options(int fd, const struct address *address, const struct snapshot_listener *listener);
/* Steer each new connection of fd's SO_REUSEPORT group to the worker
 * pinned on the CPU that received it (worker w runs on worker_cpus[w] and
 * owns the group's w-th socket). False if the kernel refused. */
bool listener_steer_by_cpu(int fd, const int *worker_cpus, unsigned worker_count);
/* Whether steering by CPU can keep `cpus` workers busy: every network
 * device under sysfs_net ("/sys/class/net") that is up has that many
 * receive queues or RPS set. A single-queue NIC without RPS receives every
 * SYN on one CPU, and steering would hand all connections to one worker. */
bool listener_nics_spread_over(const char *sysfs_net, unsigned cpus);

void listener_arm_accept(struct worker *worker, struct listener *listener);
void listener_on_accept(struct worker *worker, struct listener *listener, int result,
                        uint32_t flags);
/* Re-arm listeners after an accept pause, if it is over. */
void listener_resume(struct worker *worker);

/* True for the errors that mean the process is out of fds or memory. */
bool listener_is_resource_exhaustion(int error);

/* Out of fds at `step` (accept, or the upstream socket of a connection
 * just accepted): stop every listener of this worker for LISTENER_PAUSE_MS.
 * Clients wait in the backlog instead of being accepted and closed. */
void listener_pause_accepting(struct worker *worker, const char *step, int error);
/* Stop accepting for good (drain): cancel accepts, close the sockets. */
void listener_close_all(struct worker *worker);
/* A newly adopted snapshot: take the sockets the main thread handed over,
 * give every socket its listener index in this snapshot, and close those
 * whose address it no longer lists. */
void listener_match_snapshot(struct worker *worker, const struct snapshot *snapshot);
/* Worker gone: close and free every listener, whatever its state. */
void listener_free_all(struct worker *worker);

#endif
