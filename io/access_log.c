/*
 * access_log.c - the shared log descriptor and per-worker buffers. The
 * worker-side formatting and submission live in access_log_writer.c next to
 * the worker because they need its ring.
 *
 * With `user =`, root opens the log at start and hands the file to that
 * user (as nginx's master does for its workers), because every later open
 * (SIGUSR1 after logrotate, a reload) happens as the user: without that
 * the file root created with mode 0640 could not be reopened. As root it
 * opens only a regular file (no symlink, no other hard link) or a device:
 * see open_as_root.
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

#define APPEND_FLAGS (O_WRONLY | O_APPEND | O_CLOEXEC)
#define NO_OWNER ((uid_t)-1)

/* Main thread only: who files opened as root are handed to; see above. */
static uid_t log_owner = NO_OWNER;

void access_log_set_owner(uid_t uid)
{
    log_owner = uid;
}

/* Handed over to `user` (a plain file with one name: see below). */
static void hand_to_owner(int fd, const struct stat *status, const char *path)
{
    if (log_owner == NO_OWNER || status->st_uid == log_owner || !S_ISREG(status->st_mode))
        return;
    if (fchown(fd, log_owner, (gid_t)-1) != 0)
        log_warn("access_log %s: cannot hand it to `user`: %s", path, strerror(errno));
}

/* /dev/stdout and /dev/stderr are the process's own descriptors (a
 * container's log), reached through /proc symlinks: duplicated rather than
 * opened, so that no symlink is followed as root, and so that a reopen
 * after `user =` does not need the user to be allowed to open what root's
 * stdout is. The descriptor to duplicate, or -1 for any other path. */
static int standard_stream(const char *path)
{
    return strcmp(path, "/dev/stdout") == 0 ? STDOUT_FILENO : strcmp(path, "/dev/stderr") == 0 ? STDERR_FILENO : -1;
}

/* As root, the log is written (and, with `user =`, handed over) only if it
 * is what it seems: whoever may write its directory (the user, once it is
 * given the directory for logrotate) could otherwise put there a symlink
 * or a hard link to a file of root's and have root append lines to it,
 * whose ALPN and server name fields any client chooses (/root/.bashrc), a
 * FIFO that blocks the start, or a device. So: no symlink at the end of
 * the path, nothing but a regular file with one name or a character
 * device (/dev/null), and O_NONBLOCK so that opening a FIFO fails rather
 * than waits. Not as root, the kernel's permissions are the whole rule. */
static int open_as_root(const char *path, char *error, size_t error_size)
{
    int fd = open(path, APPEND_FLAGS | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0640);
    if (fd < 0) {
        snprintf(error, error_size, "access_log %s: %s", path,
                 errno == ELOOP ? "is a symbolic link; give the path of the file itself" : strerror(errno));
        return -1;
    }
    struct stat status;
    const char *wrong = fstat(fd, &status) != 0                          ? strerror(errno)
                        : S_ISCHR(status.st_mode)                         ? NULL
                        : !S_ISREG(status.st_mode)                        ? "not a regular file"
                        : status.st_nlink != 1                            ? "has other names (hard links)"
                                                                          : NULL;
    if (wrong || fcntl(fd, F_SETFL, O_APPEND) != 0) {
        snprintf(error, error_size, "access_log %s: %s; not written as root", path, wrong ? wrong : strerror(errno));
        close(fd);
        return -1;
    }
    hand_to_owner(fd, &status, path);
    return fd;
}

