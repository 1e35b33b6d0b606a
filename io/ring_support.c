/*
 * ring_support.c - whether this process may use io_uring at all.
 *
 * snisplice has no path without io_uring, and a machine can refuse it
 * while the kernel has it: the sysctl kernel.io_uring_disabled (Linux
 * 6.6+; 1 leaves it to root and one group, 2 to nobody), and the default
 * seccomp profiles of Docker and containerd, which return EPERM for
 * io_uring_setup. The kernel's word for all of those is EPERM, which on
 * its own reads like a file permission problem, so start-up and -t probe
 * once, before anything is bound, and say where to look. Never used on
 * the data path.
 */
#include "ring_support.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <string.h>

const char *ring_support_explain(int error)
{
    switch (error) {
    case EPERM:
        return "io_uring is refused to this process: the sysctl kernel.io_uring_disabled is set (1: only root "
               "and the group kernel.io_uring_group may use it; 2: nobody), or a seccomp profile refuses it "
               "(Docker's and containerd's default profiles do: run the container with a profile that allows "
               "io_uring_setup, io_uring_enter and io_uring_register)";
    case ENOSYS:
        return "this kernel has no io_uring (built without CONFIG_IO_URING)";
    default:
        return strerror(error);
    }
}

bool ring_support_check(char *problem, size_t problem_size)
{
    struct io_uring ring;
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    int result = io_uring_queue_init_params(2, &ring, &params);
    if (result == 0) {
        io_uring_queue_exit(&ring);
        return true;
    }
    snprintf(problem, problem_size, "cannot use io_uring: %s", ring_support_explain(-result));
    return false;
}
