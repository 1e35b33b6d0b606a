/*
 * test_route_table.c - nginx `map ... hostnames` semantics, duplicates,
 * invalid patterns, and scale (100,000 routes with wildcards).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../core/route_table.h"

static struct route_table *table_of(const char *const *patterns, const int32_t *targets, size_t count)
{
    struct route_table_builder *builder = route_table_builder_new();
    cr_assert_not_null(builder);
    for (size_t i = 0; i < count; i++)
        cr_assert_eq(route_table_builder_add(builder, patterns[i], targets[i]), ROUTE_ADD_OK,
                     "adding '%s'", patterns[i]);
    struct route_table *table = route_table_build(builder);
    cr_assert_not_null(table);
    return table;
}

static int32_t lookup(const struct route_table *table, const char *name)
{
    return route_lookup(table, name, strlen(name));
}

/* The routes from the issue, with small numbers for targets. */
enum { MATRIX = 1, WILD = 2, ORG = 3, BLOG = 4, LOCAL = 5, EXACT_APEX = 6, DEEP = 7 };

static struct route_table *issue_table(void)
{
    static const char *const patterns[] = {
        "matrix.exceptionerror.io", "element.exceptionerror.io", "*.example.com", ".example.org",
        "blog.robrotheram.com", "default", "apex.example.net", ".apex.example.net", "*.deep.example.com",
    };
    static const int32_t targets[] = { MATRIX, MATRIX, WILD, ORG, BLOG, LOCAL, EXACT_APEX, ORG, DEEP };
    return table_of(patterns, targets, 9);
}

Test(route_table, exact_names)
{
    struct route_table *table = issue_table();
    cr_assert_eq(lookup(table, "matrix.exceptionerror.io"), MATRIX);
    cr_assert_eq(lookup(table, "element.exceptionerror.io"), MATRIX);
    cr_assert_eq(lookup(table, "blog.robrotheram.com"), BLOG);
    route_table_free(table);
}

Test(route_table, star_matches_subdomains_at_any_depth_but_not_apex)
{
    struct route_table *table = issue_table();
    cr_assert_eq(lookup(table, "a.example.com"), WILD);
    cr_assert_eq(lookup(table, "a.b.c.example.com"), WILD);
    cr_assert_eq(lookup(table, "example.com"), LOCAL, "apex falls through to default");
    cr_assert_eq(lookup(table, "notexample.com"), LOCAL, "suffix must start at a label");
    route_table_free(table);
}

/* The lookup skips suffixes whose label count no pattern has: every depth,
 * including past 63 labels (where counts share one bit), must still match. */
Test(route_table, suffix_patterns_of_every_depth)
{
    char deep_pattern[300] = "*.", deeper_pattern[300] = ".", name[310] = "x";
    for (int i = 0; i < 70; i++)
        strcat(deep_pattern, "a.");
    strcat(deep_pattern, "deep");
    for (int i = 0; i < 64; i++)
        strcat(deeper_pattern, "b.");
    strcat(deeper_pattern, "z");
    static const char *patterns[] = { "*.com", "*.one.two", "default", NULL, NULL };
    patterns[3] = deep_pattern;
    patterns[4] = deeper_pattern;
    static const int32_t targets[] = { 1, 2, 3, 4, 5 };
    struct route_table *table = table_of(patterns, targets, 5);
    cr_assert_eq(lookup(table, "x.com"), 1);
    cr_assert_eq(lookup(table, "a.b.c.d.e.com"), 1);
    cr_assert_eq(lookup(table, "x.one.two"), 2);
    cr_assert_eq(lookup(table, "x.y.one.two"), 2);
    cr_assert_eq(lookup(table, "one.two"), 3, "the apex of *. falls to default");
    cr_assert_eq(lookup(table, "x.two"), 3);
    snprintf(name, sizeof name, "q.%s", deep_pattern + 2);
    cr_assert_eq(lookup(table, name), 4, "71 labels below a 71-label wildcard");
    cr_assert_eq(lookup(table, deep_pattern + 2), 3, "the apex of the deep wildcard");
    cr_assert_eq(lookup(table, deeper_pattern + 1), 5, "65-label apex of the dot form");
    snprintf(name, sizeof name, "q.r.%s", deeper_pattern + 1);
    cr_assert_eq(lookup(table, name), 5);
    cr_assert_eq(lookup(table, "b.b.z"), 3, "a shorter name with the same last labels");
    route_table_free(table);

    /* The longest host name there is: 127 one-letter labels. With suffix
     * patterns of every depth from 1 to 63 labels, each of its 126
     * suffixes is probed, and the match is the last (shortest) one. */
    static const char *every_depth[65];
    static char depth_patterns[63][140];
    static int32_t depth_targets[65];
    every_depth[0] = "*.q";
    every_depth[1] = "default";
    depth_targets[0] = 1;
    depth_targets[1] = 2;
    for (int depth = 2; depth <= 63; depth++) {
        char *pattern = depth_patterns[depth - 2];
        strcpy(pattern, "*.");
        for (int i = 0; i < depth; i++)
            strcat(pattern, i + 1 < depth ? "x." : "z");
        every_depth[depth] = pattern;
        depth_targets[depth] = 3;
    }
    table = table_of(every_depth, depth_targets, 64);
    char longest[260] = "";
    for (int i = 0; i < 126; i++)
        strcat(longest, "a.");
    strcat(longest, "q");
    cr_assert_eq(strlen(longest), 253);
    cr_assert_eq(lookup(table, longest), 1);
    longest[252] = 'r';
    cr_assert_eq(lookup(table, longest), 2);
    cr_assert_eq(route_lookup(table, longest, 254), 2, "longer than a host name: no route");
    route_table_free(table);

    static const char *exact_only[] = { "a.example.com", "default" };
    static const int32_t exact_targets[] = { 1, 2 };
    table = table_of(exact_only, exact_targets, 2);
    cr_assert_eq(lookup(table, "a.example.com"), 1);
    cr_assert_eq(lookup(table, "b.a.example.com"), 2, "no suffix pattern: straight to default");
    route_table_free(table);
}

