/*
 * upgrade.c - SIGUSR2's binary replacement, both ends (see upgrade.h).
 *
 * The handover travels in three environment variables, read and removed
 * by the new process before anything else looks at its environment:
 *   SNISPLICE_UPGRADE_LISTEN  "FD/WORKER,FD/WORKER,..." listening sockets,
 *                             each one's address read back with getsockname
 *   SNISPLICE_UPGRADE_STATS   "FD" the stats endpoint's socket
 *   SNISPLICE_UPGRADE_READY   "FD" the pipe's write end: one byte = ready
 * Every inherited descriptor is checked to be a listening TCP socket
 * before it is used: a stray variable in an operator's shell cannot make
 * the process accept on something else.
 *
 * Must never: shut down or detach a filter from a listening socket (it is
 * shared with the other process), or leave the new process running
 * half-started when the old one gives up on it.
 */
#include "upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capabilities.h"
#include "log.h"

#define ENV_LISTEN "SNISPLICE_UPGRADE_LISTEN"
#define ENV_STATS "SNISPLICE_UPGRADE_STATS"
#define ENV_READY "SNISPLICE_UPGRADE_READY"
/* One environment string's ceiling (MAX_ARG_STRLEN): past it execve fails. */
#define ENV_STRING_MAX (32 * 4096)

extern char **environ;

static char self_path[PATH_MAX];

static uint64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}
static char **self_argv;

bool upgrade_remember_self(char **argv)
{
    ssize_t length = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (length <= 0 || (size_t)length >= sizeof self_path - 1) {
        self_path[0] = '\0';
        return false;
    }
    self_path[length] = '\0';
    self_argv = argv;
    return true;
}

static bool is_handover_variable(const char *entry)
{
    return strncmp(entry, ENV_LISTEN "=", sizeof ENV_LISTEN) == 0 ||
           strncmp(entry, ENV_STATS "=", sizeof ENV_STATS) == 0 ||
           strncmp(entry, ENV_READY "=", sizeof ENV_READY) == 0;
}

/* "NAME=" and the sockets as "FD/WORKER,...": malloc'd, NULL if too long. */
static char *listen_variable(const struct upgrade_socket *sockets, size_t count)
{
    size_t size = sizeof ENV_LISTEN + 1 + count * 24;
    if (size > ENV_STRING_MAX)
        return NULL;
    char *text = malloc(size);
    if (!text)
        return NULL;
    size_t used = (size_t)snprintf(text, size, "%s=", ENV_LISTEN);
    for (size_t i = 0; i < count; i++)
        used += (size_t)snprintf(text + used, size - used, "%s%d/%u", i ? "," : "", sockets[i].fd,
                                 sockets[i].worker);
    return text;
}

/* The child's environment: ours without any handover variable of our own
 * start, plus the three of this handover. */
static char **child_environment(char *listen, char *stats, char *ready)
{
    size_t count = 0;
    while (environ[count])
        count++;
    char **env = calloc(count + 4, sizeof *env);
    if (!env)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < count; i++)
        if (!is_handover_variable(environ[i]))
            env[used++] = environ[i];
    env[used++] = listen;
    env[used++] = stats;
    env[used++] = ready;
    env[used] = NULL;
    return env;
}

