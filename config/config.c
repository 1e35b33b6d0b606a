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
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

#define WORKERS_MAX 256
#define TIMEOUT_MAX_MS (30ull * 24 * 3600 * 1000)
#define PREREAD_MAX_LOW 1024
#define PREREAD_MAX_HIGH (64 * 1024)

enum section_kind { SECTION_NONE, SECTION_GLOBAL, SECTION_LISTEN, SECTION_ROUTES, SECTION_UPSTREAM, SECTION_UNKNOWN };

struct pending_route {
    char *pattern;
    char *target;
    int line;
};

struct pending_upstream {
    struct upstream upstream;
    int line;
};

struct loader {
    const char *path;
    FILE *file;
    int line;
    struct config_errors *errors;
    enum section_kind section;
    int section_line;
    size_t current_upstream;                          /* index while in [upstream X] */
    struct config *config;
    struct snapshot_settings settings;
    struct pending_route *routes;
    size_t route_count;
    struct pending_upstream *upstreams;
    size_t upstream_count;
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
    if (length < 0 || !lines) {
        free(text);
        loader->out_of_memory = true;
        return;
    }
    loader->errors->lines = lines;
    lines[loader->errors->count++] = text;
}

static void *grow(struct loader *loader, void *array, size_t count, size_t element_size)
{
    void *resized = realloc(array, (count + 1) * element_size);
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
    for (size_t i = 0; i < loader->upstream_count; i++) {
        if (strcmp(loader->upstreams[i].upstream.name, name) == 0) {
            add_error(loader, loader->line, "duplicate upstream '%s' (first at line %d)", name,
                      loader->upstreams[i].line);
            loader->section = SECTION_UNKNOWN;
            return;
        }
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
    if (!pending->upstream.name) {
        loader->out_of_memory = true;
        return;
    }
    loader->current_upstream = loader->upstream_count++;
    loader->section = SECTION_UPSTREAM;
}

static void open_section(struct loader *loader, char *name)
{
    loader->section_line = loader->line;
    if (strcmp(name, "global") == 0) {
        loader->section = SECTION_GLOBAL;
    } else if (strcmp(name, "listen") == 0) {
        loader->section = SECTION_LISTEN;
    } else if (strcmp(name, "routes") == 0) {
        loader->section = SECTION_ROUTES;
    } else if (strncmp(name, "upstream", 8) == 0 && isspace((unsigned char)name[8])) {
        char *upstream_name = name + 8;
        while (isspace((unsigned char)*upstream_name))
            upstream_name++;
        open_upstream(loader, upstream_name);
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
}

/* inih's line source: fgets plus line counting. */
static char *read_line(char *buffer, int size, void *stream)
{
    struct loader *loader = stream;
    if (!fgets(buffer, size, loader->file))
        return NULL;
    loader->line++;
    notice_section_header(loader, buffer);
    return buffer;
}

/* ---- keys ---- */

static bool parse_duration_key(struct loader *loader, const char *name, const char *value,
                               uint32_t *out)
{
    uint64_t ms;
    if (!units_parse_duration(value, &ms) || ms == 0 || ms > TIMEOUT_MAX_MS) {
        add_error(loader, loader->line, "%s: bad duration '%s' (e.g. 500ms, 5s, 10m; more than 0)",
                  name, value);
        return false;
    }
    *out = (uint32_t)ms;
    return true;
}

static bool parse_count(const char *value, uint64_t low, uint64_t high, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*value))
        return false;
    unsigned long long number = strtoull(value, &end, 10);
    if (errno || *end != '\0' || number < low || number > high)
        return false;
    *out = number;
    return true;
}

static void set_global(struct loader *loader, const char *name, const char *value)
{
    struct snapshot_settings *settings = &loader->settings;
    uint64_t number;
    if (strcmp(name, "workers") == 0) {
        if (strcmp(value, "auto") == 0)
            loader->config->workers = 0;
        else if (parse_count(value, 1, WORKERS_MAX, &number))
            loader->config->workers = (unsigned)number;
        else
            add_error(loader, loader->line, "workers: expected auto or 1..%d, got '%s'", WORKERS_MAX, value);
    } else if (strcmp(name, "max_connections") == 0) {
        if (parse_count(value, 1, 10000000, &number))
            settings->max_connections = (uint32_t)number;
        else
            add_error(loader, loader->line, "max_connections: expected 1..10000000, got '%s'", value);
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
    } else {
        add_error(loader, loader->line, "unknown key '%s' in [global]", name);
    }
}

