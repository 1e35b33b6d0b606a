/*
 * config.c - load and validate the INI file into a struct config.
 *
 * inih does the tokenising; this file knows the sections and keys. inih (as
 * Debian builds it) does not pass line numbers to the handler, so lines are
 * fed through our own reader, which counts them and also sees section
 * headers (inih does not report empty sections). Problems are collected,
 * never fatal one by one, so `snisplice -t` shows them all at once.
 * Routes are resolved after the whole file is read: an upstream may be
 * defined below the routes that use it.
 *
 * Listeners: [listen] (unnamed, routes from [routes]) and [listen NAME]
 * (routes from [routes NAME], or `routes = OTHER`, or plain forwarding with
 * `upstream = TARGET`).
 *
 * A server or target written as "name:port" is resolved while loading
 * (host_resolve.c), as nginx resolves upstream host names when it reads
 * its configuration: each address the name has becomes a server.
 */
#include "config.h"

#include "../core/access_rules.h"
#include "../core/hostname.h"
#include "../core/proxy_protocol.h"
#include "../core/upstream_hash.h"
#include "../core/upstream_source.h"
#include "../core/route_regex.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "congestion_control.h"
#include "host_resolve.h"
#include "name_index.h"
#include "route_line.h"
#include "tcp_keepalive.h"
#include "units.h"

#define WORKERS_MAX 256
#define PREREAD_MAX_LOW PREREAD_MAX_FLOOR
#define PREREAD_MAX_HIGH PREREAD_MAX_CEILING

enum section_kind { SECTION_NONE, SECTION_GLOBAL, SECTION_LISTEN, SECTION_ROUTES, SECTION_UPSTREAM, SECTION_UNKNOWN };

struct pending_route {
    size_t pattern;          /* offsets into loader->route_text */
    size_t target;
    int line;
    size_t table;            /* index into loader->tables */
};

/* A [routes] or [routes NAME] section. */
struct pending_table {
    char *name;              /* "" for [routes] */
    int line;
    bool used;
};

/* A [listen] or [listen NAME] section. */
struct pending_listener {
    char *name;              /* "" for [listen] */
    int line;
    char *upstream;          /* `upstream = ...`: plain forwarding */
    int upstream_line;
    char *routes;            /* `routes = ...`: another table's name */
    int routes_line;
    size_t address_count;
    struct address_range *proxy_protocol_from; /* moved into the snapshot */
    uint32_t proxy_protocol_from_count;
    struct access_rule *access_rules;          /* allow/deny in order; moved into the snapshot */
    uint32_t access_rule_count;
    uint32_t max_connections_per_client;       /* 0: off */
    bool max_connections_per_client_set;       /* else [global]'s */
    struct tcp_keepalive keepalive;            /* copied into the snapshot */
    uint32_t preread_timeout_ms;               /* this listener's own; 0: [global]'s */
    uint32_t connect_timeout_ms;
    uint32_t idle_timeout_ms;
    struct upstream_source source;             /* when source_line != 0; else [global]'s */
    int source_line;
    struct congestion congestion;              /* of its client sockets; copied into the snapshot */
    int congestion_line;                       /* of its congestion_control key, if any */
};

/* A key that takes one value, and the line that gave it (see key_set_before). */
struct set_key {
    char name[32];
    int line;
};
#define SET_KEYS_MAX 16          /* more than any section has keys */

struct pending_upstream {
    struct upstream upstream;
    int line;
    int congestion_line;     /* of its congestion_control key, if any */
};

struct loader {
    const char *path;
    FILE *file;
    int read_error;              /* errno of a failed read: the file was not read whole */
    int line;
    struct config_errors *errors;
    enum section_kind section;
    int section_line;
    int global_line;             /* of the [global] header; 0: none yet */
    struct set_key set_keys[SET_KEYS_MAX]; /* this section's one-value keys so far */
    size_t set_key_count;
    size_t current_upstream;     /* index while in [upstream X] */
    size_t current_listener;     /* index while in [listen ...] */
    size_t current_table;        /* index while in [routes ...] */
    struct config *config;
    struct snapshot_settings settings;
    struct upstream_source source;   /* [global]'s `source` */
    int source_line;
    int stats_line;
    struct pending_route *routes;
    size_t route_count;
    char *route_text;            /* every route's pattern and target, NUL-terminated: */
    size_t route_text_length;    /* one buffer, not two mallocs per route (100,000 */
    size_t route_text_capacity;  /* routes: 20% of a reload was malloc) */
    struct pending_upstream *upstreams;
    size_t upstream_count;
    struct name_index named_upstreams;   /* [upstream NAME] -> index in upstreams */
    struct name_index literal_upstreams; /* "address:port" target -> index */
    struct pending_listener *listeners;
    size_t listener_count;
    struct name_index listener_names; /* [listen NAME] -> index in listeners */
    struct name_index table_names;    /* [routes NAME] -> index in tables */
    struct pending_table *tables;
    size_t table_count;
    bool out_of_memory;
};

