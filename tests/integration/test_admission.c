/*
 * test_admission.c - which clients a listener serves (io/admission.c),
 * with real processes; clients are told apart by source address
 * (127.0.0.x, all this host's).
 *
 * allow/deny: clients are served or refused in rule order, on a routed and
 * a plain-forward listener, before any upstream is contacted; behind a
 * trusted load balancer the address its PROXY header names is judged;
 * refusals are logged; a reload changes the rules. Ports: block 105.
 *
 * max_connections_per_client (nginx's limit_conn on $binary_remote_addr):
 * a client at its limit is closed before any upstream is contacted while
 * other clients are served; a closed connection makes room again; a
 * listener with `off` does not count; behind a trusted load balancer each
 * client the header names is counted, not the balancer; refusals are
 * logged; a reload changes the limit. Ports: block 108.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy admission_proxy;
static struct backend alpha, bravo;

static void admission_fini(void)
{
    proxy_release(&admission_proxy);
    integration_cleanup();
}

/* A whole exchange from `source` got `backend`'s answer. */
static bool served_from(const char *source, uint16_t port, const void *payload, size_t length,
                        const char *backend)
{
    char *reply = exchange_from(source, port, payload, length, 5000, NULL);
    char want[40];
    snprintf(want, sizeof want, "%s\n", backend);
    bool served = reply && strcmp(reply, want) == 0;
    free(reply);
    return served;
}

static void expect_served(const char *source, uint16_t port, const void *payload, size_t length,
                          const char *backend)
{
    cr_expect(served_from(source, port, payload, length, backend), "client %s on port %u did not get %s's answer",
              source, port, backend);
}

/* Refused: closed with no answer, and `backend` never saw a connection. */
static void expect_refused(const char *source, uint16_t port, const void *payload, size_t length,
                           struct backend *backend)
{
    unsigned before = backend_accepted(backend);
    bool closed = false;
    char *reply = exchange_from(source, port, payload, length, 5000, &closed);
    cr_expect(reply && closed && reply[0] == '\0', "client %s on port %u was answered '%s'", source, port,
              reply ? reply : "(connect failed)");
    free(reply);
    cr_expect_eq(backend_accepted(backend), before, "client %s on port %u reached %s", source, port,
                 backend->name);
}

/* Connect from `source` and send, leaving the connection open. */
static int open_from(const char *source, uint16_t port, const void *payload, size_t length)
{
    int fd = net_connect_from(source, port);
    cr_assert_geq(fd, 0, "connect from %s to %u failed", source, port);
    net_set_timeouts(fd, 5000);
    cr_assert(net_send_all(fd, payload, length));
    return fd;
}

/* Until `backend` has accepted `count` connections in all; false after 5 s. */
static bool wait_accepted(struct backend *backend, unsigned count)
{
    for (int i = 0; i < 500 && backend_accepted(backend) < count; i++)
        sleep_ms(10);
    return backend_accepted(backend) >= count;
}

/* PROXY v1 header naming `client` (NULL: UNKNOWN), then the payload. */
static size_t behind_header(const char *client, const void *payload, size_t length, uint8_t *out,
                            size_t size)
{
    int header = client ? snprintf((char *)out, size, "PROXY TCP4 %s 192.0.2.1 40000 443\r\n", client)
                        : snprintf((char *)out, size, "PROXY UNKNOWN\r\n");
    cr_assert((size_t)header + length <= size);
    memcpy(out + header, payload, length);
    return (size_t)header + length;
}

/* Lines of the access log at `path` with outcome=`outcome`. */
static int logged_outcomes(const char *path, const char *outcome, char **log)
{
    *log = file_read_all(path, NULL);
    cr_assert_not_null(*log);
    char needle[64];
    snprintf(needle, sizeof needle, "outcome=%s", outcome);
    int count = 0;
    for (const char *at = *log; (at = strstr(at, needle)); at++)
        count++;
    return count;
}

/* ---- allow / deny ---- */

static char *rules_config(uint16_t port, const char *globals, const char *main_rules, uint16_t plain_port,
                          uint16_t balanced_port)
{
    char *body = text_format("%sroutes = web\n"
                             "[listen ssh]\naddress = 127.0.0.1:%u\nupstream = bravo\n"
                             "deny = 127.0.0.3\n"
                             "[listen balanced]\naddress = 127.0.0.1:%u\nroutes = web\n"
                             "proxy_protocol_from = 127.0.0.5\n"
                             "allow = 203.0.113.0/24\ndeny = all\n"
                             "[routes web]\ndefault = alpha\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n"
                             "[upstream bravo]\nserver = 127.0.0.1:%u\n",
                             main_rules, plain_port, balanced_port, TEST_PORT(105, 5), TEST_PORT(105, 6));
    char *config = config_text(port, globals, body);
    free(body);
    return config;
}

