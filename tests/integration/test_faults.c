/*
 * test_faults.c - what snisplice does when a call it does not control
 * fails: memory or descriptors run out at start-up, at `-t`, in the
 * middle of a reload, or for one connection. build/fail_call.so
 * (tests/shim/fail_call.c) makes the chosen call fail. A start-up that
 * cannot go on exits 1 and says what failed; a reload that cannot go on
 * leaves the previous configuration serving, and nothing of the new one;
 * what a connection loses for want of memory is said and counted. And a
 * call that is no longer on a connection's path: socket(2), whose sockets
 * the ring makes ahead. Ports: blocks 288-291, 340, 394.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy fault_proxy;
static struct backend alpha_backend;
static struct backend bravo_backend;
static struct hello_bytes fault_hello;

static void fault_fini(void)
{
    proxy_release(&fault_proxy);
    integration_cleanup();
    hello_free(&fault_hello);
}

/* The shim is preloaded into every process started until unpreload():
 * each test runs in a process of its own, and starts only snisplice. */
static void preload_failing(const char *call, unsigned nth, int error)
{
    char suppressions[4096], number[32];
    cr_assert(integration_preload("fail_call.so"), "build/fail_call.so missing (make test builds it)");
    cr_assert_not_null(realpath("tests/lsan.supp", suppressions));
    /* Quiet about the suppressions used: the tests read every line. */
    char *lsan = text_format("suppressions=%s:print_suppressions=0", suppressions);
    cr_assert_eq(setenv("LSAN_OPTIONS", lsan, 1), 0);
    free(lsan);
    /* The slow unwinder: the fast one stops at the shim's frame, and a
     * leak of glibc's (tests/lsan.supp) must show whose it is. */
    cr_assert_eq(setenv("ASAN_OPTIONS",
                        "detect_leaks=1:abort_on_error=1:halt_on_error=1:verify_asan_link_order=0:"
                        "fast_unwind_on_malloc=0",
                        1),
                 0);
    cr_assert_eq(setenv("SNISPLICE_FAIL_CALL", call, 1), 0);
    snprintf(number, sizeof number, "%u", nth);
    cr_assert_eq(setenv("SNISPLICE_FAIL_NTH", number, 1), 0);
    snprintf(number, sizeof number, "%d", error);
    cr_assert_eq(setenv("SNISPLICE_FAIL_ERRNO", number, 1), 0);
}

static void unpreload(void)
{
    unsetenv("LD_PRELOAD");
}

/* snisplice on `config`, `call` failing with `error` from its first call
 * after the proxy takes a USR1 (and every later one too if `every`):
 * started before the shim is armed. */
static void start_failing_after_usr1(const char *config, uint16_t proxy_port, const char *call, int error,
                                     bool every)
{
    preload_failing(call, 1, error);
    if (every)
        cr_assert_eq(setenv("SNISPLICE_FAIL_EVERY", "1", 1), 0);
    cr_assert_eq(setenv("SNISPLICE_FAIL_ARMED_BY", "USR1", 1), 0);
    bool started = proxy_start(&fault_proxy, config, proxy_port);
    unpreload();
    cr_assert(started, "snisplice did not start");
}

/* SIGTERM: the proxy must exit 0 (its stderr said otherwise). */
static void expect_clean_exit(void)
{
    int status = proxy_stop(&fault_proxy, 10000);
    char *log = proxy_stderr(&fault_proxy);
    cr_expect_eq(status, 0, "snisplice exit %d, stderr:\n%s", status, log);
    free(log);
}

/* Which backend answered one connection: 'a', 'b', or 0 on failure. */
static char ask_who(uint16_t proxy_port)
{
    char *reply = exchange_once(proxy_port, fault_hello.data, fault_hello.length, 3000, NULL);
    char who = 0;
    if (reply && strcmp(reply, "alpha\n") == 0)
        who = 'a';
    else if (reply && strcmp(reply, "bravo\n") == 0)
        who = 'b';
    free(reply);
    return who;
}

static char *routes_to(uint16_t proxy_port, const char *target, uint16_t alpha_port, uint16_t bravo_port,
                       const char *globals, const char *more_listen)
{
    char *body = text_format("%s[routes]\nmatrix.exceptionerror.io = %s\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n"
                             "[upstream bravo]\nserver = 127.0.0.1:%u\n",
                             more_listen, target, alpha_port, bravo_port);
    char *config = config_text(proxy_port, globals, body);
    free(body);
    return config;
}

