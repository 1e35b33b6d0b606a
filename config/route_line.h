/*
 * route_line.h - a [routes] line of the plain form, split without inih.
 *
 * Owns one fast path of the config loader: "NAME = TARGET" read exactly as
 * inih (Debian's build: inline ';' comments, '=' or ':' ends a key) would
 * read it, for the lines that make up almost all of a big config. Any line
 * of another form is left to inih, so the two can never disagree on what a
 * line means; tests/unit/test_route_line.c checks that against libinih.
 */
#ifndef SNISPLICE_CONFIG_ROUTE_LINE_H
#define SNISPLICE_CONFIG_ROUTE_LINE_H

#include <stdbool.h>

/*
 * If `line` (one line as fgets read it, NUL-terminated) is printable ASCII
 * of the form NAME [ \t]* '=' [ \t]* TARGET [whitespace], with no ':' or ';'
 * in NAME, no ';' in TARGET and NAME not starting a comment or a section:
 * cut it in place and point *name and *target at the two words, which are
 * what inih would have passed to its handler; returns true. Otherwise
 * returns false and leaves line untouched.
 */
bool route_line_split(char *line, char **name, char **target);

#endif
