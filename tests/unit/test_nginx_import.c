/*
 * test_nginx_import.c - `--import-nginx`: nginx stream configuration to the
 * INI, every form the issue names, warnings with FILE:LINE for what cannot
 * be carried over, and the output accepted by the INI loader.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../config/config.h"
#include "../../config/nginx_import.h"
#include "../../core/route_table.h"
#include "../../core/snapshot.h"

static const char homelab[] =
    "stream {\n"
    "    map $ssl_preread_server_name $name {\n"
    "        matrix.exceptionerror.io    https_matrix_backend;\n"
    "        element.exceptionerror.io   https_matrix_backend;\n"
    "        dimension.exceptionerror.io https_matrix_backend;\n"
    "        robrotheram.com             local_https_backend;\n"
    "        blog.robrotheram.com        local_https_backend;\n"
    "        gallery.robrotheram.com     local_https_backend;\n"
    "        exceptionerror.io           local_https_backend;\n"
    "        watch2gether.exceptionerror.io local_https_backend;\n"
    "    }\n"
    "    upstream https_matrix_backend { server 127.0.0.1:12443; }\n"
    "    upstream local_https_backend  { server 127.0.0.1:8443; }\n"
    "    server { listen 0.0.0.0:443; proxy_pass $name; ssl_preread on; }\n"
    "}\n";

static struct nginx_import import_text(const char *text)
{
    struct nginx_tree tree;
    struct nginx_parse_options options = { "/nonexistent", false };
    char error[512];
    bool parsed = nginx_parse_text(&tree, "nginx.conf", text, strlen(text), &options, error, sizeof error);
    cr_assert(parsed, "parse failed: %s", error);
    struct nginx_import result;
    cr_assert(nginx_import_tree(&tree, "nginx.conf", &result));
    nginx_tree_free(&tree);
    return result;
}

static bool has_warning(const struct nginx_import *result, const char *prefix, const char *part)
{
    for (size_t i = 0; i < result->warning_count; i++)
        if (strncmp(result->warnings[i], prefix, strlen(prefix)) == 0 && strstr(result->warnings[i], part))
            return true;
    return false;
}

/* Warnings that start with `prefix` and contain `part`. */
static size_t count_warnings(const struct nginx_import *result, const char *prefix, const char *part)
{
    size_t count = 0;
    for (size_t i = 0; i < result->warning_count; i++)
        if (strncmp(result->warnings[i], prefix, strlen(prefix)) == 0 && strstr(result->warnings[i], part))
            count++;
    return count;
}

static bool has_exact_warning(const struct nginx_import *result, const char *text)
{
    for (size_t i = 0; i < result->warning_count; i++)
        if (strcmp(result->warnings[i], text) == 0)
            return true;
    return false;
}

static void log_warnings(const struct nginx_import *result)
{
    for (size_t i = 0; i < result->warning_count; i++)
        cr_log_info("%s", result->warnings[i]);
}

/* The converted INI as the loader reads it; NULL (with the loader's
 * errors logged) when it does not load. */
static struct config *load_converted(const char *ini)
{
    char path[] = "/tmp/snisplice-import-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
    close(fd);
    struct config_errors errors = { 0 };
    struct config *config = config_load(path, &errors);
    for (size_t i = 0; i < errors.count; i++)
        cr_log_error("%s", errors.lines[i]);
    config_errors_free(&errors);
    unlink(path);
    return config;
}

/* The INI loader must accept the output as it is. */
static void expect_loadable(const char *ini)
{
    struct config *config = load_converted(ini);
    cr_expect_not_null(config, "the converted INI does not load:\n%s", ini);
    config_free(config);
}

