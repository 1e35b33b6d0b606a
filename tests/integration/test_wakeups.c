/*
 * test_wakeups.c - how often a short connection wakes the worker, and the
 * bound on the client polls that are deferred to save a wake-up (io/relay.c):
 *   - a short connection (hello, reply, server's FIN, client's FIN) costs
 *     the worker at most two sleeps: the client's FIN is found at the next
 *     wake-up instead of waking the worker on its own (three before);
 *   - bytes a client sends after its hello while the server stays silent,
 *     and after the server's FIN while nothing else happens, still reach
 *     the server within the timer-wheel tick;
 *   - after a burst has made the worker wait for batches of completions
 *     (io/ring_wait.c), a lone connection is not held for a batch that
 *     never comes.
 * Ports: block 88.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"
#include "../support/routed.h"

#define SHORT_CONNECTIONS 200
#define LATE_BYTES 64

static struct routed wakeups_routed;

static void wakeups_fini(void)
{
    proxy_release(&wakeups_routed.proxy);
    integration_cleanup();
}

static void start_routed(uint16_t proxy_port, uint16_t backend_port, backend_handler handler)
{
    cr_assert(routed_start(&wakeups_routed, proxy_port, backend_port, "wakeups", handler),
              "backend or snisplice did not start");
}

static void stop_routed(void)
{
    cr_expect_eq(routed_stop(&wakeups_routed), 0);
}

/* Calls visit(task id, its /proc status path, state) for every thread of
 * process pid (0: this process). */
static void for_each_task(pid_t pid, void (*visit)(pid_t, const char *, void *), void *state)
{
    char path[64];
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    else
        snprintf(path, sizeof path, "/proc/self/task");
    DIR *tasks = opendir(path);
    cr_assert(tasks, "cannot read %s", path);
    struct dirent *entry;
    while ((entry = readdir(tasks))) {
        if (entry->d_name[0] == '.')
            continue;
        char status_path[sizeof path + sizeof entry->d_name + 8];
        snprintf(status_path, sizeof status_path, "%s/%s/status", path, entry->d_name);
        visit((pid_t)atoi(entry->d_name), status_path, state);
    }
    closedir(tasks);
}

static void add_voluntary_switches(pid_t task, const char *status_path, void *total)
{
    (void)task;
    FILE *status = fopen(status_path, "r");
    if (!status)
        return;
    char line[128];
    long long switches;
    while (fgets(line, sizeof line, status))
        if (sscanf(line, "voluntary_ctxt_switches: %lld", &switches) == 1)
            *(long long *)total += switches;
    fclose(status);
}

/* Voluntary context switches of all of the proxy's threads: one per sleep. */
static long long proxy_sleeps(pid_t pid)
{
    long long total = 0;
    for_each_task(pid, add_voluntary_switches, &total);
    return total;
}

static void pin_task(pid_t task, const char *status_path, void *cpu)
{
    (void)status_path;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(*(int *)cpu, &set);
    sched_setaffinity(task, sizeof set, &set);
}

/* Proxy on CPU 0, this test (client and backend threads) on CPU 1, as in
 * bench/: otherwise the order in which the two sides run, not the proxy,
 * decides how often it sleeps. */
static void pin_apart(pid_t proxy_pid)
{
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        return;
    int proxy_cpu = 0, test_cpu = 1;
    for_each_task(proxy_pid, pin_task, &proxy_cpu);
    for_each_task(0, pin_task, &test_cpu);
}

static void short_connection(uint16_t port)
{
    struct routed_exchange exchange = routed_short_exchange(&wakeups_routed, port);
    cr_assert_geq(exchange.fd, 0);
    cr_assert(exchange.eof && exchange.reply_bytes == ROUTED_REPLY_BYTES,
              "reply: %zu bytes, eof %d", exchange.reply_bytes, exchange.eof);
    close(exchange.fd);
}

Test(wakeups, a_short_connection_wakes_the_worker_at_most_twice, .init = integration_init,
     .fini = wakeups_fini)
{
    uint16_t proxy_port = TEST_PORT(88, 0), backend_port = TEST_PORT(88, 1);
    start_routed(proxy_port, backend_port, routed_reply_and_close);
    pin_apart(wakeups_routed.proxy.pid);
    for (int i = 0; i < 20; i++)
        short_connection(proxy_port); /* pipes, slab and ring warmed up */

    long long before = proxy_sleeps(wakeups_routed.proxy.pid);
    for (int i = 0; i < SHORT_CONNECTIONS; i++) {
        short_connection(proxy_port);
        /* A pause, shorter than a tick, so that the client's FIN and the
         * next connection never reach the proxy together by chance. */
        sleep_ms(1);
    }
    long long sleeps = proxy_sleeps(wakeups_routed.proxy.pid) - before;
    double per_connection = (double)sleeps / SHORT_CONNECTIONS;
    /* Three without the deferred client poll: accept, the server's answer,
     * the client's FIN. Slack for the odd tick or a late wake-up. */
    cr_expect_leq(per_connection, 2.5, "the proxy slept %.2f times per short connection",
                  per_connection);
    stop_routed();
}

/* Silent after the hello until LATE_BYTES more arrive; then the answer
 * and the FIN; then LATE_BYTES more until the client's end of stream. */
static atomic_llong late_after_hello_ms, late_after_fin_ms;

