/*
 * nginx_import.c - nginx stream configuration to snisplice INI (see
 * nginx_import.h).
 *
 * Two passes: first collect every stream block's maps, upstreams, servers,
 * allow/deny rules, limit_conn zones and limits, and timeouts (several
 * stream blocks and included files merge, as in nginx); then decide names
 * and write the INI. Every directive is either converted or reported: the
 * `warn` calls are the list of what snisplice does not do.
 *
 * Naming: a single routed server becomes `[listen]` with `[routes]`, as a
 * hand-written config would; with several servers each becomes
 * `[listen portN]`, and each map `$x` becomes `[routes x]`.
 *
 * Maps: a map on $ssl_preread_server_name gives its entries as they are; a
 * map on $ssl_preread_alpn_protocols gives `alpn PROTOCOL` routes; a map on
 * $ssl_preread_protocol is evaluated for "" and each TLS version and gives
 * `not_tls` and `default` (snisplice tells only those two kinds of client
 * apart). A protocol map's TLS target, or an ALPN map's default, that
 * names another such map continues the same table with that map's entries,
 * as nginx's `default $name;` chains them.
 *
 * Limits: limit_conn on a zone keyed by $binary_remote_addr or
 * $remote_addr becomes max_connections_per_client of the server's
 * listener, the smallest when it names several such zones. nginx counts
 * each zone apart and snisplice one count over every limited listener:
 * where that changes what is refused, one warning says so. Other keys,
 * and limits under limit_conn_dry_run on, are warnings.
 */
#include "nginx_import.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/address.h"
#include "../core/hostname.h"
#include "../core/route_regex.h"
#include "../core/upstream.h"
#include "name_index.h"

#define NAME_MAX_LENGTH 64

/* ---- growing text ---- */

struct text {
    char *data;
    size_t length;
    size_t capacity;
    bool failed;
};