Test(nginx_import, homelab_block_converts_without_warnings)
{
    struct nginx_import result = import_text(homelab);
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    const char *expected =
        "[listen]\n"
        "address = 0.0.0.0:443\n"
        "\n"
        "[routes]\n"
        "matrix.exceptionerror.io = https_matrix_backend\n"
        "element.exceptionerror.io = https_matrix_backend\n"
        "dimension.exceptionerror.io = https_matrix_backend\n"
        "robrotheram.com = local_https_backend\n"
        "blog.robrotheram.com = local_https_backend\n"
        "gallery.robrotheram.com = local_https_backend\n"
        "exceptionerror.io = local_https_backend\n"
        "watch2gether.exceptionerror.io = local_https_backend\n"
        "\n"
        "[upstream https_matrix_backend]\n"
        "server = 127.0.0.1:12443\n"
        "\n"
        "[upstream local_https_backend]\n"
        "server = 127.0.0.1:8443\n";
    cr_expect(strstr(result.ini, expected) != NULL, "got:\n%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

Test(nginx_import, hostnames_forms_and_default)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $target {\n"
        "    hostnames;\n"
        "    *.example.com   wild;\n"
        "    .example.org    org;\n"
        "    Exact.Example.NET 127.0.0.1:9000;\n"
        "    default         wild;\n"
        "  }\n"
        "  upstream wild { server 127.0.0.1:9001; }\n"
        "  upstream org { server [::1]:9002; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $target; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "*.example.com = wild\n.example.org = org\n"
                                 "Exact.Example.NET = 127.0.0.1:9000\ndefault = wild\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "server = [::1]:9002\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

Test(nginx_import, what_cannot_be_carried_over_is_a_warning_with_its_line)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                   /* 1 */
        "  map $ssl_preread_server_name $target {\n"                   /* 2 */
        "    ~^(?!www\\.)shop\\.example\\.com$ shop;\n"                /* 3 */
        "    *.example.com shop;\n"                                    /* 4 */
        "    www.example.* shop;\n"                                    /* 5 */
        "    known.example.net nowhere;\n"                             /* 6 */
        "    default shop;\n"                                          /* 7 */
        "  }\n"                                                        /* 8 */
        "  upstream shop {\n"                                          /* 9 */
        "    least_time connect;\n"                                    /* 10 */
        "    server 127.0.0.1:9001 weight=3 max_fails=2 fail_timeout=30s max_conns=10;\n" /* 11 */
        "    server backend.internal;\n"                               /* 12 */
        "    server 127.0.0.1:9003 backup;\n"                          /* 13 */
        "  }\n"                                                        /* 14 */
        "  log_format basic '$remote_addr';\n"                         /* 15 */
        "  server {\n"                                                 /* 16 */
        "    listen 443 ssl;\n"                                        /* 17 */
        "    listen 53 udp;\n"                                         /* 18 */
        "    ssl_preread on;\n"                                        /* 19 */
        "    proxy_pass $target;\n"                                    /* 20 */
        "    proxy_buffer_size 16k;\n"                                 /* 21 */
        "  }\n"                                                        /* 22 */
        "}\n"                                                          /* 23 */
        "http { server { listen 80; } }\n");                           /* 24 */
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:3:", "look-around"));
    cr_expect(has_warning(&result, "nginx.conf:4:", "without 'hostnames'"));
    cr_expect(has_warning(&result, "nginx.conf:5:", "without 'hostnames'"));
    cr_expect(has_warning(&result, "nginx.conf:6:", "'nowhere'"));
    cr_expect(has_warning(&result, "nginx.conf:10:", "least_time"));
    cr_expect_not(has_warning(&result, "nginx.conf:11:", "max_conns=10"), "max_conns is carried over");
    cr_expect(has_warning(&result, "nginx.conf:12:", "backend.internal: no port"));
    cr_expect(has_warning(&result, "nginx.conf:15:", "log_format"));
    cr_expect(has_warning(&result, "nginx.conf:17:", "ssl"));
    cr_expect(has_warning(&result, "nginx.conf:18:", "udp"));
    cr_expect(has_warning(&result, "nginx.conf:21:", "proxy_buffer_size"));
    cr_expect(has_warning(&result, "nginx.conf:24:", "http { }"));
    cr_expect_eq(result.warning_count, 11, "one warning each, no more");
    /* What could be carried over still is. */
    cr_expect(strstr(result.ini, "server = 127.0.0.1:9001 weight=3 max_fails=2 fail_timeout=30s max_conns=10\n"
                                 "server = 127.0.0.1:9003 backup\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "default = shop\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:443\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, ":53") == NULL, "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* docker-compose configurations name their backends; snisplice resolves
 * those names when it loads its configuration, so they are carried over
 * as written (lower case), not dropped. nginx resolves an upstream's
 * servers and a plain proxy_pass at load too, but a map value per
 * connection, with its `resolver` (none: the client was closed): that is
 * said once per value, unless a plain proxy_pass names the same host:port
 * (nginx then takes that one's addresses). */
Test(nginx_import, host_names_of_servers_and_targets_are_kept)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name {\n"
        "    matrix.example.org synapse;\n"
        "    element.example.org Element:443;\n"
        "    git.example.org gitea:22;\n"
        "    default web.internal:8443;\n"
        "  }\n"
        "  upstream synapse { server synapse:8448 weight=2; server synapse-2:8448 backup; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"
        "  server { listen 2222; proxy_pass gitea:22; }\n"
        "  server { listen 80; proxy_pass web.internal; }\n"
        "  server { listen 81; ssl_preread on; proxy_pass $name; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:11:", "with a port"), "a target without a port is still refused");
    cr_expect(has_warning(&result, "nginx.conf:4:", "'Element:443' names a host: nginx looked it up for each "
                                                    "connection"));
    cr_expect(has_warning(&result, "nginx.conf:6:", "'web.internal:8443' names a host"));
    cr_expect_eq(result.warning_count, 3, "once per value, and not for gitea:22, a plain proxy_pass's target");
    cr_expect(strstr(result.ini, "server = synapse:8448 weight=2\nserver = synapse-2:8448 backup\n"), "%s",
              result.ini);
    cr_expect(strstr(result.ini, "element.example.org = element:443\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "default = web.internal:8443\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = gitea:22\n"), "%s", result.ini);
    nginx_import_free(&result);
}

/* Regular-expression map entries (and trailing wildcards) are carried
 * over in nginx's own syntax and keep their order; "(?:" loses its ':' (the INI would cut the key
 * there). What snisplice cannot match the same way is a warning. */
Test(nginx_import, regular_expressions_and_trailing_wildcards_are_carried_over)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name {\n"
        "    hostnames;\n"
        "    ~^www\\.(?<site>.+)$ web;\n"
        "    ~*^(?:matrix|element)\\.example\\.org$ 127.0.0.1:8448;\n"
        "    ~^(?!api) web;\n"
        "    www.example.* 127.0.0.1:8448;\n"
        "    default web;\n"
        "  }\n"
        "  upstream web { server 127.0.0.1:8443; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:6:", "look-around"));
    cr_expect_eq(result.warning_count, 1);
    cr_expect(strstr(result.ini, "[routes]\n~^www\\.(?<site>.+)$ = web\n"
                                 "~*^(matrix|element)\\.example\\.org$ = 127.0.0.1:8448\n"
                                 "www.example.* = 127.0.0.1:8448\n"
                                 "default = web\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* The ACME TLS-ALPN-01 recipes: a map on $ssl_preread_alpn_protocols sends
 * the certificate helper's handshakes aside. acme.sh's form maps to a port
 * on one host; nginx's own example maps protocols to addresses; and beside
 * SNI routing the ALPN map's default is the server-name map, which in
 * snisplice is one table (ALPN routes are tried before names). */
Test(nginx_import, alpn_maps_become_alpn_routes)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_alpn_protocols $tls_port { ~\\bacme-tls/1\\b 10443; default 443; }\n"
        "  server { listen 443; proxy_pass 127.0.0.1:$tls_port; ssl_preread on; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[routes]\nalpn acme-tls/1 = 127.0.0.1:10443\ndefault = 127.0.0.1:443\n"), "%s",
              result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    result = import_text(
        "stream {\n"
        "  map $ssl_preread_alpn_protocols $proxy {\n"
        "    ~\\bh2\\b 127.0.0.1:8001;\n"
        "    ~\\bhttp/1.1\\b 127.0.0.1:8002;\n"
        "    ~\\bxmpp-client\\b 127.0.0.1:8003;\n"
        "  }\n"
        "  server { listen 9000; proxy_pass $proxy; ssl_preread on; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 1, "the order of several ALPN routes (alpn_routes_follow_the_clients_order)");
    cr_expect(strstr(result.ini, "alpn h2 = 127.0.0.1:8001\nalpn http/1.1 = 127.0.0.1:8002\n"
                                 "alpn xmpp-client = 127.0.0.1:8003\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { hostnames; matrix.example.org synapse; .example.org web; "
        "default web; }\n"
        "  map $ssl_preread_alpn_protocols $route { ~\\bacme-tls/1\\b 127.0.0.1:10443; default $name; }\n"
        "  upstream synapse { server 127.0.0.1:8448; }\n"
        "  upstream web { server 127.0.0.1:8443; }\n"
        "  server { listen 443; proxy_pass $route; ssl_preread on; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0, "the name map is used through the ALPN map");
    cr_expect(strstr(result.ini, "[routes]\nalpn acme-tls/1 = 127.0.0.1:10443\nmatrix.example.org = synapse\n"
                                 ".example.org = web\ndefault = web\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* The other chaining: a server-name map whose default is an ALPN map (names
 * first, the protocols for the rest). One table, the ALPN map's default as
 * its default; that snisplice now tries the protocols first is said. A
 * chain back to the first map stops, as nginx's cycle check does. */
Test(nginx_import, server_name_map_continues_with_an_alpn_map)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                               /* 1 */
        "  upstream web { server 127.0.0.1:8443; }\n"                             /* 2 */
        "  upstream xmpp { server 127.0.0.1:5223; }\n"                            /* 3 */
        "  map $ssl_preread_alpn_protocols $by_alpn { ~\\bxmpp-client\\b xmpp; default web; }\n" /* 4 */
        "  map $ssl_preread_server_name $name { blog.example.com web; default $by_alpn; }\n" /* 5 */
        "  server { listen 443; proxy_pass $name; ssl_preread on; }\n"            /* 6 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:5:", "snisplice tries ALPN routes first"));
    cr_expect_eq(result.warning_count, 1, "only the order is said; the ALPN map is not 'used by no server'");
    cr_expect(strstr(result.ini, "[routes]\nblog.example.com = web\nalpn xmpp-client = xmpp\ndefault = web\n\n"),
              "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    result = import_text(
        "stream {\n"                                                               /* 1 */
        "  map $ssl_preread_alpn_protocols $by_alpn { ~\\bxmpp-client\\b 127.0.0.1:5223; default $name; }\n" /* 2 */
        "  map $ssl_preread_server_name $name { blog.example.com 127.0.0.1:8443; default $by_alpn; }\n" /* 3 */
        "  server { listen 443; proxy_pass $name; ssl_preread on; }\n"            /* 4 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:3:", "snisplice tries ALPN routes first"));
    cr_expect(has_warning(&result, "nginx.conf:2:", "target $name: a variable chained from another map"));
    cr_expect_eq(result.warning_count, 2);
    cr_expect(strstr(result.ini, "[routes]\nblog.example.com = 127.0.0.1:8443\nalpn xmpp-client = 127.0.0.1:5223\n\n"),
              "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* A chain of three maps (names -> ALPN, and an ALPN map whose default is
 * the names) reached from a proxy_protocol server through its head: every
 * upstream of the chain gets the PROXY header, whatever order the maps are
 * declared in (the reach was passed on while chaining, so a map chained
 * before it was chained to kept what it got later to itself). */
/* The SNI proxy recipe (`default $ssl_preread_server_name:443`: forward to
 * whatever name the client asked for) names no map; the warning says what
 * nginx did, not that a map chain is missing. */
Test(nginx_import, a_target_made_of_variables_is_said_as_such)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                              /* 1 */
        "  map $ssl_preread_server_name $backend {\n"                            /* 2 */
        "    hostnames;\n"                                                        /* 3 */
        "    www.helsinki.fi 127.0.0.1:4443;\n"                                   /* 4 */
        "    default $ssl_preread_server_name:443;\n"                             /* 5 */
        "  }\n"                                                                   /* 6 */
        "  server { listen 443; proxy_pass $backend; ssl_preread on; }\n"        /* 7 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:5:", "target $ssl_preread_server_name:443: an address made of variables"));
    cr_expect_eq(count_warnings(&result, "", "chained from another map"), 0);
    cr_expect(strstr(result.ini, "[routes]\nwww.helsinki.fi = 127.0.0.1:4443\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* `proxy_pass $x:9092` with host values (a Kafka broker recipe, and the
 * SNI proxy recipes' `proxy_pass $backend:443`): nginx added the port to
 * the map's value per connection. It was refused (server skipped), so
 * such a config lost its listener; the port is now added to each value. */
Test(nginx_import, a_port_added_to_a_map_value_is_added_to_each_value)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                              /* 1 */
        "  map $ssl_preread_server_name $target {\n"                              /* 2 */
        "    kafka.example.com 127.0.0.1;\n"                                      /* 3 */
        "    default [::1];\n"                                                    /* 4 */
        "  }\n"                                                                   /* 5 */
        "  server { listen 9092; proxy_pass $target:9092; ssl_preread on; }\n"   /* 6 */
        "  server { listen 9093; proxy_pass ${target}:9092; ssl_preread on; }\n" /* 7 */
        "  server { listen 2222; proxy_pass 127.0.0.1:22; }\n"                   /* 8 */
        "}\n");
    log_warnings(&result);
    cr_expect_eq(count_warnings(&result, "", "proxy_pass"), 0);
    cr_expect_eq(count_warnings(&result, "", "is used by no converted server"), 0);
    cr_expect(strstr(result.ini, "[routes target]\nkafka.example.com = 127.0.0.1:9092\ndefault = [::1]:9092\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:9092\n") && strstr(result.ini, "address = 0.0.0.0:9093\n"),
              "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* A map is one routes table: used whole in one server and with a port
 * added in another, or with two ports, it cannot be both; and what
 * follows the map must be a port (`$x:$port` is built per connection). */
Test(nginx_import, a_map_with_a_port_added_is_used_one_way)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                                     /* 1 */
        "  map $ssl_preread_server_name $target { a.example.com 127.0.0.1; }\n"          /* 2 */
        "  map $ssl_preread_server_name $port { a.example.com 8443; }\n"                 /* 3 */
        "  server { listen 9092; proxy_pass $target:9092; ssl_preread on; }\n"          /* 4 */
        "  server { listen 9093; proxy_pass $target:9093; ssl_preread on; }\n"          /* 5 */
        "  server { listen 9094; proxy_pass $target; ssl_preread on; }\n"               /* 6 */
        "  server { listen 9095; proxy_pass $target:$port; ssl_preread on; }\n"         /* 7 */
        "  server { listen 9096; proxy_pass $target:99999; ssl_preread on; }\n"         /* 8 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:5:", "proxy_pass $target:9093: only $map, HOST:$map or $map:PORT"));
    cr_expect(has_warning(&result, "nginx.conf:6:", "proxy_pass $target: only $map, HOST:$map or $map:PORT"));
    cr_expect(has_warning(&result, "nginx.conf:7:", "proxy_pass $target:$port: the text after the map must be a port"));
    cr_expect(has_warning(&result, "nginx.conf:8:", "proxy_pass $target:99999: the text after the map must be a port"));
    cr_expect(strstr(result.ini, "a.example.com = 127.0.0.1:9092\n"), "%s", result.ini);
    cr_expect_null(strstr(result.ini, "9093"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* A value that cannot take a port says so as any bad target does: "" is
 * nginx's closed connection, a value with a port of its own made nginx
 * build "HOST:PORT:PORT", which it could not connect to. */
Test(nginx_import, a_port_added_keeps_what_values_cannot_take_it)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                  /* 1 */
        "  map $ssl_preread_server_name $target {\n"                  /* 2 */
        "    a.example.com 127.0.0.1;\n"                              /* 3 */
        "    b.example.com \"\";\n"                                    /* 4 */
        "    c.example.com 127.0.0.1:80;\n"                           /* 5 */
        "  }\n"                                                       /* 6 */
        "  server { listen 443; proxy_pass $target:8443; ssl_preread on; }\n" /* 7 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:4:", "target \"\": nginx closed these connections"));
    cr_expect(has_warning(&result, "nginx.conf:5:", "target '127.0.0.1:80:8443'"));
    cr_expect(strstr(result.ini, "[routes]\na.example.com = 127.0.0.1:8443\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* nginx's "" entry in a server-name map takes every client without a
 * server name, those that do not speak TLS too (the Reality recipes'
 * "protect against empty SNI probes"): they keep that target as not_tls. */
Test(nginx_import, an_empty_name_entry_keeps_the_clients_that_do_not_speak_tls)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                              /* 1 */
        "  map $ssl_preread_server_name $backend {\n"                            /* 2 */
        "    \"\" 127.0.0.1:9999;\n"                                              /* 3 */
        "    www.helsinki.fi 127.0.0.1:4443;\n"                                   /* 4 */
        "    default 127.0.0.1:8443;\n"                                           /* 5 */
        "  }\n"                                                                   /* 6 */
        "  server { listen 443; proxy_pass $backend; ssl_preread on; }\n"        /* 7 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:3:", "becomes not_tls"));
    cr_expect(has_warning(&result, "nginx.conf:3:", "closed when there is none"));
    cr_expect(strstr(result.ini, "[routes]\nnot_tls = 127.0.0.1:9999\nwww.helsinki.fi = 127.0.0.1:4443\n"
                                 "default = 127.0.0.1:8443\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    /* Under a protocol map, nginx asked that map first: its "" keeps them. */
    result = import_text(
        "stream {\n"                                                              /* 1 */
        "  map $ssl_preread_protocol $u { \"\" 127.0.0.1:22; default $name; }\n"  /* 2 */
        "  map $ssl_preread_server_name $name { \"\" 127.0.0.1:9; default 127.0.0.1:8443; }\n" /* 3 */
        "  server { listen 443; proxy_pass $u; ssl_preread on; }\n"              /* 4 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:3:", "an earlier entry already has this route"));
    cr_expect(strstr(result.ini, "[routes]\nnot_tls = 127.0.0.1:22\ndefault = 127.0.0.1:8443\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

Test(nginx_import, chained_maps_pass_proxy_protocol_on_in_any_order)
{
    const char *names = "  map $ssl_preread_server_name $n { a.example.com alpha; default $q; }\n";
    const char *acme = "  map $ssl_preread_alpn_protocols $q { acme-tls/1 acmeup; default beta; }\n";
    const char *xmpp = "  map $ssl_preread_alpn_protocols $p { xmpp-client xmppup; default $n; }\n";
    const char *rest = "  upstream alpha { server 127.0.0.1:1001; }\n  upstream acmeup { server 127.0.0.1:1002; }\n"
                       "  upstream beta { server 127.0.0.1:1003; }\n  upstream xmppup { server 127.0.0.1:1004; }\n"
                       "  server { listen 443; ssl_preread on; proxy_pass $n; }\n"
                       "  server { listen 8443; ssl_preread on; proxy_protocol on; proxy_pass $p; }\n}\n";
    char *first = NULL, *second = NULL;
    cr_assert(asprintf(&first, "stream {\n%s%s%s%s", names, acme, xmpp, rest) > 0);
    cr_assert(asprintf(&second, "stream {\n%s%s%s%s", xmpp, names, acme, rest) > 0);
    const char *orders[] = { first, second };
    for (int i = 0; i < 2; i++) {
        struct nginx_import result = import_text(orders[i]);
        log_warnings(&result);
        cr_expect(strstr(result.ini, "[upstream acmeup]\nserver = 127.0.0.1:1002\nproxy_protocol = v1\n"),
                  "order %d:\n%s", i, result.ini);
        cr_expect(strstr(result.ini, "[upstream beta]\nserver = 127.0.0.1:1003\nproxy_protocol = v1\n"),
                  "order %d:\n%s", i, result.ini);
        cr_expect(has_warning(&result, "", "upstream beta is reached from servers with and without "
                                           "proxy_protocol on"), "order %d", i);
        nginx_import_free(&result);
    }
    free(first);
    free(second);
}

/* What does not fit one ALPN route per entry is said, not guessed. */
Test(nginx_import, alpn_entries_that_do_not_fit)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                             /* 1 */
        "  map $ssl_preread_alpn_protocols $proxy {\n"                          /* 2 */
        "    h2 127.0.0.1:8001;\n"                                              /* 3 */
        "    ~(h2|h3) 127.0.0.1:8002;\n"                                        /* 4 */
        "    \"h2,http/1.1\" 127.0.0.1:8003;\n"                                  /* 5 */
        "    default 127.0.0.1:8004;\n"                                         /* 6 */
        "  }\n"                                                                 /* 7 */
        "  server { listen 9000; proxy_pass $proxy; ssl_preread on; }\n"         /* 8 */
        "  server { listen 9001; proxy_pass 127.0.0.1:$proxy; ssl_preread on; }\n" /* 9 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:3:", "whole protocol list"));
    cr_expect(has_warning(&result, "nginx.conf:4:", "not one ALPN protocol"));
    cr_expect(has_warning(&result, "nginx.conf:5:", "not one ALPN protocol"));
    cr_expect(has_warning(&result, "nginx.conf:9:", "each map one way"));
    cr_expect_eq(result.warning_count, 4);
    cr_expect(strstr(result.ini, "alpn h2 = 127.0.0.1:8001\ndefault = 127.0.0.1:8004\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* nginx matched an ALPN key's expression against the client's whole
 * protocol list ("h2,http/1.1"): only ~\bPROTOCOL\b means "offers
 * PROTOCOL", the route it becomes. Every other form narrowed (anchors) or
 * widened (no \b, ~*) that, and the warning says how. */
Test(nginx_import, alpn_expressions_that_matched_other_clients_are_said)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                /* 1 */
        "  map $ssl_preread_alpn_protocols $p {\n"                 /* 2 */
        "    ~^acme-tls/1$ 127.0.0.1:1;\n"                         /* 3 */
        "    ~h2 127.0.0.1:1;\n"                                   /* 4 */
        "    ~*^http/1\\.1 127.0.0.1:1;\n"                         /* 5 */
        "    ~\\bxmpp-client\\b 127.0.0.1:1;\n"                     /* 6 */
        "    ~*\\bspdy/3\\b 127.0.0.1:1;\n"                         /* 7 */
        "    ~\\bimap$ 127.0.0.1:1;\n"                             /* 8 */
        "    default 127.0.0.1:2;\n"                               /* 9 */
        "  }\n"
        "  server { listen 443; proxy_pass $p; ssl_preread on; }\n"
        "}\n");
    log_warnings(&result);
    static const char list[] = "nginx matched the client's whole protocol list (such as \"h2,http/1.1\") against it: ";
    char expected[512];
    snprintf(expected, sizeof expected, "nginx.conf:3: warning: map entry '~^acme-tls/1$': %sit matched only clients "
             "that offered acme-tls/1 alone; snisplice routes every client that offers acme-tls/1", list);
    cr_expect(has_exact_warning(&result, expected), "%s", expected);
    snprintf(expected, sizeof expected, "nginx.conf:4: warning: map entry '~h2': %sunanchored, it also matched every "
             "offered protocol that contains h2 (h2c too); snisplice routes every client that offers h2", list);
    cr_expect(has_exact_warning(&result, expected), "%s", expected);
    snprintf(expected, sizeof expected, "nginx.conf:5: warning: map entry '~*^http/1\\.1': %sit matched only clients "
             "whose first offered protocol began with http/1.1, in any letter case (~*); snisplice routes every "
             "client that offers http/1.1", list);
    cr_expect(has_exact_warning(&result, expected), "%s", expected);
    snprintf(expected, sizeof expected, "nginx.conf:7: warning: map entry '~*\\bspdy/3\\b': %sit matched spdy/3 in "
             "any letter case (~*); snisplice routes every client that offers spdy/3", list);
    cr_expect(has_exact_warning(&result, expected), "%s", expected);
    cr_expect(has_warning(&result, "nginx.conf:8:", "it matched only clients that offered imap last"));
    cr_expect_not(has_warning(&result, "nginx.conf:6:", ""), "~\\bPROTOCOL\\b is what snisplice does");
    cr_expect_eq(result.warning_count, 5);
    cr_expect(strstr(result.ini, "alpn acme-tls/1 = 127.0.0.1:1\nalpn h2 = 127.0.0.1:1\nalpn http/1.1 = 127.0.0.1:1\n"
                                 "alpn xmpp-client = 127.0.0.1:1\nalpn spdy/3 = 127.0.0.1:1\nalpn imap = 127.0.0.1:1\n"
                                 "default = 127.0.0.1:2\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* nginx took a map's first matching entry, in the map's order; snisplice
 * takes the client's first offered protocol that has a route. A map with
 * several ALPN routes to different targets says so, once; routes that all
 * lead to one target, or a single ALPN route beside the names, do not. */
Test(nginx_import, alpn_routes_follow_the_clients_order)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                                             /* 1 */
        "  map $ssl_preread_alpn_protocols $p { ~\\bh2\\b 127.0.0.1:1; ~\\bhttp/1.1\\b 127.0.0.1:2; "
        "~\\bh3\\b 127.0.0.1:1; default 127.0.0.1:3; }\n"                                          /* 2 */
        "  server { listen 443; proxy_pass $p; ssl_preread on; }\n"                              /* 3 */
        "  server { listen 444; proxy_pass $p; ssl_preread on; }\n"                              /* 4 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:2: warning: map $p: nginx took the first entry that matched, in "
                                         "the map's order; snisplice takes the client's first offered protocol that "
                                         "has a route, so a client that offers several of h2, http/1.1, h3 may now "
                                         "reach another target"));
    cr_expect_eq(result.warning_count, 1, "once per map, however many servers use it");
    expect_loadable(result.ini);
    nginx_import_free(&result);

    result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { a.example 127.0.0.1:5; default 127.0.0.1:6; }\n"
        "  map $ssl_preread_alpn_protocols $same { ~\\bh2\\b 127.0.0.1:1; ~\\bhttp/1.1\\b 127.0.0.1:1; "
        "default 127.0.0.1:3; }\n"
        "  map $ssl_preread_alpn_protocols $acme { ~\\bacme-tls/1\\b 127.0.0.1:4; default $name; }\n"
        "  server { listen 443; proxy_pass $same; ssl_preread on; }\n"
        "  server { listen 444; proxy_pass $acme; ssl_preread on; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* The upstream the converted INI's first listener routes `name` to, as
 * the loader built it; NULL when the name has no route. */
static const char *routed_to(const struct config *config, const char *name)
{
    const struct snapshot_listener *listener = &config->snapshot->listeners[0];
    cr_assert_not_null(listener->routes);
    int32_t target = route_lookup(listener->routes, name, strlen(name));
    return target < 0 ? NULL : config->snapshot->upstreams[target].name;
}

/* PCRE's named classes inside brackets hold a ':', which ends an INI key:
 * those with a spelling without one are written that way and route as
 * nginx did; the others are refused with that reason. */
Test(nginx_import, posix_named_classes_are_spelled_without_a_colon)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                       /* 1 */
        "  map $ssl_preread_server_name $n {\n"                           /* 2 */
        "    ~^[[:digit:]]+\\.test$ 127.0.0.1:1;\n"                        /* 3 */
        "    ~^[^[:alpha:]_][[:lower:]][[:upper:]]\\.x$ 127.0.0.1:2;\n"     /* 4 */
        "    ~^[][:xdigit:]-]+\\.hex$ 127.0.0.1:3;\n"                      /* 5 */
        "    ~^w[[:alnum:]]-[[:word:]]\\.y$ 127.0.0.1:4;\n"                /* 6 */
        "    ~^[[:punct:]]\\.z$ 127.0.0.1:5;\n"                            /* 7 */
        "    default 127.0.0.1:9;\n"                                      /* 8 */
        "  }\n"
        "  server { listen 443; proxy_pass $n; ssl_preread on; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(strstr(result.ini, "~^[0-9]+\\.test$ = 127.0.0.1:1\n~^[^A-Za-z_][a-z][A-Z]\\.x$ = 127.0.0.1:2\n"
                                 "~^[]0-9A-Fa-f-]+\\.hex$ = 127.0.0.1:3\n~^w[A-Za-z0-9]-[\\w]\\.y$ = 127.0.0.1:4\n"),
              "%s", result.ini);
    cr_expect(has_exact_warning(&result, "nginx.conf:7: warning: map entry '~^[[:punct:]]\\.z$': an INI key cannot "
                                         "hold ':', and the POSIX class [:punct:] has no spelling without one; "
                                         "skipped"));
    cr_expect_eq(result.warning_count, 1);
    struct config *config = load_converted(result.ini);
    cr_assert_not_null(config, "%s", result.ini);
    static const char *const routes[][2] = {
        { "2024.test", "127.0.0.1:1" }, { "20a4.test", "127.0.0.1:9" }, { "1aB.x", "127.0.0.1:2" },
        { "aaB.x", "127.0.0.1:9" },     { "_aB.x", "127.0.0.1:9" },     { "c0ffee.hex", "127.0.0.1:3" },
        { "c0-ffee.hex", "127.0.0.1:3" }, { "c0fgee.hex", "127.0.0.1:9" }, { "wQ-_.y", "127.0.0.1:4" },
        { "w_-_.y", "127.0.0.1:9" },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const char *target = routed_to(config, routes[i][0]);
        cr_expect(target && strcmp(target, routes[i][1]) == 0, "%s went to %s, nginx sends it to %s", routes[i][0],
                  target ? target : "nothing", routes[i][1]);
    }
    config_free(config);
    nginx_import_free(&result);
}

/* How often `line` occurs in `text` as a whole line. */
static size_t count_lines(const char *text, const char *line)
{
    size_t count = 0, length = strlen(line);
    for (const char *at = text; (at = strstr(at, line)) != NULL; at += length)
        count += (at == text || at[-1] == '\n') && (at[length] == '\n' || at[length] == '\0');
    return count;
}

/* Entries that become a route the table already has: nginx took the first
 * entry that matched, so the first is written and the later ones are left
 * out, said; the loader refuses a table with a route twice. Within one map
 * and across the maps one table chains together. */
Test(nginx_import, a_route_is_written_once_and_the_first_entry_keeps_it)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                                              /* 1 */
        "  map $ssl_preread_alpn_protocols $a { ~^h2$ 127.0.0.1:1; ~h2 127.0.0.1:3; default 127.0.0.1:2; }\n" /* 2 */
        "  server { listen 443; proxy_pass $a; ssl_preread on; }\n"                               /* 3 */
        "}\n");
    log_warnings(&result);
    cr_expect(strstr(result.ini, "[routes]\nalpn h2 = 127.0.0.1:1\ndefault = 127.0.0.1:2\n\n"), "%s", result.ini);
    cr_expect(has_warning(&result, "nginx.conf:2:", "'~h2': an earlier entry already routes clients that offer h2, "
                                                    "and nginx's first match wins anyway; skipped"));
    expect_loadable(result.ini);
    nginx_import_free(&result);

    /* A protocol map, an ALPN map and a server-name map: one table. */
    result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { hostnames; a.example 127.0.0.1:5; A.Example 127.0.0.1:6; "
        ".b.example 127.0.0.1:7; *.b.example 127.0.0.1:8; not_tls 127.0.0.1:9; default 127.0.0.1:10; }\n"
        "  map $ssl_preread_alpn_protocols $tls { ~\\bacme-tls/1\\b 127.0.0.1:3; ~^acme-tls/1$ 127.0.0.1:4; "
        "default $name; }\n"
        "  map $ssl_preread_protocol $upstream { \"\" 127.0.0.1:22; default $tls; }\n"
        "  server { listen 443; proxy_pass $upstream; ssl_preread on; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(strstr(result.ini, "[routes]\nnot_tls = 127.0.0.1:22\nalpn acme-tls/1 = 127.0.0.1:3\n"
                                 "a.example = 127.0.0.1:5\n.b.example = 127.0.0.1:7\ndefault = 127.0.0.1:10\n\n"),
              "%s", result.ini);
    cr_expect_eq(count_lines(result.ini, "not_tls = 127.0.0.1:22"), 1, "%s", result.ini);
    cr_expect_eq(count_warnings(&result, "nginx.conf:2:", "an earlier entry already has this route"), 2);
    cr_expect(has_warning(&result, "nginx.conf:2:", "'not_tls': the INI reads this key as the route for clients"));
    cr_expect(has_warning(&result, "nginx.conf:3:", "'~^acme-tls/1$': an earlier entry already routes clients"));
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* nginx compares upstream names without case: `upstream Backend` is what
 * a map value `backend` and `proxy_pass BACKEND` name, and a second block
 * spelled `BACKEND` is the same name defined twice. The section keeps the
 * block's own spelling. */
Test(nginx_import, upstream_names_compare_without_case)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                                   /* 1 */
        "  map $ssl_preread_server_name $name { a.example backend; default BACKEND; }\n" /* 2 */
        "  map $ssl_preread_protocol $proto { \"\" SSH; default ssh; }\n"                 /* 3 */
        "  upstream Backend { server 127.0.0.1:9001; }\n"                               /* 4 */
        "  upstream BACKEND { server 127.0.0.1:9002; }\n"                               /* 5 */
        "  upstream ssh { server 127.0.0.1:22; }\n"                                     /* 6 */
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"                  /* 7 */
        "  server { listen 444; ssl_preread on; proxy_pass $proto; }\n"                 /* 8 */
        "  server { listen 2222; proxy_pass bAcKeNd; }\n"                               /* 9 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:5: warning: upstream BACKEND defined twice (nginx compares "
                                         "upstream names without case: Backend at nginx.conf:4); the second is "
                                         "skipped"));
    cr_expect_eq(result.warning_count, 1);
    cr_expect(strstr(result.ini, "[routes name]\na.example = Backend\ndefault = Backend\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[routes proto]\ndefault = ssh\n\n"), "one target in any case: %s", result.ini);
    cr_expect(strstr(result.ini, "[listen port2222]\naddress = 0.0.0.0:2222\nupstream = Backend\n"), "%s",
              result.ini);
    cr_expect(strstr(result.ini, "[upstream Backend]\nserver = 127.0.0.1:9001\n"), "%s", result.ini);
    cr_expect_not(strstr(result.ini, "9002"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* nginx's sslh recipe: SSH and HTTPS on one port. "" is what nginx's
 * $ssl_preread_protocol holds for a client that does not speak TLS; every
 * TLS version goes to https here (the TLSv1.2 line changes nothing), so
 * the map is snisplice's not_tls and default. */
Test(nginx_import, protocol_map_becomes_not_tls_and_default)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "    map $ssl_preread_protocol $upstream {\n"
        "        \"\"        ssh;\n"
        "        \"TLSv1.2\" https;\n"
        "        default   https;\n"
        "    }\n"
        "    upstream ssh   { server 127.0.0.1:22; }\n"
        "    upstream https { server 127.0.0.1:8443; }\n"
        "    server { listen 443; proxy_pass $upstream; ssl_preread on; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    const char *expected =
        "[listen]\n"
        "address = 0.0.0.0:443\n"
        "\n"
        "[routes]\n"
        "not_tls = ssh\n"
        "default = https\n"
        "\n"
        "[upstream ssh]\n"
        "server = 127.0.0.1:22\n"
        "\n"
        "[upstream https]\n"
        "server = 127.0.0.1:8443\n";
    cr_expect(strstr(result.ini, expected) != NULL, "got:\n%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    /* acme.sh's form, values as ports on one host, converts the same way. */
    result = import_text(
        "stream {\n"
        "  map $ssl_preread_protocol $port { \"\" 22; default 8443; }\n"
        "  server { listen 443; proxy_pass 127.0.0.1:$port; ssl_preread on; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[routes]\nnot_tls = 127.0.0.1:22\ndefault = 127.0.0.1:8443\n\n"), "%s",
              result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* The combined form: TLS clients go on to the server-name map
 * (`default $name;`), so its entries, default included, follow not_tls in
 * one table; with an ACME ALPN map in between, its routes come first. */
Test(nginx_import, protocol_map_chains_the_server_name_map)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { a.example.com a_backend; default b_backend; }\n"
        "  map $ssl_preread_protocol $upstream { \"\" 127.0.0.1:22; default $name; }\n"
        "  upstream a_backend { server 127.0.0.1:9001; }\n"
        "  upstream b_backend { server 127.0.0.1:9002; }\n"
        "  server { listen 443; proxy_pass $upstream; ssl_preread on; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0, "the name map is used through the protocol map");
    cr_expect(strstr(result.ini, "[listen]\naddress = 0.0.0.0:443\n\n[routes]\nnot_tls = 127.0.0.1:22\n"
                                 "a.example.com = a_backend\ndefault = b_backend\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { a.example.com a_backend; default b_backend; }\n"
        "  map $ssl_preread_alpn_protocols $tls { ~\\bacme-tls/1\\b 127.0.0.1:10443; default $name; }\n"
        "  map $ssl_preread_protocol $upstream { \"\" 127.0.0.1:22; default $tls; }\n"
        "  upstream a_backend { server 127.0.0.1:9001; }\n"
        "  upstream b_backend { server 127.0.0.1:9002; }\n"
        "  server { listen 443; proxy_pass $upstream; ssl_preread on; proxy_protocol on; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[routes]\nnot_tls = to_127_0_0_1_22\nalpn acme-tls/1 = to_127_0_0_1_10443\n"
                                 "a.example.com = a_backend\ndefault = b_backend\n\n"), "%s", result.ini);
    /* Every upstream reached through the chain gets the PROXY header. */
    cr_expect(strstr(result.ini, "[upstream b_backend]\nserver = 127.0.0.1:9002\nproxy_protocol = v1\n"), "%s",
              result.ini);
    cr_expect(strstr(result.ini, "[upstream to_127_0_0_1_22]\nserver = 127.0.0.1:22\nproxy_protocol = v1\n"),
              "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* Written the other way round: the TLS versions are named (by a regular
 * expression, in any case, or one by one) and the default catches "", as
 * in nginx nothing else matches it (regular expressions are never tried on
 * an empty value). */
Test(nginx_import, protocol_map_with_tls_keys_and_a_default_for_the_rest)
{
    const char *maps[] = {
        "~^TLS https; default ssh;",
        "~TLSv1 https; default ssh;",
        "~*^tls https; default ssh;",
        "TLSv1 https; TLSv1.1 https; \"TLSv1.2\" https; 'TLSv1.3' https; default ssh;",
    };
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        char *text = NULL;
        cr_assert_geq(asprintf(&text,
                               "stream {\n"
                               "  map $ssl_preread_protocol $upstream { %s }\n"
                               "  upstream ssh   { server 127.0.0.1:22; }\n"
                               "  upstream https { server 127.0.0.1:8443; }\n"
                               "  server { listen 443; proxy_pass $upstream; ssl_preread on; }\n"
                               "}\n", maps[i]), 0);
        struct nginx_import result = import_text(text);
        log_warnings(&result);
        cr_expect_eq(result.warning_count, 0, "%s", maps[i]);
        cr_expect(strstr(result.ini, "[routes]\nnot_tls = ssh\ndefault = https\n\n"), "%s:\n%s", maps[i],
                  result.ini);
        expect_loadable(result.ini);
        nginx_import_free(&result);
        free(text);
    }
}

/* nginx's own example sends one TLS version elsewhere. snisplice has one
 * route for TLS clients: the TLSv1.3 target, with a warning that names
 * every version's. */
Test(nginx_import, protocol_map_routing_by_tls_version_takes_the_tlsv1_3_target)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_protocol $upstream {\n"
        "    \"\" ssh;\n"
        "    \"TLSv1.3\" modern;\n"
        "    default legacy;\n"
        "  }\n"
        "  upstream ssh    { server 127.0.0.1:22; }\n"
        "  upstream modern { server 127.0.0.1:8443; }\n"
        "  upstream legacy { server 127.0.0.1:8444; }\n"
        "  server { listen 443; proxy_pass $upstream; ssl_preread on; }\n"
        "}\n");
    log_warnings(&result);
    cr_assert_eq(result.warning_count, 1);
    cr_expect_str_eq(result.warnings[0],
                     "nginx.conf:2: warning: map $upstream routes TLS clients by version (TLSv1 -> legacy, "
                     "TLSv1.1 -> legacy, TLSv1.2 -> legacy, TLSv1.3 -> modern); snisplice does not route by TLS "
                     "version: every TLS client now goes to modern, the TLSv1.3 target, where nginx sent modern "
                     "clients");
    cr_expect(strstr(result.ini, "[routes]\nnot_tls = ssh\ndefault = modern\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* What a protocol map cannot carry over is said with its line. */
Test(nginx_import, protocol_map_entries_that_do_not_fit)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                            /* 1 */
        "  map $ssl_server_name $x { default 127.0.0.1:1; }\n"                 /* 2 */
        "  map $ssl_preread_protocol $a {\n"                                   /* 3 */
        "    \"\" $x;\n"                                                       /* 4 */
        "    SSLv3 127.0.0.1:3;\n"                                             /* 5 */
        "    ~^TLS(?!v1\\.3) 127.0.0.1:4;\n"                                   /* 6 */
        "    default 127.0.0.1:5;\n"                                           /* 7 */
        "  }\n"                                                                /* 8 */
        "  map $ssl_preread_protocol $b { ~^TLS 127.0.0.1:6; }\n"              /* 9 */
        "  map $ssl_preread_protocol $c { \"\" 127.0.0.1:7; default $x; }\n"   /* 10 */
        "  map $ssl_preread_protocol $d { \"\" 127.0.0.1:8; ~^TLS 127.0.0.1:9; default 127.0.0.1:10; }\n" /* 11 */
        "  server { listen 1; proxy_pass $a; ssl_preread on; }\n"              /* 12 */
        "  server { listen 2; proxy_pass $b; ssl_preread on; }\n"              /* 13 */
        "  server { listen 3; proxy_pass $c; ssl_preread on; }\n"              /* 14 */
        "  server { listen 4; proxy_pass $d; }\n"                              /* 15 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:2:", "map on $ssl_server_name"));
    cr_expect(has_warning(&result, "nginx.conf:4:", "target $x for clients that do not speak TLS: not_tls names "
                                                    "one upstream or address"));
    cr_expect(has_warning(&result, "nginx.conf:5:", "'SSLv3': matches neither \"\" nor a TLS version"));
    cr_expect(has_warning(&result, "nginx.conf:6:", "regular expression not evaluated"));
    cr_expect(has_warning(&result, "nginx.conf:9:", "nginx closed clients that do not speak TLS (no \"\" entry "
                                                    "and no default); snisplice has no route to nothing"));
    cr_expect(has_warning(&result, "nginx.conf:10:", "TLS clients' target $x: snisplice continues a table only"));
    cr_expect(has_warning(&result, "nginx.conf:11:", "default 127.0.0.1:10: \"\" and every TLS version have "
                                                     "entries of their own"));
    cr_expect(has_warning(&result, "nginx.conf:15:", "nginx saw no protocol"));
    cr_expect_eq(result.warning_count, 8, "one warning each, no more");
    cr_expect(strstr(result.ini, "[routes a]\ndefault = 127.0.0.1:5\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[routes b]\ndefault = 127.0.0.1:6\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[routes c]\nnot_tls = 127.0.0.1:7\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[routes d]\nnot_tls = 127.0.0.1:8\ndefault = 127.0.0.1:9\n\n"), "%s",
              result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* Debian's nginx.conf style: what snisplice already does is taken without
 * a word, the stream access log is carried over (in snisplice's format,
 * said once), a server's `access_log off` is said to be logged anyway (one
 * log for all), and the resolver and tcp_nodelay off are explained rather
 * than just dropped. */
Test(nginx_import, logging_and_what_snisplice_always_does)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                          /* 1 */
        "  access_log /var/log/nginx/stream.log basic;\n"                     /* 2 */
        "  resolver 127.0.0.11 valid=30s;\n"                                  /* 3 */
        "  tcp_nodelay on;\n"                                                 /* 4 */
        "  server { listen 443; proxy_pass 127.0.0.1:8443; proxy_half_close on;\n" /* 5 */
        "           proxy_next_upstream on; access_log off; }\n"              /* 6 */
        "  server { listen 444; proxy_pass 127.0.0.1:8444;\n"                 /* 7 */
        "           access_log /var/log/nginx/other.log; tcp_nodelay off; }\n" /* 8 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:2:", "snisplice writes its own line format"));
    cr_expect(has_exact_warning(&result, "nginx.conf:3: warning: resolver: not carried over (snisplice resolves "
                                         "server names when it loads its configuration, with the system's "
                                         "resolver: /etc/hosts, then /etc/resolv.conf)"));
    cr_expect(has_warning(&result, "nginx.conf:8:", "one access log; lines go to /var/log/nginx/stream.log"));
    cr_expect(has_exact_warning(&result, "nginx.conf:8: warning: tcp_nodelay: not carried over (snisplice always "
                                         "sets TCP_NODELAY, so relayed TLS records leave at once)"));
    cr_expect(has_warning(&result, "nginx.conf:6:", "access_log off: snisplice has one access log for every "
                                                    "listener, so connections nginx did not log here are logged to "
                                                    "/var/log/nginx/stream.log too"));
    cr_expect_eq(result.warning_count, 5);
    cr_expect(strstr(result.ini, "[global]\naccess_log = /var/log/nginx/stream.log\n"), "%s", result.ini);
    nginx_import_free(&result);

    /* syslog: is no file: left out (it was written as a path, which -t then
     * refused). */
    result = import_text("stream { access_log syslog:server=unix:/dev/log,tag=stream sni;\n"
                         "  server { listen 443; proxy_pass 127.0.0.1:8443; } }\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:1:", "not to syslog; not carried over"));
    cr_expect_eq(result.warning_count, 1);
    cr_expect(strstr(result.ini, "access_log") == NULL, "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    /* A relative path is nginx's prefix's, and a variable names a file per
     * connection: neither is carried over (-t refuses both), and an
     * absolute path later on still is. */
    result = import_text("stream { access_log logs/stream.log;\n"
                         "  server { listen 443; proxy_pass 127.0.0.1:8443; access_log /var/log/$server_addr.log; }\n"
                         "  server { listen 444; proxy_pass 127.0.0.1:8444; access_log /var/log/stream.log; } }\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:1:", "access_log logs/stream.log: not carried over"));
    cr_expect(has_warning(&result, "nginx.conf:2:", "access_log /var/log/$server_addr.log: not carried over"));
    cr_expect(strstr(result.ini, "[global]\naccess_log = /var/log/stream.log\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

Test(nginx_import, several_servers_each_become_a_listener)
{
    struct nginx_import result = import_text(
        "worker_processes auto;\n"
        "user www-data;\n"
        "stream {\n"
        "  proxy_connect_timeout 3s;\n"
        "  proxy_timeout 1h;\n"
        "  map $ssl_preread_server_name $web { default web; a.example.com 127.0.0.1:9100; }\n"
        "  map $ssl_preread_server_name $lan { git.lan 127.0.0.1:3000; }\n"
        "  upstream web { server 127.0.0.1:9001; }\n"
        "  server { listen 443; listen [::]:443; ssl_preread on; proxy_pass $web; preread_timeout 10s; }\n"
        "  server { listen 10.0.0.1:443; ssl_preread on; proxy_pass $lan; }\n"
        "  server { listen 2222; proxy_pass 127.0.0.1:22; }\n"
        "  server { listen 8080; proxy_pass web; proxy_timeout 2h; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:2:", "user www-data: carried over"));
    cr_expect_eq(result.warning_count, 1, "a server's own timeout is its listener's, not a conflict");
    cr_expect(strstr(result.ini, "[global]\nworkers = auto\nuser = www-data\nconnect_timeout = 3s\n"
                                 "idle_timeout = 1h\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port443]\naddress = 0.0.0.0:443\naddress = [::]:443\nroutes = web\n"
                                 "preread_timeout = 10s\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port443_2]\naddress = 10.0.0.1:443\nroutes = lan\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port2222]\naddress = 0.0.0.0:2222\nupstream = 127.0.0.1:22\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port8080]\naddress = 0.0.0.0:8080\nupstream = web\nidle_timeout = 2h\n\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "[routes web]\ndefault = web\na.example.com = 127.0.0.1:9100\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[routes lan]\ngit.lan = 127.0.0.1:3000\n"), "%s", result.ini);
    nginx_import_free(&result);
}

/* `listen [::]:443 ipv6only=off` is nginx's one-line dual stack: its
 * IPv4 clients come in on that socket too. snisplice's IPv6 sockets are
 * IPv6-only, so the listener gets 0.0.0.0:443 beside it, with the same
 * PROXY-header trust; on a specific IPv6 address ipv6only=off changed
 * nothing and adds nothing. Before, the parameter was left out with a
 * warning and every IPv4 client of the migrated proxy was refused. */
Test(nginx_import, dual_stack_listen_keeps_its_ipv4_clients)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $web { default 127.0.0.1:9001; }\n"
        "  server { listen [::]:443 ipv6only=off proxy_protocol; set_real_ip_from 2001:db8::/32;\n"
        "           ssl_preread on; proxy_pass $web; }\n"
        "  server { listen [::1]:2222 ipv6only=off; proxy_pass 127.0.0.1:22; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(strstr(result.ini, "[listen port443]\naddress = [::]:443\naddress = 0.0.0.0:443\n"
                                 "routes = web\nproxy_protocol_from = 2001:db8::/32\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port2222]\naddress = [::1]:2222\nupstream = 127.0.0.1:22\n\n"), "%s",
              result.ini);
    cr_expect_not(has_warning(&result, "nginx.conf:3:", "ipv6only"));
    cr_expect_not(has_warning(&result, "nginx.conf:5:", "ipv6only"));
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* nginx's `user` is carried over, as its master starts as root too; but
 * the shipped systemd unit starts snisplice unprivileged, where `-t`
 * refuses `user =`: the warning says so first, and what to do there. */
Test(nginx_import, user_is_carried_over_with_a_warning)
{
    struct nginx_import result = import_text("user www-data www-data;\n"
                                             "stream { server { listen 2222; proxy_pass 127.0.0.1:22; } }\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:1: warning: user www-data: carried over as `user = www-data`, "
                                         "which works only when snisplice starts as root (it binds, then "
                                         "switches); under the shipped systemd unit, which starts it "
                                         "unprivileged with CAP_NET_BIND_SERVICE, remove that line"));
    cr_expect_eq(result.warning_count, 1);
    cr_expect(strstr(result.ini, "[global]\nuser = www-data\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* The INI loader refuses unix: listen addresses: carried over, the
 * output would not load. The server's TCP listen still comes along. */
Test(nginx_import, unix_listen_is_skipped_with_a_warning)
{
    struct nginx_import result = import_text(
        "stream { server { listen unix:/run/nginx-stream.sock; listen 2222; proxy_pass 127.0.0.1:22; } }\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:1: warning: listen unix:/run/nginx-stream.sock: snisplice "
                                         "listens on TCP addresses only; skipped"));
    cr_expect_eq(result.warning_count, 1);
    cr_expect_null(strstr(result.ini, "unix:"), "%s", result.ini);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:2222\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

Test(nginx_import, proxy_protocol_sent_and_accepted)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  set_real_ip_from 10.0.0.0/8;\n"
        "  map $ssl_preread_server_name $name { matrix.example.com matrix; blog.example.com 127.0.0.1:8443; }\n"
        "  upstream matrix { server 127.0.0.1:12443; }\n"
        "  server { listen 443 proxy_protocol; ssl_preread on; proxy_pass $name; proxy_protocol on; }\n"
        "  server { listen 2222 proxy_protocol; proxy_pass 127.0.0.1:22; set_real_ip_from 192.168.0.0/16; }\n"
        "}\n");
    log_warnings(&result);
    /* Clients outside set_real_ip_from: nginx wanted a header from them
     * too (so refused them without one), snisplice serves them. */
    cr_expect(has_warning(&result, "nginx.conf:5:", "listen 443 proxy_protocol: nginx required a PROXY header from "
                                                    "every client"));
    cr_expect(has_warning(&result, "nginx.conf:6:", "listen 2222 proxy_protocol"));
    cr_expect_eq(result.warning_count, 2);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:443\nroutes = name\nproxy_protocol_from = 10.0.0.0/8\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:22\nproxy_protocol_from = 192.168.0.0/16\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream matrix]\nserver = 127.0.0.1:12443\nproxy_protocol = v1\n"),
              "%s", result.ini);
    /* A literal target that needs the header gets an upstream of its own. */
    cr_expect(strstr(result.ini, "blog.example.com = to_127_0_0_1_8443\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream to_127_0_0_1_8443]\nserver = 127.0.0.1:8443\nproxy_protocol = v1\n"),
              "%s", result.ini);
    nginx_import_free(&result);
}

/* nginx sets proxy_protocol per listen, snisplice proxy_protocol_from per
 * listener: a server whose listens disagree becomes two listeners with
 * its routes, so that its plain address keeps serving plain clients (one
 * listener for both used to close them as invalid_proxy_header). */
Test(nginx_import, listens_with_and_without_proxy_protocol_become_two_listeners)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { default 127.0.0.1:8443; }\n"
        "  server { listen 443 proxy_protocol so_keepalive=on; listen 8443; listen [::]:443 proxy_protocol so_keepalive=on;\n"
        "           set_real_ip_from 10.0.0.0/8; proxy_pass $name; ssl_preread on; }\n"
        "  server { listen 9443; proxy_pass $name; ssl_preread on; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:3:", "listen 443 proxy_protocol"));
    cr_expect_eq(result.warning_count, 1);
    cr_expect(strstr(result.ini, "[listen port8443]\naddress = 0.0.0.0:8443\nroutes = name\n\n"
                                 "[listen port443_proxy_protocol]\naddress = 0.0.0.0:443\naddress = [::]:443\n"
                                 "routes = name\ntcp_keepalive = on\nproxy_protocol_from = 10.0.0.0/8\n\n"
                                 "[listen port9443]\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    /* The only routed server: its table is named then, since two
     * listeners use it. */
    result = import_text("stream {\n"
                         "  map $ssl_preread_server_name $name { default 127.0.0.1:8443; }\n"
                         "  server { listen 443 proxy_protocol; listen 8443; proxy_pass $name; ssl_preread on; }\n"
                         "}\n");
    log_warnings(&result);
    cr_expect(strstr(result.ini, "[listen port8443]\naddress = 0.0.0.0:8443\nroutes = name\n\n"
                                 "[listen port443_proxy_protocol]\naddress = 0.0.0.0:443\nroutes = name\n"), "%s",
              result.ini);
    cr_expect(strstr(result.ini, "[routes name]\ndefault = 127.0.0.1:8443\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* listen ... so_keepalive= becomes the listener's tcp_keepalive. */
Test(nginx_import, so_keepalive_becomes_tcp_keepalive)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                                    /* 1 */
        "  upstream a { server 127.0.0.1:1; }\n"                                       /* 2 */
        "  server { listen 443 so_keepalive=30m::10; proxy_pass a; }\n"                /* 3 */
        "  server { listen 444 so_keepalive=on; proxy_pass a; }\n"                     /* 4 */
        "  server { listen 445 so_keepalive=off; proxy_pass a; }\n"                    /* 5 */
        "  server { listen 446 so_keepalive=2h:60s:; proxy_pass a; }\n"                /* 6 */
        "  server { listen 447 so_keepalive=0:1:1; proxy_pass a; }\n"                  /* 7 */
        "  server { listen 448 so_keepalive=1:1:200; proxy_pass a; }\n"                /* 8 */
        "  server {\n"                                                                  /* 9 */
        "    listen 449 so_keepalive=on;\n"                                             /* 10 */
        "    listen 450 so_keepalive=1:1:1;\n"                                          /* 11 */
        "    proxy_pass a;\n"                                                           /* 12 */
        "  }\n"                                                                         /* 13 */
        "}\n");
    log_warnings(&result);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:443\nupstream = a\ntcp_keepalive = 30m::10\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:444\nupstream = a\ntcp_keepalive = on\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:445\nupstream = a\n\n"), "off: nothing written\n%s", result.ini);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:446\nupstream = a\ntcp_keepalive = 2h:1m:\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:447\nupstream = a\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:448\nupstream = a\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:449\naddress = 0.0.0.0:450\nupstream = a\ntcp_keepalive = on\n"),
              "%s", result.ini);
    cr_expect(has_exact_warning(&result, "nginx.conf:7: warning: listen 447: so_keepalive=0:1:1: IDLE '0' must be "
                                         "whole seconds from 1s to 32767s (e.g. 75s, 30m); not carried over"));
    cr_expect(has_exact_warning(&result, "nginx.conf:8: warning: listen 448: so_keepalive=1:1:200: COUNT '200' must "
                                         "be a number from 1 to 127; not carried over"));
    cr_expect(has_exact_warning(&result, "nginx.conf:11: warning: listen 450: so_keepalive=1s:1s:1 here, "
                                         "so_keepalive=on on listen 449; snisplice has one tcp_keepalive per "
                                         "listener, so all of this server's addresses get tcp_keepalive = on"));
    cr_expect_eq(result.warning_count, 3);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* proxy_socket_keepalive on (stream level, or a server's own) becomes
 * tcp_keepalive = on in every upstream the server reaches. */
Test(nginx_import, proxy_socket_keepalive_becomes_upstream_tcp_keepalive)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                                      /* 1 */
        "  proxy_socket_keepalive on;\n"                                                  /* 2 */
        "  map $ssl_preread_server_name $name {\n"                                        /* 3 */
        "    a.example.com a; b.example.com 127.0.0.1:8443; default c;\n"                 /* 4 */
        "  }\n"                                                                           /* 5 */
        "  upstream a { server 127.0.0.1:1; }\n"                                         /* 6 */
        "  upstream b { server 127.0.0.1:2; }\n"                                         /* 7 */
        "  upstream c { server 127.0.0.1:3; }\n"                                         /* 8 */
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"                    /* 9 */
        "  server { listen 444; proxy_pass b; proxy_socket_keepalive off; }\n"            /* 10 */
        "  server { listen 445; proxy_pass c; proxy_socket_keepalive off; }\n"            /* 11 */
        "  server { listen 446; proxy_pass 127.0.0.1:22; }\n"                             /* 12 */
        "  server { listen 447; proxy_pass 127.0.0.1:23; proxy_socket_keepalive off; }\n" /* 13 */
        "}\n");
    log_warnings(&result);
    cr_expect(strstr(result.ini, "[upstream a]\nserver = 127.0.0.1:1\ntcp_keepalive = on\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream b]\nserver = 127.0.0.1:2\n\n"), "the server's off wins\n%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream c]\nserver = 127.0.0.1:3\ntcp_keepalive = on\n\n"), "%s", result.ini);
    cr_expect(has_exact_warning(&result, "nginx.conf:8: warning: upstream c is reached from servers with and without "
                                         "proxy_socket_keepalive on; its sockets now have keepalive for all of them"));
    /* A literal target that needs keepalive gets an upstream of its own;
     * one that does not stays an address. */
    cr_expect(strstr(result.ini, "b.example.com = to_127_0_0_1_8443\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream to_127_0_0_1_8443]\nserver = 127.0.0.1:8443\ntcp_keepalive = on\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = to_127_0_0_1_22\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream to_127_0_0_1_22]\nserver = 127.0.0.1:22\ntcp_keepalive = on\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:23\n"), "%s", result.ini);
    cr_expect_eq(result.warning_count, 1);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* One made-up section serves every line that needs a setting for a
 * literal address: a server with only keepalive then sends the PROXY
 * header another server asked for. Said, as for a named upstream. */
Test(nginx_import, literal_target_with_mixed_settings_warns)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                                    /* 1 */
        "  server { listen 2000; proxy_pass 127.0.0.1:9000; proxy_protocol on; }\n"     /* 2 */
        "  server { listen 2001; proxy_pass 127.0.0.1:9000; proxy_socket_keepalive on; }\n" /* 3 */
        "  server { listen 2002; proxy_pass 127.0.0.1:9000; }\n"                        /* 4 */
        "}\n");
    log_warnings(&result);
    cr_expect(strstr(result.ini, "[upstream to_127_0_0_1_9000]\nserver = 127.0.0.1:9000\nproxy_protocol = v1\n"
                                 "tcp_keepalive = on\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:2002\nupstream = 127.0.0.1:9000\n"),
              "a server needing neither keeps the address\n%s", result.ini);
    cr_expect(has_exact_warning(&result, "nginx.conf:2: warning: address 127.0.0.1:9000 is reached from servers with "
                                         "and without proxy_protocol on; it now gets the PROXY header from all of them"));
    cr_expect(has_exact_warning(&result, "nginx.conf:2: warning: address 127.0.0.1:9000 is reached from servers with "
                                         "and without proxy_socket_keepalive on; its sockets now have keepalive for "
                                         "all of them"));
    cr_expect_eq(result.warning_count, 2);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    /* Through a map shared by servers that disagree: the map says it once. */
    struct nginx_import shared = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { a.example.com 127.0.0.1:9000; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; proxy_socket_keepalive on; }\n"
        "  server { listen 8443; ssl_preread on; proxy_pass $name; }\n"
        "}\n");
    log_warnings(&shared);
    cr_expect(has_exact_warning(&shared, "nginx.conf:2: warning: map $name is used by servers with and without "
                                         "proxy_socket_keepalive on; snisplice has one routes table for it, so every "
                                         "upstream it names now has keepalive for all of them"));
    cr_expect_eq(shared.warning_count, 1);
    expect_loadable(shared.ini);
    nginx_import_free(&shared);
}

