/*
 * route_regex.c - nginx (PCRE) map regular expressions, translated to
 * POSIX extended expressions and matched with regexec.
 *
 * The translation walks the pattern once. Outside a bracket expression
 * PCRE and POSIX ERE agree on ., *, +, ?, {n,m}, |, (), ^ and $; they
 * differ on escapes (\d, \w, \. ...), group forms ((?:, (?<name>), lazy
 * and possessive quantifiers, and backslashes inside [...], where POSIX
 * takes a backslash literally. Those are rewritten or refused here.
 */
#include "route_regex.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostname.h"

/* glibc's regcomp copies a sub-expression once per count, and counts
 * nested in counts multiply: "^(a{1,64}){1,64}$" compiles to 66 MiB and
 * takes 12 ms to match a crafted 253-byte name, in a worker. Nested
 * counts may make at most this many copies, which still takes a DNS label
 * counted inside a count ("([a-z0-9-]{1,63}\.){1,4}": 252, 13 us). */
#define COPIES_MAX 256
#define GROUP_DEPTH_MAX 32

struct translation {
    const char *in;  /* the next PCRE character */
    char *out;
    size_t length;   /* bytes written to out */
    size_t size;
    char *error;
    size_t error_size;
    bool failed;
    /* Copies regcomp makes: per open group (0: the whole pattern), the
     * most any of its counted repeats makes; for the last atom, what a
     * count after it multiplies (1, or a group's own copies). */
    uint32_t group_copies[GROUP_DEPTH_MAX + 1];
    unsigned depth;
    uint32_t atom_copies;
    /* An anchor (^ $ \A \z) in each open group, and in the last atom: a
     * repeated anchor is refused, glibc matches "x(^|\.){2}" where PCRE
     * does not (found by a differential test). */
    bool group_anchor[GROUP_DEPTH_MAX + 1];
    bool atom_anchor;
    /* "~*": the result is lower-cased afterwards (fold_case), which a
     * range must survive. */
    bool case_insensitive;
};

static bool fail(struct translation *t, const char *reason)
{
    if (!t->failed)
        snprintf(t->error, t->error_size, "%s", reason);
    t->failed = true;
    return false;
}

static bool emit(struct translation *t, const char *text)
{
    size_t length = strlen(text);
    if (t->length + length + 1 > t->size)
        return fail(t, "too long once translated");
    memcpy(t->out + t->length, text, length + 1);
    t->length += length;
    return true;
}

static bool emit_char(struct translation *t, char c)
{
    char text[2] = { c, '\0' };
    return emit(t, text);
}

/* \d \w \s and their negations as whole bracket expressions, and the
 * anchors \A \z \Z; NULL for other letters. */
static const char *class_outside_brackets(char letter)
{
    switch (letter) {
    case 'd': return "[0-9]";
    case 'D': return "[^0-9]";
    case 'w': return "[A-Za-z0-9_]";
    case 'W': return "[^A-Za-z0-9_]";
    case 's': return "[[:space:]]";
    case 'S': return "[^[:space:]]";
    case 'A': return "^";
    case 'z': case 'Z': return "$";
    default: return NULL;
    }
}

/* An escape outside [...]: "\x" at t->in. */
static bool translate_escape(struct translation *t)
{
    char c = t->in[1];
    if (c == '\0')
        return fail(t, "ends with a lone backslash");
    t->in += 2;
    if (isalnum((unsigned char)c)) {
        const char *class = class_outside_brackets(c);
        if (!class) {
            char reason[64];
            snprintf(reason, sizeof reason, "\\%c has no POSIX equivalent", c);
            return fail(t, reason);
        }
        return emit(t, class);
    }
    /* Punctuation stands for itself; the characters special to ERE keep
     * their backslash, the rest lose it (POSIX leaves "\-" undefined). */
    if (strchr(".[]{}()*+?^$|\\", c)) {
        char escaped[3] = { '\\', c, '\0' };
        return emit(t, escaped);
    }
    return emit_char(t, c);
}

