/*
 * test_proxy_protocol.c - the PROXY protocol with real processes: headers
 * sent to upstreams (v1 and v2, IPv4 and IPv6 clients, a plain forward),
 * parsed by the backend's side exactly as an upstream would; and headers
 * accepted from trusted sources (whole or in pieces, v1 or v2), passed on
 * with the real client address, refused when missing, not expected from
 * others, and written to the access log. Ports: block 63.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/proxy_protocol.h"
#include "../support/integration.h"

static struct proxy pp_proxy;
static struct backend alpha, bravo, charlie;

static void pp_fini(void)
{
    proxy_release(&pp_proxy);
    integration_cleanup();
}

/* The header the backend received, checked to be followed by `rest`. */
static struct proxy_protocol_header received_header(struct backend *backend, unsigned finished,
                                                    const void *rest, size_t rest_length, char *text,
                                                    size_t text_size)
{
    cr_assert(backend_wait_finished(backend, finished, 5000), "%s served %u connections, want %u",
              backend->name, backend_finished(backend), finished);
    static uint8_t bytes[BACKEND_RECORD_MAX];
    size_t length = backend_last_received(backend, bytes, sizeof bytes);
    struct proxy_protocol_header header;
    cr_assert_eq(proxy_protocol_parse(bytes, length, &header), PROXY_PROTOCOL_FOUND,
                 "%s got no PROXY header (%zu bytes, starting '%.20s')", backend->name, length, bytes);
    cr_expect_eq(length - header.length, rest_length, "%s: %zu bytes after a %zu-byte header, want %zu", backend->name, length - header.length, header.length, rest_length);
    cr_expect(memcmp(bytes + header.length, rest, rest_length) == 0, "the client's bytes changed");
    size_t copied = header.length < text_size - 1 ? header.length : text_size - 1;
    memcpy(text, bytes, copied);
    text[copied] = '\0';
    return header;
}

static uint16_t port_of(const struct sockaddr_storage *address)
{
    return ntohs(address->ss_family == AF_INET ? ((const struct sockaddr_in *)address)->sin_port
                                               : ((const struct sockaddr_in6 *)address)->sin6_port);
}

/* exchange_once over IPv6 loopback. */
static char *exchange_ipv6(uint16_t port, const void *payload, size_t length)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in6 address = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
    inet_pton(AF_INET6, "::1", &address.sin6_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&address, sizeof address), 0);
    cr_assert(net_send_all(fd, payload, length));
    shutdown(fd, SHUT_WR);
    char *reply = calloc(1, 256);
    size_t used = 0;
    ssize_t got;
    while (used < 255 && (got = recv(fd, reply + used, 255 - used, 0)) > 0)
        used += (size_t)got;
    close(fd);
    return reply;
}

Test(proxy_protocol, sent_to_upstreams, .init = integration_init, .fini = pp_fini)
{
    uint16_t proxy_port = TEST_PORT(63, 0), ipv6_port = TEST_PORT(63, 1), plain_port = TEST_PORT(63, 2);
    cr_assert(backend_start(&alpha, "alpha", TEST_PORT(63, 3), NULL, NULL));
    cr_assert(backend_start(&bravo, "bravo", TEST_PORT(63, 4), NULL, NULL));
    cr_assert(backend_start(&charlie, "charlie", TEST_PORT(63, 5), NULL, NULL));
    char *body = text_format("address = [::1]:%u\n"
                             "[routes]\nmatrix.exceptionerror.io = alpha\nblog.example.net = bravo\n"
                             "[listen plain]\naddress = 127.0.0.1:%u\nupstream = charlie\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\nproxy_protocol = v1\n"
                             "[upstream bravo]\nserver = 127.0.0.1:%u\nproxy_protocol = v2\n"
                             "[upstream charlie]\nserver = 127.0.0.1:%u\nproxy_protocol = v2\n",
                             ipv6_port, plain_port, TEST_PORT(63, 3), TEST_PORT(63, 4), TEST_PORT(63, 5));
    char *config = config_text(proxy_port, NULL, body);
    cr_assert(proxy_start(&pp_proxy, config, proxy_port), "snisplice did not start");
    unsigned alpha_before = backend_finished(&alpha); /* the start-up probe is not routed */

    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    struct hello_bytes blog = hello_build("blog.example.net");
    cr_assert_not_null(chromium.data);
    char text[128];

    free(exchange_once(proxy_port, chromium.data, chromium.length, 5000, NULL));
    struct proxy_protocol_header header =
        received_header(&alpha, alpha_before + 1, chromium.data, chromium.length, text, sizeof text);
    cr_expect(strncmp(text, "PROXY TCP4 127.0.0.1 127.0.0.1 ", 31) == 0, "v1 header: %s", text);
    cr_expect_eq(port_of(&header.destination), proxy_port, "v1 destination port");
    cr_expect_neq(port_of(&header.source), 0);

    free(exchange_once(proxy_port, blog.data, blog.length, 5000, NULL));
    header = received_header(&bravo, 1, blog.data, blog.length, text, sizeof text);
    cr_expect_eq(header.length, 28, "v2 TCP4 header is 28 bytes");
    cr_expect_eq(header.source.ss_family, AF_INET);
    cr_expect_eq(port_of(&header.destination), proxy_port);

    free(exchange_ipv6(ipv6_port, chromium.data, chromium.length));
    header = received_header(&alpha, alpha_before + 2, chromium.data, chromium.length, text, sizeof text);
    cr_expect(strncmp(text, "PROXY TCP6 ::1 ::1 ", 19) == 0, "v1 over IPv6: %s", text);
    cr_expect_eq(port_of(&header.destination), ipv6_port);

    char *reply = exchange_once(plain_port, "ping", 4, 5000, NULL);
    cr_expect(reply && strcmp(reply, "charlie\n") == 0);
    free(reply);
    header = received_header(&charlie, 1, "ping", 4, text, sizeof text);
    cr_expect_eq(header.source.ss_family, AF_INET, "plain forwards send it too");
    cr_expect_eq(port_of(&header.destination), plain_port);

    hello_free(&chromium);
    hello_free(&blog);
    free(config);
    free(body);
    cr_expect_eq(proxy_stop(&pp_proxy, 10000), 0);
}