Test(route_table, dot_form_matches_apex_and_subdomains)
{
    struct route_table *table = issue_table();
    cr_assert_eq(lookup(table, "example.org"), ORG);
    cr_assert_eq(lookup(table, "www.example.org"), ORG);
    cr_assert_eq(lookup(table, "x.y.example.org"), ORG);
    cr_assert_eq(lookup(table, "example.org.evil.test"), LOCAL);
    route_table_free(table);
}

Test(route_table, exact_beats_suffix_and_longest_suffix_wins)
{
    struct route_table *table = issue_table();
    cr_assert_eq(lookup(table, "apex.example.net"), EXACT_APEX, "exact beats .apex.example.net");
    cr_assert_eq(lookup(table, "www.apex.example.net"), ORG);
    cr_assert_eq(lookup(table, "x.deep.example.com"), DEEP, "*.deep.example.com beats *.example.com");
    cr_assert_eq(lookup(table, "deep.example.com"), WILD, "deep.example.com is a subdomain of example.com");
    route_table_free(table);
}

Test(route_table, default_for_no_sni_and_no_match)
{
    struct route_table *table = issue_table();
    cr_assert_eq(route_lookup(table, "", 0), LOCAL);
    cr_assert_eq(lookup(table, "unknown.test"), LOCAL);
    route_table_free(table);
}

/* nginx's `map $ssl_preread_protocol { "" ssh; ... }`: clients that do
 * not speak TLS have a route of their own, which no server name reaches. */
Test(route_table, not_tls_route)
{
    struct route_table *table = issue_table();
    cr_expect_eq(route_lookup_not_tls(table), LOCAL, "without a not_tls entry: the default");
    route_table_free(table);

    static const char *const patterns[] = { "a.test", "not_tls", "default" };
    static const int32_t targets[] = { 1, 2, 3 };
    table = table_of(patterns, targets, 3);
    cr_expect_eq(route_lookup_not_tls(table), 2);
    cr_expect_eq(route_lookup(table, "", 0), 3, "a TLS client without SNI still takes the default");
    cr_expect_eq(lookup(table, "not_tls"), 3, "no server name reaches it");
    cr_expect_eq(route_table_size(table), 1, "like default, not counted as a pattern");
    route_table_free(table);

    static const char *const only[] = { "not_tls" };
    table = table_of(only, targets, 1);
    cr_expect_eq(route_lookup_not_tls(table), 1);
    cr_expect_eq(route_lookup(table, "", 0), ROUTE_NO_MATCH, "TLS without SNI: no default, no route");
    route_table_free(table);

    static const char *const none[] = { "a.test" };
    table = table_of(none, targets, 1);
    cr_expect_eq(route_lookup_not_tls(table), ROUTE_NO_MATCH);
    route_table_free(table);
}

