/*
 * test_source.c - `source` (nginx's proxy_bind) with real processes: a
 * backend that answers with the address its peer connects from sees the
 * configured address, a listener's own one over [global]'s, the client's
 * address (bound by the test, or named by a trusted PROXY header) with
 * `source = client`; a server of the other family connects as before; a
 * source that cannot be bound closes only that client's connection,
 * blames no server and leaks no descriptor; `user =` keeps CAP_NET_RAW
 * alone when a listener needs it, and a reload that needs it without it
 * is refused. Ports: blocks 150-151, 154.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy source_proxy;
static struct backend peer_backend;

static void source_fini(void)
{
    proxy_release(&source_proxy);
    integration_cleanup();
}

static void peer_text(const struct sockaddr_storage *peer, char *text, size_t size)
{
    const void *address = peer->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)peer)->sin_addr
                                                     : (const void *)&((const struct sockaddr_in6 *)peer)->sin6_addr;
    if (!inet_ntop(peer->ss_family, address, text, (socklen_t)size))
        snprintf(text, size, "?");
}

/* A backend that answers "<its peer's address>\n", then reads to the end. */
static void tell_peer(struct backend *backend, int fd, void *context)
{
    (void)backend, (void)context;
    struct sockaddr_storage peer;
    socklen_t length = sizeof peer;
    char text[INET6_ADDRSTRLEN + 2] = "?";
    if (getpeername(fd, (struct sockaddr *)&peer, &length) == 0)
        peer_text(&peer, text, sizeof text - 1);
    strcat(text, "\n");
    net_send_all(fd, text, strlen(text));
    static __thread uint8_t rest[4096];
    net_receive_until_closed(fd, rest, sizeof rest, 5000);
}

/* The proxy on `port`, [routes] sending every name to the peer backend
 * on port + 1; `listen_lines` continue [listen], `body` follows the
 * upstream. (Tests run two at a time: each has ports of its own.) */
static void start_source_proxy(uint16_t port, const char *globals, const char *listen_lines, const char *body)
{
    cr_assert(backend_start(&peer_backend, "peer", port + 1, tell_peer, NULL));
    char *text = text_format("%s\n[routes]\ndefault = peer\n[upstream peer]\nserver = 127.0.0.1:%u\n%s",
                             listen_lines ? listen_lines : "", port + 1, body ? body : "");
    char *config = config_text(port, globals, text);
    cr_assert(proxy_start(&source_proxy, config, port), "snisplice did not start");
    free(config);
    free(text);
}

/* What the backend saw as its peer, for a connection through port from
 * `client` (NULL: 127.0.0.1), with `prefix` (a PROXY header) before the
 * hello. */
static char *peer_seen(uint16_t port, const char *client, const char *prefix)
{
    struct hello_bytes hello = hello_build("www.example.com");
    cr_assert_not_null(hello.data);
    size_t prefix_length = prefix ? strlen(prefix) : 0;
    uint8_t *payload = malloc(prefix_length + hello.length);
    cr_assert_not_null(payload);
    if (prefix_length)
        memcpy(payload, prefix, prefix_length);
    memcpy(payload + prefix_length, hello.data, hello.length);
    char *reply = exchange_from(client, port, payload, prefix_length + hello.length, 5000, NULL);
    free(payload);
    hello_free(&hello);
    return reply;
}

static void expect_peer(uint16_t port, const char *client, const char *prefix, const char *want, const char *what)
{
    char *reply = peer_seen(port, client, prefix);
    char *expected = text_format("%s\n", want);
    cr_expect(reply && strcmp(reply, expected) == 0, "%s: the backend saw '%s', want %s", what,
              reply ? reply : "(no connection)", want);
    free(expected);
    free(reply);
}

Test(source, fixed_address, .init = integration_init, .fini = source_fini)
{
    start_source_proxy(TEST_PORT(150, 0), "source = 127.0.0.2\n", NULL, NULL);
    expect_peer(TEST_PORT(150, 0), NULL, NULL, "127.0.0.2", "source = 127.0.0.2");
    expect_peer(TEST_PORT(150, 0), "127.0.0.5", NULL, "127.0.0.2", "another client, the same source");
    cr_expect_eq(proxy_stop(&source_proxy, 10000), 0);
}

