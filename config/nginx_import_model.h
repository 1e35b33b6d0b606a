/*
 * nginx_import_model.h - what the nginx importer collects, and the few
 * helpers its files share (nginx_import.c, nginx_import_access.c,
 * nginx_import_protocol.c, nginx_import_notes.c).
 *
 * Private to the importer: nothing outside config/nginx_import*.c includes
 * it. The rest of snisplice sees only nginx_import.h, so the model can
 * change with nginx's directives without touching anyone else.
 */
#ifndef SNISPLICE_CONFIG_NGINX_IMPORT_MODEL_H
#define SNISPLICE_CONFIG_NGINX_IMPORT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/address.h"
#include "name_index.h"
#include "nginx_import.h"
#include "tcp_keepalive.h"

#define NAME_MAX_LENGTH 64

/* ---- growing text ---- */

struct text {
    char *data;
    size_t length;
    size_t capacity;
    bool failed;
};

/* ---- the collected model ---- */

/* What the servers that reach an upstream or use a map (directly or
 * through another map) need of it: `with_*` that some of them have
 * proxy_protocol or proxy_socket_keepalive on, `without_*` that some have
 * it off. */
struct import_reach {
    bool with_proxy_protocol, without_proxy_protocol;
    bool with_keepalive, without_keepalive;
};

struct import_upstream {
    const struct nginx_directive *directive;
    const char *name;     /* as nginx spells it; in the INI: ini_name */
    char *folded;         /* named only: the name in lower case, upstream_names' key (owned) */
    char ini_name[NAME_MAX_LENGTH]; /* letters, digits, '_', '-'; unique */
    struct import_reach reach; /* of the servers that reach it */
    bool literal;         /* made up for a literal address (name is owned) */
    char *address;        /* literal only: the converted address */
    const struct nginx_directive *reached_at; /* literal only: the first proxy_pass that needs its section */
    bool static_target;   /* a proxy_pass without variables names it: nginx resolved it at load */
    bool host_name_said;  /* literal only: a map value names a host; when it is looked up was said */
};

struct import_map {
    const struct nginx_directive *directive;
    char *variable;       /* its name, without '$' or braces; owned */
    bool server_name;     /* source is $ssl_preread_server_name */
    bool alpn;            /* source is $ssl_preread_alpn_protocols: entries become alpn routes */
    bool protocol;        /* source is $ssl_preread_protocol: TLS clients and the rest (not_tls) */
    char *port_host;      /* used as proxy_pass HOST:$variable: values are ports on HOST */
    char *port_added;     /* used as proxy_pass $variable:PORT: values are hosts, PORT added */
    struct import_map *next; /* the map whose entries follow in this one's table, its default the
                                table's: an ALPN map's "default $x", $x a server-name map; a
                                server-name map's "default $x", $x an ALPN map; a protocol map's
                                TLS target */
    /* A protocol map's two routes, found once by import_protocol_resolve_map;
     * NULL when that route is not written (see there). */
    const struct nginx_directive *not_tls; /* the entry clients that do not speak TLS take */
    const struct nginx_directive *tls;     /* the entry TLS clients take: the table's default */
    bool used;
    bool chained;         /* another used map's continuation: written inside that map's table */
    struct import_reach reach; /* of the servers that use it */
    char table[NAME_MAX_LENGTH];
};

/* The map is used with text around its value (HOST:$map, $map:PORT): its
 * values are no whole targets, so it continues no other map's table. */
static inline bool import_map_has_affix(const struct import_map *map)
{
    return map->port_host || map->port_added;
}

struct import_listen {
    const struct nginx_directive *directive;
    char address[ADDRESS_TEXT_MAX];
    bool proxy_protocol;
    char keepalive[3 * TCP_KEEPALIVE_PART_MAX]; /* so_keepalive= as the INI's tcp_keepalive; "off" when not given */
};

/* The allow/deny rules of one level, the stream block or a server, in file
 * order. `own` stays true when every rule was left out: nginx gives a level
 * with any rule of its own only those (its merge replaces the stream
 * block's rules, it does not append to them). */
struct import_access {
    const struct nginx_directive **rules; /* allow or deny with a value the INI takes */
    size_t rule_count;
    bool own;
};

/* A limit_conn_zone. Only a zone keyed by the client's address becomes
 * max_connections_per_client. `servers` and `limiting` count the converted
 * servers that nginx counted in it, and those whose listener gets a limit:
 * they tell whether nginx's per-zone counting and snisplice's single count
 * differ (import_access_warn_counting_scope). */