Test(proxy_protocol, accepted_from_trusted_sources, .init = integration_init, .fini = pp_fini)
{
    uint16_t trusted_port = TEST_PORT(63, 10), untrusted_port = TEST_PORT(63, 11);
    uint16_t plain_port = TEST_PORT(63, 12);
    cr_assert(backend_start(&alpha, "alpha", TEST_PORT(63, 13), NULL, NULL));
    cr_assert(backend_start(&bravo, "bravo", TEST_PORT(63, 14), NULL, NULL));
    char *directory = temp_directory_create("proxy-protocol");
    char *log_path = text_format("%s/access.log", directory);
    char *globals = text_format("access_log = %s\n", log_path);
    char *body = text_format("proxy_protocol_from = 127.0.0.1\nroutes = web\n"
                             "[listen untrusted]\naddress = 127.0.0.1:%u\nproxy_protocol_from = 10.0.0.0/8\n"
                             "routes = web\n"
                             "[listen plain]\naddress = 127.0.0.1:%u\nproxy_protocol_from = 127.0.0.0/8\n"
                             "upstream = bravo\n"
                             "[routes web]\ndefault = alpha\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\nproxy_protocol = v1\n"
                             "[upstream bravo]\nserver = 127.0.0.1:%u\nproxy_protocol = v2\n",
                             untrusted_port, plain_port, TEST_PORT(63, 13), TEST_PORT(63, 14));
    char *config = config_text(trusted_port, globals, body);
    cr_assert(proxy_start(&pp_proxy, config, trusted_port), "snisplice did not start");
    unsigned alpha_served = backend_finished(&alpha);

    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(chromium.data);
    static uint8_t payload[4096];
    char text[128];

    /* v1 from the load balancer, arriving 7 bytes at a time. */
    const char v1[] = "PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n";
    memcpy(payload, v1, strlen(v1));
    memcpy(payload + strlen(v1), chromium.data, chromium.length);
    free(exchange_in_pieces(trusted_port, payload, strlen(v1) + chromium.length, 7, 1, 10000, NULL));
    received_header(&alpha, ++alpha_served, chromium.data, chromium.length, text, sizeof text);
    cr_expect_str_eq(text, v1, "the real client is passed on");

    /* v2 in, v1 out, IPv6 addresses kept. */
    struct sockaddr_in6 from = { .sin6_family = AF_INET6, .sin6_port = htons(4000) };
    struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
    inet_pton(AF_INET6, "2001:db8::7", &from.sin6_addr);
    inet_pton(AF_INET6, "2001:db8::1", &to.sin6_addr);
    size_t v2_length = proxy_protocol_encode(PROXY_PROTOCOL_V2, (struct sockaddr *)&from,
                                             (struct sockaddr *)&to, payload, PROXY_PROTOCOL_ENCODED_MAX);
    memcpy(payload + v2_length, chromium.data, chromium.length);
    free(exchange_once(trusted_port, payload, v2_length + chromium.length, 5000, NULL));
    received_header(&alpha, ++alpha_served, chromium.data, chromium.length, text, sizeof text);
    cr_expect_str_eq(text, "PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n");

    /* A trusted source without a header is refused; no upstream is contacted. */
    unsigned accepted = backend_accepted(&alpha);
    bool closed = false;
    char *reply = exchange_once(trusted_port, chromium.data, chromium.length, 5000, &closed);
    cr_expect(reply && reply[0] == '\0' && closed, "a hello without the header was answered: '%s'", reply);
    free(reply);
    cr_expect_eq(backend_accepted(&alpha), accepted);

    /* Other sources are direct clients: no header expected. */
    free(exchange_once(untrusted_port, chromium.data, chromium.length, 5000, NULL));
    received_header(&alpha, ++alpha_served, chromium.data, chromium.length, text, sizeof text);
    cr_expect(strncmp(text, "PROXY TCP4 127.0.0.1 127.0.0.1 ", 31) == 0, "%s", text);

    /* A plain forward reads the header too, and re-encodes it as v2. */
    memcpy(payload, v1, strlen(v1));
    memcpy(payload + strlen(v1), "ping", 4);
    reply = exchange_once(plain_port, payload, strlen(v1) + 4, 5000, NULL);
    cr_expect(reply && strcmp(reply, "bravo\n") == 0, "plain forward: '%s'", reply);
    free(reply);
    struct proxy_protocol_header header = received_header(&bravo, 1, "ping", 4, text, sizeof text);
    cr_expect_eq(header.source.ss_family, AF_INET);
    cr_expect_eq(((struct sockaddr_in *)&header.source)->sin_addr.s_addr, inet_addr("203.0.113.7"));
    cr_expect_eq(port_of(&header.source), 51234);

    /* The access log names the real client, and the refusal. */
    cr_expect_eq(proxy_stop(&pp_proxy, 10000), 0);
    char *log = file_read_all(log_path, NULL);
    cr_expect(log && strstr(log, " 203.0.113.7:51234 "), "access log:\n%s", log);
    cr_expect(log && strstr(log, " [2001:db8::7]:4000 "), "access log:\n%s", log);
    cr_expect(log && strstr(log, "outcome=invalid_proxy_header"), "access log:\n%s", log);
    free(log);

    hello_free(&chromium);
    free(config);
    free(body);
    free(globals);
    free(log_path);
    free(directory);
}