Test(route_table, no_default_means_no_match)
{
    static const char *const patterns[] = { "a.test" };
    static const int32_t targets[] = { 0 };
    struct route_table *table = table_of(patterns, targets, 1);
    cr_assert_eq(lookup(table, "a.test"), 0);
    cr_assert_eq(lookup(table, "b.test"), ROUTE_NO_MATCH);
    cr_assert_eq(route_lookup(table, "", 0), ROUTE_NO_MATCH);
    route_table_free(table);
}

Test(route_table, patterns_are_normalised)
{
    static const char *const patterns[] = { "Matrix.Example.COM.", "*.Wild.Example.", ".ORG.test" };
    static const int32_t targets[] = { 1, 2, 3 };
    struct route_table *table = table_of(patterns, targets, 3);
    cr_assert_eq(lookup(table, "matrix.example.com"), 1);
    cr_assert_eq(lookup(table, "a.wild.example"), 2);
    cr_assert_eq(lookup(table, "org.test"), 3);
    cr_assert_eq(route_table_size(table), 3);
    route_table_free(table);
}

Test(route_table, duplicates_are_refused)
{
    struct route_table_builder *builder = route_table_builder_new();
    cr_assert_eq(route_table_builder_add(builder, "a.test", 1), ROUTE_ADD_OK);
    cr_assert_eq(route_table_builder_add(builder, "A.TEST.", 2), ROUTE_ADD_DUPLICATE);
    cr_assert_eq(route_table_builder_add(builder, "*.a.test", 3), ROUTE_ADD_OK, "suffix of an exact name");
    cr_assert_eq(route_table_builder_add(builder, "*.a.test", 4), ROUTE_ADD_DUPLICATE);
    cr_assert_eq(route_table_builder_add(builder, ".a.test", 5), ROUTE_ADD_DUPLICATE, "*.x and .x overlap");
    cr_assert_eq(route_table_builder_add(builder, ".b.test", 6), ROUTE_ADD_OK);
    cr_assert_eq(route_table_builder_add(builder, "*.b.test", 7), ROUTE_ADD_DUPLICATE);
    cr_assert_eq(route_table_builder_add(builder, "default", 8), ROUTE_ADD_OK);
    cr_assert_eq(route_table_builder_add(builder, "default", 9), ROUTE_ADD_DUPLICATE);
    cr_assert_eq(route_table_builder_add(builder, "not_tls", 10), ROUTE_ADD_OK);
    cr_assert_eq(route_table_builder_add(builder, "not_tls", 11), ROUTE_ADD_DUPLICATE);
    struct route_table *table = route_table_build(builder);
    cr_assert_eq(lookup(table, "a.test"), 1);
    cr_assert_eq(lookup(table, "x.a.test"), 3);
    cr_assert_eq(lookup(table, "b.test"), 6);
    route_table_free(table);
}

/* nginx's `hostnames` trailing wildcard: "www.example.*" takes any name
 * that starts with "www.example.", the longest such pattern wins, and it
 * comes after exact names and leading wildcards. */
Test(route_table, trailing_wildcards)
{
    static const char *const patterns[] = {
        "www.example.*", "www.*", "*.example.com", "www.example.org", "default", "api.v1.example.*",
    };
    static const int32_t targets[] = { 1, 2, 3, 4, 9, 5 };
    struct route_table *table = table_of(patterns, targets, 6);
    cr_assert_eq(route_table_size(table), 5);
    cr_assert_eq(lookup(table, "www.example.net"), 1);
    cr_assert_eq(lookup(table, "www.example.co.uk"), 1);
    cr_assert_eq(lookup(table, "www.other.net"), 2, "the longest matching prefix wins");
    cr_assert_eq(lookup(table, "www.example.org"), 4, "an exact name comes first");
    cr_assert_eq(lookup(table, "www.example.com"), 3, "a leading wildcard comes before a trailing one");
    cr_assert_eq(lookup(table, "api.v1.example.io"), 5);
    cr_assert_eq(lookup(table, "www.example"), 2, "the wildcard stands for at least one label");
    cr_assert_eq(lookup(table, "www"), 9);
    cr_assert_eq(lookup(table, "wwwx.example.net"), 9);
    route_table_free(table);

    struct route_table_builder *builder = route_table_builder_new();
    cr_assert_eq(route_table_builder_add(builder, "WWW.Example.*", 1), ROUTE_ADD_OK);
    cr_assert_eq(route_table_builder_add(builder, "www.example.*", 2), ROUTE_ADD_DUPLICATE);
    cr_assert_eq(route_table_builder_add(builder, "www.example", 3), ROUTE_ADD_OK, "the exact name is another key");
    route_table_builder_free(builder);
}