Test(source, listener_own_over_global, .init = integration_init, .fini = source_fini)
{
    uint16_t port = TEST_PORT(150, 2), own_port = TEST_PORT(150, 4), none_port = TEST_PORT(150, 5);
    char *body = text_format("[listen own]\naddress = 127.0.0.1:%u\nupstream = peer\nsource = 127.0.0.3\n"
                             "[listen none]\naddress = 127.0.0.1:%u\nupstream = peer\nsource = none\n",
                             own_port, none_port);
    start_source_proxy(port, "source = 127.0.0.2\n", NULL, body);
    expect_peer(port, NULL, NULL, "127.0.0.2", "[global]'s source");
    expect_peer(own_port, NULL, NULL, "127.0.0.3", "the listener's own source");
    expect_peer(none_port, "127.0.0.4", NULL, "127.0.0.1", "source = none: the system's choice");
    free(body);
    cr_expect_eq(proxy_stop(&source_proxy, 10000), 0);
}

Test(source, client_address, .init = integration_init, .fini = source_fini)
{
    if (geteuid() != 0)
        cr_skip_test("source = client needs CAP_NET_RAW");
    start_source_proxy(TEST_PORT(150, 6), NULL, "source = client\n", NULL);
    expect_peer(TEST_PORT(150, 6), "127.0.0.9", NULL, "127.0.0.9", "source = client");
    expect_peer(TEST_PORT(150, 6), "127.0.0.10", NULL, "127.0.0.10", "source = client, another client");
    cr_expect_eq(proxy_stop(&source_proxy, 10000), 0);
}

Test(source, client_address_from_trusted_proxy_header, .init = integration_init, .fini = source_fini)
{
    if (geteuid() != 0)
        cr_skip_test("source = client needs CAP_NET_RAW");
    start_source_proxy(TEST_PORT(150, 8), NULL, "source = client\nproxy_protocol_from = 127.0.0.1\n", NULL);
    expect_peer(TEST_PORT(150, 8), "127.0.0.1", "PROXY TCP4 127.0.0.33 192.0.2.1 40000 443\r\n", "127.0.0.33",
                "the client a trusted PROXY header names");
    /* LOCAL (a balancer's health check) keeps the balancer's own address. */
    static const char local_v2[16] = "\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";
    char local[sizeof local_v2 + 1];
    memcpy(local, local_v2, sizeof local_v2);
    char *reply = NULL;
    {
        struct hello_bytes hello = hello_build("www.example.com");
        uint8_t *payload = malloc(sizeof local_v2 + hello.length);
        memcpy(payload, local, sizeof local_v2);
        memcpy(payload + sizeof local_v2, hello.data, hello.length);
        reply = exchange_from("127.0.0.1", TEST_PORT(150, 8), payload, sizeof local_v2 + hello.length, 5000, NULL);
        free(payload);
        hello_free(&hello);
    }
    cr_expect(reply && strcmp(reply, "127.0.0.1\n") == 0, "LOCAL header: the backend saw '%s'", reply);
    free(reply);
    cr_expect_eq(proxy_stop(&source_proxy, 10000), 0);
}

/* A server of the other family than the source connects as before. The
 * test is the IPv6 server itself, on [::1]. */
Test(source, other_family_server_connects_as_before, .init = integration_init, .fini = source_fini)
{
    uint16_t proxy_port = TEST_PORT(150, 10), server_port = TEST_PORT(150, 11);
    int listen_fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(listen_fd, 0);
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
    struct sockaddr_in6 address = { .sin6_family = AF_INET6, .sin6_port = htons(server_port),
                                    .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    cr_assert_eq(bind(listen_fd, (struct sockaddr *)&address, sizeof address), 0);
    cr_assert_eq(listen(listen_fd, 8), 0);
    char *body = text_format("[routes]\ndefault = [::1]:%u\n", server_port);
    char *config = config_text(proxy_port, "source = 127.0.0.2\n", body);
    cr_assert(proxy_start(&source_proxy, config, proxy_port), "snisplice did not start");

    struct hello_bytes hello = hello_build("www.example.com");
    int client = net_connect(proxy_port);
    cr_assert_geq(client, 0);
    net_set_timeouts(client, 5000);
    cr_assert(net_send_all(client, hello.data, hello.length));
    shutdown(client, SHUT_WR);
    struct pollfd ready = { .fd = listen_fd, .events = POLLIN };
    cr_assert_eq(poll(&ready, 1, 5000), 1, "the proxy never connected to [::1]");
    struct sockaddr_storage peer;
    socklen_t length = sizeof peer;
    int server = accept(listen_fd, (struct sockaddr *)&peer, &length);
    cr_assert_geq(server, 0);
    char text[INET6_ADDRSTRLEN];
    peer_text(&peer, text, sizeof text);
    cr_expect_str_eq(text, "::1", "an IPv4 source is not applied to an IPv6 server");
    cr_expect(net_send_all(server, "v6\n", 3));
    close(server);
    char reply[8] = "";
    net_receive_exact(client, reply, 3, 5000);
    cr_expect_str_eq(reply, "v6\n");
    close(client);
    close(listen_fd);
    hello_free(&hello);
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&source_proxy, 10000), 0);
}