/* In the forked child: only async-signal-safe calls until execve. */
static void exec_child(const struct upgrade_socket *sockets, size_t count, int stats_fd, int ready_fd,
                       char **env)
{
    for (size_t i = 0; i < count; i++)
        fcntl(sockets[i].fd, F_SETFD, 0);
    if (stats_fd >= 0)
        fcntl(stats_fd, F_SETFD, 0);
    fcntl(ready_fd, F_SETFD, 0);
    /* Signals blocked in the old process's threads stay blocked across
     * execve: the new one sets its own mask, but must not start with
     * SIGTERM blocked before it gets there. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    capabilities_pass_on_exec();
    execve(self_path, self_argv, env);
    _exit(127);
}

bool upgrade_start(struct upgrade *upgrade, const struct upgrade_socket *sockets, size_t count, int stats_fd)
{
    if (!self_path[0]) {
        log_error("upgrade: this process's executable path is unknown (/proc/self/exe unreadable at start)");
        return false;
    }
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        log_error("upgrade: pipe: %s", strerror(errno));
        return false;
    }
    char stats[48], ready[48];
    snprintf(stats, sizeof stats, "%s=%d", ENV_STATS, stats_fd);
    snprintf(ready, sizeof ready, "%s=%d", ENV_READY, pipe_fds[1]);
    char *listen = listen_variable(sockets, count);
    char **env = listen ? child_environment(listen, stats, ready) : NULL;
    pid_t child = env ? fork() : -1;
    if (child == 0)
        exec_child(sockets, count, stats_fd, pipe_fds[1], env);
    int fork_error = errno;
    free(env);
    free(listen);
    close(pipe_fds[1]);
    if (child < 0) {
        log_error("upgrade: cannot start %s: %s", self_path,
                  listen && env ? strerror(fork_error) : "out of memory, or too many listening sockets");
        close(pipe_fds[0]);
        return false;
    }
    fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    upgrade->child = child;
    upgrade->ready_fd = pipe_fds[0];
    upgrade->deadline_ms = now_ms() + UPGRADE_READY_TIMEOUT_MS;
    log_info("upgrade: started %s as pid %d with %zu listening sockets; waiting for it to be ready", self_path,
             (int)child, count + (stats_fd >= 0));
    return true;
}

static void finish(struct upgrade *upgrade)
{
    close(upgrade->ready_fd);
    upgrade->ready_fd = -1;
    upgrade->child = 0;
}

static void say_failed(pid_t child, int status)
{
    if (WIFEXITED(status))
        log_error("upgrade failed: the new process (pid %d) exited with status %d before it was ready (its "
                  "messages are above); this process keeps serving", (int)child, WEXITSTATUS(status));
    else
        log_error("upgrade failed: the new process (pid %d) was killed by signal %d (%s) before it was ready; "
                  "this process keeps serving", (int)child, WTERMSIG(status), strsignal(WTERMSIG(status)));
}

enum upgrade_state upgrade_poll(struct upgrade *upgrade)
{
    if (upgrade->child == 0)
        return UPGRADE_FAILED;
    char byte;
    if (read(upgrade->ready_fd, &byte, 1) == 1) {
        log_info("upgrade: the new process (pid %d) is ready; this one stops accepting and drains", (int)upgrade->child);
        finish(upgrade);
        return UPGRADE_READY;
    }
    int status;
    pid_t child = upgrade->child;
    if (waitpid(child, &status, WNOHANG) == child) {
        say_failed(child, status);
        finish(upgrade);
        return UPGRADE_FAILED;
    }
    if (now_ms() < upgrade->deadline_ms)
        return UPGRADE_WAITING;
    log_error("upgrade failed: the new process (pid %d) was not ready within %d s; killed, this process keeps "
              "serving", (int)child, UPGRADE_READY_TIMEOUT_MS / 1000);
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    finish(upgrade);
    return UPGRADE_FAILED;
}

void upgrade_abandon(struct upgrade *upgrade)
{
    if (upgrade->child == 0)
        return;
    char byte;
    if (read(upgrade->ready_fd, &byte, 1) == 1) {
        /* Ready since the last look: it may have accepted connections
         * already, which a kill would reset. It stops as this one does. */
        log_warn("upgrade abandoned: this process stops; the new process (pid %d), just ready, is sent SIGTERM "
                 "and drains too", (int)upgrade->child);
        kill(upgrade->child, SIGTERM);
        finish(upgrade);
        return;
    }
    log_warn("upgrade abandoned: this process stops; the new process (pid %d), not ready yet, is killed",
             (int)upgrade->child);
    kill(upgrade->child, SIGKILL);
    waitpid(upgrade->child, NULL, 0);
    finish(upgrade);
}

/* ---- new side ---- */

/* A descriptor number from text up to `end`; -1 if not one. */
static int parse_fd(const char *text, char **end)
{
    errno = 0;
    long value = strtol(text, end, 10);
    if (errno != 0 || *end == text || value < 0 || value > INT_MAX)
        return -1;
    return (int)value;
}

/* fd is a listening TCP socket: its address into *address. */
static bool listening_tcp(int fd, struct address *address)
{
    int value = 0;
    socklen_t length = sizeof value;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &length) != 0 || !value)
        return false;
    length = sizeof value;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &length) != 0 || value != SOCK_STREAM)
        return false;
    memset(address, 0, sizeof *address);
    address->length = sizeof address->storage;
    if (getsockname(fd, (struct sockaddr *)&address->storage, &address->length) != 0)
        return false;
    int family = address->storage.ss_family;
    /* Not inherited by anything this process starts later unless passed on. */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return family == AF_INET || family == AF_INET6;
}

static bool take_listen(struct upgrade_inherited *inherited, const char *text, char *error, size_t error_size)
{
    size_t commas = 1;
    for (const char *c = text; *c; c++)
        commas += *c == ',';
    inherited->sockets = calloc(commas, sizeof *inherited->sockets);
    if (!inherited->sockets) {
        snprintf(error, error_size, "%s: out of memory", ENV_LISTEN);
        return false;
    }
    for (const char *at = text; *at;) {
        char *end;
        int fd = parse_fd(at, &end);
        long worker = -1;
        if (fd >= 0 && *end == '/') {
            at = end + 1;
            worker = strtol(at, &end, 10);
        }
        struct upgrade_inherited_socket *socket = &inherited->sockets[inherited->count];
        if (fd < 0 || end == at || worker < 0 || worker > 100000 || (*end != ',' && *end != '\0') ||
            !listening_tcp(fd, &socket->address)) {
            snprintf(error, error_size, "%s: '%s': not a list of FD/WORKER of listening TCP sockets", ENV_LISTEN,
                     text);
            return false;
        }
        socket->fd = fd;
        socket->worker = (unsigned)worker;
        inherited->count++;
        at = *end == ',' ? end + 1 : end;
    }
    return true;
}

