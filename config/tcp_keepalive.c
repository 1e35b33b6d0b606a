/*
 * tcp_keepalive.c - validates a `tcp_keepalive` value (see tcp_keepalive.h).
 */
#include "tcp_keepalive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

/* IDLE or INTERVAL: empty (0, the system's), or a duration of whole seconds
 * the kernel takes. */
static bool parse_seconds(const char *text, const char *what, int *out, char *error, size_t error_size)
{
    uint64_t ms;
    *out = 0;
    if (*text == '\0')
        return true;
    if (units_parse_duration(text, &ms) && ms % 1000 == 0 && ms >= 1000 &&
        ms <= (uint64_t)TCP_KEEPALIVE_TIME_MAX * 1000) {
        *out = (int)(ms / 1000);
        return true;
    }
    snprintf(error, error_size, "%s '%s' must be whole seconds from 1s to %ds (e.g. 75s, 30m)", what, text,
             TCP_KEEPALIVE_TIME_MAX);
    return false;
}

static bool parse_probes(const char *text, int *out, char *error, size_t error_size)
{
    *out = 0;
    if (*text == '\0')
        return true;
    uint64_t number;
    if (units_parse_count(text, 1, TCP_KEEPALIVE_COUNT_MAX, &number)) {
        *out = (int)number;
        return true;
    }
    snprintf(error, error_size, "COUNT '%s' must be a number from 1 to %d", text, TCP_KEEPALIVE_COUNT_MAX);
    return false;
}

bool tcp_keepalive_split(const char *value, char parts[3][TCP_KEEPALIVE_PART_MAX])
{
    const char *start = value;
    for (int i = 0; i < 3; i++) {
        const char *colon = strchr(start, ':');
        bool last = i == 2;
        if (last != (colon == NULL))
            return false;
        size_t length = last ? strlen(start) : (size_t)(colon - start);
        if (length >= TCP_KEEPALIVE_PART_MAX)
            return false;
        memcpy(parts[i], start, length);
        parts[i][length] = '\0';
        if (!last)
            start = colon + 1;
    }
    return true;
}

bool tcp_keepalive_parse(const char *value, struct tcp_keepalive *keepalive, char *error, size_t error_size)
{
    struct tcp_keepalive parsed = { .enabled = true };
    if (strcmp(value, "off") == 0) {
        *keepalive = (struct tcp_keepalive){0};
        return true;
    }
    if (strcmp(value, "on") == 0) {
        *keepalive = parsed;
        return true;
    }
    char parts[3][TCP_KEEPALIVE_PART_MAX];
    if (!tcp_keepalive_split(value, parts)) {
        snprintf(error, error_size, "expected off, on or IDLE:INTERVAL:COUNT (e.g. 30m::10), got '%s'", value);
        return false;
    }
    if (!parse_seconds(parts[0], "IDLE", &parsed.idle, error, error_size) ||
        !parse_seconds(parts[1], "INTERVAL", &parsed.interval, error, error_size) ||
        !parse_probes(parts[2], &parsed.count, error, error_size))
        return false;
    *keepalive = parsed;
    return true;
}