static void silent_then_half_close(struct backend *backend, int fd, void *context)
{
    (void)backend;
    char late[LATE_BYTES];
    if (!routed_receive_hello(context, fd))
        return;
    if (net_receive_exact(fd, late, LATE_BYTES, 3000) != LATE_BYTES)
        return;
    atomic_store(&late_after_hello_ms, monotonic_ms());
    net_send_all(fd, "ok\n", 3);
    shutdown(fd, SHUT_WR);
    if (net_receive_exact(fd, late, LATE_BYTES, 3000) != LATE_BYTES)
        return;
    atomic_store(&late_after_fin_ms, monotonic_ms());
}

Test(wakeups, deferred_client_bytes_arrive_within_a_tick, .init = integration_init,
     .fini = wakeups_fini)
{
    uint16_t proxy_port = TEST_PORT(88, 2), backend_port = TEST_PORT(88, 3);
    start_routed(proxy_port, backend_port, silent_then_half_close);
    char late[LATE_BYTES];
    memset(late, 'l', sizeof late);

    int fd = net_connect(proxy_port);
    cr_assert_geq(fd, 0);
    net_set_timeouts(fd, 5000);
    cr_assert(net_send_all(fd, wakeups_routed.hello.data, wakeups_routed.hello.length));
    sleep_ms(20); /* the proxy has connected and relayed the hello by now */
    long long sent_ms = monotonic_ms();
    cr_assert(net_send_all(fd, late, sizeof late));
    char answer[8];
    struct net_receive_result result = net_receive_until_closed(fd, answer, sizeof answer, 5000);
    cr_assert(result.eof && result.total == 3, "answer: %zu bytes, eof %d", result.total,
              result.eof);
    long long after_hello = atomic_load(&late_after_hello_ms) - sent_ms;

    sleep_ms(20); /* nothing else happens: only the tick can arm the poll */
    sent_ms = monotonic_ms();
    cr_assert(net_send_all(fd, late, sizeof late));
    shutdown(fd, SHUT_WR);
    long long closed_after = net_ms_until_closed(fd, sent_ms, 5000, NULL);
    close(fd);
    /* The backend notes the time in its own thread, maybe after the close. */
    for (int waited = 0; atomic_load(&late_after_fin_ms) == 0 && waited < 3000; waited += 5)
        sleep_ms(5);
    long long after_fin = atomic_load(&late_after_fin_ms) - sent_ms;

    /* A tick is 10 ms; the rest is slack for a loaded test machine. */
    cr_expect(after_hello >= 0 && after_hello < 200,
              "bytes sent after the hello reached the silent server after %lld ms", after_hello);
    cr_expect(after_fin >= 0 && after_fin < 200,
              "bytes sent after the server's FIN reached it after %lld ms", after_fin);
    cr_expect_geq(closed_after, 0, "connection not closed after both sides finished");
    stop_routed();
}

#define BURST 16

static long long lone_connection_after_burst_ms(uint16_t port)
{
    int burst[BURST];
    for (int i = 0; i < BURST; i++) {
        burst[i] = net_connect(port);
        cr_assert_geq(burst[i], 0);
        net_set_timeouts(burst[i], 5000);
        cr_assert(net_send_all(burst[i], wakeups_routed.hello.data, wakeups_routed.hello.length));
    }
    static char buffer[4096];
    for (int i = 0; i < BURST; i++) {
        struct net_receive_result result =
            net_receive_until_closed(burst[i], buffer, sizeof buffer, 5000);
        cr_assert(result.eof && result.total == ROUTED_REPLY_BYTES, "burst reply %d: %zu bytes", i,
                  result.total);
        close(burst[i]);
    }
    long long start = monotonic_ms();
    short_connection(port);
    return monotonic_ms() - start;
}

/* Lone connections measured after a burst and after a pause. */
#define LONE_SAMPLES 9

static int compare_long_long(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

Test(wakeups, a_lone_connection_after_a_burst_is_not_held_for_a_batch, .init = integration_init,
     .fini = wakeups_fini)
{
    uint16_t proxy_port = TEST_PORT(88, 4), backend_port = TEST_PORT(88, 5);
    start_routed(proxy_port, backend_port, routed_reply_and_close);
    long long took[LONE_SAMPLES], idle[LONE_SAMPLES];
    for (int i = 0; i < LONE_SAMPLES; i++) {
        took[i] = lone_connection_after_burst_ms(proxy_port);
        /* The same lone connection after a pause, when the worker is not
         * busy and waits for one completion: what the test machine's
         * load makes of a short connection just now. */
        sleep_ms(20);
        long long start = monotonic_ms();
        short_connection(proxy_port);
        idle[i] = monotonic_ms() - start;
    }
    qsort(took, LONE_SAMPLES, sizeof took[0], compare_long_long);
    qsort(idle, LONE_SAMPLES, sizeof idle[0], compare_long_long);
    /* A short connection takes well under a millisecond on an idle
     * machine; waiting for a batch of completions that never comes would
     * add up to a tick (10 ms), about 5 ms in the median, or the wait's
     * whole deadline. Compared with the lone connections after a pause,
     * measured in between, so that a loaded test machine (ASan, two
     * suites at once) slows both alike: against a fixed 5 ms, CI's run
     * once read 7 ms with the code right. The margin leaves room for the
     * burst's last closes, which the worker may still be handling when
     * the lone connection comes (2-3 ms under ASan and load); the burst
     * is kept small for that reason (16 connections still mark the
     * worker busy; with the batched wait's minimum time taken out, the
     * lone connection then waits for completions that never come). */
    cr_expect_lt(took[LONE_SAMPLES / 2], idle[LONE_SAMPLES / 2] + 5,
                 "a lone connection after a burst took %lld ms, after a pause %lld ms (medians of %d)",
                 took[LONE_SAMPLES / 2], idle[LONE_SAMPLES / 2], LONE_SAMPLES);
    stop_routed();
}
