/*
 * test_routing.c - which upstream a connection reaches, seen from plain TCP
 * backends that name themselves and record what they received: exact,
 * literal-address, default for plain HTTP and hellos without SNI, hellos in
 * many segments or many records, and closing when nothing matches and there
 * is no default. Forwarded bytes must be exactly what the client sent.
 * Servers named by host name. Clients that do not speak TLS (SSH and
 * HTTPS on one port) routed by `not_tls`. Case-sensitive `~` expressions
 * see the name as sent, as nginx's do. Ports: blocks 8-9, 104, 106, 156.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../support/integration.h"

static struct proxy routing_proxy;
static struct backend alpha_backend;
static struct backend bravo_backend;
static struct backend charlie_backend;

static void routing_fini(void)
{
    proxy_release(&routing_proxy);
    integration_cleanup();
}

static void expect_clean_exit(void)
{
    int status = proxy_stop(&routing_proxy, 10000);
    char *log = proxy_stderr(&routing_proxy);
    cr_expect_eq(status, 0, "snisplice exit %d, stderr:\n%s", status, log);
    free(log);
}

/*
 * Send payload (in pieces when piece_size < length); expect `backend` to
 * answer and to have received exactly the payload.
 */
static void expect_routed(uint16_t proxy_port, const void *payload, size_t length,
                          size_t piece_size, struct backend *backend, const char *what)
{
    unsigned finished_before = backend_finished(backend);
    char *reply = exchange_in_pieces(proxy_port, payload, length, piece_size, 5, 10000, NULL);
    char *wanted = text_format("%s\n", backend->name);
    cr_expect(reply && strcmp(reply, wanted) == 0, "%s: got \"%s\", want \"%s\"", what,
              reply ? reply : "(connect failed)", backend->name);
    if (reply && strcmp(reply, wanted) == 0) {
        cr_expect(backend_wait_finished(backend, finished_before + 1, 2000));
        uint8_t *recorded = malloc(BACKEND_RECORD_MAX);
        size_t recorded_length = backend_last_received(backend, recorded, BACKEND_RECORD_MAX);
        cr_expect(recorded_length == length && memcmp(recorded, payload, length) == 0,
                  "%s: backend received %zu bytes, client sent %zu (or they differ)", what,
                  recorded_length, length);
        free(recorded);
    }
    free(wanted);
    free(reply);
}

Test(routing, names_defaults_segments_and_records, .init = integration_init, .fini = routing_fini)
{
    uint16_t proxy_port = TEST_PORT(8, 0);
    cr_assert(backend_start(&alpha_backend, "alpha", TEST_PORT(8, 1), NULL, NULL));
    cr_assert(backend_start(&bravo_backend, "bravo", TEST_PORT(8, 2), NULL, NULL));
    cr_assert(backend_start(&charlie_backend, "charlie", TEST_PORT(8, 3), NULL, NULL));
    char *body = text_format("[routes]\n"
                             "matrix.exceptionerror.io = bravo\n"
                             "blog.example.net = 127.0.0.1:%u\n"
                             "default = alpha\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n"
                             "[upstream bravo]\nserver = 127.0.0.1:%u\n",
                             TEST_PORT(8, 3), TEST_PORT(8, 1), TEST_PORT(8, 2));
    char *config = config_text(proxy_port, "preread_timeout = 5s\n", body);
    cr_assert(proxy_start(&routing_proxy, config, proxy_port), "snisplice did not start");

    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    struct hello_bytes curl = hello_load_capture(HELLO_CURL);
    struct hello_bytes gnutls = hello_load_capture(HELLO_GNUTLS);
    cr_assert(chromium.data && curl.data && gnutls.data, "captures missing under %s",
              hello_shared_directory());
    struct hello_bytes synthetic = hello_build("matrix.exceptionerror.io");
    struct hello_bytes literal = hello_build("blog.example.net");
    struct hello_bytes no_sni = hello_build(NULL);
    struct hello_bytes records = hello_split_records(&chromium, 300);
    const char http[] = "GET /index.html HTTP/1.1\r\nHost: matrix.exceptionerror.io\r\n\r\n";

    expect_routed(proxy_port, chromium.data, chromium.length, chromium.length, &bravo_backend,
                  "Chromium hello");
    expect_routed(proxy_port, curl.data, curl.length, curl.length, &bravo_backend, "curl hello");
    expect_routed(proxy_port, synthetic.data, synthetic.length, synthetic.length, &bravo_backend,
                  "synthetic hello");
    expect_routed(proxy_port, gnutls.data, gnutls.length, gnutls.length, &alpha_backend,
                  "gnutls hello for an unrouted name -> default");
    expect_routed(proxy_port, literal.data, literal.length, literal.length, &charlie_backend,
                  "route to a literal address");
    expect_routed(proxy_port, http, strlen(http), strlen(http), &alpha_backend,
                  "plain HTTP -> default");
    expect_routed(proxy_port, no_sni.data, no_sni.length, no_sni.length, &alpha_backend,
                  "hello without SNI -> default");
    expect_routed(proxy_port, chromium.data, chromium.length, 97, &bravo_backend,
                  "Chromium hello in 97-byte segments");
    expect_routed(proxy_port, records.data, records.length, records.length, &bravo_backend,
                  "Chromium hello re-framed into 300-byte records");
    expect_routed(proxy_port, records.data, records.length, 7, &bravo_backend,
                  "hello in 300-byte records sent in 7-byte segments");

    hello_free(&chromium);
    hello_free(&curl);
    hello_free(&gnutls);
    hello_free(&synthetic);
    hello_free(&literal);
    hello_free(&no_sni);
    hello_free(&records);
    free(config);
    free(body);
    expect_clean_exit();
}

