/*
 * fuzz_route_regex.c - libFuzzer harness for nginx map regular
 * expressions: any pattern is translated and compiled or refused with a
 * reason, never crashes, leaks or overruns; and a compiled one matches
 * exactly the names nginx's engine, PCRE2, matches (caselessly for "~*"),
 * for any valid server name, its case as sent. A difference aborts,
 * printing both.
 *
 * Input: the pattern (after "~", so "*..." is a "~*" pattern), a newline,
 * then the name.
 * Must never: keep state between inputs.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/hostname.h"
#include "../../core/route_regex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What nginx decides: 1 match, 0 none, -1 PCRE2 refuses the pattern or
 * gives up on the match (then there is nothing to compare). */
static int pcre_matches(const char *pattern, const char *name, size_t name_length)
{
    bool caseless = pattern[1] == '*';
    const char *body = pattern + (caseless ? 2 : 1);
    int error_code;
    PCRE2_SIZE error_offset;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)body, PCRE2_ZERO_TERMINATED, caseless ? PCRE2_CASELESS : 0,
                                     &error_code, &error_offset, NULL);
    if (!code)
        return -1;
    pcre2_match_data *match = pcre2_match_data_create_from_pattern(code, NULL);
    int result = match ? pcre2_match(code, (PCRE2_SPTR)name, name_length, 0, 0, match, NULL) : -1;
    pcre2_match_data_free(match);
    pcre2_code_free(code);
    if (result >= 0)
        return 1;
    return result == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *newline = memchr(data, '\n', size);
    size_t pattern_length = newline ? (size_t)(newline - data) : size;
    if (pattern_length > 400 || memchr(data, '\0', pattern_length))
        return 0;
    char pattern[404] = "~";
    memcpy(pattern + 1, data, pattern_length);
    pattern[pattern_length + 1] = '\0';
    const char *raw = newline ? (const char *)newline + 1 : "";
    size_t raw_length = newline ? size - pattern_length - 1 : 0;

    struct route_regex regex;
    char error[200] = "";
    if (!route_regex_compile(&regex, pattern, 7, error, sizeof error)) {
        if (error[0] == '\0' || !memchr(error, '\0', sizeof error))
            abort(); /* a refusal always says why */
        return 0;
    }
    if (regex.target != 7)
        abort();
    /* Names reach the table as the ClientHello parser leaves them: valid,
     * one trailing dot dropped, lower-cased for "~*", as sent for "~". */
    char name[HOSTNAME_MAX + 1], as_sent[HOSTNAME_MAX + 1];
    size_t name_length;
    if (hostname_normalize(raw, raw_length, name, &name_length)) {
        memcpy(as_sent, raw, name_length);
        as_sent[name_length] = '\0';
        bool ours = route_regex_matches(&regex, regex.case_sensitive ? as_sent : name, name_length);
        int nginx = pcre_matches(pattern, as_sent, name_length);
        if (nginx >= 0 && ours != (nginx == 1)) {
            fprintf(stderr, "pattern %s, name %s: snisplice %s, PCRE2 %s\n", pattern, as_sent,
                    ours ? "matches" : "does not match", nginx ? "matches" : "does not match");
            abort();
        }
    } else {
        (void)route_regex_matches(&regex, raw, raw_length > HOSTNAME_MAX ? HOSTNAME_MAX : raw_length);
    }
    route_regex_free(&regex);
    return 0;
}
