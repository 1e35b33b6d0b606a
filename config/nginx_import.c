/*
 * nginx_import.c - nginx stream configuration to snisplice INI (see
 * nginx_import.h).
 *
 * Two passes: first collect every stream block's maps, upstreams, servers,
 * allow/deny rules, limit_conn zones and limits, and the settings (the
 * timeouts per level, stream block or server; preread_max; several stream
 * blocks and included files merge, as in nginx); then decide names and
 * write the INI. Every directive is either converted or reported: the
 * `import_warn` calls, here and in the files below, are the list of what
 * snisplice does not do, and nginx_import_notes.c says why for the
 * directives nginx documents.
 *
 * Naming: a single routed server becomes `[listen]` with `[routes]`, as a
 * hand-written config would; with several servers each becomes
 * `[listen portN]`, and each map `$x` becomes `[routes x]`.
 *
 * Maps: a map on $ssl_preread_server_name gives its entries as they are; a
 * map on $ssl_preread_alpn_protocols gives `alpn PROTOCOL` routes; a map on
 * $ssl_preread_protocol is evaluated for "" and each TLS version and gives
 * `not_tls` and `default` (snisplice tells only those two kinds of client
 * apart). A protocol map's TLS target, an ALPN map's default or a
 * server-name map's default that names another such map continues the
 * same table with that map's entries, as nginx's `default $name;` chains
 * them.
 *
 * Here: the driver, the value forms, and the collect / resolve / write
 * passes for listens, maps, upstreams (with their load-balancing method)
 * and servers. Elsewhere:
 * nginx_import_access.c (allow / deny, limit_conn), nginx_import_protocol.c
 * (evaluating a map on $ssl_preread_protocol), nginx_import_notes.c (the
 * reason each left-out directive gets), nginx_import_model.h (what the
 * passes collect).
 */
#include "nginx_import.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/address.h"
#include "config.h"
#include "../core/hostname.h"
#include "../core/route_regex.h"
#include "../core/route_table.h"
#include "../core/snapshot.h"
#include "../core/upstream.h"
#include "../core/upstream_source.h"
#include "name_index.h"
#include "nginx_import_model.h"
#include "tcp_keepalive.h"
#include "units.h"

/* ---- growing text ---- */

void import_text_printf(struct text *text, const char *format, ...)
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

/* ---- warnings and arrays ---- */

void import_warn(struct importer *importer, const struct nginx_directive *at, const char *format, ...)
{
    if (importer->quiet)
        return;
    struct text line = {0};
    import_text_printf(&line, "%s:%d: warning: ", at->file, at->line);
    va_list args;
    va_start(args, format);
    char message[1024];
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    import_text_printf(&line, "%s", message);
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
void *import_grow(struct importer *importer, void *array, size_t count, size_t size)
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
    char **grown = import_grow(importer, *list, *count, sizeof **list);
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

/* One unit of an nginx time, largest first: nginx takes each part of a
 * combined time ("1h30m", "1m 30s") in this order, each unit once. */
struct time_unit {
    const char *suffix;
    unsigned long long ms;
};

static const struct time_unit time_units[] = {
    { "y", 365ULL * 86400000 }, { "M", 30ULL * 86400000 }, { "w", 7ULL * 86400000 },
    { "d", 86400000 },          { "h", 3600000 },          { "m", 60000 },
    { "s", 1000 },              { "ms", 1 },
};
#define TIME_UNIT_COUNT (sizeof time_units / sizeof time_units[0])
#define TIME_MS_LIMIT 1000000000000000ULL /* far past the INI's 30 days */

/* The unit `text` starts with at or after index `from` (its place in
 * time_units), or TIME_UNIT_COUNT: "ms" is tried before "m". */
static size_t time_unit_at(const char *text, size_t from, size_t *length)
{
    for (size_t i = TIME_UNIT_COUNT; i-- > from;) {
        size_t n = strlen(time_units[i].suffix);
        if (strncmp(text, time_units[i].suffix, n) == 0 && (n == 2 || text[1] != 's')) {
            *length = n;
            return i;
        }
    }
    return TIME_UNIT_COUNT;
}

/* nginx time ("500ms", "5s", "1h30m", "1m 30s", "2d", "1w", a bare number
 * = seconds, last) to the INI's one-unit form, in the largest unit that
 * keeps it exact. False if nginx would not read it either, or it is 0. */
static bool convert_duration(const char *nginx, char *out, size_t out_size)
{
    unsigned long long total_ms = 0;
    size_t next_unit = 0;
    const char *cursor = nginx;
    while (*cursor) {
        char *end = NULL;
        if (*cursor < '0' || *cursor > '9')
            return false;
        unsigned long long number = strtoull(cursor, &end, 10);
        size_t length = 0, unit = *end ? time_unit_at(end, next_unit, &length) : TIME_UNIT_COUNT;
        bool bare = *end == '\0';
        if ((!bare && unit == TIME_UNIT_COUNT) || number > TIME_MS_LIMIT / (bare ? 1000 : time_units[unit].ms))
            return false;
        total_ms += number * (bare ? 1000 : time_units[unit].ms);
        if (total_ms > TIME_MS_LIMIT)
            return false;
        if (bare)
            break;
        next_unit = unit + 1;
        cursor = end + length;
        while (*cursor == ' ')
            cursor++;
    }
    if (total_ms == 0)
        return false;
    unsigned long long seconds = total_ms / 1000;
    if (total_ms % 1000 != 0) snprintf(out, out_size, "%llums", total_ms);
    else if (seconds % 3600 == 0) snprintf(out, out_size, "%lluh", seconds / 3600);
    else if (seconds % 60 == 0) snprintf(out, out_size, "%llum", seconds / 60);
    else snprintf(out, out_size, "%llus", seconds);
    return true;
}

/* One part of so_keepalive's IDLE:INTERVAL:COUNT: a time in the INI's
 * form (as given when it cannot be read, so that the check after names
 * it), a count as given, or empty. */
static void convert_keepalive_part(const char *part, bool time, char *out, size_t out_size)
{
    if (!time || part[0] == '\0' || !convert_duration(part, out, out_size))
        snprintf(out, out_size, "%s", part);
}

/* listen's so_keepalive=on|off|IDLE:INTERVAL:COUNT as the INI's
 * tcp_keepalive value; false, with why, when the INI cannot take it. */
static bool convert_keepalive(const char *nginx, char *out, size_t out_size, char *why, size_t why_size)
{
    char parts[3][TCP_KEEPALIVE_PART_MAX];
    if (!strchr(nginx, ':')) {
        snprintf(out, out_size, "%s", nginx); /* on, off, or refused below */
    } else if (!tcp_keepalive_split(nginx, parts)) {
        snprintf(why, why_size, "'%s' is not IDLE:INTERVAL:COUNT, or has a part too long to be a time or a count",
                 nginx);
        return false;
    } else {
        char idle[TCP_KEEPALIVE_PART_MAX], interval[TCP_KEEPALIVE_PART_MAX];
        convert_keepalive_part(parts[0], true, idle, sizeof idle);
        convert_keepalive_part(parts[1], true, interval, sizeof interval);
        snprintf(out, out_size, "%s:%s:%s", idle, interval, parts[2]);
    }
    struct tcp_keepalive keepalive;
    return tcp_keepalive_parse(out, &keepalive, why, why_size);
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
        int written = snprintf(out, out_size, "%s:%u", host, port);
        if (written > 0 && (size_t)written < out_size)
            return true;
        snprintf(why, why_size, "address too long");
        return false;
    }
    snprintf(why, why_size, "%s", error);
    return false;
}

/* PCRE's named classes that have a spelling without ':', which the INI
 * would take for the end of the key. */
static const struct {
    const char *name;
    const char *spelling;
} posix_classes[] = {
    { "[:digit:]", "0-9" },       { "[:alpha:]", "A-Za-z" }, { "[:alnum:]", "A-Za-z0-9" },
    { "[:lower:]", "a-z" },       { "[:upper:]", "A-Z" },    { "[:xdigit:]", "0-9A-Fa-f" },
    { "[:space:]", "\\s" },       { "[:word:]", "\\w" },
};

/* How much of a bracket expression's start `at` ("[", "[^", and a ']'
 * right after them, which is a member, not the end) is taken as it is. */
static size_t class_opening(const char *at)
{
    size_t length = at[1] == '^' ? 2 : 1;
    return at[length] == ']' ? length + 1 : length;
}

/* The named class at `at` ("[:digit:]" inside brackets) spelled without
 * ':', appended to `out`; *taken: its length. False, with why, for a
 * class that has no such spelling. */
static bool spell_posix_class(const char *at, size_t *taken, char *out, size_t *length, size_t out_size, char *why,
                              size_t why_size)
{
    /* PCRE's shape: "[:", maybe '^' (negated), letters, ":]"; anything
     * else is a '[' member. */
    size_t letters = strspn(at + 2 + (at[2] == '^'), "abcdefghijklmnopqrstuvwxyz");
    const char *end = at + 2 + (at[2] == '^') + letters;
    if (letters == 0 || strncmp(end, ":]", 2) != 0) {
        *taken = 1;
        out[(*length)++] = *at;
        return true;
    }
    *taken = (size_t)(end + 2 - at);
    for (size_t i = 0; i < sizeof posix_classes / sizeof posix_classes[0]; i++) {
        size_t spelling = strlen(posix_classes[i].spelling);
        if (strlen(posix_classes[i].name) != *taken || strncmp(at, posix_classes[i].name, *taken) != 0)
            continue;
        if (*length + spelling + 1 > out_size) {
            snprintf(why, why_size, "expression too long");
            return false;
        }
        memcpy(out + *length, posix_classes[i].spelling, spelling);
        *length += spelling;
        return true;
    }
    snprintf(why, why_size, "an INI key cannot hold ':', and the POSIX class %.*s has no spelling without one",
             (int)*taken, at);
    return false;
}

/* nginx's (PCRE's) named classes inside brackets, `[[:digit:]]`, spelled
 * without their ':' where PCRE has another spelling (`[0-9]`). */
static bool spell_posix_classes(const char *nginx, char *out, size_t out_size, char *why, size_t why_size)
{
    size_t length = 0;
    bool in_class = false;
    for (const char *in = nginx; *in;) {
        size_t taken = in[0] == '\\' && in[1] ? 2 : !in_class && in[0] == '[' ? class_opening(in) : 1;
        if (length + taken + 1 > out_size) {
            snprintf(why, why_size, "expression too long");
            return false;
        }
        if (in_class && strncmp(in, "[:", 2) == 0) {
            if (!spell_posix_class(in, &taken, out, &length, out_size, why, why_size))
                return false;
            in += taken;
            continue;
        }
        if (!in_class && in[0] == '[')
            in_class = true;
        else if (in_class && in[0] == ']')
            in_class = false;
        memcpy(out + length, in, taken);
        length += taken;
        in += taken;
    }
    out[length] = '\0';
    return true;
}

/* A map's regular expression as an INI [routes] key. "(?:" becomes "("
 * (the same for matching; the INI would end the key at its ':'), named
 * classes are spelled without ':' where they can be, and the result must
 * be one snisplice compiles (route_regex.c). */
