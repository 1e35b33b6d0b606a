/*
 * test_limits.c - what idle connections cost and what max_connections does.
 *
 * An idle relayed connection holds its two sockets and nothing else: no
 * pipe, no kernel io-wq thread (a splice left pending on an idle socket
 * would park one per connection). At max_connections a new connection is
 * closed at once while the open ones keep going. Out of fds, accepting
 * pauses without spinning, and connections already relaying keep going
 * byte-exact without new pipes, towards TCP and unix: servers alike; the
 * shortage is warned about once, not at every retry. Clients closed at
 * max_connections are warned about, once a second. Running out with a
 * socket stash leaves the same descriptors once it is over. Ports: blocks
 * 43, 44, 45, 84, 97, 152, 159, 294, 393.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy limits_proxy;
static struct backend limits_backend;

static void limits_fini(void)
{
    proxy_release(&limits_proxy);
    integration_cleanup();
}

/* Threads of the process, and how many of them are io_uring io-wq workers. */
static int count_threads(pid_t pid, int *io_workers)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *tasks = opendir(path);
    cr_assert_not_null(tasks);
    int threads = 0;
    *io_workers = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        threads++;
        char comm_path[320], comm[64] = "";
        snprintf(comm_path, sizeof comm_path, "/proc/%d/task/%s/comm", (int)pid, entry->d_name);
        FILE *file = fopen(comm_path, "r");
        if (file) {
            if (fgets(comm, sizeof comm, file) && strncmp(comm, "iou-wrk", 7) == 0)
                (*io_workers)++;
            fclose(file);
        }
    }
    closedir(tasks);
    return threads;
}

/* Connect, send the hello, read the backend's greeting: an established,
 * then idle, relayed connection. Returns the client fd. */
static int open_idle(uint16_t port, const struct hello_bytes *hello)
{
    int fd = net_connect(port);
    cr_assert_geq(fd, 0);
    cr_assert(net_send_all(fd, hello->data, hello->length));
    char greeting[7] = "";
    cr_assert_eq(net_receive_exact(fd, greeting, 6, 5000), 6, "no greeting through the proxy");
    cr_assert_str_eq(greeting, "alpha\n");
    return fd;
}

Test(limits, idle_connections_hold_two_sockets_and_no_thread, .init = integration_init, .fini = limits_fini)
{
    enum { IDLE = 300 };
    uint16_t proxy_port = TEST_PORT(43, 0), alpha_port = TEST_PORT(43, 1);
    cr_assert(backend_start(&limits_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", alpha_port);
    uint16_t stats_port = TEST_PORT(43, 2);
    char *globals = text_format("stats = 127.0.0.1:%u\n", stats_port);
    char *config = config_text(proxy_port, globals, body);
    free(globals);
    cr_assert(proxy_start(&limits_proxy, config, proxy_port), "snisplice did not start");
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(hello.data);

    /* Warm-up: the pipe pool keeps an idle pipe or two on purpose. */
    for (int i = 0; i < 5; i++)
        close(open_idle(proxy_port, &hello));
    sleep_ms(300);
    long long pipes_in_use;
    int fds_before = stats_fds_outside_pool(&limits_proxy, stats_port, &pipes_in_use);
    int io_workers_before;
    int threads_before = count_threads(limits_proxy.pid, &io_workers_before);

    static int clients[IDLE];
    for (int i = 0; i < IDLE; i++)
        clients[i] = open_idle(proxy_port, &hello);
    sleep_ms(300);
    int fds_idle = stats_fds_outside_pool(&limits_proxy, stats_port, &pipes_in_use);
    cr_expect_eq(pipes_in_use, 0, "idle connections hold %lld pipes", pipes_in_use);
    long long hello_buffers = stats_value(stats_port, "snisplice_hello_buffers{state=\"in_use\"}");
    cr_expect_eq(hello_buffers, 0, "idle connections hold %lld hello buffers", hello_buffers);
    int io_workers_idle;
    int threads_idle = count_threads(limits_proxy.pid, &io_workers_idle);

    cr_expect_eq(fds_idle - fds_before, 2 * IDLE, "%d idle connections added %d fds besides pooled pipes", IDLE,
                 fds_idle - fds_before);
    cr_expect_eq(threads_idle, threads_before, "threads grew with connections: %d -> %d",
                 threads_before, threads_idle);
    cr_expect_eq(io_workers_idle, 0, "%d io-wq threads with idle connections", io_workers_idle);

    for (int i = 0; i < IDLE; i++)
        close(clients[i]);
    long long deadline = monotonic_ms() + 5000;
    int fds_after = stats_fds_outside_pool(&limits_proxy, stats_port, &pipes_in_use);
    while ((fds_after != fds_before || pipes_in_use != 0) && monotonic_ms() < deadline) {
        sleep_ms(50);
        fds_after = stats_fds_outside_pool(&limits_proxy, stats_port, &pipes_in_use);
    }
    cr_expect_eq(fds_after, fds_before, "fds not returned after close: %d before, %d after", fds_before,
                 fds_after);

    hello_free(&hello);
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&limits_proxy, 10000), 0);
}

