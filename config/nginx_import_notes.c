/*
 * nginx_import_notes.c - why the importer leaves a directive out, and
 * what snisplice does instead: one table for every path that reports an
 * nginx directive or parameter it does not convert (stream, server and
 * upstream blocks, the main context, listen and upstream server
 * parameters).
 *
 * Every left-out directive is still a warning: the reason only tells the
 * user whether to act. The few that are nginx's own tuning, with no
 * meaning for snisplice, say "not needed" instead of "not carried over".
 * A directive the table does not know keeps the bare "not carried over".
 *
 * Each reason is a claim about snisplice; README.md is where it is
 * documented (configuration reference, Connecting, Access log, Security),
 * io/listener.c for the listening sockets, io/relay.h for socket options.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nginx_import_model.h"

struct import_note {
    const char *name;     /* see the table below */
    bool internal;        /* nginx's own tuning, no meaning for snisplice: "not needed" */
    const char *reason;   /* what snisplice does instead */
};

/* Reasons several entries share. */
#define NGINX_HASH_SIZING "nginx's hash table sizing; snisplice sizes its tables itself"
#define BUFFER_AUTOTUNING "snisplice leaves socket buffer sizes to the kernel's autotuning, " \
                          "net.ipv4.tcp_rmem and tcp_wmem"
#define PIPES_NOT_BUFFERS "snisplice splices through kernel pipes of 64 KiB, grown to 1 MiB for bulk " \
                          "transfers; there is no buffer of this size"
#define NO_ACTIVE_CHECKS "snisplice has no active health checks; it judges servers by failed connects, " \
                         "with max_fails and fail_timeout"
#define SYSTEM_RESOLVER "snisplice resolves server names when it loads its configuration, with the system's " \
                        "resolver: /etc/hosts, then /etc/resolv.conf"
#define FREEBSD_ONLY "FreeBSD only; snisplice runs on Linux"
#define UDP_ONLY "UDP only; snisplice relays TCP"
#define FOREGROUND "snisplice runs in the foreground as one process; the systemd unit makes it a service"

/* name: a directive, or "listen:PARAMETER" / "server:PARAMETER" (an
 * upstream's server) for a parameter, written without its "=VALUE"; a
 * trailing '*' makes it a prefix, tried after every exact name. */
