/*
 * test_config.c - the INI file: defaults, values, and every kind of error
 * reported as FILE:LINE: problem, all at once.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../config/config.h"
#include "../../config/units.h"
#include "../../core/proxy_protocol.h"

static char path[64];

static const char *write_config(const char *text)
{
    snprintf(path, sizeof path, "/tmp/snisplice-config-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static struct config *load_ok(const char *text)
{
    struct config_errors errors;
    struct config *config = config_load(write_config(text), &errors);
    for (size_t i = 0; i < errors.count; i++)
        cr_log_error("%s", errors.lines[i]);
    cr_assert_not_null(config);
    cr_assert_eq(errors.count, 0);
    config_errors_free(&errors);
    unlink(path);
    return config;
}

/* Load text that must fail and check each expected "LINE: problem" piece appears. */
static void expect_errors(const char *text, const char *const *expected, size_t count)
{
    struct config_errors errors;
    struct config *config = config_load(write_config(text), &errors);
    cr_assert_null(config);
    cr_assert_eq(errors.count, count, "got %zu errors, want %zu (first: %s)", errors.count, count,
                 errors.count ? errors.lines[0] : "none");
    for (size_t i = 0; i < count; i++) {
        char want[512];
        snprintf(want, sizeof want, "%s:%s", path, expected[i]);
        cr_assert_str_eq(errors.lines[i], want);
    }
    config_errors_free(&errors);
    unlink(path);
}

/* Route through the first listener's table. */
static int32_t route(const struct config *config, const char *name)
{
    cr_assert_gt(config->snapshot->listener_count, 0);
    cr_assert_not_null(config->snapshot->listeners[0].routes);
    return route_lookup(config->snapshot->listeners[0].routes, name, strlen(name));
}

static const char *upstream_name(const struct config *config, int32_t index)
{
    cr_assert_geq(index, 0);
    cr_assert_lt((uint32_t)index, config->snapshot->upstream_count);
    return config->snapshot->upstreams[index].name;
}

static const char *const ISSUE_EXAMPLE =
    "[global]\n"
    "workers = auto            ; one worker thread per online CPU\n"
    "max_connections = 10000\n"
    "preread_timeout = 5s\n"
    "preread_max = 16k\n"
    "connect_timeout = 5s\n"
    "idle_timeout = 10m\n"
    "drain_timeout = 30s\n"
    "\n"
    "[listen]\n"
    "address = 0.0.0.0:443\n"
    "address = [::]:443\n"
    "\n"
    "[routes]\n"
    "matrix.exceptionerror.io  = matrix\n"
    "element.exceptionerror.io = matrix\n"
    "*.example.com             = wild          ; any subdomain\n"
    ".example.org              = org\n"
    "blog.robrotheram.com      = 127.0.0.1:8443 ; literal\n"
    "default                   = local\n"
    "\n"
    "[upstream matrix]\n"
    "server = 127.0.0.1:12443\n"
    "server = 127.0.0.1:12444 backup\n"
    "server = 127.0.0.1:12445\n"
    "[upstream wild]\n"
    "server = 127.0.0.1:9001\n"
    "[upstream org]\n"
    "server = unix:/run/org.sock\n"
    "[upstream local]\n"
    "server = 127.0.0.1:8443\n";

Test(config, issue_example_loads)
{
    struct config *config = load_ok(ISSUE_EXAMPLE);
    cr_assert_eq(config->workers, 0);
    cr_assert_eq(config->listen_count, 2);
    const struct snapshot_settings *s = &config->snapshot->settings;
    cr_assert_eq(s->max_connections, 10000);
    cr_assert_eq(s->preread_timeout_ms, 5000);
    cr_assert_eq(s->preread_max, 16384);
    cr_assert_eq(s->idle_timeout_ms, 600000);
    cr_assert_eq(s->drain_timeout_ms, 30000);
    cr_assert_str_eq(upstream_name(config, route(config, "matrix.exceptionerror.io")), "matrix");
    cr_assert_str_eq(upstream_name(config, route(config, "ELEMENT.exceptionerror.io")), "local",
                     "lookup takes normalised names; uppercase is the parser's job");
    cr_assert_str_eq(upstream_name(config, route(config, "a.b.example.com")), "wild");
    cr_assert_str_eq(upstream_name(config, route(config, "example.org")), "org");
    cr_assert_str_eq(upstream_name(config, route(config, "blog.robrotheram.com")), "127.0.0.1:8443");
    cr_assert_str_eq(upstream_name(config, route(config, "nothing.test")), "local");
    /* Backups after primaries, whatever the order in the file. */
    const struct upstream *matrix = &config->snapshot->upstreams[route(config, "matrix.exceptionerror.io")];
    cr_assert_eq(matrix->server_count, 3);
    cr_assert_eq(matrix->primary_count, 2);
    cr_assert(matrix->servers[2].backup);
    config_free(config);
}

Test(config, defaults_apply)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:1443\n[routes]\ndefault = 127.0.0.1:1\n");
    const struct snapshot_settings *s = &config->snapshot->settings;
    cr_assert_eq(config->workers, 0);
    cr_assert_eq(s->max_connections, 10000);
    cr_assert_eq(s->preread_timeout_ms, 5000);
    cr_assert_eq(s->preread_max, 16384);
    cr_assert_eq(s->connect_timeout_ms, 5000);
    cr_assert_eq(s->idle_timeout_ms, 600000);
    cr_assert_eq(s->drain_timeout_ms, 30000);
    config_free(config);
}

Test(config, upstream_defined_after_routes_and_shared_literals)
{
    struct config *config = load_ok("[routes]\na.test = late\nb.test = 127.0.0.1:7\nc.test = 127.0.0.1:7\n"
                                    "[listen]\naddress = 127.0.0.1:1443\n"
                                    "[upstream late]\nserver = 127.0.0.1:9\n");
    cr_assert_str_eq(upstream_name(config, route(config, "a.test")), "late");
    cr_assert_eq(route(config, "b.test"), route(config, "c.test"), "one upstream per literal");
    cr_assert_eq(config->snapshot->upstream_count, 2);
    config_free(config);
}

static bool is_loopback_with_port(const struct address *address, uint16_t port)
{
    char text[ADDRESS_TEXT_MAX];
    address_format(address, text, sizeof text);
    char want4[32], want6[32];
    snprintf(want4, sizeof want4, "127.0.0.1:%u", port);
    snprintf(want6, sizeof want6, "[::1]:%u", port);
    return strcmp(text, want4) == 0 || strcmp(text, want6) == 0;
}

/* docker-compose setups name their backends (`server synapse:8448`):
 * nginx resolves such names when it loads its configuration and makes
 * each address a server with the line's parameters. So does snisplice,
 * for `server =` lines and for literal targets. */
Test(config, host_names_are_resolved_into_servers)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:1443\n"
                                    "[routes]\na.test = named\nb.test = localhost:9000\n"
                                    "[upstream named]\n"
                                    "server = localhost:9001 weight=3 max_fails=2\n"
                                    "server = LocalHost.:9002 backup\n");
    const struct upstream *named = &config->snapshot->upstreams[route(config, "a.test")];
    cr_assert_str_eq(named->name, "named");
    cr_assert_geq(named->primary_count, 1);
    cr_assert_gt(named->server_count, named->primary_count, "the backup line added servers");
    bool has_ipv4 = false;
    for (uint32_t i = 0; i < named->server_count; i++) {
        const struct upstream_server *server = &named->servers[i];
        bool backup = i >= named->primary_count;
        cr_assert(is_loopback_with_port(&server->address, backup ? 9002 : 9001), "server %u", i);
        cr_assert_eq(server->backup, backup);
        cr_assert_eq(server->weight, backup ? 1 : 3);
        cr_assert_eq(server->max_fails, backup ? 1 : 2);
        char text[ADDRESS_TEXT_MAX];
        address_format(&server->address, text, sizeof text);
        has_ipv4 |= strcmp(text, "127.0.0.1:9001") == 0;
    }
    cr_assert(has_ipv4, "localhost's IPv4 address is one of the servers");
    const struct upstream *literal = &config->snapshot->upstreams[route(config, "b.test")];
    cr_assert_str_eq(literal->name, "localhost:9000");
    cr_assert_geq(literal->server_count, 1);
    for (uint32_t i = 0; i < literal->server_count; i++)
        cr_assert(is_loopback_with_port(&literal->servers[i].address, 9000));
    config_free(config);
}

/* A name that does not resolve fails the load (nginx: "host not found in
 * upstream"), so a reload with it keeps the running config; a name without
 * a port and a mistyped IPv4 address are not looked up at all. */