Test(nginx_import, proxy_protocol_listen_without_trusted_sources_warns)
{
    struct nginx_import result = import_text(
        "stream { server { listen 443 proxy_protocol; proxy_pass 127.0.0.1:8443; } }\n");
    cr_expect(has_warning(&result, "nginx.conf:1:", "every client"));
    cr_expect(strstr(result.ini, "proxy_protocol_from = 0.0.0.0/0\nproxy_protocol_from = ::/0\n"), "%s", result.ini);
    nginx_import_free(&result);
}

Test(nginx_import, includes_are_read_relative_to_the_main_file)
{
    char directory[] = "/tmp/snisplice-nginx-XXXXXX";
    cr_assert_not_null(mkdtemp(directory));
    char path[256];
    snprintf(path, sizeof path, "%s/conf.d", directory);
    cr_assert_eq(mkdir(path, 0700), 0);
    struct { const char *name, *text; } files[] = {
        { "nginx.conf", "user nobody;\nstream {\n    include conf.d/*.conf;\n}\n" },
        { "conf.d/map.conf", "map $ssl_preread_server_name $name {\n  a.example.com a;\n  ~(?!x) a;\n}\n" },
        { "conf.d/servers.conf", "upstream a { server 127.0.0.1:9001; }\nserver { listen 443; ssl_preread on; proxy_pass $name; }\n" },
    };
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", directory, files[i].name);
        FILE *file = fopen(path, "w");
        cr_assert_not_null(file);
        fputs(files[i].text, file);
        fclose(file);
    }
    snprintf(path, sizeof path, "%s/nginx.conf", directory);
    struct nginx_import result;
    char error[512];
    cr_assert(nginx_import_file(path, &result, error, sizeof error), "%s", error);
    log_warnings(&result);
    char where[300];
    snprintf(where, sizeof where, "%s/conf.d/map.conf:3:", directory);
    cr_expect(has_warning(&result, where, "look-around"), "warning names the included file");
    cr_expect(has_warning(&result, "", "user nobody: carried over"));
    cr_expect_eq(result.warning_count, 2);
    cr_expect(strstr(result.ini, "user = nobody\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[routes]\na.example.com = a\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream a]\nserver = 127.0.0.1:9001\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
    char command[400];
    snprintf(command, sizeof command, "rm -rf '%s'", directory);
    cr_expect_eq(system(command), 0);
}

Test(nginx_import, syntax_errors_name_file_and_line)
{
    const struct { const char *text, *expected; } cases[] = {
        { "stream {\n  server { listen 443;\n", "nginx.conf:3: unexpected end of file" },
        { "stream { }\n}\n", "nginx.conf:2: unexpected \"}\"" },
        { "user nobody\n", "nginx.conf:2: unexpected end of file after \"user\"" },
        { "stream { map \"$x { }\n", "nginx.conf:1: unterminated quoted string" },
        { "include other.conf;\n", "nginx.conf:1: include is not allowed here" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct nginx_tree tree;
        struct nginx_parse_options options = { "/nonexistent", false };
        char error[512];
        bool parsed = nginx_parse_text(&tree, "nginx.conf", cases[i].text, strlen(cases[i].text), &options,
                                       error, sizeof error);
        nginx_tree_free(&tree);
        cr_expect_not(parsed, "case %zu parsed", i);
        cr_expect(strncmp(error, cases[i].expected, strlen(cases[i].expected)) == 0,
                  "case %zu: got '%s', want '%s...'", i, error, cases[i].expected);
    }
}

/* A big hosting map: 100,000 names, each to its own address, plus
 * wildcards to named upstreams. Every entry converts, and the import
 * stays linear: it took 74 s (a scan of all
 * upstreams per entry, and a buffer the size of the rest of the file per
 * word: 856 MiB). */
Test(nginx_import, one_hundred_thousand_map_entries, .timeout = 60)
{
    enum { NAMES = 100000, WILDCARDS = 2000 };
    size_t size = 1000 + (NAMES + WILDCARDS) * 80, length = 0;
    char *text = malloc(size);
    cr_assert_not_null(text);
    length += (size_t)snprintf(text + length, size - length,
                               "stream {\n  map $ssl_preread_server_name $backend {\n    hostnames;\n");
    for (int i = 0; i < NAMES; i++)
        length += (size_t)snprintf(text + length, size - length, "    svc%d.example.net 10.%d.%d.%d:%d;\n", i,
                                   i >> 16 & 255, i >> 8 & 255, i & 255, 1000 + i % 50000);
    for (int i = 0; i < WILDCARDS; i++)
        length += (size_t)snprintf(text + length, size - length, "    *.w%d.example.org up%d;\n", i, i % 50);
    length += (size_t)snprintf(text + length, size - length, "    default up0;\n  }\n");
    for (int i = 0; i < 50; i++)
        length += (size_t)snprintf(text + length, size - length, "  upstream up%d { server 127.0.0.1:%d; }\n", i,
                                   2000 + i);
    snprintf(text + length, size - length, "  server { listen 443; proxy_pass $backend; ssl_preread on; }\n}\n");
    struct nginx_import result = import_text(text);
    free(text);
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    size_t routes = 0, upstreams = 0;
    for (const char *line = result.ini; line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        routes += strncmp(line, "svc", 3) == 0 || strncmp(line, "*.w", 3) == 0;
        upstreams += strncmp(line, "[upstream ", 10) == 0;
    }
    cr_expect_eq(routes, NAMES + WILDCARDS);
    cr_expect_eq(upstreams, 50, "addresses stay addresses; nginx's upstreams stay upstreams");
    cr_expect(strstr(result.ini, "\nsvc99999.example.net = 10.1.134.159:50999\n"), "%.300s",
              strstr(result.ini, "svc99999"));
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* A hosting config: a server per tenant address, all on port 443, every
 * third also taking PROXY headers on a second address. Each gets the
 * first free "port443_N" (and "port443_proxy_protocol_N"), as before,
 * and the import stays linear: trying each suffix against every name
 * given before took over two minutes for 5,000 servers. */
Test(nginx_import, five_thousand_servers_on_one_port, .timeout = 30)
{
    enum { SERVERS = 5000 };
    size_t size = 1000 + SERVERS * 160, length = 0;
    char *text = malloc(size);
    cr_assert_not_null(text);
    length += (size_t)snprintf(text + length, size - length,
                               "stream {\n  map $ssl_preread_server_name $backend {\n    hostnames;\n"
                               "    default up;\n  }\n  upstream up { server 127.0.0.1:2000; }\n");
    for (int i = 0; i < SERVERS; i++) {
        length += (size_t)snprintf(text + length, size - length, "  server { listen 10.1.%d.%d:443; ", i / 250,
                                   i % 250 + 1);
        if (i % 3 == 0)
            length += (size_t)snprintf(text + length, size - length, "listen 10.2.%d.%d:443 proxy_protocol; ",
                                       i / 250, i % 250 + 1);
        length += (size_t)snprintf(text + length, size - length, "proxy_pass $backend; ssl_preread on; }\n");
    }
    snprintf(text + length, size - length, "}\n");
    struct nginx_import result = import_text(text);
    free(text);
    cr_expect_eq(count_lines(result.ini, "routes = backend"), SERVERS + (SERVERS + 2) / 3);
    cr_expect(strstr(result.ini, "[listen port443]\naddress = 10.1.0.1:443\n"), "%.400s", result.ini);
    cr_expect(strstr(result.ini, "[listen port443_proxy_protocol]\naddress = 10.2.0.1:443\n"), "%.400s",
              result.ini);
    cr_expect(strstr(result.ini, "[listen port443_2]\naddress = 10.1.0.2:443\n"));
    cr_expect(strstr(result.ini, "[listen port443_proxy_protocol_2]\naddress = 10.2.0.4:443\n"));
    cr_expect(strstr(result.ini, "[listen port443_5000]\naddress = 10.1.19.250:443\n"));
    cr_expect(strstr(result.ini, "[listen port443_proxy_protocol_1667]\naddress = 10.2.19.249:443\n"));
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

Test(nginx_import, quoting_escapes_and_comments)
{
    struct nginx_import result = import_text(
        "# a comment\n"
        "stream { # trailing comment\n"
        "  map $ssl_preread_server_name \"$name\" {\n"
        "    'quoted.example.com' \"a\";\n"
        "    plain.example.com a; # why\n"
        "  }\n"
        "  upstream a { server \"127.0.0.1:9001\"; }\n"
        "  server { listen '443'; ssl_preread on; proxy_pass $name; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[routes]\nquoted.example.com = a\nplain.example.com = a\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* nginx allows any characters in an upstream's name; the INI allows
 * letters, digits, '_' and '-'. The section and every reference to it get
 * the same cleaned name, and two names that clean alike stay apart. */
Test(nginx_import, upstream_names_the_ini_does_not_allow)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { matrix.example.com matrix.backend; blog.example.com matrix_backend; }\n"
        "  upstream matrix.backend { server 127.0.0.1:12443; }\n"
        "  upstream matrix_backend { server 127.0.0.1:8443; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"
        "  server { listen 8448; proxy_pass matrix.backend; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[upstream matrix_backend]\nserver = 127.0.0.1:12443\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream matrix_backend_2]\nserver = 127.0.0.1:8443\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "matrix.example.com = matrix_backend\nblog.example.com = matrix_backend_2\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:8448\nupstream = matrix_backend\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* "-" is the route logs and metrics show before routing, so the INI does
 * not take it as an upstream name: nginx's "upstream -" gets another. */
Test(nginx_import, an_upstream_named_as_unrouted_is_renamed)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  upstream - { server 127.0.0.1:12443; }\n"
        "  server { listen 8448; proxy_pass -; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[upstream -_2]\nserver = 127.0.0.1:12443\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:8448\nupstream = -_2\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* nginx sends the PROXY header per server. A literal address reached from
 * a server with proxy_protocol on and from one without gets it only from
 * the first; a map or upstream shared by both cannot, and says so. */
Test(nginx_import, proxy_protocol_on_some_servers_only)
{
    struct nginx_import literal = import_text(
        "stream {\n"
        "  server { listen 2222; proxy_pass 127.0.0.1:22; proxy_protocol on; }\n"
        "  server { listen 2223; proxy_pass 127.0.0.1:22; }\n"
        "}\n");
    log_warnings(&literal);
    cr_expect_eq(literal.warning_count, 0);
    cr_expect(strstr(literal.ini, "address = 0.0.0.0:2222\nupstream = to_127_0_0_1_22\n"), "%s", literal.ini);
    cr_expect(strstr(literal.ini, "address = 0.0.0.0:2223\nupstream = 127.0.0.1:22\n"), "%s", literal.ini);
    cr_expect(strstr(literal.ini, "[upstream to_127_0_0_1_22]\nserver = 127.0.0.1:22\nproxy_protocol = v1\n"),
              "%s", literal.ini);
    expect_loadable(literal.ini);
    nginx_import_free(&literal);

    struct nginx_import shared = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { matrix.example.com matrix; blog.example.com 127.0.0.1:8443; }\n"
        "  upstream matrix { server 127.0.0.1:12443; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; proxy_protocol on; }\n"
        "  server { listen 8443; ssl_preread on; proxy_pass $name; }\n"
        "}\n");
    log_warnings(&shared);
    cr_expect(has_warning(&shared, "nginx.conf:2:", "with and without proxy_protocol"));
    cr_expect(has_warning(&shared, "nginx.conf:3:", "upstream matrix is reached from servers with and without"));
    cr_expect_eq(shared.warning_count, 2);
    expect_loadable(shared.ini);
    nginx_import_free(&shared);
}

/* ssl_preread and proxy_protocol may be set for the whole stream block;
 * servers inherit them unless they set their own. */
Test(nginx_import, stream_level_ssl_preread_and_proxy_protocol_are_inherited)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  ssl_preread on;\n"
        "  proxy_protocol on;\n"
        "  map $ssl_preread_server_name $name { matrix.example.com matrix; }\n"
        "  upstream matrix { server 127.0.0.1:12443; }\n"
        "  server { listen 443; proxy_pass $name; }\n"
        "  server { listen 2222; proxy_pass 127.0.0.1:22; proxy_protocol off; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[upstream matrix]\nserver = 127.0.0.1:12443\nproxy_protocol = v1\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "address = 0.0.0.0:2222\nupstream = 127.0.0.1:22\n"), "%s", result.ini);
    cr_expect_null(strstr(result.ini, "[upstream to_127_0_0_1_22]"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    struct nginx_import overridden = import_text(
        "stream {\n"
        "  ssl_preread on;\n"
        "  map $ssl_preread_server_name $name { matrix.example.com 127.0.0.1:12443; }\n"
        "  server { listen 443; proxy_pass $name; ssl_preread off; }\n"
        "}\n");
    cr_expect(has_warning(&overridden, "nginx.conf:4:", "without 'ssl_preread on'"));
    nginx_import_free(&overridden);
}

/* `name "";` made nginx close the connection (proxy_pass to nothing). */
Test(nginx_import, empty_map_value_is_reported_as_what_nginx_did)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { blank.example.com \"\"; default 127.0.0.1:8443; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:2:", "nginx closed these connections"));
    cr_expect_eq(result.warning_count, 1);
    cr_expect_null(strstr(result.ini, "blank.example.com"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* nginx reads a map in order: `hostnames` makes wildcards of the entries
 * after it only; one before it was compared as plain text. */
Test(nginx_import, hostnames_applies_to_the_entries_after_it)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name {\n"
        "    *.early.example.com 127.0.0.1:9001;\n"
        "    hostnames;\n"
        "    *.late.example.com 127.0.0.1:9001;\n"
        "  }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:3:", "plain text"));
    cr_expect_eq(result.warning_count, 1);
    cr_expect_null(strstr(result.ini, "early"), "%s", result.ini);
    cr_expect(strstr(result.ini, "*.late.example.com = 127.0.0.1:9001\n"), "%s", result.ini);
    nginx_import_free(&result);
}

/* nginx's stream module has no default port: an upstream server or a
 * proxy_pass address without one is a configuration error there, a map
 * value without one fails each connection. None becomes port 80 here. */
Test(nginx_import, upstream_address_without_port_is_not_port_80)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { a.example.com 127.0.0.1; b.example.com web; }\n"
        "  upstream web { server 10.0.0.1; server 10.0.0.2:443; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:2:", "no port"));
    cr_expect(has_warning(&result, "nginx.conf:3:", "no port"));
    cr_expect_eq(result.warning_count, 2);
    cr_expect_null(strstr(result.ini, ":80"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream web]\nserver = 10.0.0.2:443\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* nginx has no upper bound on weight or max_fails, the INI has: a larger
 * value is written as the bound (the output must pass -t), said in a
 * warning. fail_timeout=0 (under a second in nginx) becomes 1s. */
Test(nginx_import, server_parameters_beyond_the_ini_bounds)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  upstream web { server 127.0.0.1:9001 weight=2000 max_fails=5000 fail_timeout=0; server 127.0.0.1:9002 weight=3; }\n"
        "  server { listen 443; proxy_pass web; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:2:", "weight=2000 is more than snisplice takes"));
    cr_expect(has_warning(&result, "nginx.conf:2:", "max_fails=5000 is more than snisplice takes"));
    cr_expect(has_warning(&result, "nginx.conf:2:", "fail_timeout=0"));
    cr_expect_eq(result.warning_count, 3);
    cr_expect(strstr(result.ini, "server = 127.0.0.1:9001 weight=1000 max_fails=1000 fail_timeout=1s\n"
                                 "server = 127.0.0.1:9002 weight=3\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* ngx_stream_access_module: allow/deny are checked in order, the first
 * match decides. Each rule becomes one line of the server's listener, in
 * the same order, as the user wrote it. (Not loaded: the loader's side of
 * allow/deny is separate work.) */
Test(nginx_import, server_access_rules_keep_their_order)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { a.example.com 127.0.0.1:8443; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name;\n"
        "           allow 192.168.1.0/24; allow 2001:db8::/32; deny all; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[listen]\naddress = 0.0.0.0:443\n"
                                 "allow = 192.168.1.0/24\nallow = 2001:db8::/32\ndeny = all\n\n[routes]\n"),
              "%s", result.ini);
    nginx_import_free(&result);
}

/* nginx's merge: a server with no rule of its own takes the stream
 * block's (even those written after it); one with any rule of its own
 * has only those, nothing appended. */
Test(nginx_import, stream_access_rules_go_to_servers_without_their_own)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  allow 10.0.0.0/8;\n"
        "  server { listen 2222; proxy_pass 127.0.0.1:22; }\n"
        "  server { listen 8443; proxy_pass 127.0.0.1:8443; allow 192.168.0.0/16; deny all; }\n"
        "  deny all;\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[listen port2222]\naddress = 0.0.0.0:2222\nupstream = 127.0.0.1:22\n"
                                 "allow = 10.0.0.0/8\ndeny = all\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port8443]\naddress = 0.0.0.0:8443\nupstream = 127.0.0.1:8443\n"
                                 "allow = 192.168.0.0/16\ndeny = all\n\n"), "%s", result.ini);
    const char *first = strstr(result.ini, "allow = 10.0.0.0/8\n");
    cr_expect(first && !strstr(first + 1, "allow = 10.0.0.0/8\n"), "the stream rules once only:\n%s", result.ini);
    nginx_import_free(&result);
}

