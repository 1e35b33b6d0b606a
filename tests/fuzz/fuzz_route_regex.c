/*
 * fuzz_route_regex.c - libFuzzer harness for nginx map regular
 * expressions: any pattern is translated and compiled or refused with a
 * reason, never crashes, leaks or overruns; a compiled one matches any
 * name of up to 253 bytes, and a refused one says why.
 *
 * Input: the pattern (after "~"), a newline, then the name.
 * Must never: keep state between inputs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/hostname.h"
#include "../../core/route_regex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *newline = memchr(data, '\n', size);
    size_t pattern_length = newline ? (size_t)(newline - data) : size;
    if (pattern_length > 400 || memchr(data, '\0', pattern_length))
        return 0;
    char pattern[404] = "~";
    memcpy(pattern + 1, data, pattern_length);
    pattern[pattern_length + 1] = '\0';
    const char *name = newline ? (const char *)newline + 1 : "";
    size_t name_length = newline ? size - pattern_length - 1 : 0;
    if (name_length > HOSTNAME_MAX)
        name_length = HOSTNAME_MAX;

    struct route_regex regex;
    char error[200] = "";
    if (!route_regex_compile(&regex, pattern, 7, error, sizeof error)) {
        if (error[0] == '\0' || !memchr(error, '\0', sizeof error))
            abort(); /* a refusal always says why */
        return 0;
    }
    if (regex.target != 7)
        abort();
    (void)route_regex_matches(&regex, name, name_length);
    route_regex_free(&regex);
    return 0;
}