static void add_error(struct loader *loader, int line, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void add_error(struct loader *loader, int line, const char *format, ...)
{
    char problem[512], *text = NULL;
    va_list args;
    va_start(args, format);
    vsnprintf(problem, sizeof problem, format, args);
    va_end(args);
    int length = line > 0 ? asprintf(&text, "%s:%d: %s", loader->path, line, problem)
                          : asprintf(&text, "%s: %s", loader->path, problem);
    char **lines = realloc(loader->errors->lines, (loader->errors->count + 1) * sizeof *lines);
    if (lines) /* kept even without a text to add: the old array is gone */
        loader->errors->lines = lines;
    if (length < 0 || !lines) {
        free(text);
        loader->out_of_memory = true;
        return;
    }
    lines[loader->errors->count++] = text;
}

/* Room for element `count` of an array that holds `count` now. Capacity
 * doubles (4, 8, 16...) and is implied by the count, so callers keep only
 * counts: growing by one each time made 100,000 routes quadratic. */
static void *grow(struct loader *loader, void *array, size_t count, size_t element_size)
{
    bool full = count == 0 || (count >= 4 && (count & (count - 1)) == 0);
    if (!full)
        return array;
    size_t capacity = count < 4 ? 4 : count * 2;
    void *resized = realloc(array, capacity * element_size);
    if (!resized)
        loader->out_of_memory = true;
    return resized;
}

/* ---- sections (seen by the line reader) ---- */

static bool valid_upstream_name(const char *name)
{
    if (*name == '\0')
        return false;
    for (; *name; name++)
        if (!isalnum((unsigned char)*name) && *name != '_' && *name != '-')
            return false;
    return true;
}

static void open_upstream(struct loader *loader, const char *name)
{
    if (!valid_upstream_name(name)) {
        add_error(loader, loader->line, "bad upstream name '%s' (letters, digits, '_', '-')", name);
        loader->section = SECTION_UNKNOWN;
        return;
    }
    /* Logs and metrics name a connection's route by its upstream, and "-"
     * when it has none yet: this one's connections would pass for those. */
    if (strcmp(name, "-") == 0) {
        add_error(loader, loader->line,
                  "upstream name '-' is what the access log and metrics show before routing; choose another");
        loader->section = SECTION_UNKNOWN;
        return;
    }
    int32_t first = name_index_get(&loader->named_upstreams, name);
    if (first != NAME_INDEX_NONE) {
        add_error(loader, loader->line, "duplicate upstream '%s' (first at line %d)", name,
                  loader->upstreams[first].line);
        loader->section = SECTION_UNKNOWN;
        return;
    }
    struct pending_upstream *upstreams = grow(loader, loader->upstreams, loader->upstream_count,
                                              sizeof *upstreams);
    if (!upstreams)
        return;
    loader->upstreams = upstreams;
    struct pending_upstream *pending = &upstreams[loader->upstream_count];
    memset(pending, 0, sizeof *pending);
    pending->upstream.name = strdup(name);
    pending->line = loader->line;
    if (!pending->upstream.name ||
        !name_index_put(&loader->named_upstreams, pending->upstream.name, (int32_t)loader->upstream_count)) {
        upstream_release(&pending->upstream);
        loader->out_of_memory = true;
        return;
    }
    loader->current_upstream = loader->upstream_count++;
    loader->section = SECTION_UPSTREAM;
}

static void open_listener(struct loader *loader, const char *name)
{
    if (*name && !valid_upstream_name(name)) {
        add_error(loader, loader->line, "bad listener name '%s' (letters, digits, '_', '-')", name);
        loader->section = SECTION_UNKNOWN;
        return;
    }
    int32_t first = name_index_get(&loader->listener_names, name);
    if (first != NAME_INDEX_NONE) {
        add_error(loader, loader->line, "duplicate [listen%s%s] (first at line %d)", *name ? " " : "", name,
                  loader->listeners[first].line);
        loader->section = SECTION_UNKNOWN;
        return;
    }
    struct pending_listener *listeners = grow(loader, loader->listeners, loader->listener_count,
                                              sizeof *listeners);
    if (!listeners)
        return;
    loader->listeners = listeners;
    struct pending_listener *listener = &listeners[loader->listener_count];
    memset(listener, 0, sizeof *listener);
    listener->name = strdup(name);
    listener->line = loader->line;
    if (!listener->name ||
        !name_index_put(&loader->listener_names, listener->name, (int32_t)loader->listener_count)) {
        free(listener->name);
        loader->out_of_memory = true;
        return;
    }
    loader->current_listener = loader->listener_count++;
    loader->section = SECTION_LISTEN;
}

static void open_table(struct loader *loader, const char *name)
{
    if (*name && !valid_upstream_name(name)) {
        add_error(loader, loader->line, "bad routes name '%s' (letters, digits, '_', '-')", name);
        loader->section = SECTION_UNKNOWN;
        return;
    }
    int32_t first = name_index_get(&loader->table_names, name);
    if (first != NAME_INDEX_NONE) {
        add_error(loader, loader->line, "duplicate [routes%s%s] (first at line %d)", *name ? " " : "", name,
                  loader->tables[first].line);
        loader->section = SECTION_UNKNOWN;
        return;
    }
    struct pending_table *tables = grow(loader, loader->tables, loader->table_count, sizeof *tables);
    if (!tables)
        return;
    loader->tables = tables;
    struct pending_table *table = &tables[loader->table_count];
    memset(table, 0, sizeof *table);
    table->name = strdup(name);
    table->line = loader->line;
    if (!table->name || !name_index_put(&loader->table_names, table->name, (int32_t)loader->table_count)) {
        free(table->name);
        loader->out_of_memory = true;
        return;
    }
    loader->current_table = loader->table_count++;
    loader->section = SECTION_ROUTES;
}

/* "kind" or "kind NAME": returns the name ("" when absent), or NULL if
 * `section` is not of this kind. */
static const char *section_name(char *section, const char *kind)
{
    size_t length = strlen(kind);
    if (strncmp(section, kind, length) != 0)
        return NULL;
    if (section[length] == '\0')
        return section + length;
    if (!isspace((unsigned char)section[length]))
        return NULL;
    char *name = section + length;
    while (isspace((unsigned char)*name))
        name++;
    return name;
}

static void open_section(struct loader *loader, char *name)
{
    loader->section_line = loader->line;
    loader->set_key_count = 0;
    const char *named;
    if (strcmp(name, "global") == 0 && loader->global_line) {
        add_error(loader, loader->line, "duplicate [global] (first at line %d)", loader->global_line);
        loader->section = SECTION_UNKNOWN;
    } else if (strcmp(name, "global") == 0) {
        loader->global_line = loader->line;
        loader->section = SECTION_GLOBAL;
    } else if ((named = section_name(name, "listen")) != NULL) {
        open_listener(loader, named);
    } else if ((named = section_name(name, "routes")) != NULL) {
        open_table(loader, named);
    } else if ((named = section_name(name, "upstream")) != NULL && *named) {
        open_upstream(loader, named);
    } else {
        add_error(loader, loader->line, "unknown section [%s]", name);
        loader->section = SECTION_UNKNOWN;
    }
}

/* Trim spaces in place; returns the start. */
static char *trim(char *text)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t length = strlen(text);
    while (length > 0 && isspace((unsigned char)text[length - 1]))
        text[--length] = '\0';
    return text;
}

static void notice_section_header(struct loader *loader, const char *line)
{
    while (isspace((unsigned char)*line))
        line++;
    if (*line != '[')
        return; /* most lines: no copy */
    char copy[256];
    snprintf(copy, sizeof copy, "%s", line);
    char *text = trim(copy);
    if (text[0] != '[')
        return;
    char *close = strchr(text, ']');
    if (!close)
        return; /* inih reports the syntax error */
    *close = '\0';
    open_section(loader, trim(text + 1));
    /* inih drops whatever follows the ']': "[global] workers = 4" would
     * lose its key without a word. Only a comment may follow. */
    const char *rest = trim(close + 1);
    if (*rest && *rest != ';' && *rest != '#')
        add_error(loader, loader->line, "text after [%s]: '%s' (a key goes on a line of its own)", trim(text + 1),
                  rest);
}

/* True when fgets stopped inside a line: it is longer than the buffer.
 * Consumes the rest of that line. */
static bool line_was_cut(FILE *file, const char *buffer, int size)
{
    size_t length = strlen(buffer);
    if (length + 1 < (size_t)size || buffer[length - 1] == '\n')
        return false;
    int next = getc(file);
    if (next == '\r')
        next = getc(file); /* a CRLF file's line end is no character either */
    if (next == EOF || next == '\n')
        return false; /* the line fitted exactly */
    while (next != EOF && next != '\n')
        next = getc(file);
    return true;
}

static void add_route(struct loader *loader, const char *name, const char *value);

/* Most lines of a big config are "name = target" in a [routes] section:
 * those are split here (route_line.c: a third of a 100,000-route reload
 * was inih's scan) and inih is handed an empty line, which it skips. */
static void take_plain_route(struct loader *loader, char *buffer)
{
    char *name, *target;
    if (loader->section != SECTION_ROUTES || !route_line_split(buffer, &name, &target))
        return;
    add_route(loader, name, target);
    buffer[0] = '\0';
}

/* inih's line source: fgets plus line counting, and two of inih's rules
 * replaced because they turn ordinary files into confusing errors. An
 * indented line would continue the previous key's value ("a = x" then
 * "  b = y" reads as a = "b = y"): indentation is dropped, every line
 * stands alone. A line longer than inih's buffer (a compile-time size,
 * 200 bytes in Debian's build) would be cut and its rest read as the next
 * line: it is reported as what it is and skipped whole. */