/* A reload that adds an address, with the first `call` of the main thread
 * after the reload's first listen(2) failing: the reload is rejected for
 * want of memory, the previous routes serve, the added address refuses
 * connections; the same reload again then applies whole. Ports
 * first_port to first_port + 3. */
static void expect_rejected_reload_leaves_nothing(uint16_t first_port, const char *globals, const char *call)
{
    uint16_t proxy_port = first_port, added_port = (uint16_t)(first_port + 1);
    uint16_t alpha_port = (uint16_t)(first_port + 2), bravo_port = (uint16_t)(first_port + 3);
    fault_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(fault_hello.data);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    cr_assert(backend_start(&bravo_backend, "bravo", bravo_port, NULL, NULL));
    char *old_config = routes_to(proxy_port, "alpha", alpha_port, bravo_port, globals, "");
    /* config_text's [listen] goes on. */
    char *added = text_format("address = 127.0.0.1:%u\n", added_port);
    char *new_config = routes_to(proxy_port, "bravo", alpha_port, bravo_port, globals, added);
    preload_failing(call, 1, ENOMEM);
    cr_assert_eq(setenv("SNISPLICE_FAIL_ARMED_BY", "HUP,listen", 1), 0);
    cr_assert_eq(setenv("SNISPLICE_FAIL_MAIN_THREAD", "1", 1), 0);
    bool started = proxy_start(&fault_proxy, old_config, proxy_port);
    unpreload();
    cr_assert(started, "snisplice did not start");

    proxy_reload(&fault_proxy, new_config);
    cr_assert(proxy_stderr_wait_for(&fault_proxy, "reload rejected", 5000),
              "the failed allocation did not reject the reload");
    char *log = proxy_stderr(&fault_proxy);
    cr_expect(strstr(log, "fail_call: ") && strstr(log, "out of memory"), "memory is not named; stderr:\n%s", log);
    free(log);
    cr_expect_eq(ask_who(proxy_port), 'a', "the previous routes no longer serve");
    int client = net_connect(added_port);
    cr_expect_lt(client, 0, "the rejected reload's address still takes connections that no one serves");
    if (client >= 0)
        close(client);

    /* One failure only: the same reload again applies whole. */
    proxy_reload(&fault_proxy, new_config);
    cr_assert(proxy_stderr_wait_for(&fault_proxy, "reloaded ", 5000), "the second reload did not apply");
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(ask_who(added_port), 'b', "connection %d to the added address was not served", i);
        cr_expect_eq(ask_who(proxy_port), 'b', "connection %d to the first address was not served", i);
    }
    expect_clean_exit();
    free(new_config);
    free(added);
    free(old_config);
}

/* Memory that ran out after a reload had bound its new address (copying
 * the address list, publishing the snapshot) used to reject the reload
 * but leave the address bound and handed to the workers, none of which
 * would ever accept on it: until the next reload, clients of that port
 * were let in by the kernel and then left hanging, and the port was
 * held. Now nothing of the rejected reload listens. */
Test(faults, a_reload_rejected_after_binding_leaves_no_new_address_listening, .init = integration_init,
     .fini = fault_fini)
{
    expect_rejected_reload_leaves_nothing(TEST_PORT(288, 0), "", "malloc");
}

/* Memory that ran out while the new sockets were handed to the workers
 * closed that worker's socket and went on: the reload said it applied,
 * and with one worker the added address accepted no connection at all.
 * Now the hand-over is all or nothing and the reload is rejected. */
Test(faults, a_reload_that_cannot_hand_its_new_address_to_a_worker_is_rejected, .init = integration_init,
     .fini = fault_fini)
{
    expect_rejected_reload_leaves_nothing(TEST_PORT(288, 10), "workers = 1\n", "calloc");
}

/* Whether the file at path (a proxy's stderr) says it is serving. */
static bool says_serving(const char *path)
{
    char *text = file_read_all(path, NULL);
    bool serving = text && strstr(text, " workers, ");
    free(text);
    return serving;
}

/* One start-up of snisplice with the config at config_path and call #nth
 * of `call` failing with `error`. *status is its exit code: by itself, or
 * after a SIGTERM once it says it serves. *log is its stderr; *reached
 * whether the shim failed a call at all. */