struct import_zone {
    const struct nginx_directive *directive;
    const char *name;     /* in the zone= argument; not terminated there */
    size_t name_length;
    bool per_address;     /* keyed by $binary_remote_addr or $remote_addr */
    size_t servers;       /* dry-run ones too: nginx counted their connections */
    size_t limiting;
};

/* The limit_conn lines of one level, the stream block or a server. As
 * with allow/deny, `own` is true when there is any line at all: nginx's
 * merge gives a server the stream block's only when it has none. */
struct import_limits {
    const struct nginx_directive **lines; /* after import_access_check_limits: per-address, one per zone */
    size_t line_count;
    bool own;
    uint32_t smallest;    /* the binding limit among `lines`; 0: none */
    const struct nginx_directive *dry_run; /* this level's limit_conn_dry_run; NULL: not set */
    bool dry_run_on;
    bool dry_run_said;    /* its warning is given once, however many servers it covers */
};

/* One level's value of a setting, converted, and the directive that gave
 * it (the first, when nginx's refusal of a second is only a warning here). */
struct import_value {
    char text[32];        /* "" when not given */
    uint64_t ms;          /* a time's value in milliseconds, as written */
    const struct nginx_directive *at;
};

/* A setting nginx has per server, with the stream block's for servers
 * that give none. The timeouts become a listener's own key where a
 * server's differs from what its listener has anyway; preread_max is one
 * [global] value in snisplice, whichever level gave it. */
struct import_setting {
    const char *nginx_name;
    const char *ini_name;
    bool size;            /* a size (preread_buffer_size), one [global] value; else a timeout, which a
                             [listen] section may set for itself */
    uint64_t default_ms;  /* a timeout: snisplice's default, for a listener that nothing sets it for */
    const char *nginx_default; /* a timeout: nginx's default, as nginx's documentation writes it */
    bool preread_only;    /* matters only where nginx prereads (a server with ssl_preread) */
    struct import_value global; /* [global]'s: the stream block's; preread_max: the first anywhere */
};

#define IMPORT_SETTING_COUNT 4

/* One level's proxy_bind, the stream block's or a server's: `at` when the
 * level has one (nginx then ignores the stream block's for that server,
 * even when the INI cannot take it), `source` the INI's value when it
 * can ("none", "client" or an address). */
struct import_bind {
    const struct nginx_directive *at;
    char source[ADDRESS_TEXT_MAX];  /* "" when left out */
};

struct import_server {
    const struct nginx_directive *directive;
    struct import_listen *listens;
    size_t listen_count;
    const struct nginx_directive *proxy_pass;
    struct import_map *map;       /* proxy_pass $variable */
    struct import_upstream *upstream; /* proxy_pass to an upstream or address */
    bool ssl_preread;
    bool ssl_preread_set;         /* else inherited from the stream level */
    bool proxy_protocol;
    bool proxy_protocol_set;
    bool socket_keepalive;        /* proxy_socket_keepalive */
    bool socket_keepalive_set;    /* else inherited from the stream level */
    char **trusted;               /* set_real_ip_from of this server */
    size_t trusted_count;
    struct import_access access;  /* allow/deny of this server */
    struct import_limits limits;  /* limit_conn of this server */
    uint32_t client_limit;        /* max_connections_per_client to write; 0: none */
    struct import_value own[IMPORT_SETTING_COUNT]; /* the timeouts given in this server; by importer->settings index */
    struct import_bind bind;      /* proxy_bind of this server */
    char name[NAME_MAX_LENGTH];
    /* Its listens disagree on proxy_protocol: those with it become a
     * listener of their own, named so (nginx sets it per listen, snisplice
     * proxy_protocol_from per listener). "" when they agree. */
    char proxy_protocol_name[NAME_MAX_LENGTH];
};

struct importer {
    struct nginx_import *out;
    const char *source;
    const char *user;
    const char *workers;
    const struct nginx_directive *access_log; /* the first access_log PATH, stream or server level */
    const struct nginx_directive *access_log_off; /* the first access_log off */
    struct import_map *maps;
    size_t map_count;
    struct import_upstream **upstreams; /* each allocated alone: servers and maps point at them */
    size_t upstream_count;
    struct name_index upstream_names;   /* named upstreams, in lower case -> index in upstreams */
    struct name_index literal_addresses; /* converted address -> index in upstreams */
    struct import_server *servers;
    size_t server_count;
    char **stream_trusted;        /* stream-level set_real_ip_from */
    size_t stream_trusted_count;
    struct import_access stream_access; /* stream-level allow/deny */
    struct import_zone *zones;    /* limit_conn_zone, in file order */
    size_t zone_count;
    struct import_limits stream_limits; /* stream-level limit_conn */
    size_t limited_servers;       /* servers whose listener gets max_connections_per_client */
    bool stream_ssl_preread;      /* stream-level values servers inherit */
    bool stream_proxy_protocol;
    bool stream_socket_keepalive;
    struct import_setting settings[IMPORT_SETTING_COUNT];
    struct import_bind stream_bind; /* stream-level proxy_bind: [global]'s source */
    bool quiet;                   /* import_warn says nothing: a pass the next one repeats aloud */
    bool failed;
};