static char *read_line(char *buffer, int size, void *stream)
{
    struct loader *loader = stream;
    if (!fgets(buffer, size, loader->file)) {
        /* inih takes NULL for the end of the file: a read error (EIO, or
         * -c naming a directory) is told apart here. */
        if (ferror(loader->file))
            loader->read_error = errno;
        return NULL;
    }
    loader->line++;
    if (line_was_cut(loader->file, buffer, size)) {
        add_error(loader, loader->line, "line longer than %d characters, the most the INI reader (inih) takes",
                  size - 1);
        buffer[0] = '\0';
        return buffer;
    }
    /* A UTF-8 byte order mark (editors on Windows write one): inih skips
     * it, and so must the section tracking here. */
    if (loader->line == 1 && strncmp(buffer, "\xEF\xBB\xBF", 3) == 0)
        memmove(buffer, buffer + 3, strlen(buffer + 3) + 1);
    /* Every byte inih's isspace() skips: an indentation of \v or \f
     * would still make a continuation line. */
    size_t indent = strspn(buffer, " \t\v\f\r");
    if (indent > 0)
        memmove(buffer, buffer + indent, strlen(buffer + indent) + 1);
    notice_section_header(loader, buffer);
    take_plain_route(loader, buffer);
    return buffer;
}

/* ---- keys ---- */

static bool parse_duration_key(struct loader *loader, const char *name, const char *value,
                               uint32_t *out)
{
    uint64_t ms;
    if (!units_parse_duration(value, &ms) || ms == 0 || ms > CONFIG_TIMEOUT_MAX_MS) {
        add_error(loader, loader->line, "%s: bad duration '%s' (e.g. 500ms, 5s, 10m; more than 0, at most 30d)",
                  name, value);
        return false;
    }
    *out = (uint32_t)ms;
    return true;
}

/* `max_connections_per_client = N | off`, in [global] or a [listen]. */
static void parse_client_limit(struct loader *loader, const char *value, uint32_t *limit)
{
    uint64_t number;
    if (strcmp(value, "off") == 0)
        *limit = 0;
    else if (units_parse_count(value, 1, 10000000, &number))
        *limit = (uint32_t)number;
    else
        add_error(loader, loader->line, "max_connections_per_client: expected off or 1..10000000, got '%s'", value);
}

/* `source = none | client | ADDRESS`, in [global] or a [listen]. */
static void parse_source(struct loader *loader, const char *value, struct upstream_source *source, int *line)
{
    char error[200];
    if (!upstream_source_parse(value, source, error, sizeof error)) {
        add_error(loader, loader->line, "source: %s", error);
        return;
    }
    *line = loader->line;
}

/* `access_log = off | /absolute/path`. A relative path would be the
 * working directory's (/ under systemd), and it is what a mistyped off
 * ("none", "OFF", "no") becomes: a log file by that name, not no log. */
static void set_access_log(struct loader *loader, const char *value)
{
    free(loader->config->access_log);
    loader->config->access_log = NULL;
    if (strcmp(value, "off") == 0)
        return;
    if (value[0] != '/') {
        add_error(loader, loader->line, "access_log: expected off or an absolute path, got '%s'", value);
        return;
    }
    loader->config->access_log = strdup(value);
    loader->config->access_log_line = loader->line;
    if (!loader->config->access_log)
        loader->out_of_memory = true;
}

static void set_global(struct loader *loader, const char *name, const char *value)
{
    struct snapshot_settings *settings = &loader->settings;
    uint64_t number;
    if (strcmp(name, "workers") == 0) {
        if (strcmp(value, "auto") == 0)
            loader->config->workers = 0;
        else if (units_parse_count(value, 1, WORKERS_MAX, &number))
            loader->config->workers = (unsigned)number;
        else
            add_error(loader, loader->line, "workers: expected auto or 1..%d, got '%s'", WORKERS_MAX, value);
    } else if (strcmp(name, "stats") == 0) {
        char error[256];
        loader->config->has_stats = strcmp(value, "off") != 0;
        /* TCP only: a unix: socket file would outlive the process and
         * make the next start fail on it. An IPv4-mapped address stays
         * allowed: it served before, on a dual-stack socket. */
        if (loader->config->has_stats && !address_parse_tcp(value, &loader->config->stats, error, sizeof error))
            add_error(loader, loader->line, "stats: %s", error);
        loader->stats_line = loader->line;
    } else if (strcmp(name, "access_log") == 0) {
        set_access_log(loader, value);
    } else if (strcmp(name, "user") == 0) {
        free(loader->config->user);
        loader->config->user = strdup(value);
        loader->config->user_line = loader->line;
        if (!loader->config->user)
            loader->out_of_memory = true;
    } else if (strcmp(name, "max_connections") == 0) {
        if (units_parse_count(value, 1, 10000000, &number))
            settings->max_connections = (uint32_t)number;
        else
            add_error(loader, loader->line, "max_connections: expected 1..10000000, got '%s'", value);
    } else if (strcmp(name, "max_connections_per_client") == 0) {
        parse_client_limit(loader, value, &settings->max_connections_per_client);
    } else if (strcmp(name, "preread_max") == 0) {
        if (units_parse_size(value, &number) && number >= PREREAD_MAX_LOW && number <= PREREAD_MAX_HIGH)
            settings->preread_max = (uint32_t)number;
        else
            add_error(loader, loader->line, "preread_max: expected a size from 1k to 64k, got '%s'", value);
    } else if (strcmp(name, "preread_timeout") == 0) {
        parse_duration_key(loader, name, value, &settings->preread_timeout_ms);
    } else if (strcmp(name, "connect_timeout") == 0) {
        parse_duration_key(loader, name, value, &settings->connect_timeout_ms);
    } else if (strcmp(name, "idle_timeout") == 0) {
        parse_duration_key(loader, name, value, &settings->idle_timeout_ms);
    } else if (strcmp(name, "drain_timeout") == 0) {
        parse_duration_key(loader, name, value, &settings->drain_timeout_ms);
    } else if (strcmp(name, "source") == 0) {
        parse_source(loader, value, &loader->source, &loader->source_line);
    } else {
        add_error(loader, loader->line, "unknown key '%s' in [global]", name);
    }
}

static void add_listen_address(struct loader *loader, const char *value)
{
    struct address address;
    char error[256];
    if (!address_parse_listen(value, &address, error, sizeof error)) {
        add_error(loader, loader->line, "address: %s", error);
        return;
    }
    struct config *config = loader->config;
    for (size_t i = 0; i < config->listen_count; i++) {
        const struct address *seen = &config->listen[i].address;
        if (seen->length == address.length && memcmp(&seen->storage, &address.storage, address.length) == 0) {
            add_error(loader, loader->line, "duplicate listen address '%s'", value);
            return;
        }
    }
    struct config_listen *listen = grow(loader, config->listen, config->listen_count, sizeof *listen);
    if (!listen)
        return;
    config->listen = listen;
    listen[config->listen_count].address = address;
    listen[config->listen_count].listener = (uint32_t)loader->current_listener;
    config->listen_count++;
    loader->listeners[loader->current_listener].address_count++;
}

/* `upstream = X` or `routes = X` (once each per listener: key_set_before). */
static void set_listener_text(struct loader *loader, const char *value, char **field, int *field_line)
{
    *field = strdup(value);
    *field_line = loader->line;
    if (!*field)
        loader->out_of_memory = true;
}