Test(config, host_names_that_cannot_be_used_are_errors, .timeout = 60)
{
    struct config_errors errors;
    struct config *config = config_load(write_config("[listen]\naddress = 127.0.0.1:1443\n"
                                                     "[routes]\nc.test = nosuchhost.invalid:9000\n"
                                                     "default = b\n"
                                                     "[upstream b]\nserver = synapse\n"
                                                     "server = 300.1.1.1:80\n"
                                                     "server = nosuchhost.invalid:443 backup\n"
                                                     "server = 127.0.0.1:443\n"),
                                        &errors);
    cr_assert_null(config);
    cr_assert_eq(errors.count, 4, "got %zu errors", errors.count);
    const char *const expected[] = {
        "7: server: no port in 'synapse' (write name:port)",
        "8: server: bad address '300.1.1.1:80': expected IPv4:port, [IPv6]:port or unix:/path",
        "9: server: host 'nosuchhost.invalid' not found: ",
        "4: route 'c.test': host 'nosuchhost.invalid' not found: ",
    };
    for (size_t i = 0; i < 4; i++) {
        char want[256];
        snprintf(want, sizeof want, "%s:%s", path, expected[i]);
        cr_assert(strncmp(errors.lines[i], want, strlen(want)) == 0, "line %zu: %s", i, errors.lines[i]);
    }
    config_errors_free(&errors);
    unlink(path);
}

/* nginx map regex entries as [routes] keys, tried after names and
 * suffixes in file order; what cannot be used is an error at its line. */
Test(config, regular_expression_routes)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:1443\n"
                                    "[routes]\n"
                                    "~^www\\.(.+)$ = www\n"
                                    "~*^(?<app>[\\w-]+)\\.apps\\.test$ = apps\n"
                                    "www.exact.test = exact\n"
                                    "default = exact\n"
                                    "[upstream www]\nserver = 127.0.0.1:9001\n"
                                    "[upstream apps]\nserver = 127.0.0.1:9002\n"
                                    "[upstream exact]\nserver = 127.0.0.1:9003\n");
    cr_assert_str_eq(upstream_name(config, route(config, "www.example.com")), "www");
    cr_assert_str_eq(upstream_name(config, route(config, "my-app.apps.test")), "apps");
    cr_assert_str_eq(upstream_name(config, route(config, "www.exact.test")), "exact", "names before expressions");
    cr_assert_str_eq(upstream_name(config, route(config, "example.com")), "exact");
    config_free(config);

    const char *const expected[] = {
        "4: regular expression '~^(?...': the INI ends a key at its first '=' or ':'; write (?:...) as (...), "
        "and no '=' or ':' in an expression",
        "5: regular expression '~^(?!www)': (?... look-around, options and verbs have no POSIX equivalent",
        "6: regular expression '~^(a': Unmatched ( or \\(",
        "7: route '~^b': unknown upstream 'nowhere'",
    };
    expect_errors("[listen]\naddress = 127.0.0.1:1443\n"
                  "[routes]\n"
                  "~^(?:a|b)$ = 127.0.0.1:9001\n"
                  "~^(?!www) = 127.0.0.1:9001\n"
                  "~^(a = 127.0.0.1:9001\n"
                  "~^b = nowhere\n",
                  expected, 4);
}

/* Large nginx maps name an address per route. Each distinct address is
 * one upstream, the same address one upstream however often it appears,
 * and loading stays linear (a scan per route took 19 s for 100 000). */
Test(config, one_hundred_thousand_literal_addresses, .timeout = 30)
{
    enum { ROUTES = 100000 };
    size_t size = 200 + ROUTES * 64, length = 0;
    char *text = malloc(size);
    cr_assert_not_null(text);
    length += (size_t)snprintf(text + length, size - length, "[listen]\naddress = 127.0.0.1:1443\n[routes]\n");
    size_t distinct = 0;
    for (int i = 0; i < ROUTES; i++) {
        if (i % 10 == 9) {
            length += (size_t)snprintf(text + length, size - length, "h%d.test = 10.0.0.0:1000\n", i);
            continue;
        }
        distinct += i != 0;
        length += (size_t)snprintf(text + length, size - length, "h%d.test = 10.%d.%d.%d:%d\n", i, i >> 16 & 255,
                                   i >> 8 & 255, i & 255, 1000 + i % 50000);
    }
    struct config *config = load_ok(text);
    free(text);
    cr_assert_eq(config->snapshot->upstream_count, distinct + 1);
    cr_assert_str_eq(upstream_name(config, route(config, "h0.test")), "10.0.0.0:1000");
    cr_assert_eq(route(config, "h9.test"), route(config, "h0.test"), "the same address, the same upstream");
    cr_assert_eq(route(config, "h99999.test"), route(config, "h0.test"));
    cr_assert_str_eq(upstream_name(config, route(config, "h70001.test")), "10.1.17.113:21001");
    config_free(config);
}

/* A hosting provider's shape: a listener per tenant address, each with
 * its own [routes NAME] table. Loading stays linear in the whole file: a
 * scan of every route per table, and of every table and listener name
 * per section, made 20,000 tables of 5 routes take 9 s to load (and as
 * long at every reload) against 0.2 s for the same routes in one table. */
Test(config, twenty_thousand_listeners_with_their_own_tables, .timeout = 30)
{
    enum { TABLES = 20000, PER_TABLE = 5 };
    size_t size = (size_t)TABLES * (80 + PER_TABLE * 40) + 100, length = 0;
    char *text = malloc(size);
    cr_assert_not_null(text);
    for (int t = 0; t < TABLES; t++)
        length += (size_t)snprintf(text + length, size - length, "[listen l%d]\naddress = 127.1.%d.%d:%d\nroutes = t%d\n",
                                   t, t / 250, t % 250 + 1, 1000 + t % 7, t);
    for (int t = 0; t < TABLES; t++) {
        length += (size_t)snprintf(text + length, size - length, "[routes t%d]\n", t);
        for (int r = 0; r < PER_TABLE; r++)
            length += (size_t)snprintf(text + length, size - length, "h%d.t%d.test = 10.0.%d.%d:443\n", r, t,
                                       r, t % 250);
    }
    struct config *config = load_ok(text);
    free(text);
    const struct snapshot *snapshot = config->snapshot;
    cr_assert_eq(snapshot->listener_count, TABLES);
    cr_assert_eq(snapshot->route_table_count, TABLES);
    /* Each listener routes by its own table only. */
    const struct snapshot_listener *last = &snapshot->listeners[TABLES - 1];
    cr_assert_str_eq(upstream_name(config, route_lookup(last->routes, "h4.t19999.test", 14)), "10.0.4.249:443");
    cr_assert_eq(route_lookup(last->routes, "h4.t19998.test", 14), ROUTE_NO_MATCH);
    config_free(config);
}

Test(config, workers_number_and_durations)
{
    struct config *config = load_ok("[global]\nworkers = 3\npreread_timeout = 500ms\nidle_timeout = 1h\n"
                                    "[listen]\naddress = 127.0.0.1:1443\n[routes]\ndefault = 127.0.0.1:1\n");
    cr_assert_eq(config->workers, 3);
    cr_assert_eq(config->snapshot->settings.preread_timeout_ms, 500);
    cr_assert_eq(config->snapshot->settings.idle_timeout_ms, 3600000);
    config_free(config);
}

Test(config, every_error_with_its_line)
{
    const char *text =
        "[global]\n"                                  /* 1 */
        "workers = many\n"                            /* 2 */
        "preread_timeout = 5 parsecs\n"               /* 3 */
        "preread_max = 1m\n"                          /* 4 */
        "colour = blue\n"                             /* 5 */
        "[listen]\n"                                  /* 6 */
        "address = 127.0.0.1:443\n"                   /* 7 */
        "address = 127.0.0.1:443\n"                   /* 8 */
        "address = localhost:443\n"                   /* 9 */
        "[routes]\n"                                  /* 10 */
        "a.test = missing\n"                          /* 11 */
        "b.test = up\n"                               /* 12 */
        "B.TEST. = up\n"                              /* 13 */
        "bad@name.test = up\n"                        /* 14 */
        "c.test = 127.0.0.1:99999\n"                  /* 15 */
        "[upstream up]\n"                             /* 16 */
        "server = 127.0.0.1:1 weight=5000\n"          /* 17 */
        "server = 127.0.0.1:2\n"                      /* 18 */
        "[upstream up]\n"                             /* 19 */
        "[upstream empty]\n"                          /* 20 */
        "[upstreams]\n"                               /* 21 */
        "[upstream b@d]\n";                           /* 22 */
    const char *const expected[] = {
        "2: workers: expected auto or 1..256, got 'many'",
        "3: preread_timeout: bad duration '5 parsecs' (e.g. 500ms, 5s, 10m; more than 0, at most 30d)",
        "4: preread_max: expected a size from 1k to 64k, got '1m'",
        "5: unknown key 'colour' in [global]",
        "8: duplicate listen address '127.0.0.1:443'",
        "9: address: bad address 'localhost:443': expected IPv4:port or [IPv6]:port",
        "17: server: bad parameter 'weight=5000' (weight=1..1000, max_fails=0..1000, fail_timeout=DURATION up to 30d, "
        "max_conns=0..1000000, backup, down)",
        "19: duplicate upstream 'up' (first at line 16)",
        "21: unknown section [upstreams]",
        "22: bad upstream name 'b@d' (letters, digits, '_', '-')",
        "20: upstream 'empty' has no server",
        "11: route 'a.test': unknown upstream 'missing'",
        "13: duplicate route 'B.TEST.'",
        "14: invalid server name pattern 'bad@name.test'",
        "15: route 'c.test': bad port in '127.0.0.1:99999' (1..65535)",
    };
    expect_errors(text, expected, sizeof expected / sizeof expected[0]);
}

