/*
 * old_kernel.c - an LD_PRELOAD library that makes io_uring look like an
 * older kernel's, for the tests of what snisplice does there
 * (test_kernel_features.c): its fallbacks, or its start-up error.
 *
 *   SNISPLICE_OLD_KERNEL  comma-separated, what the kernel lacks:
 *     no_task_run_hints   SINGLE_ISSUER/DEFER_TASKRUN (before 6.1): a ring
 *                         asked for them is refused with EINVAL
 *     no_min_timeout      IORING_FEAT_MIN_TIMEOUT (before 6.12)
 *     no_cqe_skip         IORING_FEAT_CQE_SKIP (before 5.17)
 *     no_socket_op        IORING_OP_SOCKET in the opcode probe (before 5.19)
 *     no_submit_all       IORING_SETUP_SUBMIT_ALL (before 5.18): a ring
 *                         asked for it is refused with EINVAL
 *
 * It stands in front of two liburing calls (io_uring_queue_init_params,
 * io_uring_get_probe_ring) and edits what they report; the ring itself is
 * this kernel's. Built without sanitizers; never linked into a test binary.
 */
#include <dlfcn.h>
#include <errno.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif

static bool lacks(const char *feature)
{
    const char *list = getenv("SNISPLICE_OLD_KERNEL");
    size_t length = strlen(feature);
    for (const char *at = list; at && (at = strstr(at, feature)) != NULL; at += length) {
        bool starts = at == list || at[-1] == ',';
        bool ends = at[length] == '\0' || at[length] == ',';
        if (starts && ends)
            return true;
    }
    return false;
}

int io_uring_queue_init_params(unsigned entries, struct io_uring *ring, struct io_uring_params *params)
{
    static int (*real)(unsigned, struct io_uring *, struct io_uring_params *);
    if (!real)
        real = (int (*)(unsigned, struct io_uring *, struct io_uring_params *))dlsym(RTLD_NEXT,
                                                                                     "io_uring_queue_init_params");
    if (lacks("no_task_run_hints") &&
        (params->flags & (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN)))
        return -EINVAL;
    if (lacks("no_submit_all") && (params->flags & IORING_SETUP_SUBMIT_ALL))
        return -EINVAL;
    int result = real(entries, ring, params);
    if (result == 0 && lacks("no_min_timeout"))
        params->features &= ~IORING_FEAT_MIN_TIMEOUT;
    if (result == 0 && lacks("no_cqe_skip"))
        params->features &= ~IORING_FEAT_CQE_SKIP;
    return result;
}

struct io_uring_probe *io_uring_get_probe_ring(struct io_uring *ring)
{
    static struct io_uring_probe *(*real)(struct io_uring *);
    if (!real)
        real = (struct io_uring_probe * (*)(struct io_uring *)) dlsym(RTLD_NEXT, "io_uring_get_probe_ring");
    struct io_uring_probe *probe = real(ring);
    if (probe && lacks("no_socket_op") && probe->last_op >= IORING_OP_SOCKET)
        probe->ops[IORING_OP_SOCKET].flags &= (__u16)~IO_URING_OP_SUPPORTED;
    return probe;
}
