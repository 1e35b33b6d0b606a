/*
 * test_import.c - migrating from nginx end to end: `snisplice
 * --import-nginx nginx.conf` on the homelab stream block (plus a plain TCP
 * server block, an http block and a regex map entry), the INI it prints
 * passes `-t`, and snisplice running it routes like nginx did: two names
 * and a regular expression to two upstreams, and the plain forward with
 * its allow/deny rules and its limit_conn of one connection per client
 * address. And nginx's sslh recipe, a map on
 * $ssl_preread_protocol, puts SSH and HTTPS on one port here too.
 * Ports: blocks 60 and 107.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy import_proxy;
static struct backend matrix_backend;
static struct backend local_backend;
static struct backend ssh_backend;
static struct backend https_backend;

static void import_fini(void)
{
    proxy_release(&import_proxy);
    integration_cleanup();
}

/* Run `snisplice --import-nginx path`: exit code; stdout and stderr apart. */
static int run_import(const char *directory, const char *path, char **ini, char **warnings)
{
    char *out_path = text_format("%s/out.ini", directory);
    char *err_path = text_format("%s/warnings.txt", directory);
    const char *argv[] = { proxy_binary(), "--import-nginx", path, NULL };
    struct child_spawn_options options = { NULL, NULL, out_path, err_path };
    pid_t pid = child_spawn(argv, &options);
    cr_assert_gt(pid, 0);
    int status = child_wait(pid, 15000);
    *ini = file_read_all(out_path, NULL);
    *warnings = file_read_all(err_path, NULL);
    free(out_path);
    free(err_path);
    return status;
}

/* Write `nginx` as DIRECTORY/nginx.conf (its path into *nginx_path, for
 * the caller to free) and convert it, which must succeed: the INI. */
static char *import_nginx_text(const char *directory, const char *nginx, char **nginx_path, char **warnings)
{
    *nginx_path = temp_file_write(directory, "nginx.conf", nginx);
    char *ini = NULL;
    int status = run_import(directory, *nginx_path, &ini, warnings);
    cr_assert_eq(status, 0, "--import-nginx exit %d:\n%s", status, *warnings);
    cr_assert_not_null(ini);
    return ini;
}

/* The output is a config snisplice accepts as it is: `snisplice -t`. */
static void expect_valid_config(const char *directory, const char *ini)
{
    char *ini_path = temp_file_write(directory, "snisplice.ini", ini);
    const char *check[] = { proxy_binary(), "-t", "-c", ini_path, NULL };
    char *check_output = NULL;
    int status = child_run(check, NULL, NULL, 15000, &check_output);
    cr_expect_eq(status, 0, "-t on the converted INI: %s\n%s", check_output, ini);
    free(check_output);
    free(ini_path);
}

/* A connection from `source` that the proxy closes unanswered. */
static void expect_refused_from(const char *source, uint16_t port)
{
    bool closed = false;
    char *reply = exchange_from(source, port, "hello", 5, 5000, &closed);
    cr_expect(reply && closed && reply[0] == '\0', "%s was served: '%s'", source, reply ? reply : "(no connect)");
    free(reply);
}

/* A whole exchange from `source`: the backend answered. */
static bool served_from(const char *source, uint16_t port, const char *backend)
{
    char *reply = exchange_from(source, port, "hello", 5, 5000, NULL);
    char want[40];
    snprintf(want, sizeof want, "%s\n", backend);
    bool served = reply && strcmp(reply, want) == 0;
    free(reply);
    return served;
}

/* The plain block's `limit_conn perip 1`: while 127.0.0.7 holds one
 * connection (relayed, so counted), its next one is closed unanswered,
 * and other clients are still served. */
static void expect_one_connection_per_client(uint16_t port, struct backend *backend)
{
    unsigned accepted = backend_accepted(backend);
    int held = net_connect_from("127.0.0.7", port);
    cr_assert_geq(held, 0);
    net_set_timeouts(held, 5000);
    cr_assert(net_send_all(held, "hold", 4));
    for (int i = 0; i < 500 && backend_accepted(backend) == accepted; i++)
        sleep_ms(10);
    cr_assert_gt(backend_accepted(backend), accepted, "the held connection from 127.0.0.7 was not relayed");
    expect_refused_from("127.0.0.7", port);
    cr_expect(served_from("127.0.0.8", port, backend->name), "127.0.0.8 was not served beside it");
    close(held);
}