/* unix: rules concern unix-socket listeners, which snisplice does not
 * have; a value nginx would refuse is skipped, and the warning says the
 * remaining rules now mean something else. A server whose only rules were
 * unix: ones still does not take the stream block's, as in nginx. */
Test(nginx_import, unix_and_unreadable_access_rules_are_left_out_with_a_warning)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                             /* 1 */
        "  deny 10.0.0.1;\n"                                                     /* 2 */
        "  server {\n"                                                           /* 3 */
        "    listen 2222;\n"                                                     /* 4 */
        "    proxy_pass 127.0.0.1:22;\n"                                         /* 5 */
        "    allow unix:;\n"                                                     /* 6 */
        "    allow 300.1.2.3;\n"                                                 /* 7 */
        "    allow 192.168.0.0/16;\n"                                            /* 8 */
        "    deny example.com;\n"                                                /* 9 */
        "    deny all;\n"                                                        /* 10 */
        "  }\n"                                                                  /* 11 */
        "  server { listen 2223; proxy_pass 127.0.0.1:23; deny unix:; }\n"        /* 12 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:6:", "allow unix: concerns clients of unix-socket listeners"));
    cr_expect_not(has_warning(&result, "nginx.conf:6:", "no other rule"), "the server has TCP rules too");
    cr_expect(has_warning(&result, "nginx.conf:7:", "allow 300.1.2.3: '300.1.2.3' is not an IPv4 or IPv6"));
    cr_expect(has_warning(&result, "nginx.conf:7:", "nginx refuses this configuration"));
    cr_expect(has_warning(&result, "nginx.conf:7:", "CAUTION"));
    cr_expect(has_warning(&result, "nginx.conf:9:", "deny example.com: 'example.com' is not an IPv4 or IPv6"));
    cr_expect(has_warning(&result, "nginx.conf:9:", "CAUTION: the rules left may mean something else: clients this "
                                                    "deny was meant to refuse may now be served"));
    cr_expect(has_warning(&result, "nginx.conf:12:", "deny unix: concerns clients of unix-socket listeners"));
    cr_expect(has_warning(&result, "nginx.conf:12:", "nginx had no other rule here, so it served every TCP client"));
    cr_expect_eq(result.warning_count, 4);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:22\nallow = 192.168.0.0/16\ndeny = all\n\n"), "%s",
              result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:23\n\n"), "%s", result.ini);
    cr_expect_null(strstr(result.ini, "unix:"), "%s", result.ini);
    cr_expect_null(strstr(result.ini, "300.1.2.3"), "%s", result.ini);
    cr_expect_null(strstr(result.ini, "example.com"), "%s", result.ini);
    cr_expect_null(strstr(result.ini, "10.0.0.1"), "%s", result.ini);
    nginx_import_free(&result);
}

/* The case the rules are usually for: an SSH forward kept to a LAN. */
Test(nginx_import, plain_forward_keeps_its_access_rules)
{
    struct nginx_import result = import_text(
        "stream { server { listen 2222; proxy_pass 127.0.0.1:22; allow 10.0.0.0/8; deny all; } }\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[listen port2222]\naddress = 0.0.0.0:2222\nupstream = 127.0.0.1:22\n"
                                 "allow = 10.0.0.0/8\ndeny = all\n\n"), "%s", result.ini);
    nginx_import_free(&result);
}

