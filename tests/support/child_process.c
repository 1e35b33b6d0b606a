/*
 * child_process.c - spawning, waiting for and cleaning up after the helper
 * processes of the integration tests, plus temporary files.
 *
 * Owns the registry of spawned children and created temp directories of this
 * test process. Must never signal a pid it did not spawn, and must only spawn
 * from the test's main thread (PR_SET_PDEATHSIG follows the spawning thread).
 */
#include "child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_REGISTRY_MAX 64
#define TEMP_DIRECTORY_MAX 32

static pid_t registered_children[CHILD_REGISTRY_MAX];
static char *registered_directories[TEMP_DIRECTORY_MAX];
static bool cleanup_registered_at_exit;

long long process_cpu_ticks(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *stat = file_read_all(path, NULL);
    long long ticks = -1;
    const char *after_name = stat ? strrchr(stat, ')') : NULL;
    if (after_name) {
        unsigned long long user = 0, system = 0;
        /* utime and stime are fields 14 and 15; after ") " comes field 3 */
        if (sscanf(after_name + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &user, &system) == 2)
            ticks = (long long)(user + system);
    }
    free(stat);
    return ticks;
}

long long monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void sleep_ms(int milliseconds)
{
    struct timespec duration = {milliseconds / 1000, (long)(milliseconds % 1000) * 1000000L};
    while (nanosleep(&duration, &duration) != 0 && errno == EINTR) {
    }
}

static void ensure_cleanup_at_exit(void)
{
    if (cleanup_registered_at_exit)
        return;
    cleanup_registered_at_exit = true;
    atexit(child_cleanup_all);
}

static void registry_add(pid_t pid)
{
    ensure_cleanup_at_exit();
    for (size_t i = 0; i < CHILD_REGISTRY_MAX; i++) {
        if (registered_children[i] == 0) {
            registered_children[i] = pid;
            return;
        }
    }
    fprintf(stderr, "child registry full: pid %d will not be cleaned up\n", (int)pid);
}

static void registry_remove(pid_t pid)
{
    for (size_t i = 0; i < CHILD_REGISTRY_MAX; i++) {
        if (registered_children[i] == pid)
            registered_children[i] = 0;
    }
}

/* Runs in the forked child: only async-signal-safe calls, then exec. */
static void redirect_or_die(const char *path, int target_fd, int flags)
{
    int fd = open(path ? path : "/dev/null", flags, 0644);
    if (fd < 0 || dup2(fd, target_fd) < 0)
        _exit(126);
    if (fd != target_fd)
        close(fd);
}