/* A load balancer's health check: HAProxy's `check` on a server with
 * send-proxy-v2 connects, sends a LOCAL header (these 16 bytes, captured
 * from HAProxy 2.6) and resets at once, often before the worker has
 * accepted the connection. The client left: client_closed, as for any
 * client gone before its hello, never client_error, which would count
 * every health check as a failed client. Ports: block 341. */
Test(proxy_protocol, health_check_resets_are_not_client_errors, .init = integration_init,
     .fini = pp_fini)
{
    uint16_t port = TEST_PORT(341, 0);
    cr_assert(backend_start(&alpha, "alpha", TEST_PORT(341, 1), NULL, NULL));
    char *directory = temp_directory_create("proxy-protocol-checks");
    char *log_path = text_format("%s/access.log", directory);
    char *globals = text_format("access_log = %s\n", log_path);
    char *body = text_format("proxy_protocol_from = 127.0.0.1\n"
                             "[routes]\ndefault = 127.0.0.1:%u\n", TEST_PORT(341, 1));
    char *config = config_text(port, globals, body);
    cr_assert(proxy_start(&pp_proxy, config, port), "snisplice did not start");

    static const uint8_t haproxy_local[] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51,
                                             0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00 };
    enum { CHECKS = 40 };
    for (int i = 0; i < CHECKS; i++) {
        int fd = net_connect(port);
        cr_assert_geq(fd, 0);
        struct linger reset = { 1, 0 };
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        net_send_all(fd, haproxy_local, sizeof haproxy_local);
        close(fd);
    }

    /* Every check gets its line (written within a tick or so). */
    char *log = NULL;
    for (int waited = 0; waited < 10000; waited += 20) {
        free(log);
        log = file_read_all(log_path, NULL);
        if (log && text_count(log, "outcome=") >= CHECKS)
            break;
        sleep_ms(20);
    }
    cr_expect_eq(proxy_stop(&pp_proxy, 10000), 0);
    free(log);
    log = file_read_all(log_path, NULL);
    cr_assert_not_null(log);
    /* (and one more: proxy_start's probe, a connection without bytes) */
    cr_expect_geq(text_count(log, "outcome=client_closed"), CHECKS, "access log:\n%s", log);
    cr_expect_eq(text_count(log, "outcome=client_error"), 0, "access log:\n%s", log);
    cr_expect_eq(backend_accepted(&alpha), 0);
    free(log);
    free(config);
    free(body);
    free(globals);
    free(log_path);
    free(directory);
}