static const struct import_note notes[] = {
    /* main context */
    { "daemon", true, FOREGROUND },
    { "master_process", true, FOREGROUND },
    { "pid", false, "snisplice writes no pid file; systemd tracks its process, and logrotate signals it "
                    "with systemctl kill -s USR1 snisplice.service" },
    { "worker_rlimit_nofile", false, "snisplice raises its open-file limit to the hard limit when it starts; the "
                                     "shipped systemd unit sets LimitNOFILE=65536" },
    { "worker_cpu_affinity", false, "snisplice pins each worker thread to one of the CPUs it may run on; choose "
                                    "them with taskset or systemd's CPUAffinity=" },
    { "worker_shutdown_timeout", false, "snisplice's drain_timeout, 30s by default, bounds how long SIGTERM "
                                        "waits for open connections; a reload never closes them" },
    { "load_module", true, "nginx's dynamic modules; snisplice loads none" },
    { "pcre_jit", true, "snisplice translates map regular expressions for the C library's regcomp; there is "
                        "no JIT to enable" },

    /* ngx_stream_core_module */
    { "error_log", false, "snisplice logs to stderr, which systemd keeps in the journal; -v adds a line per "
                          "connection" },
    { "proxy_protocol_timeout", false, "snisplice reads a trusted PROXY header within preread_timeout, together "
                                       "with the hello" },
    { "resolver", false, SYSTEM_RESOLVER },
    { "resolver_timeout", false, "snisplice's look-ups, when it loads its configuration, wait as long as the "
                                 "system's resolver does: options timeout in /etc/resolv.conf" },
    { "server_name", false, "nginx chose among servers on one address by this name; snisplice has one listener "
                            "per address and routes by name through [routes]: write one map on "
                            "$ssl_preread_server_name instead" },
    { "server_names_hash_bucket_size", true, NGINX_HASH_SIZING },
    { "server_names_hash_max_size", true, NGINX_HASH_SIZING },
    { "tcp_nodelay", false, "snisplice always sets TCP_NODELAY, so relayed TLS records leave at once" },
    { "variables_hash_bucket_size", true, NGINX_HASH_SIZING },
    { "variables_hash_max_size", true, NGINX_HASH_SIZING },

    /* listen parameters (ngx_stream_core_module) */
    { "listen:accept_filter", true, FREEBSD_ONLY },
    { "listen:backlog", false, "snisplice listens with a backlog of 4096 on each worker's socket, which the "
                               "kernel caps at net.core.somaxconn" },
    { "listen:deferred", false, "snisplice defers accepting by 1 s with TCP_DEFER_ACCEPT on every listener "
                                "that routes by name, and never on a plain forward, where the server may speak "
                                "first" },
    { "listen:fastopen", false, "snisplice does not enable TCP Fast Open; clients make a full handshake" },
    { "listen:multipath", false, "snisplice listens with plain TCP; Multipath TCP clients fall back to it" },
    { "listen:rcvbuf", false, BUFFER_AUTOTUNING },
    { "listen:setfib", true, FREEBSD_ONLY },
    { "listen:sndbuf", false, BUFFER_AUTOTUNING },

    /* ngx_stream_proxy_module */
    { "proxy_buffer_size", true, PIPES_NOT_BUFFERS },
    { "proxy_downstream_buffer", true, PIPES_NOT_BUFFERS },
    { "proxy_upstream_buffer", true, PIPES_NOT_BUFFERS },
    { "proxy_download_rate", false, "snisplice does not limit transfer rates" },
    { "proxy_upload_rate", false, "snisplice does not limit transfer rates" },
    { "proxy_half_close", false, "snisplice always half-closes: a FIN is passed on and the other direction "
                                 "keeps flowing until it ends too, or idle_timeout" },
    { "proxy_next_upstream", false, "snisplice always tries the next server when a connect fails or times out" },
    { "proxy_next_upstream_timeout", false, "snisplice has no limit on all tries together; each try has "
                                            "connect_timeout" },
    { "proxy_next_upstream_tries", false, "snisplice tries every available server of the upstream once, "
                                          "primaries then backups, each within connect_timeout" },
    { "proxy_requests", true, UDP_ONLY },
    { "proxy_responses", true, UDP_ONLY },
    { "proxy_session_drop", false, "snisplice never closes open connections when a server is removed; they run "
                                   "until they end" },

    /* ngx_stream_upstream_module and the balancing, zone and health check modules. In an upstream
     * block least_conn, hash $remote_addr and random two become its balance line; these are for
     * the other keys and methods, and for a method outside an upstream block. */
    { "hash", false, "snisplice hashes only the client's address, as balance = client_address; connections "
                     "are shared out by weighted round robin instead, so a key no longer keeps its server" },
    { "least_conn", false, "a method of upstream blocks, where it becomes balance = least_connections" },
    { "least_time", false, "nginx Plus only; snisplice does not time servers and shares connections out by "
                           "weighted round robin; balance = least_connections comes closest" },
    { "random", false, "snisplice's weighted round robin shares connections out by weight, as random does "
                       "on average" },
    { "state", false, "snisplice's servers are the INI's server lines; a reload changes them" },
    { "zone", false, "nginx shares the group's state between its workers; each snisplice worker judges servers "
                     "by its own connections, so a dead server costs up to workers x max_fails attempts per "
                     "fail_timeout, balance = least_connections counts each worker's connections, and a "
                     "server's max_conns=N allows N per worker (nginx with a zone: N in all)" },
    { "health_check", false, NO_ACTIVE_CHECKS },
    { "health_check_timeout", false, NO_ACTIVE_CHECKS },
    { "match", false, NO_ACTIVE_CHECKS },

    /* an upstream's server parameters */
    { "server:resolve", false, "snisplice looks the name up when it loads its configuration; a reload looks it "
                               "up again" },
    { "server:service", false, "snisplice looks up addresses, not SRV records: write each server as NAME:PORT" },
    { "server:slow_start", false, "a server that answers again gets its full weight at once" },

    /* the other stream modules */
    { "geo", false, "snisplice does not route by client address; allow and deny choose who may connect" },
    { "log_format", false, "snisplice's access log has its own fixed line format; see README, Access log" },
    { "map_hash_bucket_size", true, NGINX_HASH_SIZING },
    { "map_hash_max_size", true, NGINX_HASH_SIZING },
    { "open_log_file_cache", true, "snisplice keeps its one access log open; SIGUSR1 reopens it" },
    { "pass", false, "snisplice forwards only to upstream servers, not to another listener: route to the "
                     "service behind that listener" },
    { "return", false, "snisplice only forwards connections; it cannot answer one with a value of its own" },
    { "set", false, "snisplice has no variables; routes come from maps on $ssl_preread_server_name, "
                    "$ssl_preread_alpn_protocols and $ssl_preread_protocol" },
    { "split_clients", false, "snisplice does not split clients by a hash; weight= on an upstream's servers "
                              "shares connections out instead" },

    /* whole modules, by prefix */
    { "geoip*", false, "snisplice has no GeoIP database; allow and deny take addresses and CIDR ranges" },
    { "js_*", false, "snisplice runs no njs scripts; what they decided must be written as routes, allow/deny "
                     "or upstreams" },
    { "proxy_ssl*", false, "snisplice never opens TLS to an upstream: it forwards the client's bytes unchanged" },
    { "ssl_*", false, "nginx terminated TLS here; snisplice only passes TLS through, so certificates and TLS "
                      "settings belong on the upstream servers" },
};

