/*
 * small_ring.c - an LD_PRELOAD library that gives snisplice's io_uring
 * rings a small submission queue, so that a test meets a full queue every
 * few operations instead of once per thousands (test_wakeups.c: no chain
 * of linked operations may be cut where the queue fills).
 *
 *   SNISPLICE_RING_ENTRIES  the submission queue's size for every ring
 *                           asked for more (a power of two, at least 8)
 *
 * It stands in front of io_uring_queue_init_params only; the completion
 * queue keeps the size asked for. Built without sanitizers; never linked
 * into a test binary.
 */
#include <dlfcn.h>
#include <liburing.h>
#include <stdlib.h>

int io_uring_queue_init_params(unsigned entries, struct io_uring *ring, struct io_uring_params *params)
{
    static int (*real)(unsigned, struct io_uring *, struct io_uring_params *);
    if (!real)
        real = (int (*)(unsigned, struct io_uring *, struct io_uring_params *))dlsym(RTLD_NEXT,
                                                                                     "io_uring_queue_init_params");
    const char *wanted = getenv("SNISPLICE_RING_ENTRIES");
    unsigned small = wanted ? (unsigned)strtoul(wanted, NULL, 10) : 0;
    if (small >= 8 && small < entries)
        entries = small;
    return real(entries, ring, params);
}