static void expect_closed_without_upstream(uint16_t proxy_port, const void *payload,
                                           size_t length, const char *what)
{
    bool closed = false;
    long long start = monotonic_ms();
    char *reply = exchange_once(proxy_port, payload, length, 5000, &closed);
    long long elapsed = monotonic_ms() - start;
    cr_expect(reply && closed && reply[0] == '\0' && elapsed <= 2000,
              "%s: want a prompt close with nothing back, got \"%s\" after %lld ms (closed %d)",
              what, reply ? reply : "(connect failed)", elapsed, closed);
    free(reply);
}

Test(routing, no_match_and_no_default_closes, .init = integration_init, .fini = routing_fini)
{
    uint16_t proxy_port = TEST_PORT(9, 0);
    cr_assert(backend_start(&bravo_backend, "bravo", TEST_PORT(9, 2), NULL, NULL));
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = 127.0.0.1:%u\n",
                             TEST_PORT(9, 2));
    char *config = config_text(proxy_port, "preread_timeout = 5s\n", body);
    cr_assert(proxy_start(&routing_proxy, config, proxy_port), "snisplice did not start");

    struct hello_bytes unmatched = hello_build("other.example.com");
    struct hello_bytes no_sni = hello_build(NULL);
    struct hello_bytes matched = hello_build("matrix.exceptionerror.io");
    const char http[] = "GET / HTTP/1.0\r\n\r\n";
    expect_closed_without_upstream(proxy_port, unmatched.data, unmatched.length,
                                   "unmatched name, no default");
    expect_closed_without_upstream(proxy_port, no_sni.data, no_sni.length, "no SNI, no default");
    expect_closed_without_upstream(proxy_port, http, strlen(http), "plain HTTP, no default");
    cr_expect_eq(backend_accepted(&bravo_backend), 0, "a connection reached the only upstream");
    expect_routed(proxy_port, matched.data, matched.length, matched.length, &bravo_backend,
                  "matching name still routed");

    hello_free(&unmatched);
    hello_free(&no_sni);
    hello_free(&matched);
    free(config);
    free(body);
    expect_clean_exit();
}

/* nginx's sslh recipe, `map $ssl_preread_protocol $u { "" ssh; default
 * https; }`: SSH (whose client sends its banner at once) and HTTPS on one
 * port. Only clients that are not TLS take not_tls; TLS without SNI and
 * unknown names still take the default. */
Test(routing, clients_that_do_not_speak_tls, .init = integration_init, .fini = routing_fini)
{
    uint16_t proxy_port = TEST_PORT(106, 0);
    cr_assert(backend_start(&alpha_backend, "alpha", TEST_PORT(106, 1), NULL, NULL));
    cr_assert(backend_start(&bravo_backend, "bravo", TEST_PORT(106, 2), NULL, NULL));
    cr_assert(backend_start(&charlie_backend, "charlie", TEST_PORT(106, 3), NULL, NULL));
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = alpha\nnot_tls = ssh\ndefault = web\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n"
                             "[upstream ssh]\nserver = 127.0.0.1:%u\n"
                             "[upstream web]\nserver = 127.0.0.1:%u\n",
                             TEST_PORT(106, 1), TEST_PORT(106, 2), TEST_PORT(106, 3));
    char *config = config_text(proxy_port, NULL, body);
    cr_assert(proxy_start(&routing_proxy, config, proxy_port), "snisplice did not start");

    const char ssh[] = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";
    const char http[] = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    struct hello_bytes no_sni = hello_build(NULL);
    struct hello_bytes unknown = hello_build("unknown.example.org");
    cr_assert_not_null(chromium.data);
    expect_routed(proxy_port, ssh, strlen(ssh), strlen(ssh), &bravo_backend, "an SSH banner");
    expect_routed(proxy_port, ssh, strlen(ssh), 3, &bravo_backend, "an SSH banner in pieces");
    expect_routed(proxy_port, http, strlen(http), strlen(http), &bravo_backend, "plain HTTP");
    expect_routed(proxy_port, chromium.data, chromium.length, chromium.length, &alpha_backend, "a named hello");
    expect_routed(proxy_port, no_sni.data, no_sni.length, no_sni.length, &charlie_backend, "a hello without SNI");
    expect_routed(proxy_port, unknown.data, unknown.length, unknown.length, &charlie_backend, "an unknown name");

    hello_free(&chromium);
    hello_free(&no_sni);
    hello_free(&unknown);
    free(config);
    free(body);
    expect_clean_exit();
}