#define NOTE_COUNT (sizeof notes / sizeof notes[0])

/* `key` names the entry: equal to it or, for a parameter, followed by
 * "=VALUE" (backlog=511 and backlog=1024 share one reason). */
static bool names(const char *entry, const char *key)
{
    size_t length = strlen(entry);
    if (strncmp(entry, key, length) != 0)
        return false;
    return key[length] == '\0' || (key[length] == '=' && strchr(entry, ':') != NULL);
}

static bool prefixes(const char *entry, const char *key)
{
    size_t length = strlen(entry);
    return length > 0 && entry[length - 1] == '*' && strncmp(entry, key, length - 1) == 0;
}

/* The note for `key`: a directive's name, or "listen:PARAMETER" /
 * "server:PARAMETER" (an upstream's server), with or without "=VALUE";
 * NULL when the table does not know it. */
static const struct import_note *import_note_for(const char *key)
{
    for (size_t i = 0; i < NOTE_COUNT; i++)
        if (names(notes[i].name, key))
            return &notes[i];
    for (size_t i = 0; i < NOTE_COUNT; i++)
        if (prefixes(notes[i].name, key))
            return &notes[i];
    return NULL;
}

void import_warn_left_out(struct importer *importer, const struct nginx_directive *at, const char *key,
                          const char *format, ...)
{
    char what[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(what, sizeof what, format, args);
    va_end(args);
    const struct import_note *note = import_note_for(key);
    if (!note)
        import_warn(importer, at, "%s not carried over", what);
    else
        import_warn(importer, at, "%s %s (%s)", what, note->internal ? "not needed" : "not carried over",
                    note->reason);
}

void import_warn_directive_left_out(struct importer *importer, const struct nginx_directive *item)
{
    import_warn_left_out(importer, item, item->name, "%s:", item->name);
}