static bool open_group(struct translation *t)
{
    if (t->depth == GROUP_DEPTH_MAX)
        return fail(t, "groups nested more than 32 deep");
    t->group_copies[++t->depth] = 1;
    t->group_anchor[t->depth] = false;
    return emit(t, "(");
}

/* ")": what a count after it multiplies is the group's own copies. */
static bool close_group(struct translation *t)
{
    t->in++;
    if (t->depth == 0)
        return fail(t, "unmatched )"); /* glibc would take it as a literal; PCRE refuses it */
    t->atom_copies = t->group_copies[t->depth];
    t->atom_anchor = t->group_anchor[t->depth--];
    if (t->atom_copies > t->group_copies[t->depth])
        t->group_copies[t->depth] = t->atom_copies;
    t->group_anchor[t->depth] |= t->atom_anchor;
    return emit(t, ")");
}

/* "(" at t->in: a group. Capturing or not makes no difference to whether
 * a name matches, so every form that only groups becomes "(". */
static bool translate_group(struct translation *t)
{
    const char *in = t->in;
    if (in[1] != '?' && in[1] != '*') {
        t->in++;
        return open_group(t);
    }
    if (in[1] == '?' && in[2] == ':') {
        t->in += 3;
        return open_group(t);
    }
    const char *name = NULL;
    char close = '>';
    if (in[1] == '?' && in[2] == '<' && in[3] != '=' && in[3] != '!')
        name = in + 3;
    else if (in[1] == '?' && in[2] == 'P' && in[3] == '<')
        name = in + 4;
    else if (in[1] == '?' && in[2] == '\'')
        name = in + 3, close = '\'';
    if (!name) {
        if (in[1] == '?' && in[2] == 'i' && in[3] == ')')
            return fail(t, "(?i): write ~* for a case-insensitive expression");
        return fail(t, "(?... look-around, options and verbs have no POSIX equivalent");
    }
    /* PCRE's names: a letter or "_", then letters, digits and "_", at
     * most 32. Anything else after "(?<" is not a name: "(?<*...)" is a
     * look-behind there, which the checks above would not see. */
    if (!isalpha((unsigned char)*name) && *name != '_')
        return fail(t, "a group name starts with a letter or _ (and (?<*, a look-behind, has no POSIX equivalent)");
    const char *end = name;
    while (isalnum((unsigned char)*end) || *end == '_')
        end++;
    if (*end != close)
        return fail(t, *end ? "a group name has only letters, digits and _" : "unterminated group name");
    if (end - name > 32)
        return fail(t, "a group name has at most 32 characters");
    t->in = end + 1;
    return open_group(t);
}

/* A class escape inside [...]: what to write there, or NULL. */
static const char *class_inside_brackets(char letter)
{
    switch (letter) {
    case 'd': return "0-9";
    case 'w': return "A-Za-z0-9_";
    case 's': return "[:space:]";
    default: return NULL;
    }
}

/* Under "~*" the expression is lower-cased after translation and names
 * arrive lower-cased: a range must then still hold every lower-case
 * letter that PCRE's caseless range holds in either case. "[A-Z]" becomes
 * "[a-z]" and keeps them all; "[!-[]" holds only upper-case letters and
 * lower-casing does not touch it: such a range is refused. */
static bool range_survives_folding(char start, char end)
{
    unsigned char folded_start = (unsigned char)tolower((unsigned char)start);
    unsigned char folded_end = (unsigned char)tolower((unsigned char)end);
    for (int letter = 'a'; letter <= 'z'; letter++) {
        int upper = toupper(letter);
        bool caseless = (start <= letter && letter <= end) || (start <= upper && upper <= end);
        bool folded = folded_start <= letter && letter <= folded_end;
        if (caseless != folded)
            return false;
    }
    return true;
}

/* "[" at t->in, up to and including its "]". POSIX reads a backslash in
 * a bracket expression literally, so PCRE's escapes there are rewritten;
 * "-" and "^" taken from an escape go last, where they are literal. */