Test(limits, max_connections_closes_new_ones_at_once, .init = integration_init, .fini = limits_fini)
{
    uint16_t proxy_port = TEST_PORT(44, 0), alpha_port = TEST_PORT(44, 1);
    cr_assert(backend_start(&limits_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", alpha_port);
    /* One worker: each worker enforces its share of max_connections. */
    char *config = config_text(proxy_port, "workers = 1\nmax_connections = 3\n", body);
    cr_assert(proxy_start(&limits_proxy, config, proxy_port), "snisplice did not start");
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);

    int open[3];
    for (int i = 0; i < 3; i++)
        open[i] = open_idle(proxy_port, &hello);
    unsigned accepted = backend_accepted(&limits_backend);

    int extra = net_connect(proxy_port);
    cr_assert_geq(extra, 0);
    net_send_all(extra, hello.data, hello.length);
    long long closed_after = net_ms_until_closed(extra, monotonic_ms(), 2000, NULL);
    cr_expect_geq(closed_after, 0, "connection over max_connections was not closed");
    cr_expect_lt(closed_after, 1000, "closed only after %lld ms", closed_after);
    close(extra);
    cr_expect_eq(backend_accepted(&limits_backend), accepted, "over-limit connection reached the upstream");
    cr_expect_eq(backend_finished(&limits_backend), 0, "an open connection was disturbed");

    /* Once one closes, a new connection is served again. */
    close(open[0]);
    backend_wait_finished(&limits_backend, 1, 3000);
    sleep_ms(100);
    open[0] = open_idle(proxy_port, &hello);
    for (int i = 0; i < 3; i++)
        close(open[i]);

    hello_free(&hello);
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&limits_proxy, 10000), 0);
}

/* Past max_connections new clients are closed at once, and that was said
 * nowhere: no access-log line (they are not accepted), nothing on stderr,
 * so without `stats` an operator saw clients cut off and no reason (nginx
 * says "worker_connections are not enough"). It is warned about, at most
 * once a second per worker, however many are closed. */
Test(limits, max_connections_reached_is_warned_about, .init = integration_init, .fini = limits_fini)
{
    enum { EXTRA = 20 };
    uint16_t proxy_port = TEST_PORT(294, 0), alpha_port = TEST_PORT(294, 1);
    cr_assert(backend_start(&limits_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", alpha_port);
    char *config = config_text(proxy_port, "workers = 1\nmax_connections = 2\n", body);
    cr_assert(proxy_start(&limits_proxy, config, proxy_port), "snisplice did not start");
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    int open[2] = { open_idle(proxy_port, &hello), open_idle(proxy_port, &hello) };

    for (int i = 0; i < EXTRA; i++) {
        int extra = net_connect(proxy_port);
        cr_assert_geq(extra, 0);
        net_send_all(extra, hello.data, hello.length);
        cr_expect_geq(net_ms_until_closed(extra, monotonic_ms(), 2000, NULL), 0, "not closed");
        close(extra);
    }
    const char *warning = "max_connections reached";
    cr_expect(proxy_stderr_wait_for(&limits_proxy, warning, 2000), "nothing said about the refused clients");
    char *log = proxy_stderr(&limits_proxy);
    cr_expect_leq(text_count(log, warning), 2, "one warning a second, not one per client:\n%s", log);
    free(log);

    for (int i = 0; i < 2; i++)
        close(open[i]);
    hello_free(&hello);
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&limits_proxy, 10000), 0);
}