/* The access log and the metrics say route "-" for a connection not routed
 * yet: an upstream of that name would pass its connections off as those. */
Test(config, an_upstream_may_not_be_named_as_unrouted)
{
    const char *const expected[] = { "4: upstream name '-' is what the access log and metrics show before routing; "
                                     "choose another" };
    expect_errors("[listen]\naddress = 127.0.0.1:1443\nupstream = 127.0.0.1:8443\n[upstream -]\nserver = 127.0.0.1:8443\n",
                  expected, 1);
}

Test(config, missing_listen)
{
    const char *const expected[] = { " no [listen] address" };
    expect_errors("[global]\nworkers = 1\n", expected, 1);
}

Test(config, named_listeners_plain_forwarding_and_tables)
{
    struct config *config = load_ok(
        "[listen]\naddress = 127.0.0.1:1443\n"
        "[listen ssh]\naddress = 127.0.0.1:2222\naddress = [::1]:2222\nupstream = 127.0.0.1:22\n"
        "[listen internal]\naddress = 127.0.0.1:3443\n"
        "[listen shared]\naddress = 127.0.0.1:4443\nroutes = internal\n"
        "[routes]\ndefault = web\n"
        "[routes internal]\ngit.test = git\n"
        "[upstream web]\nserver = 127.0.0.1:8443\n"
        "[upstream git]\nserver = 127.0.0.1:3000\n");
    const struct snapshot *snapshot = config->snapshot;
    cr_assert_eq(snapshot->listener_count, 4);
    cr_assert_eq(config->listen_count, 5);
    cr_assert_str_eq(snapshot->listeners[0].name, "");
    cr_assert_str_eq(snapshot->listeners[1].name, "ssh");
    cr_assert_null(snapshot->listeners[1].routes, "plain forwarding has no table");
    cr_assert_str_eq(upstream_name(config, snapshot->listeners[1].upstream), "127.0.0.1:22");
    cr_assert_eq(config->listen[1].listener, 1);
    cr_assert_eq(config->listen[2].listener, 1);
    cr_assert_eq(snapshot->listeners[2].routes, snapshot->listeners[3].routes, "routes = internal shares the table");
    cr_assert_str_eq(upstream_name(config, route_lookup(snapshot->listeners[2].routes, "git.test", 8)), "git");
    cr_assert_eq(route_lookup(snapshot->listeners[2].routes, "other.test", 10), ROUTE_NO_MATCH);
    cr_assert_str_eq(upstream_name(config, route_lookup(snapshot->listeners[0].routes, "x.test", 6)), "web");
    config_free(config);
}

Test(config, alpn_routes)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:1443\n"
                                    "[routes]\nalpn acme-tls/1 = 127.0.0.1:8555\ndefault = 127.0.0.1:8443\n");
    static const uint8_t acme[] = { 10, 'a', 'c', 'm', 'e', '-', 't', 'l', 's', '/', '1' };
    const struct route_table *routes = config->snapshot->listeners[0].routes;
    cr_assert_str_eq(upstream_name(config, route_lookup_alpn(routes, acme, sizeof acme)), "127.0.0.1:8555");
    cr_assert_str_eq(upstream_name(config, route_lookup(routes, "a.test", 6)), "127.0.0.1:8443");
    config_free(config);
    const char *const expected[] = { "4: invalid ALPN protocol 'alpn a b'" };
    expect_errors("[listen]\naddress = 127.0.0.1:1443\n[routes]\nalpn a b = 127.0.0.1:8555\n", expected, 1);
}

Test(config, listener_errors)
{
    const char *text =
        "[listen]\n"                                 /* 1 */
        "address = 127.0.0.1:1\n"                    /* 2 */
        "[listen a]\n"                               /* 3 */
        "address = 127.0.0.1:2\n"                    /* 4 */
        "upstream = nowhere\n"                       /* 5 */
        "[listen b]\n"                               /* 6 */
        "address = 127.0.0.1:3\n"                    /* 7 */
        "upstream = 127.0.0.1:9\n"                   /* 8 */
        "routes = c\n"                               /* 9 */
        "[listen c]\n"                               /* 10 */
        "[listen a]\n"                               /* 11 */
        "[routes]\n"                                 /* 12 */
        "default = 127.0.0.1:9\n"                    /* 13 */
        "[routes unused]\n"                          /* 14 */
        "x.test = 127.0.0.1:9\n"                     /* 15 */
        "[listen d]\n"                               /* 16 */
        "address = 127.0.0.1:4\n"                    /* 17 */
        "colour = red\n"                             /* 18 */
        "upstream = 127.0.0.1:9\n"                   /* 19 */
        "upstream = 127.0.0.1:8\n";                  /* 20 */
    const char *const expected[] = {
        "11: duplicate [listen a] (first at line 3)",
        "18: unknown key 'colour' in [listen d]",
        "20: upstream given twice (first at line 19)",
        "5: [listen a] upstream: unknown upstream 'nowhere'",
        "9: [listen b]: routes and upstream exclude each other",
        "10: [listen c] has no address",
        "10: [listen c]: no [routes c] section",
        "14: [routes unused] is used by no listener",
    };
    expect_errors(text, expected, sizeof expected / sizeof expected[0]);
}

/* A key that takes one value, given twice in one section, took the last
 * value without a word: a `workers` or `idle_timeout` pasted into a
 * section that already had one silently replaced it. nginx refuses such
 * a directive ("is duplicate"); so does this loader, naming both lines,
 * and a second [global] cannot hide one either. Keys that add a value
 * each time still repeat, and a line after a bad value is no second one. */
Test(config, a_one_value_key_given_twice_is_refused)
{
    const char *text =
        "[global]\n"                                  /* 1 */
        "workers = 2\n"                               /* 2 */
        "idle_timeout = 10m\n"                        /* 3 */
        "workers = 4\n"                               /* 4 */
        "[listen]\n"                                  /* 5 */
        "address = 127.0.0.1:1\n"                     /* 6 */
        "address = 127.0.0.1:2\n"                     /* 7 */
        "allow = 10.0.0.0/8\n"                        /* 8 */
        "allow = 192.168.0.0/16\n"                    /* 9 */
        "idle_timeout = 2h\n"                         /* 10 */
        "idle_timeout = 3h\n"                         /* 11 */
        "source = nowhere\n"                          /* 12 */
        "source = none\n"                             /* 13 */
        "[routes]\n"                                  /* 14 */
        "default = u\n"                               /* 15 */
        "[upstream u]\n"                              /* 16 */
        "server = 127.0.0.1:3\n"                      /* 17 */
        "server = 127.0.0.1:4\n"                      /* 18 */
        "balance = least_connections\n"               /* 19 */
        "balance = round_robin\n"                     /* 20 */
        "[global]\n"                                  /* 21 */
        "drain_timeout = 5s\n";                       /* 22 */
    const char *const expected[] = {
        "4: workers given twice (first at line 2)",
        "11: idle_timeout given twice (first at line 10)",
        "12: source: expected none, client, or an IPv4 or IPv6 address, got 'nowhere'",
        "20: balance given twice (first at line 19)",
        "21: duplicate [global] (first at line 1)",
    };
    expect_errors(text, expected, sizeof expected / sizeof expected[0]);

    struct config *config = load_ok("[global]\nidle_timeout = 1m\n[listen]\naddress = 127.0.0.1:1\n"
                                    "idle_timeout = 2h\n[listen b]\naddress = 127.0.0.1:2\nidle_timeout = 3h\n"
                                    "upstream = 127.0.0.1:9\n[routes]\ndefault = 127.0.0.1:9\n");
    cr_expect_eq(config->snapshot->listeners[0].idle_timeout_ms, 2u * 3600 * 1000);
    cr_expect_eq(config->snapshot->listeners[1].idle_timeout_ms, 3u * 3600 * 1000);
    config_free(config);
}

/* inih ignores what follows a section header's ']': "[global] workers
 * = 4" opened [global] and dropped the key without a word, and the
 * config passed -t with the default workers. Only a comment may follow. */
