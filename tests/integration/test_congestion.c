/*
 * test_congestion.c - the TCP congestion control algorithm of the proxy's
 * sockets (`congestion_control`, core/congestion.h). Towards an upstream:
 * reno towards loopback servers by default (no pacing timers on a leg that
 * has nothing to pace), the system's default with `system`, any algorithm
 * by its name. Towards clients, by the listener's key: reno behind a
 * listener bound to loopback by default, the system's behind a wildcard
 * one, a name as given; a reload that changes it changes the sockets of
 * the connections accepted after it. Read on the proxy's own socket (a
 * duplicate taken with pidfd_getfd) while a connection through it is open.
 * A name the kernel does not have is a config error
 * (tests/unit/test_config.c). Ports: block 93.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/backend.h"
#include "../support/child_process.h"
#include "../support/hello.h"
#include "../support/integration.h"
#include "../support/net.h"
#include "../support/proxy.h"

static struct proxy congestion_proxy;
static struct backend congestion_backend;

static void congestion_fini(void)
{
    proxy_release(&congestion_proxy);
    integration_cleanup();
}

TestSuite(congestion, .init = integration_init, .fini = congestion_fini);

/* The words of a /proc/sys file, space-separated, in `out`. */
static void read_sysctl(const char *path, char *out, size_t size)
{
    char *text = file_read_all(path, NULL);
    cr_assert_not_null(text, "%s", path);
    snprintf(out, size, "%s", text);
    free(text);
    out[strcspn(out, "\n")] = '\0';
}

/* A client connected to host:proxy_port that sent a hello and got the
 * backend's greeting: the proxy holds both of its sockets for it. */
static int connect_and_greet(const char *host, uint16_t proxy_port)
{
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(client, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(proxy_port) };
    inet_pton(AF_INET, host, &to.sin_addr);
    cr_assert_eq(connect(client, (struct sockaddr *)&to, sizeof to), 0);
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert(net_send_all(client, hello.data, hello.length));
    hello_free(&hello);
    char greeting[16] = {0};
    /* The backend greets with its name: the upstream connection is up. */
    cr_assert_eq(net_receive_exact(client, greeting, 8, 5000), 8);
    cr_assert_str_eq(greeting, "backend\n");
    return client;
}

/* The algorithm of the proxy's socket whose peer has port peer_port. */
static void algorithm_of_proxy_socket(uint16_t peer_port, char *algorithm, size_t size)
{
    int fd = proxy_socket_with_peer(&congestion_proxy, peer_port);
    cr_assert_geq(fd, 0, "no socket of the proxy with peer port %u (or pidfd_getfd refused)", peer_port);
    socklen_t length = (socklen_t)size;
    cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, algorithm, &length), 0);
    algorithm[size - 1] = '\0';
    close(fd);
}

/* The algorithm of the proxy's socket to 127.0.0.1:backend_port while a
 * client's connection runs through it; `upstream_lines` is that upstream's
 * section body (server line included). */