/* The rules come last in the listener, after proxy_protocol_from, and
 * keep the user's spelling (host bits, upper case): the loader reads them
 * as nginx does. */
Test(nginx_import, access_rules_follow_proxy_protocol_from_as_written)
{
    struct nginx_import result = import_text(
        "stream { server { listen 443 proxy_protocol; set_real_ip_from 10.0.0.1; proxy_pass 127.0.0.1:8443;\n"
        "                  allow 192.168.1.7/16; allow 2001:DB8::/32; deny all; } }\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 1, "listen 443 proxy_protocol: a header only from set_real_ip_from");
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:8443\nproxy_protocol_from = 10.0.0.1\n"
                                 "allow = 192.168.1.7/16\nallow = 2001:DB8::/32\ndeny = all\n\n"), "%s", result.ini);
    nginx_import_free(&result);
}

/* ngx_stream_limit_conn_module on $binary_remote_addr: a server without
 * limit_conn of its own takes the stream block's (the plain forward too),
 * one with its own has only that. The line comes last in the listener,
 * after allow/deny. One zone over every limited server is what snisplice's
 * one count is, whatever the number per server: no warning. */
Test(nginx_import, limit_conn_is_inherited_or_the_servers_own)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  limit_conn_zone $binary_remote_addr zone=perip:10m;\n"
        "  limit_conn perip 10;\n"
        "  map $ssl_preread_server_name $name { a.example.com 127.0.0.1:8443; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; allow 10.0.0.0/8; deny all; }\n"
        "  server { listen 2222; proxy_pass 127.0.0.1:22; }\n"
        "  server { listen 8443; proxy_pass 127.0.0.1:9443; limit_conn perip 20; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[listen port443]\naddress = 0.0.0.0:443\nroutes = name\n"
                                 "allow = 10.0.0.0/8\ndeny = all\nmax_connections_per_client = 10\n\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port2222]\naddress = 0.0.0.0:2222\nupstream = 127.0.0.1:22\n"
                                 "max_connections_per_client = 10\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port8443]\naddress = 0.0.0.0:8443\nupstream = 127.0.0.1:9443\n"
                                 "max_connections_per_client = 20\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* A zone on another key counts something snisplice does not: said at the
 * zone and at each limit on it. A server whose only limit is on it still
 * does not take the stream block's, as in nginx. */
Test(nginx_import, limit_conn_zone_on_another_key_is_not_carried_over)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                                     /* 1 */
        "  limit_conn_zone $server_name zone=perserver:10m;\n"                           /* 2 */
        "  limit_conn_zone $binary_remote_addr$server_port zone=perport:10m;\n"          /* 3 */
        "  limit_conn_zone $binary_remote_addr zone=perip:10m;\n"                        /* 4 */
        "  limit_conn perip 10;\n"                                                       /* 5 */
        "  server { listen 443; proxy_pass 127.0.0.1:8443; limit_conn perserver 100; }\n" /* 6 */
        "  server { listen 444; proxy_pass 127.0.0.1:8444;\n"                            /* 7 */
        "           limit_conn perport 5; limit_conn perip 7; }\n"                       /* 8 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:2:", "limit_conn_zone $server_name zone=perserver: snisplice "
                                                    "limits connections per client address only"));
    cr_expect(has_warning(&result, "nginx.conf:3:", "zone=perport: snisplice limits connections per client"));
    cr_expect(has_warning(&result, "nginx.conf:6:", "limit_conn perserver 100: zone perserver counts by "
                                                    "$server_name, not by client address; not carried over"));
    cr_expect(has_warning(&result, "nginx.conf:8:", "limit_conn perport 5: zone perport counts by "
                                                    "$binary_remote_addr$server_port"));
    cr_expect_eq(result.warning_count, 4);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:8443\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:8444\nmax_connections_per_client = 7\n\n"), "%s",
              result.ini);
    cr_expect_null(strstr(result.ini, "= 100"), "%s", result.ini);
    cr_expect_null(strstr(result.ini, "= 10\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* Two per-address zones on one server: a client over either is refused,
 * so the smaller number is the limit, said once. Both zones count that
 * server only, as snisplice's count does: no word about counting. */
Test(nginx_import, limit_conn_on_two_zones_keeps_the_smallest)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                   /* 1 */
        "  limit_conn_zone $binary_remote_addr zone=perip:10m;\n"      /* 2 */
        "  limit_conn_zone $remote_addr zone=peraddr:1m;\n"            /* 3 */
        "  server {\n"                                                 /* 4 */
        "    listen 2222;\n"                                           /* 5 */
        "    proxy_pass 127.0.0.1:22;\n"                               /* 6 */
        "    limit_conn peraddr 20;\n"                                 /* 7 */
        "    limit_conn perip 5;\n"                                    /* 8 */
        "  }\n"                                                        /* 9 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:7:", "limit_conn peraddr 20: a listener has one "
                                                    "max_connections_per_client, and snisplice keeps the smallest "
                                                    "of this block's limits, limit_conn perip 5 (nginx.conf:8)"));
    cr_expect_eq(result.warning_count, 1);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:22\nmax_connections_per_client = 5\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* Servers limited by different zones: nginx counted them apart, snisplice
 * counts a client's connections on both listeners together. One warning
 * however many servers; a server without a limit is counted by neither. */
Test(nginx_import, limit_conn_zones_counted_apart_get_one_warning)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                                 /* 1 */
        "  limit_conn_zone $binary_remote_addr zone=web:10m;\n"                      /* 2 */
        "  limit_conn_zone $binary_remote_addr zone=ssh:10m;\n"                      /* 3 */
        "  server { listen 443; proxy_pass 127.0.0.1:8443; limit_conn web 20; }\n"   /* 4 */
        "  server { listen 444; proxy_pass 127.0.0.1:8444; limit_conn web 20; }\n"   /* 5 */
        "  server { listen 2222; proxy_pass 127.0.0.1:22; limit_conn ssh 2; }\n"     /* 6 */
        "  server { listen 2223; proxy_pass 127.0.0.1:23; limit_conn ssh 3; }\n"     /* 7 */
        "  server { listen 8080; proxy_pass 127.0.0.1:80; }\n"                       /* 8 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:2:", "limit_conn_zone $binary_remote_addr zone=web: nginx counts "
                                                    "a client's connections in each zone apart"));
    cr_expect(has_warning(&result, "nginx.conf:2:", "snisplice counts them together over every listener with "
                                                    "max_connections_per_client"));
    cr_expect_eq(result.warning_count, 1);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:8443\nmax_connections_per_client = 20\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:8444\nmax_connections_per_client = 20\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:22\nmax_connections_per_client = 2\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:23\nmax_connections_per_client = 3\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:80\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* Under limit_conn_dry_run on nginx refused no one: the limits it covers
 * are left out, said once per dry_run line; a server's own `off` is
 * enforced. The dry-run servers' connections still counted in the zone
 * nginx limited :444 with, which snisplice does not do: the counting
 * warning. The log level is nginx's error log; a zone nobody defined is a
 * config nginx refuses. */
Test(nginx_import, limit_conn_dry_run_log_level_and_undefined_zone)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                                      /* 1 */
        "  limit_conn_zone $binary_remote_addr zone=perip:10m;\n"                         /* 2 */
        "  limit_conn perip 10;\n"                                                        /* 3 */
        "  limit_conn_dry_run on;\n"                                                      /* 4 */
        "  limit_conn_log_level warn;\n"                                                  /* 5 */
        "  server { listen 443; proxy_pass 127.0.0.1:8443; }\n"                           /* 6 */
        "  server { listen 444; proxy_pass 127.0.0.1:8444; limit_conn_dry_run off; }\n"   /* 7 */
        "  server { listen 445; proxy_pass 127.0.0.1:8445; limit_conn perip 3; }\n"       /* 8 */
        "  server { listen 446; proxy_pass 127.0.0.1:8446; limit_conn nosuch 5;\n"        /* 9 */
        "           limit_conn_dry_run off; }\n"                                          /* 10 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:4:", "limit_conn_dry_run on: nginx refused no one under it, it only "
                                                    "counted and logged; snisplice has no dry run, so the "
                                                    "limit_conn limits it covers were left out"));
    cr_expect(has_warning(&result, "nginx.conf:5:", "limit_conn_log_level: not carried over (snisplice logs "
                                                    "refusals in its access log as outcome=client_limit)"));
    cr_expect(has_warning(&result, "nginx.conf:9:", "limit_conn nosuch 5: no limit_conn_zone defines zone nosuch "
                                                    "(nginx refuses this configuration); not carried over"));
    cr_expect(has_warning(&result, "nginx.conf:2:", "nginx counts a client's connections in each zone apart"));
    cr_expect_eq(result.warning_count, 4);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:8443\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:8444\nmax_connections_per_client = 10\n\n"), "%s",
              result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:8445\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:8446\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* What nginx itself refuses is left out with a warning; a limit behind a
 * PROXY listener that trusts every source (no set_real_ip_from) counted
 * the balancer in nginx, the header's clients in snisplice. */