/* A single descriptor variable; -1 when unset or "-1". */
static bool take_fd(const char *name, int *fd, char *error, size_t error_size)
{
    const char *text = getenv(name);
    *fd = -1;
    if (!text || strcmp(text, "-1") == 0)
        return true;
    char *end;
    *fd = parse_fd(text, &end);
    if (*fd < 0 || *end != '\0') {
        *fd = -1;
        snprintf(error, error_size, "%s: '%s': not a descriptor", name, text);
        return false;
    }
    return true;
}

bool upgrade_inherited_take(struct upgrade_inherited *inherited, char *error, size_t error_size)
{
    memset(inherited, 0, sizeof *inherited);
    inherited->stats_fd = inherited->ready_fd = -1;
    const char *listen = getenv(ENV_LISTEN);
    bool ok = take_fd(ENV_READY, &inherited->ready_fd, error, error_size) &&
              take_fd(ENV_STATS, &inherited->stats_fd, error, error_size) &&
              (!listen || take_listen(inherited, listen, error, error_size));
    if (ok && inherited->ready_fd >= 0)
        fcntl(inherited->ready_fd, F_SETFD, FD_CLOEXEC);
    if (ok && inherited->stats_fd >= 0 && !listening_tcp(inherited->stats_fd, &inherited->stats_address)) {
        snprintf(error, error_size, "%s: %d is not a listening TCP socket", ENV_STATS, inherited->stats_fd);
        ok = false;
    }
    unsetenv(ENV_LISTEN);
    unsetenv(ENV_STATS);
    unsetenv(ENV_READY);
    return ok;
}

size_t upgrade_inherited_count(const struct upgrade_inherited *inherited, const struct address *address)
{
    size_t count = 0;
    for (size_t i = 0; i < inherited->count; i++)
        count += inherited->sockets[i].fd >= 0 && address_equal(&inherited->sockets[i].address, address);
    return count;
}

size_t upgrade_inherited_claim(struct upgrade_inherited *inherited, const struct address *address, int *fds,
                               size_t max)
{
    size_t found = upgrade_inherited_count(inherited, address);
    if (found > max)
        return found;
    for (size_t w = 0; w < found; w++)
        fds[w] = -1;
    /* Each worker index below found exactly once: two sockets named for
     * one worker would leave another worker without any. Nothing is taken
     * until the whole set is known good. */
    for (size_t i = 0; i < inherited->count; i++) {
        struct upgrade_inherited_socket *socket = &inherited->sockets[i];
        if (socket->fd < 0 || !address_equal(&socket->address, address))
            continue;
        if (socket->worker >= found || fds[socket->worker] >= 0) {
            for (size_t w = 0; w < found; w++)
                fds[w] = -1;
            return UPGRADE_CLAIM_NOT_ONE_PER_WORKER;
        }
        fds[socket->worker] = socket->fd;
    }
    for (size_t i = 0; i < inherited->count; i++)
        if (inherited->sockets[i].fd >= 0 && address_equal(&inherited->sockets[i].address, address))
            inherited->sockets[i].fd = -1;
    return found;
}

static void close_unclaimed(struct upgrade_inherited *inherited)
{
    for (size_t i = 0; i < inherited->count; i++) {
        if (inherited->sockets[i].fd >= 0)
            close(inherited->sockets[i].fd);
        inherited->sockets[i].fd = -1;
    }
    if (inherited->stats_fd >= 0)
        close(inherited->stats_fd);
    inherited->stats_fd = -1;
}

void upgrade_inherited_ready(struct upgrade_inherited *inherited)
{
    if (inherited->ready_fd >= 0) {
        if (write(inherited->ready_fd, "R", 1) != 1)
            log_warn("upgrade: cannot tell the old process this one is ready: %s", strerror(errno));
        close(inherited->ready_fd);
        inherited->ready_fd = -1;
    }
    close_unclaimed(inherited);
}

void upgrade_inherited_free(struct upgrade_inherited *inherited)
{
    close_unclaimed(inherited);
    if (inherited->ready_fd >= 0)
        close(inherited->ready_fd);
    inherited->ready_fd = -1;
    free(inherited->sockets);
    inherited->sockets = NULL;
    inherited->count = 0;
}
