/*
 * ring_support.h - whether this process may use io_uring at all, and what
 * to tell the administrator when it may not.
 */
#ifndef SNISPLICE_IO_RING_SUPPORT_H
#define SNISPLICE_IO_RING_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

/* What an io_uring set-up error means here, for a log line: the reason
 * and where to change it (a sysctl, a container's seccomp profile). */
const char *ring_support_explain(int error);

/* Make and free a small ring: false, with the reason in problem, if this
 * process cannot have one. Called before any address is bound. */
bool ring_support_check(char *problem, size_t problem_size);

#endif