Test(nginx_import, limit_conn_lines_nginx_refuses_and_an_untrusted_proxy_listener)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                            /* 1 */
        "  limit_conn_zone $binary_remote_addr zone=perip:10m;\n"               /* 2 */
        "  limit_conn_zone $remote_addr zone=perip:1m;\n"                       /* 3 */
        "  limit_conn_zone $remote_addr perip;\n"                               /* 4 */
        "  server { listen 443 proxy_protocol; proxy_pass 127.0.0.1:8443;\n"    /* 5 */
        "           limit_conn perip 0; limit_conn perip 70000;\n"              /* 6 */
        "           limit_conn perip 8; limit_conn perip 9; }\n"                /* 7 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_warning(&result, "nginx.conf:3:", "zone perip defined twice"));
    cr_expect(has_warning(&result, "nginx.conf:4:", "expected 'limit_conn_zone KEY zone=NAME:SIZE'"));
    cr_expect(has_warning(&result, "nginx.conf:6:", "limit_conn: expected 'limit_conn ZONE NUMBER', NUMBER from 1 "
                                                    "to 65535"));
    cr_expect(has_warning(&result, "nginx.conf:7:", "limit_conn perip 9: zone perip named twice in one block"));
    cr_expect(has_warning(&result, "nginx.conf:5:", "without set_real_ip_from: nginx required the PROXY header"));
    cr_expect(has_warning(&result, "nginx.conf:5:", "limit_conn behind listen ... proxy_protocol without "
                                                    "set_real_ip_from: nginx counted the load balancer's address"));
    cr_expect_eq(result.warning_count, 7);
    cr_expect(strstr(result.ini, "proxy_protocol_from = ::/0\nmax_connections_per_client = 8\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* Known nginx directives and parameters, from every place the importer
 * meets them (main context, stream, server, upstream, listen and upstream
 * server parameters), are still warnings, one each on its own line, but
 * with the reason and what snisplice does instead. */
Test(nginx_import, known_directives_are_left_out_with_the_reason)
{
    struct nginx_import result = import_text(
        "worker_rlimit_nofile 65536;\n"                                         /* 1 */
        "stream {\n"                                                            /* 2 */
        "  map_hash_bucket_size 128;\n"                                         /* 3 */
        "  variables_hash_max_size 2048;\n"                                     /* 4 */
        "  error_log /var/log/nginx/stream.log;\n"                              /* 5 */
        "  log_format basic '$remote_addr';\n"                                  /* 6 */
        "  proxy_next_upstream_tries 3;\n"                                      /* 7 */
        "  proxy_next_upstream_timeout 10s;\n"                                  /* 8 */
        "  map $ssl_preread_server_name $name { a.example.com a; default b; }\n" /* 9 */
        "  upstream a {\n"                                                      /* 10 */
        "    zone a 64k;\n"                                                     /* 11 */
        "    hash $ssl_preread_server_name consistent;\n"                       /* 12 */
        "    server 127.0.0.1:1 max_conns=10 slow_start=30s;\n"                 /* 13 */
        "    state /var/lib/nginx/state/a.conf;\n"                              /* 14 */
        "  }\n"                                                                 /* 15 */
        "  upstream b { server 127.0.0.1:2; resolver 127.0.0.53; random; }\n" /* 16 */
        "  server {\n"                                                          /* 17 */
        "    listen 443 so_keepalive=on backlog=511 fastopen=256;\n"            /* 18 */
        "    listen [::]:443 ipv6only=off setfib=1;\n"                          /* 19 */
        "    proxy_pass $name; ssl_preread on;\n"                               /* 20 */
        "    proxy_buffer_size 16k;\n"                                          /* 21 */
        "    proxy_socket_keepalive on;\n"                                      /* 22 */
        "    proxy_half_close off;\n"                                           /* 23 */
        "    ssl_certificate /etc/ssl/a.pem;\n"                                 /* 24 */
        "    js_preread main.preread;\n"                                        /* 25 */
        "    proxy_ssl_verify on;\n"                                            /* 26 */
        "    set $backend a;\n"                                                 /* 27 */
        "  }\n"                                                                 /* 28 */
        "}\n");
    log_warnings(&result);
    static const struct { const char *line; const char *part; } expected[] = {
        { "nginx.conf:1:", "worker_rlimit_nofile: not carried over (snisplice raises its open-file limit" },
        { "nginx.conf:3:", "map_hash_bucket_size: not needed" },
        { "nginx.conf:4:", "variables_hash_max_size: not needed" },
        { "nginx.conf:5:", "error_log: not carried over (snisplice logs to stderr" },
        { "nginx.conf:6:", "log_format: not carried over (snisplice's access log has its own fixed line format" },
        { "nginx.conf:7:", "proxy_next_upstream_tries: not carried over (snisplice tries every available server" },
        { "nginx.conf:8:", "proxy_next_upstream_timeout: not carried over (snisplice has no limit on all tries" },
        { "nginx.conf:11:", "upstream a: zone not carried over (nginx shares the group's state" },
        { "nginx.conf:12:", "upstream a: hash $ssl_preread_server_name consistent not carried over (snisplice "
                            "hashes only the client's address" },
        { "nginx.conf:13:", "parameter slow_start=30s not carried over (a server that answers again gets its full" },
        { "nginx.conf:14:", "upstream a: state not carried over (snisplice's servers are the INI's server lines" },
        { "nginx.conf:16:", "upstream b: resolver not carried over (snisplice resolves server names when it loads" },
        { "nginx.conf:16:", "upstream b: random not carried over (snisplice's weighted round robin shares" },
        { "nginx.conf:18:", "parameter 'backlog=511' not carried over (snisplice listens with a backlog of 4096" },
        { "nginx.conf:18:", "parameter 'fastopen=256' not carried over (snisplice does not enable TCP Fast Open" },
        { "nginx.conf:19:", "so_keepalive=off here, so_keepalive=on on listen 443" },
        { "nginx.conf:19:", "parameter 'setfib=1' not needed (FreeBSD only; snisplice runs on Linux)" },
        { "nginx.conf:21:", "proxy_buffer_size: not needed (snisplice splices through kernel pipes" },
        { "nginx.conf:23:", "proxy_half_close: not carried over (snisplice always half-closes" },
        { "nginx.conf:24:", "ssl_certificate: not carried over (nginx terminated TLS here" },
        { "nginx.conf:25:", "js_preread: not carried over (snisplice runs no njs scripts" },
        { "nginx.conf:26:", "proxy_ssl_verify: not carried over (snisplice never opens TLS to an upstream" },
        { "nginx.conf:27:", "set: not carried over (snisplice has no variables" },
    };
    size_t count = sizeof expected / sizeof expected[0];
    for (size_t i = 0; i < count; i++)
        cr_expect_eq(count_warnings(&result, expected[i].line, expected[i].part), 1, "%s %s", expected[i].line,
                     expected[i].part);
    cr_expect_eq(result.warning_count, count, "one warning each, no more");
    cr_expect(has_exact_warning(&result, "nginx.conf:3: warning: map_hash_bucket_size: not needed (nginx's hash "
                                         "table sizing; snisplice sizes its tables itself)"));
    cr_expect(has_exact_warning(&result, "nginx.conf:7: warning: proxy_next_upstream_tries: not carried over "
                                         "(snisplice tries every available server of the upstream once, "
                                         "primaries then backups, each within connect_timeout)"));
    cr_expect(has_exact_warning(&result, "nginx.conf:19: warning: listen [::]:443: so_keepalive=off here, "
                                         "so_keepalive=on on listen 443; snisplice has one tcp_keepalive per "
                                         "listener, so all of this server's addresses get tcp_keepalive = on"));
    cr_expect(has_exact_warning(&result, "nginx.conf:21: warning: proxy_buffer_size: not needed (snisplice splices "
                                         "through kernel pipes of 64 KiB, grown to 1 MiB for bulk transfers; there "
                                         "is no buffer of this size)"));
    cr_expect(has_exact_warning(&result, "nginx.conf:12: warning: upstream a: hash $ssl_preread_server_name "
                                         "consistent not carried over (snisplice hashes only the client's address, "
                                         "as balance = client_address; connections are shared out by weighted round "
                                         "robin instead, so a key no longer keeps its server)"));
    /* What could be carried over still is. */
    cr_expect(strstr(result.ini, "address = 0.0.0.0:443\naddress = [::]:443\ntcp_keepalive = on\n"), "%s",
              result.ini);
    cr_expect(strstr(result.ini, "[upstream a]\nserver = 127.0.0.1:1 max_conns=10\ntcp_keepalive = on\n"), "%s",
              result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* A directive, parameter or upstream line nginx does not document keeps
 * the plain warning: the importer claims no reason it does not know. */
Test(nginx_import, unknown_directives_keep_the_plain_warning)
{
    struct nginx_import result = import_text(
        "frobnicate_main on;\n"                                                 /* 1 */
        "stream {\n"                                                            /* 2 */
        "  frobnicate 1;\n"                                                     /* 3 */
        "  upstream a { server 127.0.0.1:1 frob; frobnicate 2; }\n"             /* 4 */
        "  server { listen 443 frob=1; proxy_pass a; frobnicate 3; }\n"         /* 5 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:1: warning: frobnicate_main: not carried over"));
    cr_expect(has_exact_warning(&result, "nginx.conf:3: warning: frobnicate: not carried over"));
    cr_expect(has_exact_warning(&result, "nginx.conf:4: warning: server 127.0.0.1:1: parameter frob not carried over"));
    cr_expect(has_exact_warning(&result, "nginx.conf:4: warning: upstream a: frobnicate not carried over"));
    cr_expect(has_exact_warning(&result, "nginx.conf:5: warning: listen 443: parameter 'frob=1' not carried over"));
    cr_expect(has_exact_warning(&result, "nginx.conf:5: warning: frobnicate: not carried over"));
    cr_expect_eq(result.warning_count, 6);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* preread_buffer_size is snisplice's preread_max (both close a client
 * whose hello does not fit): converted, set to the nearer bound of the
 * INI's 1k..64k with a warning, and, unlike the timeouts, one value for
 * every listener. */
Test(nginx_import, preread_buffer_size_becomes_preread_max)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  preread_buffer_size 32k;\n"
        "  server { listen 443; proxy_pass 127.0.0.1:8443; preread_buffer_size 32768; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[global]\npreread_max = 32k\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    result = import_text(
        "stream {\n"                                                            /* 1 */
        "  server { listen 443; proxy_pass 127.0.0.1:8443; preread_buffer_size 1m; }\n"   /* 2 */
        "  server { listen 444; proxy_pass 127.0.0.1:8444; preread_buffer_size 64k; }\n"  /* 3 */
        "  server { listen 445; proxy_pass 127.0.0.1:8445; preread_buffer_size 8k; }\n"   /* 4 */
        "  server { listen 446; proxy_pass 127.0.0.1:8446; preread_buffer_size 16x; }\n"  /* 5 */
        "  server { listen 447; proxy_pass 127.0.0.1:8447; preread_buffer_size 512; }\n"  /* 6 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:2: warning: preread_buffer_size 1m: snisplice's preread_max "
                                         "takes 1k to 64k; written as preread_max = 64k"));
    cr_expect(has_exact_warning(&result, "nginx.conf:4: warning: preread_buffer_size 8k: snisplice has one "
                                         "preread_max for every listener; keeping 64k from nginx.conf:3"));
    cr_expect(has_exact_warning(&result, "nginx.conf:5: warning: preread_buffer_size: cannot read the size '16x'; "
                                         "not carried over"));
    /* Below the floor, but not written: only the value kept is said. */
    cr_expect(has_exact_warning(&result, "nginx.conf:6: warning: preread_buffer_size 512: snisplice has one "
                                         "preread_max for every listener; keeping 64k from nginx.conf:3"));
    cr_expect_eq(result.warning_count, 4, "line 3 gives the value line 2 was written as: no warning");
    cr_expect(strstr(result.ini, "[global]\npreread_max = 64k\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    result = import_text(
        "stream {\n"
        "  preread_buffer_size 512;\n"
        "  server { listen 443; proxy_pass 127.0.0.1:8443; preread_timeout 10s; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:2: warning: preread_buffer_size 512: snisplice's preread_max "
                                         "takes 1k to 64k; written as preread_max = 1k"));
    cr_expect_eq(result.warning_count, 1);
    cr_expect(strstr(result.ini, "[global]\npreread_max = 1k\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:8443\npreread_timeout = 10s\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    /* A size that is no whole number of KiB is written in bytes. */
    result = import_text("stream { server { listen 443; proxy_pass 127.0.0.1:8443; preread_buffer_size 20000; } }\n");
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[global]\npreread_max = 20000\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* ---- timeouts: per server in nginx, per listener in the INI ---- */

/* What one loaded listener's timeouts are, in milliseconds. */
struct listener_timeouts {
    uint32_t connect_ms, idle_ms, preread_ms;
};

#define SNISPLICE_CONNECT_MS 5000u
#define SNISPLICE_IDLE_MS (10u * 60 * 1000)
#define SNISPLICE_PREREAD_MS 5000u

/* The converted INI loads, and its listeners, in order, have `expected`. */
static void expect_loaded_timeouts(const char *ini, const struct listener_timeouts *expected, size_t count)
{
    struct config *config = load_converted(ini);
    cr_assert_not_null(config, "the converted INI does not load:\n%s", ini);
    const struct snapshot *snapshot = config->snapshot;
    cr_assert_eq(snapshot->listener_count, count, "%s", ini);
    for (size_t i = 0; i < count; i++) {
        const struct snapshot_listener *listener = &snapshot->listeners[i];
        cr_expect_eq(listener->connect_timeout_ms, expected[i].connect_ms, "listener %zu connect:\n%s", i, ini);
        cr_expect_eq(listener->idle_timeout_ms, expected[i].idle_ms, "listener %zu idle:\n%s", i, ini);
        cr_expect_eq(listener->preread_timeout_ms, expected[i].preread_ms, "listener %zu preread:\n%s", i, ini);
    }
    config_free(config);
}

/* The self-hosting case: an SSH forward kept open for hours beside HTTPS
 * that has the stream block's value, or nginx's 10m when there is none.
 * Only the SSH listener gets idle_timeout; HTTPS keeps minutes. */
Test(nginx_import, ssh_forward_keeps_its_long_proxy_timeout_and_https_the_stream_value)
{
    static const char servers[] =
        "  map $ssl_preread_server_name $name { default web; }\n"
        "  upstream web { server 127.0.0.1:8443; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"
        "  server { listen 2222; proxy_pass 127.0.0.1:22; proxy_timeout 24h; }\n"
        "}\n";
    char *text = NULL;
    cr_assert(asprintf(&text, "stream {\n%s", servers) > 0);
    struct nginx_import result = import_text(text);
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[global]") == NULL, "nothing process-wide:\n%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port443]\naddress = 0.0.0.0:443\nroutes = name\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port2222]\naddress = 0.0.0.0:2222\nupstream = 127.0.0.1:22\n"
                                 "idle_timeout = 24h\n\n"), "%s", result.ini);
    const struct listener_timeouts unset[] = {
        { SNISPLICE_CONNECT_MS, SNISPLICE_IDLE_MS, SNISPLICE_PREREAD_MS },
        { SNISPLICE_CONNECT_MS, 24u * 3600 * 1000, SNISPLICE_PREREAD_MS },
    };
    expect_loaded_timeouts(result.ini, unset, 2);
    nginx_import_free(&result);
    free(text);

    cr_assert(asprintf(&text, "stream {\n  proxy_timeout 5m;\n%s", servers) > 0);
    result = import_text(text);
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[global]\nidle_timeout = 5m\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port443]\naddress = 0.0.0.0:443\nroutes = name\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:22\nidle_timeout = 24h\n\n"), "%s", result.ini);
    const struct listener_timeouts stream_value[] = {
        { SNISPLICE_CONNECT_MS, 5u * 60 * 1000, SNISPLICE_PREREAD_MS },
        { SNISPLICE_CONNECT_MS, 24u * 3600 * 1000, SNISPLICE_PREREAD_MS },
    };
    expect_loaded_timeouts(result.ini, stream_value, 2);
    nginx_import_free(&result);
    free(text);
}

/* Each of the three: the stream block's value is [global]'s, a server's
 * own replaces it for that server's listener only, in whichever order
 * nginx read them (a stream-level value after the server still counts). */
Test(nginx_import, server_timeouts_override_the_stream_blocks)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  proxy_connect_timeout 10s;\n"
        "  server { listen 443; proxy_pass 127.0.0.1:8443;\n"
        "           proxy_connect_timeout 2s; proxy_timeout 30m; preread_timeout 500ms; }\n"
        "  server { listen 444; proxy_pass 127.0.0.1:8444; }\n"
        "  server { listen 445; proxy_pass 127.0.0.1:8445; preread_timeout 1m; }\n"
        "  proxy_timeout 1h;\n"
        "  preread_timeout 20s;\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[global]\nconnect_timeout = 10s\nidle_timeout = 1h\npreread_timeout = 20s\n\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port443]\naddress = 0.0.0.0:443\nupstream = 127.0.0.1:8443\n"
                                 "connect_timeout = 2s\nidle_timeout = 30m\npreread_timeout = 500ms\n\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port444]\naddress = 0.0.0.0:444\nupstream = 127.0.0.1:8444\n\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port445]\naddress = 0.0.0.0:445\nupstream = 127.0.0.1:8445\n"
                                 "preread_timeout = 1m\n\n"), "%s", result.ini);
    const struct listener_timeouts expected[] = {
        { 2000, 30u * 60 * 1000, 500 },
        { 10000, 3600u * 1000, 20000 },
        { 10000, 3600u * 1000, 60000 },
    };
    expect_loaded_timeouts(result.ini, expected, 3);
    nginx_import_free(&result);
}

/* A server's value that its listener would have anyway adds no line: the
 * stream block's, in whatever form ("60m" is "1h"), or, with none there,
 * snisplice's default. A value that is only nginx's default (60s, 30s) is
 * no default in snisplice and is written. */