static void add_trusted_range(struct loader *loader, struct pending_listener *listener, const char *value)
{
    struct address_range range;
    char error[256];
    if (!address_range_parse(value, &range, error, sizeof error)) {
        add_error(loader, loader->line, "proxy_protocol_from: %s", error);
        return;
    }
    struct address_range *ranges = grow(loader, listener->proxy_protocol_from,
                                        listener->proxy_protocol_from_count, sizeof *ranges);
    if (!ranges)
        return;
    listener->proxy_protocol_from = ranges;
    ranges[listener->proxy_protocol_from_count++] = range;
}

/* `allow = X` / `deny = X`: kept in file order, as nginx checks them. */
static void add_access_rule(struct loader *loader, struct pending_listener *listener, const char *name,
                            const char *value)
{
    struct access_rule rule;
    char error[256];
    if (!access_rule_parse(value, strcmp(name, "allow") == 0, &rule, error, sizeof error)) {
        add_error(loader, loader->line, "%s: %s", name, error);
        return;
    }
    struct access_rule *rules = grow(loader, listener->access_rules, listener->access_rule_count,
                                     sizeof *rules);
    if (!rules)
        return;
    listener->access_rules = rules;
    rules[listener->access_rule_count++] = rule;
}

/* `congestion_control = auto | system | NAME`, in a [listen] or an [upstream]. */
static void parse_congestion(struct loader *loader, const char *value, struct congestion *congestion,
                             int *line)
{
    char error[192];
    if (!congestion_control_parse(value, congestion, error, sizeof error))
        add_error(loader, loader->line, "congestion_control: %s", error);
    *line = loader->line;
}

/* `tcp_keepalive = off | on | IDLE:INTERVAL:COUNT`, in a [listen] or an [upstream]. */
static void parse_keepalive(struct loader *loader, const char *value, struct tcp_keepalive *keepalive)
{
    char error[160];
    if (!tcp_keepalive_parse(value, keepalive, error, sizeof error))
        add_error(loader, loader->line, "tcp_keepalive: %s", error);
}

static void add_listen(struct loader *loader, const char *name, const char *value)
{
    struct pending_listener *listener = &loader->listeners[loader->current_listener];
    if (strcmp(name, "proxy_protocol_from") == 0)
        add_trusted_range(loader, listener, value);
    else if (strcmp(name, "allow") == 0 || strcmp(name, "deny") == 0)
        add_access_rule(loader, listener, name, value);
    else if (strcmp(name, "max_connections_per_client") == 0) {
        parse_client_limit(loader, value, &listener->max_connections_per_client);
        listener->max_connections_per_client_set = true;
    }
    else if (strcmp(name, "tcp_keepalive") == 0)
        parse_keepalive(loader, value, &listener->keepalive);
    else if (strcmp(name, "congestion_control") == 0)
        parse_congestion(loader, value, &listener->congestion, &listener->congestion_line);
    else if (strcmp(name, "preread_timeout") == 0)
        parse_duration_key(loader, name, value, &listener->preread_timeout_ms);
    else if (strcmp(name, "connect_timeout") == 0)
        parse_duration_key(loader, name, value, &listener->connect_timeout_ms);
    else if (strcmp(name, "idle_timeout") == 0)
        parse_duration_key(loader, name, value, &listener->idle_timeout_ms);
    else if (strcmp(name, "source") == 0)
        parse_source(loader, value, &listener->source, &listener->source_line);
    else if (strcmp(name, "address") == 0)
        add_listen_address(loader, value);
    else if (strcmp(name, "upstream") == 0)
        set_listener_text(loader, value, &listener->upstream, &listener->upstream_line);
    else if (strcmp(name, "routes") == 0)
        set_listener_text(loader, value, &listener->routes, &listener->routes_line);
    else
        add_error(loader, loader->line, "unknown key '%s' in [listen%s%s]", name,
                  *listener->name ? " " : "", listener->name);
}

/* Append text to loader->route_text; returns its offset, or SIZE_MAX. */
static size_t keep_route_text(struct loader *loader, const char *text)
{
    size_t length = strlen(text) + 1;
    if (loader->route_text_length + length > loader->route_text_capacity) {
        size_t capacity = loader->route_text_capacity ? loader->route_text_capacity * 2 : 4096;
        while (capacity < loader->route_text_length + length)
            capacity *= 2;
        char *grown = realloc(loader->route_text, capacity);
        if (!grown) {
            loader->out_of_memory = true;
            return SIZE_MAX;
        }
        loader->route_text = grown;
        loader->route_text_capacity = capacity;
    }
    size_t offset = loader->route_text_length;
    memcpy(loader->route_text + offset, text, length);
    loader->route_text_length += length;
    return offset;
}

static void add_route(struct loader *loader, const char *name, const char *value)
{
    /* inih ends a key at its first '=' or ':', so "~^(?:a|b)$ = x" reads as
     * key "~^(?" and value "a|b)$ = x"; no target contains '='. */
    if (route_regex_is_pattern(name) && strchr(value, '=')) {
        add_error(loader, loader->line, "regular expression '%s...': the INI ends a key at its first '=' or ':'; "
                                        "write (?:...) as (...), and no '=' or ':' in an expression", name);
        return;
    }
    struct pending_route *routes = grow(loader, loader->routes, loader->route_count, sizeof *routes);
    if (!routes)
        return;
    loader->routes = routes;
    struct pending_route *route = &routes[loader->route_count];
    route->pattern = keep_route_text(loader, name);
    route->target = keep_route_text(loader, value);
    route->line = loader->line;
    route->table = loader->current_table;
    if (route->pattern == SIZE_MAX || route->target == SIZE_MAX)
        return;
    loader->route_count++;
}

/* nginx's server parameters: weight=N max_fails=N fail_timeout=T max_conns=N backup down. */
static bool parse_server_flag(struct loader *loader, const char *flag, struct upstream_server *server)
{
    uint64_t number;
    if (strcmp(flag, "backup") == 0) {
        server->backup = true;
    } else if (strcmp(flag, "down") == 0) {
        server->down = true;
    } else if (strncmp(flag, "weight=", 7) == 0 && units_parse_count(flag + 7, 1, UPSTREAM_WEIGHT_MAX, &number)) {
        server->weight = (uint16_t)number;
    } else if (strncmp(flag, "max_fails=", 10) == 0 && units_parse_count(flag + 10, 0, 1000, &number)) {
        server->max_fails = (uint16_t)number;
    } else if (strncmp(flag, "fail_timeout=", 13) == 0 && units_parse_duration(flag + 13, &number) &&
               number > 0 && number <= CONFIG_TIMEOUT_MAX_MS) {
        server->fail_timeout_ms = (uint32_t)number;
    } else if (strncmp(flag, "max_conns=", 10) == 0 &&
               units_parse_count(flag + 10, 0, UPSTREAM_MAX_CONNS_MAX, &number)) {
        server->max_conns = (uint32_t)number;
    } else {
        add_error(loader, loader->line,
                  "server: bad parameter '%s' (weight=1..%d, max_fails=0..1000, fail_timeout=DURATION up to 30d, "
                  "max_conns=0..%d, backup, down)",
                  flag, UPSTREAM_WEIGHT_MAX, UPSTREAM_MAX_CONNS_MAX);
        return false;
    }
    return true;
}