static bool convert_regex(const char *nginx, char *out, size_t out_size, char *why, size_t why_size)
{
    char spelled[ROUTE_REGEX_TEXT_MAX];
    if (!spell_posix_classes(nginx, spelled, sizeof spelled, why, why_size))
        return false;
    size_t length = 0;
    for (const char *in = spelled; *in; in++) {
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

/* Where an ALPN key's expression was held to the protocol it names: not
 * at all, at a word boundary (\b), or at the edge of the client's whole
 * list (^ or $). */
enum alpn_bound { ALPN_BOUND_NONE, ALPN_BOUND_WORD, ALPN_BOUND_EDGE };

/* The form of a key of a map on $ssl_preread_alpn_protocols. */
struct alpn_form {
    bool exact;              /* a plain key: nginx compared the whole list with it */
    bool caseless;           /* ~*: in any letter case */
    enum alpn_bound start, end;
};

/* A key of a map on $ssl_preread_alpn_protocols (the client's protocols,
 * comma-joined) as "alpn PROTOCOL": the regular expressions nginx recipes
 * use for one protocol (~\bacme-tls/1\b, ~^acme-tls/1$, ~acme-tls/1), or a
 * plain key; `form` says which, for warn_alpn_form. */
static bool convert_alpn_key(const char *key, char *out, size_t out_size, struct alpn_form *form, char *why,
                             size_t why_size)
{
    const char *in = key;
    *form = (struct alpn_form){ .exact = key[0] != '~' };
    if (!form->exact) {
        form->caseless = key[1] == '*';
        in += form->caseless ? 2 : 1;
        if (strncmp(in, "\\b", 2) == 0 || in[0] == '^') {
            form->start = in[0] == '^' ? ALPN_BOUND_EDGE : ALPN_BOUND_WORD;
            in += in[0] == '^' ? 1 : 2;
        }
    }
    size_t length = (size_t)snprintf(out, out_size, "alpn ");
    for (; *in; in++) {
        if (!form->exact && (strcmp(in, "\\b") == 0 || strcmp(in, "$") == 0)) {
            form->end = in[0] == '$' ? ALPN_BOUND_EDGE : ALPN_BOUND_WORD;
            break;
        }
        char c = *in;
        bool escaped = !form->exact && c == '\\' && in[1] && strchr("./-", in[1]);
        if (escaped)
            c = *++in;
        bool protocol_byte = form->exact ? c > ' ' && c <= '~' && c != ',' :
                                           escaped || isalnum((unsigned char)c) || strchr("-_./", c);
        if (!protocol_byte || length + 2 > out_size) {
            snprintf(why, why_size, "not one ALPN protocol (snisplice routes on one offered protocol)");
            return false;
        }
        /* nginx lower-cases a plain key, and the list it looks up. */
        out[length++] = form->exact ? (char)tolower((unsigned char)c) : c;
    }
    out[length] = '\0';
    if (length == 5) {
        snprintf(why, why_size, "no protocol in it");
        return false;
    }
    return true;
}

/* Which clients an ALPN expression matched, where that is not "every
 * client that offers PROTOCOL": nginx matched it against the whole list
 * ("h2,http/1.1"), so anchors narrowed it to a place in the list and a
 * missing \b widened it to longer protocols. NULL for ~\bPROTOCOL\b, the
 * one form that means "offers PROTOCOL". */
static const char *alpn_bound_difference(enum alpn_bound start, enum alpn_bound end)
{
    static const char *const differences[3][3] = {
        [ALPN_BOUND_NONE] = {
            [ALPN_BOUND_NONE] = "unanchored, it also matched every offered protocol that contains %s%s",
            [ALPN_BOUND_WORD] = "it also matched every offered protocol that ends with %s%s",
            [ALPN_BOUND_EDGE] = "it matched only clients whose last offered protocol ended with %s%s" },
        [ALPN_BOUND_WORD] = {
            [ALPN_BOUND_NONE] = "it also matched every offered protocol that begins with %s%s",
            [ALPN_BOUND_WORD] = NULL,
            [ALPN_BOUND_EDGE] = "it matched only clients that offered %s last%s" },
        [ALPN_BOUND_EDGE] = {
            [ALPN_BOUND_NONE] = "it matched only clients whose first offered protocol began with %s%s",
            [ALPN_BOUND_WORD] = "it matched only clients that offered %s first%s",
            [ALPN_BOUND_EDGE] = "it matched only clients that offered %s alone%s" },
    };
    return differences[start][end];
}

/* Says how nginx's match of an ALPN key differed from the "alpn
 * PROTOCOL" route it becomes (snisplice routes every client that offers
 * the protocol, compared exactly); nothing for ~\bPROTOCOL\b. */
static void warn_alpn_form(struct importer *importer, const struct nginx_directive *entry,
                           const struct alpn_form *form, const char *protocol)
{
    if (form->exact) {
        import_warn(importer, entry, "map entry '%s': nginx compared the client's whole protocol list with it; "
                                     "snisplice routes every client that offers %s", entry->name, protocol);
        return;
    }
    const char *difference = alpn_bound_difference(form->start, form->end);
    if (!difference && !form->caseless)
        return;
    /* h2 is the common case, and h2c (HTTP/2 without TLS) the protocol
     * an unanchored end takes in with it. */
    bool widened = form->end == ALPN_BOUND_NONE && form->start != ALPN_BOUND_EDGE;
    const char *example = widened && strcmp(protocol, "h2") == 0 ? " (h2c too)" : "";
    char said[ROUTE_REGEX_TEXT_MAX + 128];
    snprintf(said, sizeof said, difference ? difference : "it matched %s in any letter case (~*)%s", protocol,
             example);
    import_warn(importer, entry, "map entry '%s': nginx matched the client's whole protocol list (such as "
                                 "\"h2,http/1.1\") against it: %s%s; snisplice routes every client that offers %s",
                entry->name, said, difference && form->caseless ? ", in any letter case (~*)" : "", protocol);
}

/* A map key nginx takes as a wildcard under `hostnames`: "*.example.com",
 * ".example.org", "www.example.*". */
bool import_is_wildcard(const char *key)
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

bool import_variable_name(const char *word, const char **name, size_t *length)
{
    if (word[0] != '$')
        return false;
    *name = word + 1;
    *length = strlen(*name);
    if (**name == '{') {
        /* The lexer keeps `${...}` in one word; as a whole word it must end
         * at its brace. */
        (*name)++;
        if (*length < 3 || (*name)[*length - 2] != '}' || memchr(*name, '}', *length - 2))
            return false;
        *length -= 2;
    }
    return *length > 0;
}

bool import_variable_is(const char *word, const char *name)
{
    const char *found;
    size_t length;
    return import_variable_name(word, &found, &length) && strlen(name) == length &&
           memcmp(found, name, length) == 0;
}

bool import_map_entry(struct importer *importer, const struct nginx_directive *entry, bool *hostnames)
{
    /* nginx: a flag stands alone on its line; with a value it is a key. */
    bool alone = entry->arg_count == 0 && !entry->block;
    if (alone && strcmp(entry->name, "hostnames") == 0) {
        *hostnames = true;
        return false;
    }
    if (alone && strcmp(entry->name, "volatile") == 0)
        return false;
    if (entry->block || entry->arg_count != 1) {
        import_warn(importer, entry, "map entry '%s': expected 'key value;'; skipped", entry->name);
        return false;
    }
    return true;
}

struct import_map *import_find_map(struct importer *importer, const char *reference)
{
    const char *name;
    size_t length;
    if (!import_variable_name(reference, &name, &length))
        return NULL;
    for (size_t i = 0; i < importer->map_count; i++)
        if (strlen(importer->maps[i].variable) == length && memcmp(importer->maps[i].variable, name, length) == 0)
            return &importer->maps[i];
    return NULL;
}

/* `name` in lower case, allocated; NULL (said) when out of memory. */
static char *fold_name(struct importer *importer, const char *name)
{
    char *folded = strdup(name);
    if (!folded) {
        importer->failed = true;
        return NULL;
    }
    for (char *c = folded; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return folded;
}

/* nginx compares upstream names without case (ngx_stream_upstream_add,
 * ngx_strncasecmp): `upstream Backend` is what `proxy_pass backend` and a
 * map value BACKEND name. */
static struct import_upstream *find_upstream(struct importer *importer, const char *name)
{
    char *folded = fold_name(importer, name);
    int32_t found = folded ? name_index_get(&importer->upstream_names, folded) : NAME_INDEX_NONE;
    free(folded);
    return found == NAME_INDEX_NONE ? NULL : importer->upstreams[found];
}

static struct import_upstream *add_upstream(struct importer *importer)
{
    struct import_upstream **grown = import_grow(importer, importer->upstreams, importer->upstream_count,
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
 * made-up upstream that only matters if it needs proxy_protocol or
 * tcp_keepalive). */
static struct import_upstream *resolve_target(struct importer *importer,
                                              const struct nginx_directive *at, const char *target)
{
    struct import_upstream *upstream = find_upstream(importer, target);
    if (upstream)
        return upstream;
    if (target[0] == '$' && import_find_map(importer, target)) {
        import_warn(importer, at, "target %s: a variable chained from another map is not supported; entry skipped",
                    target);
        return NULL;
    }
    if (strchr(target, '$')) {
        /* `$ssl_preread_server_name:443`: nginx forwarded to whatever the
         * client asked for, resolved per connection (an open SNI proxy). */
        import_warn(importer, at, "target %s: an address made of variables, found per connection, is not supported "
                    "(snisplice forwards only to the targets its configuration names); entry skipped", target);
        return NULL;
    }
    if (target[0] == '\0') {
        import_warn(importer, at, "target \"\": nginx closed these connections; snisplice has no route to nothing, "
                                  "so the entry is skipped and the name takes the default route, if there is one");
        return NULL;
    }
    char address[ADDRESS_TEXT_MAX], why[160];
    bool looks_like_address = strchr(target, ':') != NULL || strspn(target, "0123456789.") == strlen(target);
    if (!looks_like_address || !convert_address(target, false, address, sizeof address, why, sizeof why)) {
        import_warn(importer, at, "target '%s' is neither an upstream nor an address or host name with a port%s%s; "
                    "entry skipped", target, looks_like_address ? ": " : "", looks_like_address ? why : "");
        return NULL;
    }
    return literal_upstream(importer, address);
}

/* ---- pass 1: collect ---- */

/* nginx's preread_buffer_size is snisplice's preread_max: both close a
 * client whose hello does not fit (nginx: "preread buffer full"), and both
 * default to 16k. The INI takes 1k to 64k (workers size a buffer for the
 * ceiling): a value outside becomes the nearer bound, and `clamped` says so. */
static bool convert_preread_size(struct importer *importer, const struct nginx_directive *directive, char *out,
                                 size_t out_size, bool *clamped)
{
    uint64_t bytes;
    if (directive->arg_count != 1 || !units_parse_size(directive->args[0], &bytes)) {
        import_warn(importer, directive, "%s: cannot read the size '%s'; not carried over", directive->name,
                    directive->arg_count ? directive->args[0] : "");
        return false;
    }
    uint64_t kept = bytes;
    if (kept < PREREAD_MAX_FLOOR)
        kept = PREREAD_MAX_FLOOR;
    if (kept > PREREAD_MAX_CEILING)
        kept = PREREAD_MAX_CEILING;
    if (kept % 1024 == 0)
        snprintf(out, out_size, "%lluk", (unsigned long long)(kept / 1024));
    else
        snprintf(out, out_size, "%llu", (unsigned long long)kept);
    *clamped = kept != bytes;
    return true;
}

/* The setting's value in the INI's form into out; for a time also in
 * milliseconds (*time_ms, clamped as written), which comparisons use. */
static bool convert_setting(struct importer *importer, const struct nginx_directive *directive,
                            const struct import_setting *setting, char *out, size_t out_size, bool *clamped,
                            uint64_t *time_ms)
{
    *clamped = false;
    if (setting->size)
        return convert_preread_size(importer, directive, out, out_size, clamped);
    uint64_t ms;
    if (directive->arg_count != 1 || !convert_duration(directive->args[0], out, out_size) ||
        !units_parse_duration(out, &ms)) {
        import_warn(importer, directive, "%s: cannot read the time '%s'; not carried over", directive->name,
                    directive->arg_count ? directive->args[0] : "");
        return false;
    }
    if (ms > CONFIG_TIMEOUT_MAX_MS) {
        snprintf(out, out_size, "30d");
        import_warn(importer, directive, "%s %s: snisplice's %s goes up to 30 days; written as %s = 30d",
                    directive->name, directive->args[0], setting->ini_name, setting->ini_name);
        ms = CONFIG_TIMEOUT_MAX_MS;
    }
    *time_ms = ms;
    return true;
}

/* preread_buffer_size, at any level: snisplice has one preread_max. */
static void collect_global_setting(struct importer *importer, const struct nginx_directive *directive,
                                   struct import_setting *setting)
{
    char value[32];
    bool clamped;
    uint64_t unused_ms;
    if (!convert_setting(importer, directive, setting, value, sizeof value, &clamped, &unused_ms))
        return;
    struct import_value *kept = &setting->global;
    if (kept->text[0] && strcmp(kept->text, value) != 0) {
        import_warn(importer, directive,
                    "%s %s: snisplice has one %s for every listener; keeping %s from %s:%d",
                    directive->name, directive->args[0], setting->ini_name, kept->text, kept->at->file,
                    kept->at->line);
        return;
    }
    /* Said only for the value written: a clamped one that loses to an
     * earlier value gets the warning above instead. */
    if (clamped)
        import_warn(importer, directive, "%s %s: snisplice's %s takes 1k to 64k; written as %s = %s",
                    directive->name, directive->args[0], setting->ini_name, setting->ini_name, value);
    snprintf(kept->text, sizeof kept->text, "%s", value);
    kept->at = directive;
}

/* A timeout at one level, the stream block (`level` is the setting's
 * [global] value) or a server (its own). nginx refuses a second one at the
 * same level ("is duplicate"): the first is kept, as for the other
 * directives nginx would refuse. */
static void collect_timeout(struct importer *importer, const struct nginx_directive *directive,
                            const struct import_setting *setting, struct import_value *level, const char *where)
{
    char value[32];
    bool clamped;
    uint64_t ms;
    if (!convert_setting(importer, directive, setting, value, sizeof value, &clamped, &ms))
        return;
    if (!level->text[0]) {
        snprintf(level->text, sizeof level->text, "%s", value);
        level->ms = ms;
        level->at = directive;
        return;
    }
    if (level->ms != ms)
        import_warn(importer, directive,
                    "%s %s: a second %s %s (nginx refuses this configuration); keeping %s = %s from %s:%d",
                    directive->name, directive->args[0], directive->name, where, setting->ini_name, level->text,
                    level->at->file, level->at->line);
}

/* One of the settings' directives, in the stream block (`server` NULL) or
 * in a server. False: not one of them. */
static bool collect_setting_directive(struct importer *importer, const struct nginx_directive *directive,
                                      struct import_server *server)
{
    for (size_t i = 0; i < IMPORT_SETTING_COUNT; i++) {
        struct import_setting *setting = &importer->settings[i];
        if (strcmp(directive->name, setting->nginx_name) != 0)
            continue;
        if (setting->size)
            collect_global_setting(importer, directive, setting);
        else if (server)
            collect_timeout(importer, directive, setting, &server->own[i], "in this server");
        else
            collect_timeout(importer, directive, setting, &setting->global, "in the stream block");
        return true;
    }
    return false;
}

/* What a proxy_bind left out changes, at the level `server` (NULL: the
 * stream block). */
static const char *bind_left_out(const struct import_server *server)
{
    return server ? "not carried over; this listener connects from [global]'s source, or from the address the "
                    "system picks without one"
                  : "not carried over; snisplice connects from the address the system picks";
}

/* $remote_addr, braced or not; with `port`, $remote_addr:$remote_port. */
static bool is_client_bind(const char *value, bool port)
{
    if (!port)
        return import_variable_is(value, "remote_addr");
    const char *colon = strchr(value, ':');
    char address[sizeof "${remote_addr}"];
    size_t length = colon ? (size_t)(colon - value) : 0;
    if (!colon || length >= sizeof address)
        return false;
    memcpy(address, value, length);
    address[length] = '\0';
    return import_variable_is(address, "remote_addr") && import_variable_is(colon + 1, "remote_port");
}

/* proxy_bind ADDRESS [transparent] | $remote_addr transparent | off, as
 * the INI's source; false (said) when the INI cannot take it. */
static bool convert_bind(struct importer *importer, const struct nginx_directive *item,
                         const struct import_server *server, char *out, size_t out_size)
{
    bool transparent = item->arg_count == 2 && strcmp(item->args[1], "transparent") == 0;
    if (item->arg_count < 1 || item->arg_count > 2 || (item->arg_count == 2 && !transparent)) {
        import_warn(importer, item, "proxy_bind: expected ADDRESS [transparent] or off; %s", bind_left_out(server));
        return false;
    }
    const char *value = item->args[0];
    if (strcmp(value, "off") == 0) {
        snprintf(out, out_size, "none");
        return true;
    }
    bool with_port = is_client_bind(value, true);
    if (with_port || is_client_bind(value, false)) {
        if (with_port)
            import_warn(importer, item, "proxy_bind %s: the client's port is not kept; snisplice binds the client's "
                                        "address (source = client) and the kernel picks the port", value);
        if (!transparent)
            import_warn(importer, item, "proxy_bind %s without transparent: converted as source = client, which "
                                        "sets IP_TRANSPARENT and needs CAP_NET_RAW", value);
        snprintf(out, out_size, "client");
        return true;
    }
    if (strchr(value, '$')) {
        import_warn(importer, item, "proxy_bind %s: snisplice binds only a fixed address or the client's "
                                    "($remote_addr transparent); %s", value, bind_left_out(server));
        return false;
    }
    if (upstream_source_has_port(value)) {
        import_warn(importer, item, "proxy_bind %s: snisplice binds an address without a port (the kernel picks "
                                    "each connection's); %s", value, bind_left_out(server));
        return false;
    }
    struct upstream_source source;
    char why[200];
    bool parsed = upstream_source_parse(value, &source, why, sizeof why);
    if (!parsed || source.kind != UPSTREAM_SOURCE_ADDRESS) {
        import_warn(importer, item, "proxy_bind %s: not an IPv4 or IPv6 address; %s", value, bind_left_out(server));
        return false;
    }
    if (transparent)
        import_warn(importer, item, "proxy_bind %s transparent: snisplice binds a fixed source without "
                                    "IP_TRANSPARENT, so it must be an address of this host", value);
    snprintf(out, out_size, "%s", value);
    return true;
}

/* proxy_bind in the stream block (`server` NULL) or a server. nginx
 * refuses a second one in a block ("is duplicate"): the first is kept. */
static void collect_bind(struct importer *importer, const struct nginx_directive *item, struct import_server *server)
{
    struct import_bind *level = server ? &server->bind : &importer->stream_bind;
    if (level->at) {
        import_warn(importer, item, "proxy_bind: a second one in this block (nginx refuses this configuration); "
                                    "keeping the one from %s:%d", level->at->file, level->at->line);
        return;
    }
    level->at = item;
    /* Left empty (zeroed) when it cannot be converted. */
    convert_bind(importer, item, server, level->source, sizeof level->source);
}

static void collect_map(struct importer *importer, const struct nginx_directive *directive)
{
    const char *variable;
    size_t variable_length;
    if (directive->arg_count != 2 || !directive->block ||
        !import_variable_name(directive->args[1], &variable, &variable_length)) {
        import_warn(importer, directive, "map: expected 'map $source $variable { ... }'; skipped");
        return;
    }
    char *name = strndup(variable, variable_length);
    struct import_map *grown = name ? import_grow(importer, importer->maps, importer->map_count, sizeof *grown) : NULL;
    if (!grown) {
        importer->failed = true;
        free(name);
        return;
    }
    importer->maps = grown;
    struct import_map *map = &grown[importer->map_count++];
    map->directive = directive;
    map->variable = name;
    map->server_name = import_variable_is(directive->args[0], "ssl_preread_server_name");
    map->alpn = import_variable_is(directive->args[0], "ssl_preread_alpn_protocols");
    map->protocol = import_variable_is(directive->args[0], "ssl_preread_protocol");
    sanitize_name(map->variable, map->table, sizeof map->table);
    if (!map->server_name && !map->alpn && !map->protocol)
        import_warn(importer, directive,
                    "map on %s: only maps on $ssl_preread_server_name, $ssl_preread_alpn_protocols and "
                    "$ssl_preread_protocol become routes; $%s is not converted", directive->args[0], map->variable);
}

static void collect_upstream(struct importer *importer, const struct nginx_directive *directive)
{
    if (directive->arg_count != 1 || !directive->block) {
        import_warn(importer, directive, "upstream: expected 'upstream NAME { ... }'; skipped");
        return;
    }
    /* "Backend" after "backend" is the same name to nginx, which refuses
     * the second ("duplicate upstream"). */
    const struct import_upstream *known = find_upstream(importer, directive->args[0]);
    if (known) {
        if (strcmp(known->name, directive->args[0]) == 0)
            import_warn(importer, directive, "upstream %s defined twice; the second is skipped", directive->args[0]);
        else
            import_warn(importer, directive, "upstream %s defined twice (nginx compares upstream names without case: "
                        "%s at %s:%d); the second is skipped", directive->args[0], known->name,
                        known->directive->file, known->directive->line);
        return;
    }
    struct import_upstream *upstream = add_upstream(importer);
    if (!upstream)
        return;
    upstream->directive = directive;
    upstream->name = directive->args[0];
    upstream->folded = fold_name(importer, upstream->name);
    if (upstream->folded &&
        !name_index_put(&importer->upstream_names, upstream->folded, (int32_t)importer->upstream_count - 1))
        importer->failed = true;
}

/* so_keepalive=VALUE becomes the listener's tcp_keepalive; one the INI
 * cannot take leaves it off. */
static void collect_listen_keepalive(struct importer *importer, const struct nginx_directive *directive,
                                     struct import_listen *listen, const char *value)
{
    char why[160];
    if (convert_keepalive(value, listen->keepalive, sizeof listen->keepalive, why, sizeof why))
        return;
    import_warn(importer, directive, "listen %s: so_keepalive=%s: %s; not carried over", directive->args[0], value,
                why);
    snprintf(listen->keepalive, sizeof listen->keepalive, "off");
}

static void add_listen(struct importer *importer, struct import_server *server, const struct import_listen *listen)
{
    struct import_listen *grown = import_grow(importer, server->listens, server->listen_count, sizeof *grown);
    if (!grown)
        return;
    server->listens = grown;
    grown[server->listen_count++] = *listen;
}

/* nginx's `listen [::]:PORT ipv6only=off` is one socket for both
 * families; snisplice's IPv6 sockets are IPv6-only, so the IPv4 clients
 * get an address of their own, 0.0.0.0:PORT, with the same parameters.
 * On any other address ipv6only changes nothing nginx served. */
static void add_ipv4_twin(struct importer *importer, struct import_server *server, const struct import_listen *listen)
{
    static const char wildcard[] = "[::]:";
    if (strncmp(listen->address, wildcard, sizeof wildcard - 1) != 0)
        return;
    struct import_listen twin = *listen;
    snprintf(twin.address, sizeof twin.address, "0.0.0.0:%s", listen->address + sizeof wildcard - 1);
    for (size_t i = 0; i < server->listen_count; i++)
        if (strcmp(server->listens[i].address, twin.address) == 0)
            return;
    add_listen(importer, server, &twin);
}

static void collect_listen(struct importer *importer, struct import_server *server,
                           const struct nginx_directive *directive)
{
    if (directive->arg_count < 1) {
        import_warn(importer, directive, "listen without an address; skipped");
        return;
    }
    /* Carried over, the path would make an INI that does not load: the
     * loader refuses unix: listen addresses (snisplice accepts TCP only). */
    if (strncmp(directive->args[0], "unix:", 5) == 0) {
        import_warn(importer, directive, "listen %s: snisplice listens on TCP addresses only; skipped",
                    directive->args[0]);
        return;
    }
    struct import_listen listen = { .directive = directive, .keepalive = "off" };
    bool dual_stack = false;
    char why[160];
    if (!convert_address(directive->args[0], true, listen.address, sizeof listen.address, why, sizeof why)) {
        import_warn(importer, directive, "listen %s: %s; skipped", directive->args[0], why);
        return;
    }
    for (size_t i = 1; i < directive->arg_count; i++) {
        const char *flag = directive->args[i];
        if (strcmp(flag, "proxy_protocol") == 0) {
            listen.proxy_protocol = true;
        } else if (strncmp(flag, "so_keepalive=", 13) == 0) {
            collect_listen_keepalive(importer, directive, &listen, flag + 13);
        } else if (strcmp(flag, "udp") == 0) {
            import_warn(importer, directive, "listen %s udp: snisplice relays TCP only; skipped", directive->args[0]);
            return;
        } else if (strcmp(flag, "ssl") == 0) {
            import_warn(importer, directive,
                        "listen %s ssl: nginx terminated TLS here; snisplice only passes TLS through, so the "
                        "upstream must now speak TLS itself", directive->args[0]);
        } else if (strcmp(flag, "ipv6only=off") == 0) {
            dual_stack = true;
        } else if (strcmp(flag, "reuseport") == 0 || strcmp(flag, "bind") == 0 ||
                   strcmp(flag, "default_server") == 0 || strcmp(flag, "ipv6only=on") == 0) {
            /* snisplice always does these. */
        } else {
            char key[80];
            snprintf(key, sizeof key, "listen:%s", flag);
            import_warn_left_out(importer, directive, key, "listen %s: parameter '%s'", directive->args[0], flag);
        }
    }
    add_listen(importer, server, &listen);
    if (dual_stack)
        add_ipv4_twin(importer, server, &listen);
}

bool import_is_on(struct importer *importer, const struct nginx_directive *directive)
{
    if (directive->arg_count == 1 && strcmp(directive->args[0], "on") == 0)
        return true;
    if (directive->arg_count != 1 || strcmp(directive->args[0], "off") != 0)
        import_warn(importer, directive, "%s: expected on or off", directive->name);
    return false;
}

/* Directives of a stream block or of its servers that need no INI line
 * of their own: what snisplice always does, and the access log (one per
 * process in snisplice, in its own format). False: not one of them. */
static bool collect_common(struct importer *importer, const struct nginx_directive *item)
{
    bool on = item->arg_count == 1 && strcmp(item->args[0], "on") == 0;
    /* snisplice sets TCP_NODELAY, tries the next server (as nginx does by
     * default) and half-closes; their "off" is explained by the notes. */
    if ((strcmp(item->name, "tcp_nodelay") == 0 || strcmp(item->name, "proxy_next_upstream") == 0 ||
         strcmp(item->name, "proxy_half_close") == 0) && on)
        return true;
    if (strcmp(item->name, "access_log") != 0 || item->arg_count < 1)
        return false;
    if (strcmp(item->args[0], "off") == 0) {
        if (!importer->access_log_off)
            importer->access_log_off = item;
        return true;
    }
    if (strncmp(item->args[0], "syslog:", 7) == 0) {
        import_warn(importer, item, "access_log %s: snisplice writes its access log to a file, not to syslog; "
                                    "not carried over (its stderr goes to the journal under systemd)", item->args[0]);
        return true;
    }
    /* nginx reads a relative path against its prefix (nginx -V: --prefix,
     * or -p), which differs between builds; snisplice takes only an
     * absolute path, and one file whose name holds no variable. */
    if (item->args[0][0] != '/' || strchr(item->args[0], '$')) {
        import_warn(importer, item, "access_log %s: not carried over: snisplice needs one absolute path without "
                                    "variables (nginx reads a relative one against its prefix); set access_log in "
                                    "[global] yourself", item->args[0]);
        return true;
    }
    if (!importer->access_log) {
        importer->access_log = item;
        import_warn(importer, item, "access_log %s: carried over; snisplice writes its own line format there "
                                    "(README, Access log), not nginx's log_format; under the shipped systemd unit "
                                    "only /var/log/snisplice is writable", item->args[0]);
    } else if (strcmp(importer->access_log->args[0], item->args[0]) != 0) {
        import_warn(importer, item, "access_log %s: snisplice has one access log; lines go to %s", item->args[0],
                    importer->access_log->args[0]);
    }
    return true;
}

static void collect_server(struct importer *importer, const struct nginx_directive *directive)
{
    if (!directive->block) {
        import_warn(importer, directive, "server outside an upstream block without { }; skipped");
        return;
    }
    struct import_server *grown = import_grow(importer, importer->servers, importer->server_count, sizeof *grown);
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
            server->ssl_preread = import_is_on(importer, item);
            server->ssl_preread_set = true;
        } else if (strcmp(item->name, "proxy_protocol") == 0) {
            server->proxy_protocol = import_is_on(importer, item);
            server->proxy_protocol_set = true;
        } else if (strcmp(item->name, "proxy_socket_keepalive") == 0) {
            server->socket_keepalive = import_is_on(importer, item);
            server->socket_keepalive_set = true;
        } else if (strcmp(item->name, "set_real_ip_from") == 0 && item->arg_count == 1)
            add_string(importer, &server->trusted, &server->trusted_count, item->args[0]);
        else if (strcmp(item->name, "proxy_bind") == 0)
            collect_bind(importer, item, server);
        else if (import_access_collect(importer, &server->access, item))
            continue;
        else if (import_access_collect_limit(importer, &server->limits, item))
            continue;
        else if (!collect_common(importer, item) && !collect_setting_directive(importer, item, server))
            import_warn_directive_left_out(importer, item);
    }
    import_access_check(importer, &server->access);
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
        else if (strcmp(item->name, "proxy_bind") == 0)
            collect_bind(importer, item, NULL);
        else if (import_access_collect(importer, &importer->stream_access, item))
            continue;
        else if (strcmp(item->name, "limit_conn_zone") == 0)
            import_access_collect_zone(importer, item);
        else if (import_access_collect_limit(importer, &importer->stream_limits, item))
            continue;
        else if (strcmp(item->name, "ssl_preread") == 0)
            importer->stream_ssl_preread = import_is_on(importer, item);
        else if (strcmp(item->name, "proxy_protocol") == 0)
            importer->stream_proxy_protocol = import_is_on(importer, item);
        else if (strcmp(item->name, "proxy_socket_keepalive") == 0)
            importer->stream_socket_keepalive = import_is_on(importer, item);
        else if (!collect_common(importer, item) && !collect_setting_directive(importer, item, NULL))
            import_warn_directive_left_out(importer, item);
    }
}

/* Carried over, as nginx's master starts as root too; but the shipped
 * systemd unit starts snisplice unprivileged, where `user =` is refused
 * (snisplice -t says so), and an imported config is often first tried
 * there: the warning says so before the unit does. */
static void collect_user(struct importer *importer, const struct nginx_directive *item)
{
    importer->user = item->args[0];
    import_warn(importer, item,
                "user %s: carried over as `user = %s`, which works only when snisplice starts as root (it binds, "
                "then switches); under the shipped systemd unit, which starts it unprivileged with "
                "CAP_NET_BIND_SERVICE, remove that line",
                item->args[0], item->args[0]);
}

static void collect_main(struct importer *importer, const struct nginx_block *root)
{
    for (size_t i = 0; i < root->count; i++) {
        const struct nginx_directive *item = &root->items[i];
        if (strcmp(item->name, "stream") == 0 && item->block)
            collect_stream(importer, item);
        else if (strcmp(item->name, "user") == 0 && item->arg_count >= 1)
            collect_user(importer, item);
        else if (strcmp(item->name, "worker_processes") == 0 && item->arg_count == 1)
            importer->workers = item->args[0];
        else if (item->block)
            import_warn(importer, item, "%s { }: not stream configuration; ignored", item->name);
        else
            import_warn_directive_left_out(importer, item);
    }
}

/* ---- pass 2: resolve what each server reaches ---- */

static struct import_reach server_reach(const struct import_server *server)
{
    return (struct import_reach){ server->proxy_protocol, !server->proxy_protocol, server->socket_keepalive,
                                  !server->socket_keepalive };
}

static void reach_merge(struct import_reach *into, struct import_reach from)
{
    into->with_proxy_protocol |= from.with_proxy_protocol;
    into->without_proxy_protocol |= from.without_proxy_protocol;
    into->with_keepalive |= from.with_keepalive;
    into->without_keepalive |= from.without_keepalive;
}

/* Whether a literal target is written as a made-up [upstream] section
 * (by its INI name) rather than as the address itself. */
static bool needs_section(struct import_reach reach)
{
    return reach.with_proxy_protocol || reach.with_keepalive;
}

/* How a line the servers `reach` use names `upstream`. */
static const char *target_text(const struct import_upstream *upstream, struct import_reach reach)
{
    return upstream->literal && !needs_section(reach) ? upstream->address : upstream->ini_name;
}

/* A literal address target needs an [upstream] section only for servers
 * that need one of its settings (see needs_section); the others name the
 * address itself, so they do not count against the section's settings.
 * `at`: a server's proxy_pass naming it, where a literal's mixed settings
 * are reported (a named upstream has its own line; a map that mixes them
 * says so itself); NULL for a map entry. */
static void mark_reached(struct import_upstream *upstream, struct import_reach reach,
                         const struct nginx_directive *at)
{
    if (upstream->literal && !needs_section(reach))
        return;
    if (upstream->literal && !upstream->reached_at && at)
        upstream->reached_at = at;
    reach_merge(&upstream->reach, reach);
}

/* Each map entry, in order: calls `entry` for every route it makes. */
typedef void (*map_entry_fn)(struct importer *importer, struct import_map *map,
                             const struct nginx_directive *entry, const char *pattern,
                             struct import_upstream *target, void *context);

/* Whether an address value ("host:port") names its host rather than
 * giving an IP address (or a unix: path). */
static bool names_host(const char *value)
{
    if (strncmp(value, "unix:", 5) == 0 || value[0] == '[')
        return false;
    const char *colon = strrchr(value, ':');
    size_t length = colon ? (size_t)(colon - value) : strlen(value);
    char host[ADDRESS_TEXT_MAX];
    struct in_addr ignored;
    if (length >= sizeof host)
        return true;
    memcpy(host, value, length);
    host[length] = '\0';
    return inet_pton(AF_INET, host, &ignored) != 1;
}

/* What a map entry's value names. On HOST:$map the value is a port on
 * HOST; on $map:PORT a host on PORT ("" and variables are said as they
 * are). */
static struct import_upstream *value_target(struct importer *importer, const struct import_map *map,
                                            const struct nginx_directive *entry)
{
    const char *value = entry->args[0];
    char on_host[ADDRESS_TEXT_MAX + 8];
    if (map->port_host) {
        snprintf(on_host, sizeof on_host, "%s:%s", map->port_host, value);
        value = on_host;
    } else if (map->port_added && value[0] != '\0' && !strchr(value, '$')) {
        snprintf(on_host, sizeof on_host, "%s:%s", value, map->port_added);
        value = on_host;
    }
    struct import_upstream *target = resolve_target(importer, entry, value);
    /* nginx evaluates a map value per connection: unless it names an
     * upstream, or the host:port of a plain proxy_pass (resolved at load),
     * a host name in it needs nginx's `resolver`, and without one nginx
     * closed those clients. snisplice looks it up at load. */
    if (target && target->literal && !target->static_target && !target->host_name_said && !importer->quiet &&
        names_host(value)) {
        target->host_name_said = true;
        import_warn(importer, entry, "target '%s' names a host: nginx looked it up for each connection with its "
                    "'resolver' (without one, it closed these clients); snisplice looks it up when it loads "
                    "or reloads the configuration", value);
    }
    return target;
}

/* Whether `pattern` is a route the table has not been given yet, by the
 * loader's own rules (names compare without case, "*.x" and ".x" are one
 * route, ALPN protocols compare exactly): the loader refuses a table with
 * a route twice. A second identical expression is no route of its own to
 * the loader (it just never matches), so expressions always pass. */
static bool claim_route(struct importer *importer, struct route_table_builder *written, const char *pattern)
{
    if (route_regex_is_pattern(pattern))
        return true;
    enum route_add_result added = strncmp(pattern, "alpn ", 5) == 0 ?
                                      route_table_builder_add_alpn(written, pattern + 5, 0) :
                                      route_table_builder_add(written, pattern, 0);
    if (added == ROUTE_ADD_NO_MEMORY)
        importer->failed = true;
    return added != ROUTE_ADD_DUPLICATE;
}

/* An entry whose route an earlier entry of the table already gave: nginx
 * took the first entry that matched, so the later one changed nothing
 * (for a name or default given twice in one map nginx refuses the
 * configuration altogether). */
static void warn_route_taken(struct importer *importer, const struct nginx_directive *entry, const char *pattern)
{
    if (strncmp(pattern, "alpn ", 5) == 0)
        import_warn(importer, entry, "map entry '%s': an earlier entry already routes clients that offer %s, and "
                                     "nginx's first match wins anyway; skipped", entry->name, pattern + 5);
    else
        import_warn(importer, entry, "map entry '%s': an earlier entry already has this route, and nginx's first "
                                     "match wins anyway (nginx refuses a name or default given twice in one map); "
                                     "skipped", entry->name);
}

/* A route for `entry` unless the table has it already (claim_route). */
static bool give_route(struct importer *importer, struct import_map *map, struct route_table_builder *written,
                       const struct nginx_directive *entry, const char *pattern, struct import_upstream *target,
                       map_entry_fn entry_fn, void *context)
{
    if (!claim_route(importer, written, pattern)) {
        warn_route_taken(importer, entry, pattern);
        return false;
    }
    entry_fn(importer, map, entry, pattern, target, context);
    return true;
}

/* A protocol map's routes, as import_protocol_resolve_map chose them:
 * not_tls, then the default (unless a chained map's entries take its
 * place). */
static void walk_protocol_map(struct importer *importer, struct import_map *map,
                              struct route_table_builder *written, map_entry_fn entry_fn, void *context)
{
    struct import_upstream *target = map->not_tls ? value_target(importer, map, map->not_tls) : NULL;
    if (target)
        give_route(importer, map, written, map->not_tls, "not_tls", target, entry_fn, context);
    target = map->tls ? value_target(importer, map, map->tls) : NULL;
    if (target)
        give_route(importer, map, written, map->tls, "default", target, entry_fn, context);
}

/* A map entry's key as the INI's route key (`converted` holds it when it
 * changes), or NULL when the entry is left out (said). For an ALPN entry
 * (`alpn`), *form says how nginx's key differed from "offers PROTOCOL". */
static const char *map_entry_key(struct importer *importer, const struct nginx_directive *entry, bool alpn,
                                 bool hostnames, char *converted, size_t converted_size, struct alpn_form *form)
{
    const char *key = entry->name;
    char why[200];
    if (alpn) {
        if (!convert_alpn_key(key, converted, converted_size, form, why, sizeof why)) {
            import_warn(importer, entry, "map entry '%s': %s; skipped", key, why);
            return NULL;
        }
        return converted;
    }
    if (route_regex_is_pattern(key)) {
        if (!convert_regex(key, converted, converted_size, why, sizeof why)) {
            import_warn(importer, entry, "map entry '%s': %s; skipped", key, why);
            return NULL;
        }
        return converted;
    }
    if (key[0] == '\0') {
        /* nginx's "" is every client without a server name: those that send
         * no TLS hello (snisplice's not_tls) and hellos without SNI. */
        import_warn(importer, entry, "map entry \"\": becomes not_tls, so clients that do not speak TLS go "
                                     "there as in nginx; a TLS hello without a server name, which nginx sent "
                                     "there too, takes the default route in snisplice (closed when there is none)");
        return "not_tls";
    }
    if (import_is_wildcard(key) && !hostnames) {
        import_warn(importer, entry,
                    "map entry '%s': without 'hostnames' nginx compares it as plain text, so it never "
                    "matched; skipped", key);
        return NULL;
    }
    /* The INI's words for the other routes: a name spelled so would be
     * read as one of them. */
    if (strcmp(key, "not_tls") == 0 || strncmp(key, "alpn ", 5) == 0) {
        import_warn(importer, entry,
                    "map entry '%s': the INI reads this key as the route for %s, not as a server name; skipped",
                    key, key[0] == 'n' ? "clients that do not speak TLS" : "an ALPN protocol");
        return NULL;
    }
    /* nginx keeps a key's trailing dot, and drops one from the name only
     * under hostnames: such a key matched a name sent with one dot more
     * (two, under hostnames), which clients do not send. snisplice would
     * drop the key's dot and route the plain name there. */
    size_t length = strlen(key);
    if (length > 1 && key[length - 1] == '.' && strcmp(key, "default") != 0) {
        import_warn(importer, entry,
                    "map entry '%s': nginx kept the trailing dot, so it matched only names sent with %s; "
                    "skipped", key, hostnames ? "two trailing dots" : "a trailing dot");
        return NULL;
    }
    return key;
}

/* The ALPN routes one map gave, for warn_alpn_order. */
struct alpn_routes {
    struct text protocols;   /* "h2, http/1.1" */
    size_t count;
    const struct import_upstream *first_target;
    bool several_targets;
};

static void note_alpn_route(struct alpn_routes *routes, const char *protocol, const struct import_upstream *target)
{
    import_text_printf(&routes->protocols, "%s%s", routes->count ? ", " : "", protocol);
    if (routes->count++ == 0)
        routes->first_target = target;
    routes->several_targets |= target != routes->first_target;
}

/* nginx took a map's first entry that matched, in the map's order; snisplice
 * takes the client's first offered protocol that has a route, in the
 * client's order. A client that offers several of a map's protocols may
 * reach another target, unless they all lead to the same one. */
static void warn_alpn_order(struct importer *importer, const struct import_map *map, struct alpn_routes *routes)
{
    if (routes->protocols.failed)
        importer->failed = true;
    else if (routes->count >= 2 && routes->several_targets)
        import_warn(importer, map->directive, "map $%s: nginx took the first entry that matched, in the map's order; "
                    "snisplice takes the client's first offered protocol that has a route, so a client that offers "
                    "several of %s may now reach another target", map->variable, routes->protocols.data);
    free(routes->protocols.data);
}

static void walk_map(struct importer *importer, struct import_map *map, struct route_table_builder *written,
                     map_entry_fn entry_fn, void *context)
{
    if (map->protocol) {
        walk_protocol_map(importer, map, written, entry_fn, context);
        return;
    }
    const struct nginx_block *block = map->directive->block;
    /* As in nginx, `hostnames` applies to the entries after it. */
    bool hostnames = false;
    struct alpn_routes alpn_routes = {0};
    for (size_t i = 0; i < block->count; i++) {
        const struct nginx_directive *entry = &block->items[i];
        if (!import_map_entry(importer, entry, &hostnames))
            continue;
        if (map->next && strcmp(entry->name, "default") == 0)
            continue; /* the chained map's entries follow in the same table */
        char converted[ROUTE_REGEX_TEXT_MAX];
        struct alpn_form form = {0};
        bool alpn = map->alpn && strcmp(entry->name, "default") != 0;
        const char *key = map_entry_key(importer, entry, alpn, hostnames, converted, sizeof converted, &form);
        struct import_upstream *target = key ? value_target(importer, map, entry) : NULL;
        if (!target || !give_route(importer, map, written, entry, key, target, entry_fn, context) || !alpn)
            continue;
        /* Said only of the entries that become routes. */
        warn_alpn_form(importer, entry, &form, key + 5);
        note_alpn_route(&alpn_routes, key + 5, target);
    }
    warn_alpn_order(importer, map, &alpn_routes);
}

/* A used map's whole table: its entries, then those of the maps it
 * continues with (a protocol map, then an ALPN map, then a server-name
 * map), each route given once. A part that has a table of its own too
 * says what is wrong with its entries there, once. */
static void walk_table(struct importer *importer, struct import_map *map, map_entry_fn entry_fn, void *context)
{
    struct route_table_builder *written = route_table_builder_new();
    if (!written) {
        importer->failed = true;
        return;
    }
    bool quiet = importer->quiet;
    for (struct import_map *part = map; part; part = part->next) {
        importer->quiet = quiet || (part != map && part->used);
        walk_map(importer, part, written, entry_fn, context);
    }
    importer->quiet = quiet;
    route_table_builder_free(written);
}

static void mark_entry(struct importer *importer, struct import_map *map,
                       const struct nginx_directive *entry, const char *pattern,
                       struct import_upstream *target, void *context)
{
    (void)importer, (void)entry, (void)pattern, (void)context;
    mark_reached(target, map->reach, NULL);
}

/* proxy_pass $variable, or HOST:$variable (acme.sh's recipe: an ALPN map
 * whose values are ports). A map is used one way only: its routes table
 * is written once. */
static bool use_map_as(struct importer *importer, struct import_server *server, const char *target,
                       const char *variable)
{
    struct import_map *map = server->map;
    if (variable == target)
        return !import_map_has_affix(map);
    size_t host_length = (size_t)(variable - target) - 1; /* without the ':' */
    if (host_length < 1 || target[host_length] != ':')
        return false;
    if (map->port_host)
        return strncmp(map->port_host, target, host_length) == 0 && map->port_host[host_length] == '\0';
    if (map->used || map->port_added)
        return false;
    map->port_host = strndup(target, host_length);
    if (!map->port_host)
        importer->failed = true;
    return map->port_host != NULL;
}

/* proxy_pass `$x:PORT` (a Kafka or SNI proxy recipe: the map's values are
 * hosts, nginx adds the port per connection): `variable` is `$x:PORT`.
 * The map is found, and used so, if PORT is a port number; NULL if $x is
 * no map or the port is not a number (*port_said: `variable` did have a
 * map and a port after it). */
static struct import_map *map_with_port_added(struct importer *importer, const char *variable, bool *port_said)
{
    *port_said = false;
    const char *colon = strchr(variable, ':');
    if (!colon)
        return NULL;
    char *name = strndup(variable, (size_t)(colon - variable));
    if (!name) {
        importer->failed = true;
        return NULL;
    }
    struct import_map *map = import_find_map(importer, name);
    free(name);
    if (!map)
        return NULL;
    *port_said = true;
    const char *port = colon + 1;
    char *end;
    long number = strtol(port, &end, 10);
    return port[0] >= '0' && port[0] <= '9' && *end == '\0' && number >= 1 && number <= 65535 ? map : NULL;
}

/* `$map:PORT`: a map is used one way only, its routes table written once. */
static bool use_map_with_port_added(struct importer *importer, struct import_map *map, const char *variable)
{
    const char *port = strchr(variable, ':') + 1;
    if (map->port_added)
        return strcmp(map->port_added, port) == 0;
    if (map->used || map->port_host)
        return false;
    map->port_added = strdup(port);
    if (!map->port_added)
        importer->failed = true;
    return map->port_added != NULL;
}

static void resolve_server(struct importer *importer, struct import_server *server)
{
    const struct nginx_directive *directive = server->directive;
    /* As in nginx, a server without its own value has the stream block's. */
    if (!server->ssl_preread_set)
        server->ssl_preread = importer->stream_ssl_preread;
    if (!server->proxy_protocol_set)
        server->proxy_protocol = importer->stream_proxy_protocol;
    if (!server->socket_keepalive_set)
        server->socket_keepalive = importer->stream_socket_keepalive;
    if (server->listen_count == 0) {
        import_warn(importer, directive, "server without a usable listen; skipped");
        return;
    }
    if (!server->proxy_pass) {
        import_warn(importer, directive, "server without proxy_pass: nothing to forward to; skipped");
        server->listen_count = 0;
        return;
    }
    const char *target = server->proxy_pass->args[0];
    const char *variable = strchr(target, '$');
    if (variable) {
        bool port_said;
        struct import_map *port_added = map_with_port_added(importer, variable, &port_said);
        server->map = port_said ? port_added : import_find_map(importer, variable);
        const char *why = port_said && !port_added ? "the text after the map must be a port number" :
                          !server->map || !becomes_routes(server->map) ?
                              "not a map on $ssl_preread_server_name, $ssl_preread_alpn_protocols or "
                              "$ssl_preread_protocol" :
                          !(port_added ? use_map_with_port_added(importer, server->map, variable) :
                                         use_map_as(importer, server, target, variable)) ?
                              "only $map, HOST:$map or $map:PORT, and each map one way (it becomes one routes table)" :
                              NULL;
        if (why) {
            import_warn(importer, server->proxy_pass, "proxy_pass %s: %s; server skipped", target, why);
            server->map = NULL;
            server->listen_count = 0;
            return;
        }
        if (!server->ssl_preread)
            import_warn(importer, server->proxy_pass, "proxy_pass %s without 'ssl_preread on': %s", target,
                        server->map->protocol ?
                            "nginx saw no protocol and sent every client where the map sends \"\"; snisplice "
                            "tells TLS clients apart" :
                            "nginx saw no server name and always took the map's default; snisplice routes by "
                            "server name");
        server->map->used = true;
        reach_merge(&server->map->reach, server_reach(server));
        return;
    }
    server->upstream = resolve_target(importer, server->proxy_pass, target);
    if (!server->upstream) {
        server->listen_count = 0;
        return;
    }
    server->upstream->static_target = true;
    mark_reached(server->upstream, server_reach(server), server->proxy_pass);
}

/* `next` continues `map`'s table: its entries are written after map's
 * and reach the same servers' upstreams (propagate_reach, once every
 * chain is made). */
void import_chain_to(struct import_map *map, struct import_map *next)
{
    map->next = next;
    next->chained = true;
}

/* Every map's servers reach the upstreams of every map after it in its
 * chain. Done once all chains are made, walking each to its end: merged
 * while chaining, it depended on the order the maps were declared in (a
 * map chained before it was itself chained to never passed on what it
 * got later). */
static void propagate_reach(struct importer *importer)
{
    for (size_t i = 0; i < importer->map_count; i++)
        for (struct import_map *part = &importer->maps[i]; part->next; part = part->next)
            reach_merge(&part->next->reach, part->reach);
}

/* Whether `map`'s table already continues, through `next` links, with
 * `part`: chaining `part` to `map` then would loop. nginx itself stops
 * such a cycle at run time ("cycle while evaluating variable"). */
static bool table_reaches(const struct import_map *map, const struct import_map *part)
{
    for (const struct import_map *at = map; at; at = at->next)
        if (at == part)
            return true;
    return false;
}

/* The map a `default $x;` entry of `map` names, when snisplice can
 * continue `map`'s table with it, else NULL. */
static struct import_map *default_map(struct importer *importer, const struct import_map *map)
{
    const struct nginx_block *block = map->directive->block;
    for (size_t i = 0; i < block->count; i++) {
        const struct nginx_directive *entry = &block->items[i];
        if (strcmp(entry->name, "default") == 0 && entry->arg_count == 1 && entry->args[0][0] == '$')
            return import_find_map(importer, entry->args[0]);
    }
    return NULL;
}

/* nginx's recipes for an ACME or XMPP helper beside SNI routing chain two
 * maps with `default $x;`. An ALPN map whose default is the server-name
 * map (the documented recipe): snisplice tries ALPN routes before names
 * anyway, so the two become one table, the ALPN entries, then the names
 * with their default. A server-name map whose default is an ALPN map (names
 * first, then protocols for the rest): the same one table, whose default is
 * the ALPN map's; nginx tried the names first, which snisplice cannot, so
 * that is said. Either map may itself continue another's table (a protocol
 * map's, or the other recipe's), and the chain is followed from here. */
static void chain_default(struct importer *importer, struct import_map *map)
{
    bool alpn = map->alpn && !import_map_has_affix(map);
    if (!(map->used || map->chained) || map->next || !(alpn || map->server_name))
        return;
    struct import_map *next = default_map(importer, map);
    if (!next || import_map_has_affix(next) || (alpn ? !next->server_name : !next->alpn) || table_reaches(next, map))
        return;
    import_chain_to(map, next);
    if (map->server_name)
        import_warn(importer, map->directive,
                    "map $%s: its default is the ALPN map $%s, so both become one table; nginx tried this "
                    "map's names first, snisplice tries ALPN routes first, so a client for one of these names "
                    "that offers a protocol $%s routes now reaches that protocol's target",
                    map->variable, next->variable, next->variable);
    chain_default(importer, next);
}

/* Every upstream's INI name: its nginx name with what the INI does not allow
 * made '_' (nginx allows "matrix.backend"), and made unique: "a.b" next to
 * "a_b", or two long names cut to the same 63 characters, get a suffix.
 * Named upstreams were collected first, so they keep their names and the
 * made-up "to_ADDRESS" ones give way. */
static void name_upstreams(struct importer *importer)
{
    struct name_index taken = {0};
    /* "-" is the route of a connection not routed yet (access log, metrics):
     * config.c refuses it as an upstream name, so nginx's gets a suffix. */
    if (!name_index_put(&taken, "-", INT32_MAX)) /* no upstream's index */
        importer->failed = true;
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

/* Whether some of a server's listens have proxy_protocol and some not. */
static bool listens_disagree_on_proxy_protocol(const struct import_server *server)
{
    for (size_t i = 1; i < server->listen_count; i++)
        if (server->listens[i].proxy_protocol != server->listens[0].proxy_protocol)
            return true;
    return false;
}

/* The listener names given so far, and for each base name given (as
 * written, the first server's buffer) the last suffix it took: a
 * hosting config's thousands of `listen IP:443` servers all start from
 * "port443", and trying _2, _3... against every name before made the
 * import cubic (5,000 servers: over two minutes). */
struct listener_names {
    struct name_index taken;       /* name -> 2 * server index (+1: its proxy_protocol_name) */
    struct name_index last_suffix; /* a base -> the last suffix given after it */
};

static const char *listener_name_text(const struct importer *importer, int32_t holder)
{
    const struct import_server *server = &importer->servers[holder / 2];
    return holder % 2 ? server->proxy_protocol_name : server->name;
}

/* `base`, or base_2, base_3...: the first not taken, into name (one of
 * server number `index`'s two buffers, the second when proxy_protocol).
 * Names are never given back, so the suffixes below the last one given
 * after a base are all taken still. False on ENOMEM. */
static bool unique_listener_name(const struct importer *importer, struct listener_names *names, size_t index,
                                 bool proxy_protocol, const char *base, char *name, size_t size)
{
    snprintf(name, size, "%s", base);
    int32_t holder = name_index_get(&names->taken, name);
    if (holder != NAME_INDEX_NONE) {
        const char *base_text = listener_name_text(importer, holder); /* outlives the indexes */
        int32_t last = name_index_get(&names->last_suffix, base_text);
        unsigned suffix = last == NAME_INDEX_NONE ? 2 : (unsigned)last + 1;
        for (;; suffix++) {
            snprintf(name, size, "%.40s_%u", base, suffix);
            if (name_index_get(&names->taken, name) == NAME_INDEX_NONE)
                break;
        }
        if (!name_index_put(&names->last_suffix, base_text, (int32_t)suffix))
            return false;
    }
    return name_index_put(&names->taken, name, (int32_t)(2 * index + proxy_protocol));
}

/* "portN" after the port of the first of a server's listens with (or
 * without) proxy_protocol, and a suffix. */
static void listener_base_name(const struct import_server *server, bool proxy_protocol, const char *suffix,
                               char *base, size_t size)
{
    size_t first = 0;
    while (first + 1 < server->listen_count && server->listens[first].proxy_protocol != proxy_protocol)
        first++;
    const char *port = strrchr(server->listens[first].address, ':');
    snprintf(base, size, "port%.20s%s", port ? port + 1 : "", suffix);
}

static void name_listeners(struct importer *importer)
{
    struct listener_names names = { { 0 }, { 0 } };
    for (size_t i = 0; i < importer->server_count && !importer->failed; i++) {
        struct import_server *server = &importer->servers[i];
        if (server->listen_count == 0)
            continue;
        bool split = listens_disagree_on_proxy_protocol(server);
        char base[NAME_MAX_LENGTH];
        listener_base_name(server, split ? false : server->listens[0].proxy_protocol, "", base, sizeof base);
        if (!unique_listener_name(importer, &names, i, false, base, server->name, sizeof server->name))
            importer->failed = true;
        if (!split || importer->failed)
            continue;
        listener_base_name(server, true, "_proxy_protocol", base, sizeof base);
        if (!unique_listener_name(importer, &names, i, true, base, server->proxy_protocol_name,
                                  sizeof server->proxy_protocol_name))
            importer->failed = true;
    }
    name_index_free(&names.taken);
    name_index_free(&names.last_suffix);
}

/* ---- pass 3: write ---- */

static void write_trusted(struct text *ini, char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        import_text_printf(ini, "proxy_protocol_from = %s\n", list[i]);
}

/* nginx sets so_keepalive per listen, snisplice tcp_keepalive per
 * listener: a server's listens that disagree get the first one's. Only
 * the listens of one listener count (`proxy_protocol`: see write_listener). */
static void write_listener_keepalive(struct importer *importer, struct text *ini, const struct import_server *server,
                                     bool proxy_protocol)
{
    const struct import_listen *first = NULL;
    for (size_t i = 0; i < server->listen_count; i++) {
        const struct import_listen *other = &server->listens[i];
        if (other->proxy_protocol != proxy_protocol)
            continue;
        if (!first)
            first = other;
        if (strcmp(other->keepalive, first->keepalive) == 0)
            continue;
        import_warn(importer, other->directive,
                    "listen %s: so_keepalive=%s here, so_keepalive=%s on listen %s; snisplice has one "
                    "tcp_keepalive per listener, so all of this server's addresses get tcp_keepalive = %s", other->directive->args[0],
                    other->keepalive, first->keepalive, first->directive->args[0], first->keepalive);
        break;
    }
    if (strcmp(first->keepalive, "off") != 0)
        import_text_printf(ini, "tcp_keepalive = %s\n", first->keepalive);
}

/* Whether a server's own timeout changes what its listener would have
 * without a key of its own: [global]'s, which is the stream block's, or
 * snisplice's default when the stream block gives none. (nginx's defaults
 * are never written: a timeout nginx left unset is snisplice's default.)
 * Compared in milliseconds: "600s" and "10m" are the same. */
static bool differs_from_inherited(const struct import_setting *setting, const struct import_value *own)
{
    return own->ms != (setting->global.text[0] ? setting->global.ms : setting->default_ms);
}

/* nginx sets the timeouts per server, as snisplice per listener: a
 * server's own value is its listener's key, unless it changes nothing. */
static void write_listener_timeouts(const struct importer *importer, struct text *ini,
                                    const struct import_server *server)
{
    for (size_t i = 0; i < IMPORT_SETTING_COUNT; i++) {
        const struct import_setting *setting = &importer->settings[i];
        const struct import_value *own = &server->own[i];
        if (own->text[0] && differs_from_inherited(setting, own))
            import_text_printf(ini, "%s = %s\n", setting->ini_name, own->text);
    }
}

/* [global]'s source: the stream block's proxy_bind, unless it is off. */
static const char *global_source(const struct importer *importer)
{
    const char *source = importer->stream_bind.source;
    return source[0] && strcmp(source, "none") != 0 ? source : NULL;
}

/* A server's own proxy_bind, where it changes what [global] gives its
 * listener (proxy_bind off under a stream-level one: source = none). */
static void write_listener_source(const struct importer *importer, struct text *ini,
                                  const struct import_server *server)
{
    const char *own = server->bind.source, *inherited = global_source(importer);
    if (!own[0] || strcmp(own, inherited ? inherited : "none") == 0)
        return;
    import_text_printf(ini, "source = %s\n", own);
}

/* One listener of a server: its listens with proxy_protocol, or those
 * without. A server whose listens agree is one listener. */
static void write_listener_part(struct importer *importer, struct text *ini, const struct import_server *server,
                                const char *name, bool proxy_protocol)
{
    import_text_printf(ini, name ? "[listen %s]\n" : "[listen]\n", name);
    for (size_t i = 0; i < server->listen_count; i++)
        if (server->listens[i].proxy_protocol == proxy_protocol)
            import_text_printf(ini, "address = %s\n", server->listens[i].address);
    if (server->map && name)
        import_text_printf(ini, "routes = %s\n", server->map->table);
    if (server->upstream)
        import_text_printf(ini, "upstream = %s\n", target_text(server->upstream, server_reach(server)));
    write_listener_keepalive(importer, ini, server, proxy_protocol);
    write_listener_timeouts(importer, ini, server);
    write_listener_source(importer, ini, server);
    bool proxy_protocol_from_anyone = false;
    if (proxy_protocol) {
        const struct nginx_directive *listen = NULL;
        for (size_t i = 0; !listen && i < server->listen_count; i++)
            if (server->listens[i].proxy_protocol)
                listen = server->listens[i].directive;
        if (server->trusted_count || importer->stream_trusted_count) {
            if (server->trusted_count)
                write_trusted(ini, server->trusted, server->trusted_count);
            else
                write_trusted(ini, importer->stream_trusted, importer->stream_trusted_count);
            import_warn(importer, listen,
                        "listen %s proxy_protocol: nginx required a PROXY header from every client (and believed "
                        "its address only from set_real_ip_from); snisplice expects one only from the "
                        "set_real_ip_from sources and serves other clients without one: if only the load balancer "
                        "may connect, a firewall rule must now say so", listen->args[0]);
        } else {
            import_warn(importer, server->directive,
                        "listen ... proxy_protocol without set_real_ip_from: nginx required the PROXY header from "
                        "every client; converted as proxy_protocol_from = 0.0.0.0/0 and ::/0");
            import_text_printf(ini, "proxy_protocol_from = 0.0.0.0/0\nproxy_protocol_from = ::/0\n");
            proxy_protocol_from_anyone = true;
        }
    }
    import_access_write(importer, ini, server, proxy_protocol_from_anyone);
    import_text_printf(ini, "\n");
}

static void write_listener(struct importer *importer, struct text *ini, const struct import_server *server,
                           bool unnamed)
{
    const char *name = unnamed ? NULL : server->name;
    if (!server->proxy_protocol_name[0]) {
        write_listener_part(importer, ini, server, name, server->listens[0].proxy_protocol);
        return;
    }
    write_listener_part(importer, ini, server, name, false);
    write_listener_part(importer, ini, server, server->proxy_protocol_name, true);
}

static void write_route(struct importer *importer, struct import_map *map,
                        const struct nginx_directive *entry, const char *pattern,
                        struct import_upstream *target, void *context)
{
    (void)importer, (void)entry;
    struct text *ini = context;
    import_text_printf(ini, "%s = %s\n", pattern, target_text(target, map->reach));
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
        import_warn(importer, item, "server %s: cannot read %s=%s; not carried over", item->args[0], name, value);
        return;
    }
    if (number > high) {
        import_warn(importer, item, "server %s: %s=%s is more than snisplice takes; written as %s=%lu", item->args[0],
                    name, value, name, high);
        number = high;
    }
    import_text_printf(ini, " %s=%lu", name, number);
}

/* `line` when a server that reaches the upstream sets it (`with`), said
 * when others do not (`without`): it then holds for all of them. */
static void write_reached_setting(struct importer *importer, struct text *ini, const struct import_upstream *upstream,
                                  bool with, bool without, const char *line, const char *what_changes)
{
    if (!with)
        return;
    import_text_printf(ini, "%s\n", line);
    const struct nginx_directive *at = upstream->literal ? upstream->reached_at : upstream->directive;
    if (without && at)
        import_warn(importer, at, "%s %s is reached from servers with and without %s",
                    upstream->literal ? "address" : "upstream",
                    upstream->literal ? upstream->address : upstream->name, what_changes);
}

/* The lines the servers that reach an upstream set in it, and the blank
 * line that ends its section. snisplice has them per upstream, nginx per
 * server: servers that disagree all get the setting. */
static void write_upstream_settings(struct importer *importer, struct text *ini,
                                    const struct import_upstream *upstream)
{
    /* A literal's section is shared by every line that needs a setting of
     * it: one needing keepalive alone gets the PROXY header too, and the
     * other way round. Said like a named upstream's mix, at the first line
     * that reached it. */
    const struct import_reach *reach = &upstream->reach;
    write_reached_setting(importer, ini, upstream, reach->with_proxy_protocol, reach->without_proxy_protocol,
                          "proxy_protocol = v1", "proxy_protocol on; it now gets the PROXY header from all of them");
    write_reached_setting(importer, ini, upstream, reach->with_keepalive, reach->without_keepalive,
                          "tcp_keepalive = on",
                          "proxy_socket_keepalive on; its sockets now have keepalive for all of them");
    import_text_printf(ini, "\n");
}

/* ---- load balancing: hash, least_conn, random, least_time ---- */

/* nginx's load-balancing methods: the hash, least_conn and random
 * modules', and nginx Plus's least_time. */
static bool is_balancing_method(const struct nginx_directive *item)
{
    return strcmp(item->name, "hash") == 0 || strcmp(item->name, "least_conn") == 0 ||
           strcmp(item->name, "random") == 0 || strcmp(item->name, "least_time") == 0;
}

/* The method `random two` compares its two picks by: least_conn, or nginx
 * Plus's least_time=... */
static bool is_random_two_method(const char *method)
{
    return strcmp(method, "least_conn") == 0 || strncmp(method, "least_time=", 11) == 0;
}

/* The form nginx expects when `item` is not in it (nginx then refuses to
 * start); NULL when it is. least_time is nginx Plus's and not checked. */
static const char *expected_balancing_form(const struct nginx_directive *item)
{
    size_t count = item->arg_count;
    if (strcmp(item->name, "least_conn") == 0)
        return count == 0 ? NULL : "least_conn";
    if (strcmp(item->name, "hash") == 0) {
        bool fits = count == 1 || (count == 2 && strcmp(item->args[1], "consistent") == 0);
        return fits ? NULL : "hash KEY [consistent]";
    }
    if (strcmp(item->name, "random") == 0) {
        bool fits = count == 0 || (strcmp(item->args[0], "two") == 0 &&
                                   (count == 1 || (count == 2 && is_random_two_method(item->args[1]))));
        return fits ? NULL : "random [two [least_conn]]";
    }
    return NULL;
}

/* A directive as written, for warnings: "hash $remote_addr consistent". */
static void directive_text(const struct nginx_directive *item, char *out, size_t out_size)
{
    size_t length = (size_t)snprintf(out, out_size, "%s", item->name);
    for (size_t i = 0; i < item->arg_count && length < out_size; i++)
        length += (size_t)snprintf(out + length, out_size - length, " %s", item->args[i]);
}

/* The balance line for the method nginx uses, or why there is none. */
/* `text`: the directive as written, for warnings. */
static void write_balance_method(struct importer *importer, struct text *ini, const struct import_upstream *upstream,
                                 const struct nginx_directive *item, const char *text)
{
    if (strcmp(item->name, "least_conn") == 0) {
        import_text_printf(ini, "balance = least_connections\n");
        return;
    }
    if (strcmp(item->name, "hash") == 0 && import_is_client_address_key(item->args[0])) {
        /* Without `consistent` nginx hashes modulo the total weight, which
         * moves most clients when a server is added or removed; the ring
         * moves only that server's. Either way a client keeps its server,
         * which is what the directive asks for: nothing to warn about. */
        import_text_printf(ini, "balance = client_address\n");
        return;
    }
    if (strcmp(item->name, "hash") == 0) {
        import_warn_left_out(importer, item, "hash", "upstream %s: %s", upstream->name, text);
        return;
    }
    bool random_two = strcmp(item->name, "random") == 0 && item->arg_count > 0;
    if (random_two && (item->arg_count == 1 || strcmp(item->args[1], "least_conn") == 0)) {
        /* least_conn is the only method of open-source nginx's `random
         * two`, and its default. */
        import_warn(importer, item, "upstream %s: %s converted as balance = least_connections, which picks the "
                    "least loaded of all servers, not the less loaded of two picked at random", upstream->name,
                    text);
        import_text_printf(ini, "balance = least_connections\n");
        return;
    }
    /* random, least_time, random two least_time=... */
    import_warn_left_out(importer, item, random_two ? "least_time" : item->name, "upstream %s: %s",
                         upstream->name, text);
}

/* An upstream's balance line. nginx takes one method per upstream: a
 * second one gets its warning "load balancing method redefined" and
 * replaces the first, so the last one counts here too. */
static void write_balance(struct importer *importer, struct text *ini, const struct import_upstream *upstream)
{
    const struct nginx_block *block = upstream->directive->block;
    const struct nginx_directive *method = NULL;
    char text[256], method_text[256];
    for (size_t i = 0; i < block->count; i++) {
        const struct nginx_directive *item = &block->items[i];
        if (!is_balancing_method(item))
            continue;
        directive_text(item, text, sizeof text);
        const char *expected = expected_balancing_form(item);
        if (expected) {
            import_warn(importer, item, "upstream %s: %s: expected '%s'; skipped", upstream->name, text, expected);
            continue;
        }
        if (method)
            import_warn(importer, item, "upstream %s: %s: load balancing method redefined; as in nginx the last "
                        "one counts, so %s at %s:%d is not carried over", upstream->name, text, method_text,
                        method->file, method->line);
        method = item;
        memcpy(method_text, text, sizeof method_text);
    }
    if (method)
        write_balance_method(importer, ini, upstream, method, method_text);
}

static void write_upstream(struct importer *importer, struct text *ini, struct import_upstream *upstream)
{
    if (upstream->literal) {
        if (!needs_section(upstream->reach))
            return; /* written inline as a literal target */
        import_text_printf(ini, "[upstream %s]\nserver = %s\n", upstream->ini_name, upstream->address);
        write_upstream_settings(importer, ini, upstream);
        return;
    }
    const struct nginx_directive *directive = upstream->directive;
    import_text_printf(ini, "[upstream %s]\n", upstream->ini_name);
    write_balance(importer, ini, upstream);
    size_t servers = 0;
    for (size_t i = 0; i < directive->block->count; i++) {
        const struct nginx_directive *item = &directive->block->items[i];
        if (is_balancing_method(item))
            continue; /* write_balance said what became of it */
        if (strcmp(item->name, "server") != 0 || item->arg_count < 1) {
            import_warn_left_out(importer, item, item->name, "upstream %s: %s", upstream->name, item->name);
            continue;
        }
        char address[ADDRESS_TEXT_MAX], why[160];
        if (!convert_address(item->args[0], false, address, sizeof address, why, sizeof why)) {
            import_warn(importer, item, "server %s: %s; skipped", item->args[0], why);
            continue;
        }
        import_text_printf(ini, "server = %s", address);
        for (size_t j = 1; j < item->arg_count; j++) {
            const char *flag = item->args[j];
            if (strcmp(flag, "backup") == 0 || strcmp(flag, "down") == 0) {
                import_text_printf(ini, " %s", flag);
            } else if (strncmp(flag, "weight=", 7) == 0) {
                write_bounded(importer, ini, item, "weight", flag + 7, 1, UPSTREAM_WEIGHT_MAX);
            } else if (strncmp(flag, "max_fails=", 10) == 0) {
                write_bounded(importer, ini, item, "max_fails", flag + 10, 0, 1000);
            } else if (strncmp(flag, "max_conns=", 10) == 0) {
                write_bounded(importer, ini, item, "max_conns", flag + 10, 0, UPSTREAM_MAX_CONNS_MAX);
            } else if (strcmp(flag, "fail_timeout=0") == 0 || strcmp(flag, "fail_timeout=0s") == 0) {
                /* nginx rests such a server until the clock's next second. */
                import_warn(importer, item, "server %s: %s rests a server for under a second in nginx; written as "
                            "fail_timeout=1s", item->args[0], flag);
                import_text_printf(ini, " fail_timeout=1s");
            } else if (strncmp(flag, "fail_timeout=", 13) == 0) {
                char value[32];
                if (convert_duration(flag + 13, value, sizeof value))
                    import_text_printf(ini, " fail_timeout=%s", value);
                else
                    import_warn(importer, item, "server %s: cannot read %s; not carried over", item->args[0], flag);
            } else {
                char key[80];
                snprintf(key, sizeof key, "server:%s", flag);
                import_warn_left_out(importer, item, key, "server %s: parameter %s", item->args[0], flag);
            }
        }
        import_text_printf(ini, "\n");
        servers++;
    }
    if (servers == 0)
        import_warn(importer, directive, "upstream %s has no server snisplice can use", upstream->name);
    write_upstream_settings(importer, ini, upstream);
}

/* A map used by servers that disagree on a per-server setting: its one
 * routes table gives the setting's upstreams to all of them. */
static void warn_map_reached_mixed(struct importer *importer, const struct import_map *map, bool with, bool without,
                                   const char *directive, const char *effect)
{
    if (with && without)
        import_warn(importer, map->directive,
                    "map $%s is used by servers with and without %s on; snisplice has one routes table for it, "
                    "so every upstream it names now %s", map->variable, directive, effect);
}

/* Whether a converted server takes a timeout from nginx's default: the
 * stream block does not set it, nor does the server (preread_timeout only
 * matters where nginx prereads, a server with ssl_preread). */
static bool takes_nginx_default(const struct importer *importer, size_t setting)
{
    if (importer->settings[setting].global.text[0])
        return false;
    bool preread = importer->settings[setting].preread_only;
    for (size_t i = 0; i < importer->server_count; i++) {
        const struct import_server *server = &importer->servers[i];
        if (server->listen_count && !server->own[setting].text[0] && (!preread || server->ssl_preread))
            return true;
    }
    return false;
}

/* A timeout nginx left unset is not written, so snisplice's default
 * applies: where the two defaults differ, the file says so where the
 * reader looks, as a comment (every config has it, so a warning would be
 * noise). */
static void write_default_notes(const struct importer *importer, struct text *ini)
{
    for (size_t i = 0; i < IMPORT_SETTING_COUNT; i++) {
        const struct import_setting *setting = &importer->settings[i];
        uint64_t nginx_ms = 0;
        if (setting->size || !units_parse_duration(setting->nginx_default, &nginx_ms) ||
            nginx_ms == setting->default_ms || !takes_nginx_default(importer, i))
            continue;
        import_text_printf(ini, "; %s not set: nginx's default was %s; snisplice's %s, %llus, applies "
                                "(%s = %s in the global section keeps nginx's)\n", setting->nginx_name,
                           setting->nginx_default,
                           setting->ini_name, (unsigned long long)(setting->default_ms / 1000), setting->ini_name,
                           setting->nginx_default);
    }
}

static void write_ini(struct importer *importer, struct text *ini)
{
    import_text_printf(ini, "; snisplice configuration converted from %s by snisplice --import-nginx.\n"
                            "; Check it with: snisplice -t -c FILE\n", importer->source);
    write_default_notes(importer, ini);
    import_text_printf(ini, "\n");
    const char *source = global_source(importer);
    bool any_global = importer->workers || importer->user || importer->access_log || source;
    for (size_t i = 0; i < IMPORT_SETTING_COUNT; i++)
        any_global |= importer->settings[i].global.text[0] != '\0';
    if (any_global) {
        import_text_printf(ini, "[global]\n");
        if (importer->workers)
            import_text_printf(ini, "workers = %s\n", importer->workers);
        if (importer->user)
            import_text_printf(ini, "user = %s\n", importer->user);
        if (importer->access_log)
            import_text_printf(ini, "access_log = %s\n", importer->access_log->args[0]);
        for (size_t i = 0; i < IMPORT_SETTING_COUNT; i++)
            if (importer->settings[i].global.text[0])
                import_text_printf(ini, "%s = %s\n", importer->settings[i].ini_name,
                                   importer->settings[i].global.text);
        if (source)
            import_text_printf(ini, "source = %s\n", source);
        import_text_printf(ini, "\n");
    }

    size_t listeners = 0;
    const struct import_server *only = NULL;
    for (size_t i = 0; i < importer->server_count; i++) {
        if (importer->servers[i].listen_count) {
            listeners += importer->servers[i].proxy_protocol_name[0] ? 2 : 1;
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
                import_warn(importer, map->directive,
                            "map $%s is used by no converted server's proxy_pass; not converted", map->variable);
            continue;
        }
        warn_map_reached_mixed(importer, map, map->reach.with_proxy_protocol, map->reach.without_proxy_protocol,
                               "proxy_protocol", "gets the PROXY header from all of them");
        warn_map_reached_mixed(importer, map, map->reach.with_keepalive, map->reach.without_keepalive,
                               "proxy_socket_keepalive", "has keepalive for all of them");
        import_text_printf(ini, unnamed ? "[routes]\n" : "[routes %s]\n", map->table);
        walk_table(importer, map, write_route, ini);
        import_text_printf(ini, "\n");
    }
    for (size_t i = 0; i < importer->upstream_count; i++)
        write_upstream(importer, ini, importer->upstreams[i]);
}

bool nginx_import_tree(const struct nginx_tree *tree, const char *source, struct nginx_import *out)
{
    memset(out, 0, sizeof *out);
    struct importer importer = { .out = out, .source = source };
    /* The timeouts' defaults are snisplice's, not nginx's 60s, 10m and
     * 30s: a timeout nginx leaves unset is not written, so a listener has
     * snisplice's. */
    const struct snapshot_settings *defaults = &config_default_settings;
    importer.settings[0] = (struct import_setting){ .nginx_name = "proxy_connect_timeout",
                                                    .ini_name = "connect_timeout",
                                                    .default_ms = defaults->connect_timeout_ms,
                                                    .nginx_default = "60s" };
    importer.settings[1] = (struct import_setting){ .nginx_name = "proxy_timeout", .ini_name = "idle_timeout",
                                                    .default_ms = defaults->idle_timeout_ms,
                                                    .nginx_default = "10m" };
    importer.settings[2] = (struct import_setting){ .nginx_name = "preread_timeout", .ini_name = "preread_timeout",
                                                    .default_ms = defaults->preread_timeout_ms,
                                                    .nginx_default = "30s", .preread_only = true };
    importer.settings[3] = (struct import_setting){ .nginx_name = "preread_buffer_size", .ini_name = "preread_max",
                                                    .size = true };
    collect_main(&importer, &tree->root);
    /* nginx logs per server; snisplice's one log takes every listener's
     * connections, those of servers that had it off too. */
    if (importer.access_log && importer.access_log_off)
        import_warn(&importer, importer.access_log_off,
                    "access_log off: snisplice has one access log for every listener, so connections nginx did not "
                    "log here are logged to %s too", importer.access_log->args[0]);
    /* Only now is the stream level complete: a rule after the last server
     * still applies to it in nginx. */
    import_access_check(&importer, &importer.stream_access);
    /* And every zone is known: a limit_conn may come before its zone. */
    import_access_check_limits(&importer, &importer.stream_limits);
    for (size_t i = 0; i < importer.server_count; i++)
        import_access_check_limits(&importer, &importer.servers[i].limits);
    /* Servers first, so maps know whether they feed a proxy_protocol server;
     * then the maps' targets learn it. */
    for (size_t i = 0; i < importer.server_count; i++) {
        resolve_server(&importer, &importer.servers[i]);
        import_access_resolve_client_limit(&importer, &importer.servers[i]);
    }
    import_access_warn_counting_scope(&importer);
    /* Protocol maps first: a map they continue chains in turn. */
    for (size_t i = 0; i < importer.map_count; i++)
        import_protocol_resolve_map(&importer, &importer.maps[i]);
    for (size_t i = 0; i < importer.map_count; i++)
        chain_default(&importer, &importer.maps[i]);
    propagate_reach(&importer);
    /* Quiet: the writing pass says what is wrong with a map's entries. */
    importer.quiet = true;
    for (size_t i = 0; i < importer.map_count; i++)
        if (importer.maps[i].used)
            walk_table(&importer, &importer.maps[i], mark_entry, NULL);
    importer.quiet = false;
    name_upstreams(&importer);
    name_listeners(&importer);
    struct text ini = {0};
    write_ini(&importer, &ini);
    bool any_listener = false;
    for (size_t i = 0; i < importer.server_count; i++)
        any_listener |= importer.servers[i].listen_count > 0;
    if (!any_listener && tree->root.count > 0)
        import_warn(&importer, &tree->root.items[0], "no stream server could be converted: the result has no listener");

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
        free(importer.upstreams[i]->folded);
        free(importer.upstreams[i]);
    }
    free(importer.upstreams);
    name_index_free(&importer.upstream_names);
    name_index_free(&importer.literal_addresses);
    for (size_t i = 0; i < importer.map_count; i++) {
        free(importer.maps[i].port_host);
        free(importer.maps[i].port_added);
        free(importer.maps[i].variable);
    }
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
