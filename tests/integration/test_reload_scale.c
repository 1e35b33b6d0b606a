/*
 * test_reload_scale.c - a configuration with 100,000 routes loads, and a
 * SIGHUP to a changed copy of it takes effect while connections keep
 * coming, none of them failing. (Its duration is measured by
 * bench/reload_bench.sh, not asserted here: this machine is shared.)
 * Ports: block 82.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/integration.h"

static struct proxy scale_proxy;
static struct backend alpha, bravo;
static atomic_bool scale_stop;
static atomic_int scale_ok, scale_failed;
static struct hello_bytes scale_hello;

static void scale_fini(void)
{
    proxy_release(&scale_proxy);
    integration_cleanup();
}

static void *keep_connecting(void *port)
{
    while (!atomic_load(&scale_stop)) {
        char *reply = exchange_once((uint16_t)(uintptr_t)port, scale_hello.data, scale_hello.length, 5000, NULL);
        atomic_fetch_add(reply && strcmp(reply, "alpha\n") == 0 ? &scale_ok : &scale_failed, 1);
        free(reply);
    }
    return NULL;
}

static char *big_config(uint16_t port, bool with_new_route)
{
    char *routes = generated_routes(100000, "bravo", "alpha");
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = alpha\n%s%s"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n"
                             "[upstream bravo]\nserver = 127.0.0.1:%u\n",
                             with_new_route ? "new.example.com = bravo\n" : "", routes, TEST_PORT(82, 1),
                             TEST_PORT(82, 2));
    char *config = config_text(port, NULL, body);
    free(routes);
    free(body);
    return config;
}

Test(reload_scale, hundred_thousand_routes_reload_under_traffic, .init = integration_init, .fini = scale_fini)
{
    integration_set_limit(60);
    uint16_t port = TEST_PORT(82, 0);
    cr_assert(backend_start(&alpha, "alpha", TEST_PORT(82, 1), NULL, NULL));
    cr_assert(backend_start(&bravo, "bravo", TEST_PORT(82, 2), NULL, NULL));
    char *before = big_config(port, false), *after = big_config(port, true);
    cr_assert(proxy_start(&scale_proxy, before, port), "snisplice did not start with 100,000 routes");
    scale_hello = hello_load_capture(HELLO_CHROMIUM);
    struct hello_bytes fresh = hello_build("new.example.com"), old = hello_build("svc12345.tenant381.example.net");
    char *reply = exchange_once(port, fresh.data, fresh.length, 5000, NULL);
    cr_expect(reply && reply[0] == '\0', "new.example.com is routed before the reload: '%s'", reply);
    free(reply);

    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, keep_connecting, (void *)(uintptr_t)port), 0);
    sleep_ms(200);
    for (int i = 0; i < 3; i++) {
        proxy_reload(&scale_proxy, i % 2 ? before : after);
        sleep_ms(400);
    }
    atomic_store(&scale_stop, true);
    pthread_join(thread, NULL);
    cr_expect_eq(atomic_load(&scale_failed), 0, "%d of %d connections failed during the reloads",
                 atomic_load(&scale_failed), atomic_load(&scale_ok) + atomic_load(&scale_failed));
    cr_expect_gt(atomic_load(&scale_ok), 10);
    /* The last SIGHUP's reload may still be running (a sanitizer build
     * takes longer): wait for it to take effect. */
    for (long long deadline = monotonic_ms() + 15000;;) {
        reply = exchange_once(port, fresh.data, fresh.length, 5000, NULL);
        if ((reply && strcmp(reply, "bravo\n") == 0) || monotonic_ms() > deadline)
            break;
        free(reply);
        sleep_ms(100);
    }
    cr_expect(reply && strcmp(reply, "bravo\n") == 0, "after the reload new.example.com went to '%s'", reply);
    free(reply);
    reply = exchange_once(port, old.data, old.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "alpha\n") == 0, "an old route among 100,000 went to '%s'", reply);
    free(reply);
    hello_free(&fresh);
    hello_free(&old);
    hello_free(&scale_hello);
    free(before);
    free(after);
    cr_expect_eq(proxy_stop(&scale_proxy, 10000), 0);
}