/* Start the proxy with RLIMIT_NOFILE = limit, through a wrapper that
 * lowers it and execs snisplice (same pid). Lowering it on the running
 * process would not do: io_uring reads RLIMIT_NOFILE when a multishot
 * accept is armed and keeps that value. */
static bool start_with_fd_limit(const char *config, uint16_t proxy_port, int limit)
{
    char wrapper[] = "/tmp/snisplice-ulimit-XXXXXX";
    int wrapper_fd = mkstemp(wrapper);
    cr_assert_geq(wrapper_fd, 0);
    char *script = text_format("#!/bin/sh\nulimit -n %d || exit 97\nexec '%s' \"$@\"\n", limit, proxy_binary());
    cr_assert_eq(write(wrapper_fd, script, strlen(script)), (ssize_t)strlen(script));
    fchmod(wrapper_fd, 0700);
    close(wrapper_fd);
    char *real_binary = strdup(proxy_binary());
    setenv("SNISPLICE_BIN", wrapper, 1);
    bool started = proxy_start(&limits_proxy, config, proxy_port);
    setenv("SNISPLICE_BIN", real_binary, 1);
    unlink(wrapper);
    free(script);
    free(real_binary);
    return started;
}

/* Backend alpha on alpha_port and snisplice (one worker, stats on
 * stats_port) routing to it with RLIMIT_NOFILE = limit. Returns the
 * config text, for the caller to free. */
