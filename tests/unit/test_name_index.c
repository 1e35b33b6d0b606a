/*
 * test_name_index.c - text -> index: absent texts, replacing, growing far
 * past the first allocation, equal texts at different addresses.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "../../config/name_index.h"

Test(name_index, empty_index_has_nothing)
{
    struct name_index index = { 0 };
    cr_assert_eq(name_index_get(&index, "a"), NAME_INDEX_NONE);
    name_index_free(&index);
}

Test(name_index, finds_by_content_and_replaces)
{
    struct name_index index = { 0 };
    char first[] = "backend", same[] = "backend";
    cr_assert(name_index_put(&index, first, 3));
    cr_assert_eq(name_index_get(&index, same), 3, "found by its text, not its address");
    cr_assert_eq(name_index_get(&index, "backend2"), NAME_INDEX_NONE);
    cr_assert(name_index_put(&index, same, 4));
    cr_assert_eq(name_index_get(&index, first), 4);
    cr_assert_eq(index.count, 1);
    name_index_free(&index);
}

Test(name_index, grows_and_keeps_every_entry)
{
    enum { COUNT = 50000 };
    static char texts[COUNT][24];
    struct name_index index = { 0 };
    for (int i = 0; i < COUNT; i++) {
        snprintf(texts[i], sizeof texts[i], "10.0.%d.%d:443", i / 256, i % 256);
        cr_assert(name_index_put(&index, texts[i], i));
    }
    cr_assert_eq(index.count, COUNT);
    cr_assert_leq(index.count * 2, index.capacity, "load at most 1/2");
    for (int i = 0; i < COUNT; i++)
        cr_assert_eq(name_index_get(&index, texts[i]), i, "%s", texts[i]);
    cr_assert_eq(name_index_get(&index, "10.0.0.0:444"), NAME_INDEX_NONE);
    name_index_free(&index);
    cr_assert_eq(index.capacity, 0);
}
