/*
 * access_log.c - the shared log descriptor and per-worker buffers. The
 * worker-side formatting and submission live in access_log_worker.c next to
 * the worker because they need its ring.
 */
#include "access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

_Atomic int access_log_fd = -1;

bool access_log_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        log_error("access_log %s: %s", path, strerror(errno));
        return false;
    }
    int current = atomic_load(&access_log_fd);
    if (current < 0) {
        atomic_store(&access_log_fd, fd);
        return true;
    }
    /* Reopen in place: writes already submitted finish on the old file. */
    if (dup2(fd, current) < 0) {
        log_error("access_log %s: dup2: %s", path, strerror(errno));
        close(fd);
        return false;
    }
    close(fd);
    return true;
}

void access_log_close(void)
{
    int fd = atomic_exchange(&access_log_fd, -1);
    if (fd >= 0)
        close(fd);
}

bool access_log_init(struct access_log *log)
{
    memset(log, 0, sizeof *log);
    for (int i = 0; i < 2; i++) {
        log->buffers[i].bytes = malloc(ACCESS_LOG_BUFFER_SIZE);
        if (!log->buffers[i].bytes) {
            access_log_destroy(log);
            return false;
        }
    }
    return true;
}

void access_log_destroy(struct access_log *log)
{
    for (int i = 0; i < 2; i++) {
        free(log->buffers[i].bytes);
        log->buffers[i].bytes = NULL;
    }
}