static char *start_fd_limited(uint16_t proxy_port, uint16_t alpha_port, uint16_t stats_port, int limit)
{
    cr_assert(backend_start(&limits_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", alpha_port);
    char *globals = text_format("workers = 1\npreread_timeout = 30s\nstats = 127.0.0.1:%u\n", stats_port);
    char *config = config_text(proxy_port, globals, body);
    free(globals);
    free(body);
    cr_assert(start_with_fd_limit(config, proxy_port, limit), "snisplice did not start under ulimit -n %d", limit);
    return config;
}

/* Out of fds, neither the workers nor the stats endpoint's thread may spin
 * on the connections they cannot accept (scrapers included: the stats
 * thread once polled its readable listener in a loop, 92 % of a core). */
Test(limits, out_of_fds_pauses_accepting_and_recovers, .init = integration_init, .fini = limits_fini)
{
    uint16_t proxy_port = TEST_PORT(45, 0), alpha_port = TEST_PORT(45, 1), stats_port = TEST_PORT(45, 2);
    char *config = start_fd_limited(proxy_port, alpha_port, stats_port, 40);
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    close(open_idle(proxy_port, &hello));

    /* Silent clients: each costs the proxy one fd; later ones hit EMFILE. */
    enum { SILENT = 40 };
    static int silent[SILENT];
    for (int i = 0; i < SILENT; i++)
        silent[i] = net_connect(proxy_port);
    /* Silent clients are accepted after the listener's 1 s TCP_DEFER_ACCEPT. */
    cr_expect(proxy_stderr_wait_for(&limits_proxy, "retrying every", 3000),
              "no warning about running out of fds");
    enum { SCRAPERS = 3 };
    int scrapers[SCRAPERS];
    for (int i = 0; i < SCRAPERS; i++)
        scrapers[i] = net_connect(stats_port);
    sleep_ms(300);
    long long cpu_start = process_cpu_ticks(limits_proxy.pid);
    sleep_ms(1000);
    long long cpu_used = process_cpu_ticks(limits_proxy.pid) - cpu_start;
    long ticks_per_second = sysconf(_SC_CLK_TCK);
    cr_expect_lt(cpu_used, ticks_per_second / 4, "busy while out of fds: %lld ticks in 1 s", cpu_used);

    for (int i = 0; i < SILENT; i++)
        close(silent[i]);
    for (int i = 0; i < SCRAPERS; i++)
        if (scrapers[i] >= 0)
            close(scrapers[i]);
    /* Served again once fds are free (the pause is 100 ms). */
    sleep_ms(500);
    close(open_idle(proxy_port, &hello));
    char *page = stats_fetch(stats_port, "/metrics");
    cr_expect(page && strstr(page, "200 OK") && strstr(page, "snisplice_"), "no scrape after recovery");
    free(page);

    hello_free(&hello);
    free(config);
    cr_expect_eq(proxy_stop(&limits_proxy, 10000), 0);
}

/* Under a limit of 1 024 fds one worker stashes 4 upstream sockets made
 * ahead by its ring (io/socket_stash.c). Running out of fds with idle
 * connections uses the stash up, fails its refill (an IORING_OP_SOCKET
 * answering EMFILE, after which it pauses) and then socket(2), and the
 * proxy stops accepting as before. Once the clients are gone and the
 * pause is over, the proxy serves again and its stash fills back to its
 * size: its descriptors return to exactly what they were, none leaked and
 * none of the stash lost to the failed refill. */
Test(limits, out_of_fds_with_a_socket_stash_returns_to_the_same_descriptors, .init = integration_init,
     .fini = limits_fini)
{
    enum { CLIENTS = 600 };
    uint16_t proxy_port = TEST_PORT(393, 0), alpha_port = TEST_PORT(393, 1), stats_port = TEST_PORT(393, 2);
    char *config = start_fd_limited(proxy_port, alpha_port, stats_port, 1024);
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    for (int i = 0; i < 5; i++)
        close(open_idle(proxy_port, &hello));
    sleep_ms(300);
    long long pipes_in_use;
    int fds_before = stats_fds_outside_pool(&limits_proxy, stats_port, &pipes_in_use);

    static int clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = net_connect(proxy_port);
        if (clients[i] >= 0)
            net_send_all(clients[i], hello.data, hello.length);
    }
    cr_expect(proxy_stderr_wait_for(&limits_proxy, "retrying every", 5000), "the proxy never ran out of fds");
    for (int i = 0; i < CLIENTS; i++)
        if (clients[i] >= 0)
            close(clients[i]);
    /* The stash refills again a second after its failure. */
    sleep_ms(1500);
    close(open_idle(proxy_port, &hello));
    long long deadline = monotonic_ms() + 5000;
    int fds_after = stats_fds_outside_pool(&limits_proxy, stats_port, &pipes_in_use);
    while ((fds_after != fds_before || pipes_in_use != 0) && monotonic_ms() < deadline) {
        sleep_ms(50);
        fds_after = stats_fds_outside_pool(&limits_proxy, stats_port, &pipes_in_use);
    }
    cr_expect_eq(fds_after, fds_before, "descriptors: %d before running out, %d after", fds_before, fds_after);

    hello_free(&hello);
    free(config);
    cr_expect_eq(proxy_stop(&limits_proxy, 10000), 0);
}

/* Echo everything back; pass the client's FIN on once it is all echoed. */
static void echo_handler(struct backend *backend, int fd, void *context)
{
    (void)backend;
    (void)context;
    static _Thread_local char buffer[65536];
    ssize_t got;
    while ((got = recv(fd, buffer, sizeof buffer, 0)) > 0)
        if (!net_send_all(fd, buffer, (size_t)got))
            return;
    shutdown(fd, SHUT_WR);
}

struct echo_client {
    int fd;
    uint64_t seed;
    uint64_t length;
    pthread_t sender;
    pthread_t receiver;
    uint64_t sent;
    uint64_t received;
    bool matched;
    bool eof_after;
};

static void *echo_send(void *argument)
{
    struct echo_client *client = argument;
    uint64_t checksum;
    client->sent = byte_stream_send(client->fd, client->seed, client->length, 0, 0, &checksum);
    shutdown(client->fd, SHUT_WR);
    return NULL;
}

/* Read the whole echo, check it, then look for the end of stream. */
static void *echo_receive(void *argument)
{
    struct echo_client *client = argument;
    struct byte_stream_verifier verifier;
    byte_stream_verifier_init(&verifier, client->seed);
    client->received = byte_stream_receive(client->fd, &verifier, client->length);
    client->matched = verifier.first_mismatch == UINT64_MAX;
    char extra;
    struct pollfd readable = { .fd = client->fd, .events = POLLIN };
    client->eof_after = poll(&readable, 1, 5000) == 1 && recv(client->fd, &extra, 1, 0) == 0;
    return NULL;
}

/* Connect, send the hello and read it back: relaying, with nothing in flight. */
static void echo_connect(struct echo_client *client, uint16_t port, const struct hello_bytes *hello)
{
    client->fd = net_connect(port);
    cr_assert_geq(client->fd, 0);
    /* A transfer that stalls for 30 s ends with its counts in the report,
     * not with the whole test's alarm. */
    struct timeval stall = { .tv_sec = 30 };
    setsockopt(client->fd, SOL_SOCKET, SO_RCVTIMEO, &stall, sizeof stall);
    cr_assert(net_send_all(client->fd, hello->data, hello->length));
    uint8_t *echoed = malloc(hello->length);
    cr_assert_eq(net_receive_exact(client->fd, echoed, hello->length, 5000), hello->length,
                 "the hello did not come back");
    cr_assert_eq(memcmp(echoed, hello->data, hello->length), 0);
    free(echoed);
}

enum { OUT_OF_FDS_CLIENTS = 4, OUT_OF_FDS_SILENT = 60 };

/* Four echo transfers of 64 MiB through a proxy that has no fd left for a
 * new pipe: they must go on byte-exact (the pipe-less copy) and end with
 * a clean EOF. `upstream` is the [upstream echo] server line's address. */
static void expect_relaying_without_new_pipes(uint16_t proxy_port, const char *upstream)
{
    char *body = text_format("[routes]\ndefault = echo\n[upstream echo]\nserver = %s\n", upstream);
    char *config = config_text(proxy_port, "workers = 1\npreread_timeout = 60s\n", body);
    cr_assert(start_with_fd_limit(config, proxy_port, 48), "snisplice did not start under ulimit -n 48");
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);

    static struct echo_client clients[OUT_OF_FDS_CLIENTS];
    for (int i = 0; i < OUT_OF_FDS_CLIENTS; i++) {
        clients[i] = (struct echo_client){ .seed = 0x6563686f00ULL + (uint64_t)i, .length = 64ULL << 20 };
        echo_connect(&clients[i], proxy_port, &hello);
    }
    /* Silent clients take every fd the proxy has left: no new pipe can be
     * made, so the transfers below must do without more pipes than the
     * pool happens to hold. */
    static int silent[OUT_OF_FDS_SILENT];
    for (int i = 0; i < OUT_OF_FDS_SILENT; i++)
        silent[i] = net_connect(proxy_port);
    cr_expect(proxy_stderr_wait_for(&limits_proxy, "retrying every", 3000), "the proxy never ran out of fds");

    /* Every client reads as it sends, as real ones do. Read one after the
     * other, the clients not yet read back up their whole path, and a
     * loopback socket whose reader stops for seconds drops segments past
     * its receive buffer; the sender then waits out TCP's doubling
     * retransmission timeout (seen: 13 s after six drops, with the proxy's
     * socket already empty), a stall of the kernel's, not the relay's. */
    for (int i = 0; i < OUT_OF_FDS_CLIENTS; i++) {
        cr_assert_eq(pthread_create(&clients[i].sender, NULL, echo_send, &clients[i]), 0);
        cr_assert_eq(pthread_create(&clients[i].receiver, NULL, echo_receive, &clients[i]), 0);
    }
    for (int i = 0; i < OUT_OF_FDS_CLIENTS; i++)
        pthread_join(clients[i].receiver, NULL);
    bool all_came_back = true;
    for (int i = 0; i < OUT_OF_FDS_CLIENTS; i++)
        all_came_back = all_came_back && clients[i].received == clients[i].length;
    if (!all_came_back) {
        char *log = proxy_stderr(&limits_proxy);
        cr_log_error("a transfer stalled; the proxy said:\n%s", log);
        free(log);
        /* Its sender may be blocked in send(): this ends it. */
        for (int i = 0; i < OUT_OF_FDS_CLIENTS; i++)
            shutdown(clients[i].fd, SHUT_RDWR);
    }
    for (int i = 0; i < OUT_OF_FDS_CLIENTS; i++) {
        pthread_join(clients[i].sender, NULL);
        cr_expect_eq(clients[i].sent, clients[i].length, "client %d sent %llu bytes", i,
                     (unsigned long long)clients[i].sent);
        cr_expect_eq(clients[i].received, clients[i].length, "client %d: %llu of %llu bytes came back", i,
                     (unsigned long long)clients[i].received, (unsigned long long)clients[i].length);
        cr_expect(clients[i].matched, "client %d: the echoed bytes differ", i);
        cr_expect(clients[i].eof_after, "client %d: no clean EOF after the stream", i);
        close(clients[i].fd);
    }
    for (int i = 0; i < OUT_OF_FDS_SILENT; i++)
        if (silent[i] >= 0)
            close(silent[i]);
    hello_free(&hello);
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&limits_proxy, 10000), 0);
}