/* A server's address text: numeric, unix:, or a host name resolved now
 * into every address it has (at most capacity). */
static bool parse_server_addresses(const char *text, struct address *out, size_t capacity, size_t *count,
                                   char *error, size_t error_size)
{
    char host[HOSTNAME_MAX + 1];
    uint16_t port;
    *count = 0;
    if (address_split_host_name(text, host, sizeof host, &port))
        return host_resolve(host, port, out, capacity, count, error, error_size);
    if (capacity == 0) {
        snprintf(error, error_size, "more than %d servers in one upstream", UPSTREAM_SERVERS_MAX);
        return false;
    }
    if (!address_parse(text, &out[0], error, error_size)) {
        size_t length = strlen(text);
        if (!strchr(text, ':') && hostname_normalize(text, length, host, &length))
            snprintf(error, error_size, "no port in '%s' (write name:port)", text);
        return false;
    }
    *count = 1;
    return true;
}

static void parse_balance(struct loader *loader, const char *value, struct upstream *upstream)
{
    if (strcmp(value, "round_robin") == 0)
        upstream->balance = UPSTREAM_BALANCE_ROUND_ROBIN;
    else if (strcmp(value, "least_connections") == 0)
        upstream->balance = UPSTREAM_BALANCE_LEAST_CONNECTIONS;
    else if (strcmp(value, "client_address") == 0)
        upstream->balance = UPSTREAM_BALANCE_CLIENT_ADDRESS;
    else
        add_error(loader, loader->line,
                  "balance: expected round_robin, least_connections or client_address, got '%s'", value);
}

static void add_server(struct loader *loader, const char *name, const char *value)
{
    struct upstream *upstream = &loader->upstreams[loader->current_upstream].upstream;
    if (strcmp(name, "proxy_protocol") == 0) {
        if (strcmp(value, "off") == 0)
            upstream->proxy_protocol = PROXY_PROTOCOL_OFF;
        else if (strcmp(value, "v1") == 0)
            upstream->proxy_protocol = PROXY_PROTOCOL_V1;
        else if (strcmp(value, "v2") == 0)
            upstream->proxy_protocol = PROXY_PROTOCOL_V2;
        else
            add_error(loader, loader->line, "proxy_protocol: expected off, v1 or v2, got '%s'", value);
        return;
    }
    if (strcmp(name, "congestion_control") == 0) {
        parse_congestion(loader, value, &upstream->congestion,
                         &loader->upstreams[loader->current_upstream].congestion_line);
        return;
    }
    if (strcmp(name, "tcp_keepalive") == 0) {
        parse_keepalive(loader, value, &upstream->keepalive);
        return;
    }
    if (strcmp(name, "balance") == 0) {
        parse_balance(loader, value, upstream);
        return;
    }
    if (strcmp(name, "server") != 0) {
        add_error(loader, loader->line, "unknown key '%s' in [upstream %s]", name, upstream->name);
        return;
    }
    char copy[256];
    snprintf(copy, sizeof copy, "%s", value);
    char *save = NULL;
    char *address_text = strtok_r(copy, " \t", &save);
    if (!address_text) {
        add_error(loader, loader->line, "server: missing address");
        return;
    }
    struct upstream_server server = UPSTREAM_SERVER_DEFAULTS;
    for (char *flag; (flag = strtok_r(NULL, " \t", &save)) != NULL;)
        if (!parse_server_flag(loader, flag, &server))
            return;
    char error[320];
    struct address addresses[UPSTREAM_SERVERS_MAX];
    size_t count;
    if (!parse_server_addresses(address_text, addresses, UPSTREAM_SERVERS_MAX - upstream->server_count, &count,
                                error, sizeof error)) {
        add_error(loader, loader->line, "server: %s", error);
        return;
    }
    /* A name with several addresses is several servers with this line's
     * parameters (nginx: "defines multiple servers at once"). */
    for (size_t i = 0; i < count; i++) {
        server.address = addresses[i];
        if (!upstream_add_server(upstream, &server)) {
            loader->out_of_memory = true;
            return;
        }
    }
}

/* Whether a key may be given again in its section: the keys that add a
 * value each time, a [routes] section's names (checked for duplicates as
 * routes), and any key of a section already reported as wrong. */
static bool key_repeats(enum section_kind section, const char *name)
{
    switch (section) {
    case SECTION_GLOBAL: return false;
    case SECTION_LISTEN:
        return strcmp(name, "address") == 0 || strcmp(name, "allow") == 0 || strcmp(name, "deny") == 0 ||
               strcmp(name, "proxy_protocol_from") == 0;
    case SECTION_UPSTREAM: return strcmp(name, "server") == 0;
    default: return true;
    }
}

/* A one-value key given again in its section is an error, as nginx
 * refuses a directive that "is duplicate": silently taking the last value
 * would hide the copy that was forgotten higher up. */
static bool key_set_before(struct loader *loader, const char *name)
{
    for (size_t i = 0; i < loader->set_key_count; i++) {
        if (strcmp(loader->set_keys[i].name, name) == 0) {
            add_error(loader, loader->line, "%s given twice (first at line %d)", name, loader->set_keys[i].line);
            return true;
        }
    }
    return false;
}

static void remember_key(struct loader *loader, const char *name)
{
    if (loader->set_key_count == SET_KEYS_MAX || strlen(name) >= sizeof loader->set_keys[0].name)
        return;
    struct set_key *key = &loader->set_keys[loader->set_key_count++];
    snprintf(key->name, sizeof key->name, "%s", name);
    key->line = loader->line;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct loader *loader = user;
    (void)section;
    bool repeats = key_repeats(loader->section, name);
    if (!repeats && key_set_before(loader, name))
        return 1;
    /* Only a key that took its value counts as set: an unknown key or a
     * bad value is reported already, and a line that corrects it is no
     * second value. */
    size_t errors_before = loader->errors->count;
    switch (loader->section) {
    case SECTION_GLOBAL: set_global(loader, name, value); break;
    case SECTION_LISTEN: add_listen(loader, name, value); break;
    case SECTION_ROUTES: add_route(loader, name, value); break;
    case SECTION_UPSTREAM: add_server(loader, name, value); break;
    case SECTION_NONE: add_error(loader, loader->line, "key '%s' outside any section", name); break;
    case SECTION_UNKNOWN: break; /* the section header was already reported */
    }
    if (!repeats && loader->errors->count == errors_before)
        remember_key(loader, name);
    return 1;
}

/* ---- resolution: routes -> upstream indexes, snapshot ---- */

static bool is_literal_target(const char *target)
{
    return strchr(target, ':') != NULL;
}

/* Index of the upstream for a literal address, creating it once. A bad
 * address is ROUTE_NO_MATCH with the reason in `error`; out of memory,
 * ROUTE_NO_MATCH with `error` left as it was. */
