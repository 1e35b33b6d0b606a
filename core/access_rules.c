/*
 * access_rules.c - allow/deny rule parsing and first-match evaluation (see
 * access_rules.h).
 */
#include "access_rules.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

bool access_rule_parse(const char *text, bool allow, struct access_rule *out, char *error,
                       size_t error_size)
{
    memset(out, 0, sizeof *out);
    out->allow = allow;
    if (strcmp(text, "all") == 0) {
        out->everyone = true;
        return true;
    }
    if (strncmp(text, "unix:", 5) == 0) {
        snprintf(error, error_size, "'%s': snisplice listens on TCP only; unix: rules have nothing to judge",
                 text);
        return false;
    }
    return address_range_parse(text, &out->range, error, error_size);
}

/* ::ffff:a.b.c.d as the IPv4 address it carries; false for anything else. */
static bool unmap_ipv4(const struct sockaddr *client, struct sockaddr_in *out)
{
    if (client->sa_family != AF_INET6)
        return false;
    const struct in6_addr *address = &((const struct sockaddr_in6 *)client)->sin6_addr;
    if (!IN6_IS_ADDR_V4MAPPED(address))
        return false;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    memcpy(&out->sin_addr, &address->s6_addr[12], 4);
    return true;
}

bool access_rules_admit(const struct access_rule *rules, uint32_t count, const struct sockaddr *client)
{
    struct sockaddr_in unmapped;
    if (unmap_ipv4(client, &unmapped))
        client = (const struct sockaddr *)&unmapped;
    for (uint32_t i = 0; i < count; i++)
        if (rules[i].everyone || address_range_contains(&rules[i].range, client))
            return rules[i].allow;
    return true;
}
