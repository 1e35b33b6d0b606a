/*
 * test_tls_tools.c - TLS end to end with real clients and servers: curl and
 * openssl s_client through snisplice to `openssl s_server -WWW` backends,
 * each serving an id.txt naming itself. Checks exact, wildcard (depth 1 and
 * 2), dot-apex and default routing as a browser user would hit them.
 * Ports: block 0.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../support/integration.h"
#include "../support/tls_tools.h"

static struct proxy tls_proxy;

static void tls_fini(void)
{
    proxy_release(&tls_proxy);
    integration_cleanup();
}

/* Body of https://NAME/id.txt fetched by curl through 127.0.0.1:port (malloc'd). */
static char *curl_id(const char *name, uint16_t port, int *exit_code)
{
    char *connect_to = text_format("%s:443:127.0.0.1:%u", name, port);
    char *url = text_format("https://%s/id.txt", name);
    const char *argv[] = {"curl", "-sSk", "--max-time", "10", "--connect-to", connect_to, url,
                          NULL};
    char *output = NULL;
    *exit_code = child_run(argv, NULL, NULL, 15000, &output);
    free(connect_to);
    free(url);
    return output;
}

static void expect_curl_reaches(const char *name, uint16_t port, const char *expected_id)
{
    int exit_code = 0;
    char *output = curl_id(name, port, &exit_code);
    char *expected = text_format("%s\n", expected_id);
    cr_expect(exit_code == 0 && strcmp(output, expected) == 0,
              "curl https://%s/id.txt via proxy: exit %d, got \"%s\", want \"%s\"", name,
              exit_code, output, expected_id);
    free(expected);
    free(output);
}

Test(tls_tools, curl_and_s_client_reach_the_routed_backend, .init = integration_init,
     .fini = tls_fini)
{
    uint16_t proxy_port = TEST_PORT(0, 0);
    uint16_t port_a = TEST_PORT(0, 1), port_b = TEST_PORT(0, 2), port_c = TEST_PORT(0, 3);
    char *directory = temp_directory_create("tls");
    struct tls_certificate certificate;
    cr_assert(tls_certificate_create(directory, &certificate), "openssl req failed");
    cr_assert(tls_server_start(&certificate, "alpha", port_a) > 0, "s_server alpha did not start");
    cr_assert(tls_server_start(&certificate, "bravo", port_b) > 0, "s_server bravo did not start");
    cr_assert(tls_server_start(&certificate, "charlie", port_c) > 0,
              "s_server charlie did not start");

    int exit_code = 0;
    char *direct = curl_id("localhost", port_b, &exit_code);
    cr_assert(exit_code == 0 && strcmp(direct, "bravo\n") == 0,
              "harness: s_server direct via curl gave exit %d \"%s\"", exit_code, direct);
    free(direct);

    char *body = text_format("[routes]\n"
                             "matrix.exceptionerror.io = alpha\n"
                             "*.example.com = bravo\n"
                             ".example.org = charlie\n"
                             "default = alpha\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n"
                             "[upstream bravo]\nserver = 127.0.0.1:%u\n"
                             "[upstream charlie]\nserver = 127.0.0.1:%u\n",
                             port_a, port_b, port_c);
    char *config = config_text(proxy_port, "preread_timeout = 5s\nconnect_timeout = 2s\n", body);
    cr_assert(proxy_start(&tls_proxy, config, proxy_port), "snisplice did not start");

    expect_curl_reaches("matrix.exceptionerror.io", proxy_port, "alpha");
    expect_curl_reaches("one.example.com", proxy_port, "bravo");
    expect_curl_reaches("deep.two.example.com", proxy_port, "bravo");
    expect_curl_reaches("example.org", proxy_port, "charlie");
    expect_curl_reaches("www.example.org", proxy_port, "charlie");
    expect_curl_reaches("example.com", proxy_port, "alpha");     /* wildcard is not the apex */
    expect_curl_reaches("nomatch.invalid", proxy_port, "alpha"); /* default */
    expect_curl_reaches("MATRIX.ExceptionError.IO", proxy_port, "alpha");

    char *request = temp_file_write(directory, "request.txt", "GET /id.txt HTTP/1.0\r\n\r\n");
    char *connect = text_format("127.0.0.1:%u", proxy_port);
    const char *s_client[] = {"openssl", "s_client", "-connect", connect, "-servername",
                              "www.example.org", "-quiet", NULL};
    char *output = NULL;
    exit_code = child_run(s_client, NULL, request, 15000, &output);
    cr_expect(exit_code != CHILD_TIMED_OUT, "s_client did not finish");
    cr_expect(strstr(output, "\r\n\r\ncharlie\n") != NULL,
              "s_client -servername www.example.org should get charlie's id.txt, got: %s", output);
    free(output);

    int status = proxy_stop(&tls_proxy, 10000);
    char *log = proxy_stderr(&tls_proxy);
    cr_expect_eq(status, 0, "snisplice exit %d, stderr:\n%s", status, log);
    free(log);
    free(request);
    free(connect);
    free(config);
    free(body);
    tls_certificate_free(&certificate);
    free(directory);
}