static bool translate_brackets(struct translation *t)
{
    size_t open_at = t->length;
    t->in++;
    if (!emit(t, "["))
        return false;
    bool negated = *t->in == '^';
    if (negated && !emit_char(t, *t->in++))
        return false;
    size_t content_start = t->length;
    if (*t->in == ']' && !emit_char(t, *t->in++))
        return false;
    bool dash = false, caret = false, bracket = false, after_class = false;
    int range = 0; /* 1: a character that may start a range, 2: it and '-', 3: a range just ended */
    char range_start = 0;
    while (*t->in && *t->in != ']') {
        bool was_after_class = after_class;
        after_class = false;
        /* A literal '-' (last, after \d \w \s or after a range, where PCRE
         * cannot read a range: "[a-z0-9-_]") goes last too, so that what is
         * moved there cannot join it into a range. */
        if (*t->in == '-' && (t->in[1] == ']' || was_after_class || range == 3)) {
            t->in++;
            dash = true;
            range = 0;
            continue;
        }
        if (t->in[0] == '[' && t->in[1] == ':') {
            const char *end = strstr(t->in + 2, ":]");
            if (!end)
                return fail(t, "unterminated [: class");
            char class[32];
            size_t length = (size_t)(end + 2 - t->in);
            if (length >= sizeof class)
                return fail(t, "unknown [: class");
            memcpy(class, t->in, length);
            class[length] = '\0';
            t->in = end + 2;
            range = 0;
            if (!emit(t, class))
                return false;
            continue;
        }
        /* A '^' with nothing written yet after "[" (only escapes moved
         * last before it) would negate the class: it goes last too. */
        if (*t->in == '^' && t->length == content_start) {
            if (t->in[1] == '-' && t->in[2] && t->in[2] != ']')
                return fail(t, "a range from ^ first in [...]: write the class in another order");
            t->in++;
            caret = true;
            range = 0;
            continue;
        }
        if (*t->in != '\\') {
            char c = *t->in++;
            if (range == 2 && t->case_insensitive && !range_survives_folding(range_start, c))
                return fail(t, "in ~*, a range across letters from or to a non-letter ([!-[], [0-a]): write its "
                               "letters as a range of their own");
            if (range != 2 && c != '-')
                range_start = c;
            range = range == 2 ? 3 : (c == '-' && range == 1) ? 2 : 1;
            if (!emit_char(t, c))
                return false;
            continue;
        }
        bool range_before = range == 2;
        range = 0;
        char c = t->in[1];
        if (c == '\0')
            break;
        /* An escaped end of a range: punctuation stands in place without
         * its backslash ("[%-\.]" is "[%-.]"), but the characters that
         * move or mean something in POSIX brackets cannot end a range
         * ("[!-\-]", "[\[-a]"). */
        bool starts_range = t->in[2] == '-' && t->in[3] && t->in[3] != ']';
        bool in_place = !class_inside_brackets(c) && !isalnum((unsigned char)c) && !strchr("]-^[", c);
        if (!class_inside_brackets(c) && !in_place && (range_before || starts_range))
            return fail(t, "a range with an escaped end inside [...]: write the character without '\\'");
        if (in_place && range_before && t->case_insensitive && !range_survives_folding(range_start, c))
            return fail(t, "in ~*, a range across letters from or to a non-letter ([!-[], [0-a]): write its "
                           "letters as a range of their own");
        if (in_place && !range_before)
            range_start = c;
        if (in_place)
            range = range_before ? 3 : 1;
        t->in += 2;
        const char *class = class_inside_brackets(c);
        if (class) {
            if (!emit(t, class))
                return false;
            after_class = true;
        } else if (isalnum((unsigned char)c)) {
            char reason[64];
            snprintf(reason, sizeof reason, "\\%c inside [...] has no POSIX equivalent", c);
            return fail(t, reason);
        } else if (c == ']') {
            return fail(t, "\\] inside [...]: write ] first in the class");
        } else if (c == '-') {
            dash = true;
        } else if (c == '^') {
            caret = true;
        } else if (c == '[') {
            /* Written in place, "[\\[:digit:]]" would open a POSIX class. */
            bracket = true;
        } else if (!emit_char(t, c)) {
            return false;
        }
    }
    if (*t->in != ']')
        return fail(t, "unterminated [");
    t->in++;
    /* Moved characters: '^' is literal anywhere but first, '-' first or
     * last, '[' anywhere not before ':', '.' or '='; with nothing else in
     * the class, "-[^" keeps them all literal. */
    bool empty = t->length == content_start;
    if (caret && empty && !dash && !bracket && !negated) {
        /* "[\^]" is the caret alone: POSIX has no bracket for it, but an
         * escaped caret outside one means the same. */
        t->length = open_at;
        return emit(t, "\\^");
    }
    char moved[5] = "";
    size_t count = 0;
    if (dash && empty)
        moved[count++] = '-';
    if (bracket)
        moved[count++] = '[';
    if (caret)
        moved[count++] = '^';
    if (dash && !empty)
        moved[count++] = '-';
    moved[count] = '\0';
    return emit(t, moved) && emit(t, "]");
}