static int32_t literal_upstream(struct loader *loader, const char *target, char *error, size_t error_size)
{
    int32_t known = name_index_get(&loader->literal_upstreams, target);
    if (known != NAME_INDEX_NONE)
        return known;
    struct address addresses[UPSTREAM_SERVERS_MAX];
    size_t count;
    if (!parse_server_addresses(target, addresses, UPSTREAM_SERVERS_MAX, &count, error, error_size))
        return ROUTE_NO_MATCH;
    struct pending_upstream *upstreams = grow(loader, loader->upstreams, loader->upstream_count,
                                              sizeof *upstreams);
    if (!upstreams)
        return ROUTE_NO_MATCH;
    loader->upstreams = upstreams;
    struct pending_upstream *pending = &upstreams[loader->upstream_count];
    memset(pending, 0, sizeof *pending);
    pending->upstream.name = strdup(target);
    bool added = pending->upstream.name != NULL;
    for (size_t i = 0; added && i < count; i++) {
        struct upstream_server server = UPSTREAM_SERVER_DEFAULTS;
        server.address = addresses[i];
        added = upstream_add_server(&pending->upstream, &server);
    }
    int32_t index = (int32_t)loader->upstream_count;
    if (!added || !name_index_put(&loader->literal_upstreams, pending->upstream.name, index)) {
        upstream_release(&pending->upstream);
        loader->out_of_memory = true;
        return ROUTE_NO_MATCH;
    }
    loader->upstream_count++;
    return index;
}

static int32_t find_named_upstream(const struct loader *loader, const char *name)
{
    int32_t found = name_index_get(&loader->named_upstreams, name);
    return found == NAME_INDEX_NONE ? ROUTE_NO_MATCH : found;
}

/* The upstream a target names (an upstream name or a literal address),
 * reporting nothing: when there is none, why goes to `error` ("" when
 * out of memory). */
static int32_t find_target(struct loader *loader, const char *target, char *error, size_t error_size)
{
    error[0] = '\0';
    if (is_literal_target(target))
        return literal_upstream(loader, target, error, error_size);
    int32_t found = find_named_upstream(loader, target);
    if (found == ROUTE_NO_MATCH)
        snprintf(error, error_size, "unknown upstream '%s'", target);
    return found;
}

/* The same, reporting a wrong target at `line`, prefixed by `what`. */
static int32_t resolve_target(struct loader *loader, const char *target, int line, const char *what)
{
    char error[300];
    int32_t found = find_target(loader, target, error, sizeof error);
    if (found == ROUTE_NO_MATCH && error[0])
        add_error(loader, line, "%s: %s", what, error);
    return found;
}

static void report_route_result(struct loader *loader, const struct pending_route *route,
                                enum route_add_result added, bool alpn)
{
    const char *pattern = loader->route_text + route->pattern;
    switch (added) {
    case ROUTE_ADD_OK: break;
    case ROUTE_ADD_DUPLICATE: add_error(loader, route->line, "duplicate route '%s'", pattern); break;
    case ROUTE_ADD_INVALID:
        add_error(loader, route->line, alpn ? "invalid ALPN protocol '%s'" : "invalid server name pattern '%s'",
                  pattern);
        break;
    case ROUTE_ADD_NO_MEMORY: loader->out_of_memory = true; break;
    case ROUTE_ADD_FULL:
        add_error(loader, route->line, "route '%s': too many routes in one table (their names take %zu MiB at most)",
                  pattern, ROUTE_TABLE_RECORDS_MAX >> 20);
        break;
    }
}

static void add_regex_route(struct loader *loader, struct route_table_builder *builder,
                            const struct pending_route *route, int32_t target)
{
    const char *pattern = loader->route_text + route->pattern;
    char error[200] = "";
    enum route_add_result added = route_table_builder_add_regex(builder, pattern, target, error, sizeof error);
    if (added == ROUTE_ADD_INVALID)
        add_error(loader, route->line, "regular expression '%s': %s", pattern, error);
    else
        report_route_result(loader, route, added, false);
}

/* Name routes go to the builder in batches (route_table_builder_add_all
 * overlaps their cache misses); a batch is added before anything that
 * could report an error, so errors keep the order of the lines. */
#define ROUTE_BATCH 256

struct route_batch {
    size_t count;
    const struct pending_route *routes[ROUTE_BATCH];
    const char *patterns[ROUTE_BATCH];
    int32_t targets[ROUTE_BATCH];
    enum route_add_result results[ROUTE_BATCH];
};

static void add_route_batch(struct loader *loader, struct route_table_builder *builder, struct route_batch *batch)
{
    route_table_builder_add_all(builder, batch->patterns, batch->targets, batch->count, batch->results);
    for (size_t i = 0; i < batch->count; i++)
        report_route_result(loader, batch->routes[i], batch->results[i], false);
    batch->count = 0;
}

/* One table from its routes (indexes into loader->routes, in file order). */
static struct route_table *build_table(struct loader *loader, const size_t *routes, size_t count)
{
    struct route_table_builder *builder = route_table_builder_new();
    struct route_batch *batch = malloc(sizeof *batch);
    if (!builder || !batch || !route_table_builder_reserve(builder, count)) {
        route_table_builder_free(builder);
        free(batch);
        loader->out_of_memory = true;
        return NULL;
    }
    batch->count = 0;
    for (size_t i = 0; i < count; i++) {
        const struct pending_route *route = &loader->routes[routes[i]];
        const char *pattern = loader->route_text + route->pattern;
        bool alpn = strncmp(pattern, "alpn ", 5) == 0;
        bool regex = route_regex_is_pattern(pattern);
        char error[300];
        int32_t target = find_target(loader, loader->route_text + route->target, error, sizeof error);
        if (target == ROUTE_NO_MATCH || alpn || regex || batch->count == ROUTE_BATCH)
            add_route_batch(loader, builder, batch);
        if (target == ROUTE_NO_MATCH) {
            if (error[0])
                add_error(loader, route->line, "route '%s': %s", pattern, error);
            continue;
        }
        if (alpn) {
            report_route_result(loader, route, route_table_builder_add_alpn(builder, pattern + 5, target), true);
            continue;
        }
        if (regex) {
            add_regex_route(loader, builder, route, target);
            continue;
        }
        batch->routes[batch->count] = route;
        batch->patterns[batch->count] = pattern;
        batch->targets[batch->count++] = target;
    }
    add_route_batch(loader, builder, batch);
    free(batch);
    struct route_table *built = route_table_build(builder);
    if (!built)
        loader->out_of_memory = true;
    return built;
}

/* The routes grouped by table, each group in file order: starts[t] is
 * where table t's group begins in the returned array (starts has
 * table_count + 1 entries). Grouped once, not scanned per table: a scan
 * of every route for each of thousands of [routes NAME] tables (one per
 * listener) made the load quadratic, seconds for 100,000 routes. NULL on
 * ENOMEM. */
static size_t *routes_by_table(const struct loader *loader, size_t *starts)
{
    size_t *order = malloc((loader->route_count ? loader->route_count : 1) * sizeof *order);
    if (!order)
        return NULL;
    memset(starts, 0, (loader->table_count + 1) * sizeof *starts);
    for (size_t i = 0; i < loader->route_count; i++)
        starts[loader->routes[i].table + 1]++;
    for (size_t t = 0; t < loader->table_count; t++)
        starts[t + 1] += starts[t];
    /* Filled through a cursor per table, kept in starts shifted by one. */
    for (size_t i = 0; i < loader->route_count; i++)
        order[starts[loader->routes[i].table]++] = i;
    for (size_t t = loader->table_count; t > 0; t--)
        starts[t] = starts[t - 1];
    starts[0] = 0;
    return order;
}

