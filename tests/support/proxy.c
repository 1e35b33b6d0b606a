/*
 * proxy.c - starting, signalling, observing and stopping snisplice.
 *
 * Owns the struct proxy's strings and process; the temp directory itself is
 * removed by child_cleanup_all(). Never leaves the process running after
 * proxy_release().
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child_process.h"
#include "integration.h"
#include "net.h"

#define PROXY_START_TIMEOUT_MS 10000

const char *proxy_binary(void)
{
    const char *binary = getenv("SNISPLICE_BIN");
    return binary && *binary ? binary : "build/asan/snisplice";
}

static bool still_running(struct proxy *proxy)
{
    int exit_code = child_wait(proxy->pid, 0);
    if (exit_code == CHILD_TIMED_OUT)
        return true;
    fprintf(stderr, "snisplice exited early with %d\n", exit_code);
    proxy->pid = 0;
    return false;
}

/* The main thread binds a config's addresses one after the other, and the
 * probe of the first may succeed before the last is bound (the kernel
 * completes handshakes before any accept): wait until every
 * `address = 127.0.0.1:PORT` of the config listens too, so that a test's
 * first connection to another listener is not refused. */
static bool every_address_listens(const char *config_text, long long deadline)
{
    static const char key[] = "address = 127.0.0.1:";
    for (const char *at = strstr(config_text, key); at; at = strstr(at + 1, key)) {
        unsigned port = (unsigned)strtoul(at + sizeof key - 1, NULL, 10);
        long long left = deadline - monotonic_ms();
        if (port == 0 || port > 65535 || left <= 0 || !net_wait_listening((uint16_t)port, (int)left))
            return false;
    }
    return true;
}

bool proxy_start(struct proxy *proxy, const char *config_text, uint16_t listen_port)
{
    memset(proxy, 0, sizeof *proxy);
    proxy->directory = temp_directory_create("proxy");
    proxy->config_path = temp_file_write(proxy->directory, "snisplice.ini", config_text);
    if (asprintf(&proxy->stderr_path, "%s/stderr.log", proxy->directory) < 0)
        abort();
    const char *argv[] = {proxy_binary(), "-c", proxy->config_path, NULL};
    struct child_spawn_options options = {.stderr_path = proxy->stderr_path,
                                          .stdout_path = proxy->stderr_path};
    proxy->pid = child_spawn(argv, &options);
    if (proxy->pid <= 0) {
        proxy->pid = 0;
        return false;
    }
    long long deadline = monotonic_ms() + PROXY_START_TIMEOUT_MS;
    while (monotonic_ms() < deadline) {
        if (!still_running(proxy))
            return false;
        if (net_wait_accepting(listen_port, 20) && every_address_listens(config_text, deadline))
            return true;
    }
    child_kill(proxy->pid);
    proxy->pid = 0;
    return false;
}

void proxy_reload(struct proxy *proxy, const char *config_text)
{
    free(temp_file_write(NULL, proxy->config_path, config_text));
    proxy_signal(proxy, SIGHUP);
}

void proxy_signal(struct proxy *proxy, int signal_number)
{
    if (proxy->pid > 0)
        kill(proxy->pid, signal_number);
}

int proxy_wait_exit(struct proxy *proxy, int timeout_ms)
{
    if (proxy->pid <= 0)
        return CHILD_TIMED_OUT;
    int exit_code = child_wait(proxy->pid, timeout_ms);
    if (exit_code == CHILD_TIMED_OUT)
        child_kill(proxy->pid);
    proxy->pid = 0;
    return exit_code;
}

int proxy_stop(struct proxy *proxy, int timeout_ms)
{
    proxy_signal(proxy, SIGTERM);
    return proxy_wait_exit(proxy, timeout_ms);
}

char *proxy_stderr(const struct proxy *proxy)
{
    char *text = proxy->stderr_path ? file_read_all(proxy->stderr_path, NULL) : NULL;
    return text ? text : strdup("");
}

bool proxy_stderr_wait_for(const struct proxy *proxy, const char *needle, int timeout_ms)
{
    return proxy_stderr_wait_for_count(proxy, needle, 1, timeout_ms);
}

bool proxy_stderr_wait_for_count(const struct proxy *proxy, const char *needle, int count, int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        char *text = proxy_stderr(proxy);
        bool found = text_count(text, needle) >= count;
        free(text);
        if (found)
            return true;
        if (monotonic_ms() >= deadline)
            return false;
        sleep_ms(20);
    }
}

/* Calls visit(number, state) for each open descriptor of the proxy until
 * it returns true; false when /proc/PID/fd cannot be read. */