Test(nginx_import, server_timeout_its_listener_has_anyway_adds_no_line)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  proxy_timeout 1h;\n"
        "  server { listen 443; proxy_pass 127.0.0.1:8443; proxy_timeout 60m;\n"
        "           proxy_connect_timeout 5s; preread_timeout 5000ms; }\n"
        "  server { listen 444; proxy_pass 127.0.0.1:8444; proxy_connect_timeout 60s; preread_timeout 30s; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[global]\nidle_timeout = 1h\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port443]\naddress = 0.0.0.0:443\nupstream = 127.0.0.1:8443\n\n"),
              "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port444]\naddress = 0.0.0.0:444\nupstream = 127.0.0.1:8444\n"
                                 "connect_timeout = 1m\npreread_timeout = 30s\n\n"), "%s", result.ini);
    const struct listener_timeouts expected[] = {
        { SNISPLICE_CONNECT_MS, 3600u * 1000, SNISPLICE_PREREAD_MS },
        { 60000, 3600u * 1000, 30000 },
    };
    expect_loaded_timeouts(result.ini, expected, 2);
    nginx_import_free(&result);
}

/* As before listeners had timeouts: what nginx leaves at its defaults
 * (60s, 10m, 30s) is not written, and the listener has snisplice's. Where
 * the two defaults differ, a comment at the top of the file says so (a
 * cold review found the 5 s where nginx waited 60 s a silent change);
 * preread_timeout only where nginx prereads. */
Test(nginx_import, unset_timeouts_are_snisplices_defaults)
{
    struct nginx_import result = import_text("stream { server { listen 443; proxy_pass 127.0.0.1:8443; } }\n");
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "\nconnect_timeout") == NULL && strstr(result.ini, "\nidle_timeout") == NULL &&
                  strstr(result.ini, "\npreread_timeout") == NULL, "%s", result.ini);
    cr_expect(strstr(result.ini, "; proxy_connect_timeout not set: nginx's default was 60s; snisplice's "
                                 "connect_timeout, 5s, applies (connect_timeout = 60s in the global section keeps "
                                 "nginx's)\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "preread_timeout") == NULL, "no ssl_preread, no preread:\n%s", result.ini);
    cr_expect(strstr(result.ini, "proxy_timeout") == NULL, "10m in both:\n%s", result.ini);
    const struct listener_timeouts expected[] = { { SNISPLICE_CONNECT_MS, SNISPLICE_IDLE_MS, SNISPLICE_PREREAD_MS } };
    expect_loaded_timeouts(result.ini, expected, 1);
    nginx_import_free(&result);

    result = import_text("stream { proxy_connect_timeout 60s;\n"
                         "  server { listen 443; proxy_pass 127.0.0.1:8443; ssl_preread on; }\n"
                         "  server { listen 444; proxy_pass 127.0.0.1:8444; ssl_preread on; preread_timeout 5s; } }\n");
    cr_expect(strstr(result.ini, "; proxy_connect_timeout not set") == NULL, "%s", result.ini);
    cr_expect(strstr(result.ini, "; preread_timeout not set: nginx's default was 30s; snisplice's preread_timeout, "
                                 "5s, applies"), "the server on 443 prereads with nginx's default:\n%s", result.ini);
    nginx_import_free(&result);
}

/* A server with several listens is one listener: its timeouts are written
 * once and every address has them. The only routed server becomes the
 * unnamed [listen], which takes them as well. */
Test(nginx_import, every_listen_of_a_server_has_its_timeouts)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { default 127.0.0.1:8443; }\n"
        "  server { listen 443; listen [::]:443; ssl_preread on; proxy_pass $name; preread_timeout 10s;\n"
        "           proxy_timeout 2h; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[listen]\naddress = 0.0.0.0:443\naddress = [::]:443\nidle_timeout = 2h\n"
                                 "preread_timeout = 10s\n\n"), "%s", result.ini);
    struct config *config = load_converted(result.ini);
    cr_assert_not_null(config, "%s", result.ini);
    cr_assert_eq(config->snapshot->address_count, 2);
    for (uint32_t i = 0; i < config->snapshot->address_count; i++) {
        const struct snapshot_listener *listener =
            &config->snapshot->listeners[config->snapshot->addresses[i].listener];
        cr_expect_eq(listener->idle_timeout_ms, 2u * 3600 * 1000);
        cr_expect_eq(listener->preread_timeout_ms, 10000);
    }
    config_free(config);
    nginx_import_free(&result);
}

/* nginx refuses a timeout given twice at one level ("is duplicate"):
 * the first is kept, with a warning; the same value twice is harmless. A
 * value that cannot be read is left out, and the server has the stream
 * block's. None of this is "one ... for every listener" any more. */
Test(nginx_import, a_timeout_given_twice_at_one_level_keeps_the_first)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                                            /* 1 */
        "  preread_timeout 10s;\n"                                                              /* 2 */
        "  preread_timeout 20s;\n"                                                              /* 3 */
        "  preread_timeout 10000ms;\n"                                                          /* 4 */
        "  server { listen 443; proxy_pass 127.0.0.1:8443;\n"                                   /* 5 */
        "           proxy_timeout 1h;\n"                                                        /* 6 */
        "           proxy_timeout 2h;\n"                                                        /* 7 */
        "           proxy_connect_timeout soon; }\n"                                            /* 8 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:3: warning: preread_timeout 20s: a second preread_timeout in "
                                         "the stream block (nginx refuses this configuration); keeping "
                                         "preread_timeout = 10s from nginx.conf:2"));
    cr_expect(has_exact_warning(&result, "nginx.conf:7: warning: proxy_timeout 2h: a second proxy_timeout in this "
                                         "server (nginx refuses this configuration); keeping idle_timeout = 1h from "
                                         "nginx.conf:6"));
    cr_expect(has_exact_warning(&result, "nginx.conf:8: warning: proxy_connect_timeout: cannot read the time 'soon'; "
                                         "not carried over"));
    cr_expect_eq(result.warning_count, 3, "line 4 gives line 2's value");
    cr_expect_eq(count_warnings(&result, "", "for every listener"), 0);
    cr_expect(strstr(result.ini, "[global]\npreread_timeout = 10s\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:8443\nidle_timeout = 1h\n\n"), "%s", result.ini);
    const struct listener_timeouts expected[] = { { SNISPLICE_CONNECT_MS, 3600u * 1000, 10000 } };
    expect_loaded_timeouts(result.ini, expected, 1);
    nginx_import_free(&result);
}

/* Found in review: a long host name was cut short in silence, an
 * overlong so_keepalive part was cut into a value, and a map chained into
 * another's table and used on its own warned twice about each entry. */
Test(nginx_import, long_values_are_kept_whole_or_refused_and_warned_once)
{
    char host[130];
    memset(host, 'b', 122);
    memcpy(host + 122, ".cd", 4);
    char *text = NULL;
    cr_assert(asprintf(&text,
                       "stream {\n"                                                                   /* 1 */
                       "  server { listen 2000; proxy_pass %s:1; }\n"                                 /* 2 */
                       "  server { listen 2001 so_keepalive=::00000000000000000000001x; proxy_pass 127.0.0.1:2; }\n"
                       "  map $ssl_preread_server_name $name { a.example.com nosuch; default 127.0.0.1:3; }\n"
                       "  map $ssl_preread_alpn_protocols $p { acme-tls/1 127.0.0.1:4; default $name; }\n"
                       "  server { listen 443; ssl_preread on; proxy_pass $p; }\n"                    /* 6 */
                       "  server { listen 444; ssl_preread on; proxy_pass $name; }\n"                 /* 7 */
                       "}\n",
                       host) > 0);
    struct nginx_import result = import_text(text);
    log_warnings(&result);
    char *whole = NULL;
    cr_assert(asprintf(&whole, "upstream = %s:1\n", host) > 0);
    cr_expect(strstr(result.ini, whole), "the host name is kept whole\n%s", result.ini);
    cr_expect(has_warning(&result, "nginx.conf:3:", "so_keepalive="), "the overlong keepalive part is refused");
    cr_expect(strstr(result.ini, "tcp_keepalive") == NULL, "%s", result.ini);
    int nosuch = 0;
    for (size_t i = 0; i < result.warning_count; i++)
        nosuch += strstr(result.warnings[i], "'nosuch'") != NULL;
    cr_expect_eq(nosuch, 1, "the unknown target is warned once");
    free(whole);
    free(text);
    nginx_import_free(&result);
}

/* ---- load balancing: least_conn, hash, random, least_time ---- */

/* Each upstream's `balance` once the converted INI is loaded: `names` in
 * order, their enum upstream_balance values into `balances`. */
static void expect_loaded_balances(const char *ini, const char *const *names, const int *balances, size_t count)
{
    struct config *config = load_converted(ini);
    cr_assert_not_null(config, "the converted INI does not load:\n%s", ini);
    const struct snapshot *snapshot = config->snapshot;
    for (size_t i = 0; i < count; i++) {
        bool found = false;
        for (uint32_t j = 0; j < snapshot->upstream_count; j++) {
            if (strcmp(snapshot->upstreams[j].name, names[i]) != 0)
                continue;
            found = true;
            cr_expect_eq(snapshot->upstreams[j].balance, balances[i], "upstream %s", names[i]);
        }
        cr_expect(found, "no upstream %s in:\n%s", names[i], ini);
    }
    config_free(config);
}

/* An upstream without a balancing directive keeps the default: no line. */
Test(nginx_import, upstream_without_a_balancing_method_has_no_balance_line)
{
    struct nginx_import result = import_text(homelab);
    cr_expect(strstr(result.ini, "balance") == NULL, "%s", result.ini);
    static const char *const names[] = { "https_matrix_backend", "local_https_backend" };
    static const int balances[] = { UPSTREAM_BALANCE_ROUND_ROBIN, UPSTREAM_BALANCE_ROUND_ROBIN };
    expect_loaded_balances(result.ini, names, balances, 2);
    nginx_import_free(&result);
}

/* least_conn is balance = least_connections, in the one section written
 * for the upstream, whether a map or a plain forward reaches it, next to
 * the settings its servers give it. */
Test(nginx_import, least_conn_becomes_least_connections)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { a.example a; default b; }\n"
        "  upstream a { least_conn; server 127.0.0.1:1 weight=2; server 127.0.0.1:2 backup; }\n"
        "  upstream b { server 127.0.0.1:3; least_conn; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; proxy_protocol on; }\n"
        "  server { listen 8443; proxy_pass a; proxy_protocol on; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[upstream a]\nbalance = least_connections\nserver = 127.0.0.1:1 weight=2\n"
                                 "server = 127.0.0.1:2 backup\nproxy_protocol = v1\n\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream b]\nbalance = least_connections\nserver = 127.0.0.1:3\n"), "%s",
              result.ini);
    static const char *const names[] = { "a", "b" };
    static const int balances[] = { UPSTREAM_BALANCE_LEAST_CONNECTIONS, UPSTREAM_BALANCE_LEAST_CONNECTIONS };
    expect_loaded_balances(result.ini, names, balances, 2);
    nginx_import_free(&result);
}

/* hash on the client's address, consistent or not: a client keeps its
 * server either way, so both become client_address without a warning. */
Test(nginx_import, hash_on_the_client_address_becomes_client_address)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name { a.example a; b.example b; c.example c; e.example e; default d; }\n"
        "  upstream e { hash ${remote_addr} consistent; server 127.0.0.1:6; }\n" /* unquoted braces, as nginx reads them */
        "  upstream a { hash $remote_addr consistent; server 127.0.0.1:1; server 127.0.0.1:2; }\n"
        "  upstream b { hash $binary_remote_addr consistent; server 127.0.0.1:3; }\n"
        "  upstream c { hash $remote_addr; server 127.0.0.1:4; }\n"
        "  upstream d { server 127.0.0.1:5; hash \"${binary_remote_addr}\"; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[upstream a]\nbalance = client_address\nserver = 127.0.0.1:1\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream b]\nbalance = client_address\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream c]\nbalance = client_address\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream d]\nbalance = client_address\nserver = 127.0.0.1:5\n"), "%s",
              result.ini);
    cr_expect(strstr(result.ini, "[upstream e]\nbalance = client_address\nserver = 127.0.0.1:6\n"), "%s",
              result.ini);
    static const char *const names[] = { "a", "b", "c", "d", "e" };
    static const int balances[] = { UPSTREAM_BALANCE_CLIENT_ADDRESS, UPSTREAM_BALANCE_CLIENT_ADDRESS,
                                     UPSTREAM_BALANCE_CLIENT_ADDRESS, UPSTREAM_BALANCE_CLIENT_ADDRESS,
                                     UPSTREAM_BALANCE_CLIENT_ADDRESS };
    expect_loaded_balances(result.ini, names, balances, 5);
    nginx_import_free(&result);
}

/* Any other key is left out, saying that round robin shares the
 * connections out instead; the upstream keeps the default. */
Test(nginx_import, hash_on_another_key_is_left_out_with_what_that_changes)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                               /* 1 */
        "  map $ssl_preread_server_name $name { a.example a; b.example b; default c; }\n" /* 2 */
        "  upstream a { hash $ssl_preread_server_name consistent; server 127.0.0.1:1; }\n" /* 3 */
        "  upstream b { hash $remote_addr$remote_port; server 127.0.0.1:2; }\n" /* 4 */
        "  upstream c { hash $remote_port consistent; server 127.0.0.1:3; }\n"  /* 5 */
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"          /* 6 */
        "}\n");
    log_warnings(&result);
    static const char reason[] = " not carried over (snisplice hashes only the client's address, as balance = "
                                 "client_address; connections are shared out by weighted round robin instead, "
                                 "so a key no longer keeps its server)";
    char expected[512];
    snprintf(expected, sizeof expected, "nginx.conf:3: warning: upstream a: hash $ssl_preread_server_name "
                                        "consistent%s", reason);
    cr_expect(has_exact_warning(&result, expected), "%s", expected);
    snprintf(expected, sizeof expected, "nginx.conf:4: warning: upstream b: hash $remote_addr$remote_port%s",
             reason);
    cr_expect(has_exact_warning(&result, expected), "%s", expected);
    snprintf(expected, sizeof expected, "nginx.conf:5: warning: upstream c: hash $remote_port consistent%s",
             reason);
    cr_expect(has_exact_warning(&result, expected), "%s", expected);
    cr_expect_eq(result.warning_count, 3);
    cr_expect(strstr(result.ini, "balance") == NULL, "%s", result.ini);
    static const char *const names[] = { "a", "b", "c" };
    static const int balances[] = { UPSTREAM_BALANCE_ROUND_ROBIN, UPSTREAM_BALANCE_ROUND_ROBIN,
                                    UPSTREAM_BALANCE_ROUND_ROBIN };
    expect_loaded_balances(result.ini, names, balances, 3);
    nginx_import_free(&result);
}

/* random two compares its two picks by least_conn (open-source nginx's
 * only method for it, and its default): least_connections, with a warning
 * that snisplice compares every server. Plain random and the nginx Plus
 * methods are left out. */
Test(nginx_import, random_two_becomes_least_connections_and_the_rest_is_left_out)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                               /* 1 */
        "  map $ssl_preread_server_name $name {\n"                                 /* 2 */
        "    a.example a; b.example b; c.example c; d.example d; default e;\n"     /* 3 */
        "  }\n"                                                                    /* 4 */
        "  upstream a { random two least_conn; server 127.0.0.1:1; }\n"           /* 5 */
        "  upstream b { random two; server 127.0.0.1:2; }\n"                      /* 6 */
        "  upstream c { random; server 127.0.0.1:3; }\n"                          /* 7 */
        "  upstream d { random two least_time=connect; server 127.0.0.1:4; }\n"   /* 8 */
        "  upstream e { least_time first_byte; server 127.0.0.1:5; }\n"           /* 9 */
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"            /* 10 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:5: warning: upstream a: random two least_conn converted as "
                                         "balance = least_connections, which picks the least loaded of all "
                                         "servers, not the less loaded of two picked at random"));
    cr_expect(has_exact_warning(&result, "nginx.conf:6: warning: upstream b: random two converted as balance = "
                                         "least_connections, which picks the least loaded of all servers, not "
                                         "the less loaded of two picked at random"));
    cr_expect(has_exact_warning(&result, "nginx.conf:7: warning: upstream c: random not carried over (snisplice's "
                                         "weighted round robin shares connections out by weight, as random does "
                                         "on average)"));
    static const char least_time[] = " not carried over (nginx Plus only; snisplice does not time servers and "
                                     "shares connections out by weighted round robin; balance = "
                                     "least_connections comes closest)";
    char expected[512];
    snprintf(expected, sizeof expected, "nginx.conf:8: warning: upstream d: random two least_time=connect%s",
             least_time);
    cr_expect(has_exact_warning(&result, expected), "%s", expected);
    snprintf(expected, sizeof expected, "nginx.conf:9: warning: upstream e: least_time first_byte%s", least_time);
    cr_expect(has_exact_warning(&result, expected), "%s", expected);
    cr_expect_eq(result.warning_count, 5);
    cr_expect(strstr(result.ini, "[upstream a]\nbalance = least_connections\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream b]\nbalance = least_connections\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream c]\nserver = 127.0.0.1:3\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream d]\nserver = 127.0.0.1:4\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[upstream e]\nserver = 127.0.0.1:5\n"), "%s", result.ini);
    static const char *const names[] = { "a", "b", "c", "d", "e" };
    static const int balances[] = { UPSTREAM_BALANCE_LEAST_CONNECTIONS, UPSTREAM_BALANCE_LEAST_CONNECTIONS,
                                    UPSTREAM_BALANCE_ROUND_ROBIN, UPSTREAM_BALANCE_ROUND_ROBIN,
                                    UPSTREAM_BALANCE_ROUND_ROBIN };
    expect_loaded_balances(result.ini, names, balances, 5);
    nginx_import_free(&result);
}

/* nginx warns "load balancing method redefined" and uses the later
 * method; so does the importer, even when the later one is left out. */
Test(nginx_import, a_redefined_balancing_method_keeps_the_last_with_a_warning)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                               /* 1 */
        "  map $ssl_preread_server_name $name { a.example a; default b; }\n"       /* 2 */
        "  upstream a {\n"                                                         /* 3 */
        "    least_conn;\n"                                                        /* 4 */
        "    server 127.0.0.1:1;\n"                                                /* 5 */
        "    hash $remote_addr consistent;\n"                                      /* 6 */
        "  }\n"                                                                    /* 7 */
        "  upstream b {\n"                                                         /* 8 */
        "    hash $binary_remote_addr consistent;\n"                               /* 9 */
        "    random;\n"                                                            /* 10 */
        "    server 127.0.0.1:2;\n"                                                /* 11 */
        "  }\n"                                                                    /* 12 */
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"            /* 13 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:6: warning: upstream a: hash $remote_addr consistent: load "
                                         "balancing method redefined; as in nginx the last one counts, so "
                                         "least_conn at nginx.conf:4 is not carried over"));
    cr_expect(has_exact_warning(&result, "nginx.conf:10: warning: upstream b: random: load balancing method "
                                         "redefined; as in nginx the last one counts, so hash $binary_remote_addr "
                                         "consistent at nginx.conf:9 is not carried over"));
    cr_expect(has_warning(&result, "nginx.conf:10:", "upstream b: random not carried over"));
    cr_expect_eq(result.warning_count, 3);
    cr_expect(strstr(result.ini, "[upstream a]\nbalance = client_address\nserver = 127.0.0.1:1\n\n"), "%s",
              result.ini);
    cr_expect(strstr(result.ini, "[upstream b]\nserver = 127.0.0.1:2\n"), "%s", result.ini);
    static const char *const names[] = { "a", "b" };
    static const int balances[] = { UPSTREAM_BALANCE_CLIENT_ADDRESS, UPSTREAM_BALANCE_ROUND_ROBIN };
    expect_loaded_balances(result.ini, names, balances, 2);
    nginx_import_free(&result);
}