Test(import, homelab_nginx_conf_converts_and_routes, .init = integration_init, .fini = import_fini)
{
    uint16_t tls_port = TEST_PORT(60, 0), plain_port = TEST_PORT(60, 1);
    uint16_t matrix_port = TEST_PORT(60, 2), local_port = TEST_PORT(60, 3);
    cr_assert(backend_start(&matrix_backend, "matrix", matrix_port, NULL, NULL));
    cr_assert(backend_start(&local_backend, "local", local_port, NULL, NULL));
    char *directory = temp_directory_create("import");
    char *nginx = text_format(
        "worker_processes 1;\n"
        "events { worker_connections 1024; }\n"
        "http { server { listen 80; } }\n"
        "stream {\n"
        "    map $ssl_preread_server_name $name {\n"
        "        matrix.exceptionerror.io    https_matrix_backend;\n"
        "        element.exceptionerror.io   https_matrix_backend;\n"
        "        robrotheram.com             local_https_backend;\n"
        "        blog.robrotheram.com        local_https_backend;\n"
        "        ~^www\\.(.+)$                https_matrix_backend;\n"
        "    }\n"
        "    upstream https_matrix_backend { server 127.0.0.1:%u; }\n"
        "    upstream local_https_backend  { server 127.0.0.1:%u; }\n"
        "    limit_conn_zone $binary_remote_addr zone=perip:1m;\n"
        "    server { listen 127.0.0.1:%u; proxy_pass $name; ssl_preread on; preread_timeout 5s; }\n"
        "    server { listen 127.0.0.1:%u; proxy_pass local_https_backend;\n"
        "             deny 127.0.0.9; allow 127.0.0.0/8; deny all; limit_conn perip 1; }\n"
        "}\n",
        matrix_port, local_port, tls_port, plain_port);
    char *nginx_path = NULL, *warnings = NULL;
    char *ini = import_nginx_text(directory, nginx, &nginx_path, &warnings);
    char *expected = text_format("%s:2: warning: events { }", nginx_path);
    cr_expect(strstr(warnings, expected) != NULL, "warnings:\n%s", warnings);
    free(expected);
    expected = text_format("%s:10:", nginx_path);
    cr_expect(strstr(warnings, expected) == NULL, "the regular expression is carried over:\n%s", warnings);
    free(expected);
    cr_expect(strstr(ini, "~^www\\.(.+)$ = https_matrix_backend\n") != NULL, "%s", ini);
    cr_expect(strstr(ini, "warning") == NULL, "warnings leaked into the INI:\n%s", ini);
    cr_expect(strstr(ini, "deny = all\nmax_connections_per_client = 1\n") != NULL, "%s", ini);
    cr_expect(strstr(warnings, "limit_conn") == NULL, "the limit is carried over as it is:\n%s", warnings);

    expect_valid_config(directory, ini);
    cr_assert(proxy_start(&import_proxy, ini, tls_port), "snisplice did not start on:\n%s", ini);
    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    struct hello_bytes blog = hello_build("blog.robrotheram.com");
    struct hello_bytes www = hello_build("www.robrotheram.com");
    cr_assert_not_null(chromium.data);
    char *reply = exchange_once(tls_port, chromium.data, chromium.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "matrix\n") == 0, "matrix.exceptionerror.io went to '%s'", reply);
    free(reply);
    reply = exchange_once(tls_port, blog.data, blog.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "local\n") == 0, "blog.robrotheram.com went to '%s'", reply);
    free(reply);
    reply = exchange_once(tls_port, www.data, www.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "matrix\n") == 0, "www.robrotheram.com (by the expression) went to '%s'", reply);
    free(reply);
    reply = exchange_once(plain_port, "hello", 5, 5000, NULL);
    cr_expect(reply && strcmp(reply, "local\n") == 0, "the plain server block went to '%s'", reply);
    free(reply);
    /* Its `deny 127.0.0.9` came along: that client is closed unanswered. */
    expect_refused_from("127.0.0.9", plain_port);
    expect_one_connection_per_client(plain_port, &local_backend);

    hello_free(&chromium);
    hello_free(&blog);
    hello_free(&www);
    free(ini);
    free(warnings);
    free(nginx_path);
    free(nginx);
    free(directory);
    cr_expect_eq(proxy_stop(&import_proxy, 10000), 0);
}