Test(config, text_after_a_section_header_is_refused)
{
    const char *text =
        "[global] workers = 4\n"                      /* 1 */
        "[listen] ; the main one\n"                   /* 2 */
        "address = 127.0.0.1:1\n"                     /* 3 */
        "[routes]]\n"                                 /* 4 */
        "default = u\n"                               /* 5 */
        "[upstream u] server = 127.0.0.1:5\n"         /* 6 */
        "server = 127.0.0.1:6\n";                     /* 7 */
    const char *const expected[] = {
        "1: text after [global]: 'workers = 4' (a key goes on a line of its own)",
        "4: text after [routes]: ']' (a key goes on a line of its own)",
        "6: text after [upstream u]: 'server = 127.0.0.1:5' (a key goes on a line of its own)",
    };
    expect_errors(text, expected, sizeof expected / sizeof expected[0]);
    config_free(load_ok("[global] ; settings\n[listen]\t# main\naddress = 127.0.0.1:1\n[routes]\n"
                        "default = 127.0.0.1:2\n"));
}

/* access_log takes off or an absolute path. A relative one was taken as
 * the working directory's, so a mistyped off ("none", as `source` says
 * it, or "OFF") made a log file of that name, not no log. */
Test(config, access_log_is_off_or_an_absolute_path)
{
    const char *text =
        "[global]\n"                                  /* 1 */
        "access_log = none\n"                         /* 2 */
        "[listen]\n"                                  /* 3 */
        "address = 127.0.0.1:1\n"                     /* 4 */
        "[routes]\n"                                  /* 5 */
        "default = 127.0.0.1:2\n";                    /* 6 */
    const char *const none[] = { "2: access_log: expected off or an absolute path, got 'none'" };
    expect_errors(text, none, 1);
    const char *const relative[] = { "2: access_log: expected off or an absolute path, got 'logs/access.log'" };
    expect_errors("[global]\naccess_log = logs/access.log\n[listen]\naddress = 127.0.0.1:1\n[routes]\n"
                  "default = 127.0.0.1:2\n", relative, 1);
    const char *const upper[] = { "2: access_log: expected off or an absolute path, got 'OFF'" };
    expect_errors("[global]\naccess_log = OFF\n[listen]\naddress = 127.0.0.1:1\n[routes]\n"
                  "default = 127.0.0.1:2\n", upper, 1);

    struct config *config = load_ok("[global]\naccess_log = /var/log/snisplice/access.log\n[listen]\n"
                                    "address = 127.0.0.1:1\n[routes]\ndefault = 127.0.0.1:2\n");
    cr_expect_str_eq(config->access_log, "/var/log/snisplice/access.log");
    cr_expect_eq(config->access_log_line, 2);
    config_free(config);
    config = load_ok("[global]\naccess_log = off\n[listen]\naddress = 127.0.0.1:1\n[routes]\n"
                     "default = 127.0.0.1:2\n");
    cr_expect_null(config->access_log);
    config_free(config);
}

/* A unix: path to listen on passed -t (the error text even offered it)
 * and then failed at start-up with "Operation not supported", leaving
 * its socket file behind: snisplice accepts TCP only. Refused at load,
 * in [listen] and [listen NAME]; an upstream server may still be one. */
Test(config, unix_listen_address_is_refused)
{
    const char *text =
        "[listen]\n"                                 /* 1 */
        "address = unix:/run/snisplice.sock\n"       /* 2 */
        "address = 127.0.0.1:1\n"                    /* 3 */
        "[listen plain]\n"                           /* 4 */
        "address = unix:/tmp/plain.sock\n"           /* 5 */
        "address = 127.0.0.1:2\n"                    /* 6 */
        "upstream = unix:/run/backend.sock\n"        /* 7 */
        "[routes]\n"                                 /* 8 */
        "default = unix:/run/backend.sock\n";        /* 9 */
    const char *const expected[] = {
        "2: address: 'unix:/run/snisplice.sock': snisplice listens on TCP only, expected IPv4:port or [IPv6]:port",
        "5: address: 'unix:/tmp/plain.sock': snisplice listens on TCP only, expected IPv4:port or [IPv6]:port",
    };
    expect_errors(text, expected, sizeof expected / sizeof expected[0]);
}

/* [::ffff:127.0.0.1]:443 passed -t, then start-up failed with a bare
 * "Invalid argument": listeners are IPv6-only sockets, to which the
 * kernel refuses an IPv4-mapped address. Refused at load, naming the
 * IPv4 form that works. */
Test(config, ipv4_mapped_listen_address_is_refused)
{
    const char *text =
        "[listen]\n"                                 /* 1 */
        "address = [::ffff:127.0.0.1]:443\n"         /* 2 */
        "address = [::1]:443\n"                      /* 3 */
        "[routes]\n"                                 /* 4 */
        "default = [::ffff:127.0.0.1]:8443\n";       /* 5 */
    const char *const expected[] = {
        "2: address: '[::ffff:127.0.0.1]:443': listeners' IPv6 sockets are IPv6-only, and the kernel refuses "
        "them an IPv4-mapped address; write 127.0.0.1:443",
    };
    expect_errors(text, expected, sizeof expected / sizeof expected[0]);
}

Test(config, syntax_error_has_its_line)
{
    const char *const expected[] = { "3: syntax error (expected [section], key = value, or ; comment)" };
    expect_errors("[listen]\naddress = 127.0.0.1:1\nthis line has no equals sign\n[routes]\ndefault = 127.0.0.1:2\n",
                  expected, 1);
}

/* inih alone would read an indented line as the previous key's value
 * continued ("a = x" then "  b = y" gives a = "b = y"); here every line
 * stands alone, as INI writers expect. */
Test(config, indented_lines_are_ordinary_lines)
{
    struct config *config = load_ok("[listen]\n  address = 127.0.0.1:1\n"
                                    "  [routes]\n"
                                    "  a.test = 127.0.0.1:2\n"
                                    "\tb.test = 127.0.0.1:3   ; tab-indented\n"
                                    "    default = 127.0.0.1:4\n");
    cr_assert_str_eq(upstream_name(config, route(config, "a.test")), "127.0.0.1:2");
    cr_assert_str_eq(upstream_name(config, route(config, "b.test")), "127.0.0.1:3");
    cr_assert_str_eq(upstream_name(config, route(config, "other.test")), "127.0.0.1:4");
    config_free(config);
}

/* A valid host name of `length` characters: labels of 60 letters. */
static void dotted_name(char *out, size_t length)
{
    for (size_t i = 0; i < length; i++)
        out[i] = i % 61 == 60 ? '.' : 'a';
    out[length] = '\0';
    cr_assert_neq(out[length - 1], '.');
}

/* A line longer than inih's buffer (200 bytes in Debian's libinih) used to
 * be cut, its rest read as a line of its own: two misleading errors and
 * every later line number off by one. Now one error names the line and
 * the lines after it keep their numbers. */
Test(config, overlong_line_is_one_error_at_its_line)
{
    char text[1024], name[256];
    dotted_name(name, 199);
    snprintf(text, sizeof text, "[listen]\naddress = 127.0.0.1:1\n[routes]\n%s = 127.0.0.1:2\n"
             "[global]\nidle_timeout = 0s\n", name);
    const char *const expected[] = {
        "4: line longer than 199 characters, the most the INI reader (inih) takes",
        "6: idle_timeout: bad duration '0s' (e.g. 500ms, 5s, 10m; more than 0, at most 30d)",
    };
    expect_errors(text, expected, 2);
}

/* A line of exactly the buffer's length is not cut. */
Test(config, line_of_the_longest_length_loads)
{
    char text[1024], name[256];
    dotted_name(name, 199 - strlen(" = 127.0.0.1:2"));
    snprintf(text, sizeof text, "[listen]\naddress = 127.0.0.1:1\n[routes]\n%s = 127.0.0.1:2\n", name);
    struct config *config = load_ok(text);
    cr_assert_str_eq(upstream_name(config, route(config, name)), "127.0.0.1:2");
    config_free(config);
}

/* The same in a file with CRLF line ends (a Windows editor's): its CR is
 * no character of the line, yet such a line was refused as longer than
 * 199 characters. */
Test(config, line_of_the_longest_length_loads_with_crlf)
{
    char text[1024], name[256];
    dotted_name(name, 199 - strlen(" = 127.0.0.1:2"));
    snprintf(text, sizeof text, "[listen]\r\naddress = 127.0.0.1:1\r\n[routes]\r\n%s = 127.0.0.1:2\r\n"
             "default = 127.0.0.1:3\r\n", name);
    struct config *config = load_ok(text);
    cr_assert_str_eq(upstream_name(config, route(config, name)), "127.0.0.1:2");
    cr_assert_str_eq(upstream_name(config, route(config, "other.test")), "127.0.0.1:3");
    config_free(config);
}

Test(config, key_outside_section_and_zero_duration)
{
    const char *const expected[] = {
        "1: key 'workers' outside any section",
        "5: idle_timeout: bad duration '0s' (e.g. 500ms, 5s, 10m; more than 0, at most 30d)",
    };
    expect_errors("workers = 1\n[listen]\naddress = 127.0.0.1:1\n[global]\nidle_timeout = 0s\n[routes]\ndefault = 127.0.0.1:2\n",
                  expected, 2);
}