static void algorithm_towards(uint16_t proxy_port, uint16_t backend_port, const char *upstream_lines,
                              char *algorithm, size_t size)
{
    cr_assert(backend_start(&congestion_backend, "backend", backend_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = app\n\n[upstream app]\n%s", upstream_lines);
    char *config = config_text(proxy_port, NULL, body);
    free(body);
    cr_assert(proxy_start(&congestion_proxy, config, proxy_port));
    free(config);

    int client = connect_and_greet("127.0.0.1", proxy_port);
    algorithm_of_proxy_socket(backend_port, algorithm, size);
    close(client);
    cr_expect_eq(proxy_stop(&congestion_proxy, 10000), 0);
    backend_stop(&congestion_backend);
}

Test(congestion, loopback_server_gets_reno_by_default)
{
    uint16_t backend_port = TEST_PORT(93, 1);
    char line[64], algorithm[16];
    snprintf(line, sizeof line, "server = 127.0.0.1:%u\n", backend_port);
    algorithm_towards(TEST_PORT(93, 0), backend_port, line, algorithm, sizeof algorithm);
    char system[64];
    read_sysctl("/proc/sys/net/ipv4/tcp_congestion_control", system, sizeof system);
    cr_log_info("system default %s, the proxy's upstream socket %s", system, algorithm);
    cr_expect_str_eq(algorithm, "reno");
}

Test(congestion, system_keeps_the_kernel_default)
{
    uint16_t backend_port = TEST_PORT(93, 3);
    char lines[128], algorithm[16], system[64];
    snprintf(lines, sizeof lines, "server = 127.0.0.1:%u\ncongestion_control = system\n", backend_port);
    algorithm_towards(TEST_PORT(93, 2), backend_port, lines, algorithm, sizeof algorithm);
    read_sysctl("/proc/sys/net/ipv4/tcp_congestion_control", system, sizeof system);
    cr_expect_str_eq(algorithm, system);
}

/* An algorithm that is neither reno (auto's choice) nor the system's
 * default when the kernel has one, so that the name is what decides. */
static void pick_named_algorithm(char *out, size_t size)
{
    char available[256], system[64];
    read_sysctl("/proc/sys/net/ipv4/tcp_available_congestion_control", available, sizeof available);
    read_sysctl("/proc/sys/net/ipv4/tcp_congestion_control", system, sizeof system);
    snprintf(out, size, "reno");
    char *save = NULL;
    for (char *name = strtok_r(available, " \t", &save); name; name = strtok_r(NULL, " \t", &save)) {
        if (strcmp(name, "reno") == 0)
            continue;
        bool better = strcmp(out, "reno") == 0 || strcmp(out, system) == 0;
        if (better)
            snprintf(out, size, "%s", name);
    }
}

Test(congestion, named_algorithm_is_set)
{
    uint16_t backend_port = TEST_PORT(93, 5);
    char wanted[16], lines[128], algorithm[16];
    pick_named_algorithm(wanted, sizeof wanted);
    cr_log_info("congestion_control = %s", wanted);
    snprintf(lines, sizeof lines, "server = 127.0.0.1:%u\ncongestion_control = %s\n", backend_port, wanted);
    algorithm_towards(TEST_PORT(93, 4), backend_port, lines, algorithm, sizeof algorithm);
    cr_expect_str_eq(algorithm, wanted);
}

/* ---- the client leg: the listener's congestion_control ---- */

/* The algorithm of the proxy's socket to a client that connects to
 * host:proxy_port, read while the client keeps its end open. */
static void algorithm_towards_client(const char *host, uint16_t proxy_port, char *algorithm, size_t size)
{
    int client = connect_and_greet(host, proxy_port);
    struct sockaddr_in local;
    socklen_t local_length = sizeof local;
    cr_assert_eq(getsockname(client, (struct sockaddr *)&local, &local_length), 0);
    algorithm_of_proxy_socket(ntohs(local.sin_port), algorithm, size);
    close(client);
}

/* snisplice listening on listen_address:proxy_port with `listen_lines`
 * in its [listen] section, routing everything to a backend on
 * backend_port. */
static char *listener_config(const char *listen_address, uint16_t proxy_port, const char *listen_lines,
                             uint16_t backend_port)
{
    return text_format("[global]\nworkers = 2\n[listen]\naddress = %s:%u\n%s"
                       "[routes]\ndefault = 127.0.0.1:%u\n",
                       listen_address, proxy_port, listen_lines, backend_port);
}

static void start_behind_listener(const char *listen_address, uint16_t proxy_port, const char *listen_lines,
                                  uint16_t backend_port)
{
    cr_assert(backend_start(&congestion_backend, "backend", backend_port, NULL, NULL));
    char *config = listener_config(listen_address, proxy_port, listen_lines, backend_port);
    cr_assert(proxy_start(&congestion_proxy, config, proxy_port), "snisplice did not start; stderr:\n%s",
              proxy_stderr(&congestion_proxy));
    free(config);
}

/* Stopped and released: a test may start another after it. */
static void stop_behind_listener(void)
{
    cr_expect_eq(proxy_stop(&congestion_proxy, 10000), 0);
    proxy_release(&congestion_proxy);
    backend_stop(&congestion_backend);
}

/* Every client of a listener bound to loopback is on this host, where
 * pacing only costs (core/congestion.h): the download's sending socket. */
Test(congestion, client_of_a_loopback_listener_gets_reno_by_default)
{
    char algorithm[16];
    start_behind_listener("127.0.0.1", TEST_PORT(93, 6), "", TEST_PORT(93, 7));
    algorithm_towards_client("127.0.0.1", TEST_PORT(93, 6), algorithm, sizeof algorithm);
    cr_expect_str_eq(algorithm, "reno");
    stop_behind_listener();
}

/* A wildcard listener serves the internet: the administrator's choice
 * (BBR, say) stays, even for a client that reaches it over loopback. */
Test(congestion, client_of_a_wildcard_listener_keeps_the_system_default)
{
    char algorithm[16], system[64];
    read_sysctl("/proc/sys/net/ipv4/tcp_congestion_control", system, sizeof system);
    start_behind_listener("0.0.0.0", TEST_PORT(93, 8), "", TEST_PORT(93, 9));
    algorithm_towards_client("127.0.0.1", TEST_PORT(93, 8), algorithm, sizeof algorithm);
    cr_expect_str_eq(algorithm, system);
    stop_behind_listener();
}

Test(congestion, listener_named_algorithm_and_system_are_set)
{
    char wanted[16], lines[64], algorithm[16], system[64];
    pick_named_algorithm(wanted, sizeof wanted);
    read_sysctl("/proc/sys/net/ipv4/tcp_congestion_control", system, sizeof system);
    cr_log_info("congestion_control = %s on the wildcard listener", wanted);
    snprintf(lines, sizeof lines, "congestion_control = %s\n", wanted);
    start_behind_listener("0.0.0.0", TEST_PORT(93, 10), lines, TEST_PORT(93, 11));
    algorithm_towards_client("127.0.0.1", TEST_PORT(93, 10), algorithm, sizeof algorithm);
    cr_expect_str_eq(algorithm, wanted);
    stop_behind_listener();

    start_behind_listener("127.0.0.1", TEST_PORT(93, 12), "congestion_control = system\n", TEST_PORT(93, 13));
    algorithm_towards_client("127.0.0.1", TEST_PORT(93, 12), algorithm, sizeof algorithm);
    cr_expect_str_eq(algorithm, system, "`system` on a loopback listener");
    stop_behind_listener();
}

/* Send the new config and wait until the proxy says it applied it. */
static void reload_and_wait(const char *config)
{
    char *before = proxy_stderr(&congestion_proxy);
    int reloads = text_count(before, "reloaded ");
    free(before);
    proxy_reload(&congestion_proxy, config);
    cr_assert(proxy_stderr_wait_for_count(&congestion_proxy, "reloaded ", reloads + 1, 5000),
              "no 'reloaded' after the reload");
    sleep_ms(100); /* every worker adopts the snapshot at its next loop turn */
}

/* The listening sockets outlive a reload that keeps their address: what
 * they pass on to new clients must follow the new configuration, both
 * ways (to the system's default, and back to reno). */
Test(congestion, a_reload_changes_the_algorithm_of_later_clients)
{
    uint16_t proxy_port = TEST_PORT(93, 14), backend_port = TEST_PORT(93, 15);
    char algorithm[16], system[64];
    read_sysctl("/proc/sys/net/ipv4/tcp_congestion_control", system, sizeof system);
    if (strcmp(system, "reno") == 0)
        cr_skip_test("the system's default is reno: a change could not be seen");
    start_behind_listener("127.0.0.1", proxy_port, "", backend_port);
    algorithm_towards_client("127.0.0.1", proxy_port, algorithm, sizeof algorithm);
    cr_expect_str_eq(algorithm, "reno", "before the reload");

    char *to_system = listener_config("127.0.0.1", proxy_port, "congestion_control = system\n", backend_port);
    reload_and_wait(to_system);
    free(to_system);
    algorithm_towards_client("127.0.0.1", proxy_port, algorithm, sizeof algorithm);
    cr_expect_str_eq(algorithm, system, "after a reload to `system`");

    char *back = listener_config("127.0.0.1", proxy_port, "", backend_port);
    reload_and_wait(back);
    free(back);
    algorithm_towards_client("127.0.0.1", proxy_port, algorithm, sizeof algorithm);
    cr_expect_str_eq(algorithm, "reno", "after a reload back to auto");
    stop_behind_listener();
}
