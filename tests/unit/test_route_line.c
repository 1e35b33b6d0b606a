/*
 * test_route_line.c - the loader's fast path for "NAME = TARGET" lines must
 * read every line it takes exactly as libinih (the build the proxy links)
 * would: same name, same target, no syntax error. A line it declines goes
 * to inih, so declining is always safe; taking a line inih reads another
 * way would silently change a user's route.
 */
#include <criterion/criterion.h>
#include <ini.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../config/route_line.h"
#include "../support/inih_reading.h"

/* Split `line` both ways; returns whether the fast path took it. */
static bool split_both_ways(const char *line)
{
    struct inih_reading reading;
    inih_reading_of_route_line(line, &reading);

    char copy[256];
    snprintf(copy, sizeof copy, "%s", line);
    char *name = NULL, *target = NULL;
    if (!route_line_split(copy, &name, &target)) {
        cr_assert_str_eq(copy, line, "a declined line is left as it was");
        return false;
    }
    cr_assert(inih_reading_agrees(&reading, name, target),
              "fast path read '%s' as '%s' = '%s'; inih: syntax error %d, %d pairs, the last '%s' = '%s'", line, name,
              target, reading.syntax_error, reading.calls, reading.name, reading.value);
    return true;
}

Test(route_line, the_lines_of_a_big_config_take_the_fast_path)
{
    const char *lines[] = {
        "svc00001.tenant001.example.net = u1\n",
        "*.apps00016.cluster16.example.org=u16\r\n",
        ".site00019.example.com\t=\tu19",
        "www.example.* = 127.0.0.1:8443 \n",
        "~^(www|api)\\.example\\.com$ = [::1]:443\n",
        "default = u0\n",
        "a#b = c#d\n",
        "a = b=c\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        cr_assert(split_both_ways(lines[i]), "'%s' should take the fast path", lines[i]);
}

Test(route_line, other_forms_are_left_to_inih)
{
    const char *lines[] = {
        "; a comment\n", "# a comment\n", "[routes]\n", "\n", "a:b = c\n",      "a = b ; why\n",
        "a = b c\n",     "a b = c\n",     "a =\n",     "= b\n", " a = b\n",      "\va = b\n",
        "a = \xc3\xa4\n", "\xc3\xa4 = b\n", "a ; = b\n", "a = ;b\n", "a\x7f = b\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        cr_assert_not(split_both_ways(lines[i]), "'%s' should be left to inih", lines[i]);
}

static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13, *state ^= *state >> 7, *state ^= *state << 17;
    return *state;
}

/* A word of letters, or now and then one of the bytes that steer inih. */
static void append_word(char *line, uint64_t *state)
{
    static const char steering[] = { '.', '*', '~', '=', ':', ';', '#', '[', ']', ' ', '\t', '\r', '\v',
                                     '\f', '\x7f', '\x80', '\x01' };
    size_t length = next_random(state) % 6;
    size_t at = strlen(line);
    for (size_t i = 0; i < length; i++) {
        uint64_t pick = next_random(state);
        line[at++] = pick % 3 ? (char)('a' + pick % 26) : steering[(pick >> 8) % sizeof steering];
    }
    line[at] = '\0';
}

/* Lines shaped like routes, mixed with the bytes that steer inih's
 * reading, compared with inih itself. */
Test(route_line, random_lines_read_as_inih_reads_them)
{
    static const char *separators[] = { "=", " = ", "\t=", " =\t ", ":", " =;", "", " " };
    static const char *endings[] = { "", "\n", " \r\n", " ;x\n", " y", "\t\v\n" };
    uint64_t state = 0x9e3779b97f4a7c15u;
    int taken = 0;
    for (int trial = 0; trial < 200000; trial++) {
        char line[64] = "";
        append_word(line, &state);
        strcat(line, separators[next_random(&state) % 8]);
        append_word(line, &state);
        strcat(line, endings[next_random(&state) % 6]);
        taken += split_both_ways(line);
    }
    cr_assert_gt(taken, 10000, "the fast path took only %d of the random lines: the comparison says little", taken);
}
