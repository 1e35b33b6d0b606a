/*
 * test_route_regex.c - nginx map regular expressions (`~re`, `~*re`):
 * what users copy from their nginx.conf matches the same names, what
 * POSIX cannot express is refused with a reason, and a route table tries
 * them after exact names and suffixes, in order, before the default.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../core/route_regex.h"
#include "../../core/route_table.h"

static bool matches(const char *pattern, const char *name)
{
    struct route_regex regex;
    char error[200];
    cr_assert(route_regex_compile(&regex, pattern, 1, error, sizeof error), "%s: %s", pattern, error);
    bool matched = route_regex_matches(&regex, name, strlen(name));
    route_regex_free(&regex);
    return matched;
}

static void expect_refused(const char *pattern, const char *reason)
{
    struct route_regex regex;
    char error[200] = "";
    cr_assert_not(route_regex_compile(&regex, pattern, 1, error, sizeof error), "%s compiled", pattern);
    cr_assert(strstr(error, reason), "%s: '%s' does not say '%s'", pattern, error, reason);
}

static void expect_translated(const char *pcre, const char *posix)
{
    char out[ROUTE_REGEX_TEXT_MAX], error[200];
    cr_assert(route_regex_translate(pcre, out, sizeof out, error, sizeof error), "%s: %s", pcre, error);
    cr_assert_str_eq(out, posix, "%s", pcre);
}

/* Forms found in self-hosters' nginx SNI maps. */
Test(route_regex, common_nginx_patterns_match_as_in_nginx)
{
    cr_assert(matches("~^www\\.(.+)$", "www.example.com"));
    cr_assert_not(matches("~^www\\.(.+)$", "wwwxexample.com"), "\\. is a dot, not any character");
    cr_assert_not(matches("~^www\\.(.+)$", "www."));
    cr_assert(matches("~^(?<app>[\\w-]+)\\.apps\\.example\\.org$", "my-app_1.apps.example.org"));
    cr_assert_not(matches("~^(?<app>[\\w-]+)\\.apps\\.example\\.org$", "a.b.apps.example.org"));
    cr_assert(matches("~^(?:matrix|element)\\.example\\.net$", "element.example.net"));
    cr_assert_not(matches("~^(?:matrix|element)\\.example\\.net$", "xelement.example.net"));
    cr_assert(matches("~^node\\d{2,3}\\.example\\.com$", "node042.example.com"));
    cr_assert_not(matches("~^node\\d{2,3}\\.example\\.com$", "node4.example.com"));
    cr_assert(matches("~^(.*?)\\.example\\.com$", "a.b.example.com"), "lazy is greedy for matching");
    cr_assert(matches("~example", "www.example.com"), "unanchored searches, as PCRE does");
    cr_assert(matches("~^[^.]+\\.lan$", "git.lan"));
    cr_assert_not(matches("~^[^.]+\\.lan$", "a.git.lan"));
    cr_assert(matches("~^a[\\.\\-]b$", "a-b"));
    cr_assert(matches("~^a[\\.\\-]b$", "a.b"));
    cr_assert_not(matches("~^a[\\.\\-]b$", "axb"));
    cr_assert(matches("~^a{b$", "a{b"), "a brace that is no repeat count is a literal, as in PCRE");
    cr_assert(matches("~(^|\\.)example\\.com$", "a.example.com"), "an anchor in a group that is not repeated");
    cr_assert_not(matches("~(^|\\.)example\\.com$", "aexample.com"));
    cr_assert(matches("~^(www\\.)?example\\.com$", "example.com"));
    cr_assert(matches("~[.\\-_]", "_"), "an escaped '-' between two characters is no range");
    /* After a range PCRE reads '-' literally; common in real configs. */
    cr_assert(matches("~^[a-z0-9-_]+$", "my_host-1"));
    cr_assert(matches("~^[a-z0-9-.]+$", "a.b-c"));
    cr_assert_not(matches("~^[a-z0-9-.]+$", "a_b"));
    /* '-' after a class escape or last is literal, and what the
     * translation moves to the end must not make a range with it. */
    cr_assert(matches("~^[\\w-_.]+$", "my-host.com"));
    cr_assert_not(matches("~[.\\^-]", "0"), "no range from '.' to '^'");
    cr_assert(matches("~[.\\^-]", "-"));
    cr_assert_not(matches("~[\\^\\dx-]", "a"));
    cr_assert(matches("~[\\^\\-]", "-"));
    cr_assert_not(matches("~[\\^\\-]", "a"), "not a negated class");
}

