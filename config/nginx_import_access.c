/*
 * nginx_import_access.c - who a converted listener serves: nginx's allow /
 * deny and limit_conn / limit_conn_zone, collected per level (the stream
 * block, each server), checked once the level is complete, merged for
 * each server as nginx merges them, and written as the listener's
 * allow = / deny = and max_connections_per_client lines.
 *
 * Limits: limit_conn on a zone keyed by $binary_remote_addr or
 * $remote_addr becomes max_connections_per_client of the server's
 * listener, the smallest when it names several such zones. nginx counts
 * each zone apart and snisplice one count over every limited listener:
 * where that changes what is refused, one warning says so. Other keys,
 * and limits under limit_conn_dry_run on, are warnings.
 *
 * Never leaves out a rule or a limit without a warning: a rule skipped
 * changes what the others mean, a limit skipped serves clients nginx
 * refused. Never decides where a connection goes; routes and upstreams
 * are nginx_import.c's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/access_rules.h"
#include "nginx_import_model.h"
#include "units.h"

/* ---- allow / deny (ngx_stream_access_module) ---- */

static bool is_access_rule(const struct nginx_directive *item)
{
    return strcmp(item->name, "allow") == 0 || strcmp(item->name, "deny") == 0;
}

/* Every allow/deny is kept as written until its level is complete: only
 * then does import_access_check know whether unix: rules were all there
 * was. False: not one of them. */
bool import_access_collect(struct importer *importer, struct import_access *access,
                           const struct nginx_directive *item)
{
    if (!is_access_rule(item))
        return false;
    access->own = true;
    const struct nginx_directive **grown = import_grow(importer, access->rules, access->rule_count, sizeof *grown);
    if (grown) {
        access->rules = grown;
        grown[access->rule_count++] = item;
    }
    return true;
}

static bool is_unix_rule(const struct nginx_directive *rule)
{
    return rule->arg_count == 1 && strcmp(rule->args[0], "unix:") == 0;
}

/* nginx's own value forms: all, an IPv4 or IPv6 address, a CIDR block.
 * Anything else made nginx refuse the configuration. Read by the loader's
 * own parser, so that what is kept is what snisplice takes. */
static bool access_value_is_valid(const struct nginx_directive *rule, char *why, size_t why_size)
{
    if (rule->arg_count != 1) {
        snprintf(why, why_size, "expected one value: all, an address or a CIDR block");
        return false;
    }
    struct access_rule parsed;
    return access_rule_parse(rule->args[0], true, &parsed, why, why_size);
}