static void text_printf(struct text *text, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void text_printf(struct text *text, const char *format, ...)
{
    if (text->failed)
        return;
    for (;;) {
        va_list args;
        va_start(args, format);
        size_t room = text->capacity - text->length;
        int needed = vsnprintf(text->data ? text->data + text->length : NULL, room, format, args);
        va_end(args);
        if (needed < 0) {
            text->failed = true;
            return;
        }
        if ((size_t)needed < room) {
            text->length += (size_t)needed;
            return;
        }
        size_t capacity = (text->capacity + (size_t)needed + 1) * 2;
        char *grown = realloc(text->data, capacity);
        if (!grown) {
            text->failed = true;
            return;
        }
        text->data = grown;
        text->capacity = capacity;
    }
}

/* ---- the collected model ---- */

struct import_upstream {
    const struct nginx_directive *directive;
    const char *name;     /* as nginx spells it; in the INI: ini_name */
    char ini_name[NAME_MAX_LENGTH]; /* letters, digits, '_', '-'; unique */
    bool proxy_protocol;  /* reached from a server with proxy_protocol on */
    bool plain;           /* reached from a server without it */
    bool literal;         /* made up for a literal address (name is owned) */
    char *address;        /* literal only: the converted address */
};

struct import_map {
    const struct nginx_directive *directive;
    const char *variable; /* without '$' */
    bool server_name;     /* source is $ssl_preread_server_name */
    bool alpn;            /* source is $ssl_preread_alpn_protocols: entries become alpn routes */
    bool protocol;        /* source is $ssl_preread_protocol: TLS clients and the rest (not_tls) */
    char *port_host;      /* used as proxy_pass HOST:$variable: values are ports on HOST */
    struct import_map *names; /* the map whose entries follow in this one's table: an ALPN map's
                                 "default $x", $x a server-name map; a protocol map's TLS target */
    /* A protocol map's two routes, found once by resolve_protocol_map;
     * NULL when that route is not written (see there). */
    const struct nginx_directive *not_tls; /* the entry clients that do not speak TLS take */
    const struct nginx_directive *tls;     /* the entry TLS clients take: the table's default */
    bool used;
    bool chained;         /* another used map's continuation: written inside that map's table */
    bool proxy_protocol;  /* used by a server with proxy_protocol on */
    bool plain;           /* used by a server without it */
    char table[NAME_MAX_LENGTH];
};

struct import_listen {
    char address[ADDRESS_TEXT_MAX];
    bool proxy_protocol;
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
 * differ (warn_counting_scope). */
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
    const struct nginx_directive **lines; /* after check_limits: per-address, one per zone */
    size_t line_count;
    bool own;
    uint32_t smallest;    /* the binding limit among `lines`; 0: none */
    const struct nginx_directive *dry_run; /* this level's limit_conn_dry_run; NULL: not set */
    bool dry_run_on;
    bool dry_run_said;    /* its warning is given once, however many servers it covers */
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
    char **trusted;               /* set_real_ip_from of this server */
    size_t trusted_count;
    struct import_access access;  /* allow/deny of this server */
    struct import_limits limits;  /* limit_conn of this server */
    uint32_t client_limit;        /* max_connections_per_client to write; 0: none */
    char name[NAME_MAX_LENGTH];
};

struct import_timeout {
    const char *nginx_name;
    const char *ini_name;
    char value[32];       /* converted, "" when never set */
    const char *file;
    int line;
};

struct importer {
    struct nginx_import *out;
    const char *source;
    const char *user;
    const char *workers;
    const struct nginx_directive *access_log; /* the first access_log PATH, stream or server level */
    struct import_map *maps;
    size_t map_count;
    struct import_upstream **upstreams; /* each allocated alone: servers and maps point at them */
    size_t upstream_count;
    struct name_index upstream_names;   /* named upstreams -> index in upstreams */
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
    struct import_timeout timeouts[3];
    bool failed;
};

static void warn(struct importer *importer, const struct nginx_directive *at, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void warn(struct importer *importer, const struct nginx_directive *at, const char *format, ...)
{
    struct text line = {0};
    text_printf(&line, "%s:%d: warning: ", at->file, at->line);
    va_list args;
    va_start(args, format);
    char message[1024];
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    text_printf(&line, "%s", message);
    struct nginx_import *out = importer->out;
    char **warnings = line.failed ? NULL : realloc(out->warnings, (out->warning_count + 1) * sizeof *warnings);
    if (!warnings) {
        free(line.data);
        importer->failed = true;
        return;
    }
    out->warnings = warnings;
    out->warnings[out->warning_count++] = line.data;
}

/* Room for element `count`; capacity doubles and is implied by the count. */
static void *grow(struct importer *importer, void *array, size_t count, size_t size)
{
    bool full = count == 0 || (count >= 4 && (count & (count - 1)) == 0);
    void *grown = full ? realloc(array, (count < 4 ? 4 : count * 2) * size) : array;
    if (!grown) {
        importer->failed = true;
        return NULL;
    }
    memset((char *)grown + count * size, 0, size);
    return grown;
}

static bool add_string(struct importer *importer, char ***list, size_t *count, const char *value)
{
    char **grown = grow(importer, *list, *count, sizeof **list);
    if (!grown)
        return false;
    *list = grown;
    grown[*count] = strdup(value);
    if (!grown[*count]) {
        importer->failed = true;
        return false;
    }
    (*count)++;
    return true;
}

/* ---- value forms ---- */

/* nginx time ("500ms", "5s", "10m", "1h", "2d", "1w", bare = seconds) to
 * the INI's form. False if it is not one number with one unit. */
static bool convert_duration(const char *nginx, char *out, size_t out_size)
{
    char *end = NULL;
    unsigned long long number = strtoull(nginx, &end, 10);
    if (end == nginx || nginx[0] == '-' || number > 1000000000ULL)
        return false;
    unsigned long long seconds;
    if (strcmp(end, "ms") == 0) {
        snprintf(out, out_size, "%llums", number);
        return number > 0;
    }
    if (*end == '\0' || strcmp(end, "s") == 0) seconds = number;
    else if (strcmp(end, "m") == 0) seconds = number * 60;
    else if (strcmp(end, "h") == 0) seconds = number * 3600;
    else if (strcmp(end, "d") == 0) seconds = number * 86400;
    else if (strcmp(end, "w") == 0) seconds = number * 7 * 86400;
    else return false;
    if (seconds == 0)
        return false;
    if (seconds % 3600 == 0) snprintf(out, out_size, "%lluh", seconds / 3600);
    else if (seconds % 60 == 0) snprintf(out, out_size, "%llum", seconds / 60);
    else snprintf(out, out_size, "%llus", seconds);
    return true;
}

/* True when an nginx address names no port: "10.0.0.1", "[::1]",
 * "localhost" (unix: paths have none to name). */
static bool lacks_port(const char *nginx)
{
    if (strncmp(nginx, "unix:", 5) == 0)
        return false;
    if (nginx[0] == '[') {
        const char *close = strchr(nginx, ']');
        return !close || close[1] != ':';
    }
    return strchr(nginx, ':') == NULL;
}

/* nginx address forms to the INI's: "443" and "*:443" mean every IPv4
 * address; a listen without a port is on 80; "localhost" is the IPv4
 * loopback. Other host names are kept as "name:port" for servers and
 * targets (snisplice resolves them when it loads the INI, as nginx does
 * for upstream servers) and refused for listen. A server or proxy_pass
 * address without a port is refused as nginx's stream module refuses it
 * ("no port in upstream"; for a map's value, at run time). */
static bool convert_address(const char *nginx, bool port_only_allowed, char *out, size_t out_size,
                            char *why, size_t why_size)
{
    char work[ADDRESS_TEXT_MAX + 16];
    if (strlen(nginx) >= ADDRESS_TEXT_MAX) {
        snprintf(why, why_size, "address too long");
        return false;
    }
    if (!port_only_allowed && lacks_port(nginx)) {
        snprintf(why, why_size, "no port (nginx's stream module refuses an upstream address without one)");
        return false;
    }
    if (strncmp(nginx, "unix:", 5) == 0) {
        snprintf(work, sizeof work, "%s", nginx);
    } else if (port_only_allowed && strspn(nginx, "0123456789") == strlen(nginx)) {
        snprintf(work, sizeof work, "0.0.0.0:%s", nginx);
    } else if (strncmp(nginx, "*:", 2) == 0) {
        snprintf(work, sizeof work, "0.0.0.0:%s", nginx + 2);
    } else if (strncmp(nginx, "localhost", 9) == 0 && (nginx[9] == ':' || nginx[9] == '\0')) {
        snprintf(work, sizeof work, "127.0.0.1%s", nginx[9] ? nginx + 9 : ":80");
    } else if (nginx[0] == '[') {
        const char *close = strchr(nginx, ']');
        snprintf(work, sizeof work, close && close[1] == '\0' ? "%s:80" : "%s", nginx);
    } else {
        snprintf(work, sizeof work, strchr(nginx, ':') ? "%s" : "%s:80", nginx);
    }
    struct address address;
    char error[128];
    if (address_parse(work, &address, error, sizeof error)) {
        address_format(&address, out, out_size);
        return true;
    }
    char host[HOSTNAME_MAX + 1];
    uint16_t port;
    if (!port_only_allowed && address_split_host_name(work, host, sizeof host, &port)) {
        int written = snprintf(out, out_size, "%.*s:%u", (int)(ADDRESS_TEXT_MAX - 7), host, port);
        if (written > 0 && (size_t)written < out_size)
            return true;
        snprintf(why, why_size, "address too long");
        return false;
    }
    snprintf(why, why_size, "%s", error);
    return false;
}

/* A map's regular expression as an INI [routes] key. "(?:" becomes "("
 * (the same for matching; the INI would end the key at its ':'), and the
 * result must be one snisplice compiles (route_regex.c). */
static bool convert_regex(const char *nginx, char *out, size_t out_size, char *why, size_t why_size)
{
    size_t length = 0;
    for (const char *in = nginx; *in; in++) {
        if (length + 2 > out_size) {
            snprintf(why, why_size, "expression too long");
            return false;
        }
        out[length++] = *in;
        if (strncmp(in, "(?:", 3) == 0)
            in += 2;
    }
    out[length] = '\0';
    if (strpbrk(out, "=:")) {
        snprintf(why, why_size, "an INI key cannot hold '=' or ':' (write (?:...) as (...))");
        return false;
    }
    struct route_regex regex;
    char error[160];
    if (!route_regex_compile(&regex, out, 0, error, sizeof error)) {
        snprintf(why, why_size, "regular expression not carried over: %s", error);
        return false;
    }
    route_regex_free(&regex);
    return true;
}

/* A key of a map on $ssl_preread_alpn_protocols (the client's protocols,
 * comma-joined) as "alpn PROTOCOL": the regular expressions nginx recipes
 * use for one protocol (~\bacme-tls/1\b, ~^acme-tls/1$, ~acme-tls/1), or a
 * plain key (*exact: nginx compared the whole list with it). */
static bool convert_alpn_key(const char *key, char *out, size_t out_size, bool *exact, char *why,
                             size_t why_size)
{
    const char *in = key;
    *exact = key[0] != '~';
    if (!*exact) {
        in += key[1] == '*' ? 2 : 1;
        if (strncmp(in, "\\b", 2) == 0 || in[0] == '^')
            in += in[0] == '^' ? 1 : 2;
    }
    size_t length = (size_t)snprintf(out, out_size, "alpn ");
    for (; *in; in++) {
        if (!*exact && (strcmp(in, "\\b") == 0 || strcmp(in, "$") == 0))
            break;
        char c = *in;
        bool escaped = !*exact && c == '\\' && in[1] && strchr("./-", in[1]);
        if (escaped)
            c = *++in;
        bool protocol_byte = *exact ? c > ' ' && c <= '~' && c != ',' :
                                      escaped || isalnum((unsigned char)c) || strchr("-_./", c);
        if (!protocol_byte || length + 2 > out_size) {
            snprintf(why, why_size, "not one ALPN protocol (snisplice routes on one offered protocol)");
            return false;
        }
        out[length++] = c;
    }
    out[length] = '\0';
    if (length == 5) {
        snprintf(why, why_size, "no protocol in it");
        return false;
    }
    return true;
}

/* A map key nginx takes as a wildcard under `hostnames`: "*.example.com",
 * ".example.org", "www.example.*". */
static bool is_wildcard(const char *key)
{
    size_t length = strlen(key);
    return key[0] == '.' || strncmp(key, "*.", 2) == 0 || (length > 2 && strcmp(key + length - 2, ".*") == 0);
}

/* INI names: letters, digits, '_' and '-'; anything else becomes '_'. */
static void sanitize_name(const char *in, char *out, size_t out_size)
{
    size_t i = 0;
    for (; in[i] && i + 1 < out_size; i++) {
        char c = in[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        out[i] = ok ? c : '_';
    }
    out[i] = '\0';
    if (i == 0)
        snprintf(out, out_size, "unnamed");
}

/* ---- lookups ---- */

/* A map on one of the values snisplice routes by. */
static bool becomes_routes(const struct import_map *map)
{
    return map->server_name || map->alpn || map->protocol;
}

static struct import_map *find_map(struct importer *importer, const char *variable)
{
    for (size_t i = 0; i < importer->map_count; i++)
        if (strcmp(importer->maps[i].variable, variable) == 0)
            return &importer->maps[i];
    return NULL;
}

static struct import_upstream *find_upstream(struct importer *importer, const char *name)
{
    int32_t found = name_index_get(&importer->upstream_names, name);
    return found == NAME_INDEX_NONE ? NULL : importer->upstreams[found];
}

static struct import_upstream *add_upstream(struct importer *importer)
{
    struct import_upstream **grown = grow(importer, importer->upstreams, importer->upstream_count,
                                          sizeof *grown);
    if (!grown)
        return NULL;
    importer->upstreams = grown;
    struct import_upstream *upstream = calloc(1, sizeof *upstream);
    if (!upstream) {
        importer->failed = true;
        return NULL;
    }
    grown[importer->upstream_count++] = upstream;
    return upstream;
}

static struct import_upstream *literal_upstream(struct importer *importer, const char *address)
{
    int32_t known = name_index_get(&importer->literal_addresses, address);
    if (known != NAME_INDEX_NONE)
        return importer->upstreams[known];
    struct import_upstream *upstream = add_upstream(importer);
    if (!upstream)
        return NULL;
    char name[NAME_MAX_LENGTH + ADDRESS_TEXT_MAX];
    snprintf(name, sizeof name, "to_%s", address);
    char clean[NAME_MAX_LENGTH];
    sanitize_name(name, clean, sizeof clean);
    upstream->literal = true;
    upstream->address = strdup(address);
    upstream->name = strdup(clean);
    if (!upstream->address || !upstream->name ||
        !name_index_put(&importer->literal_addresses, upstream->address, (int32_t)importer->upstream_count - 1)) {
        importer->failed = true;
        return NULL;
    }
    return upstream;
}

/* What a map value or proxy_pass names: an upstream, or an address (then a
 * made-up upstream that only matters if it needs proxy_protocol). */
static struct import_upstream *resolve_target(struct importer *importer,
                                              const struct nginx_directive *at, const char *target)
{
    struct import_upstream *upstream = find_upstream(importer, target);
    if (upstream)
        return upstream;
    if (target[0] == '$') {
        warn(importer, at, "target %s: a variable chained from another map is not supported; entry skipped",
             target);
        return NULL;
    }
    if (target[0] == '\0') {
        warn(importer, at, "target \"\": nginx closed these connections; snisplice has no route to nothing, "
                           "so the entry is skipped and the name takes the default route, if there is one");
        return NULL;
    }
    char address[ADDRESS_TEXT_MAX], why[160];
    bool looks_like_address = strchr(target, ':') != NULL || strspn(target, "0123456789.") == strlen(target);
    if (!looks_like_address || !convert_address(target, false, address, sizeof address, why, sizeof why)) {
        warn(importer, at, "target '%s' is neither an upstream nor an address or host name with a port%s%s; "
             "entry skipped", target, looks_like_address ? ": " : "", looks_like_address ? why : "");
        return NULL;
    }
    return literal_upstream(importer, address);
}

/* ---- pass 1: collect ---- */

static void collect_timeout(struct importer *importer, const struct nginx_directive *directive,
                            struct import_timeout *timeout)
{
    char value[32];
    if (directive->arg_count != 1 || !convert_duration(directive->args[0], value, sizeof value)) {
        warn(importer, directive, "%s: cannot read the time '%s'; not carried over", directive->name,
             directive->arg_count ? directive->args[0] : "");
        return;
    }
    if (timeout->value[0] && strcmp(timeout->value, value) != 0) {
        warn(importer, directive,
             "%s %s: snisplice has one %s for every listener; keeping %s from %s:%d",
             directive->name, directive->args[0], timeout->ini_name, timeout->value, timeout->file,
             timeout->line);
        return;
    }
    snprintf(timeout->value, sizeof timeout->value, "%s", value);
    timeout->file = directive->file;
    timeout->line = directive->line;
}

static bool collect_timeout_directive(struct importer *importer, const struct nginx_directive *directive)
{
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(directive->name, importer->timeouts[i].nginx_name) == 0) {
            collect_timeout(importer, directive, &importer->timeouts[i]);
            return true;
        }
    }
    return false;
}

static void collect_map(struct importer *importer, const struct nginx_directive *directive)
{
    if (directive->arg_count != 2 || !directive->block || directive->args[1][0] != '$') {
        warn(importer, directive, "map: expected 'map $source $variable { ... }'; skipped");
        return;
    }
    struct import_map *grown = grow(importer, importer->maps, importer->map_count, sizeof *grown);
    if (!grown)
        return;
    importer->maps = grown;
    struct import_map *map = &grown[importer->map_count++];
    map->directive = directive;
    map->variable = directive->args[1] + 1;
    map->server_name = strcmp(directive->args[0], "$ssl_preread_server_name") == 0;
    map->alpn = strcmp(directive->args[0], "$ssl_preread_alpn_protocols") == 0;
    map->protocol = strcmp(directive->args[0], "$ssl_preread_protocol") == 0;
    sanitize_name(map->variable, map->table, sizeof map->table);
    if (!map->server_name && !map->alpn && !map->protocol)
        warn(importer, directive,
             "map on %s: only maps on $ssl_preread_server_name, $ssl_preread_alpn_protocols and "
             "$ssl_preread_protocol become routes; $%s is not converted", directive->args[0], map->variable);
}

static void collect_upstream(struct importer *importer, const struct nginx_directive *directive)
{
    if (directive->arg_count != 1 || !directive->block) {
        warn(importer, directive, "upstream: expected 'upstream NAME { ... }'; skipped");
        return;
    }
    if (find_upstream(importer, directive->args[0])) {
        warn(importer, directive, "upstream %s defined twice; the second is skipped", directive->args[0]);
        return;
    }
    struct import_upstream *upstream = add_upstream(importer);
    if (!upstream)
        return;
    upstream->directive = directive;
    upstream->name = directive->args[0];
    if (!name_index_put(&importer->upstream_names, upstream->name, (int32_t)importer->upstream_count - 1))
        importer->failed = true;
}

static void collect_listen(struct importer *importer, struct import_server *server,
                           const struct nginx_directive *directive)
{
    if (directive->arg_count < 1) {
        warn(importer, directive, "listen without an address; skipped");
        return;
    }
    struct import_listen listen = {0};
    char why[160];
    if (!convert_address(directive->args[0], true, listen.address, sizeof listen.address, why, sizeof why)) {
        warn(importer, directive, "listen %s: %s; skipped", directive->args[0], why);
        return;
    }
    for (size_t i = 1; i < directive->arg_count; i++) {
        const char *flag = directive->args[i];
        if (strcmp(flag, "proxy_protocol") == 0) {
            listen.proxy_protocol = true;
        } else if (strcmp(flag, "udp") == 0) {
            warn(importer, directive, "listen %s udp: snisplice relays TCP only; skipped", directive->args[0]);
            return;
        } else if (strcmp(flag, "ssl") == 0) {
            warn(importer, directive,
                 "listen %s ssl: nginx terminated TLS here; snisplice only passes TLS through, so the "
                 "upstream must now speak TLS itself", directive->args[0]);
        } else if (strcmp(flag, "reuseport") == 0 || strcmp(flag, "bind") == 0 ||
                   strcmp(flag, "default_server") == 0 || strcmp(flag, "ipv6only=on") == 0) {
            /* snisplice always does these. */
        } else {
            warn(importer, directive, "listen %s: parameter '%s' not carried over", directive->args[0], flag);
        }
    }
    struct import_listen *grown = grow(importer, server->listens, server->listen_count, sizeof *grown);
    if (!grown)
        return;
    server->listens = grown;
    grown[server->listen_count++] = listen;
}

static bool is_on(struct importer *importer, const struct nginx_directive *directive)
{
    if (directive->arg_count == 1 && strcmp(directive->args[0], "on") == 0)
        return true;
    if (directive->arg_count != 1 || strcmp(directive->args[0], "off") != 0)
        warn(importer, directive, "%s: expected on or off", directive->name);
    return false;
}

/* Directives of a stream block or of its servers that need no INI line
 * of their own: what snisplice always does, and the access log (one per
 * process in snisplice, in its own format). False: not one of them. */
static bool collect_common(struct importer *importer, const struct nginx_directive *item)
{
    bool on = item->arg_count == 1 && strcmp(item->args[0], "on") == 0;
    if ((strcmp(item->name, "tcp_nodelay") == 0 || strcmp(item->name, "proxy_next_upstream") == 0) && on)
        return true; /* snisplice sets TCP_NODELAY and tries the next server, as nginx does by default */
    if (strcmp(item->name, "resolver") == 0) {
        warn(importer, item, "resolver: not carried over; snisplice resolves server names when it loads its "
                             "configuration, with the system's resolver (/etc/hosts, /etc/resolv.conf)");
        return true;
    }
    if (strcmp(item->name, "access_log") != 0 || item->arg_count < 1)
        return false;
    if (strcmp(item->args[0], "off") == 0)
        return true;
    if (!importer->access_log) {
        importer->access_log = item;
        warn(importer, item, "access_log %s: carried over; snisplice writes its own line format there "
                             "(README, Access log), not nginx's log_format; under the shipped systemd unit "
                             "only /var/log/snisplice is writable", item->args[0]);
    } else if (strcmp(importer->access_log->args[0], item->args[0]) != 0) {
        warn(importer, item, "access_log %s: snisplice has one access log; lines go to %s", item->args[0],
             importer->access_log->args[0]);
    }
    return true;
}

static bool is_access_rule(const struct nginx_directive *item)
{
    return strcmp(item->name, "allow") == 0 || strcmp(item->name, "deny") == 0;
}

/* Every allow/deny is kept as written until its level is complete: only
 * then does check_access know whether unix: rules were all there was. */
static void add_access_rule(struct importer *importer, struct import_access *access,
                            const struct nginx_directive *item)
{
    access->own = true;
    const struct nginx_directive **grown = grow(importer, access->rules, access->rule_count, sizeof *grown);
    if (!grown)
        return;
    access->rules = grown;
    grown[access->rule_count++] = item;
}

static bool is_unix_rule(const struct nginx_directive *rule)
{
    return rule->arg_count == 1 && strcmp(rule->args[0], "unix:") == 0;
}

/* nginx's own value forms: all, an IPv4 or IPv6 address, a CIDR block.
 * Anything else made nginx refuse the configuration. */
static bool access_value_is_valid(const struct nginx_directive *rule, char *why, size_t why_size)
{
    if (rule->arg_count != 1) {
        snprintf(why, why_size, "expected one value: all, an address or a CIDR block");
        return false;
    }
    if (strcmp(rule->args[0], "all") == 0)
        return true;
    struct address_range range;
    return address_range_parse(rule->args[0], &range, why, why_size);
}

static void warn_unix_rule(struct importer *importer, const struct nginx_directive *rule, bool only_unix)
{
    warn(importer, rule, "%s unix: concerns clients of unix-socket listeners only, and snisplice listens on "
                         "TCP only; rule dropped%s", rule->name,
         only_unix ? ". nginx had no other rule here, so it served every TCP client (a server with rules of "
                     "its own does not take the stream block's), and snisplice does the same" : "");
}

/* Leaving a rule out changes what the others mean: a deny skipped serves
 * clients nginx was told to refuse, an allow skipped may let a later deny
 * refuse clients nginx was told to serve. */
static void warn_broken_rule(struct importer *importer, const struct nginx_directive *rule, const char *why)
{
    bool deny = strcmp(rule->name, "deny") == 0;
    warn(importer, rule, "%s%s%s: %s (nginx refuses this configuration); rule skipped. CAUTION: the rules "
                         "left may mean something else: %s; check them", rule->name,
         rule->arg_count ? " " : "", rule->arg_count ? rule->args[0] : "", why,
         deny ? "clients this deny was meant to refuse may now be served" :
                "clients this allow was meant to serve may now meet a later deny");
}

/* Keeps, in order, the rules the INI takes, and says why each other one
 * is left out. Runs once per level, so each rule is reported once even
 * when the stream block's rules are written for several servers. */
static void check_access(struct importer *importer, struct import_access *access)
{
    size_t unix_rules = 0;
    for (size_t i = 0; i < access->rule_count; i++)
        unix_rules += is_unix_rule(access->rules[i]);
    bool only_unix = unix_rules == access->rule_count;
    size_t kept = 0;
    for (size_t i = 0; i < access->rule_count; i++) {
        const struct nginx_directive *rule = access->rules[i];
        char why[160];
        if (is_unix_rule(rule))
            warn_unix_rule(importer, rule, only_unix);
        else if (!access_value_is_valid(rule, why, sizeof why))
            warn_broken_rule(importer, rule, why);
        else
            access->rules[kept++] = rule;
    }
    /* Fewer in the same array: nothing is added after this. */
    access->rule_count = kept;
}

/* ---- limit_conn (ngx_stream_limit_conn_module) ---- */

/* The keys that count per client address, as snisplice does. (Behind
 * set_real_ip_from both are the address the PROXY header names, as
 * snisplice's count is.) */
static bool is_client_address_key(const char *key)
{
    static const char *const keys[] = { "$binary_remote_addr", "$remote_addr", "${binary_remote_addr}",
                                        "${remote_addr}" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

static struct import_zone *find_zone_named(struct importer *importer, const char *name, size_t length)
{
    for (size_t i = 0; i < importer->zone_count; i++) {
        struct import_zone *zone = &importer->zones[i];
        if (zone->name_length == length && strncmp(zone->name, name, length) == 0)
            return zone;
    }
    return NULL;
}

static struct import_zone *find_zone(struct importer *importer, const char *name)
{
    return find_zone_named(importer, name, strlen(name));
}

/* limit_conn_zone KEY zone=NAME:SIZE; the size is nginx's memory for the
 * counts, which snisplice sizes itself. */
static void collect_zone(struct importer *importer, const struct nginx_directive *directive)
{
    const char *zone_arg = directive->arg_count == 2 ? directive->args[1] : "";
    const char *colon = strchr(zone_arg, ':');
    if (strncmp(zone_arg, "zone=", 5) != 0 || !colon || colon == zone_arg + 5) {
        warn(importer, directive, "limit_conn_zone: expected 'limit_conn_zone KEY zone=NAME:SIZE' (nginx refuses "
                                  "this configuration); skipped");
        return;
    }
    const char *name = zone_arg + 5;
    size_t name_length = (size_t)(colon - name);
    if (find_zone_named(importer, name, name_length)) {
        warn(importer, directive, "limit_conn_zone: zone %.*s defined twice (nginx refuses this configuration); "
                                  "the second is skipped", (int)name_length, name);
        return;
    }
    struct import_zone *grown = grow(importer, importer->zones, importer->zone_count, sizeof *grown);
    if (!grown)
        return;
    importer->zones = grown;
    struct import_zone *zone = &grown[importer->zone_count++];
    zone->directive = directive;
    zone->name = name;
    zone->name_length = name_length;
    zone->per_address = is_client_address_key(directive->args[0]);
    if (!zone->per_address)
        warn(importer, directive, "limit_conn_zone %s zone=%.*s: snisplice limits connections per client "
                                  "address only ($binary_remote_addr or $remote_addr); the limits on this "
                                  "zone are not carried over", directive->args[0], (int)zone->name_length,
             zone->name);
}

/* limit_conn, limit_conn_dry_run and limit_conn_log_level, at either
 * level. limit_conn lines are only kept here: whether their zone exists
 * is known once every stream block is read (check_limits). False: not
 * one of them. */
static bool collect_limit_directive(struct importer *importer, struct import_limits *limits,
                                    const struct nginx_directive *item)
{
    if (strcmp(item->name, "limit_conn_log_level") == 0) {
        warn(importer, item, "limit_conn_log_level: not carried over (snisplice logs refusals in its access "
                             "log as outcome=client_limit)");
        return true;
    }
    if (strcmp(item->name, "limit_conn_dry_run") == 0) {
        /* Set here, even to off: then the stream block's does not apply. */
        limits->dry_run = item;
        limits->dry_run_on = is_on(importer, item);
        return true;
    }
    if (strcmp(item->name, "limit_conn") != 0)
        return false;
    limits->own = true;
    const struct nginx_directive **grown = grow(importer, limits->lines, limits->line_count, sizeof *grown);
    if (grown) {
        limits->lines = grown;
        grown[limits->line_count++] = item;
    }
    return true;
}

/* nginx's bounds: it refuses 0 and anything above 65535. 0: unreadable. */
static uint32_t limit_number(const char *text)
{
    if (text[0] == '\0' || strspn(text, "0123456789") != strlen(text))
        return 0;
    unsigned long number = strtoul(text, NULL, 10);
    return number <= 65535 ? (uint32_t)number : 0;
}

/* Whether a limit_conn line becomes (part of) max_connections_per_client;
 * when not, says why. `kept` are the lines of its level kept so far. */
static bool check_limit(struct importer *importer, const struct nginx_directive *line,
                        const struct nginx_directive **kept, size_t kept_count)
{
    if (line->arg_count != 2 || limit_number(line->args[1]) == 0) {
        warn(importer, line, "limit_conn: expected 'limit_conn ZONE NUMBER', NUMBER from 1 to 65535 (nginx "
                             "refuses this configuration); not carried over");
        return false;
    }
    const struct import_zone *zone = find_zone(importer, line->args[0]);
    if (!zone) {
        warn(importer, line, "limit_conn %s %s: no limit_conn_zone defines zone %s (nginx refuses this "
                             "configuration); not carried over", line->args[0], line->args[1], line->args[0]);
        return false;
    }
    if (!zone->per_address) {
        warn(importer, line, "limit_conn %s %s: zone %s counts by %s, not by client address; not carried over",
             line->args[0], line->args[1], line->args[0], zone->directive->args[0]);
        return false;
    }
    for (size_t i = 0; i < kept_count; i++) {
        if (strcmp(kept[i]->args[0], line->args[0]) == 0) {
            warn(importer, line, "limit_conn %s %s: zone %s named twice in one block (nginx refuses this "
                                 "configuration); skipped", line->args[0], line->args[1], line->args[0]);
            return false;
        }
    }
    return true;
}

/* Keeps a level's per-address limits and finds the binding one: a client
 * refused by any zone is refused, so the smallest number decides. A
 * listener has one limit, so each other per-address zone's is said. Runs
 * once per level, so each line is reported once even when the stream
 * block's limits are written for several servers. */
static void check_limits(struct importer *importer, struct import_limits *limits)
{
    size_t kept = 0;
    const struct nginx_directive *smallest = NULL;
    for (size_t i = 0; i < limits->line_count; i++) {
        const struct nginx_directive *line = limits->lines[i];
        if (!check_limit(importer, line, limits->lines, kept))
            continue;
        limits->lines[kept++] = line;
        if (!smallest || limit_number(line->args[1]) < limit_number(smallest->args[1]))
            smallest = line;
    }
    /* Fewer in the same array: nothing is added after this. */
    limits->line_count = kept;
    limits->smallest = smallest ? limit_number(smallest->args[1]) : 0;
    for (size_t i = 0; i < kept; i++) {
        const struct nginx_directive *line = limits->lines[i];
        if (line != smallest)
            warn(importer, line, "limit_conn %s %s: a listener has one max_connections_per_client, and "
                                 "snisplice keeps the smallest of this block's limits, limit_conn %s %s (%s:%d)",
                 line->args[0], line->args[1], smallest->args[0], smallest->args[1], smallest->file,
                 smallest->line);
    }
}

static void collect_server(struct importer *importer, const struct nginx_directive *directive)
{
    if (!directive->block) {
        warn(importer, directive, "server outside an upstream block without { }; skipped");
        return;
    }
    struct import_server *grown = grow(importer, importer->servers, importer->server_count, sizeof *grown);
    if (!grown)
        return;
    importer->servers = grown;
    struct import_server *server = &grown[importer->server_count++];
    server->directive = directive;
    for (size_t i = 0; i < directive->block->count; i++) {
        const struct nginx_directive *item = &directive->block->items[i];
        if (strcmp(item->name, "listen") == 0)
            collect_listen(importer, server, item);
        else if (strcmp(item->name, "proxy_pass") == 0 && item->arg_count == 1)
            server->proxy_pass = item;
        else if (strcmp(item->name, "ssl_preread") == 0) {
            server->ssl_preread = is_on(importer, item);
            server->ssl_preread_set = true;
        } else if (strcmp(item->name, "proxy_protocol") == 0) {
            server->proxy_protocol = is_on(importer, item);
            server->proxy_protocol_set = true;
        } else if (strcmp(item->name, "set_real_ip_from") == 0 && item->arg_count == 1)
            add_string(importer, &server->trusted, &server->trusted_count, item->args[0]);
        else if (is_access_rule(item))
            add_access_rule(importer, &server->access, item);
        else if (collect_limit_directive(importer, &server->limits, item))
            continue;
        else if (!collect_common(importer, item) && !collect_timeout_directive(importer, item))
            warn(importer, item, "%s: not carried over", item->name);
    }
    check_access(importer, &server->access);
}

static void collect_stream(struct importer *importer, const struct nginx_directive *stream)
{
    for (size_t i = 0; i < stream->block->count; i++) {
        const struct nginx_directive *item = &stream->block->items[i];
        if (strcmp(item->name, "map") == 0)
            collect_map(importer, item);
        else if (strcmp(item->name, "upstream") == 0)
            collect_upstream(importer, item);
        else if (strcmp(item->name, "server") == 0)
            collect_server(importer, item);
        else if (strcmp(item->name, "set_real_ip_from") == 0 && item->arg_count == 1)
            add_string(importer, &importer->stream_trusted, &importer->stream_trusted_count, item->args[0]);
        else if (is_access_rule(item))
            add_access_rule(importer, &importer->stream_access, item);
        else if (strcmp(item->name, "limit_conn_zone") == 0)
            collect_zone(importer, item);
        else if (collect_limit_directive(importer, &importer->stream_limits, item))
            continue;
        else if (strcmp(item->name, "ssl_preread") == 0)
            importer->stream_ssl_preread = is_on(importer, item);
        else if (strcmp(item->name, "proxy_protocol") == 0)
            importer->stream_proxy_protocol = is_on(importer, item);
        else if (!collect_common(importer, item) && !collect_timeout_directive(importer, item))
            warn(importer, item, "%s: not carried over", item->name);
    }
}

static void collect_main(struct importer *importer, const struct nginx_block *root)
{
    for (size_t i = 0; i < root->count; i++) {
        const struct nginx_directive *item = &root->items[i];
        if (strcmp(item->name, "stream") == 0 && item->block)
            collect_stream(importer, item);
        else if (strcmp(item->name, "user") == 0 && item->arg_count >= 1)
            importer->user = item->args[0];
        else if (strcmp(item->name, "worker_processes") == 0 && item->arg_count == 1)
            importer->workers = item->args[0];
        else if (item->block)
            warn(importer, item, "%s { }: not stream configuration; ignored", item->name);
        else
            warn(importer, item, "%s: not carried over", item->name);
    }
}

/* ---- pass 2: resolve what each server reaches ---- */

static void mark_reached(struct import_upstream *upstream, bool proxy_protocol)
{
    if (proxy_protocol)
        upstream->proxy_protocol = true;
    else
        upstream->plain = true;
}

/* Each map entry, in order: calls `entry` for every route it makes. */
typedef void (*map_entry_fn)(struct importer *importer, struct import_map *map,
                             const struct nginx_directive *entry, const char *pattern,
                             struct import_upstream *target, void *context);

/* What a map entry's value names. On HOST:$map the value is a port on
 * HOST. `report` false: the quiet look-up of the marking pass, which runs
 * before the writing pass says what is wrong with a value. */
static struct import_upstream *value_target(struct importer *importer, const struct import_map *map,
                                            const struct nginx_directive *entry, bool report)
{
    const char *value = entry->args[0];
    char on_host[ADDRESS_TEXT_MAX + 8];
    if (map->port_host) {
        snprintf(on_host, sizeof on_host, "%s:%s", map->port_host, value);
        value = on_host;
    }
    if (report)
        return resolve_target(importer, entry, value);
    struct import_upstream *target = find_upstream(importer, value);
    char address[ADDRESS_TEXT_MAX], why[160];
    if (!target && value[0] != '$' && convert_address(value, false, address, sizeof address, why, sizeof why))
        target = literal_upstream(importer, address);
    return target;
}

/* A protocol map's routes, as resolve_protocol_map chose them: not_tls,
 * then the default (unless a chained map's entries take its place). */
static void walk_protocol_map(struct importer *importer, struct import_map *map, bool report,
                              map_entry_fn entry_fn, void *context)
{
    struct import_upstream *target = map->not_tls ? value_target(importer, map, map->not_tls, report) : NULL;
    if (target)
        entry_fn(importer, map, map->not_tls, "not_tls", target, context);
    target = map->tls ? value_target(importer, map, map->tls, report) : NULL;
    if (target)
        entry_fn(importer, map, map->tls, "default", target, context);
}

static void walk_map(struct importer *importer, struct import_map *map, bool report, map_entry_fn entry_fn,
                     void *context)
{
    if (map->protocol) {
        walk_protocol_map(importer, map, report, entry_fn, context);
        return;
    }
    const struct nginx_block *block = map->directive->block;
    /* As in nginx, `hostnames` applies to the entries after it. */
    bool hostnames = false;
    for (size_t i = 0; i < block->count; i++) {
        const struct nginx_directive *entry = &block->items[i];
        const char *key = entry->name;
        if (strcmp(key, "hostnames") == 0) {
            hostnames = true;
            continue;
        }
        if (strcmp(key, "volatile") == 0)
            continue;
        if (entry->block || entry->arg_count != 1) {
            if (report)
                warn(importer, entry, "map entry '%s': expected 'key value;'; skipped", key);
            continue;
        }
        if (map->names && strcmp(key, "default") == 0)
            continue; /* the chained map's entries follow in the same table */
        char converted_key[ROUTE_REGEX_TEXT_MAX];
        if (map->alpn && strcmp(key, "default") != 0) {
            char why[200];
            bool exact = false;
            if (!convert_alpn_key(key, converted_key, sizeof converted_key, &exact, why, sizeof why)) {
                if (report)
                    warn(importer, entry, "map entry '%s': %s; skipped", key, why);
                continue;
            }
            if (report && exact)
                warn(importer, entry, "map entry '%s': nginx compared the client's whole protocol list with it; "
                                      "snisplice routes every client that offers %s", key, converted_key + 5);
            key = converted_key;
        } else if (route_regex_is_pattern(key)) {
            char why[200];
            if (!convert_regex(key, converted_key, sizeof converted_key, why, sizeof why)) {
                if (report)
                    warn(importer, entry, "map entry '%s': %s; skipped", key, why);
                continue;
            }
            key = converted_key;
        }
        if (key[0] == '\0') {
            if (report)
                warn(importer, entry, "map entry \"\": a hello without SNI goes to the default route in snisplice; skipped");
            continue;
        }
        if (is_wildcard(key) && !hostnames) {
            if (report)
                warn(importer, entry,
                     "map entry '%s': without 'hostnames' nginx compares it as plain text, so it never "
                     "matched; skipped", key);
            continue;
        }
        struct import_upstream *target = value_target(importer, map, entry, report);
        if (target)
            entry_fn(importer, map, entry, key, target, context);
    }
}

static void mark_entry(struct importer *importer, struct import_map *map,
                       const struct nginx_directive *entry, const char *pattern,
                       struct import_upstream *target, void *context)
{
    (void)importer, (void)entry, (void)pattern, (void)context;
    if (map->proxy_protocol)
        mark_reached(target, true);
    if (map->plain)
        mark_reached(target, false);
}

/* proxy_pass $variable, or HOST:$variable (acme.sh's recipe: an ALPN map
 * whose values are ports). A map is used one way only: its routes table
 * is written once. */
static bool use_map_as(struct import_server *server, const char *target, const char *variable)
{
    struct import_map *map = server->map;
    if (variable == target)
        return !map->port_host;
    size_t host_length = (size_t)(variable - target);
    if (host_length < 2 || target[host_length - 1] != ':')
        return false;
    char *host = strndup(target, host_length - 1);
    if (!host)
        return false;
    bool same = map->port_host ? strcmp(map->port_host, host) == 0 : !map->used;
    if (!same) {
        free(host);
        return false;
    }
    free(map->port_host);
    map->port_host = host;
    return true;
}

static void resolve_server(struct importer *importer, struct import_server *server)
{
    const struct nginx_directive *directive = server->directive;
    /* As in nginx, a server without its own value has the stream block's. */
    if (!server->ssl_preread_set)
        server->ssl_preread = importer->stream_ssl_preread;
    if (!server->proxy_protocol_set)
        server->proxy_protocol = importer->stream_proxy_protocol;
    if (server->listen_count == 0) {
        warn(importer, directive, "server without a usable listen; skipped");
        return;
    }
    if (!server->proxy_pass) {
        warn(importer, directive, "server without proxy_pass: nothing to forward to; skipped");
        server->listen_count = 0;
        return;
    }
    const char *target = server->proxy_pass->args[0];
    const char *variable = strchr(target, '$');
    if (variable) {
        server->map = find_map(importer, variable + 1);
        const char *why = !server->map || !becomes_routes(server->map) ?
                              "not a map on $ssl_preread_server_name, $ssl_preread_alpn_protocols or "
                              "$ssl_preread_protocol" :
                          !use_map_as(server, target, variable) ?
                              "only $map or HOST:$map, and each map one way (it becomes one routes table)" :
                              NULL;
        if (why) {
            warn(importer, server->proxy_pass, "proxy_pass %s: %s; server skipped", target, why);
            server->map = NULL;
            server->listen_count = 0;
            return;
        }
        if (!server->ssl_preread)
            warn(importer, server->proxy_pass, "proxy_pass %s without 'ssl_preread on': %s", target,
                 server->map->protocol ?
                     "nginx saw no protocol and sent every client where the map sends \"\"; snisplice "
                     "tells TLS clients apart" :
                     "nginx saw no server name and always took the map's default; snisplice routes by "
                     "server name");
        server->map->used = true;
        if (server->proxy_protocol)
            server->map->proxy_protocol = true;
        else
            server->map->plain = true;
        return;
    }
    server->upstream = resolve_target(importer, server->proxy_pass, target);
    if (!server->upstream) {
        server->listen_count = 0;
        return;
    }
    mark_reached(server->upstream, server->proxy_protocol);
}

/* Once per limit_conn_dry_run line, however many servers it covers. */
static void warn_dry_run(struct importer *importer, struct import_limits *level)
{
    if (level->dry_run_said)
        return;
    level->dry_run_said = true;
    warn(importer, level->dry_run, "limit_conn_dry_run on: nginx refused no one under it, it only counted and "
                                   "logged; snisplice has no dry run, so the limit_conn limits it covers were "
                                   "left out");
}

/* A converted server's limit as nginx merged it: its own limit_conn
 * lines, else the stream block's; its own limit_conn_dry_run, else the
 * stream block's, each apart. Under dry run nothing is written, but
 * nginx still counted the server's connections in the zones. */
static void resolve_client_limit(struct importer *importer, struct import_server *server)
{
    if (server->listen_count == 0)
        return;
    const struct import_limits *limits = server->limits.own ? &server->limits : &importer->stream_limits;
    struct import_limits *dry_run = server->limits.dry_run ? &server->limits : &importer->stream_limits;
    bool enforced = !dry_run->dry_run_on;
    for (size_t i = 0; i < limits->line_count; i++) {
        struct import_zone *zone = find_zone(importer, limits->lines[i]->args[0]);
        if (!zone)
            continue; /* cannot happen: check_limits kept only lines with a zone */
        zone->servers++;
        zone->limiting += enforced;
    }
    if (limits->smallest == 0)
        return;
    if (!enforced) {
        warn_dry_run(importer, dry_run);
        return;
    }
    server->client_limit = limits->smallest;
    importer->limited_servers++;
}

/* nginx counts each zone apart, over the servers whose limits name it;
 * snisplice counts a client's connections on every limited listener
 * together. They agree when every zone that limits anyone counts exactly
 * the limited listeners: one zone with another number on some server
 * does, two servers with a zone each do not. Said once, at the first
 * zone that differs. */
static void warn_counting_scope(struct importer *importer)
{
    for (size_t i = 0; i < importer->zone_count; i++) {
        const struct import_zone *zone = &importer->zones[i];
        bool same = zone->servers == zone->limiting && zone->limiting == importer->limited_servers;
        if (zone->limiting == 0 || same)
            continue;
        warn(importer, zone->directive,
             "limit_conn_zone %s zone=%.*s: nginx counts a client's connections in each zone apart, over the "
             "servers whose limit_conn names that zone (dry-run ones too); snisplice counts them together over "
             "every listener with max_connections_per_client, so a client's connections to one listener now "
             "count towards the limits of the others", zone->directive->args[0], (int)zone->name_length,
             zone->name);
        return;
    }
}

/* `next` continues `map`'s table: its entries are written after map's
 * and reach the same servers' upstreams. */
static void chain_to(struct import_map *map, struct import_map *next)
{
    map->names = next;
    next->chained = true;
    next->proxy_protocol |= map->proxy_protocol;
    next->plain |= map->plain;
}

/* nginx's recipe for an ACME helper beside SNI routing: a map on the
 * client's protocols whose default is the server-name map
 * (`default $name;`). snisplice tries ALPN routes before names anyway, so
 * the two become one table: the ALPN entries, then the name map's. The
 * ALPN map may itself continue a protocol map's table. */
static void chain_names(struct importer *importer, struct import_map *map)
{
    if (!(map->used || map->chained) || !map->alpn || map->port_host)
        return;
    const struct nginx_block *block = map->directive->block;
    for (size_t i = 0; i < block->count; i++) {
        const struct nginx_directive *entry = &block->items[i];
        if (strcmp(entry->name, "default") != 0 || entry->arg_count != 1 || entry->args[0][0] != '$')
            continue;
        struct import_map *names = find_map(importer, entry->args[0] + 1);
        if (!names || !names->server_name)
            return;
        chain_to(map, names);
        return;
    }
}

/* ---- maps on $ssl_preread_protocol ---- */

/* What nginx's $ssl_preread_protocol holds: "" for a client whose first
 * bytes are not a TLS handshake, else the highest version the client
 * offers, named as SSL_get_version() names them. (nginx also says SSLv3;
 * snisplice takes such a client for TLS, so it goes with the TLS ones.) */
static const char *const protocol_values[] = { "", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3" };
enum { PROTOCOL_NOT_TLS = 0, PROTOCOL_FIRST_TLS = 1, PROTOCOL_MODERN = 4, PROTOCOL_VALUES = 5 };

/* nginx's map looks a value up in this order: its exact keys (in any
 * case), then its regular expressions in file order (never for ""), then
 * its default. Per protocol_values index, the first entry of each kind. */
struct protocol_lookup {
    const struct nginx_directive *exact[PROTOCOL_VALUES];
    const struct nginx_directive *regex[PROTOCOL_VALUES];
    const struct nginx_directive *fallback;
};

static const struct nginx_directive *protocol_entry(const struct protocol_lookup *lookup, int value)
{
    if (lookup->exact[value])
        return lookup->exact[value];
    return lookup->regex[value] ? lookup->regex[value] : lookup->fallback;
}

/* No entry: nginx's map gives "", and proxy_pass to "" closes the client. */
static const char *protocol_target(const struct nginx_directive *entry)
{
    return entry ? entry->args[0] : "";
}

/* Which protocol_values a regular expression matches, as bits; -1 (said
 * with a warning) when snisplice cannot evaluate it. */
static int regex_key_matches(struct importer *importer, const struct nginx_directive *entry)
{
    struct route_regex regex;
    char error[160];
    if (!route_regex_compile(&regex, entry->name, 0, error, sizeof error)) {
        warn(importer, entry, "map entry '%s': regular expression not evaluated: %s; skipped, so the TLS "
                              "versions it matched in nginx take the map's other entries", entry->name, error);
        return -1;
    }
    /* A ~* expression is compiled folded to lower case: so is the text. */
    bool any_case = entry->name[1] == '*';
    int matches = 0;
    for (int value = PROTOCOL_FIRST_TLS; value < PROTOCOL_VALUES; value++) {
        char text[16];
        size_t length = 0;
        for (const char *in = protocol_values[value]; *in; in++)
            text[length++] = any_case ? (char)tolower((unsigned char)*in) : *in;
        if (route_regex_matches(&regex, text, length))
            matches |= 1 << value;
    }
    route_regex_free(&regex);
    return matches;
}

/* Which protocol_values a key matches, as bits; -1 (said with a warning)
 * when snisplice cannot evaluate it. */
static int protocol_key_matches(struct importer *importer, const struct nginx_directive *entry, bool hostnames)
{
    const char *key = entry->name;
    if (route_regex_is_pattern(key))
        return regex_key_matches(importer, entry);
    if (hostnames && is_wildcard(key)) {
        warn(importer, entry, "map entry '%s': a wildcard on $ssl_preread_protocol is not evaluated; skipped",
             key);
        return -1;
    }
    /* nginx drops a leading backslash: it lets a key start with '~'. */
    if (key[0] == '\\')
        key++;
    int matches = 0;
    for (int value = 0; value < PROTOCOL_VALUES; value++)
        if (strcasecmp(key, protocol_values[value]) == 0)
            matches |= 1 << value;
    return matches;
}

/* One pass over the map, as nginx reads it; what cannot be evaluated, or
 * matches none of protocol_values, is said here, once. */
static void look_up_protocols(struct importer *importer, const struct import_map *map,
                              struct protocol_lookup *lookup)
{
    memset(lookup, 0, sizeof *lookup);
    const struct nginx_block *block = map->directive->block;
    bool hostnames = false;
    for (size_t i = 0; i < block->count; i++) {
        const struct nginx_directive *entry = &block->items[i];
        bool flag = entry->arg_count == 0 && !entry->block; /* nginx: alone on its line, else a key */
        if (flag && strcmp(entry->name, "hostnames") == 0) {
            hostnames = true;
            continue;
        }
        if (flag && strcmp(entry->name, "volatile") == 0)
            continue;
        if (entry->block || entry->arg_count != 1) {
            warn(importer, entry, "map entry '%s': expected 'key value;'; skipped", entry->name);
            continue;
        }
        if (strcmp(entry->name, "default") == 0) {
            if (!lookup->fallback) /* nginx refuses a second one */
                lookup->fallback = entry;
            continue;
        }
        int matches = protocol_key_matches(importer, entry, hostnames);
        if (matches == 0)
            warn(importer, entry, "map entry '%s': matches neither \"\" nor a TLS version from TLSv1 to "
                                  "TLSv1.3, the clients snisplice tells apart; skipped (an SSLv3 client goes "
                                  "with the TLS ones)", entry->name);
        const struct nginx_directive **first =
            route_regex_is_pattern(entry->name) ? lookup->regex : lookup->exact;
        for (int value = 0; matches > 0 && value < PROTOCOL_VALUES; value++)
            if ((matches & (1 << value)) && !first[value])
                first[value] = entry;
    }
}

static bool same_for_every_version(const struct protocol_lookup *lookup)
{
    const char *modern = protocol_target(protocol_entry(lookup, PROTOCOL_MODERN));
    for (int value = PROTOCOL_FIRST_TLS; value < PROTOCOL_MODERN; value++)
        if (strcmp(protocol_target(protocol_entry(lookup, value)), modern) != 0)
            return false;
    return true;
}

/* nginx's own example sends TLSv1.2 clients elsewhere: snisplice has one
 * route for every TLS client, so it takes the TLSv1.3 one and says so. */
static void warn_version_routing(struct importer *importer, const struct import_map *map,
                                 const struct protocol_lookup *lookup)
{
    struct text versions = {0};
    for (int value = PROTOCOL_FIRST_TLS; value < PROTOCOL_VALUES; value++) {
        const char *target = protocol_target(protocol_entry(lookup, value));
        text_printf(&versions, "%s%s -> %s", value > PROTOCOL_FIRST_TLS ? ", " : "", protocol_values[value],
                    target[0] ? target : "\"\"");
    }
    const char *modern = protocol_target(protocol_entry(lookup, PROTOCOL_MODERN));
    if (versions.failed)
        importer->failed = true;
    else
        warn(importer, map->directive,
             "map $%s routes TLS clients by version (%s); snisplice does not route by TLS version: every TLS "
             "client now goes to %s, the TLSv1.3 target, where nginx sent modern clients", map->variable,
             versions.data, modern[0] ? modern : "\"\"");
    free(versions.data);
}

/* A default that neither "" nor any TLS version reaches served only the
 * clients nginx named SSLv3: snisplice takes those for TLS clients. */
static void warn_unreached_default(struct importer *importer, const struct protocol_lookup *lookup,
                                   const char *tls_target)
{
    const struct nginx_directive *fallback = lookup->fallback;
    if (!fallback || strcmp(fallback->args[0], tls_target) == 0)
        return;
    for (int value = 0; value < PROTOCOL_VALUES; value++)
        if (protocol_entry(lookup, value) == fallback)
            return;
    warn(importer, fallback, "default %s: \"\" and every TLS version have entries of their own, so nginx "
                             "sent only clients of older SSL versions here; snisplice sends them with the TLS "
                             "clients; skipped", fallback->args[0][0] ? fallback->args[0] : "\"\"");
}

/* TLS clients' route: the table's default, or a server-name or ALPN map
 * whose entries follow in the same table (nginx's `default $name;`). */
static void resolve_tls_route(struct importer *importer, struct import_map *map,
                              const struct nginx_directive *entry)
{
    const char *target = protocol_target(entry);
    const struct nginx_directive *at = entry ? entry : map->directive;
    if (target[0] == '\0') {
        warn(importer, at, "map $%s: nginx closed TLS clients (%s); the table has no default route, so "
                           "snisplice closes them too", map->variable,
             entry ? "the target is \"\"" : "no entry for their versions and no default");
        return;
    }
    if (target[0] != '$') {
        map->tls = entry;
        return;
    }
    struct import_map *next = find_map(importer, target + 1);
    if (!next || !(next->server_name || next->alpn) || next->port_host || map->port_host) {
        warn(importer, at, "map $%s: TLS clients' target %s: snisplice continues a table only with a map on "
                           "$ssl_preread_server_name or $ssl_preread_alpn_protocols, and only under proxy_pass "
                           "$map; no default route written", map->variable, target);
        return;
    }
    chain_to(map, next);
}

/* The not_tls route: written only when it differs from the TLS clients'
 * (without it they take the default, as in nginx's `default` catching ""). */
static void resolve_not_tls_route(struct importer *importer, struct import_map *map,
                                  const struct nginx_directive *entry, const char *tls_target)
{
    const char *target = protocol_target(entry);
    if (strcmp(target, tls_target) == 0)
        return;
    const struct nginx_directive *at = entry ? entry : map->directive;
    if (target[0] == '\0') {
        warn(importer, at, "map $%s: nginx closed clients that do not speak TLS (%s); snisplice has no "
                           "route to nothing, so they take the default route", map->variable,
             entry ? "the target is \"\"" : "no \"\" entry and no default");
        return;
    }
    if (target[0] == '$') {
        warn(importer, at, "map $%s: target %s for clients that do not speak TLS: not_tls names one upstream "
                           "or address and cannot continue with another map; skipped, so they take the "
                           "default route", map->variable, target);
        return;
    }
    map->not_tls = entry;
}

/* nginx's sslh recipe, map $ssl_preread_protocol $x { "" ssh; default
 * https; }: the map is evaluated for "" and each TLS version, and becomes
 * the two routes snisplice has for it, not_tls and default (or a chained
 * table in place of the default). */
static void resolve_protocol_map(struct importer *importer, struct import_map *map)
{
    if (!map->used || !map->protocol)
        return;
    struct protocol_lookup lookup;
    look_up_protocols(importer, map, &lookup);
    if (!same_for_every_version(&lookup))
        warn_version_routing(importer, map, &lookup);
    const struct nginx_directive *tls = protocol_entry(&lookup, PROTOCOL_MODERN);
    warn_unreached_default(importer, &lookup, protocol_target(tls));
    resolve_tls_route(importer, map, tls);
    resolve_not_tls_route(importer, map, protocol_entry(&lookup, PROTOCOL_NOT_TLS), protocol_target(tls));
}

/* Every upstream's INI name: its nginx name with what the INI does not allow
 * made '_' (nginx allows "matrix.backend"), and made unique: "a.b" next to
 * "a_b", or two long names cut to the same 63 characters, get a suffix.
 * Named upstreams were collected first, so they keep their names and the
 * made-up "to_ADDRESS" ones give way. */
static void name_upstreams(struct importer *importer)
{
    struct name_index taken = {0};
    for (size_t i = 0; i < importer->upstream_count && !importer->failed; i++) {
        struct import_upstream *upstream = importer->upstreams[i];
        char base[NAME_MAX_LENGTH];
        sanitize_name(upstream->name, base, sizeof base);
        snprintf(upstream->ini_name, sizeof upstream->ini_name, "%s", base);
        for (unsigned suffix = 2; name_index_get(&taken, upstream->ini_name) != NAME_INDEX_NONE; suffix++)
            snprintf(upstream->ini_name, sizeof upstream->ini_name, "%.50s_%u", base, suffix);
        if (!name_index_put(&taken, upstream->ini_name, (int32_t)i))
            importer->failed = true;
    }
    name_index_free(&taken);
}

static void name_listeners(struct importer *importer)
{
    for (size_t i = 0; i < importer->server_count; i++) {
        struct import_server *server = &importer->servers[i];
        if (server->listen_count == 0)
            continue;
        const char *port = strrchr(server->listens[0].address, ':');
        char base[NAME_MAX_LENGTH];
        snprintf(base, sizeof base, "port%s", port ? port + 1 : "");
        snprintf(server->name, sizeof server->name, "%s", base);
        for (unsigned suffix = 2;; suffix++) {
            bool taken = false;
            for (size_t j = 0; j < i; j++)
                taken |= importer->servers[j].listen_count && strcmp(importer->servers[j].name, server->name) == 0;
            if (!taken)
                break;
            snprintf(server->name, sizeof server->name, "%.40s_%u", base, suffix);
        }
    }
}

/* ---- pass 3: write ---- */

static void write_trusted(struct text *ini, char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        text_printf(ini, "proxy_protocol_from = %s\n", list[i]);
}

/* nginx checks a server's rules, or the stream block's when the server has
 * none of its own, in order: the first that matches decides. */
static void write_access(const struct importer *importer, struct text *ini, const struct import_server *server)
{
    const struct import_access *access = server->access.own ? &server->access : &importer->stream_access;
    for (size_t i = 0; i < access->rule_count; i++)
        text_printf(ini, "%s = %s\n", access->rules[i]->name, access->rules[i]->args[0]);
}

static void write_listener(struct importer *importer, struct text *ini, const struct import_server *server,
                           bool unnamed)
{
    text_printf(ini, unnamed ? "[listen]\n" : "[listen %s]\n", server->name);
    bool accepts_proxy_protocol = false;
    for (size_t i = 0; i < server->listen_count; i++) {
        text_printf(ini, "address = %s\n", server->listens[i].address);
        accepts_proxy_protocol |= server->listens[i].proxy_protocol;
    }
    if (server->map && !unnamed)
        text_printf(ini, "routes = %s\n", server->map->table);
    if (server->upstream)
        text_printf(ini, "upstream = %s\n", server->upstream->literal && !server->proxy_protocol
                                                ? server->upstream->address : server->upstream->ini_name);
    if (accepts_proxy_protocol) {
        if (server->trusted_count)
            write_trusted(ini, server->trusted, server->trusted_count);
        else if (importer->stream_trusted_count)
            write_trusted(ini, importer->stream_trusted, importer->stream_trusted_count);
        else {
            warn(importer, server->directive,
                 "listen ... proxy_protocol without set_real_ip_from: nginx required the PROXY header from "
                 "every client; converted as proxy_protocol_from = 0.0.0.0/0 and ::/0");
            text_printf(ini, "proxy_protocol_from = 0.0.0.0/0\nproxy_protocol_from = ::/0\n");
            /* Without set_real_ip_from nginx's realip replaced no address. */
            if (server->client_limit)
                warn(importer, server->directive,
                     "limit_conn behind listen ... proxy_protocol without set_real_ip_from: nginx counted the "
                     "load balancer's address; snisplice counts each client its PROXY header names");
        }
    }
    write_access(importer, ini, server);
    if (server->client_limit)
        text_printf(ini, "max_connections_per_client = %u\n", (unsigned)server->client_limit);
    text_printf(ini, "\n");
}

static void write_route(struct importer *importer, struct import_map *map,
                        const struct nginx_directive *entry, const char *pattern,
                        struct import_upstream *target, void *context)
{
    (void)importer, (void)entry;
    struct text *ini = context;
    const char *value = target->literal && !map->proxy_protocol ? target->address : target->ini_name;
    text_printf(ini, "%s = %s\n", pattern, value);
}

/* " NAME=VALUE" for a server parameter the INI bounds where nginx does not
 * (weight, max_fails): a larger value is written as the bound, with a
 * warning; one that is not a number is left out, with a warning. */
static void write_bounded(struct importer *importer, struct text *ini, const struct nginx_directive *item,
                          const char *name, const char *value, unsigned long low, unsigned long high)
{
    char *end = NULL;
    unsigned long number = strtoul(value, &end, 10);
    if (end == value || *end != '\0' || value[0] == '-' || number < low) {
        warn(importer, item, "server %s: cannot read %s=%s; not carried over", item->args[0], name, value);
        return;
    }
    if (number > high) {
        warn(importer, item, "server %s: %s=%s is more than snisplice takes; written as %s=%lu", item->args[0],
             name, value, name, high);
        number = high;
    }
    text_printf(ini, " %s=%lu", name, number);
}

static void write_upstream(struct importer *importer, struct text *ini, struct import_upstream *upstream)
{
    if (upstream->literal) {
        if (!upstream->proxy_protocol)
            return; /* written inline as a literal target */
        text_printf(ini, "[upstream %s]\nserver = %s\nproxy_protocol = v1\n\n", upstream->ini_name,
                    upstream->address);
        return;
    }
    const struct nginx_directive *directive = upstream->directive;
    text_printf(ini, "[upstream %s]\n", upstream->ini_name);
    size_t servers = 0;
    for (size_t i = 0; i < directive->block->count; i++) {
        const struct nginx_directive *item = &directive->block->items[i];
        if (strcmp(item->name, "server") != 0 || item->arg_count < 1) {
            warn(importer, item, "upstream %s: %s not carried over (snisplice balances by weighted round robin)",
                 upstream->name, item->name);
            continue;
        }
        char address[ADDRESS_TEXT_MAX], why[160];
        if (!convert_address(item->args[0], false, address, sizeof address, why, sizeof why)) {
            warn(importer, item, "server %s: %s; skipped", item->args[0], why);
            continue;
        }
        text_printf(ini, "server = %s", address);
        for (size_t j = 1; j < item->arg_count; j++) {
            const char *flag = item->args[j];
            if (strcmp(flag, "backup") == 0 || strcmp(flag, "down") == 0) {
                text_printf(ini, " %s", flag);
            } else if (strncmp(flag, "weight=", 7) == 0) {
                write_bounded(importer, ini, item, "weight", flag + 7, 1, UPSTREAM_WEIGHT_MAX);
            } else if (strncmp(flag, "max_fails=", 10) == 0) {
                write_bounded(importer, ini, item, "max_fails", flag + 10, 0, 1000);
            } else if (strcmp(flag, "fail_timeout=0") == 0 || strcmp(flag, "fail_timeout=0s") == 0) {
                /* nginx rests such a server until the clock's next second. */
                warn(importer, item, "server %s: %s rests a server for under a second in nginx; written as "
                     "fail_timeout=1s", item->args[0], flag);
                text_printf(ini, " fail_timeout=1s");
            } else if (strncmp(flag, "fail_timeout=", 13) == 0) {
                char value[32];
                if (convert_duration(flag + 13, value, sizeof value))
                    text_printf(ini, " fail_timeout=%s", value);
                else
                    warn(importer, item, "server %s: cannot read %s; not carried over", item->args[0], flag);
            } else {
                warn(importer, item, "server %s: parameter %s not carried over", item->args[0], flag);
            }
        }
        text_printf(ini, "\n");
        servers++;
    }
    if (servers == 0)
        warn(importer, directive, "upstream %s has no server snisplice can use", upstream->name);
    if (upstream->proxy_protocol) {
        text_printf(ini, "proxy_protocol = v1\n");
        if (upstream->plain)
            warn(importer, directive,
                 "upstream %s is reached from servers with and without proxy_protocol on; it now gets the "
                 "PROXY header from all of them", upstream->name);
    }
    text_printf(ini, "\n");
}

static void write_ini(struct importer *importer, struct text *ini)
{
    text_printf(ini, "; snisplice configuration converted from %s by snisplice --import-nginx.\n"
                     "; Check it with: snisplice -t -c FILE\n\n", importer->source);
    bool any_global = importer->workers || importer->user || importer->access_log;
    for (size_t i = 0; i < 3; i++)
        any_global |= importer->timeouts[i].value[0] != '\0';
    if (any_global) {
        text_printf(ini, "[global]\n");
        if (importer->workers)
            text_printf(ini, "workers = %s\n", importer->workers);
        if (importer->user)
            text_printf(ini, "user = %s\n", importer->user);
        if (importer->access_log)
            text_printf(ini, "access_log = %s\n", importer->access_log->args[0]);
        for (size_t i = 0; i < 3; i++)
            if (importer->timeouts[i].value[0])
                text_printf(ini, "%s = %s\n", importer->timeouts[i].ini_name, importer->timeouts[i].value);
        text_printf(ini, "\n");
    }

    size_t listeners = 0;
    const struct import_server *only = NULL;
    for (size_t i = 0; i < importer->server_count; i++) {
        if (importer->servers[i].listen_count) {
            listeners++;
            only = &importer->servers[i];
        }
    }
    bool unnamed = listeners == 1 && only->map;
    for (size_t i = 0; i < importer->server_count; i++)
        if (importer->servers[i].listen_count)
            write_listener(importer, ini, &importer->servers[i], unnamed);

    for (size_t i = 0; i < importer->map_count; i++) {
        struct import_map *map = &importer->maps[i];
        if (!becomes_routes(map))
            continue;
        if (!map->used) {
            if (!map->chained)
                warn(importer, map->directive, "map $%s is used by no server's proxy_pass; not converted",
                     map->variable);
            continue;
        }
        if (map->proxy_protocol && map->plain)
            warn(importer, map->directive,
                 "map $%s is used by servers with and without proxy_protocol on; snisplice has one routes "
                 "table for it, so every upstream it names now gets the PROXY header from all of them",
                 map->variable);
        text_printf(ini, unnamed ? "[routes]\n" : "[routes %s]\n", map->table);
        /* A protocol map continues with an ALPN map, which continues with
         * a server-name map: one table. */
        for (struct import_map *part = map; part; part = part->names)
            walk_map(importer, part, true, write_route, ini);
        text_printf(ini, "\n");
    }
    for (size_t i = 0; i < importer->upstream_count; i++)
        write_upstream(importer, ini, importer->upstreams[i]);
}

bool nginx_import_tree(const struct nginx_tree *tree, const char *source, struct nginx_import *out)
{
    memset(out, 0, sizeof *out);
    struct importer importer = { .out = out, .source = source };
    importer.timeouts[0] = (struct import_timeout){ "proxy_connect_timeout", "connect_timeout", "", NULL, 0 };
    importer.timeouts[1] = (struct import_timeout){ "proxy_timeout", "idle_timeout", "", NULL, 0 };
    importer.timeouts[2] = (struct import_timeout){ "preread_timeout", "preread_timeout", "", NULL, 0 };
    collect_main(&importer, &tree->root);
    /* Only now is the stream level complete: a rule after the last server
     * still applies to it in nginx. */
    check_access(&importer, &importer.stream_access);
    /* And every zone is known: a limit_conn may come before its zone. */
    check_limits(&importer, &importer.stream_limits);
    for (size_t i = 0; i < importer.server_count; i++)
        check_limits(&importer, &importer.servers[i].limits);
    /* Servers first, so maps know whether they feed a proxy_protocol server;
     * then the maps' targets learn it. */
    for (size_t i = 0; i < importer.server_count; i++) {
        resolve_server(&importer, &importer.servers[i]);
        resolve_client_limit(&importer, &importer.servers[i]);
    }
    warn_counting_scope(&importer);
    /* Protocol maps first: an ALPN map they continue chains in turn. */
    for (size_t i = 0; i < importer.map_count; i++)
        resolve_protocol_map(&importer, &importer.maps[i]);
    for (size_t i = 0; i < importer.map_count; i++)
        chain_names(&importer, &importer.maps[i]);
    for (size_t i = 0; i < importer.map_count; i++)
        if (importer.maps[i].used || importer.maps[i].chained)
            walk_map(&importer, &importer.maps[i], false, mark_entry, NULL);
    name_upstreams(&importer);
    name_listeners(&importer);
    struct text ini = {0};
    write_ini(&importer, &ini);
    bool any_listener = false;
    for (size_t i = 0; i < importer.server_count; i++)
        any_listener |= importer.servers[i].listen_count > 0;
    if (!any_listener && tree->root.count > 0)
        warn(&importer, &tree->root.items[0], "no stream server could be converted: the result has no listener");

    for (size_t i = 0; i < importer.server_count; i++) {
        struct import_server *server = &importer.servers[i];
        free(server->listens);
        for (size_t j = 0; j < server->trusted_count; j++)
            free(server->trusted[j]);
        free(server->trusted);
        free(server->access.rules);
        free(server->limits.lines);
    }
    free(importer.stream_access.rules);
    free(importer.stream_limits.lines);
    free(importer.zones);
    for (size_t i = 0; i < importer.stream_trusted_count; i++)
        free(importer.stream_trusted[i]);
    free(importer.stream_trusted);
    for (size_t i = 0; i < importer.upstream_count; i++) {
        if (importer.upstreams[i]->literal) {
            free(importer.upstreams[i]->address);
            free((char *)importer.upstreams[i]->name);
        }
        free(importer.upstreams[i]);
    }
    free(importer.upstreams);
    name_index_free(&importer.upstream_names);
    name_index_free(&importer.literal_addresses);
    for (size_t i = 0; i < importer.map_count; i++)
        free(importer.maps[i].port_host);
    free(importer.maps);
    free(importer.servers);
    out->ini = ini.data;
    if (ini.failed || importer.failed || !out->ini) {
        nginx_import_free(out);
        return false;
    }
    return true;
}

bool nginx_import_file(const char *path, struct nginx_import *out, char *error, size_t error_size)
{
    memset(out, 0, sizeof *out);
    struct nginx_tree tree;
    if (!nginx_parse_file(&tree, path, error, error_size)) {
        nginx_tree_free(&tree);
        return false;
    }
    bool ok = nginx_import_tree(&tree, path, out);
    nginx_tree_free(&tree);
    if (!ok)
        snprintf(error, error_size, "%s: out of memory", path);
    return ok;
}

void nginx_import_free(struct nginx_import *out)
{
    free(out->ini);
    for (size_t i = 0; i < out->warning_count; i++)
        free(out->warnings[i]);
    free(out->warnings);
    memset(out, 0, sizeof *out);
}