#define STATS_PORT TEST_PORT(151, 2)

/* The proxy's fds outside its pipe pools, once back at `target` with no
 * pipe lent, or when timeout_ms ran out (as test_fd_hygiene.c). */
static int fd_count_settled(int target, int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms, in_use = 0;
    int count = stats_fds_outside_pool(&source_proxy, STATS_PORT, &in_use);
    while ((count != target || in_use != 0) && monotonic_ms() < deadline) {
        sleep_ms(50);
        count = stats_fds_outside_pool(&source_proxy, STATS_PORT, &in_use);
    }
    return count;
}

/* 192.0.2.1 (TEST-NET-1) is no address of this host, and without
 * IP_TRANSPARENT it cannot be bound: each client of that listener is
 * closed, no server is tried or blamed, and the other listener, with the
 * same upstream, goes on serving. */
Test(source, unbindable_source_closes_only_that_connection, .init = integration_init, .fini = source_fini)
{
    uint16_t good_port = TEST_PORT(151, 3);
    char *globals = text_format("stats = 127.0.0.1:%u\n", STATS_PORT);
    char *body = text_format("[listen good]\naddress = 127.0.0.1:%u\nroutes = good\n"
                             "[routes good]\ndefault = peer\n", good_port);
    start_source_proxy(TEST_PORT(151, 0), globals, "source = 192.0.2.1\n", body);
    expect_peer(good_port, NULL, NULL, "127.0.0.1", "warm-up through the other listener");
    sleep_ms(100);
    long long pipes_in_use;
    int baseline = stats_fds_outside_pool(&source_proxy, STATS_PORT, &pipes_in_use);
    cr_assert_gt(baseline, 0, "cannot read the proxy's fds");

    unsigned accepted = backend_accepted(&peer_backend);
    for (int i = 0; i < 20; i++) {
        bool closed = false;
        struct hello_bytes hello = hello_build("www.example.com");
        char *reply = exchange_once(TEST_PORT(151, 0), hello.data, hello.length, 5000, &closed);
        cr_expect(reply && reply[0] == '\0' && closed, "connection %d: '%s', closed %d", i, reply, closed);
        free(reply);
        hello_free(&hello);
        expect_peer(good_port, NULL, NULL, "127.0.0.1", "the other listener, between failures");
    }
    cr_expect_eq(backend_accepted(&peer_backend), accepted + 20, "only the good listener's connections arrive");
    cr_expect_eq(fd_count_settled(baseline, 5000), baseline, "descriptors leaked");
    char *metrics = stats_fetch(STATS_PORT, "/metrics");
    cr_assert_not_null(metrics);
    cr_expect_eq(stats_sample(metrics, "snisplice_connections_total{route=\"peer\",outcome=\"source_failed\"}"), 20);
    char *series = text_format("snisplice_upstream_connect_failures_total{upstream=\"peer\",server=\"127.0.0.1:%u\"}",
                               TEST_PORT(151, 1));
    long long failures = stats_sample(metrics, series);
    cr_expect(failures <= 0, "the server was blamed for the source: %lld connect failures", failures);
    cr_expect(proxy_stderr_wait_for(&source_proxy, "source 192.0.2.1:0: bind: Cannot assign requested address", 2000),
              "no warning names the source and the error");
    free(series);
    free(metrics);
    free(globals);
    free(body);
    cr_expect_eq(proxy_stop(&source_proxy, 10000), 0);
}