Test(access_rules, clients_served_or_refused_by_address, .init = integration_init, .fini = admission_fini)
{
    uint16_t port = TEST_PORT(105, 0), plain_port = TEST_PORT(105, 1), balanced_port = TEST_PORT(105, 2);
    cr_assert(backend_start(&alpha, "alpha", TEST_PORT(105, 5), NULL, NULL));
    cr_assert(backend_start(&bravo, "bravo", TEST_PORT(105, 6), NULL, NULL));
    char *directory = temp_directory_create("access-rules");
    char *log_path = text_format("%s/access.log", directory);
    char *globals = text_format("access_log = %s\n", log_path);
    /* nginx's example shape: a narrower deny before a wider allow. */
    const char *main_rules = "deny = 127.0.1.1\nallow = 127.0.1.0/24\nallow = 127.0.0.2\ndeny = all\n";
    char *config = rules_config(port, globals, main_rules, plain_port, balanced_port);
    cr_assert(proxy_start(&admission_proxy, config, port), "snisplice did not start");

    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(chromium.data);

    expect_served("127.0.0.2", port, chromium.data, chromium.length, "alpha");
    expect_served("127.0.1.9", port, chromium.data, chromium.length, "alpha");
    expect_refused("127.0.1.1", port, chromium.data, chromium.length, &alpha);
    expect_refused("127.0.0.1", port, chromium.data, chromium.length, &alpha);
    expect_served("127.0.0.2", port, chromium.data, chromium.length, "alpha");

    /* A plain forward: refused at accept, before its upstream is connected;
     * no rule matching means served. */
    expect_refused("127.0.0.3", plain_port, "ping", 4, &bravo);
    expect_served("127.0.0.4", plain_port, "ping", 4, "bravo");

    /* Behind a trusted balancer the header's client is judged, not the balancer. */
    static uint8_t payload[4096];
    size_t length = behind_header("203.0.113.7", chromium.data, chromium.length, payload, sizeof payload);
    expect_served("127.0.0.5", balanced_port, payload, length, "alpha");
    length = behind_header("198.51.100.7", chromium.data, chromium.length, payload, sizeof payload);
    expect_refused("127.0.0.5", balanced_port, payload, length, &alpha);
    /* UNKNOWN keeps the balancer's own address, which `deny all` refuses. */
    length = behind_header(NULL, chromium.data, chromium.length, payload, sizeof payload);
    expect_refused("127.0.0.5", balanced_port, payload, length, &alpha);
    /* An untrusted source is judged by its own address, header or not. */
    expect_refused("127.0.0.6", balanced_port, chromium.data, chromium.length, &alpha);

    /* A reload changes the rules for the next connections. */
    char *reloaded = rules_config(port, globals, "allow = 127.0.0.1\ndeny = 127.0.0.2\n", plain_port,
                                  balanced_port);
    proxy_reload(&admission_proxy, reloaded);
    cr_assert(proxy_stderr_wait_for(&admission_proxy, "reloaded", 3000));
    sleep_ms(100);
    expect_served("127.0.0.1", port, chromium.data, chromium.length, "alpha");
    expect_refused("127.0.0.2", port, chromium.data, chromium.length, &alpha);
    expect_served("127.0.1.1", port, chromium.data, chromium.length, "alpha");

    cr_expect_eq(proxy_stop(&admission_proxy, 10000), 0);
    char *log = NULL;
    int denied = logged_outcomes(log_path, "denied", &log);
    cr_expect(strstr(log, "127.0.1.1:") && strstr(log, "outcome=denied"), "access log:\n%s", log);
    cr_expect(strstr(log, " 198.51.100.7:40000 "), "the header's client is logged:\n%s", log);
    /* 7 refusals above, and proxy_start's probe from 127.0.0.1. */
    cr_expect_eq(denied, 8, "denied lines: %d\n%s", denied, log);
    free(log);

    hello_free(&chromium);
    free(reloaded);
    free(config);
    free(globals);
    free(log_path);
    free(directory);
}

/* ---- max_connections_per_client ---- */

static char *limit_config(uint16_t port, const char *globals, uint16_t plain_port, uint16_t balanced_port)
{
    char *body = text_format("routes = web\n"
                             "[listen ssh]\naddress = 127.0.0.1:%u\nupstream = bravo\n"
                             "max_connections_per_client = off\n"
                             "[listen balanced]\naddress = 127.0.0.1:%u\nroutes = web\n"
                             "proxy_protocol_from = 127.0.0.5\nmax_connections_per_client = 1\n"
                             "[routes web]\ndefault = alpha\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n"
                             "[upstream bravo]\nserver = 127.0.0.1:%u\n",
                             plain_port, balanced_port, TEST_PORT(108, 5), TEST_PORT(108, 6));
    char *config = config_text(port, globals, body);
    free(body);
    return config;
}

