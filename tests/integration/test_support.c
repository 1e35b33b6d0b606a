/*
 * test_support.c - the test harness checked on its own, without snisplice:
 * synthetic hellos are real TLS to openssl, the transfer and identify
 * backends work over a direct connection, child_run reports exit codes and
 * kills on timeout. A failure here means the harness, not the proxy, is wrong.
 * Ports: blocks 40-42.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/integration.h"
#include "../support/tls_tools.h"
#include "../support/transfer.h"

static struct backend support_backend;
static struct transfer support_transfer;

static void support_fini(void)
{
    integration_cleanup();
}

/* Send a hello straight to s_server; true when a TLS handshake record comes back. */
static bool server_answers_with_handshake(uint16_t port, const struct hello_bytes *hello)
{
    int fd = net_connect(port);
    if (fd < 0)
        return false;
    net_send_all(fd, hello->data, hello->length);
    uint8_t header[5] = {0};
    size_t got = net_receive_exact(fd, header, sizeof header, 5000);
    close(fd);
    return got == sizeof header && header[0] == 0x16 && header[1] == 0x03;
}

Test(support, synthetic_hellos_are_accepted_by_openssl, .init = integration_init,
     .fini = support_fini)
{
    char *directory = temp_directory_create("support-tls");
    struct tls_certificate certificate;
    cr_assert(tls_certificate_create(directory, &certificate), "openssl req failed");
    uint16_t port = TEST_PORT(40, 0);
    cr_assert(tls_server_start(&certificate, "direct", port) > 0, "s_server did not start");

    struct hello_bytes hello = hello_build("support.example.com");
    cr_expect(server_answers_with_handshake(port, &hello), "one-record hello rejected by openssl");
    struct hello_bytes split = hello_split_records(&hello, 40);
    cr_expect(split.length > hello.length + 5, "split hello should carry several record headers");
    cr_expect(server_answers_with_handshake(port, &split),
              "multi-record hello rejected by openssl");
    struct hello_bytes no_sni = hello_build(NULL);
    cr_expect(server_answers_with_handshake(port, &no_sni),
              "hello without SNI rejected by openssl");

    hello_free(&hello);
    hello_free(&split);
    hello_free(&no_sni);
    tls_certificate_free(&certificate);
    free(directory);
}

Test(support, captures_load, .init = integration_init, .fini = support_fini)
{
    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(chromium.data, "cannot read %s/clienthello/%s", hello_shared_directory(),
                       HELLO_CHROMIUM);
    cr_expect_eq(chromium.length, 1932);
    cr_expect_eq(chromium.data[0], 0x16);
    hello_free(&chromium);
}

Test(support, direct_transfer_is_byte_exact, .init = integration_init, .fini = support_fini)
{
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(hello.data);
    uint16_t port = TEST_PORT(41, 0);
    struct transfer_plan plan = {.hello = &hello, .client_bytes = 8u << 20,
                                 .backend_bytes = (8u << 20) + 12345};
    transfer_init(&support_transfer, &plan, port);
    cr_assert(backend_start(&support_backend, "transfer", port, transfer_backend_handler,
                            &support_transfer));
    transfer_client_start(&support_transfer);
    transfer_client_join(&support_transfer);
    cr_assert(transfer_backend_wait(&support_transfer, 10000));
    char description[512];
    transfer_describe(&support_transfer, description, sizeof description);
    cr_expect(transfer_succeeded(&support_transfer), "%s", description);
    backend_stop(&support_backend);
    hello_free(&hello);
}

Test(support, identify_backend_answers_and_records, .init = integration_init, .fini = support_fini)
{
    uint16_t port = TEST_PORT(42, 0);
    cr_assert(backend_start(&support_backend, "alpha", port, NULL, NULL));
    bool closed = false;
    char *reply = exchange_once(port, "ping", 4, 5000, &closed);
    cr_assert_not_null(reply);
    cr_expect_str_eq(reply, "alpha\n");
    cr_expect(closed);
    uint8_t recorded[16];
    cr_expect(backend_wait_finished(&support_backend, 1, 2000));
    size_t length = backend_last_received(&support_backend, recorded, sizeof recorded);
    cr_expect(length == 4 && memcmp(recorded, "ping", 4) == 0);
    free(reply);
    backend_stop(&support_backend);
}

Test(support, child_run_reports_exit_and_timeout, .init = integration_init, .fini = support_fini)
{
    const char *echo[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    char *output = NULL;
    cr_expect_eq(child_run(echo, NULL, NULL, 5000, &output), 3);
    cr_expect(strstr(output, "out") && strstr(output, "err"), "output: %s", output);
    free(output);
    const char *sleeper[] = {"sleep", "30", NULL};
    long long start = monotonic_ms();
    cr_expect_eq(child_run(sleeper, NULL, NULL, 300, NULL), CHILD_TIMED_OUT);
    cr_expect_lt(monotonic_ms() - start, 3000);
}

/* net_wait_listening reads /proc/net/tcp: it must see a listener without
 * connecting, and not see one that is not there. */
Test(support, wait_listening_sees_listeners_only, .init = integration_init, .fini = support_fini)
{
    uint16_t port = TEST_PORT(42, 10);
    long long started = monotonic_ms();
    cr_expect_not(net_wait_listening(port, 100), "a port nobody listens on was reported listening");
    cr_expect_geq(monotonic_ms() - started, 100);
    int fd = net_listen(port);
    cr_assert_geq(fd, 0);
    cr_expect(net_wait_listening(port, 1000), "a listening socket was not seen");
    close(fd);
}