static void start_failing(const char *directory, const char *config_path, const char *call, unsigned nth,
                          int error, int *status, char **log, bool *reached)
{
    char *stderr_path = text_format("%s/stderr-%s-%u.log", directory, call, nth);
    const char *argv[] = { proxy_binary(), "-c", config_path, NULL };
    struct child_spawn_options options = { .stderr_path = stderr_path, .stdout_path = stderr_path };
    preload_failing(call, nth, error);
    pid_t pid = child_spawn(argv, &options);
    unpreload();
    cr_assert_gt(pid, 0);
    *status = CHILD_TIMED_OUT;
    for (long long deadline = monotonic_ms() + 10000; monotonic_ms() < deadline; sleep_ms(10)) {
        *status = child_wait(pid, 0);
        if (*status != CHILD_TIMED_OUT)
            break;
        if (says_serving(stderr_path)) {
            kill(pid, SIGTERM);
            *status = child_wait(pid, 10000);
            break;
        }
    }
    if (*status == CHILD_TIMED_OUT)
        child_kill(pid);
    *log = file_read_all(stderr_path, NULL);
    cr_assert_not_null(*log, "%s #%u: exit %d, no %s", call, nth, *status, stderr_path);
    *reached = strstr(*log, "fail_call: ") != NULL;
    free(stderr_path);
}

/* ENOMEM's text, or what pthread_create(3) makes of it (EAGAIN). */
static bool says_memory_ran_out(const char *log)
{
    return strstr(log, "out of memory") || strstr(log, "Cannot allocate memory") ||
           strstr(log, "Resource temporarily unavailable");
}

/* Every allocation of the main thread at start-up, failed in turn: the
 * process either comes up and stops cleanly, or exits 1 saying it ran
 * out of memory. It used to exit 1 without a word when the allocation
 * was the one for the sockets' list or for the copy of the addresses. */
Test(faults, every_failed_allocation_at_start_up_is_told, .init = integration_init, .fini = fault_fini)
{
    uint16_t proxy_port = TEST_PORT(289, 0), alpha_port = TEST_PORT(289, 1);
    char *directory = temp_directory_create("faults-start");
    char *globals = text_format("access_log = %s/access.log\nstats = 127.0.0.1:%u\n", directory,
                                TEST_PORT(289, 2));
    char *body = text_format("address = 127.0.0.1:%u\n"
                             "[routes]\nmatrix.exceptionerror.io = alpha\n*.example.com = alpha\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n",
                             TEST_PORT(289, 3), alpha_port);
    char *config = config_text(proxy_port, globals, body);
    char *config_path = temp_file_write(directory, "snisplice.ini", config);
    cr_assert_eq(setenv("SNISPLICE_FAIL_MAIN_THREAD", "1", 1), 0);
    static const char *const calls[] = { "malloc", "calloc" };
    for (size_t c = 0; c < sizeof calls / sizeof *calls; c++) {
        unsigned nth = 1;
        for (;; nth++) {
            int status;
            char *log;
            bool reached;
            start_failing(directory, config_path, calls[c], nth, ENOMEM, &status, &log, &reached);
            cr_expect(status == 0 || (status == 1 && says_memory_ran_out(log)),
                      "%s #%u: exit %d without saying memory ran out; stderr:\n%s", calls[c], nth, status, log);
            free(log);
            if (!reached || nth >= 200)
                break;
        }
        cr_expect_gt(nth, 3, "%s: the shim failed too few calls to mean anything", calls[c]);
    }
    free(config_path);
    free(config);
    free(body);
    free(globals);
    free(directory);
}

/* Out of descriptors or threads before the workers run: the exit used
 * to say "out of memory" (an eventfd refused for EMFILE) or "cannot
 * start workers" with no reason, and a listening socket that failed
 * anywhere but bind(2) gave the reason alone. Now the line names the
 * call and the kernel's reason, and an access log on /dev/stdout that
 * could not be duplicated (out of fds) is no longer blamed on /dev/stdout
 * being a symbolic link (as root). workers = 2: threads 1 and 2 are
 * theirs, 3 the stats server's; the stats port is bound first. */
