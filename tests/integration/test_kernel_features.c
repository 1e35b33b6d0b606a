/*
 * test_kernel_features.c - snisplice on kernels whose io_uring is older
 * than this machine's: the fallbacks it takes, and the start-up error where
 * it has none.
 *
 * build/old_kernel.so (tests/shim/old_kernel.c) makes io_uring report what
 * an older kernel would (no DEFER_TASKRUN, no minimum wait...); the ring
 * underneath is this kernel's. The real thing, Debian 12's 6.1 booted in
 * qemu, is scripts/check-kernel.sh (minutes; not part of make test).
 *
 * Owns its proxy and backend; never leaves LD_PRELOAD set past the start
 * of the one process it is meant for.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../support/integration.h"

static struct proxy kernel_proxy;
static struct backend kernel_backend;
static struct hello_bytes kernel_hello;

static void kernel_fini(void)
{
    proxy_release(&kernel_proxy);
    integration_cleanup();
    hello_free(&kernel_hello);
}

/* Only the process started next inherits these (each test runs in a
 * process of its own). */
static void preload_old_kernel(const char *lacks)
{
    cr_assert(integration_preload("old_kernel.so"), "build/old_kernel.so missing (make test builds it)");
    cr_assert_eq(setenv("SNISPLICE_OLD_KERNEL", lacks, 1), 0);
}

static char *routed_config(uint16_t proxy_port, uint16_t backend_port)
{
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", backend_port);
    char *config = config_text(proxy_port, "", body);
    free(body);
    return config;
}

/* Start snisplice on a kernel that lacks `lacks`: it must exit 1 at once,
 * saying `wanted`, rather than run. */
static void expect_refused_at_start_up(uint16_t proxy_port, const char *lacks, const char *wanted)
{
    char *directory = temp_directory_create("kernel");
    char *config = routed_config(proxy_port, (uint16_t)(proxy_port + 1));
    char *path = temp_file_write(directory, "snisplice.ini", config);
    const char *argv[] = { proxy_binary(), "-c", path, NULL };
    preload_old_kernel(lacks);
    char *output = NULL;
    int status = child_run(argv, NULL, NULL, 10000, &output);
    unsetenv("LD_PRELOAD");
    cr_expect_eq(status, 1, "exit %d (-1: still running after 10 s); output:\n%s", status, output);
    cr_expect(strstr(output, wanted), "no \"%s\" in the output:\n%s", wanted, output);
    cr_expect(strstr(output, "snisplice needs Linux 5.19 or later"), "the kernel needed is not named:\n%s", output);
    free(output);
    free(path);
    free(config);
    free(directory);
}

/* Below 5.17 a close or cancel sent with IOSQE_CQE_SKIP_SUCCESS is refused
 * for its flag, and refused silently: every connection's sockets leaked.
 * Before, snisplice started and ran so. */
Test(kernel_features, a_kernel_without_cqe_skip_is_refused_at_start_up, .init = integration_init,
     .fini = kernel_fini)
{
    expect_refused_at_start_up(TEST_PORT(344, 0), "no_cqe_skip",
                               "this kernel's io_uring has no IOSQE_CQE_SKIP_SUCCESS (Linux 5.17)");
}

/* Below 5.19 the multishot accept completes with EINVAL and was re-armed
 * at once, for ever: a worker spinning on a warning, and no client served.
 * Before, snisplice started and did that. */
Test(kernel_features, a_kernel_without_multishot_accept_is_refused_at_start_up, .init = integration_init,
     .fini = kernel_fini)
{
    expect_refused_at_start_up(TEST_PORT(345, 0), "no_socket_op",
                               "this kernel's io_uring has no multishot accept (Linux 5.19)");
}

/* Below 5.18 a ring with IORING_SETUP_SUBMIT_ALL is refused: the fallback
 * for 5.19 and 6.0 keeps that flag, so such a kernel is named as too old,
 * not left to "io_uring_queue_init: Invalid argument". */
Test(kernel_features, a_kernel_without_submit_all_is_refused_at_start_up, .init = integration_init,
     .fini = kernel_fini)
{
    expect_refused_at_start_up(TEST_PORT(347, 0), "no_task_run_hints,no_submit_all",
                               "this kernel's io_uring has no IORING_SETUP_SUBMIT_ALL (Linux 5.18)");
}

/* A 5.19-6.0 kernel (no SINGLE_ISSUER/DEFER_TASKRUN, no minimum wait):
 * the ring is made without the hints, connections are relayed as on a new
 * kernel, and one line at start-up says what is done the slower way. Before,
 * the fallbacks were taken without a word. */
Test(kernel_features, an_older_io_uring_serves_and_says_what_it_lacks, .init = integration_init,
     .fini = kernel_fini)
{
    uint16_t proxy_port = TEST_PORT(346, 0), backend_port = TEST_PORT(346, 1);
    kernel_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(kernel_hello.data);
    cr_assert(backend_start(&kernel_backend, "alpha", backend_port, NULL, NULL));
    char *config = routed_config(proxy_port, backend_port);
    preload_old_kernel("no_task_run_hints,no_min_timeout");
    bool started = proxy_start(&kernel_proxy, config, proxy_port);
    unsetenv("LD_PRELOAD");
    cr_assert(started, "snisplice did not start");
    for (int i = 0; i < 20; i++) {
        char *reply = exchange_once(proxy_port, kernel_hello.data, kernel_hello.length, 5000, NULL);
        cr_expect_str_eq(reply ? reply : "(no connection)", "alpha\n", "connection %d", i);
        free(reply);
    }
    const char *wanted = "io_uring on this kernel: no SINGLE_ISSUER/DEFER_TASKRUN (Linux 6.1)";
    cr_expect(proxy_stderr_wait_for(&kernel_proxy, wanted, 2000), "no \"%s\"", wanted);
    cr_expect(proxy_stderr_wait_for(&kernel_proxy, "no batched waits under load (io_uring's minimum wait needs Linux 6.12)",
                                    2000),
              "the missing minimum wait is not named");
    char *log = proxy_stderr(&kernel_proxy);
    cr_expect_eq(text_count(log, "io_uring on this kernel"), 1, "said more than once:\n%s", log);
    free(log);
    int status = proxy_stop(&kernel_proxy, 10000);
    cr_expect_eq(status, 0, "snisplice exit %d", status);
    free(config);
}