/* nginx's sslh recipe, as its users write it: "" (not TLS) to SSH, the
 * TLS versions to HTTPS. Converted without a warning, it sends an SSH
 * client's banner to the SSH server and TLS hellos, with a server name or
 * without, to the HTTPS one. */
Test(import, sslh_recipe_puts_ssh_and_https_on_one_port, .init = integration_init, .fini = import_fini)
{
    uint16_t proxy_port = TEST_PORT(107, 0), ssh_port = TEST_PORT(107, 1), https_port = TEST_PORT(107, 2);
    cr_assert(backend_start(&ssh_backend, "ssh", ssh_port, NULL, NULL));
    cr_assert(backend_start(&https_backend, "https", https_port, NULL, NULL));
    char *directory = temp_directory_create("import-sslh");
    char *nginx = text_format(
        "stream {\n"
        "    map $ssl_preread_protocol $upstream {\n"
        "        \"\"        ssh;\n"
        "        \"TLSv1.2\" https;\n"
        "        default   https;\n"
        "    }\n"
        "    upstream ssh   { server 127.0.0.1:%u; }\n"
        "    upstream https { server 127.0.0.1:%u; }\n"
        "    server { listen 127.0.0.1:%u; proxy_pass $upstream; ssl_preread on; }\n"
        "}\n",
        ssh_port, https_port, proxy_port);
    char *nginx_path = NULL, *warnings = NULL;
    char *ini = import_nginx_text(directory, nginx, &nginx_path, &warnings);
    cr_expect(warnings && warnings[0] == '\0', "warnings:\n%s", warnings);
    cr_expect(strstr(ini, "[routes]\nnot_tls = ssh\ndefault = https\n") != NULL, "%s", ini);
    expect_valid_config(directory, ini);

    cr_assert(proxy_start(&import_proxy, ini, proxy_port), "snisplice did not start on:\n%s", ini);
    const char banner[] = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";
    struct hello_bytes chromium = hello_load_capture(HELLO_CHROMIUM);
    struct hello_bytes no_sni = hello_build(NULL);
    cr_assert_not_null(chromium.data);
    char *reply = exchange_once(proxy_port, banner, strlen(banner), 5000, NULL);
    cr_expect(reply && strcmp(reply, "ssh\n") == 0, "an SSH banner went to '%s'", reply);
    free(reply);
    reply = exchange_once(proxy_port, chromium.data, chromium.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "https\n") == 0, "a TLS hello with a server name went to '%s'", reply);
    free(reply);
    reply = exchange_once(proxy_port, no_sni.data, no_sni.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "https\n") == 0, "a TLS hello without one went to '%s'", reply);
    free(reply);

    hello_free(&chromium);
    hello_free(&no_sni);
    free(ini);
    free(warnings);
    free(nginx_path);
    free(nginx);
    free(directory);
    cr_expect_eq(proxy_stop(&import_proxy, 10000), 0);
}

/* The Reality recipes' sink for probes: a server-name map's "" entry,
 * which nginx gives every client without a server name. Converted, a
 * client that does not speak TLS (a scanner's HTTP request) still reaches
 * the sink, not the real site behind `default`. */