static bool visit_fds(const struct proxy *proxy, bool (*visit)(int number, void *state),
                      void *state)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)proxy->pid);
    DIR *directory = opendir(path);
    if (!directory)
        return false;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        if (entry->d_name[0] != '.' && visit(atoi(entry->d_name), state))
            break;
    }
    closedir(directory);
    return true;
}

static bool count_one(int number, void *count)
{
    (void)number;
    (*(int *)count)++;
    return false;
}

int proxy_fd_count(const struct proxy *proxy)
{
    int count = 0;
    return visit_fds(proxy, count_one, &count) ? count : -1;
}

struct socket_visit {
    pid_t pid;
    int count;
};

static bool count_socket(int number, void *state)
{
    struct socket_visit *visit = state;
    char link_path[64], target[64];
    snprintf(link_path, sizeof link_path, "/proc/%d/fd/%d", (int)visit->pid, number);
    ssize_t length = readlink(link_path, target, sizeof target - 1);
    visit->count += length > 0 && strncmp(target, "socket:", 7) == 0;
    return false;
}

int proxy_socket_count(const struct proxy *proxy)
{
    struct socket_visit visit = { proxy->pid, 0 };
    return visit_fds(proxy, count_socket, &visit) ? visit.count : -1;
}

int proxy_count_when_still(const struct proxy *proxy, int (*count_of)(const struct proxy *), int hold_ms,
                           int limit_ms)
{
    int count = count_of(proxy), held_ms = 0;
    for (long long deadline = monotonic_ms() + limit_ms; held_ms < hold_ms && monotonic_ms() < deadline;) {
        sleep_ms(10);
        int again = count_of(proxy);
        held_ms = again == count ? held_ms + 10 : 0;
        count = again;
    }
    return count;
}

/* /proc/PID/<name> of the proxy, whole; NULL if unreadable. Caller frees. */
static char *proc_file(const struct proxy *proxy, const char *name)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)proxy->pid, name);
    return file_read_all(path, NULL);
}

long proxy_status_value(const struct proxy *proxy, const char *field)
{
    char *status = proc_file(proxy, "status");
    const char *line = status ? strstr(status, field) : NULL;
    long value = line ? atol(line + strlen(field)) : -1;
    free(status);
    return value;
}

long proxy_minor_faults(const struct proxy *proxy)
{
    char *stat = proc_file(proxy, "stat");
    /* After the command's closing parenthesis: state, ppid, pgrp, session,
     * tty_nr, tpgid, flags, then minflt. */
    const char *after = stat ? strrchr(stat, ')') : NULL;
    long faults = -1;
    if (after && sscanf(after + 1, " %*c %*d %*d %*d %*d %*d %*u %ld", &faults) != 1)
        faults = -1;
    free(stat);
    return faults;
}

bool proxy_runs_under_asan(const struct proxy *proxy)
{
    char *maps = proc_file(proxy, "maps");
    bool found = maps && strstr(maps, "libasan") != NULL;
    free(maps);
    return found;
}

struct peer_search {
    int pidfd;
    uint16_t port;
    int found; /* the duplicate, or -1 */
};

static bool peer_port_is(int fd, uint16_t port)
{
    struct sockaddr_in peer;
    socklen_t length = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &length) < 0 || peer.sin_family != AF_INET)
        return false;
    return ntohs(peer.sin_port) == port;
}

/* Duplicate the proxy's descriptor into this process; keep it if its peer
 * is the one searched for. */
static bool keep_if_peer(int number, void *state)
{
    struct peer_search *search = state;
    int copy = (int)syscall(SYS_pidfd_getfd, search->pidfd, number, 0);
    if (copy < 0)
        return false;
    if (peer_port_is(copy, search->port)) {
        search->found = copy;
        return true;
    }
    close(copy);
    return false;
}

int proxy_socket_with_peer(const struct proxy *proxy, uint16_t peer_port)
{
    struct peer_search search = { (int)syscall(SYS_pidfd_open, proxy->pid, 0), peer_port, -1 };
    if (search.pidfd < 0)
        return -1;
    visit_fds(proxy, keep_if_peer, &search);
    close(search.pidfd);
    return search.found;
}

void proxy_release(struct proxy *proxy)
{
    if (proxy->pid > 0)
        child_kill(proxy->pid);
    proxy->pid = 0;
    free(proxy->directory);
    free(proxy->config_path);
    free(proxy->stderr_path);
    proxy->directory = proxy->config_path = proxy->stderr_path = NULL;
}