Test(limits, out_of_fds_open_connections_keep_relaying, .init = integration_init, .fini = limits_fini)
{
    integration_set_limit(120);
    uint16_t proxy_port = TEST_PORT(84, 0), echo_port = TEST_PORT(84, 1);
    cr_assert(backend_start(&limits_backend, "echo", echo_port, echo_handler, NULL));
    char *upstream = text_format("127.0.0.1:%u", echo_port);
    expect_relaying_without_new_pipes(proxy_port, upstream);
    free(upstream);
}

/* An echo server on a unix socket: one thread per connection, for the
 * OUT_OF_FDS_CLIENTS connections the test makes. */
struct unix_echo {
    char directory[32];
    char path[64];
    int listen_fd;
    pthread_t accept_thread;
    pthread_t threads[OUT_OF_FDS_CLIENTS];
    int accepted;
};

static void *unix_echo_connection(void *argument)
{
    int fd = (int)(intptr_t)argument;
    echo_handler(NULL, fd, NULL);
    close(fd);
    return NULL;
}

static void *unix_echo_accept(void *argument)
{
    struct unix_echo *echo = argument;
    while (echo->accepted < OUT_OF_FDS_CLIENTS) {
        int fd = accept(echo->listen_fd, NULL, NULL);
        if (fd < 0)
            break;
        if (pthread_create(&echo->threads[echo->accepted], NULL, unix_echo_connection, (void *)(intptr_t)fd) != 0) {
            close(fd);
            break;
        }
        echo->accepted++;
    }
    return NULL;
}