static void add_listen(struct loader *loader, const char *name, const char *value)
{
    if (strcmp(name, "address") != 0) {
        add_error(loader, loader->line, "unknown key '%s' in [listen]", name);
        return;
    }
    struct address address;
    char error[256];
    if (!address_parse(value, &address, error, sizeof error)) {
        add_error(loader, loader->line, "address: %s", error);
        return;
    }
    struct config *config = loader->config;
    for (size_t i = 0; i < config->listen_count; i++) {
        if (config->listen[i].length == address.length &&
            memcmp(&config->listen[i].storage, &address.storage, address.length) == 0) {
            add_error(loader, loader->line, "duplicate listen address '%s'", value);
            return;
        }
    }
    struct address *listen = grow(loader, config->listen, config->listen_count, sizeof *listen);
    if (!listen)
        return;
    config->listen = listen;
    listen[config->listen_count++] = address;
}

static void add_route(struct loader *loader, const char *name, const char *value)
{
    struct pending_route *routes = grow(loader, loader->routes, loader->route_count, sizeof *routes);
    if (!routes)
        return;
    loader->routes = routes;
    struct pending_route *route = &routes[loader->route_count];
    route->pattern = strdup(name);
    route->target = strdup(value);
    route->line = loader->line;
    if (!route->pattern || !route->target) {
        free(route->pattern);
        free(route->target);
        loader->out_of_memory = true;
        return;
    }
    loader->route_count++;
}

static void add_server(struct loader *loader, const char *name, const char *value)
{
    struct upstream *upstream = &loader->upstreams[loader->current_upstream].upstream;
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
    bool backup = false;
    for (char *flag; (flag = strtok_r(NULL, " \t", &save)) != NULL;) {
        if (strcmp(flag, "backup") == 0) {
            backup = true;
        } else {
            add_error(loader, loader->line, "server: unknown flag '%s' (expected: backup)", flag);
            return;
        }
    }
    struct address address;
    char error[256];
    if (!address_parse(address_text, &address, error, sizeof error)) {
        add_error(loader, loader->line, "server: %s", error);
        return;
    }
    if (!upstream_add_server(upstream, &address, backup))
        loader->out_of_memory = true;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct loader *loader = user;
    (void)section;
    switch (loader->section) {
    case SECTION_GLOBAL: set_global(loader, name, value); break;
    case SECTION_LISTEN: add_listen(loader, name, value); break;
    case SECTION_ROUTES: add_route(loader, name, value); break;
    case SECTION_UPSTREAM: add_server(loader, name, value); break;
    case SECTION_NONE: add_error(loader, loader->line, "key '%s' outside any section", name); break;
    case SECTION_UNKNOWN: break; /* the section header was already reported */
    }
    return 1;
}

/* ---- resolution: routes -> upstream indexes, snapshot ---- */

static bool is_literal_target(const char *target)
{
    return strchr(target, ':') != NULL;
}

/* Index of the upstream for a literal address, creating it once. */
static int32_t literal_upstream(struct loader *loader, const struct pending_route *route)
{
    for (size_t i = 0; i < loader->upstream_count; i++)
        if (loader->upstreams[i].line == 0 && strcmp(loader->upstreams[i].upstream.name, route->target) == 0)
            return (int32_t)i;
    struct address address;
    char error[256];
    if (!address_parse(route->target, &address, error, sizeof error)) {
        add_error(loader, route->line, "route '%s': %s", route->pattern, error);
        return ROUTE_NO_MATCH;
    }
    struct pending_upstream *upstreams = grow(loader, loader->upstreams, loader->upstream_count,
                                              sizeof *upstreams);
    if (!upstreams)
        return ROUTE_NO_MATCH;
    loader->upstreams = upstreams;
    struct pending_upstream *pending = &upstreams[loader->upstream_count];
    memset(pending, 0, sizeof *pending);
    pending->upstream.name = strdup(route->target);
    if (!pending->upstream.name || !upstream_add_server(&pending->upstream, &address, false)) {
        upstream_release(&pending->upstream);
        loader->out_of_memory = true;
        return ROUTE_NO_MATCH;
    }
    return (int32_t)loader->upstream_count++;
}

static int32_t resolve_target(struct loader *loader, const struct pending_route *route)
{
    if (is_literal_target(route->target))
        return literal_upstream(loader, route);
    for (size_t i = 0; i < loader->upstream_count; i++)
        if (loader->upstreams[i].line != 0 && strcmp(loader->upstreams[i].upstream.name, route->target) == 0)
            return (int32_t)i;
    add_error(loader, route->line, "route '%s': unknown upstream '%s'", route->pattern, route->target);
    return ROUTE_NO_MATCH;
}

