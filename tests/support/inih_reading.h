/*
 * inih_reading.h - what libinih makes of one line in [routes]: the
 * reference the config loader's fast path (config/route_line.c) is held
 * to by its unit test and its fuzzer. Header-only so the fuzzer, built
 * apart from the test support library, can use it too.
 */
#ifndef SNISPLICE_TESTS_INIH_READING_H
#define SNISPLICE_TESTS_INIH_READING_H

#include <ini.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct inih_reading {
    int calls;         /* name/value pairs inih reported */
    char name[256];    /* the last pair's */
    char value[256];   /* "(null)" for a name without '=' */
    int syntax_error;  /* ini_parse_string's result: 0, or the first bad line */
};

static int inih_reading_remember(void *user, const char *section, const char *name, const char *value)
{
    (void)section;
    struct inih_reading *reading = user;
    reading->calls++;
    snprintf(reading->name, sizeof reading->name, "%s", name);
    snprintf(reading->value, sizeof reading->value, "%s", value ? value : "(null)");
    return 1;
}

/* Parse "[routes]\n" + line (at most 280 bytes) the way the proxy's inih would. */
static inline void inih_reading_of_route_line(const char *line, struct inih_reading *reading)
{
    char document[300];
    snprintf(document, sizeof document, "[routes]\n%s", line);
    *reading = (struct inih_reading){ 0 };
    reading->syntax_error = ini_parse_string(document, inih_reading_remember, reading);
}

/* Whether inih read the line as one pair, name = value, and nothing else:
 * what the fast path's split of every line it takes must match. */
static inline bool inih_reading_agrees(const struct inih_reading *reading, const char *name, const char *value)
{
    return reading->syntax_error == 0 && reading->calls == 1 && strcmp(name, reading->name) == 0 &&
           strcmp(value, reading->value) == 0;
}

#endif