Test(faults, start_up_names_the_call_that_failed_and_why, .init = integration_init, .fini = fault_fini)
{
    uint16_t proxy_port = TEST_PORT(290, 0);
    char *directory = temp_directory_create("faults-why");
    char *globals = text_format("stats = 127.0.0.1:%u\naccess_log = /dev/stdout\n", TEST_PORT(290, 1));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", TEST_PORT(290, 2));
    char *config = config_text(proxy_port, globals, body);
    char *config_path = temp_file_write(directory, "snisplice.ini", config);
    static const struct {
        const char *call;
        unsigned nth;
        int error;
        const char *said;
    } cases[] = {
        { "eventfd", 1, EMFILE, "worker 0: eventfd: Too many open files" },
        { "eventfd", 2, ENFILE, "worker 1: eventfd: Too many open files in system" },
        { "eventfd", 3, EMFILE, "stats: cannot start its thread: Too many open files" },
        { "pthread_create", 1, EAGAIN, "worker 0: cannot start its thread: Resource temporarily unavailable" },
        { "pthread_create", 2, EPERM, "worker 1: cannot start its thread: Operation not permitted" },
        { "pthread_create", 3, EAGAIN, "stats: cannot start its thread: Resource temporarily unavailable" },
        { "dupfd", 1, EMFILE, "access_log /dev/stdout: Too many open files" },
        { "bind", 1, EADDRNOTAVAIL, ": bind: Cannot assign requested address" },
        { "listen", 1, ENOBUFS, ": listen: No buffer space available" },
        { "listen", 2, ENOMEM, ": listen: Cannot allocate memory" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int status;
        char *log;
        bool reached;
        start_failing(directory, config_path, cases[i].call, cases[i].nth, cases[i].error, &status,
                      &log, &reached);
        cr_expect(reached, "%s #%u was never called", cases[i].call, cases[i].nth);
        cr_expect_eq(status, 1, "%s #%u: exit %d; stderr:\n%s", cases[i].call, cases[i].nth, status, log);
        cr_expect(strstr(log, cases[i].said), "%s #%u: no \"%s\"; stderr:\n%s", cases[i].call, cases[i].nth,
                  cases[i].said, log);
        cr_expect(!strstr(log, "out of memory"), "%s #%u: blamed on memory; stderr:\n%s", cases[i].call,
                  cases[i].nth, log);
        free(log);
    }
    free(config_path);
    free(config);
    free(body);
    free(globals);
    free(directory);
}

/* Whether a failed `-t` says memory ran out, and every other line is the
 * shim's or the verdict. */
static bool blames_memory_alone(const char *output)
{
    char *copy = strdup(output), *saved = NULL;
    cr_assert_not_null(copy);
    bool others = false, memory = false;
    for (char *line = strtok_r(copy, "\n", &saved); line; line = strtok_r(NULL, "\n", &saved)) {
        if (strstr(line, "out of memory") || strstr(line, "Cannot allocate memory") ||
            strstr(line, "Memory exhausted") /* regcomp's REG_ESPACE */)
            memory = true;
        else if (strncmp(line, "fail_call: ", 11) != 0 && !strstr(line, "configuration test failed"))
            others = true;
    }
    free(copy);
    return memory && !others;
}

/* An allocation that failed while the config loaded used to bring
 * errors about the file itself before "out of memory": an upstream that
 * could not be made was "unknown", a section that could not be entered
 * made its keys "unknown key 'address' in [global]". An operator then
 * hunts for a mistake that is not there (and a reload under memory
 * pressure told the same). And with memory short for good, the error's
 * own text could not be made: the array grown for it leaked (LeakSanitizer
 * failed the exit) and nothing said why the check failed. A regular
 * expression route whose regcomp ran out of memory was regfree'd all the
 * same, freeing a pointer glibc had not set: a crash (a reload's, in a
 * serving process). Every
 * allocation of `-t`, failed in turn, and all from each on: valid, or
 * out of memory and nothing else. */
Test(faults, a_config_check_out_of_memory_blames_memory_alone, .init = integration_init, .fini = fault_fini)
{
    char *directory = temp_directory_create("faults-check");
    char *globals = text_format("stats = 127.0.0.1:%u\n", TEST_PORT(291, 1));
    char *body = text_format("address = 127.0.0.1:%u\n"
                             "[routes]\nmatrix.exceptionerror.io = alpha\n*.example.com = alpha\n"
                             ".example.org = bravo\nblog.example.net = 127.0.0.1:%u\ndefault = bravo\n"
                             "~^(.+)\\.regex\\.example$ = alpha\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\nserver = 127.0.0.1:%u backup\n"
                             "[upstream bravo]\nserver = 127.0.0.1:%u\n",
                             TEST_PORT(291, 2), TEST_PORT(291, 3), TEST_PORT(291, 4), TEST_PORT(291, 5),
                             TEST_PORT(291, 6));
    char *config = config_text(TEST_PORT(291, 0), globals, body);
    char *config_path = temp_file_write(directory, "snisplice.ini", config);
    const char *argv[] = { proxy_binary(), "-t", "-c", config_path, NULL };
    /* "every": that call and all after it fail, as when memory stays
     * short; then even the error's text may not be made. */
    static const char *const calls[] = { "malloc", "calloc", "realloc", "every malloc" };
    for (size_t c = 0; c < sizeof calls / sizeof *calls; c++) {
        bool every = strncmp(calls[c], "every ", 6) == 0;
        const char *call = every ? calls[c] + 6 : calls[c];
        if (every)
            cr_assert_eq(setenv("SNISPLICE_FAIL_EVERY", "1", 1), 0);
        unsigned nth = 1;
        for (;; nth++) {
            /* child_run would make a directory per run, more than its registry holds. */
            char *output_path = text_format("%s/check-%s%s-%u.log", directory, every ? "every-" : "", call, nth);
            struct child_spawn_options options = { .stderr_path = output_path, .stdout_path = output_path };
            preload_failing(call, nth, ENOMEM);
            pid_t pid = child_spawn(argv, &options);
            unpreload();
            cr_assert_gt(pid, 0);
            int status = child_wait(pid, 15000);
            char *output = file_read_all(output_path, NULL);
            cr_assert_not_null(output, "%s #%u: exit %d, no output", calls[c], nth, status);
            free(output_path);
            bool reached = strstr(output, "fail_call: ") != NULL;
            cr_expect((status == 0 && strstr(output, "configuration is valid")) ||
                          (status == 1 && blames_memory_alone(output)),
                      "%s #%u: exit %d, output:\n%s", calls[c], nth, status, output);
            free(output);
            if (!reached || nth >= 200)
                break;
        }
        cr_expect_gt(nth, 3, "%s: the shim failed too few calls to mean anything", calls[c]);
    }
    free(config_path);
    free(config);
    free(body);
    free(globals);
    free(directory);
}

/* Memory that ran out for a new connection closed it without a word, and
 * the next clients likewise, one after another: nothing in the log or
 * the metrics said why clients were reset. Now the worker says so once
 * and pauses accepting, as when descriptors run out; the next client is
 * served after the pause. workers = 1, whose connections come in chunks
 * of 256: with 256 open, the next one needs a new chunk, the first
 * calloc after the USR1. */
#define SLAB_CHUNK 256

Test(faults, out_of_memory_for_a_new_connection_is_told, .init = integration_init, .fini = fault_fini)
{
    uint16_t proxy_port = TEST_PORT(290, 10), alpha_port = TEST_PORT(290, 11), stats_port = TEST_PORT(290, 12);
    fault_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(fault_hello.data);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *globals = text_format("workers = 1\npreread_timeout = 60s\nstats = 127.0.0.1:%u\n", stats_port);
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = alpha\n[upstream alpha]\nserver = 127.0.0.1:%u\n",
                             alpha_port);
    char *config = config_text(proxy_port, globals, body);
    start_failing_after_usr1(config, proxy_port, "calloc", ENOMEM, false);
    int waiting[SLAB_CHUNK];
    for (int i = 0; i < SLAB_CHUNK; i++) {
        waiting[i] = net_connect(proxy_port);
        cr_assert_geq(waiting[i], 0);
    }
    long long active = -1;
    for (int tries = 0; tries < 100 && active != SLAB_CHUNK; tries++, sleep_ms(50))
        active = stats_value(stats_port, "snisplice_active_connections");
    cr_assert_eq(active, SLAB_CHUNK, "not every held connection was accepted");
    proxy_signal(&fault_proxy, SIGUSR1);
    sleep_ms(300);

    char who = ask_who(proxy_port);
    cr_assert(proxy_stderr_wait_for(&fault_proxy, "fail_call: calloc #1", 2000), "the shim failed nothing");
    cr_expect_eq(who, 0, "the connection whose memory ran out was served");
    cr_expect(proxy_stderr_wait_for(&fault_proxy, "worker 0: new connection: Cannot allocate memory", 2000),
              "nothing says why the client was closed");
    cr_expect_eq(ask_who(proxy_port), 'a', "the next client was not served");
    for (int i = 0; i < SLAB_CHUNK; i++)
        close(waiting[i]);
    expect_clean_exit();
    free(config);
    free(body);
    free(globals);
}