/* Capability bits in /proc/PID/task/TID/status, every task alike, or -1. */
static long long task_capabilities(pid_t pid, const char *field)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    long long seen = -2;
    char command[160];
    snprintf(command, sizeof command, "cat %s/*/status 2>/dev/null", path);
    FILE *status = popen(command, "r");
    if (!status)
        return -1;
    char line[256];
    size_t field_length = strlen(field);
    while (fgets(line, sizeof line, status)) {
        if (strncmp(line, field, field_length) != 0)
            continue;
        long long bits = strtoll(line + field_length, NULL, 16);
        seen = seen == -2 || seen == bits ? bits : -1;
    }
    pclose(status);
    return seen;
}

/* CAP_NET_RAW for source = client, and CAP_NET_BIND_SERVICE, kept by every
 * `user =` process for reloads that add ports below 1024 (test_user.c). */
Test(source, user_keeps_only_net_raw_and_net_bind_service, .init = integration_init, .fini = source_fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to switch users");
    start_source_proxy(TEST_PORT(151, 4), "user = nobody\n", "source = client\n", NULL);
    expect_peer(TEST_PORT(151, 4), "127.0.0.9", NULL, "127.0.0.9", "source = client as nobody");
    long long kept = 1ll << 13 | 1ll << 10;
    cr_expect_eq(task_capabilities(source_proxy.pid, "CapEff:"), kept, "effective: CAP_NET_RAW, CAP_NET_BIND_SERVICE");
    cr_expect_eq(task_capabilities(source_proxy.pid, "CapPrm:"), kept, "permitted: CAP_NET_RAW, CAP_NET_BIND_SERVICE");
    cr_expect_eq(task_capabilities(source_proxy.pid, "CapInh:"), 0);
    cr_expect(proxy_stderr_wait_for(&source_proxy, "with CAP_NET_BIND_SERVICE and CAP_NET_RAW alone", 1000));
    cr_expect_eq(proxy_stop(&source_proxy, 10000), 0);
}

/* Started without source = client, the process dropped every capability
 * but CAP_NET_BIND_SERVICE with `user =`: a reload that needs one is
 * refused, and the running configuration goes on. */
Test(source, reload_needing_a_dropped_capability_is_refused, .init = integration_init, .fini = source_fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to switch users");
    uint16_t port = TEST_PORT(151, 6);
    start_source_proxy(port, "user = nobody\n", NULL, NULL);
    expect_peer(port, "127.0.0.9", NULL, "127.0.0.1", "before the reload");
    cr_expect_eq(task_capabilities(source_proxy.pid, "CapEff:"), 1ll << 10, "CAP_NET_BIND_SERVICE alone");
    char *body = text_format("source = client\n[routes]\ndefault = peer\n[upstream peer]\nserver = 127.0.0.1:%u\n",
                             port + 1);
    char *config = config_text(port, "user = nobody\n", body);
    /* The user reloads the file: its directory must let nobody in. */
    cr_assert_eq(chmod(source_proxy.directory, 0755), 0);
    proxy_reload(&source_proxy, config);
    bool refused = proxy_stderr_wait_for(&source_proxy, "reload rejected: ", 5000) &&
                   proxy_stderr_wait_for(&source_proxy, "snisplice.ini:8: source = client: binding the client's "
                                                        "address needs CAP_NET_ADMIN or CAP_NET_RAW", 1000);
    char *log = proxy_stderr(&source_proxy);
    cr_expect(refused, "the reload was not refused with the reason:\n%s", log);
    free(log);
    expect_peer(port, "127.0.0.9", NULL, "127.0.0.1", "the running configuration");
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&source_proxy, 10000), 0);
}

/* Without CAP_NET_ADMIN or CAP_NET_RAW (run as nobody through setpriv),
 * `-t` and start-up refuse a config with source = client, naming its
 * line, rather than failing each connection; without it the same user
 * is fine. */