static bool build_tables(struct loader *loader, struct snapshot *snapshot)
{
    snapshot->route_tables = calloc(loader->table_count ? loader->table_count : 1,
                                    sizeof *snapshot->route_tables);
    size_t *starts = malloc((loader->table_count + 1) * sizeof *starts);
    size_t *order = starts ? routes_by_table(loader, starts) : NULL;
    bool ok = snapshot->route_tables && order;
    for (size_t i = 0; ok && i < loader->table_count; i++) {
        snapshot->route_tables[i] = build_table(loader, order + starts[i], starts[i + 1] - starts[i]);
        snapshot->route_table_count = (uint32_t)i + 1;
    }
    free(order);
    free(starts);
    return ok;
}

static ssize_t find_table(const struct loader *loader, const char *name)
{
    int32_t found = name_index_get(&loader->table_names, name);
    return found == NAME_INDEX_NONE ? -1 : (ssize_t)found;
}

static void describe_listener(const struct pending_listener *listener, char *out, size_t size)
{
    snprintf(out, size, "[listen%s%s]", *listener->name ? " " : "", listener->name);
}

/* A timeout a listener may set for itself (nginx: in its server block). */
static uint32_t own_or_global(uint32_t own_ms, uint32_t global_ms)
{
    return own_ms ? own_ms : global_ms;
}

/* Its own `source`, as a timeout, else [global]'s; a listener that binds
 * the client's address is noted, for the capability check at start. */
static void set_listener_source(struct loader *loader, const struct pending_listener *pending,
                                struct snapshot_listener *listener)
{
    bool own = pending->source_line != 0;
    listener->source = own ? pending->source : loader->source;
    int line = own ? pending->source_line : loader->source_line;
    if (listener->source.kind == UPSTREAM_SOURCE_CLIENT && !loader->config->transparent_line)
        loader->config->transparent_line = line;
}

/* Fill snapshot->listeners: a route table or a plain upstream each. */

static bool build_listeners(struct loader *loader, struct snapshot *snapshot)
{
    snapshot->listeners = calloc(loader->listener_count ? loader->listener_count : 1,
                                 sizeof *snapshot->listeners);
    if (!snapshot->listeners)
        return false;
    char congestion_system[CONGESTION_NAME_MAX];
    congestion_control_system_default(congestion_system, sizeof congestion_system);
    for (size_t i = 0; i < loader->listener_count; i++) {
        struct pending_listener *pending = &loader->listeners[i];
        struct snapshot_listener *listener = &snapshot->listeners[i];
        char what[128];
        describe_listener(pending, what, sizeof what);
        listener->name = strdup(pending->name);
        listener->upstream = ROUTE_NO_MATCH;
        listener->proxy_protocol_from = pending->proxy_protocol_from;
        listener->proxy_protocol_from_count = pending->proxy_protocol_from_count;
        pending->proxy_protocol_from = NULL;
        listener->access_rules = pending->access_rules;
        listener->access_rule_count = pending->access_rule_count;
        pending->access_rules = NULL;
        listener->max_connections_per_client = pending->max_connections_per_client_set
                                                   ? pending->max_connections_per_client
                                                   : loader->settings.max_connections_per_client;
        listener->keepalive = pending->keepalive;
        listener->congestion = pending->congestion;
        memcpy(listener->congestion_system, congestion_system, sizeof congestion_system);
        listener->preread_timeout_ms = own_or_global(pending->preread_timeout_ms, loader->settings.preread_timeout_ms);
        listener->connect_timeout_ms = own_or_global(pending->connect_timeout_ms, loader->settings.connect_timeout_ms);
        listener->idle_timeout_ms = own_or_global(pending->idle_timeout_ms, loader->settings.idle_timeout_ms);
        set_listener_source(loader, pending, listener);
        snapshot->listener_count = (uint32_t)i + 1;
        if (!listener->name)
            return false;
        if (pending->address_count == 0)
            add_error(loader, pending->line, "%s has no address", what);
        if (pending->upstream && pending->routes) {
            add_error(loader, pending->routes_line, "%s: routes and upstream exclude each other", what);
            continue;
        }
        if (pending->upstream) {
            char target_what[160];
            snprintf(target_what, sizeof target_what, "%s upstream", what);
            listener->upstream = resolve_target(loader, pending->upstream, pending->upstream_line, target_what);
            continue;
        }
        const char *table_name = pending->routes ? pending->routes : pending->name;
        ssize_t table = find_table(loader, table_name);
        if (table < 0) {
            add_error(loader, pending->routes ? pending->routes_line : pending->line,
                      "%s: no [routes%s%s] section", what, *table_name ? " " : "", table_name);
            continue;
        }
        loader->tables[table].used = true;
        listener->routes = snapshot->route_tables[table];
    }
    return true;
}

/* Loaded as root, but set as `user`: by the workers, on upstream sockets
 * and on listening sockets at every snapshot they adopt. */
static void check_congestion_allowed(struct loader *loader, const struct congestion *congestion, int line)
{
    const char *user = loader->config->user;
    if (user && congestion->choice == CONGESTION_NAMED && !congestion_control_allowed_to_users(congestion->name))
        add_error(loader, line,
                  "congestion_control: '%s' is not allowed for user '%s' (see net.ipv4.tcp_allowed_congestion_control)",
                  congestion->name, user);
}

static void check_upstreams(struct loader *loader)
{
    for (size_t i = 0; i < loader->upstream_count; i++) {
        const struct pending_upstream *pending = &loader->upstreams[i];
        if (pending->line != 0 && pending->upstream.server_count == 0)
            add_error(loader, pending->line, "upstream '%s' has no server", pending->upstream.name);
        check_congestion_allowed(loader, &pending->upstream.congestion, pending->congestion_line);
    }
}

static void check_listener_congestion(struct loader *loader)
{
    for (size_t i = 0; i < loader->listener_count; i++)
        check_congestion_allowed(loader, &loader->listeners[i].congestion, loader->listeners[i].congestion_line);
}

static void check_tables(struct loader *loader)
{
    for (size_t i = 0; i < loader->table_count; i++)
        if (!loader->tables[i].used)
            add_error(loader, loader->tables[i].line, "[routes%s%s] is used by no listener",
                      *loader->tables[i].name ? " " : "", loader->tables[i].name);
}

/* The snapshot takes over each upstream's memory. */
static bool move_upstreams(struct loader *loader, struct snapshot *snapshot)
{
    snapshot->upstreams = calloc(loader->upstream_count ? loader->upstream_count : 1,
                                 sizeof *snapshot->upstreams);
    if (!snapshot->upstreams)
        return false;
    snapshot->upstream_count = (uint32_t)loader->upstream_count;
    uint32_t health_slots = 0;
    for (size_t i = 0; i < loader->upstream_count; i++) {
        struct upstream *upstream = &loader->upstreams[i].upstream;
        upstream->health_index = health_slots;
        health_slots += upstream->server_count;
        if (!upstream_schedule_build(upstream))
            return false;
        if (upstream->balance == UPSTREAM_BALANCE_CLIENT_ADDRESS && !upstream_hash_build(upstream))
            return false;
        snapshot->upstreams[i] = *upstream;
        memset(upstream, 0, sizeof *upstream);
    }
    snapshot->health_slots = health_slots;
    return true;
}

/* Whether binding both would collide: one port, and one address or a
 * wildcard of the same family. */