/* Upstream TCP sockets come from the worker's stash, made by its ring
 * ahead of need (io/socket_stash.c), not from socket(2): with every
 * socket(2) failing from the USR1 on, clients are still served, and the
 * shim is never asked for a socket. */
Test(faults, upstream_sockets_need_no_socket_call, .init = integration_init, .fini = fault_fini)
{
    enum { CLIENTS = 100 };
    uint16_t proxy_port = TEST_PORT(394, 0), alpha_port = TEST_PORT(394, 1), bravo_port = TEST_PORT(394, 2);
    fault_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(fault_hello.data);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *config = routes_to(proxy_port, "alpha", alpha_port, bravo_port, "workers = 1\n", "");
    start_failing_after_usr1(config, proxy_port, "socket", EMFILE, true);
    cr_expect_eq(ask_who(proxy_port), 'a', "not served before the USR1");
    proxy_signal(&fault_proxy, SIGUSR1);
    sleep_ms(300);
    int served = 0;
    for (int i = 0; i < CLIENTS; i++)
        served += ask_who(proxy_port) == 'a';
    cr_expect_eq(served, CLIENTS, "%d of %d clients served with socket(2) failing", served, CLIENTS);
    char *log = proxy_stderr(&fault_proxy);
    cr_expect(!strstr(log, "fail_call: socket"), "a socket(2) call was made:\n%.2000s", log);
    free(log);
    expect_clean_exit();
    free(config);
}