/* snisplice lower-cases server names; ~* also takes patterns in capitals. */
Test(route_regex, case)
{
    cr_assert(matches("~*^WWW\\.", "www.example.com"));
    cr_assert_not(matches("~^WWW\\.", "www.example.com"));
    cr_assert(matches("~*^[A-Z]+\\.EXAMPLE\\.org$", "mail.example.org"));
    cr_assert(matches("~*^[[:upper:]]+$", "abc"), "caseless [:upper:] is any letter, as in PCRE");
    /* glibc's REG_ICASE folds this range over '_' '`' '[' '^'; PCRE does
     * not (a differential test against Perl and Python found it). */
    cr_assert(matches("~*[^m-{]", "_"));
    cr_assert(matches("~*[^m-{]", "["));
    cr_assert_not(matches("~*[^m-{]", "q"));
}

Test(route_regex, translation)
{
    expect_translated("^www\\.(.+)$", "^www\\.(.+)$");
    expect_translated("(?:a|b)(?P<x>c)(?'y'd)", "(a|b)(c)(d)");
    expect_translated("\\d+?\\w*?\\s??", "[0-9]+[A-Za-z0-9_]*[[:space:]]?");
    expect_translated("[\\w.\\-]", "[A-Za-z0-9_.-]");
    expect_translated("[^\\d\\^x]", "[^0-9x^]");
    expect_translated("[\\^\\dx-]", "[0-9x^-]");
    expect_translated("[.\\^-]", "[.^-]");
    expect_translated("[\\w-_.]", "[A-Za-z0-9__.-]");
    expect_translated("[\\^\\-]", "[-^]");
    expect_translated("[]a]", "[]a]");
    expect_translated("[a-z0-9-_]", "[a-z0-9_-]");
    expect_translated("[a-z-.]", "[a-z.-]");
    expect_translated("x{2,}?y{3}", "x{2,}y{3}");
    expect_translated("\\Aab\\z", "^ab$");
    expect_translated("a\\/b\\-c", "a/b-c");
}

/* Escapes PCRE takes inside [...] that POSIX can say another way. */
Test(route_regex, escaped_range_ends_and_a_lone_caret)
{
    expect_translated("[%-\\.]", "[%-.]");
    expect_translated("[\\.-z]", "[.-z]");
    expect_translated("[\\w%-\\.]", "[A-Za-z0-9_%-.]");
    expect_translated("[\\!-\\/]x", "[!-/]x");
    expect_translated("[\\.-z-_]", "[.-z_-]");
    expect_translated("[^\\^]", "[^^]");
    expect_translated("a[\\^]+b", "a\\^+b");
    cr_assert(matches("~^[\\w%-\\.]+\\.example\\.com$", "a.b-c.example.com"), "%%..'.' holds '-' and '.'");
    cr_assert_not(matches("~^[\\w%-\\.]+\\.example\\.com$", "a~b.example.com"));
    cr_assert(matches("~^[\\.-z]+$", "a.b"));
    cr_assert_not(matches("~^[\\.-z]+$", "a-b"), "'-' is below '.'");
    cr_assert(matches("~^[^\\^]+\\.net$", "a.net"));
    cr_assert(matches("~a[\\^]+b", "xa^^b"));
    cr_assert_not(matches("~a[\\^]+b", "xab"));
}

