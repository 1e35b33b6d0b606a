/*
 * access_log.c - the shared log descriptor and per-worker buffers. The
 * worker-side formatting and submission live in access_log_writer.c next to
 * the worker because they need its ring.
 */
#include "access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

_Atomic int access_log_fd = -1;
atomic_bool access_log_torn = false;

/* Main thread only: the descriptor number workers write to. Once opened it
 * is kept for the life of the process (see access_log_disable). */
static int log_descriptor = -1;

static int open_for_appending(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static bool same_file(int a, int b)
{
    struct stat first, second;
    return fstat(a, &first) == 0 && fstat(b, &second) == 0 && first.st_dev == second.st_dev &&
           first.st_ino == second.st_ino;
}

bool access_log_open(const char *path)
{
    int fd = open_for_appending(path);
    if (fd < 0) {
        log_error("access_log %s: %s", path, strerror(errno));
        return false;
    }
    if (log_descriptor < 0) {
        log_descriptor = fd;
        atomic_store(&access_log_fd, fd);
        return true;
    }
    /* A torn line in the old file is no concern of a new one, which would
     * otherwise start with an empty line. */
    if (!same_file(fd, log_descriptor))
        atomic_store(&access_log_torn, false);
    /* Reopen in place: writes already submitted finish on the old file. */
    if (dup2(fd, log_descriptor) < 0) {
        log_error("access_log %s: dup2: %s", path, strerror(errno));
        close(fd);
        return false;
    }
    close(fd);
    atomic_store(&access_log_fd, log_descriptor);
    return true;
}

bool access_log_check(const char *path, char *error, size_t error_size)
{
    int fd = open_for_appending(path);
    if (fd < 0) {
        snprintf(error, error_size, "access_log %s: %s", path, strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

void access_log_disable(void)
{
    atomic_store(&access_log_fd, -1);
    if (log_descriptor < 0)
        return;
    /* Not closed: a worker may have read the number just before the store
     * above and queue a write on it later, and a closed number is the next
     * socket's or pipe's, which would then receive other clients' log
     * lines. Pointed at /dev/null instead; if that fails the old file
     * stays open, which is harmless. */
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd < 0 || dup2(null_fd, log_descriptor) < 0)
        log_error("access_log off: the old file stays open: %s", strerror(errno));
    if (null_fd >= 0)
        close(null_fd);
}

void access_log_close(void)
{
    atomic_store(&access_log_fd, -1);
    if (log_descriptor >= 0)
        close(log_descriptor);
    log_descriptor = -1;
}

bool access_log_init(struct access_log *log)
{
    memset(log, 0, sizeof *log);
    for (int i = 0; i < 2; i++) {
        /* One byte more, in front, for the "\n" a torn line is owed. */
        char *block = malloc(ACCESS_LOG_BUFFER_SIZE + 1);
        if (!block) {
            access_log_destroy(log);
            return false;
        }
        block[0] = '\n';
        log->buffers[i].bytes = block + 1;
    }
    return true;
}

void access_log_destroy(struct access_log *log)
{
    for (int i = 0; i < 2; i++) {
        if (log->buffers[i].bytes)
            free(log->buffers[i].bytes - 1);
        log->buffers[i].bytes = NULL;
    }
}
