/*
 * signal_at_open.c - an LD_PRELOAD library for one integration test
 * (signals/signals_during_start_up_wait_for_the_main_loop).
 *
 * When the process opens a file whose path ends with
 * $SNISPLICE_TEST_SIGNAL_AT_OPEN (the config), it first sends itself
 * SIGUSR1 and SIGHUP, once, as logrotate or an operator would while a slow
 * start-up loads its config: a window no timing from outside can hit on
 * purpose. Built without sanitizers; never linked into a test binary (it
 * replaces fopen).
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool ends_with(const char *text, const char *end)
{
    size_t text_length = strlen(text), end_length = strlen(end);
    return text_length >= end_length && strcmp(text + text_length - end_length, end) == 0;
}

FILE *fopen(const char *path, const char *mode)
{
    static bool sent;
    FILE *(*next_fopen)(const char *, const char *) =
        (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen");
    const char *watched = getenv("SNISPLICE_TEST_SIGNAL_AT_OPEN");
    if (!sent && watched && ends_with(path, watched)) {
        sent = true;
        /* To the process, as kill(1) sends them: not to this thread. */
        kill(getpid(), SIGUSR1);
        kill(getpid(), SIGHUP);
    }
    return next_fopen(path, mode);
}