int access_log_open_file(const char *path, char *error, size_t error_size)
{
    int stream = standard_stream(path);
    if (stream >= 0) {
        /* A failed dup is its own error (out of fds): opening the path
         * instead would blame the symlink, as root. */
        int fd = fcntl(stream, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            snprintf(error, error_size, "access_log %s: %s", path, strerror(errno));
        return fd;
    }
    if (geteuid() == 0)
        return open_as_root(path, error, error_size);
    /* O_NONBLOCK: a FIFO no one reads yet would hold the open, and with it
     * the start, -t or a SIGUSR1 reopen, until a reader came. It is told
     * instead; once open, writes wait for the reader as they should. */
    int fd = open(path, APPEND_FLAGS | O_CREAT | O_NONBLOCK, 0640);
    if (fd < 0) {
        snprintf(error, error_size, "access_log %s: %s", path,
                 errno == ENXIO ? "a FIFO that no process reads" : strerror(errno));
        return -1;
    }
    if (fcntl(fd, F_SETFL, O_APPEND) != 0) {
        snprintf(error, error_size, "access_log %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static bool same_file(int a, int b)
{
    struct stat first, second;
    return fstat(a, &first) == 0 && fstat(b, &second) == 0 && first.st_dev == second.st_dev &&
           first.st_ino == second.st_ino;
}

void access_log_install(int fd)
{
    if (log_descriptor < 0) {
        log_descriptor = fd;
        atomic_store(&access_log_fd, fd);
        return;
    }
    /* A torn line in the old file is no concern of a new one, which would
     * otherwise start with an empty line. */
    if (!same_file(fd, log_descriptor))
        atomic_store(&access_log_torn, false);
    /* Reopen in place: writes already submitted finish on the old file.
     * dup3, not dup2, which would clear close-on-exec on the number. */
    if (dup3(fd, log_descriptor, O_CLOEXEC) < 0)
        log_error("access_log: dup3: %s; lines go on to the file already open", strerror(errno));
    close(fd);
    atomic_store(&access_log_fd, log_descriptor);
}

bool access_log_open(const char *path)
{
    char error[512];
    int fd = access_log_open_file(path, error, sizeof error);
    if (fd < 0) {
        log_error("%s", error);
        return false;
    }
    access_log_install(fd);
    return true;
}

/* Whether the directory of `file` would take a new file from this process
 * (write and search permission, a writable file system); else the reason
 * in error, which names `path`, the configured one. */
static bool directory_takes_file(const char *path, const char *file, char *error, size_t error_size)
{
    const char *slash = strrchr(file, '/');
    size_t length = slash == file ? 1 : (size_t)(slash - file);
    char *directory = strndup(file, length);
    bool takes = directory && faccessat(AT_FDCWD, directory, W_OK | X_OK, AT_EACCESS) == 0;
    if (!takes)
        snprintf(error, error_size, "access_log %s: %s", path, strerror(directory ? errno : ENOMEM));
    free(directory);
    return takes;
}

/* Not as root, a dangling symlink at path is followed and its target
 * created by an open: judged instead by the target's directory (a
 * relative target is taken from the symlink's own). */
static bool link_target_takes_file(const char *path, char *error, size_t error_size)
{
    char target[4096];
    ssize_t length = readlink(path, target, sizeof target - 1);
    if (length < 0) {
        snprintf(error, error_size, "access_log %s: %s", path, strerror(errno));
        return false;
    }
    target[length] = '\0';
    if (target[0] == '/')
        return directory_takes_file(path, target, error, error_size);
    int directory_length = (int)(strrchr(path, '/') - path);
    char *file = NULL;
    if (asprintf(&file, "%.*s/%s", directory_length, path, target) < 0) {
        snprintf(error, error_size, "access_log %s: %s", path, strerror(ENOMEM));
        return false;
    }
    bool takes = directory_takes_file(path, file, error, error_size);
    free(file);
    return takes;
}

bool access_log_check(const char *path, char *error, size_t error_size)
{
    /* A check creates no file: one -t made as root would be root's, 0640,
     * and the shipped unit's dynamic user, which starts the service, could
     * then never open it. A log not there yet is judged by its directory;
     * a dangling symlink is there (lstat): refused below as root, judged
     * by its target's directory otherwise. */
    struct stat status;
    bool there = lstat(path, &status) == 0;
    bool absolute = path[0] == '/'; /* as config.c has it: a directory to judge */
    if (absolute && !there && errno == ENOENT)
        return directory_takes_file(path, path, error, error_size);
    if (absolute && there && S_ISLNK(status.st_mode) && geteuid() != 0 && stat(path, &status) != 0 &&
        errno == ENOENT)
        return link_target_takes_file(path, error, error_size);
    int fd = access_log_open_file(path, error, error_size);
    if (fd < 0)
        return false;
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
    if (null_fd < 0 || dup3(null_fd, log_descriptor, O_CLOEXEC) < 0)
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