/* After a quantifier: PCRE's lazy "?" changes which match is found, not
 * whether there is one, so it goes; a possessive "+" can change whether,
 * so it is refused. */
static bool after_quantifier(struct translation *t)
{
    if (t->atom_anchor)
        return fail(t, "a repeated anchor (^ or $ under a quantifier) has no reliable POSIX equivalent");
    if (*t->in == '+')
        return fail(t, "possessive quantifiers (*+, ++) have no POSIX equivalent");
    if (*t->in == '?')
        t->in++;
    /* PCRE refuses a quantifier on a quantifier ("a**": nothing to
     * repeat); glibc takes it, and "a+*+*+*..." takes it seconds. */
    if (*t->in == '*' || *t->in == '+' || *t->in == '?' || (*t->in == '{' && isdigit((unsigned char)t->in[1])))
        return fail(t, "a quantifier after a quantifier: nothing to repeat");
    return true;
}

/* "{" at t->in: a counted quantifier ({2}, {2,}, {2,5}) as POSIX has
 * it, or, as PCRE reads any other "{", a literal brace. */
static bool translate_braces(struct translation *t)
{
    const char *end = t->in + 1;
    size_t digits = strspn(end, "0123456789");
    end += digits;
    if (digits > 0 && *end == ',')
        end += 1 + strspn(end + 1, "0123456789");
    if (digits == 0 || *end != '}') {
        t->in++;
        return emit(t, "\\{");
    }
    char counted[32];
    size_t length = (size_t)(end + 1 - t->in);
    if (length >= sizeof counted)
        return fail(t, "repeat count too large");
    unsigned long lower = strtoul(t->in + 1, NULL, 10);
    const char *comma = memchr(t->in, ',', length);
    unsigned long upper = comma && comma[1] != '}' ? strtoul(comma + 1, NULL, 10) : lower;
    unsigned long largest = upper > lower ? upper : lower;
    if (largest > COPIES_MAX || (uint64_t)largest * t->atom_copies > COPIES_MAX)
        return fail(t, "counted repeats make more than 256 copies (nested counts multiply); write + or *");
    uint32_t copies = (uint32_t)largest * t->atom_copies;
    if (copies > t->group_copies[t->depth])
        t->group_copies[t->depth] = copies;
    memcpy(counted, t->in, length);
    counted[length] = '\0';
    t->in = end + 1;
    return emit(t, counted) && after_quantifier(t);
}