Test(route_table, invalid_patterns_are_refused)
{
    const char *bad[] = { "", "*", "*.", ".", "a..b", "a b", "a/b.test", "*.*.test", "a.*.test",
                          "test*", "**.test", "..test", ".*", "*.example.*", ".example.*", "a.*.*", "a/b.*" };
    struct route_table_builder *builder = route_table_builder_new();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(route_table_builder_add(builder, bad[i], 1), ROUTE_ADD_INVALID, "'%s'", bad[i]);
    route_table_builder_free(builder);
}

/* A reload adds its routes in batches: every result and every answer must
 * be what adding them one by one gives, duplicates across batch windows
 * included. */
Test(route_table, add_all_is_add_one_by_one)
{
    enum { COUNT = 100 };
    static char texts[COUNT][64];
    const char *patterns[COUNT];
    int32_t targets[COUNT];
    for (int i = 0; i < COUNT; i++) {
        switch (i % 7) {
        case 0: snprintf(texts[i], sizeof texts[i], "*.w%d.test", i / 7 % 5); break;
        case 1: snprintf(texts[i], sizeof texts[i], ".d%d.test", i / 7 % 4); break;
        case 2: snprintf(texts[i], sizeof texts[i], "bad name %d", i); break;
        case 3: snprintf(texts[i], sizeof texts[i], i % 2 ? "default" : "not_tls"); break;
        default: snprintf(texts[i], sizeof texts[i], "H%d.Test.", i * 3 % 7); break;
        }
        patterns[i] = texts[i];
        targets[i] = i % 11 == 10 ? -1 : i;
    }
    struct route_table_builder *one_by_one = route_table_builder_new();
    struct route_table_builder *all = route_table_builder_new();
    enum route_add_result expected[COUNT], results[COUNT];
    for (int i = 0; i < COUNT; i++)
        expected[i] = route_table_builder_add(one_by_one, patterns[i], targets[i]);
    route_table_builder_add_all(all, patterns, targets, COUNT, results);
    int duplicates = 0, invalid = 0;
    for (int i = 0; i < COUNT; i++) {
        cr_assert_eq(results[i], expected[i], "pattern %d '%s'", i, patterns[i]);
        duplicates += results[i] == ROUTE_ADD_DUPLICATE;
        invalid += results[i] == ROUTE_ADD_INVALID;
    }
    cr_assert_gt(duplicates, 40, "the list must hold duplicates, within a window of 16 and across");
    cr_assert_gt(invalid, 10);
    struct route_table *expected_table = route_table_build(one_by_one), *table = route_table_build(all);
    cr_assert_eq(route_table_size(table), route_table_size(expected_table));
    for (int i = 0; i < 40; i++) {
        char names[3][64];
        snprintf(names[0], sizeof names[0], "h%d.test", i);
        snprintf(names[1], sizeof names[1], "x.w%d.test", i);
        snprintf(names[2], sizeof names[2], "d%d.test", i);
        for (int k = 0; k < 3; k++)
            cr_assert_eq(lookup(table, names[k]), lookup(expected_table, names[k]), "%s", names[k]);
    }
    cr_assert_eq(lookup(table, "nothing.here"), 3, "the first default wins");
    cr_assert_eq(route_lookup_not_tls(table), route_lookup_not_tls(expected_table));
    cr_assert_eq(route_lookup_not_tls(table), 24, "the first valid not_tls wins (10 has no target)");
    route_table_free(expected_table);
    route_table_free(table);
}

/* A reload reserves room for its routes up front; room reserved before,
 * between and after adds must keep every route and still grow past it. */
Test(route_table, reserve_keeps_routes_and_grows_past_it)
{
    struct route_table_builder *builder = route_table_builder_new();
    cr_assert(route_table_builder_reserve(builder, 100));
    char name[64];
    for (int i = 0; i < 3000; i++) {
        if (i == 1000)
            cr_assert(route_table_builder_reserve(builder, 2000), "room grows with routes in it");
        if (i == 1500)
            cr_assert(route_table_builder_reserve(builder, 10), "less than it has: nothing to do");
        snprintf(name, sizeof name, i % 3 ? "r%d.example.net" : "*.r%d.example.net", i);
        cr_assert_eq(route_table_builder_add(builder, name, i), ROUTE_ADD_OK, "%s", name);
    }
    cr_assert_not(route_table_builder_reserve(builder, SIZE_MAX / 2), "no room that large");
    struct route_table *table = route_table_build(builder);
    cr_assert_eq(route_table_size(table), 3000);
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, i % 3 ? "r%d.example.net" : "a.r%d.example.net", i);
        cr_assert_eq(lookup(table, name), i, "%s", name);
    }
    cr_assert_eq(lookup(table, "r3.example.net"), ROUTE_NO_MATCH, "the apex of a wildcard");
    route_table_free(table);
}

