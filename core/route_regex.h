/*
 * route_regex.h - nginx map regular expressions for server names:
 * "~PATTERN" (case-sensitive) and "~*PATTERN" (case-insensitive), written
 * in PCRE's syntax as nginx users write them.
 *
 * A pattern is translated to a POSIX extended expression and compiled
 * with the C library's regcomp, so no new dependency. Only whether a name
 * matches counts (nginx map values that use captures are not supported),
 * so a lazy quantifier (".*?") means the same as a greedy one and groups
 * of any kind become plain groups. What has no POSIX equivalent
 * (look-around, back-references, possessive quantifiers, \b) is refused
 * with a reason, never approximated. Pure: no I/O, no global state.
 */
#ifndef SNISPLICE_CORE_ROUTE_REGEX_H
#define SNISPLICE_CORE_ROUTE_REGEX_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUTE_REGEX_TEXT_MAX 512 /* a translated expression, NUL included */

struct route_regex {
    regex_t compiled;
    int32_t target;
    /* "~": matched against the name with its case as sent, as nginx does;
     * "~*": against the lower-cased name, with a lower-cased expression. */
    bool case_sensitive;
};

/* Whether a route pattern is a regular expression ("~..." or "~*..."). */
bool route_regex_is_pattern(const char *pattern);

/* PCRE syntax to POSIX ERE: false with a reason in error when the pattern
 * uses something POSIX cannot express or the result does not fit. */
bool route_regex_translate(const char *pcre, char *out, size_t out_size, char *error, size_t error_size);

/* Compile "~PATTERN" or "~*PATTERN" for target. False with a reason in
 * error; nothing to free then. */
bool route_regex_compile(struct route_regex *regex, const char *pattern, int32_t target, char *error,
                         size_t error_size);

/* name: a normalised server name (lower case), len bytes, not necessarily
 * NUL-terminated. Thread-safe: any number of workers may match at once. */
bool route_regex_matches(const struct route_regex *regex, const char *name, size_t len);

void route_regex_free(struct route_regex *regex);

#endif