/* The pipe-less copy takes the bytes it sent out of the source socket.
 * MSG_TRUNC without a buffer does that on TCP only: on a unix socket it
 * failed (EFAULT), nothing was taken, and the client got the same first
 * bytes again and again. */
Test(limits, out_of_fds_unix_upstream_keeps_relaying, .init = integration_init, .fini = limits_fini)
{
    integration_set_limit(120);
    static struct unix_echo echo;
    snprintf(echo.directory, sizeof echo.directory, "/tmp/snisplice-echo-XXXXXX");
    cr_assert_not_null(mkdtemp(echo.directory));
    snprintf(echo.path, sizeof echo.path, "%s/echo.sock", echo.directory);
    echo.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_geq(echo.listen_fd, 0);
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    snprintf(address.sun_path, sizeof address.sun_path, "%s", echo.path);
    cr_assert_eq(bind(echo.listen_fd, (struct sockaddr *)&address, sizeof address), 0);
    cr_assert_eq(listen(echo.listen_fd, 16), 0);
    cr_assert_eq(pthread_create(&echo.accept_thread, NULL, unix_echo_accept, &echo), 0);

    char *upstream = text_format("unix:%s", echo.path);
    expect_relaying_without_new_pipes(TEST_PORT(97, 0), upstream);
    free(upstream);

    pthread_join(echo.accept_thread, NULL);
    for (int i = 0; i < echo.accepted; i++)
        pthread_join(echo.threads[i], NULL);
    close(echo.listen_fd);
    unlink(echo.path);
    rmdir(echo.directory);
}

/* Idle pooled pipes are a cache: out of fds, their fds go to the sockets
 * of new connections. A burst of transfers leaves pipes in the pool;
 * then as many idle connections as the fd limit holds without those
 * pipes must all be relayed, none accepted only to be closed for want
 * of an upstream socket (they were, while the pool kept its pipes). */