Test(source, refused_at_check_and_start_without_the_capability, .init = integration_init, .fini = source_fini)
{
    if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0)
        cr_skip_test("needs root and setpriv to run as nobody");
    char *directory = temp_directory_create("source-capability");
    cr_assert_eq(chmod(directory, 0755), 0);
    char *body = text_format("source = client\n[routes]\ndefault = 127.0.0.1:%u\n", TEST_PORT(151, 9));
    char *config = config_text(TEST_PORT(151, 8), NULL, body);
    char *path = temp_file_write(directory, "client.ini", config);
    cr_assert_eq(chmod(path, 0644), 0);
    const char *want = "client.ini:7: source = client: binding the client's address needs CAP_NET_ADMIN or CAP_NET_RAW";
    const char *check[] = { "/usr/bin/setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                            proxy_binary(), "-t", "-c", path, NULL };
    char *output = NULL;
    int status = child_run(check, NULL, NULL, 15000, &output);
    cr_expect_eq(status, 1, "-t: exit %d, output:\n%s", status, output);
    cr_expect(output && strstr(output, want), "-t output:\n%s", output);
    free(output);
    const char *start[] = { "/usr/bin/setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                            proxy_binary(), "-c", path, NULL };
    output = NULL;
    status = child_run(start, NULL, NULL, 15000, &output);
    cr_expect_eq(status, 1, "start: exit %d, output:\n%s", status, output);
    cr_expect(output && strstr(output, want), "start output:\n%s", output);
    free(output);

    free(path);
    free(config);
    free(body);
    body = text_format("source = 127.0.0.2\n[routes]\ndefault = 127.0.0.1:%u\n", TEST_PORT(151, 9));
    config = config_text(TEST_PORT(151, 8), NULL, body);
    path = temp_file_write(directory, "address.ini", config);
    cr_assert_eq(chmod(path, 0644), 0);
    check[9] = path;
    output = NULL;
    status = child_run(check, NULL, NULL, 15000, &output);
    cr_expect_eq(status, 0, "a fixed source needs no capability: exit %d, output:\n%s", status, output);
    free(output);
    free(path);
    free(config);
    free(body);
    free(directory);
}

/* A container may grant CAP_NET_ADMIN and not CAP_NET_RAW; either lets
 * IP_TRANSPARENT through, so `-t` passes such a config, and start-up
 * must not then refuse it: with `user =`, the process keeps the one it
 * has. Started through setpriv with CAP_NET_RAW out of the bounding set. */
Test(source, user_keeps_net_admin_where_net_raw_was_not_given, .init = integration_init, .fini = source_fini)
{
    if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0)
        cr_skip_test("needs root and setpriv");
    char wrapper[] = "/tmp/snisplice-setpriv-XXXXXX";
    int wrapper_fd = mkstemp(wrapper);
    cr_assert_geq(wrapper_fd, 0);
    char *script = text_format("#!/bin/sh\nexec /usr/bin/setpriv --bounding-set -net_raw --inh-caps -net_raw -- '%s' \"$@\"\n",
                               proxy_binary());
    cr_assert_eq(write(wrapper_fd, script, strlen(script)), (ssize_t)strlen(script));
    fchmod(wrapper_fd, 0700);
    close(wrapper_fd);
    char *real_binary = strdup(proxy_binary());
    setenv("SNISPLICE_BIN", wrapper, 1);
    uint16_t port = TEST_PORT(154, 0);
    start_source_proxy(port, "user = nobody\n", "source = client\n", NULL);
    setenv("SNISPLICE_BIN", real_binary, 1);
    unlink(wrapper);

    expect_peer(port, "127.0.0.9", NULL, "127.0.0.9", "source = client as nobody with CAP_NET_ADMIN");
    long long kept = 1ll << 12 | 1ll << 10;
    cr_expect_eq(task_capabilities(source_proxy.pid, "CapEff:"), kept, "effective: CAP_NET_ADMIN, CAP_NET_BIND_SERVICE");
    cr_expect_eq(task_capabilities(source_proxy.pid, "CapPrm:"), kept, "permitted: CAP_NET_ADMIN, CAP_NET_BIND_SERVICE");
    cr_expect(proxy_stderr_wait_for(&source_proxy, "with CAP_NET_BIND_SERVICE and CAP_NET_ADMIN alone", 1000));
    cr_expect_eq(proxy_stop(&source_proxy, 10000), 0);
    free(script);
    free(real_binary);
}
