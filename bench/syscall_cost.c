/*
 * syscall_cost.c - how long one trivial system call takes on this machine.
 *
 * Printed as a machine fact by bench/run.sh: the proxies' ratios depend on
 * it. Where a system call costs ~1 us (a VM whose kernel entry traps into
 * the hypervisor), a proxy that batches its calls through io_uring saves
 * much more than where one costs ~0.1 us (bench/NOTES.md, 2026-11-27).
 * Median of 7 rounds of 200 000 getppid calls, in nanoseconds per call.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { ROUNDS = 7, CALLS = 200000 };

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    double per_call[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        double start = now_ns();
        for (int i = 0; i < CALLS; i++)
            syscall(SYS_getppid); /* the raw call: no libc wrapper answers from a cache */
        per_call[round] = (now_ns() - start) / CALLS;
    }
    qsort(per_call, ROUNDS, sizeof per_call[0], compare_doubles);
    printf("%.0f\n", per_call[ROUNDS / 2]);
    return 0;
}