Test(config, unreadable_file)
{
    struct config_errors errors;
    cr_assert_null(config_load("/nonexistent/snisplice.ini", &errors));
    cr_assert_eq(errors.count, 1);
    cr_assert_str_eq(errors.lines[0], "/nonexistent/snisplice.ini: cannot open: No such file or directory");
    config_errors_free(&errors);
}

/* -c naming a directory (the file name left off), or a disk that fails
 * mid-file: what was read is not a whole config, and the reason is the
 * read, not "no [listen] address" or a config cut short. */
Test(config, read_error_is_said_as_such)
{
    char directory_template[] = "/tmp/snisplice-config-dir-XXXXXX";
    char *directory = mkdtemp(directory_template);
    cr_assert_not_null(directory);
    struct config_errors errors;
    cr_expect_null(config_load(directory, &errors));
    cr_assert_eq(errors.count, 1, "%zu errors, the first: %s", errors.count, errors.count ? errors.lines[0] : "");
    char *expected = NULL;
    cr_assert_gt(asprintf(&expected, "%s: cannot read: Is a directory", directory), 0);
    cr_expect_str_eq(errors.lines[0], expected);
    free(expected);
    config_errors_free(&errors);
    rmdir(directory);
}

Test(config, shipped_example_is_valid)
{
    struct config_errors errors;
    struct config *config = config_load("config/snisplice.ini", &errors);
    cr_assert_not_null(config, "%s", errors.count ? errors.lines[0] : "");
    char text[ADDRESS_TEXT_MAX];
    address_format(&config->listen[0].address, text, sizeof text);
    cr_assert_str_eq(text, "127.0.0.1:8443", "make run listens on 127.0.0.1:8443");
    config_free(config);
    config_errors_free(&errors);
}

/* The README's configuration reference is an example users copy: it must
 * load as it is (it once named upstreams it did not define). */
Test(config, readme_reference_example_is_valid)
{
    FILE *readme = fopen("README.md", "r");
    cr_assert_not_null(readme, "run from the repository root");
    char line[512];
    bool in_section = false, in_block = false;
    char *example = NULL;
    size_t example_size = 0;
    FILE *out = open_memstream(&example, &example_size);
    cr_assert_not_null(out);
    while (fgets(line, sizeof line, readme)) {
        if (strncmp(line, "## ", 3) == 0)
            in_section = strcmp(line, "## Configuration reference\n") == 0;
        else if (in_section && !in_block && strcmp(line, "```ini\n") == 0)
            in_block = true;
        else if (in_block && strcmp(line, "```\n") == 0)
            break;
        else if (in_block)
            fputs(line, out);
    }
    fclose(readme);
    fclose(out);
    cr_assert_gt(example_size, 100, "no ini block under \"## Configuration reference\"");
    struct config_errors errors;
    struct config *config = config_load(write_config(example), &errors);
    cr_expect_not_null(config, "%s", errors.count ? errors.lines[0] : "");
    config_free(config);
    config_errors_free(&errors);
    unlink(path);
    free(example);
}

Test(units, sizes)
{
    uint64_t bytes;
    cr_assert(units_parse_size("512", &bytes) && bytes == 512);
    cr_assert(units_parse_size("16k", &bytes) && bytes == 16384);
    cr_assert(units_parse_size("16K", &bytes) && bytes == 16384);
    cr_assert(units_parse_size("1m", &bytes) && bytes == 1048576);
    cr_assert(units_parse_size("2g", &bytes) && bytes == 2147483648ull);
    const char *bad[] = { "", "k", "-1", "1.5k", "16kb", "16 k", "99999999999999999999", "18014398509481984k" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(units_parse_size(bad[i], &bytes), "'%s'", bad[i]);
}

Test(units, durations)
{
    uint64_t ms;
    cr_assert(units_parse_duration("500ms", &ms) && ms == 500);
    cr_assert(units_parse_duration("5s", &ms) && ms == 5000);
    cr_assert(units_parse_duration("5", &ms) && ms == 5000, "bare number is seconds");
    cr_assert(units_parse_duration("10m", &ms) && ms == 600000);
    cr_assert(units_parse_duration("2h", &ms) && ms == 7200000);
    cr_assert(units_parse_duration("1d", &ms) && ms == 86400000);
    const char *bad[] = { "", "s", "-5s", "5 s", "5sec", "1.5s", "5mss", "99999999999999999999d" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(units_parse_duration(bad[i], &ms), "'%s'", bad[i]);
}

Test(config, congestion_control_key)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:8443\n[routes]\ndefault = a\n"
                                    "[upstream a]\nserver = 127.0.0.1:1\n"
                                    "[upstream b]\nserver = 127.0.0.1:2\ncongestion_control = system\n"
                                    "[upstream c]\nserver = 127.0.0.1:3\ncongestion_control = reno\n"
                                    "[upstream d]\nserver = 127.0.0.1:4\ncongestion_control = auto\n");
    const struct snapshot *snapshot = config->snapshot;
    for (uint32_t i = 0; i < snapshot->upstream_count; i++) {
        const struct upstream *upstream = &snapshot->upstreams[i];
        if (strcmp(upstream->name, "a") == 0 || strcmp(upstream->name, "d") == 0)
            cr_expect_eq(upstream->congestion.choice, CONGESTION_AUTO, "%s", upstream->name);
        if (strcmp(upstream->name, "b") == 0)
            cr_expect_eq(upstream->congestion.choice, CONGESTION_SYSTEM);
        if (strcmp(upstream->name, "c") == 0) {
            cr_expect_eq(upstream->congestion.choice, CONGESTION_NAMED);
            cr_expect_str_eq(upstream->congestion.name, "reno");
        }
    }
    config_free(config);

    const char *const expected[] = {
        "6: congestion_control: 'no_such_algo' is not in this kernel (see net.ipv4.tcp_available_congestion_control)",
        "7: congestion_control: expected auto, system or an algorithm name, got 'a_name_far_too_long'",
    };
    expect_errors("[listen]\naddress = 127.0.0.1:8443\n[routes]\ndefault = a\n"
                  "[upstream a]\ncongestion_control = no_such_algo\n"
                  "congestion_control = a_name_far_too_long\nserver = 127.0.0.1:1\n",
                  expected, 2);
}

/* A [listen] takes the same values, for the client sockets it accepts. */
Test(config, congestion_control_key_of_a_listener)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:8443\n"
                                    "[listen b]\naddress = 127.0.0.1:8444\nupstream = a\ncongestion_control = system\n"
                                    "[listen c]\naddress = 127.0.0.1:8445\nupstream = a\ncongestion_control = reno\n"
                                    "[routes]\ndefault = a\n[upstream a]\nserver = 127.0.0.1:1\n");
    const struct snapshot *snapshot = config->snapshot;
    cr_assert_eq(snapshot->listener_count, 3);
    cr_expect_eq(snapshot->listeners[0].congestion.choice, CONGESTION_AUTO, "the default");
    cr_expect_eq(snapshot->listeners[1].congestion.choice, CONGESTION_SYSTEM);
    cr_expect_eq(snapshot->listeners[2].congestion.choice, CONGESTION_NAMED);
    cr_expect_str_eq(snapshot->listeners[2].congestion.name, "reno");
    /* The system's default, read once by the loader: what a fresh socket has. */
    char fresh[CONGESTION_NAME_MAX] = "";
    socklen_t length = sizeof fresh - 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, fresh, &length), 0);
    close(fd);
    for (size_t i = 0; i < snapshot->listener_count; i++)
        cr_expect_str_eq(snapshot->listeners[i].congestion_system, fresh);
    config_free(config);

    const char *const expected[] = {
        "3: congestion_control: 'no_such_algo' is not in this kernel (see net.ipv4.tcp_available_congestion_control)",
        "5: congestion_control given twice (first at line 4)",
    };
    expect_errors("[listen]\naddress = 127.0.0.1:8443\ncongestion_control = no_such_algo\n"
                  "congestion_control = reno\ncongestion_control = cubic\n"
                  "[routes]\ndefault = a\n[upstream a]\nserver = 127.0.0.1:1\n",
                  expected, 2);
}

/* An algorithm this kernel has but only privileged processes may set. */
static bool find_restricted_algorithm(char *out, size_t size)
{
    char available[512] = "", allowed[512] = "";
    FILE *file = fopen("/proc/sys/net/ipv4/tcp_available_congestion_control", "r");
    if (file) {
        if (!fgets(available, sizeof available, file))
            available[0] = '\0';
        fclose(file);
    }
    file = fopen("/proc/sys/net/ipv4/tcp_allowed_congestion_control", "r");
    if (file) {
        if (!fgets(allowed, sizeof allowed, file))
            allowed[0] = '\0';
        fclose(file);
    }
    char *save = NULL;
    for (char *name = strtok_r(available, " \n", &save); name; name = strtok_r(NULL, " \n", &save)) {
        char padded_list[520], padded_name[40];
        snprintf(padded_list, sizeof padded_list, " %s ", allowed);
        padded_list[strcspn(padded_list, "\n")] = ' ';
        snprintf(padded_name, sizeof padded_name, " %s ", name);
        if (!strstr(padded_list, padded_name)) {
            snprintf(out, size, "%s", name);
            return true;
        }
    }
    return false;
}