/* 253-character names until the table's records are full: the next new
 * name is refused with ROUTE_ADD_FULL, a pattern for a name it has still
 * goes in, and everything added before still answers. */
Test(route_table, a_full_table_refuses_new_names_and_keeps_the_rest, .timeout = 60)
{
    struct route_table_builder *builder = route_table_builder_new();
    char name[260], pattern[264];
    size_t added = 0;
    enum route_add_result result = ROUTE_ADD_OK;
    const char *tail = ".bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
                       ".ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
                       ".ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
    while (result == ROUTE_ADD_OK) {
        snprintf(name, sizeof name, "n%062zu%s", added, tail);
        cr_assert_eq(strlen(name), 253);
        result = route_table_builder_add(builder, name, (int32_t)(added % 1000));
        if (result == ROUTE_ADD_OK)
            added++;
    }
    cr_assert_eq(result, ROUTE_ADD_FULL, "refused as full, not as out of memory");
    /* A name costs its length and a few bytes: at most 16 more here. */
    cr_assert_geq(added, ROUTE_TABLE_RECORDS_MAX / (253 + 16), "added %zu", added);
    cr_assert_leq(added, ROUTE_TABLE_RECORDS_MAX / 253, "added %zu", added);
    snprintf(pattern, sizeof pattern, "*.n%062d%s", 0, tail);
    cr_assert_eq(route_table_builder_add(builder, pattern, 7), ROUTE_ADD_OK, "a name it has takes a suffix");
    struct route_table *table = route_table_build(builder);
    cr_assert_eq(lookup(table, name), ROUTE_NO_MATCH, "the refused name");
    snprintf(name, sizeof name, "n%062d%s", 0, tail);
    cr_assert_eq(lookup(table, name), 0);
    snprintf(name, sizeof name, "x.n%062d%s", 0, tail);
    cr_assert_eq(lookup(table, name), ROUTE_NO_MATCH, "over 253 characters: no host name");
    snprintf(name, sizeof name, "n%062zu%s", added - 1, tail);
    cr_assert_eq(lookup(table, name), (int32_t)((added - 1) % 1000));
    route_table_free(table);
}

Test(route_table, one_hundred_thousand_routes)
{
    enum { COUNT = 100000 };
    struct route_table_builder *builder = route_table_builder_new();
    char name[128];
    for (int i = 0; i < COUNT; i++) {
        /* Every tenth is a wildcard, every tenth+1 a dot form. */
        if (i % 10 == 0)
            snprintf(name, sizeof name, "*.w%d.example.com", i);
        else if (i % 10 == 1)
            snprintf(name, sizeof name, ".d%d.example.org", i);
        else
            snprintf(name, sizeof name, "host%d.example.net", i);
        cr_assert_eq(route_table_builder_add(builder, name, i), ROUTE_ADD_OK, "%s", name);
    }
    cr_assert_eq(route_table_builder_add(builder, "default", COUNT), ROUTE_ADD_OK);
    struct route_table *table = route_table_build(builder);
    cr_assert_eq(route_table_size(table), COUNT);
    for (int i = 0; i < COUNT; i++) {
        if (i % 10 == 0) {
            snprintf(name, sizeof name, "x.y.w%d.example.com", i);
            cr_assert_eq(lookup(table, name), i, "%s", name);
            snprintf(name, sizeof name, "w%d.example.com", i);
            cr_assert_eq(lookup(table, name), COUNT, "apex of a wildcard: %s", name);
        } else if (i % 10 == 1) {
            snprintf(name, sizeof name, "d%d.example.org", i);
            cr_assert_eq(lookup(table, name), i, "%s", name);
        } else {
            snprintf(name, sizeof name, "host%d.example.net", i);
            cr_assert_eq(lookup(table, name), i, "%s", name);
            snprintf(name, sizeof name, "other%d.example.net", i);
            cr_assert_eq(lookup(table, name), COUNT, "%s", name);
        }
    }
    route_table_free(table);
}

