/*
 * log.h - diagnostics on stderr, one line per message, with a timestamp.
 * Never used per byte; per-connection lines only at debug level (-v).
 */
#ifndef SNISPLICE_IO_LOG_H
#define SNISPLICE_IO_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

void log_message(enum log_level level, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_message(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_message(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_message(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
    do { if (log_threshold >= LOG_DEBUG) log_message(LOG_DEBUG, __VA_ARGS__); } while (0)

/* For a warning a worker may meet per connection (a dead server, a source
 * it cannot bind): whether one is due, at most one a second per *last_ms
 * (0: never warned); notes now_ms when it is. The rest go to log_debug. */
static inline bool log_once_a_second(uint64_t *last_ms, uint64_t now_ms)
{
    if (*last_ms != 0 && now_ms < *last_ms + 1000)
        return false;
    *last_ms = now_ms;
    return true;
}

#endif