static void exec_child(const char *const argv[], const struct child_spawn_options *options,
                       pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(125);
    /* Start from a clean slate whatever the test process blocked or ignored. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    const int reset[] = {SIGPIPE, SIGHUP, SIGTERM, SIGINT, SIGCHLD, SIGALRM};
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        signal(reset[i], SIG_DFL);
    alarm(0);
    setpgid(0, 0);
    redirect_or_die(options->stdin_path, STDIN_FILENO, O_RDONLY);
    redirect_or_die(options->stdout_path, STDOUT_FILENO, O_WRONLY | O_CREAT | O_APPEND);
    if (options->stderr_path && options->stdout_path &&
        strcmp(options->stderr_path, options->stdout_path) == 0) {
        dup2(STDOUT_FILENO, STDERR_FILENO);
    } else {
        redirect_or_die(options->stderr_path, STDERR_FILENO, O_WRONLY | O_CREAT | O_APPEND);
    }
    if (options->working_directory && chdir(options->working_directory) != 0)
        _exit(124);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

pid_t child_spawn(const char *const argv[], const struct child_spawn_options *options)
{
    static const struct child_spawn_options defaults;
    if (!options)
        options = &defaults;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        exec_child(argv, options, parent);
    registry_add(pid);
    return pid;
}

static int exit_code_of(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return CHILD_TIMED_OUT;
}

int child_wait(pid_t pid, int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        int status = 0;
        pid_t reaped = waitpid(pid, &status, WNOHANG);
        if (reaped == pid) {
            registry_remove(pid);
            return exit_code_of(status);
        }
        if (reaped < 0 && errno != EINTR) {
            registry_remove(pid);
            return CHILD_TIMED_OUT;
        }
        if (monotonic_ms() >= deadline)
            return CHILD_TIMED_OUT;
        sleep_ms(5);
    }
}

void child_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    registry_remove(pid);
}

int child_run(const char *const argv[], const char *working_directory,
              const char *stdin_path, int timeout_ms, char **output)
{
    char *directory = temp_directory_create("run");
    char *output_path = NULL;
    if (asprintf(&output_path, "%s/output", directory) < 0)
        abort();
    struct child_spawn_options options = {
        .working_directory = working_directory,
        .stdin_path = stdin_path,
        .stdout_path = output_path,
        .stderr_path = output_path,
    };
    int exit_code = CHILD_TIMED_OUT;
    pid_t pid = child_spawn(argv, &options);
    if (pid > 0) {
        exit_code = child_wait(pid, timeout_ms);
        if (exit_code == CHILD_TIMED_OUT)
            child_kill(pid);
    }
    if (output) {
        *output = file_read_all(output_path, NULL);
        if (!*output)
            *output = strdup("");
    }
    free(output_path);
    free(directory);
    return exit_code;
}

static int remove_entry(const char *path, const struct stat *info, int type, struct FTW *walk)
{
    remove(path);
    return 0;
}

void child_cleanup_all(void)
{
    for (size_t i = 0; i < CHILD_REGISTRY_MAX; i++) {
        pid_t pid = registered_children[i];
        if (pid > 0)
            child_kill(pid);
    }
    bool keep = getenv("SNISPLICE_TEST_KEEP") != NULL;
    for (size_t i = 0; i < TEMP_DIRECTORY_MAX; i++) {
        char *directory = registered_directories[i];
        if (!directory)
            continue;
        if (keep)
            fprintf(stderr, "kept %s\n", directory);
        else
            nftw(directory, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(directory);
        registered_directories[i] = NULL;
    }
}

char *temp_directory_create(const char *purpose)
{
    ensure_cleanup_at_exit();
    const char *base = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/snisplice-test-%s-XXXXXX", base ? base : "/tmp", purpose) < 0)
        abort();
    if (!mkdtemp(path)) {
        perror("mkdtemp");
        abort();
    }
    for (size_t i = 0; i < TEMP_DIRECTORY_MAX; i++) {
        if (!registered_directories[i]) {
            registered_directories[i] = strdup(path);
            return path;
        }
    }
    fprintf(stderr, "temp directory registry full: %s will be left behind\n", path);
    return path;
}

char *temp_file_write(const char *directory, const char *name, const char *text)
{
    char *path = NULL;
    if (asprintf(&path, "%s%s%s", directory ? directory : "", directory ? "/" : "", name) < 0)
        abort();
    char *staging = NULL;
    if (asprintf(&staging, "%s.new", path) < 0)
        abort();
    FILE *file = fopen(staging, "w");
    if (!file || fputs(text, file) < 0 || fclose(file) != 0 || rename(staging, path) != 0) {
        perror(staging);
        abort();
    }
    free(staging);
    return path;
}

char *file_read_all(const char *path, size_t *length)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    size_t capacity = 4096, used = 0;
    char *text = malloc(capacity + 1);
    if (!text)
        abort();
    for (;;) {
        size_t got = fread(text + used, 1, capacity - used, file);
        used += got;
        if (used < capacity)
            break;
        capacity *= 2;
        char *grown = realloc(text, capacity + 1);
        if (!grown)
            abort();
        text = grown;
    }
    fclose(file);
    text[used] = '\0';
    if (length)
        *length = used;
    return text;
}