static const uint8_t ACME_AND_H2[] = { 2, 'h', '2', 10, 'a', 'c', 'm', 'e', '-', 't', 'l', 's', '/', '1' };

Test(route_table, alpn_routes_in_client_order)
{
    struct route_table_builder *builder = route_table_builder_new();
    cr_assert_eq(route_table_builder_add_alpn(builder, "acme-tls/1", 7), ROUTE_ADD_OK);
    cr_assert_eq(route_table_builder_add_alpn(builder, "acme-tls/1", 8), ROUTE_ADD_DUPLICATE);
    cr_assert_eq(route_table_builder_add_alpn(builder, "", 8), ROUTE_ADD_INVALID);
    cr_assert_eq(route_table_builder_add_alpn(builder, "has space", 8), ROUTE_ADD_INVALID);
    cr_assert_eq(route_table_builder_add(builder, "default", 1), ROUTE_ADD_OK);
    struct route_table *table = route_table_build(builder);
    cr_assert_eq(route_lookup_alpn(table, ACME_AND_H2, sizeof ACME_AND_H2), 7);
    cr_assert_eq(route_lookup_alpn(table, ACME_AND_H2, 3), ROUTE_NO_MATCH, "only h2 offered");
    cr_assert_eq(route_lookup_alpn(table, NULL, 0), ROUTE_NO_MATCH);
    const uint8_t truncated[] = { 10, 'a', 'c', 'm', 'e' };
    cr_assert_eq(route_lookup_alpn(table, truncated, sizeof truncated), ROUTE_NO_MATCH);
    route_table_free(table);
}

/* Names with underscores (Docker service names, internal hosts) are
 * names: exact, suffix and trailing wildcard routes take them. */
Test(route_table, underscores_in_names_route)
{
    const char *const patterns[] = { "my_app.lan", "*.svc_internal", "media_box.*" };
    const int32_t targets[] = { 1, 2, 3 };
    struct route_table *table = table_of(patterns, targets, 3);
    cr_expect_eq(lookup(table, "my_app.lan"), 1);
    cr_expect_eq(lookup(table, "a_b.svc_internal"), 2);
    cr_expect_eq(lookup(table, "media_box.home"), 3);
    cr_expect_eq(lookup(table, "myapp.lan"), ROUTE_NO_MATCH);
    route_table_free(table);
}

/* nginx matches "~" expressions against $ssl_preread_server_name as the
 * client sent it, and "~*" ones caselessly; exact names and suffixes
 * compare lower-cased (found by a differential run against nginx: a
 * "~^WWW\." route could never match, and "~^matrix\.example\.com$" took
 * "Matrix.Example.com", which nginx sends to the default). */
Test(route_table, case_sensitive_expressions_see_the_name_as_sent)
{
    struct route_table_builder *builder = route_table_builder_new();
    char error[200];
    cr_assert_eq(route_table_builder_add_regex(builder, "~^WWW\\.", 1, error, sizeof error), ROUTE_ADD_OK, "%s",
                 error);
    cr_assert_eq(route_table_builder_add_regex(builder, "~^matrix\\.example\\.com$", 2, error, sizeof error),
                 ROUTE_ADD_OK, "%s", error);
    cr_assert_eq(route_table_builder_add_regex(builder, "~*^element\\.example\\.com$", 3, error, sizeof error),
                 ROUTE_ADD_OK, "%s", error);
    cr_assert_eq(route_table_builder_add(builder, "blog.example.com", 4), ROUTE_ADD_OK);
    cr_assert_eq(route_table_builder_add(builder, "default", 0), ROUTE_ADD_OK);
    struct route_table *table = route_table_build(builder);
    cr_assert_not_null(table);
    cr_expect_eq(route_lookup_as_sent(table, "www.example.com", "WWW.example.com", 15), 1);
    cr_expect_eq(route_lookup_as_sent(table, "www.example.com", "www.example.com", 15), 0);
    cr_expect_eq(route_lookup_as_sent(table, "matrix.example.com", "Matrix.Example.com", 18), 0);
    cr_expect_eq(route_lookup_as_sent(table, "matrix.example.com", "matrix.example.com", 18), 2);
    cr_expect_eq(route_lookup_as_sent(table, "element.example.com", "ELEMENT.Example.com", 19), 3);
    cr_expect_eq(route_lookup_as_sent(table, "blog.example.com", "BLOG.EXAMPLE.COM", 16), 4);
    cr_expect_eq(route_lookup(table, "matrix.example.com", 18), 2, "without the sent form: the name itself");
    route_table_free(table);
}
