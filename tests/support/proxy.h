/*
 * proxy.h - one snisplice process under test.
 *
 * Owns the process (started from $SNISPLICE_BIN, default
 * build/asan/snisplice), its config file written from a string into a temp
 * directory, and the file its stderr goes to. Never talks the proxy's
 * protocol: tests do that with net.h.
 */
#ifndef SNISPLICE_TESTS_PROXY_H
#define SNISPLICE_TESTS_PROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct proxy {
    pid_t pid;           /* 0 when not running */
    char *directory;     /* temp directory (malloc'd) */
    char *config_path;   /* malloc'd */
    char *stderr_path;   /* malloc'd */
};

/* $SNISPLICE_BIN or build/asan/snisplice. */
const char *proxy_binary(void);

/*
 * Write config_text, start `snisplice -c CONFIG` and wait (up to 10 s) until
 * 127.0.0.1:listen_port accepts. False (process killed) when it never does.
 */
bool proxy_start(struct proxy *proxy, const char *config_text, uint16_t listen_port);

/* Replace the config file and send SIGHUP. */
void proxy_reload(struct proxy *proxy, const char *config_text);

/* Send a signal to the running proxy. */
void proxy_signal(struct proxy *proxy, int signal_number);

/*
 * SIGTERM, then wait up to timeout_ms. Returns the exit code (128 + signal
 * when killed by one) or CHILD_TIMED_OUT, after which the process is killed.
 */
int proxy_stop(struct proxy *proxy, int timeout_ms);

/* Wait for exit without signalling; same return values as proxy_stop(). */
int proxy_wait_exit(struct proxy *proxy, int timeout_ms);

/* Everything the proxy wrote to stderr so far (malloc'd, never NULL). */
char *proxy_stderr(const struct proxy *proxy);

/* Poll stderr until it contains `needle`; false after timeout_ms. */
bool proxy_stderr_wait_for(const struct proxy *proxy, const char *needle, int timeout_ms);
/* The same until it contains `needle` `count` times (the n-th reload's
 * "reloaded", say). */
bool proxy_stderr_wait_for_count(const struct proxy *proxy, const char *needle, int count, int timeout_ms);

/* Open file descriptors of the proxy (/proc/PID/fd), -1 if unreadable. */
int proxy_fd_count(const struct proxy *proxy);
/* The same, sockets only. */
int proxy_socket_count(const struct proxy *proxy);
/* count_of(proxy) once it has not changed for hold_ms (sampled every
 * 10 ms), or its last value after limit_ms: for baselines and final counts
 * taken while the proxy may still be closing a connection it just had. */
int proxy_count_when_still(const struct proxy *proxy, int (*count_of)(const struct proxy *), int hold_ms,
                           int limit_ms);

/* A number from /proc/PID/status: field is the label with its colon
 * ("VmRSS:" in KiB, "Threads:"); -1 if unreadable. */
long proxy_status_value(const struct proxy *proxy, const char *field);

/* Minor page faults of the whole process so far (/proc/PID/stat), -1 if
 * unreadable. */
long proxy_minor_faults(const struct proxy *proxy);

/* Whether the running proxy has AddressSanitizer's runtime mapped
 * (/proc/PID/maps): its freed memory then waits in ASan's quarantine, so
 * its RSS says nothing about leaks. */
bool proxy_runs_under_asan(const struct proxy *proxy);

/* A duplicate of the proxy's own TCP socket whose peer is 127.0.0.1:peer_port
 * (pidfd_getfd(2)), for a test to read its TCP_INFO; -1 if there is none.
 * The caller closes it; the proxy's socket is not affected. */
int proxy_socket_with_peer(const struct proxy *proxy, uint16_t peer_port);
/* Kill the process if still running and free what the struct owns (idempotent). */
void proxy_release(struct proxy *proxy);

#endif
