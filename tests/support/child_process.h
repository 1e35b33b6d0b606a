/*
 * child_process.h - helper processes of the integration tests (snisplice,
 * openssl, curl) and the temporary files they use.
 *
 * Owns a per-test-process registry of every child it spawns and of every
 * temporary directory it creates, so child_cleanup_all() (run as criterion
 * .fini and at exit) kills and reaps the children and removes the directories
 * even when an assertion failed. Children also get PR_SET_PDEATHSIG so they
 * die with the test process if it is killed. Never kills a process it did not
 * spawn itself.
 */
#ifndef SNISPLICE_TESTS_CHILD_PROCESS_H
#define SNISPLICE_TESTS_CHILD_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Exit code of child_wait() / child_run() when the child did not exit in time. */
#define CHILD_TIMED_OUT (-1)

struct child_spawn_options {
    const char *working_directory; /* NULL: inherit */
    const char *stdin_path;        /* NULL: /dev/null */
    const char *stdout_path;       /* NULL: /dev/null */
    const char *stderr_path;       /* NULL: /dev/null; may equal stdout_path */
};

/* Start argv[0] (searched in PATH) with argv; -1 on failure. Registered for cleanup. */
pid_t child_spawn(const char *const argv[], const struct child_spawn_options *options);

/*
 * Wait up to timeout_ms for the child to exit. Returns its exit code, 128 +
 * signal number when killed by a signal, or CHILD_TIMED_OUT (still running).
 */
int child_wait(pid_t pid, int timeout_ms);

/* SIGKILL and reap one registered child. */
void child_kill(pid_t pid);

/*
 * Run argv to completion (killed after timeout_ms), capturing stdout and
 * stderr merged into *output (malloc'd, NUL-terminated; caller frees).
 * Returns the exit code as child_wait() does.
 */
int child_run(const char *const argv[], const char *working_directory,
              const char *stdin_path, int timeout_ms, char **output);

/* Kill every registered child still running and remove every temp directory. */
void child_cleanup_all(void);

/* Make a fresh directory under $TMPDIR (removed by cleanup); path is malloc'd. */
char *temp_directory_create(const char *purpose);

/* Write text to directory/name (directory NULL: name is a full path); malloc'd path. */
char *temp_file_write(const char *directory, const char *name, const char *text);

/* Whole file contents, NUL-terminated, malloc'd; *length set when non-NULL. NULL if unreadable. */
char *file_read_all(const char *path, size_t *length);

/* utime + stime of a process in clock ticks (sysconf(_SC_CLK_TCK) per
 * second); -1 if it cannot be read. */
long long process_cpu_ticks(pid_t pid);

/* Milliseconds on the monotonic clock. */
long long monotonic_ms(void);

void sleep_ms(int milliseconds);

#endif
