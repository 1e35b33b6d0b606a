/*
 * nginx_import_protocol.c - maps on $ssl_preread_protocol. nginx's map is
 * evaluated, as nginx looks values up, for each value the variable holds
 * ("" and TLSv1 to TLSv1.3), and reduced to the two routes snisplice has
 * for it: not_tls and default, or a server-name or ALPN map's table
 * continuing in place of the default (nginx's `default $name;`).
 *
 * Only chooses the two entries (map->not_tls, map->tls) and says what is
 * lost, such as routing by TLS version. Never resolves or writes a target:
 * nginx_import.c walks the chosen entries as it walks every map's, so a
 * protocol map's targets are checked once and said in the same words.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/route_regex.h"
#include "nginx_import_model.h"

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
        import_warn(importer, entry, "map entry '%s': regular expression not evaluated: %s; skipped, so the TLS "
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
    if (hostnames && import_is_wildcard(key)) {
        import_warn(importer, entry, "map entry '%s': a wildcard on $ssl_preread_protocol is not evaluated; skipped",
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
        if (!import_map_entry(importer, entry, &hostnames))
            continue;
        if (strcmp(entry->name, "default") == 0) {
            if (!lookup->fallback) /* nginx refuses a second one */
                lookup->fallback = entry;
            continue;
        }
        int matches = protocol_key_matches(importer, entry, hostnames);
        if (matches == 0)
            import_warn(importer, entry, "map entry '%s': matches neither \"\" nor a TLS version from TLSv1 to "
                                         "TLSv1.3, the clients snisplice tells apart; skipped (an SSLv3 client goes "
                                         "with the TLS ones)", entry->name);
        const struct nginx_directive **first =
            route_regex_is_pattern(entry->name) ? lookup->regex : lookup->exact;
        for (int value = 0; matches > 0 && value < PROTOCOL_VALUES; value++)
            if ((matches & (1 << value)) && !first[value])
                first[value] = entry;
    }
}

/* Two map values that reach the same place: nginx compares upstream names
 * without case, and a host name or address is the same in any case. */
static bool same_target(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

static bool same_for_every_version(const struct protocol_lookup *lookup)
{
    const char *modern = protocol_target(protocol_entry(lookup, PROTOCOL_MODERN));
    for (int value = PROTOCOL_FIRST_TLS; value < PROTOCOL_MODERN; value++)
        if (!same_target(protocol_target(protocol_entry(lookup, value)), modern))
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
        import_text_printf(&versions, "%s%s -> %s", value > PROTOCOL_FIRST_TLS ? ", " : "", protocol_values[value],
                           target[0] ? target : "\"\"");
    }
    const char *modern = protocol_target(protocol_entry(lookup, PROTOCOL_MODERN));
    if (versions.failed)
        importer->failed = true;
    else
        import_warn(importer, map->directive,
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
    if (!fallback || same_target(fallback->args[0], tls_target))
        return;
    for (int value = 0; value < PROTOCOL_VALUES; value++)
        if (protocol_entry(lookup, value) == fallback)
            return;
    import_warn(importer, fallback, "default %s: \"\" and every TLS version have entries of their own, so nginx "
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
        import_warn(importer, at, "map $%s: nginx closed TLS clients (%s); the table has no default route, so "
                                  "snisplice closes them too", map->variable,
                    entry ? "the target is \"\"" : "no entry for their versions and no default");
        return;
    }
    if (target[0] != '$') {
        map->tls = entry;
        return;
    }
    struct import_map *next = import_find_map(importer, target);
    if (!next || !(next->server_name || next->alpn) || import_map_has_affix(next) || import_map_has_affix(map)) {
        import_warn(importer, at, "map $%s: TLS clients' target %s: snisplice continues a table only with a map on "
                                  "$ssl_preread_server_name or $ssl_preread_alpn_protocols, and only under proxy_pass "
                                  "$map; no default route written", map->variable, target);
        return;
    }
    import_chain_to(map, next);
}

/* The not_tls route: written only when it differs from the TLS clients'
 * (without it they take the default, as in nginx's `default` catching ""). */
static void resolve_not_tls_route(struct importer *importer, struct import_map *map,
                                  const struct nginx_directive *entry, const char *tls_target)
{
    const char *target = protocol_target(entry);
    if (same_target(target, tls_target))
        return;
    const struct nginx_directive *at = entry ? entry : map->directive;
    if (target[0] == '\0') {
        import_warn(importer, at, "map $%s: nginx closed clients that do not speak TLS (%s); snisplice has no "
                                  "route to nothing, so they take the default route", map->variable,
                    entry ? "the target is \"\"" : "no \"\" entry and no default");
        return;
    }
    if (target[0] == '$') {
        import_warn(importer, at, "map $%s: target %s for clients that do not speak TLS: not_tls names one upstream "
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
void import_protocol_resolve_map(struct importer *importer, struct import_map *map)
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
