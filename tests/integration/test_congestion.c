/*
 * test_congestion.c - the TCP congestion control algorithm of the proxy's
 * sockets to an upstream (`congestion_control`, core/upstream.h): reno
 * towards loopback servers by default (no pacing timers on a leg that has
 * nothing to pace), the system's default with `system`, any algorithm by
 * its name. Read on the proxy's own socket (a duplicate taken with
 * pidfd_getfd) while a connection through it is open. A name the kernel
 * does not have is a config error (tests/unit/test_config.c).
 * Ports: block 93.
 */
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

    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    int client = net_connect(proxy_port);
    cr_assert_geq(client, 0);
    cr_assert(net_send_all(client, hello.data, hello.length));
    hello_free(&hello);
    char greeting[16] = {0};
    /* The backend greets with its name: the upstream connection is up. */
    cr_assert_eq(net_receive_exact(client, greeting, 8, 5000), 8);
    cr_assert_str_eq(greeting, "backend\n");

    int upstream = proxy_socket_with_peer(&congestion_proxy, backend_port);
    cr_assert_geq(upstream, 0, "no socket of the proxy to port %u (or pidfd_getfd refused)", backend_port);
    socklen_t length = (socklen_t)size;
    cr_assert_eq(getsockopt(upstream, IPPROTO_TCP, TCP_CONGESTION, algorithm, &length), 0);
    algorithm[size - 1] = '\0';
    close(upstream);
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