Test(route_regex, what_posix_cannot_express_is_refused)
{
    expect_refused("~^(?=www)", "look-around");
    expect_refused("~^(?!www)", "look-around");
    expect_refused("~(?i)^www", "~*");
    /* PCRE reads "(?<*" as a look-behind, not a name "*^" (fuzzer). */
    expect_refused("~*^(?<*^>).", "starts with a letter or _");
    expect_refused("~^(?<a-b>x)", "letters, digits and _");
    expect_refused("~^(?<1a>x)", "starts with a letter or _");
    expect_refused("~^(?<abcdefghijklmnopqrstuvwxyz0123456>x)", "at most 32");
    expect_refused("~^(?<app", "unterminated group name");
    cr_assert(matches("~^(?<_app1>x)$", "x"));
    cr_assert(matches("~^(?P<app>x)(?'b'y)$", "xy"));
    expect_refused("~^(a)\\1$", "\\1");
    expect_refused("~\\bwww", "\\b");
    expect_refused("~a++", "possessive");
    expect_refused("~a**", "nothing to repeat");
    expect_refused("~a*?*", "nothing to repeat");
    expect_refused("~a{2}{3}", "nothing to repeat");
    /* glibc matched these where PCRE does not (differential test). */
    expect_refused("~x-(^|\\.){2}", "repeated anchor");
    expect_refused("~(\\.|$)+", "repeated anchor");
    expect_refused("~((^)a)*b", "repeated anchor");
    expect_refused("~^*a", "repeated anchor");
    expect_refused("~[!-\\-]", "escaped end");
    expect_refused("~[\\[-a]", "escaped end");
    expect_refused("~[a-\\^]", "escaped end");
    expect_refused("~[\\d", "unterminated [");
    expect_refused("~a\\", "lone backslash");
    expect_refused("~", "empty");
    expect_refused("~*", "empty");
    expect_refused("~^(a", "");
    expect_refused("~a)|b", "unmatched )");
    expect_refused("plain", "~");
    /* regcomp copies per count; nested counts multiply (66 MiB and 12 ms
     * a match for this one, in a worker, before the limit). */
    expect_refused("~^(a{1,64}){1,64}$", "256 copies");
    expect_refused("~^((a{2}){2}b){65}$", "256 copies");
    expect_refused("~a{300}", "256 copies");
    cr_assert(matches("~^([a-z0-9-]{1,63}\\.){1,4}example\\.com$", "a.b-c.example.com"), "DNS labels can be counted");
    cr_assert(matches("~^[a-z]{1,200}\\.[a-z]{1,200}\\.[a-z]{2,63}$", "ab.cd.org"), "counts side by side add up, not multiply");
    cr_assert(matches("~^((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))$", "a"), "32 groups deep");
    expect_refused("~^(((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))$", "32 deep");
}

/* nginx's order: exact name, longest suffix, regular expressions in
 * order, default. No server name never reaches an expression. */