Test(config, congestion_control_must_be_allowed_to_the_service_user)
{
    char restricted[32];
    if (geteuid() != 0 || !find_restricted_algorithm(restricted, sizeof restricted)) {
        cr_log_info("no algorithm here is restricted to root: only the allowed case is checked");
        config_free(load_ok("[global]\nuser = nobody\n[listen]\naddress = 127.0.0.1:8443\n"
                            "[routes]\ndefault = a\n[upstream a]\nserver = 127.0.0.1:1\n"
                            "congestion_control = reno\n"));
        return;
    }
    char text[512], message[256];
    snprintf(text, sizeof text,
             "[global]\nuser = nobody\n[listen]\naddress = 127.0.0.1:8443\n[routes]\ndefault = a\n"
             "[upstream a]\nserver = 127.0.0.1:1\ncongestion_control = %s\n", restricted);
    snprintf(message, sizeof message,
             "9: congestion_control: '%s' is not allowed for user 'nobody' (see net.ipv4.tcp_allowed_congestion_control)",
             restricted);
    const char *const expected[] = { message };
    expect_errors(text, expected, 1);
    /* The same for a listener's: a reload sets it as `user`. */
    snprintf(text, sizeof text,
             "[global]\nuser = nobody\n[listen]\naddress = 127.0.0.1:8443\ncongestion_control = %s\n"
             "[routes]\ndefault = a\n[upstream a]\nserver = 127.0.0.1:1\n", restricted);
    snprintf(message, sizeof message,
             "5: congestion_control: '%s' is not allowed for user 'nobody' (see net.ipv4.tcp_allowed_congestion_control)",
             restricted);
    expect_errors(text, expected, 1);
    /* Without `user`, root keeps the right to set it. */
    snprintf(text, sizeof text,
             "[listen]\naddress = 127.0.0.1:8443\n[routes]\ndefault = a\n"
             "[upstream a]\nserver = 127.0.0.1:1\ncongestion_control = %s\n", restricted);
    config_free(load_ok(text));
}

Test(config, not_tls_route_key)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:8443\n"
                                    "[routes]\nnot_tls = ssh\ndefault = web\n"
                                    "[upstream ssh]\nserver = 127.0.0.1:22\n"
                                    "[upstream web]\nserver = 127.0.0.1:8443\n");
    const struct route_table *table = config->snapshot->listeners[0].routes;
    cr_expect_str_eq(upstream_name(config, route_lookup_not_tls(table)), "ssh");
    cr_expect_str_eq(upstream_name(config, route_lookup(table, "", 0)), "web");
    config_free(config);

    const char *const expected[] = { "5: duplicate route 'not_tls'" };
    expect_errors("[listen]\naddress = 127.0.0.1:8443\n[routes]\nnot_tls = a\nnot_tls = a\n"
                  "[upstream a]\nserver = 127.0.0.1:1\n",
                  expected, 1);
}

Test(config, max_connections_per_client_keys)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:8443\n[routes]\ndefault = a\n"
                                    "[listen own]\naddress = 127.0.0.1:8444\nupstream = a\n"
                                    "max_connections_per_client = 5\n"
                                    "[listen exempt]\naddress = 127.0.0.1:8445\nupstream = a\n"
                                    "max_connections_per_client = off\n"
                                    "[upstream a]\nserver = 127.0.0.1:1\n"
                                    "[global]\nmax_connections_per_client = 20\n");
    const struct snapshot *snapshot = config->snapshot;
    cr_expect_eq(snapshot->listeners[0].max_connections_per_client, 20, "[global]'s, even when it comes last");
    cr_expect_eq(snapshot->listeners[1].max_connections_per_client, 5);
    cr_expect_eq(snapshot->listeners[2].max_connections_per_client, 0);
    config_free(config);

    config = load_ok("[listen]\naddress = 127.0.0.1:8443\n[routes]\ndefault = a\n"
                     "[upstream a]\nserver = 127.0.0.1:1\n");
    cr_expect_eq(config->snapshot->listeners[0].max_connections_per_client, 0, "no limit by default, as nginx");
    config_free(config);

    const char *const expected[] = {
        "2: max_connections_per_client: expected off or 1..10000000, got '0'",
        "4: max_connections_per_client: expected off or 1..10000000, got 'lots'",
    };
    expect_errors("[global]\nmax_connections_per_client = 0\n[listen]\nmax_connections_per_client = lots\n"
                  "address = 127.0.0.1:8443\n[routes]\ndefault = a\n[upstream a]\nserver = 127.0.0.1:1\n",
                  expected, 2);
}

Test(config, allow_and_deny_keys)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:8443\n"
                                    "allow = 10.0.0.0/8\ndeny = 10.1.0.0/16\nallow = ::1\ndeny = all\n"
                                    "[routes]\ndefault = a\n"
                                    "[listen ssh]\naddress = 127.0.0.1:2222\nupstream = a\n"
                                    "[upstream a]\nserver = 127.0.0.1:1\n");
    const struct snapshot_listener *listener = &config->snapshot->listeners[0];
    cr_assert_eq(listener->access_rule_count, 4);
    cr_expect(listener->access_rules[0].allow && listener->access_rules[0].range.prefix_length == 8);
    cr_expect(!listener->access_rules[1].allow && listener->access_rules[1].range.prefix_length == 16,
              "kept in file order");
    cr_expect(listener->access_rules[2].allow && listener->access_rules[2].range.family == AF_INET6);
    cr_expect(!listener->access_rules[3].allow && listener->access_rules[3].everyone);
    cr_expect_eq(config->snapshot->listeners[1].access_rule_count, 0, "rules belong to their listener");
    config_free(config);

    const char *const expected[] = {
        "3: allow: '10.0.0.0/33': prefix length must be 0..32",
        "4: deny: 'lan.example.com' is not an IPv4 or IPv6 address or CIDR block",
        "5: allow: 'unix:': snisplice listens on TCP only; unix: rules have nothing to judge",
        "10: unknown key 'deny' in [upstream a]",
    };
    expect_errors("[listen]\naddress = 127.0.0.1:8443\nallow = 10.0.0.0/33\ndeny = lan.example.com\n"
                  "allow = unix:\n[routes]\ndefault = a\n"
                  "[upstream a]\nserver = 127.0.0.1:1\ndeny = all\n",
                  expected, 4);
}

Test(config, proxy_protocol_keys)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:8443\n"
                                    "proxy_protocol_from = 10.0.0.0/8\nproxy_protocol_from = ::1\n"
                                    "[routes]\ndefault = a\n"
                                    "[upstream a]\nserver = 127.0.0.1:1\nproxy_protocol = v2\n"
                                    "[upstream b]\nserver = 127.0.0.1:2\nproxy_protocol = v1\n"
                                    "[upstream c]\nserver = 127.0.0.1:3\n");
    const struct snapshot *snapshot = config->snapshot;
    cr_expect_eq(snapshot->listeners[0].proxy_protocol_from_count, 2);
    cr_expect_eq(snapshot->listeners[0].proxy_protocol_from[0].prefix_length, 8);
    cr_expect_eq(snapshot->listeners[0].proxy_protocol_from[1].prefix_length, 128);
    cr_expect_eq(snapshot->upstreams[route(config, "x.example")].proxy_protocol, PROXY_PROTOCOL_V2);
    for (uint32_t i = 0; i < snapshot->upstream_count; i++) {
        if (strcmp(snapshot->upstreams[i].name, "b") == 0)
            cr_expect_eq(snapshot->upstreams[i].proxy_protocol, PROXY_PROTOCOL_V1);
        if (strcmp(snapshot->upstreams[i].name, "c") == 0)
            cr_expect_eq(snapshot->upstreams[i].proxy_protocol, PROXY_PROTOCOL_OFF, "off by default");
    }
    config_free(config);

    const char *const expected[] = {
        "3: proxy_protocol_from: '10.0.0.0/33': prefix length must be 0..32",
        "4: proxy_protocol_from: 'lb.example.com' is not an IPv4 or IPv6 address or CIDR block",
        "8: proxy_protocol: expected off, v1 or v2, got 'v3'",
    };
    expect_errors("[listen]\naddress = 127.0.0.1:8443\nproxy_protocol_from = 10.0.0.0/33\n"
                  "proxy_protocol_from = lb.example.com\n[routes]\ndefault = a\n"
                  "[upstream a]\nproxy_protocol = v3\nserver = 127.0.0.1:1\n",
                  expected, 3);
}