static bool translate(const char *pcre, bool case_insensitive, char *out, size_t out_size, char *error,
                      size_t error_size)
{
    struct translation t = { .in = pcre, .out = out, .size = out_size, .error = error, .error_size = error_size,
                             .group_copies = { 1 }, .atom_copies = 1, .case_insensitive = case_insensitive };
    if (out_size == 0)
        return false;
    out[0] = '\0';
    while (*t.in && !t.failed) {
        char c = *t.in;
        if (c == ')') {
            close_group(&t);
            continue; /* a count may follow: atom_copies stays the group's */
        }
        if (c == '{' || c == '*' || c == '+' || c == '?') {
            /* A quantifier: it applies to the last atom (copies, anchor). */
            if (c == '{') {
                translate_braces(&t);
            } else {
                t.in++;
                if (emit_char(&t, c))
                    after_quantifier(&t);
            }
            t.atom_copies = 1;
            t.atom_anchor = false;
            continue;
        }
        t.atom_copies = 1;
        t.atom_anchor = c == '^' || c == '$' ||
                        (c == '\\' && (t.in[1] == 'A' || t.in[1] == 'z' || t.in[1] == 'Z'));
        t.group_anchor[t.depth] |= t.atom_anchor;
        if (c == '\\') {
            translate_escape(&t);
        } else if (c == '(') {
            translate_group(&t);
        } else if (c == '[') {
            translate_brackets(&t);
        } else if (c == '}') {
            t.in++;
            emit(&t, "\\}");
        } else {
            t.in++;
            emit_char(&t, c);
        }
    }
    return !t.failed;
}

bool route_regex_translate(const char *pcre, char *out, size_t out_size, char *error, size_t error_size)
{
    return translate(pcre, false, out, out_size, error, error_size);
}

/* "~*": names arrive lower-cased, so a lower-cased expression matched
 * exactly is a case-insensitive match. glibc's REG_ICASE is not used:
 * it folds ranges that reach past the letters ("[^m-{]") over the
 * punctuation between 'Z' and 'a', which PCRE does not. After the
 * translation the expression has no letter escapes left, and of the
 * [:class:] names only upper and lower change meaning: both become alpha,
 * as PCRE reads them caselessly. */
static void fold_case(char *expression)
{
    for (char *at = expression; *at; at++) {
        if (strncmp(at, "[:upper:]", 9) == 0 || strncmp(at, "[:lower:]", 9) == 0) {
            memcpy(at, "[:alpha:]", 9);
            at += 8;
            continue;
        }
        *at = (char)tolower((unsigned char)*at);
    }
}

bool route_regex_is_pattern(const char *pattern)
{
    return pattern[0] == '~';
}

bool route_regex_compile(struct route_regex *regex, const char *pattern, int32_t target, char *error,
                         size_t error_size)
{
    if (!route_regex_is_pattern(pattern)) {
        snprintf(error, error_size, "a regular expression starts with ~ or ~*");
        return false;
    }
    bool case_insensitive = pattern[1] == '*';
    const char *body = pattern + (case_insensitive ? 2 : 1);
    if (*body == '\0') {
        snprintf(error, error_size, "empty regular expression");
        return false;
    }
    char translated[ROUTE_REGEX_TEXT_MAX];
    if (!translate(body, case_insensitive, translated, sizeof translated, error, error_size))
        return false;
    if (case_insensitive)
        fold_case(translated);
    int status = regcomp(&regex->compiled, translated, REG_EXTENDED | REG_NOSUB);
    if (status != 0) {
        /* Not regfree'd: after a failed regcomp the regex_t is undefined
         * (glibc out of memory for its first allocation returns before
         * setting the pointer regfree frees) and regcomp freed its own. */
        char reason[128];
        regerror(status, &regex->compiled, reason, sizeof reason);
        snprintf(error, error_size, "%s", reason);
        return false;
    }
    regex->target = target;
    regex->case_sensitive = !case_insensitive;
    return true;
}

bool route_regex_matches(const struct route_regex *regex, const char *name, size_t len)
{
    /* regexec wants a C string; names are at most HOSTNAME_MAX bytes. */
    char text[HOSTNAME_MAX + 1];
    if (len > HOSTNAME_MAX)
        return false;
    memcpy(text, name, len);
    text[len] = '\0';
    return regexec(&regex->compiled, text, 0, NULL, 0) == 0;
}

void route_regex_free(struct route_regex *regex)
{
    regfree(&regex->compiled);
}