static void warn_unix_rule(struct importer *importer, const struct nginx_directive *rule, bool only_unix)
{
    import_warn(importer, rule, "%s unix: concerns clients of unix-socket listeners only, and snisplice listens on "
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
    import_warn(importer, rule, "%s%s%s: %s (nginx refuses this configuration); rule skipped. CAUTION: the rules "
                                "left may mean something else: %s; check them", rule->name,
                rule->arg_count ? " " : "", rule->arg_count ? rule->args[0] : "", why,
                deny ? "clients this deny was meant to refuse may now be served" :
                       "clients this allow was meant to serve may now meet a later deny");
}

/* Keeps, in order, the rules the INI takes, and says why each other one
 * is left out. Runs once per level, so each rule is reported once even
 * when the stream block's rules are written for several servers. */
void import_access_check(struct importer *importer, struct import_access *access)
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

bool import_is_client_address_key(const char *key)
{
    return import_variable_is(key, "remote_addr") || import_variable_is(key, "binary_remote_addr");
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
void import_access_collect_zone(struct importer *importer, const struct nginx_directive *directive)
{
    const char *zone_arg = directive->arg_count == 2 ? directive->args[1] : "";
    const char *colon = strchr(zone_arg, ':');
    if (strncmp(zone_arg, "zone=", 5) != 0 || !colon || colon == zone_arg + 5) {
        import_warn(importer, directive, "limit_conn_zone: expected 'limit_conn_zone KEY zone=NAME:SIZE' (nginx "
                                         "refuses this configuration); skipped");
        return;
    }
    const char *name = zone_arg + 5;
    size_t name_length = (size_t)(colon - name);
    if (find_zone_named(importer, name, name_length)) {
        import_warn(importer, directive, "limit_conn_zone: zone %.*s defined twice (nginx refuses this configuration); "
                                         "the second is skipped", (int)name_length, name);
        return;
    }
    struct import_zone *grown = import_grow(importer, importer->zones, importer->zone_count, sizeof *grown);
    if (!grown)
        return;
    importer->zones = grown;
    struct import_zone *zone = &grown[importer->zone_count++];
    zone->directive = directive;
    zone->name = name;
    zone->name_length = name_length;
    zone->per_address = import_is_client_address_key(directive->args[0]);
    if (!zone->per_address)
        import_warn(importer, directive, "limit_conn_zone %s zone=%.*s: snisplice limits connections per client "
                                         "address only ($binary_remote_addr or $remote_addr); the limits on this "
                                         "zone are not carried over", directive->args[0], (int)zone->name_length,
                    zone->name);
}

/* limit_conn, limit_conn_dry_run and limit_conn_log_level, at either
 * level. limit_conn lines are only kept here: whether their zone exists
 * is known once every stream block is read (import_access_check_limits).
 * False: not one of them. */
bool import_access_collect_limit(struct importer *importer, struct import_limits *limits,
                                 const struct nginx_directive *item)
{
    if (strcmp(item->name, "limit_conn_log_level") == 0) {
        import_warn(importer, item, "limit_conn_log_level: not carried over (snisplice logs refusals in its access "
                                    "log as outcome=client_limit)");
        return true;
    }
    if (strcmp(item->name, "limit_conn_dry_run") == 0) {
        /* Set here, even to off: then the stream block's does not apply. */
        limits->dry_run = item;
        limits->dry_run_on = import_is_on(importer, item);
        return true;
    }
    if (strcmp(item->name, "limit_conn") != 0)
        return false;
    limits->own = true;
    const struct nginx_directive **grown = import_grow(importer, limits->lines, limits->line_count, sizeof *grown);
    if (grown) {
        limits->lines = grown;
        grown[limits->line_count++] = item;
    }
    return true;
}

/* nginx's bounds: it refuses 0 and anything above 65535. 0: unreadable. */
static uint32_t limit_number(const char *text)
{
    uint64_t number;
    return units_parse_count(text, 1, 65535, &number) ? (uint32_t)number : 0;
}

/* Whether a limit_conn line becomes (part of) max_connections_per_client;
 * when not, says why. `kept` are the lines of its level kept so far. */
static bool check_limit(struct importer *importer, const struct nginx_directive *line,
                        const struct nginx_directive **kept, size_t kept_count)
{
    if (line->arg_count != 2 || limit_number(line->args[1]) == 0) {
        import_warn(importer, line, "limit_conn: expected 'limit_conn ZONE NUMBER', NUMBER from 1 to 65535 (nginx "
                                    "refuses this configuration); not carried over");
        return false;
    }
    const struct import_zone *zone = find_zone(importer, line->args[0]);
    if (!zone) {
        import_warn(importer, line, "limit_conn %s %s: no limit_conn_zone defines zone %s (nginx refuses this "
                                    "configuration); not carried over", line->args[0], line->args[1], line->args[0]);
        return false;
    }
    if (!zone->per_address) {
        import_warn(importer, line, "limit_conn %s %s: zone %s counts by %s, not by client address; not carried over",
                    line->args[0], line->args[1], line->args[0], zone->directive->args[0]);
        return false;
    }
    for (size_t i = 0; i < kept_count; i++) {
        if (strcmp(kept[i]->args[0], line->args[0]) == 0) {
            import_warn(importer, line, "limit_conn %s %s: zone %s named twice in one block (nginx refuses this "
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
void import_access_check_limits(struct importer *importer, struct import_limits *limits)
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
            import_warn(importer, line, "limit_conn %s %s: a listener has one max_connections_per_client, and "
                                        "snisplice keeps the smallest of this block's limits, limit_conn %s %s (%s:%d)",
                        line->args[0], line->args[1], smallest->args[0], smallest->args[1], smallest->file,
                        smallest->line);
    }
}

/* ---- a server's limit, as nginx merged it ---- */

/* Once per limit_conn_dry_run line, however many servers it covers. */
static void warn_dry_run(struct importer *importer, struct import_limits *level)
{
    if (level->dry_run_said)
        return;
    level->dry_run_said = true;
    import_warn(importer, level->dry_run, "limit_conn_dry_run on: nginx refused no one under it, it only counted and "
                                          "logged; snisplice has no dry run, so the limit_conn limits it covers were "
                                          "left out");
}

/* A converted server's limit as nginx merged it: its own limit_conn
 * lines, else the stream block's; its own limit_conn_dry_run, else the
 * stream block's, each apart. Under dry run nothing is written, but
 * nginx still counted the server's connections in the zones. */
void import_access_resolve_client_limit(struct importer *importer, struct import_server *server)
{
    if (server->listen_count == 0)
        return;
    const struct import_limits *limits = server->limits.own ? &server->limits : &importer->stream_limits;
    struct import_limits *dry_run = server->limits.dry_run ? &server->limits : &importer->stream_limits;
    bool enforced = !dry_run->dry_run_on;
    for (size_t i = 0; i < limits->line_count; i++) {
        struct import_zone *zone = find_zone(importer, limits->lines[i]->args[0]);
        if (!zone)
            continue; /* cannot happen: import_access_check_limits kept only lines with a zone */
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
void import_access_warn_counting_scope(struct importer *importer)
{
    for (size_t i = 0; i < importer->zone_count; i++) {
        const struct import_zone *zone = &importer->zones[i];
        bool same = zone->servers == zone->limiting && zone->limiting == importer->limited_servers;
        if (zone->limiting == 0 || same)
            continue;
        import_warn(importer, zone->directive,
                    "limit_conn_zone %s zone=%.*s: nginx counts a client's connections in each zone apart, over the "
                    "servers whose limit_conn names that zone (dry-run ones too); snisplice counts them together over "
                    "every listener with max_connections_per_client, so a client's connections to one listener now "
                    "count towards the limits of the others", zone->directive->args[0], (int)zone->name_length,
                    zone->name);
        return;
    }
}

/* ---- the listener's lines ---- */

/* nginx checks a server's rules, or the stream block's when the server has
 * none of its own, in order: the first that matches decides. */
static void write_access(const struct importer *importer, struct text *ini, const struct import_server *server)
{
    const struct import_access *access = server->access.own ? &server->access : &importer->stream_access;
    for (size_t i = 0; i < access->rule_count; i++)
        import_text_printf(ini, "%s = %s\n", access->rules[i]->name, access->rules[i]->args[0]);
}

void import_access_write(struct importer *importer, struct text *ini, const struct import_server *server,
                         bool proxy_protocol_from_anyone)
{
    /* Without set_real_ip_from nginx's realip replaced no address. */
    if (proxy_protocol_from_anyone && server->client_limit)
        import_warn(importer, server->directive,
                    "limit_conn behind listen ... proxy_protocol without set_real_ip_from: nginx counted the "
                    "load balancer's address; snisplice counts each client its PROXY header names");
    write_access(importer, ini, server);
    if (server->client_limit)
        import_text_printf(ini, "max_connections_per_client = %u\n", (unsigned)server->client_limit);
}