/* The upstream of snapshot named `name`. */
static const struct upstream *named_upstream(const struct snapshot *snapshot, const char *name)
{
    for (uint32_t i = 0; i < snapshot->upstream_count; i++)
        if (strcmp(snapshot->upstreams[i].name, name) == 0)
            return &snapshot->upstreams[i];
    cr_assert_fail("no upstream '%s'", name);
    return NULL;
}

static void expect_keepalive(const struct tcp_keepalive *keepalive, bool enabled, int idle, int interval,
                             int count, const char *what)
{
    cr_expect_eq(keepalive->enabled, enabled, "%s", what);
    cr_expect_eq(keepalive->idle, idle, "%s idle", what);
    cr_expect_eq(keepalive->interval, interval, "%s interval", what);
    cr_expect_eq(keepalive->count, count, "%s count", what);
}

Test(config, tcp_keepalive_keys)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:8443\ntcp_keepalive = 30m::10\n"
                                    "[listen on]\naddress = 127.0.0.1:8444\nupstream = a\ntcp_keepalive = on\n"
                                    "[listen empty]\naddress = 127.0.0.1:8445\nupstream = a\ntcp_keepalive = ::\n"
                                    "[listen off]\naddress = 127.0.0.1:8446\nupstream = a\ntcp_keepalive = off\n"
                                    "[listen default]\naddress = 127.0.0.1:8447\nupstream = a\n"
                                    "[routes]\ndefault = a\n"
                                    "[upstream a]\nserver = 127.0.0.1:1\ntcp_keepalive = 60:10:5\n"
                                    "[upstream b]\nserver = 127.0.0.1:2\ntcp_keepalive = on\n"
                                    "[upstream c]\nserver = 127.0.0.1:3\n");
    const struct snapshot *snapshot = config->snapshot;
    cr_assert_eq(snapshot->listener_count, 5);
    expect_keepalive(&snapshot->listeners[0].keepalive, true, 1800, 0, 10, "30m::10");
    expect_keepalive(&snapshot->listeners[1].keepalive, true, 0, 0, 0, "on: the system's timers");
    expect_keepalive(&snapshot->listeners[2].keepalive, true, 0, 0, 0, "::");
    expect_keepalive(&snapshot->listeners[3].keepalive, false, 0, 0, 0, "off");
    expect_keepalive(&snapshot->listeners[4].keepalive, false, 0, 0, 0, "off by default, as nginx");
    expect_keepalive(&named_upstream(snapshot, "a")->keepalive, true, 60, 10, 5, "upstream 60:10:5");
    expect_keepalive(&named_upstream(snapshot, "b")->keepalive, true, 0, 0, 0, "upstream on");
    expect_keepalive(&named_upstream(snapshot, "c")->keepalive, false, 0, 0, 0, "upstream default");
    config_free(config);

    const char *const expected[] = {
        "3: tcp_keepalive: IDLE '0' must be whole seconds from 1s to 32767s (e.g. 75s, 30m)",
        "4: tcp_keepalive: COUNT '200' must be a number from 1 to 127",
        "5: tcp_keepalive: expected off, on or IDLE:INTERVAL:COUNT (e.g. 30m::10), got 'abc'",
        "10: tcp_keepalive: expected off, on or IDLE:INTERVAL:COUNT (e.g. 30m::10), got '1:2'",
        "11: tcp_keepalive: INTERVAL '500ms' must be whole seconds from 1s to 32767s (e.g. 75s, 30m)",
        "12: tcp_keepalive: IDLE '32768' must be whole seconds from 1s to 32767s (e.g. 75s, 30m)",
    };
    expect_errors("[listen]\naddress = 127.0.0.1:8443\ntcp_keepalive = 0:1:1\n"
                  "tcp_keepalive = 1:1:200\ntcp_keepalive = abc\n[routes]\ndefault = a\n"
                  "[upstream a]\nserver = 127.0.0.1:1\ntcp_keepalive = 1:2\ntcp_keepalive = 1:500ms:1\n"
                  "tcp_keepalive = 32768::\n",
                  expected, 6);
}

static const struct upstream *upstream_named(const struct config *config, const char *name)
{
    for (uint32_t i = 0; i < config->snapshot->upstream_count; i++)
        if (strcmp(config->snapshot->upstreams[i].name, name) == 0)
            return &config->snapshot->upstreams[i];
    cr_assert_fail("no upstream %s", name);
    return NULL;
}

/* balance: round robin unless said otherwise; client_address gets its
 * ring of points (160 per unit of weight here), the others none. */
Test(config, balance_key)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:8443\n[routes]\na.example = rr\n"
                                    "b.example = least\nc.example = sticky\ndefault = plain\n"
                                    "[upstream rr]\nbalance = round_robin\nserver = 127.0.0.1:1\n"
                                    "[upstream least]\nbalance = least_connections\nserver = 127.0.0.1:2\n"
                                    "[upstream sticky]\nserver = 127.0.0.1:3 weight=2\nserver = 127.0.0.1:4\n"
                                    "server = 127.0.0.1:5 backup\nbalance = client_address\n"
                                    "[upstream plain]\nserver = 127.0.0.1:6\n");
    cr_expect_eq(upstream_named(config, "rr")->balance, UPSTREAM_BALANCE_ROUND_ROBIN);
    cr_expect_eq(upstream_named(config, "least")->balance, UPSTREAM_BALANCE_LEAST_CONNECTIONS);
    cr_expect_eq(upstream_named(config, "plain")->balance, UPSTREAM_BALANCE_ROUND_ROBIN, "the default");
    const struct upstream *sticky = upstream_named(config, "sticky");
    cr_expect_eq(sticky->balance, UPSTREAM_BALANCE_CLIENT_ADDRESS, "set after the servers, too");
    cr_expect_eq(sticky->hash_point_count, 3 * 160, "the primaries' points; backups get none");
    cr_expect_eq(upstream_named(config, "least")->hash_point_count, 0);
    config_free(config);

    const char *const expected[] = {
        "6: balance: expected round_robin, least_connections or client_address, got 'least_conn'"
    };
    expect_errors("[listen]\naddress = 127.0.0.1:8443\n[routes]\ndefault = a\n[upstream a]\nbalance = least_conn\n"
                  "server = 127.0.0.1:1\n",
                  expected, 1);
}

/* nginx sets preread_timeout, proxy_connect_timeout and proxy_timeout per
 * server block: a [listen] section may set its own, else it has
 * [global]'s, wherever [global] stands in the file. */
Test(config, listener_timeouts)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:8443\nidle_timeout = 1m\n"
                                    "[listen ssh]\naddress = 127.0.0.1:2222\nupstream = a\nidle_timeout = 2h\n"
                                    "connect_timeout = 3s\npreread_timeout = 700ms\n"
                                    "[listen plain]\naddress = 127.0.0.1:2223\nupstream = a\n"
                                    "[routes]\ndefault = a\n[upstream a]\nserver = 127.0.0.1:1\n"
                                    "[global]\nidle_timeout = 20m\nconnect_timeout = 4s\n");
    const struct snapshot *snapshot = config->snapshot;
    cr_assert_eq(snapshot->listener_count, 3);
    cr_expect_eq(snapshot->listeners[0].idle_timeout_ms, 60 * 1000);
    cr_expect_eq(snapshot->listeners[0].connect_timeout_ms, 4000, "[global]'s, set after it");
    cr_expect_eq(snapshot->listeners[0].preread_timeout_ms, 5000, "the default");
    cr_expect_eq(snapshot->listeners[1].idle_timeout_ms, 2 * 3600 * 1000);
    cr_expect_eq(snapshot->listeners[1].connect_timeout_ms, 3000);
    cr_expect_eq(snapshot->listeners[1].preread_timeout_ms, 700);
    cr_expect_eq(snapshot->listeners[2].idle_timeout_ms, 20 * 60 * 1000);
    config_free(config);

    const char *const expected[] = {
        "3: idle_timeout: bad duration '0' (e.g. 500ms, 5s, 10m; more than 0, at most 30d)"
    };
    expect_errors("[listen]\naddress = 127.0.0.1:8443\nidle_timeout = 0\n[routes]\ndefault = a\n"
                  "[upstream a]\nserver = 127.0.0.1:1\n",
                  expected, 1);
}

/* nginx's max_conns=N server parameter; 0 (or none) is no limit. */
Test(config, server_max_conns)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:8443\n[routes]\ndefault = a\n"
                                    "[upstream a]\nserver = 127.0.0.1:1 max_conns=100 weight=2\n"
                                    "server = 127.0.0.1:2 max_conns=0\nserver = 127.0.0.1:3\n");
    const struct upstream *upstream = upstream_named(config, "a");
    cr_expect_eq(upstream->servers[0].max_conns, 100);
    cr_expect_eq(upstream->servers[0].weight, 2);
    cr_expect_eq(upstream->servers[1].max_conns, 0);
    cr_expect_eq(upstream->servers[2].max_conns, 0);
    config_free(config);
}