Test(limits, out_of_fds_idle_pooled_pipes_give_way_to_connections, .init = integration_init, .fini = limits_fini)
{
    integration_set_limit(120);
    enum { LIMIT = 100, BURST = 10 };
    uint16_t proxy_port = TEST_PORT(152, 0), echo_port = TEST_PORT(152, 1), stats_port = TEST_PORT(152, 2);
    cr_assert(backend_start(&limits_backend, "echo", echo_port, echo_handler, NULL));
    char *body = text_format("[routes]\ndefault = echo\n[upstream echo]\nserver = 127.0.0.1:%u\n", echo_port);
    char *globals = text_format("workers = 1\nstats = 127.0.0.1:%u\n", stats_port);
    char *config = config_text(proxy_port, globals, body);
    cr_assert(start_with_fd_limit(config, proxy_port, LIMIT), "snisplice did not start under ulimit -n %d", LIMIT);
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);

    /* Both directions of BURST transfers at once: each splices through a
     * pipe of its own, and gives it back to the pool at the end. */
    static struct echo_client burst[BURST];
    for (int i = 0; i < BURST; i++) {
        burst[i] = (struct echo_client){ .seed = 0x706f6f6c00ULL + (uint64_t)i, .length = 4ULL << 20 };
        echo_connect(&burst[i], proxy_port, &hello);
    }
    for (int i = 0; i < BURST; i++)
        cr_assert_eq(pthread_create(&burst[i].sender, NULL, echo_send, &burst[i]), 0);
    for (int i = 0; i < BURST; i++) {
        struct byte_stream_verifier verifier;
        byte_stream_verifier_init(&verifier, burst[i].seed);
        cr_expect_eq(byte_stream_receive(burst[i].fd, &verifier, burst[i].length), burst[i].length);
        pthread_join(burst[i].sender, NULL);
        close(burst[i].fd);
    }
    long long idle_pipes = 0, pipes_in_use = 0;
    int fds_without_pipes = 0;
    long long deadline = monotonic_ms() + 5000;
    do {
        sleep_ms(50);
        fds_without_pipes = stats_fds_outside_pool(&limits_proxy, stats_port, &pipes_in_use);
        idle_pipes = stats_value(stats_port, "snisplice_pipe_pool_pipes{state=\"idle\"}");
    } while ((pipes_in_use != 0 || fds_without_pipes + 2 * idle_pipes != proxy_fd_count(&limits_proxy)) &&
             monotonic_ms() < deadline);
    cr_assert_eq(pipes_in_use, 0, "the burst's connections still hold pipes");

    /* Room for this many without the pool's pipes (two fds spare), and
     * not with them: the test means something only then. */
    int room = (LIMIT - fds_without_pipes) / 2 - 1;
    cr_assert_gt(2 * room, LIMIT - fds_without_pipes - 2 * (int)idle_pipes,
                 "the burst left only %lld idle pipes: %d connections fit beside them", idle_pipes, room);
    cr_log_info("%d fds besides %lld idle pipes; opening %d idle connections", fds_without_pipes, idle_pipes, room);
    static struct echo_client idle[LIMIT / 2];
    for (int i = 0; i < room; i++)
        echo_connect(&idle[i], proxy_port, &hello);
    for (int i = 0; i < room; i++)
        close(idle[i].fd);

    hello_free(&hello);
    free(config);
    free(globals);
    free(body);
    cr_expect_eq(proxy_stop(&limits_proxy, 10000), 0);
}

/* Out of fds with routed clients queued: each pause ends with an accept
 * that takes the last fd, whose upstream socket then fails. That is one
 * shortage, and one warning: an accept alone used to count as recovery,
 * so the warning came again every 100 ms for as long as clients queued. */
Test(limits, out_of_fds_is_warned_about_once, .init = integration_init, .fini = limits_fini)
{
    enum { LIMIT = 40, CLIENTS = 60 };
    uint16_t proxy_port = TEST_PORT(159, 0), alpha_port = TEST_PORT(159, 1);
    cr_assert(backend_start(&limits_backend, "alpha", alpha_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = alpha\n[upstream alpha]\nserver = 127.0.0.1:%u\n", alpha_port);
    char *config = config_text(proxy_port, "workers = 1\n", body);
    cr_assert(start_with_fd_limit(config, proxy_port, LIMIT), "snisplice did not start under ulimit -n %d", LIMIT);
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    static int clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = net_connect(proxy_port);
        cr_assert_geq(clients[i], 0);
        cr_assert(net_send_all(clients[i], hello.data, hello.length));
    }
    cr_expect(proxy_stderr_wait_for(&limits_proxy, "retrying every", 3000), "the proxy never ran out of fds");
    sleep_ms(1000); /* ten pauses */
    char *log = proxy_stderr(&limits_proxy);
    cr_expect_eq(text_count(log, "retrying every"), 1, "stderr:\n%s", log);
    free(log);
    for (int i = 0; i < CLIENTS; i++)
        close(clients[i]);
    /* Recovered: a connection gets its sockets again. */
    sleep_ms(300);
    close(open_idle(proxy_port, &hello));
    hello_free(&hello);
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&limits_proxy, 10000), 0);
}