/* ---- shared helpers (defined in nginx_import.c) ---- */

/* Appends to `text`; on failure sets text->failed and appends nothing more. */
void import_text_printf(struct text *text, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* "FILE:LINE: warning: ..." for `at`, added to the result's warnings;
 * nothing while importer->quiet. */
void import_warn(struct importer *importer, const struct nginx_directive *at, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Room for element `count`; capacity doubles and is implied by the count. */
void *import_grow(struct importer *importer, void *array, size_t count, size_t size);

/* An on/off directive's value; anything else is said, and taken as off. */
bool import_is_on(struct importer *importer, const struct nginx_directive *directive);

/* nginx's $remote_addr or $binary_remote_addr (braced or not): the
 * client's address, which limit_conn zones count and balance =
 * client_address hashes. Behind set_real_ip_from both are the address the
 * PROXY header names, as snisplice's proxy_protocol_from makes it. */
bool import_is_client_address_key(const char *key);

/* A map key nginx takes as a wildcard under `hostnames`. */
bool import_is_wildcard(const char *key);

/* A word that is one whole variable, `$name` or `${name}` (nginx reads
 * both alike): its name and length. False for anything else. */
bool import_variable_name(const char *word, const char **name, size_t *length);

/* Whether `word` is the variable `name`, braced or not. */
bool import_variable_is(const char *word, const char *name);

/* Whether a line of a map block is a 'key value;' entry. The flags nginx
 * takes only alone on their line are not: `hostnames` sets *hostnames
 * (it applies to the entries after it), `volatile` changes nothing here.
 * A malformed line is not either, and is said. */
bool import_map_entry(struct importer *importer, const struct nginx_directive *entry, bool *hostnames);

/* The map that sets the variable `reference` ("$x" or "${x}") names. */
struct import_map *import_find_map(struct importer *importer, const char *reference);

/* `next` continues `map`'s table (nginx's `default $next;`). */
void import_chain_to(struct import_map *map, struct import_map *next);

/* ---- nginx_import_access.c: allow / deny, limit_conn ---- */

/* allow or deny, kept for its level; false: not one of them. */
bool import_access_collect(struct importer *importer, struct import_access *access,
                           const struct nginx_directive *item);
/* limit_conn_zone (stream level only, as in nginx). */
void import_access_collect_zone(struct importer *importer, const struct nginx_directive *directive);
/* limit_conn, limit_conn_dry_run, limit_conn_log_level; false: not one of them. */
bool import_access_collect_limit(struct importer *importer, struct import_limits *limits,
                                 const struct nginx_directive *item);
/* Once a level is complete: what the INI takes, and why the rest is left out. */
void import_access_check(struct importer *importer, struct import_access *access);
/* Once every zone is known. */
void import_access_check_limits(struct importer *importer, struct import_limits *limits);
/* A resolved server's max_connections_per_client, as nginx merged its levels. */
void import_access_resolve_client_limit(struct importer *importer, struct import_server *server);
/* After every server is resolved. */
void import_access_warn_counting_scope(struct importer *importer);
/* The listener's allow / deny and max_connections_per_client lines, after
 * its proxy_protocol_from lines; `proxy_protocol_from_anyone`: those take
 * every client's PROXY header (nginx had no set_real_ip_from). */
void import_access_write(struct importer *importer, struct text *ini, const struct import_server *server,
                         bool proxy_protocol_from_anyone);

/* ---- nginx_import_protocol.c: maps on $ssl_preread_protocol ---- */

/* A used protocol map's not_tls and tls entries (or a chained table). */
void import_protocol_resolve_map(struct importer *importer, struct import_map *map);

/* ---- nginx_import_notes.c: why a directive is left out ---- */

/* "WHAT not carried over (REASON)", "WHAT not needed (REASON)", or, for a
 * key the table does not know, "WHAT not carried over"; WHAT is `format`. */
void import_warn_left_out(struct importer *importer, const struct nginx_directive *at, const char *key,
                          const char *format, ...) __attribute__((format(printf, 4, 5)));

/* The same for a whole directive: "NAME: not carried over (REASON)". */
void import_warn_directive_left_out(struct importer *importer, const struct nginx_directive *item);

#endif
