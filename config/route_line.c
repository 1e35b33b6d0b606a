/*
 * route_line.c - split a plain [routes] line without inih (see route_line.h).
 *
 * Why: a reload of 100,000 routes spent a third of its time in inih's line
 * scan, which calls strchr twice per character (its key delimiters and its
 * inline-comment prefixes). This reads the common form in one pass and
 * answers "not mine" for anything else: a comment, a section, a ':' or ';'
 * anywhere it could matter, a space inside a word, a non-ASCII byte.
 * Must never: accept a line inih would read differently, write to a line it
 * refuses, read past the line's NUL.
 */
#include "route_line.h"

#include <stddef.h>

/* Bytes of a word: printable ASCII but ';' (a comment may start there).
 * A name also ends at '=' or ':', where inih ends a key. */
enum { TARGET_BYTE = 1, NAME_BYTE = 2 };
static const unsigned char word_byte[256] = {
    ['!' ... '9'] = TARGET_BYTE | NAME_BYTE, [':'] = TARGET_BYTE,
    ['<'] = TARGET_BYTE | NAME_BYTE,         ['='] = TARGET_BYTE,
    ['>' ... '~'] = TARGET_BYTE | NAME_BYTE,
};

static bool is_blank(unsigned char byte)
{
    return byte == ' ' || byte == '\t';
}

/* inih trims with isspace() in the C locale. */
static bool is_trailing_space(unsigned char byte)
{
    return byte == ' ' || (byte >= '\t' && byte <= '\r');
}

static size_t word_length(const char *text, unsigned char kind)
{
    size_t length = 0;
    while (word_byte[(unsigned char)text[length]] & kind)
        length++;
    return length;
}

bool route_line_split(char *line, char **name, char **target)
{
    if (line[0] == '#' || line[0] == '[')
        return false;
    size_t name_length = word_length(line, NAME_BYTE);
    if (name_length == 0)
        return false;
    size_t at = name_length;
    while (is_blank((unsigned char)line[at]))
        at++;
    if (line[at] != '=')
        return false;
    at++;
    while (is_blank((unsigned char)line[at]))
        at++;
    size_t target_start = at;
    size_t target_length = word_length(line + target_start, TARGET_BYTE);
    if (target_length == 0)
        return false;
    for (at = target_start + target_length; line[at]; at++)
        if (!is_trailing_space((unsigned char)line[at]))
            return false;
    line[name_length] = '\0';
    line[target_start + target_length] = '\0';
    *name = line;
    *target = line + target_start;
    return true;
}
