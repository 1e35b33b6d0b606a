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

bool access_rules_admit(const struct access_rule *rules, uint32_t count, const struct sockaddr *client)
{
    struct sockaddr_in unmapped;
    if (address_unmap_ipv4(client, &unmapped))
        client = (const struct sockaddr *)&unmapped;
    for (uint32_t i = 0; i < count; i++)
        if (rules[i].everyone || address_range_contains(&rules[i].range, client))
            return rules[i].allow;
    return true;
}