static struct route_table *build_routes(struct loader *loader)
{
    struct route_table_builder *builder = route_table_builder_new();
    if (!builder) {
        loader->out_of_memory = true;
        return NULL;
    }
    for (size_t i = 0; i < loader->route_count; i++) {
        const struct pending_route *route = &loader->routes[i];
        int32_t target = resolve_target(loader, route);
        if (target == ROUTE_NO_MATCH)
            continue;
        switch (route_table_builder_add(builder, route->pattern, target)) {
        case ROUTE_ADD_OK: break;
        case ROUTE_ADD_DUPLICATE: add_error(loader, route->line, "duplicate route '%s'", route->pattern); break;
        case ROUTE_ADD_INVALID: add_error(loader, route->line, "invalid server name pattern '%s'", route->pattern); break;
        case ROUTE_ADD_NO_MEMORY: loader->out_of_memory = true; break;
        }
    }
    return route_table_build(builder);
}

static void check_upstreams(struct loader *loader)
{
    for (size_t i = 0; i < loader->upstream_count; i++)
        if (loader->upstreams[i].line != 0 && loader->upstreams[i].upstream.server_count == 0)
            add_error(loader, loader->upstreams[i].line, "upstream '%s' has no server",
                      loader->upstreams[i].upstream.name);
}

static bool assemble(struct loader *loader)
{
    check_upstreams(loader);
    if (loader->config->listen_count == 0)
        add_error(loader, 0, "no [listen] address");
    if (loader->route_count == 0)
        add_error(loader, 0, "no [routes]: nothing would ever be routed");
    struct route_table *routes = build_routes(loader);
    if (loader->out_of_memory)
        add_error(loader, 0, "out of memory");
    if (!routes || loader->errors->count > 0) {
        route_table_free(routes);
        return false;
    }
    struct snapshot *snapshot = snapshot_new();
    if (!snapshot) {
        route_table_free(routes);
        add_error(loader, 0, "out of memory");
        return false;
    }
    snapshot->routes = routes;
    snapshot->settings = loader->settings;
    snapshot->upstream_count = (uint32_t)loader->upstream_count;
    snapshot->upstreams = calloc(loader->upstream_count ? loader->upstream_count : 1,
                                 sizeof *snapshot->upstreams);
    if (!snapshot->upstreams) {
        snapshot->upstream_count = 0;
        snapshot_free(snapshot);
        add_error(loader, 0, "out of memory");
        return false;
    }
    /* The snapshot takes over each upstream's memory. */
    for (size_t i = 0; i < loader->upstream_count; i++) {
        snapshot->upstreams[i] = loader->upstreams[i].upstream;
        memset(&loader->upstreams[i].upstream, 0, sizeof loader->upstreams[i].upstream);
    }
    loader->config->snapshot = snapshot;
    return true;
}

static void loader_release(struct loader *loader)
{
    for (size_t i = 0; i < loader->route_count; i++) {
        free(loader->routes[i].pattern);
        free(loader->routes[i].target);
    }
    free(loader->routes);
    for (size_t i = 0; i < loader->upstream_count; i++)
        upstream_release(&loader->upstreams[i].upstream);
    free(loader->upstreams);
}

static const struct snapshot_settings default_settings = {
    .preread_timeout_ms = 5000,
    .preread_max = 16 * 1024,
    .connect_timeout_ms = 5000,
    .idle_timeout_ms = 10 * 60 * 1000,
    .drain_timeout_ms = 30 * 1000,
    .max_connections = 10000,
};

struct config *config_load(const char *path, struct config_errors *errors)
{
    errors->lines = NULL;
    errors->count = 0;
    struct loader loader = { .path = path, .errors = errors, .settings = default_settings };
    loader.file = fopen(path, "r");
    if (!loader.file) {
        add_error(&loader, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    loader.config = calloc(1, sizeof *loader.config);
    if (!loader.config) {
        fclose(loader.file);
        add_error(&loader, 0, "out of memory");
        return NULL;
    }
    int syntax_error = ini_parse_stream(read_line, &loader, on_key, &loader);
    fclose(loader.file);
    if (syntax_error > 0)
        add_error(&loader, syntax_error, "syntax error (expected [section], key = value, or ; comment)");
    bool ok = syntax_error == 0 && assemble(&loader);
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