static bool addresses_collide(const struct address *a, const struct address *b)
{
    if (a->storage.ss_family != b->storage.ss_family)
        return false;
    /* Copied out, not read through casts: `a` may be a local the compiler
     * would otherwise take as unwritten (aliasing rules). */
    if (a->storage.ss_family == AF_INET) {
        struct sockaddr_in p, q;
        memcpy(&p, &a->storage, sizeof p);
        memcpy(&q, &b->storage, sizeof q);
        return p.sin_port == q.sin_port && (p.sin_addr.s_addr == q.sin_addr.s_addr ||
                                            p.sin_addr.s_addr == INADDR_ANY || q.sin_addr.s_addr == INADDR_ANY);
    }
    if (a->storage.ss_family == AF_INET6) {
        struct sockaddr_in6 p, q;
        memcpy(&p, &a->storage, sizeof p);
        memcpy(&q, &b->storage, sizeof q);
        return p.sin6_port == q.sin6_port &&
               (IN6_ARE_ADDR_EQUAL(&p.sin6_addr, &q.sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&p.sin6_addr) ||
                IN6_IS_ADDR_UNSPECIFIED(&q.sin6_addr));
    }
    return false;
}

/* The address a socket bound to `address` takes: an IPv4-mapped one
 * (the stats endpoint's dual-stack socket) takes its IPv4 address. */
static struct address as_bound(const struct address *address)
{
    struct sockaddr_in in;
    if (!address_unmap_ipv4((const struct sockaddr *)&address->storage, &in))
        return *address;
    struct address ipv4 = { .length = sizeof in };
    memcpy(&ipv4.storage, &in, sizeof in);
    return ipv4;
}

/* The stats endpoint's address may not be one a listener binds: start-up
 * would fail on it, and -t must say so first. */
static void check_stats_address(struct loader *loader)
{
    const struct config *config = loader->config;
    if (!config->has_stats)
        return;
    struct address stats = as_bound(&config->stats);
    for (size_t i = 0; i < config->listen_count; i++) {
        if (addresses_collide(&stats, &config->listen[i].address)) {
            char text[ADDRESS_TEXT_MAX];
            address_format(&config->listen[i].address, text, sizeof text);
            add_error(loader, loader->stats_line, "stats: the listen address %s takes the same port", text);
            return;
        }
    }
}

static bool assemble(struct loader *loader)
{
    check_upstreams(loader);
    check_listener_congestion(loader);
    check_stats_address(loader);
    if (loader->listener_count == 0)
        add_error(loader, 0, "no [listen] address");
    struct snapshot *snapshot = snapshot_new();
    if (!snapshot || !build_tables(loader, snapshot) || !build_listeners(loader, snapshot))
        loader->out_of_memory = true;
    check_tables(loader);
    /* Literal targets may have added upstreams: move them last. */
    if (snapshot && !loader->out_of_memory && !move_upstreams(loader, snapshot))
        loader->out_of_memory = true;
    if (loader->out_of_memory) {
        /* What was not made for want of memory reads as mistakes in the
         * file (an upstream never added is "unknown"): the cause alone. */
        config_errors_free(loader->errors);
        add_error(loader, 0, "out of memory");
    }
    if (loader->errors->count > 0 || loader->out_of_memory) {
        snapshot_free(snapshot);
        return false;
    }
    snapshot->settings = loader->settings;
    struct config *config = loader->config;
    snapshot->addresses = calloc(config->listen_count ? config->listen_count : 1, sizeof *snapshot->addresses);
    if (!snapshot->addresses) {
        add_error(loader, 0, "out of memory");
        snapshot_free(snapshot);
        return false;
    }
    for (size_t i = 0; i < config->listen_count; i++)
        snapshot->addresses[i] = (struct snapshot_address){ config->listen[i].address, config->listen[i].listener };
    snapshot->address_count = (uint32_t)config->listen_count;
    config->snapshot = snapshot;
    return true;
}

static void loader_release(struct loader *loader)
{
    free(loader->route_text);
    free(loader->routes);
    for (size_t i = 0; i < loader->upstream_count; i++)
        upstream_release(&loader->upstreams[i].upstream);
    free(loader->upstreams);
    for (size_t i = 0; i < loader->listener_count; i++) {
        free(loader->listeners[i].name);
        free(loader->listeners[i].upstream);
        free(loader->listeners[i].routes);
        free(loader->listeners[i].proxy_protocol_from);
        free(loader->listeners[i].access_rules);
    }
    free(loader->listeners);
    name_index_free(&loader->named_upstreams);
    name_index_free(&loader->literal_upstreams);
    name_index_free(&loader->listener_names);
    name_index_free(&loader->table_names);
    for (size_t i = 0; i < loader->table_count; i++)
        free(loader->tables[i].name);
    free(loader->tables);
}

const struct snapshot_settings config_default_settings = {
    .preread_timeout_ms = 5000,
    .preread_max = 16 * 1024,
    .connect_timeout_ms = 5000,
    .idle_timeout_ms = 10 * 60 * 1000,
    .drain_timeout_ms = 30 * 1000,
    .max_connections = 10000,
};

/* A route's kept text (pattern and target with their NULs) is no longer
 * than its line: the file's size bounds them all, so the buffer is sized
 * once and never copies itself to grow. Pages are only touched as used. */
static bool reserve_route_text(struct loader *loader)
{
    struct stat status;
    if (fstat(fileno(loader->file), &status) != 0 || status.st_size <= 0)
        return true;
    loader->route_text = malloc((size_t)status.st_size + 2);
    if (!loader->route_text)
        return false;
    loader->route_text_capacity = (size_t)status.st_size + 2;
    return true;
}

struct config *config_load(const char *path, struct config_errors *errors)
{
    errors->lines = NULL;
    errors->count = 0;
    struct loader loader = { .path = path, .errors = errors, .settings = config_default_settings };
    loader.file = fopen(path, "r");
    if (!loader.file) {
        add_error(&loader, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    loader.config = calloc(1, sizeof *loader.config);
    if (!loader.config || !reserve_route_text(&loader)) {
        fclose(loader.file);
        free(loader.config);
        add_error(&loader, 0, "out of memory");
        return NULL;
    }
    int syntax_error = ini_parse_stream(read_line, &loader, on_key, &loader);
    fclose(loader.file);
    if (loader.read_error) {
        /* Part of a file is not a config: its errors would mislead. */
        config_errors_free(errors);
        add_error(&loader, 0, "cannot read: %s", strerror(loader.read_error));
    } else if (syntax_error > 0) {
        add_error(&loader, syntax_error, "syntax error (expected [section], key = value, or ; comment)");
    }
    bool ok = syntax_error == 0 && !loader.read_error && assemble(&loader);
    if (!ok && errors->count == 0)
        add_error(&loader, 0, "invalid configuration");
    loader_release(&loader);
    if (!ok) {
        config_free(loader.config);
        return NULL;
    }
    return loader.config;
}

void config_free(struct config *config)
{
    if (!config)
        return;
    free(config->listen);
    free(config->user);
    free(config->access_log);
    snapshot_free(config->snapshot);
    free(config);
}

void config_errors_free(struct config_errors *errors)
{
    for (size_t i = 0; i < errors->count; i++)
        free(errors->lines[i]);
    free(errors->lines);
    errors->lines = NULL;
    errors->count = 0;
}