static const char *source_text(const struct upstream_source *source, char *text, size_t size)
{
    if (source->kind == UPSTREAM_SOURCE_NONE)
        return "none";
    if (source->kind == UPSTREAM_SOURCE_CLIENT)
        return "client";
    address_format(&source->address, text, size);
    return text;
}

/* `source` (nginx's proxy_bind): [global]'s for every listener, a
 * listener's own replacing it as its timeouts do, wherever [global]
 * stands; none and client; an IPv6 address with or without brackets. */
Test(config, source_global_and_per_listener)
{
    struct config *config = load_ok("[listen]\naddress = 127.0.0.1:8443\n"
                                    "[listen a]\naddress = 127.0.0.1:2222\nupstream = a\nsource = 127.0.0.3\n"
                                    "[listen b]\naddress = 127.0.0.1:2223\nupstream = a\nsource = none\n"
                                    "[listen c]\naddress = 127.0.0.1:2224\nupstream = a\nsource = client\n"
                                    "[listen d]\naddress = 127.0.0.1:2225\nupstream = a\nsource = [2001:db8::1]\n"
                                    "[listen e]\naddress = 127.0.0.1:2226\nupstream = a\nsource = ::ffff:10.0.0.1\n"
                                    "[routes]\ndefault = a\n[upstream a]\nserver = 127.0.0.1:1\n"
                                    "[global]\nsource = 127.0.0.2\n");
    const struct snapshot *snapshot = config->snapshot;
    cr_assert_eq(snapshot->listener_count, 6);
    const char *const want[] = { "127.0.0.2:0", "127.0.0.3:0", "none", "client", "[2001:db8::1]:0", "10.0.0.1:0" };
    for (size_t i = 0; i < 6; i++) {
        char text[ADDRESS_TEXT_MAX];
        cr_expect_str_eq(source_text(&snapshot->listeners[i].source, text, sizeof text), want[i], "listener %zu", i);
    }
    cr_expect_eq(config->transparent_line, 14, "the line of the source = client in use");
    config_free(config);

    config = load_ok("[listen]\naddress = 127.0.0.1:8443\n[routes]\ndefault = 127.0.0.1:1\n");
    cr_expect_eq(config->snapshot->listeners[0].source.kind, UPSTREAM_SOURCE_NONE, "no source: no bind");
    cr_expect_eq(config->transparent_line, 0);
    config_free(config);

    /* [global]'s client, replaced on the only listener: nothing needs it. */
    config = load_ok("[global]\nsource = client\n[listen]\naddress = 127.0.0.1:8443\nsource = none\n"
                     "[routes]\ndefault = 127.0.0.1:1\n");
    cr_expect_eq(config->snapshot->listeners[0].source.kind, UPSTREAM_SOURCE_NONE);
    cr_expect_eq(config->transparent_line, 0);
    config_free(config);

    config = load_ok("[global]\nsource = client\n[listen]\naddress = 127.0.0.1:8443\n"
                     "[routes]\ndefault = 127.0.0.1:1\n");
    cr_expect_eq(config->snapshot->listeners[0].source.kind, UPSTREAM_SOURCE_CLIENT);
    cr_expect_eq(config->transparent_line, 2, "[global]'s line");
    config_free(config);
}

Test(config, source_errors)
{
    const char *const expected[] = {
        "2: source: '127.0.0.2:80' has a port; write the address alone (the kernel picks the port of each "
        "connection)",
        "5: source: '[::1]:80' has a port; write the address alone (the kernel picks the port of each connection)",
        "6: source: expected none, client, or an IPv4 or IPv6 address, got 'localhost'",
        "7: source: expected none, client, or an IPv4 or IPv6 address, got '10.0.0.0/8'",
    };
    expect_errors("[global]\nsource = 127.0.0.2:80\n[listen]\naddress = 127.0.0.1:8443\nsource = [::1]:80\n"
                  "source = localhost\nsource = 10.0.0.0/8\n[routes]\ndefault = 127.0.0.1:1\n",
                  expected, 4);
}

/* A file saved with a UTF-8 byte order mark (Windows editors) loads as
 * without it; a BOM anywhere but at the start is no BOM. */
Test(config, byte_order_mark_at_the_start_is_skipped)
{
    struct config *config = load_ok("\xEF\xBB\xBF[listen]\naddress = 127.0.0.1:8443\n"
                                     "[routes]\nmatrix.example.com = 127.0.0.1:12443\n");
    cr_expect_eq(config->listen_count, 1);
    cr_expect_geq(route(config, "matrix.example.com"), 0);
    config_free(config);
    struct config_errors errors;
    struct config *refused = config_load(write_config("[listen]\naddress = 127.0.0.1:8443\n"
                                                      "\xEF\xBB\xBF[routes]\nmatrix.example.com = 127.0.0.1:1\n"),
                                         &errors);
    cr_expect_null(refused, "a mark on line 3 is part of that line");
    cr_expect_gt(errors.count, 0);
    config_errors_free(&errors);
    unlink(path);
}

/* -t refuses a stats address that a listener binds too (start-up would
 * fail on it): the same address, or either one a wildcard on that port. */
Test(config, stats_address_may_not_be_a_listen_address)
{
    static const char *const same[] = { "2: stats: the listen address 127.0.0.1:9100 takes the same port" };
    expect_errors("[global]\nstats = 127.0.0.1:9100\n[listen]\naddress = 127.0.0.1:9100\n"
                  "[routes]\ndefault = 127.0.0.1:1\n", same, 1);
    static const char *const wildcard[] = { "2: stats: the listen address 0.0.0.0:9100 takes the same port" };
    expect_errors("[global]\nstats = 127.0.0.1:9100\n[listen]\naddress = 0.0.0.0:9100\n"
                  "[routes]\ndefault = 127.0.0.1:1\n", wildcard, 1);
    static const char *const v6[] = { "6: stats: the listen address [::1]:9100 takes the same port" };
    expect_errors("[listen]\naddress = [::1]:9100\n[routes]\ndefault = 127.0.0.1:1\n[global]\nstats = [::]:9100\n",
                  v6, 1);
    config_free(load_ok("[global]\nstats = 127.0.0.1:9100\n[listen]\naddress = 127.0.0.1:9101\n"
                        "address = [::]:9100\n[routes]\ndefault = 127.0.0.1:1\n"));
}

/* `stats = unix:/path` passed -t (the error text even offered it) and
 * served the first start, but the socket file outlived the process and
 * every restart then failed with "Address already in use". The endpoint
 * is TCP only, as the README documents it. */
Test(config, stats_address_is_tcp_only)
{
    static const char *const unix_path[] = {
        "2: stats: 'unix:/run/snisplice-stats.sock': snisplice listens on TCP only, expected IPv4:port or [IPv6]:port",
    };
    expect_errors("[global]\nstats = unix:/run/snisplice-stats.sock\n[listen]\naddress = 127.0.0.1:9101\n"
                  "[routes]\ndefault = 127.0.0.1:1\n", unix_path, 1);
}

/* An IPv4-mapped stats address, which served before listeners' mapped
 * addresses were refused, still loads: the endpoint binds it on a
 * dual-stack socket, where the kernel accepts it. Refusing it with the
 * listeners' reason broke a working config on upgrade. */
Test(config, stats_address_may_be_ipv4_mapped)
{
    struct config *config = load_ok("[global]\nstats = [::ffff:127.0.0.1]:9100\n[listen]\naddress = 127.0.0.1:9101\n"
                                    "[routes]\ndefault = 127.0.0.1:1\n");
    cr_expect(config->has_stats);
    cr_expect_eq(config->stats.storage.ss_family, AF_INET6);
    config_free(config);
}

/* A mapped stats address binds its IPv4 address: -t refuses it beside a
 * listener on that IPv4 address or 0.0.0.0 at its port, as start-up
 * would fail on it ("another program listens there") after -t passed. */
Test(config, ipv4_mapped_stats_address_may_not_be_a_listen_address)
{
    static const char *const same[] = { "2: stats: the listen address 127.0.0.1:9100 takes the same port" };
    expect_errors("[global]\nstats = [::ffff:127.0.0.1]:9100\n[listen]\naddress = 127.0.0.1:9100\n"
                  "[routes]\ndefault = 127.0.0.1:1\n", same, 1);
    static const char *const wildcard[] = { "2: stats: the listen address 0.0.0.0:9100 takes the same port" };
    expect_errors("[global]\nstats = [::ffff:127.0.0.1]:9100\n[listen]\naddress = 0.0.0.0:9100\n"
                  "[routes]\ndefault = 127.0.0.1:1\n", wildcard, 1);
    config_free(load_ok("[global]\nstats = [::ffff:127.0.0.1]:9100\n[listen]\naddress = [::]:9100\n"
                        "[routes]\ndefault = 127.0.0.1:1\n"));
}