Test(import, empty_name_entry_keeps_clients_that_do_not_speak_tls, .init = integration_init, .fini = import_fini)
{
    uint16_t proxy_port = TEST_PORT(230, 0), sink_port = TEST_PORT(230, 1), web_port = TEST_PORT(230, 2);
    cr_assert(backend_start(&ssh_backend, "sink", sink_port, NULL, NULL));
    cr_assert(backend_start(&https_backend, "web", web_port, NULL, NULL));
    char *directory = temp_directory_create("import-empty-name");
    char *nginx = text_format(
        "stream {\n"
        "    map $ssl_preread_server_name $backend {\n"
        "        \"\"              127.0.0.1:%u;\n"
        "        www.helsinki.fi 127.0.0.1:%u;\n"
        "        default         127.0.0.1:%u;\n"
        "    }\n"
        "    server { listen 127.0.0.1:%u; proxy_pass $backend; ssl_preread on; }\n"
        "}\n",
        sink_port, web_port, web_port, proxy_port);
    char *nginx_path = NULL, *warnings = NULL;
    char *ini = import_nginx_text(directory, nginx, &nginx_path, &warnings);
    cr_expect(warnings && strstr(warnings, "nginx.conf:3: warning: map entry \"\": becomes not_tls"), "%s", warnings);
    expect_valid_config(directory, ini);

    cr_assert(proxy_start(&import_proxy, ini, proxy_port), "snisplice did not start on:\n%s", ini);
    const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    char *reply = exchange_once(proxy_port, request, strlen(request), 5000, NULL);
    cr_expect(reply && strcmp(reply, "sink\n") == 0, "a plain HTTP request went to '%s'", reply);
    free(reply);
    struct hello_bytes named = hello_build("www.helsinki.fi");
    cr_assert_not_null(named.data);
    reply = exchange_once(proxy_port, named.data, named.length, 5000, NULL);
    cr_expect(reply && strcmp(reply, "web\n") == 0, "a TLS hello for www.helsinki.fi went to '%s'", reply);
    free(reply);

    hello_free(&named);
    free(ini);
    free(warnings);
    free(nginx_path);
    free(nginx);
    free(directory);
    cr_expect_eq(proxy_stop(&import_proxy, 10000), 0);
}

Test(import, unreadable_or_broken_nginx_conf_exits_1, .init = integration_init, .fini = import_fini)
{
    char *directory = temp_directory_create("import-bad");
    char *path = temp_file_write(directory, "nginx.conf", "stream {\n  server { listen 443;\n");
    char *ini = NULL, *warnings = NULL;
    int status = run_import(directory, path, &ini, &warnings);
    cr_expect_eq(status, 1);
    char *expected = text_format("%s:3: unexpected end of file", path);
    cr_expect(warnings && strstr(warnings, expected), "stderr: %s", warnings);
    cr_expect(ini && ini[0] == '\0', "nothing on stdout when the input is broken: %s", ini);
    free(expected);
    free(ini);
    free(warnings);
    free(path);
    path = text_format("%s/missing.conf", directory);
    status = run_import(directory, path, &ini, &warnings);
    cr_expect_eq(status, 1);
    cr_expect(warnings && strstr(warnings, "cannot read"), "stderr: %s", warnings);
    free(ini);
    free(warnings);
    free(path);
    free(directory);
}

/* `--import-nginx nginx.conf > snisplice.ini` on a full disk: an INI
 * longer than stdio's buffer fails in the middle, not at the final flush,
 * and must still end in exit 1 with the reason, not 0 and a cut file. */
Test(import, an_ini_that_cannot_be_written_exits_1, .init = integration_init, .fini = import_fini)
{
    char *directory = temp_directory_create("import-full");
    char *nginx = text_format("stream {\n  map $ssl_preread_server_name $backend {\n    hostnames;\n");
    for (int i = 0; i < 400; i++) {
        char *longer = text_format("%s    host-%d.example.com web;\n", nginx, i);
        free(nginx);
        nginx = longer;
    }
    char *complete = text_format("%s  }\n  upstream web { server 127.0.0.1:8443; }\n"
                                 "  server { listen 443; ssl_preread on; proxy_pass $backend; }\n}\n", nginx);
    char *path = temp_file_write(directory, "nginx.conf", complete);
    char *err_path = text_format("%s/warnings.txt", directory);
    const char *argv[] = { proxy_binary(), "--import-nginx", path, NULL };
    struct child_spawn_options options = { NULL, NULL, "/dev/full", err_path };
    pid_t pid = child_spawn(argv, &options);
    cr_assert_gt(pid, 0);
    int status = child_wait(pid, 15000);
    char *warnings = file_read_all(err_path, NULL);
    cr_expect_eq(status, 1, "exit %d on a full disk; stderr: %s", status, warnings);
    cr_expect(warnings && strstr(warnings, "No space left on device"), "stderr: %s", warnings);
    free(warnings);
    free(err_path);
    free(path);
    free(complete);
    free(nginx);
    free(directory);
}