Test(route_regex, table_order)
{
    struct route_table_builder *builder = route_table_builder_new();
    cr_assert_not_null(builder);
    char error[200];
    cr_assert_eq(route_table_builder_add(builder, "exact.example.com", 1), ROUTE_ADD_OK);
    cr_assert_eq(route_table_builder_add(builder, "*.wild.example.com", 2), ROUTE_ADD_OK);
    cr_assert_eq(route_table_builder_add_regex(builder, "~example\\.com$", 3, error, sizeof error), ROUTE_ADD_OK);
    cr_assert_eq(route_table_builder_add_regex(builder, "~^www\\.", 4, error, sizeof error), ROUTE_ADD_OK);
    cr_assert_eq(route_table_builder_add_regex(builder, "~^(", 5, error, sizeof error), ROUTE_ADD_INVALID);
    cr_assert_eq(route_table_builder_add(builder, "default", 9), ROUTE_ADD_OK);
    struct route_table *table = route_table_build(builder);
    cr_assert_not_null(table);
    cr_assert_eq(route_table_size(table), 4);
    cr_assert_eq(route_lookup(table, "exact.example.com", 17), 1);
    cr_assert_eq(route_lookup(table, "a.wild.example.com", 18), 2);
    cr_assert_eq(route_lookup(table, "www.example.com", 15), 3, "the first expression that matches");
    cr_assert_eq(route_lookup(table, "www.example.org", 15), 4);
    cr_assert_eq(route_lookup(table, "other.test", 10), 9);
    cr_assert_eq(route_lookup(table, "", 0), 9);
    /* Not NUL-terminated: only len bytes count. */
    cr_assert_eq(route_lookup(table, "www.example.orgXYZ", 15), 4);
    cr_assert_eq(route_lookup(table, "www.example.comXYZ", 15), 3);
    route_table_free(table);
}

/* Found by a differential fuzzer against PCRE2: characters moved to the
 * end of a class ("\-", "\^", now "\[") must not change what it holds. */
Test(route_regex, moved_characters_keep_the_class_as_pcre_reads_it)
{
    /* A '^' right after escapes moved last used to land first: negated. */
    cr_assert(matches("~^x[\\-^]y$", "x-y"));
    cr_assert(matches("~^x[\\-^]y$", "x^y"));
    cr_assert_not(matches("~^x[\\-^]y$", "xay"), "[\\-^] is '-' or '^', not a negation");
    cr_assert(matches("~^x[\\-^a-c]y$", "xby"));
    cr_assert(matches("~^x[\\-^a-c]y$", "x-y"));
    cr_assert_not(matches("~^x[\\-^a-c]y$", "xdy"));
    cr_assert(matches("~^x[\\^^]y$", "x^y"));
    cr_assert_not(matches("~^x[\\^^]y$", "xay"));
    expect_translated("x[\\-^]", "x[-^]");
    expect_refused("~^x[\\-^-a]y$", "a range from ^ first in [...]");
    /* An escaped '[' written in place opened a POSIX [:class:]. */
    cr_assert(matches("~^x[\\[:digit:]]y$", "x:]y"));
    cr_assert(matches("~^x[\\[:digit:]]y$", "x[]y"));
    cr_assert_not(matches("~^x[\\[:digit:]]y$", "x5y"), "no [:digit:] class in PCRE's reading");
    cr_assert_not(matches("~^x[\\[:digit:]]y$", "x5]y"));
    expect_translated("[\\[\\^]", "[[^]");
    cr_assert(matches("~^[\\[\\^]$", "^"));
    cr_assert(matches("~^[\\[\\^]$", "["));
    cr_assert_not(matches("~^[\\[\\^]$", "a"));
}

/* Under ~* a range must still hold, lower-cased, every letter PCRE's
 * caseless range holds: "[!-[]" holds only upper-case letters, which
 * names never have, and nginx matched "b" with it. */
Test(route_regex, caseless_ranges_across_letters)
{
    expect_refused("~*^x[!-[]y$", "in ~*, a range across letters");
    expect_refused("~*^x[0-a]y$", "in ~*, a range across letters");
    expect_refused("~*^x[\\!-\\`]y$", "in ~*"); /* an escaped end, in place */
    cr_assert(matches("~*^x[A-Z]y$", "xby"));
    cr_assert(matches("~*^x[0-Z]y$", "xby"), "[0-Z] caselessly holds every letter, and so does [0-z]");
    cr_assert(matches("~*^x[0-Z]y$", "x5y"));
    cr_assert(matches("~*^x[!-~]y$", "xby"));
    cr_assert(matches("~^x[!-[]y$", "xAy"), "case-sensitive, the range stays as written");
    cr_assert_not(matches("~^x[!-[]y$", "xay"));
}