/* A connection whose access log record could not be allocated left no
 * line, and the loss was neither counted nor said, unlike a line lost to
 * a slow disk. Now it is both. The first connection grows the slab;
 * after the USR1 the first calloc is the next connection's record. */
Test(faults, an_access_log_line_lost_for_memory_is_counted, .init = integration_init, .fini = fault_fini)
{
    uint16_t proxy_port = TEST_PORT(291, 10), alpha_port = TEST_PORT(291, 11), stats_port = TEST_PORT(291, 12);
    fault_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(fault_hello.data);
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *directory = temp_directory_create("faults-log");
    char *log_path = text_format("%s/access.log", directory);
    char *globals = text_format("workers = 1\naccess_log = %s\nstats = 127.0.0.1:%u\n", log_path, stats_port);
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = alpha\n[upstream alpha]\nserver = 127.0.0.1:%u\n",
                             alpha_port);
    char *config = config_text(proxy_port, globals, body);
    start_failing_after_usr1(config, proxy_port, "calloc", ENOMEM, false);
    cr_assert_eq(ask_who(proxy_port), 'a');
    /* The stats thread serves before the shim is armed: its start (under
     * ASan, an allocation of its own) could otherwise fall after the USR1,
     * fail, and abort the process. */
    cr_assert_eq(stats_value(stats_port, "snisplice_workers"), 1);
    proxy_signal(&fault_proxy, SIGUSR1);
    cr_assert(proxy_stderr_wait_for(&fault_proxy, "reopened access log", 3000));

    cr_expect_eq(ask_who(proxy_port), 'a', "a connection without a log line must still be served");
    cr_assert(proxy_stderr_wait_for(&fault_proxy, "fail_call: calloc #1", 2000), "the shim failed nothing");
    cr_expect(proxy_stderr_wait_for(&fault_proxy, "access log: out of memory", 2000), "the lost line was not said");
    cr_expect_eq(stats_value(stats_port, "snisplice_access_log_lost_lines_total"), 1);
    expect_clean_exit();
    free(config);
    free(body);
    free(globals);
    free(log_path);
    free(directory);
}

/* --import-nginx with each allocation failed in turn: it prints the INI
 * (exit 0), or exits 1 saying memory ran out. The file's buffer that
 * could not grow used to be reported as "cannot read: File too large",
 * for a file of a few hundred bytes. */
Test(faults, an_import_out_of_memory_blames_memory, .init = integration_init, .fini = fault_fini)
{
    char *directory = temp_directory_create("faults-import");
    char *nginx_path = temp_file_write(directory, "nginx.conf",
                                       "events {}\n"
                                       "stream {\n"
                                       "    map $ssl_preread_server_name $backend {\n"
                                       "        matrix.example.com matrix;\n"
                                       "        ~^(.+)\\.example\\.org$ web;\n"
                                       "        default web;\n"
                                       "    }\n"
                                       "    upstream matrix { server 127.0.0.1:8448; server 127.0.0.1:8449 backup; }\n"
                                       "    upstream web { server 127.0.0.1:8450 max_fails=2 fail_timeout=10s; }\n"
                                       "    server {\n"
                                       "        listen 127.0.0.1:8443;\n"
                                       "        ssl_preread on;\n"
                                       "        proxy_pass $backend;\n"
                                       "        proxy_connect_timeout 5s;\n"
                                       "    }\n"
                                       "}\n");
    const char *argv[] = { proxy_binary(), "--import-nginx", nginx_path, NULL };
    static const char *const calls[] = { "malloc", "calloc", "realloc" };
    for (size_t c = 0; c < sizeof calls / sizeof *calls; c++) {
        unsigned nth = 1;
        for (;; nth++) {
            char *ini_path = text_format("%s/import-%s-%u.ini", directory, calls[c], nth);
            char *errors_path = text_format("%s/import-%s-%u.log", directory, calls[c], nth);
            struct child_spawn_options options = { .stdout_path = ini_path, .stderr_path = errors_path };
            preload_failing(calls[c], nth, ENOMEM);
            pid_t pid = child_spawn(argv, &options);
            unpreload();
            cr_assert_gt(pid, 0);
            int status = child_wait(pid, 15000);
            char *ini = file_read_all(ini_path, NULL), *errors = file_read_all(errors_path, NULL);
            cr_assert(ini && errors, "%s #%u: exit %d, no output", calls[c], nth, status);
            bool reached = strstr(errors, "fail_call: ") != NULL;
            cr_expect((status == 0 && strstr(ini, "[listen]")) ||
                          (status == 1 && (strstr(errors, "out of memory") || strstr(errors, "Cannot allocate memory"))),
                      "%s #%u: exit %d, stderr:\n%s", calls[c], nth, status, errors);
            free(ini);
            free(errors);
            free(errors_path);
            free(ini_path);
            if (!reached || nth >= 400)
                break;
        }
        cr_expect_gt(nth, 3, "%s: the shim failed too few calls to mean anything", calls[c]);
    }
    free(nginx_path);
    free(directory);
}

