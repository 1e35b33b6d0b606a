/*
 * log.h - diagnostics on stderr, one line per message, with a timestamp.
 * Never used per byte; per-connection lines only at debug level (-v).
 */
#ifndef SNISPLICE_IO_LOG_H
#define SNISPLICE_IO_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

void log_message(enum log_level level, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_message(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_message(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_message(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
    do { if (log_threshold >= LOG_DEBUG) log_message(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