Test(client_limit, connections_per_client_address, .init = integration_init, .fini = admission_fini)
{
    uint16_t port = TEST_PORT(108, 0), plain_port = TEST_PORT(108, 1), balanced_port = TEST_PORT(108, 2);
    cr_assert(backend_start(&alpha, "alpha", TEST_PORT(108, 5), NULL, NULL));
    cr_assert(backend_start(&bravo, "bravo", TEST_PORT(108, 6), NULL, NULL));
    char *directory = temp_directory_create("client-limit");
    char *log_path = text_format("%s/access.log", directory);
    char *globals = text_format("access_log = %s\nmax_connections_per_client = 2\n", log_path);
    char *config = limit_config(port, globals, plain_port, balanced_port);
    cr_assert(proxy_start(&admission_proxy, config, port), "snisplice did not start");
    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(chromium.data);

    /* Two held by 127.0.0.2 (its limit), across both workers. */
    unsigned accepted = backend_accepted(&alpha);
    int held[2];
    for (int i = 0; i < 2; i++)
        held[i] = open_from("127.0.0.2", port, chromium.data, chromium.length);
    cr_assert(wait_accepted(&alpha, accepted + 2), "the two connections were not relayed");
    expect_refused("127.0.0.2", port, chromium.data, chromium.length, &alpha);
    cr_expect(served_from("127.0.0.3", port, chromium.data, chromium.length, "alpha"), "another client");

    /* One closes: room for one more, once the proxy has seen the close. */
    close(held[0]);
    bool room = false;
    for (int i = 0; i < 100 && !room; i++) {
        sleep_ms(10);
        room = served_from("127.0.0.2", port, chromium.data, chromium.length, "alpha");
    }
    cr_expect(room, "a closed connection did not make room");
    held[0] = open_from("127.0.0.2", port, chromium.data, chromium.length);
    cr_assert(wait_accepted(&alpha, backend_accepted(&alpha)));

    /* A listener with `off` neither limits nor counts. */
    unsigned bravo_before = backend_accepted(&bravo);
    int plain[3];
    for (int i = 0; i < 3; i++)
        plain[i] = open_from("127.0.0.2", plain_port, "ping", 4);
    cr_expect(wait_accepted(&bravo, bravo_before + 3), "the plain listener limited 127.0.0.2");
    for (int i = 0; i < 3; i++)
        close(plain[i]);

    /* Behind the balancer (limit 1) each named client is counted. */
    static uint8_t payload[4096];
    size_t length = behind_header("203.0.113.7", chromium.data, chromium.length, payload, sizeof payload);
    unsigned alpha_before = backend_accepted(&alpha);
    int balanced = open_from("127.0.0.5", balanced_port, payload, length);
    cr_assert(wait_accepted(&alpha, alpha_before + 1));
    expect_refused("127.0.0.5", balanced_port, payload, length, &alpha);
    length = behind_header("203.0.113.8", chromium.data, chromium.length, payload, sizeof payload);
    cr_expect(served_from("127.0.0.5", balanced_port, payload, length, "alpha"),
              "another client of the same balancer");
    close(balanced);

    /* A reload raises the limit for the next connections. */
    char *raised_globals = text_format("access_log = %s\nmax_connections_per_client = 3\n", log_path);
    char *raised = limit_config(port, raised_globals, plain_port, balanced_port);
    proxy_reload(&admission_proxy, raised);
    cr_assert(proxy_stderr_wait_for(&admission_proxy, "reloaded", 3000));
    sleep_ms(100);
    cr_expect(served_from("127.0.0.2", port, chromium.data, chromium.length, "alpha"), "limit 3 after reload");

    for (int i = 0; i < 2; i++)
        close(held[i]);
    cr_expect_eq(proxy_stop(&admission_proxy, 10000), 0);
    char *log = NULL;
    int refused = logged_outcomes(log_path, "client_limit", &log);
    cr_expect_eq(refused, 2, "client_limit lines: %d\n%s", refused, log);
    cr_expect(strstr(log, " 203.0.113.7:40000 "), "the header's client is logged:\n%s", log);
    free(log);

    hello_free(&chromium);
    free(raised);
    free(raised_globals);
    free(config);
    free(globals);
    free(log_path);
    free(directory);
}
