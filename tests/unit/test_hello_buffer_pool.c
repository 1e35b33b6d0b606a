/*
 * test_hello_buffer_pool.c - hello buffers are handed out lowest first, at
 * most HELLO_BUFFER_POOL_OUT_MAX at once; a trim gives back the pages of
 * free buffers beyond what the load needed since the last look (never a
 * buffer that is out, never the kept ones), and only when due.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../io/hello_buffer_pool.h"

static struct hello_buffer_pool pool;
static uint8_t *buffers[HELLO_BUFFER_POOL_OUT_MAX];

static void pool_fini(void)
{
    hello_buffer_pool_destroy(&pool);
    memset(&pool, 0, sizeof pool);
}

/* Is the page of this buffer in memory? */
static bool resident(const uint8_t *buffer)
{
    unsigned char in_core = 0;
    cr_assert_eq(mincore((void *)buffer, HELLO_BUFFER_SIZE, &in_core), 0);
    return in_core & 1;
}

Test(hello_buffer_pool, lowest_first_and_capped, .fini = pool_fini)
{
    for (int i = 0; i < HELLO_BUFFER_POOL_OUT_MAX; i++) {
        buffers[i] = hello_buffer_pool_get(&pool, 0);
        cr_assert_not_null(buffers[i], "buffer %d", i);
        if (i > 0)
            cr_assert_eq(buffers[i], buffers[i - 1] + HELLO_BUFFER_SIZE, "buffer %d not next", i);
    }
    cr_expect_null(hello_buffer_pool_get(&pool, 0), "more than the cap handed out");
    hello_buffer_pool_put(&pool, buffers[500]);
    hello_buffer_pool_put(&pool, buffers[700]);
    cr_expect_eq(hello_buffer_pool_get(&pool, 0), buffers[500], "not the lowest free buffer");
    cr_expect_eq(pool.out, HELLO_BUFFER_POOL_OUT_MAX - 1);
}

Test(hello_buffer_pool, trim_keeps_what_is_out_and_what_the_load_needed, .fini = pool_fini)
{
    enum { BURST = 200, STILL_OUT = 150 };
    for (int i = 0; i < BURST; i++) {
        buffers[i] = hello_buffer_pool_get(&pool, 1000);
        memset(buffers[i], 0xA5, HELLO_BUFFER_SIZE);
    }
    for (int i = 0; i < BURST; i++)
        if (i != STILL_OUT)
            hello_buffer_pool_put(&pool, buffers[i]);
    cr_expect_eq(hello_buffer_pool_idle(&pool), BURST - 1);

    hello_buffer_pool_trim(&pool, 1000 + HELLO_BUFFER_POOL_TRIM_MS - 1);
    cr_expect(resident(buffers[BURST - 1]), "trimmed before it was due");

    /* First look: the burst happened since the last one, nothing goes. */
    hello_buffer_pool_trim(&pool, 1000 + HELLO_BUFFER_POOL_TRIM_MS);
    cr_expect(resident(buffers[BURST - 1]), "pages the last interval needed were given back");

    /* Second look: only what is out, and the kept ones, stay. */
    hello_buffer_pool_trim(&pool, 1000 + 2 * HELLO_BUFFER_POOL_TRIM_MS);
    cr_expect(!resident(buffers[BURST - 1]), "a burst's page is still resident");
    cr_expect(!resident(buffers[STILL_OUT + 1]), "a page above the highest one out is resident");
    uint8_t expected[HELLO_BUFFER_SIZE];
    memset(expected, 0xA5, sizeof expected);
    cr_expect(memcmp(buffers[STILL_OUT], expected, sizeof expected) == 0,
              "the bytes of a buffer still out changed");
    cr_expect(memcmp(buffers[0], expected, sizeof expected) == 0, "a kept buffer's page was given back");
    cr_expect_eq(hello_buffer_pool_idle(&pool), STILL_OUT, "idle %u", hello_buffer_pool_idle(&pool));

    hello_buffer_pool_put(&pool, buffers[STILL_OUT]);
    hello_buffer_pool_trim(&pool, 1000 + 3 * HELLO_BUFFER_POOL_TRIM_MS);
    hello_buffer_pool_trim(&pool, 1000 + 4 * HELLO_BUFFER_POOL_TRIM_MS);
    cr_expect(!resident(buffers[STILL_OUT]));
    cr_expect(resident(buffers[HELLO_BUFFER_POOL_KEPT - 1]), "a kept page was given back");
    cr_expect_eq(hello_buffer_pool_idle(&pool), HELLO_BUFFER_POOL_KEPT);
    cr_expect_eq(pool.trim_at_ms, 0, "looks go on with nothing beyond the kept pages");
}