/* A scrape while memory is short: the metrics cannot be rendered, and not
 * even the 503 that says so could be allocated, so the scraper's
 * connection was closed unanswered, as if the proxy were gone. Now it
 * gets the 503. Every malloc fails from the USR1 on. */
Test(faults, a_scrape_out_of_memory_is_answered_503, .init = integration_init, .fini = fault_fini)
{
    uint16_t proxy_port = TEST_PORT(289, 10), stats_port = TEST_PORT(289, 11);
    char *globals = text_format("stats = 127.0.0.1:%u\n", stats_port);
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", TEST_PORT(289, 12));
    char *config = config_text(proxy_port, globals, body);
    start_failing_after_usr1(config, proxy_port, "malloc", ENOMEM, true);
    /* Started before the shim is armed (see the access log test above). */
    cr_assert_geq(stats_value(stats_port, "snisplice_workers"), 1);
    proxy_signal(&fault_proxy, SIGUSR1);
    sleep_ms(300);

    char *response = stats_fetch(stats_port, "/metrics");
    cr_assert_not_null(response);
    cr_expect(proxy_stderr_wait_for(&fault_proxy, "fail_call: malloc #1", 2000), "the shim failed nothing");
    cr_expect(strncmp(response, "HTTP/1.0 503 ", 13) == 0 && strstr(response, "\r\n\r\nout of memory\n"),
              "the scrape got \"%s\"", response);
    free(response);
    expect_clean_exit();
    free(config);
    free(body);
    free(globals);
}

/* Streams until the proxy stops taking bytes or closes, then reads to the
 * end, so that its close never resets what it sent. */
static void stream_until_refused(struct backend *backend, int fd, void *context)
{
    (void)backend, (void)context;
    static uint8_t chunk[65536];
    for (size_t sent = 0; sent < (64u << 20); sent += sizeof chunk)
        if (!net_send_all(fd, chunk, sizeof chunk))
            break;
    shutdown(fd, SHUT_WR);
    while (recv(fd, chunk, sizeof chunk, 0) > 0)
        continue;
}

/* A client that sends its hello and its FIN and then stops reading waits
 * in the worker's epoll set (io_uring's POLLOUT poll would complete at
 * once, again and again). When the kernel refuses that wait (epoll_ctl:
 * out of memory, fs.epoll.max_user_watches), the worker went back to the
 * io_uring poll and spun at 100 % of a CPU for as long as the client
 * stayed. Now that connection is closed, said and counted, and the next
 * one is served. */
