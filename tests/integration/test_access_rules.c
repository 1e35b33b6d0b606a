/*
 * test_access_rules.c - allow/deny with real processes: clients told apart
 * by their source address (127.0.0.x, all this host's) are served or
 * refused in rule order, on a routed and a plain-forward listener, before
 * any upstream is contacted; behind a trusted load balancer the address
 * its PROXY header names is judged; refusals are logged; a reload changes
 * the rules. Ports: block 105.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy rules_proxy;
static struct backend alpha, bravo;

static void rules_fini(void)
{
    proxy_release(&rules_proxy);
    integration_cleanup();
}

struct visit {
    char reply[64];   /* what came back, NUL-terminated */
    bool ended;       /* EOF or reset before the deadline */
};

/* Connect from `source`, send, half-close, read until closed. A refused
 * client may see its send fail (the reset can come first): not an error. */
static struct visit visit_from(const char *source, uint16_t port, const void *payload, size_t length)
{
    struct visit visit = { .reply = "" };
    int fd = net_connect_from(source, port);
    cr_assert_geq(fd, 0, "connect from %s to %u failed", source, port);
    net_set_timeouts(fd, 5000);
    if (net_send_all(fd, payload, length))
        shutdown(fd, SHUT_WR);
    struct net_receive_result result = net_receive_until_closed(fd, visit.reply, sizeof visit.reply - 1, 5000);
    visit.reply[result.length] = '\0';
    visit.ended = result.eof || result.reset;
    close(fd);
    return visit;
}

static void expect_served(const char *source, uint16_t port, const void *payload, size_t length,
                          const char *backend)
{
    struct visit visit = visit_from(source, port, payload, length);
    char want[32];
    snprintf(want, sizeof want, "%s\n", backend);
    cr_expect_str_eq(visit.reply, want, "client %s on port %u: got '%s', want %s's answer", source, port,
                     visit.reply, backend);
}

/* Refused: closed with no answer, and `backend` never saw a connection. */
static void expect_refused(const char *source, uint16_t port, const void *payload, size_t length,
                           struct backend *backend)
{
    unsigned before = backend_accepted(backend);
    struct visit visit = visit_from(source, port, payload, length);
    cr_expect(visit.ended && visit.reply[0] == '\0', "client %s on port %u was answered '%s'", source, port,
              visit.reply);
    cr_expect_eq(backend_accepted(backend), before, "client %s on port %u reached %s", source, port,
                 backend->name);
}

/* PROXY v1 header naming `client`, then the payload. */
static size_t behind_header(const char *client, const void *payload, size_t length, uint8_t *out,
                            size_t size)
{
    int header = client ? snprintf((char *)out, size, "PROXY TCP4 %s 192.0.2.1 40000 443\r\n", client)
                        : snprintf((char *)out, size, "PROXY UNKNOWN\r\n");
    cr_assert((size_t)header + length <= size);
    memcpy(out + header, payload, length);
    return (size_t)header + length;
}

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

Test(access_rules, clients_served_or_refused_by_address, .init = integration_init, .fini = rules_fini)
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
    cr_assert(proxy_start(&rules_proxy, config, port), "snisplice did not start");

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
    proxy_reload(&rules_proxy, reloaded);
    cr_assert(proxy_stderr_wait_for(&rules_proxy, "reloaded", 3000));
    sleep_ms(100);
    expect_served("127.0.0.1", port, chromium.data, chromium.length, "alpha");
    expect_refused("127.0.0.2", port, chromium.data, chromium.length, &alpha);
    expect_served("127.0.1.1", port, chromium.data, chromium.length, "alpha");

    cr_expect_eq(proxy_stop(&rules_proxy, 10000), 0);
    char *log = file_read_all(log_path, NULL);
    cr_assert_not_null(log);
    cr_expect(strstr(log, "127.0.1.1:") && strstr(log, "outcome=denied"), "access log:\n%s", log);
    cr_expect(strstr(log, " 198.51.100.7:40000 "), "the header's client is logged:\n%s", log);
    int denied = 0;
    for (const char *at = log; (at = strstr(at, "outcome=denied")); at++)
        denied++;
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