/* Forms nginx refuses to start with are skipped, as other directives it
 * refuses are, and do not count as a method. */
Test(nginx_import, balancing_forms_nginx_refuses_are_skipped)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                               /* 1 */
        "  upstream a {\n"                                                         /* 2 */
        "    least_conn;\n"                                                        /* 3 */
        "    hash $remote_addr ketama;\n"                                          /* 4 */
        "    random three;\n"                                                      /* 5 */
        "    least_conn now;\n"                                                    /* 6 */
        "    hash;\n"                                                              /* 7 */
        "    server 127.0.0.1:1;\n"                                                /* 8 */
        "  }\n"                                                                    /* 9 */
        "  server { listen 443; proxy_pass a; }\n"                                /* 10 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:4: warning: upstream a: hash $remote_addr ketama: expected "
                                         "'hash KEY [consistent]'; skipped"));
    cr_expect(has_exact_warning(&result, "nginx.conf:5: warning: upstream a: random three: expected "
                                         "'random [two [least_conn]]'; skipped"));
    cr_expect(has_exact_warning(&result, "nginx.conf:6: warning: upstream a: least_conn now: expected "
                                         "'least_conn'; skipped"));
    cr_expect(has_exact_warning(&result, "nginx.conf:7: warning: upstream a: hash: expected "
                                         "'hash KEY [consistent]'; skipped"));
    cr_expect_eq(result.warning_count, 4);
    cr_expect(strstr(result.ini, "[upstream a]\nbalance = least_connections\nserver = 127.0.0.1:1\n"), "%s",
              result.ini);
    static const char *const names[] = { "a" };
    static const int balances[] = { UPSTREAM_BALANCE_LEAST_CONNECTIONS };
    expect_loaded_balances(result.ini, names, balances, 1);
    nginx_import_free(&result);
}

/* Words as nginx's ngx_conf_read_token reads them: "${name}" is one
 * variable whose braces open and close nothing; a backslash keeps the
 * next byte in the word with it (a\;b is one word) and makes a "$" plain,
 * so a\${ starts no variable: its "{" opens a block. That last form once
 * wrote past the word's buffer (the fuzzer's find). */
Test(nginx_import, words_with_braces_and_backslashes_split_as_nginx_splits_them)
{
    static const char text[] = "x ${a}b c\\;d ~^w\\.e$ ${f;\ny g\\${hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh;}\n";
    struct nginx_tree tree;
    struct nginx_parse_options options = { "/nonexistent", false };
    char error[512] = "";
    cr_assert(nginx_parse_text(&tree, "nginx.conf", text, strlen(text), &options, error, sizeof error), "%s",
              error);
    cr_assert_eq(tree.root.count, 2, "x ...; and y g\\$ { hhh...; }");
    const struct nginx_directive *x = &tree.root.items[0];
    cr_assert_str_eq(x->name, "x");
    cr_assert_eq(x->arg_count, 4);
    cr_expect_str_eq(x->args[0], "${a}b");
    cr_expect_str_eq(x->args[1], "c\\;d");
    cr_expect_str_eq(x->args[2], "~^w\\.e$");
    cr_expect_str_eq(x->args[3], "${f", "an unclosed variable ends where a word ends");
    const struct nginx_directive *y = &tree.root.items[1];
    cr_assert_str_eq(y->name, "y");
    cr_assert_eq(y->arg_count, 1);
    cr_expect_str_eq(y->args[0], "g\\$");
    cr_assert_not_null(y->block);
    cr_assert_eq(y->block->count, 1);
    cr_expect_str_eq(y->block->items[0].name, "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh");
    nginx_tree_free(&tree);
}

/* snisplice's timeouts go up to 30 days; nginx's longer ones are written
 * as 30d with a warning, so the converted INI loads (it was rejected). */
Test(nginx_import, timeouts_past_thirty_days_become_thirty_days)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                                       /* 1 */
        "  proxy_timeout 60d;\n"                                                           /* 2 */
        "  server { listen 2222; proxy_pass 127.0.0.1:22; proxy_connect_timeout 1000d; }\n" /* 3 */
        "}\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:2: warning: proxy_timeout 60d: snisplice's idle_timeout goes "
                                         "up to 30 days; written as idle_timeout = 30d"));
    cr_expect(has_exact_warning(&result, "nginx.conf:3: warning: proxy_connect_timeout 1000d: snisplice's "
                                         "connect_timeout goes up to 30 days; written as connect_timeout = 30d"));
    cr_expect_eq(result.warning_count, 2);
    cr_expect(strstr(result.ini, "idle_timeout = 30d\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "connect_timeout = 30d\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* nginx adds up a time written in several units, largest first ("1h30m",
 * "1m 30s", "1s500ms"; a bare number last is seconds): each converts to
 * the INI's one unit that keeps it exact, in a timeout and in
 * so_keepalive; parts out of order or a unit twice are refused, as nginx
 * refuses them. */
Test(nginx_import, times_in_several_units_are_added_up)
{
    struct nginx_import result = import_text(
        "stream {\n"                                                                        /* 1 */
        "  proxy_timeout 1h30m;\n"                                                          /* 2 */
        "  server { listen 443 so_keepalive=2h30m:1m15s:; proxy_pass 127.0.0.1:8443;\n"    /* 3 */
        "           proxy_connect_timeout \"1m 30s\"; preread_timeout 1s500ms; }\n"       /* 4 */
        "  server { listen 444; proxy_pass 127.0.0.1:8444; proxy_connect_timeout 30m1h; }\n" /* 5 */
        "  server { listen 445; proxy_pass 127.0.0.1:8445; proxy_connect_timeout 1m1m; }\n" /* 6 */
        "}\n");
    log_warnings(&result);
    cr_expect(strstr(result.ini, "idle_timeout = 90m\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "tcp_keepalive = 150m:75s:\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "connect_timeout = 90s\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "preread_timeout = 1500ms\n"), "%s", result.ini);
    cr_expect(has_exact_warning(&result, "nginx.conf:5: warning: proxy_connect_timeout: cannot read the time "
                                         "'30m1h'; not carried over"));
    cr_expect(has_exact_warning(&result, "nginx.conf:6: warning: proxy_connect_timeout: cannot read the time "
                                         "'1m1m'; not carried over"));
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* nginx reads `${name}` as `$name`: maps on the braced source variable,
 * braced map variables under proxy_pass (alone and as HOST:${port}) and
 * in an ALPN map's default convert exactly as their plain spelling. */
Test(nginx_import, braced_variables_convert_as_plain_ones)
{
    static const char plain[] =
        "stream {\n"
        "  map $ssl_preread_server_name $name { matrix.example.com 127.0.0.1:12443; default 127.0.0.1:8443; }\n"
        "  map $ssl_preread_alpn_protocols $via { ~\\bacme-tls/1\\b 127.0.0.1:10443; default $name; }\n"
        "  map $ssl_preread_alpn_protocols $port { ~\\bxmpp-client\\b 5223; default 5443; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $via; }\n"
        "  server { listen 5222; ssl_preread on; proxy_pass 127.0.0.1:$port; }\n"
        "}\n";
    static const char braced[] =
        "stream {\n"
        "  map ${ssl_preread_server_name} ${name} { matrix.example.com 127.0.0.1:12443; default 127.0.0.1:8443; }\n"
        "  map \"${ssl_preread_alpn_protocols}\" ${via} { ~\\bacme-tls/1\\b 127.0.0.1:10443; default ${name}; }\n"
        "  map ${ssl_preread_alpn_protocols} ${port} { ~\\bxmpp-client\\b 5223; default 5443; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass ${via}; }\n"
        "  server { listen 5222; ssl_preread on; proxy_pass 127.0.0.1:${port}; }\n"
        "}\n";
    struct nginx_import expected = import_text(plain);
    struct nginx_import result = import_text(braced);
    log_warnings(&result);
    cr_expect_eq(expected.warning_count, 0);
    cr_expect_eq(result.warning_count, 0);
    cr_expect_str_eq(result.ini, expected.ini);
    cr_expect(strstr(result.ini, "alpn acme-tls/1"), "the ALPN route is there: %s", result.ini);
    cr_expect(strstr(result.ini, "matrix.example.com"), "the names follow the ALPN routes: %s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&expected);
    nginx_import_free(&result);
}

/* Only a whole variable is one: a brace left open, text after the brace
 * or an empty name is not a map's variable. */
Test(nginx_import, broken_braced_variables_are_not_maps)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name ${name { a.example.com 127.0.0.1:1; }\n"
        "  map $ssl_preread_server_name ${name}x { b.example.com 127.0.0.1:2; }\n"
        "  map $ssl_preread_server_name ${} { c.example.com 127.0.0.1:3; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass 127.0.0.1:4; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(count_warnings(&result, "nginx.conf:", "map: expected 'map $source $variable"), 3);
    cr_expect_null(strstr(result.ini, "example.com"), "%s", result.ini);
    nginx_import_free(&result);
}

/* nginx takes `hostnames` and `volatile` as flags only alone on their
 * line; with a value each is a key like any other, in a server-name map
 * as in a protocol map. */
Test(nginx_import, map_flags_only_alone_on_their_line)
{
    struct nginx_import names = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name {\n"
        "    hostnames 127.0.0.1:7;\n"
        "    volatile 127.0.0.1:9;\n"
        "    *.example.com 127.0.0.1:8;\n"
        "    default 127.0.0.1:6;\n"
        "  }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"
        "}\n");
    log_warnings(&names);
    cr_expect(strstr(names.ini, "hostnames = 127.0.0.1:7\n"), "%s", names.ini);
    cr_expect(strstr(names.ini, "volatile = 127.0.0.1:9\n"), "%s", names.ini);
    cr_expect_null(strstr(names.ini, "example.com"), "a wildcard without the flag never matched: %s", names.ini);
    cr_expect(has_warning(&names, "nginx.conf:5:", "without 'hostnames'"));
    expect_loadable(names.ini);
    nginx_import_free(&names);

    struct nginx_import flagged = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name {\n"
        "    hostnames;\n"
        "    volatile;\n"
        "    *.example.com 127.0.0.1:8;\n"
        "  }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"
        "}\n");
    log_warnings(&flagged);
    cr_expect_eq(flagged.warning_count, 0);
    cr_expect(strstr(flagged.ini, "*.example.com = 127.0.0.1:8\n"), "%s", flagged.ini);
    cr_expect_null(strstr(flagged.ini, "hostnames ="), "%s", flagged.ini);
    nginx_import_free(&flagged);
}

/* proxy_bind: the stream block's becomes [global]'s source, a server's
 * its listener's; off in a server cancels the stream block's there. */
Test(nginx_import, proxy_bind_becomes_source)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  proxy_bind 10.0.0.5;\n"
        "  server { listen 443; proxy_pass 127.0.0.1:8443; }\n"
        "  server { listen 2222; proxy_pass 127.0.0.1:22; proxy_bind 2001:db8::6; }\n"
        "  server { listen 2223; proxy_pass 127.0.0.1:23; proxy_bind off; }\n"
        "  server { listen 2224; proxy_pass 127.0.0.1:24; proxy_bind 10.0.0.5; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[global]\nsource = 10.0.0.5\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "[listen port443]\naddress = 0.0.0.0:443\nupstream = 127.0.0.1:8443\n\n"),
              "inherits [global]'s: %s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:22\nsource = 2001:db8::6\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:23\nsource = none\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:24\n\n"), "the same as [global]'s: no line: %s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    /* A server's own, with no stream-level one; off alone adds nothing. */
    result = import_text("stream {\n"
                         "  server { listen 443; proxy_pass 127.0.0.1:8443; proxy_bind 192.0.2.7; }\n"
                         "  server { listen 2222; proxy_pass 127.0.0.1:22; proxy_bind off; }\n"
                         "}\n");
    cr_expect_eq(result.warning_count, 0);
    cr_expect_null(strstr(result.ini, "[global]"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:8443\nsource = 192.0.2.7\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:22\n\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* Transparent proxying: $remote_addr becomes source = client; the
 * client's port cannot be kept, and is said. */
Test(nginx_import, proxy_bind_transparent_becomes_source_client)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  server { listen 443; proxy_pass 127.0.0.1:8443; proxy_bind $remote_addr transparent; }\n"
        "  server { listen 2222; proxy_pass 127.0.0.1:22; proxy_bind $remote_addr:$remote_port transparent; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect_eq(result.warning_count, 1);
    cr_expect(has_exact_warning(&result, "nginx.conf:3: warning: proxy_bind $remote_addr:$remote_port: the client's "
                                         "port is not kept; snisplice binds the client's address (source = client) "
                                         "and the kernel picks the port"));
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:8443\nsource = client\n"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:22\nsource = client\n"), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);

    result = import_text("stream {\n  proxy_bind $remote_addr transparent;\n"
                         "  server { listen 443; proxy_pass 127.0.0.1:8443; }\n}\n");
    cr_expect_eq(result.warning_count, 0);
    cr_expect(strstr(result.ini, "[global]\nsource = client\n"), "%s", result.ini);
    nginx_import_free(&result);
}

/* What the INI cannot take is left out, saying from where connections go instead. */
Test(nginx_import, proxy_bind_left_out_with_a_warning)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  proxy_bind 10.0.0.1:5000;\n"
        "  server { listen 443; proxy_pass 127.0.0.1:8443; proxy_bind $source_address; }\n"
        "  server { listen 2222; proxy_pass 127.0.0.1:22; proxy_bind [2001:db8::1]:80; }\n"
        "  server { listen 2223; proxy_pass 127.0.0.1:23; proxy_bind 10.0.0.2 transparent; proxy_bind 10.0.0.3; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:2: warning: proxy_bind 10.0.0.1:5000: snisplice binds an address "
                                         "without a port (the kernel picks each connection's); not carried over; "
                                         "snisplice connects from the address the system picks"));
    cr_expect(has_exact_warning(&result, "nginx.conf:3: warning: proxy_bind $source_address: snisplice binds only a "
                                         "fixed address or the client's ($remote_addr transparent); not carried "
                                         "over; this listener connects from [global]'s source, or from the address "
                                         "the system picks without one"));
    cr_expect(has_warning(&result, "nginx.conf:4: warning: proxy_bind [2001:db8::1]:80: snisplice binds an address "
                                   "without a port", "this listener connects from [global]'s source"));
    cr_expect(has_exact_warning(&result, "nginx.conf:5: warning: proxy_bind 10.0.0.2 transparent: snisplice binds a "
                                         "fixed source without IP_TRANSPARENT, so it must be an address of this "
                                         "host"));
    cr_expect(has_warning(&result, "nginx.conf:5: warning: proxy_bind: a second one in this block", "keeping the one "
                                                                                                     "from nginx.conf:5"));
    cr_expect_eq(result.warning_count, 5);
    cr_expect_null(strstr(result.ini, "[global]"), "%s", result.ini);
    cr_expect(strstr(result.ini, "upstream = 127.0.0.1:23\nsource = 10.0.0.2\n"), "%s", result.ini);
    cr_expect_eq(count_warnings(&result, "", "source = "), 0);
    char *first = strstr(result.ini, "source = ");
    cr_expect(first && !strstr(first + 1, "source = "), "one source line only: %s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* A map key ending in a dot: nginx keeps the dot, so the key matched
 * only names sent with a trailing dot (two under hostnames); snisplice
 * would drop it and route the plain name. Left out with a warning (found
 * by running nginx beside the converted config). */
Test(nginx_import, keys_with_a_trailing_dot_are_left_out)
{
    struct nginx_import result = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $name {\n"
        "    hostnames;\n"
        "    example.com. 127.0.0.1:1;\n"
        "    *.example.org. 127.0.0.1:2;\n"
        "    blog.example.net 127.0.0.1:3;\n"
        "    default 127.0.0.1:4;\n"
        "  }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $name; }\n"
        "}\n");
    log_warnings(&result);
    cr_expect(has_exact_warning(&result, "nginx.conf:4: warning: map entry 'example.com.': nginx kept the trailing "
                                         "dot, so it matched only names sent with two trailing dots; skipped"));
    cr_expect(has_warning(&result, "nginx.conf:5:", "'*.example.org.': nginx kept the trailing dot"));
    cr_expect_null(strstr(result.ini, "example.com ="), "%s", result.ini);
    cr_expect_null(strstr(result.ini, "example.org"), "%s", result.ini);
    cr_expect(strstr(result.ini, "blog.example.net = "), "%s", result.ini);
    expect_loadable(result.ini);
    nginx_import_free(&result);
}

/* nginx lower-cases plain map keys and the value it looks up: a plain
 * ALPN key "H2" is the route for h2. A server-name key spelled like the
 * INI's other routes ("not_tls", "alpn h2") is left out with a warning:
 * the loader would read it as that route. */
Test(nginx_import, plain_alpn_keys_fold_case_and_route_words_are_not_names)
{
    struct nginx_import alpn = import_text(
        "stream {\n"
        "  map $ssl_preread_alpn_protocols $a { H2 127.0.0.1:1; default 127.0.0.1:2; }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $a; }\n"
        "}\n");
    log_warnings(&alpn);
    cr_expect(strstr(alpn.ini, "alpn h2 = 127.0.0.1:1\n"), "%s", alpn.ini);
    expect_loadable(alpn.ini);
    nginx_import_free(&alpn);

    struct nginx_import names = import_text(
        "stream {\n"
        "  map $ssl_preread_server_name $n {\n"
        "    not_tls 127.0.0.1:1;\n"
        "    \"alpn h2\" 127.0.0.1:3;\n"
        "    blog.example.com 127.0.0.1:4;\n"
        "    default 127.0.0.1:2;\n"
        "  }\n"
        "  server { listen 443; ssl_preread on; proxy_pass $n; }\n"
        "}\n");
    log_warnings(&names);
    cr_expect(has_warning(&names, "nginx.conf:3:", "'not_tls': the INI reads this key as the route for clients "
                                                   "that do not speak TLS"));
    cr_expect(has_warning(&names, "nginx.conf:4:", "'alpn h2': the INI reads this key as the route for an ALPN"));
    cr_expect_null(strstr(names.ini, "not_tls"), "%s", names.ini);
    cr_expect_null(strstr(names.ini, "alpn"), "%s", names.ini);
    cr_expect(strstr(names.ini, "blog.example.com = "), "%s", names.ini);
    expect_loadable(names.ini);
    nginx_import_free(&names);
}