Test(faults, a_half_closed_reader_that_cannot_be_waited_for_is_closed_not_spun, .init = integration_init,
     .fini = fault_fini)
{
    uint16_t proxy_port = TEST_PORT(340, 0), streamer_port = TEST_PORT(340, 1);
    uint16_t alpha_port = TEST_PORT(340, 2), stats_port = TEST_PORT(340, 3);
    fault_hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(fault_hello.data);
    cr_assert(backend_start(&bravo_backend, "streamer", streamer_port, stream_until_refused, NULL));
    cr_assert(backend_start(&alpha_backend, "alpha", alpha_port, NULL, NULL));
    char *globals = text_format("workers = 1\nstats = 127.0.0.1:%u\n", stats_port);
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = alpha\ndefault = streamer\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n[upstream streamer]\nserver = 127.0.0.1:%u\n",
                             alpha_port, streamer_port);
    char *config = config_text(proxy_port, globals, body);
    preload_failing("epoll_ctl", 1, ENOMEM);
    cr_assert_eq(setenv("SNISPLICE_FAIL_EVERY", "1", 1), 0);
    bool started = proxy_start(&fault_proxy, config, proxy_port);
    unpreload();
    cr_assert(started, "snisplice did not start");

    struct hello_bytes other = hello_build("stall.example");
    int fd = net_connect(proxy_port);
    cr_assert_geq(fd, 0);
    cr_assert(net_send_all(fd, other.data, other.length));
    hello_free(&other);
    shutdown(fd, SHUT_WR);
    cr_assert(proxy_stderr_wait_for(&fault_proxy, "fail_call: epoll_ctl #1", 5000),
              "the download never waited for the half-closed client");
    long long ticks_before = process_cpu_ticks(fault_proxy.pid);
    sleep_ms(1500);
    long long cpu_ms = (process_cpu_ticks(fault_proxy.pid) - ticks_before) * 1000 / sysconf(_SC_CLK_TCK);
    cr_expect_lt(cpu_ms * 10, 1500, "the proxy used %lld ms of CPU in 1500 ms: busy loop?", cpu_ms);
    cr_expect(proxy_stderr_wait_for(&fault_proxy, "cannot wait for a half-closed peer to read", 2000),
              "nothing says why the connection was closed");
    cr_expect_eq(stats_value(stats_port, "snisplice_connections_total{route=\"streamer\",outcome=\"no_resources\"}"),
                 1, "the closed connection is not counted as out of resources");
    close(fd);
    cr_expect_eq(ask_who(proxy_port), 'a', "the next client was not served");

    expect_clean_exit();
    free(config);
    free(body);
    free(globals);
}

/* A machine that refuses io_uring while its kernel has it: the sysctl
 * kernel.io_uring_disabled, or a container's seccomp profile (Docker's
 * and containerd's default ones return EPERM for io_uring_setup). Start-up
 * said "worker 0: io_uring_queue_init: Operation not permitted" after
 * binding every address, which reads like a file's permissions, and -t
 * called the config valid. Both now fail before binding, naming the
 * sysctl and seccomp; a kernel without io_uring (ENOSYS) is named too. */
Test(faults, a_machine_that_refuses_io_uring_is_named_by_t_and_start_up, .init = integration_init,
     .fini = fault_fini)
{
    uint16_t proxy_port = TEST_PORT(372, 0);
    char *directory = temp_directory_create("faults-uring");
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", TEST_PORT(372, 1));
    char *config = config_text(proxy_port, "workers = 2\n", body);
    char *config_path = temp_file_write(directory, "snisplice.ini", config);
    static const struct {
        int error;
        const char *said;
    } cases[] = {
        { EPERM, "cannot use io_uring: io_uring is refused to this process: the sysctl kernel.io_uring_disabled" },
        { ENOSYS, "cannot use io_uring: this kernel has no io_uring" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int status;
        char *log;
        bool reached;
        start_failing(directory, config_path, "uring", 1, cases[i].error, &status, &log, &reached);
        cr_expect_eq(status, 1, "errno %d: exit %d; stderr:\n%s", cases[i].error, status, log);
        cr_expect(strstr(log, cases[i].said), "errno %d: no \"%s\"; stderr:\n%s", cases[i].error, cases[i].said,
                  log);
        cr_expect(!strstr(log, "worker 0"), "errno %d: workers were set up; stderr:\n%s", cases[i].error, log);
        free(log);

        char *check_path = text_format("%s/check-%d.log", directory, cases[i].error);
        const char *argv[] = { proxy_binary(), "-t", "-c", config_path, NULL };
        struct child_spawn_options options = { .stderr_path = check_path, .stdout_path = check_path };
        preload_failing("uring", 1, cases[i].error);
        pid_t pid = child_spawn(argv, &options);
        unpreload();
        cr_assert_gt(pid, 0);
        status = child_wait(pid, 10000);
        log = file_read_all(check_path, NULL);
        cr_assert_not_null(log);
        cr_expect_eq(status, 1, "-t, errno %d: exit %d; output:\n%s", cases[i].error, status, log);
        cr_expect(strstr(log, cases[i].said), "-t, errno %d: no \"%s\"; output:\n%s", cases[i].error,
                  cases[i].said, log);
        free(log);
        free(check_path);
    }
    free(config_path);
    free(config);
    free(body);
    free(directory);
}