/* `server = localhost:PORT` and a literal target `localhost:PORT`, as
 * docker-compose users write `server synapse:8448`: the names are resolved
 * when the config loads and the bytes reach the backends unchanged. */
Test(routing, servers_named_by_host_name, .init = integration_init, .fini = routing_fini)
{
    uint16_t proxy_port = TEST_PORT(104, 0);
    cr_assert(backend_start(&alpha_backend, "alpha", TEST_PORT(104, 1), NULL, NULL));
    cr_assert(backend_start(&bravo_backend, "bravo", TEST_PORT(104, 2), NULL, NULL));
    char *body = text_format("[routes]\n"
                             "matrix.exceptionerror.io = matrix\n"
                             "default = localhost:%u\n"
                             "[upstream matrix]\nserver = localhost:%u\n",
                             TEST_PORT(104, 2), TEST_PORT(104, 1));
    char *config = config_text(proxy_port, "preread_timeout = 5s\n", body);
    cr_assert(proxy_start(&routing_proxy, config, proxy_port), "snisplice did not start");

    struct hello_bytes matrix = hello_build("matrix.exceptionerror.io");
    struct hello_bytes other = hello_build("blog.example.net");
    expect_routed(proxy_port, matrix.data, matrix.length, matrix.length, &alpha_backend,
                  "upstream server named localhost");
    expect_routed(proxy_port, other.data, other.length, other.length, &bravo_backend,
                  "literal target named localhost");

    hello_free(&matrix);
    hello_free(&other);
    free(config);
    free(body);
    expect_clean_exit();
}

/* nginx matches a "~" expression against the server name as the client
 * sent it (OpenSSL's s_client and Python send it as typed), a "~*" one
 * caselessly; exact names compare lower-cased either way. */
Test(routing, case_sensitive_expressions_see_the_name_as_sent, .init = integration_init, .fini = routing_fini)
{
    uint16_t proxy_port = TEST_PORT(156, 0);
    cr_assert(backend_start(&alpha_backend, "alpha", TEST_PORT(156, 1), NULL, NULL));
    cr_assert(backend_start(&bravo_backend, "bravo", TEST_PORT(156, 2), NULL, NULL));
    cr_assert(backend_start(&charlie_backend, "charlie", TEST_PORT(156, 3), NULL, NULL));
    char *body = text_format("[routes]\n~^Matrix\\.example\\.com$ = 127.0.0.1:%u\n"
                             "~*^element\\.example\\.com$ = 127.0.0.1:%u\n"
                             "blog.example.com = 127.0.0.1:%u\n"
                             "default = 127.0.0.1:%u\n",
                             TEST_PORT(156, 1), TEST_PORT(156, 2), TEST_PORT(156, 1), TEST_PORT(156, 3));
    char *config = config_text(proxy_port, NULL, body);
    cr_assert(proxy_start(&routing_proxy, config, proxy_port), "snisplice did not start");
    static const struct { const char *name; struct backend *backend; } cases[] = {
        { "Matrix.example.com", &alpha_backend },  { "matrix.example.com", &charlie_backend },
        { "MATRIX.example.com", &charlie_backend }, { "ELEMENT.Example.COM", &bravo_backend },
        { "element.example.com", &bravo_backend }, { "BLOG.Example.com", &alpha_backend },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hello_bytes hello = hello_build(cases[i].name);
        expect_routed(proxy_port, hello.data, hello.length, hello.length, cases[i].backend, cases[i].name);
        hello_free(&hello);
    }
    free(config);
    free(body);
    expect_clean_exit();
}
