/*
 * test_access_rules.c - allow/deny as nginx's stream access module: rule
 * text, first match decides, no match serves, IPv4-mapped clients judged
 * by IPv4 rules.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../core/access_rules.h"
#include "socket_address.h"

/* Rules from "allow X" / "deny X" words; asserts each parses. */
static uint32_t parse_rules(const char *const *lines, uint32_t count, struct access_rule *rules)
{
    for (uint32_t i = 0; i < count; i++) {
        bool allow = strncmp(lines[i], "allow ", 6) == 0;
        const char *value = lines[i] + (allow ? 6 : 5);
        char error[256] = "";
        cr_assert(access_rule_parse(value, allow, &rules[i], error, sizeof error), "%s: %s", lines[i], error);
    }
    return count;
}

static bool admits(const struct access_rule *rules, uint32_t count, const char *address)
{
    struct sockaddr_storage storage = socket_address_of(address);
    return access_rules_admit(rules, count, (const struct sockaddr *)&storage);
}

Test(access_rules, first_match_decides)
{
    /* nginx's documented example. */
    const char *const lines[] = { "deny 192.168.1.1", "allow 192.168.1.0/24", "allow 10.1.1.0/16",
                                  "allow 2001:0db8::/32", "deny all" };
    struct access_rule rules[5];
    uint32_t count = parse_rules(lines, 5, rules);
    cr_expect_not(admits(rules, count, "192.168.1.1"), "denied before the /24 allows it");
    cr_expect(admits(rules, count, "192.168.1.2"));
    cr_expect(admits(rules, count, "10.1.200.3"), "10.1.1.0/16 means 10.1.0.0/16");
    cr_expect_not(admits(rules, count, "10.2.0.1"));
    cr_expect(admits(rules, count, "2001:db8:1::5"));
    cr_expect_not(admits(rules, count, "2001:db9::1"));
    cr_expect_not(admits(rules, count, "::1"), "deny all covers IPv6");
    cr_expect_not(admits(rules, count, "127.0.0.1"));
}

Test(access_rules, no_match_serves)
{
    const char *const lines[] = { "deny 203.0.113.0/24", "deny 2001:db8::bad" };
    struct access_rule rules[2];
    uint32_t count = parse_rules(lines, 2, rules);
    cr_expect_not(admits(rules, count, "203.0.113.77"));
    cr_expect_not(admits(rules, count, "2001:db8::bad"));
    cr_expect(admits(rules, count, "203.0.114.1"), "no rule matches: served, as nginx");
    cr_expect(admits(rules, count, "2001:db8::bae"));
    cr_expect(admits(rules, 0, "198.51.100.1"), "no rules at all: every client is served");
}

Test(access_rules, mapped_ipv4_is_judged_by_ipv4_rules)
{
    const char *const lines[] = { "allow 10.0.0.0/8", "deny all" };
    struct access_rule rules[2];
    uint32_t count = parse_rules(lines, 2, rules);
    cr_expect(admits(rules, count, "::ffff:10.9.8.7"));
    cr_expect_not(admits(rules, count, "::ffff:11.9.8.7"));
    const char *const ipv6_only[] = { "allow ::/0", "deny all" };
    count = parse_rules(ipv6_only, 2, rules);
    cr_expect_not(admits(rules, count, "::ffff:10.9.8.7"), "an IPv6 rule does not match a mapped IPv4 client");
    cr_expect(admits(rules, count, "2001:db8::1"));
}

Test(access_rules, rule_text_errors)
{
    struct access_rule rule;
    char error[256];
    const char *const bad[] = { "", "al", "ALL", "lan.example.com", "10.0.0.0/33", "::/129",
                                "10.0.0.1/", "300.1.2.3", "unix:", "10.0.0.0/8 deny" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        error[0] = '\0';
        cr_expect_not(access_rule_parse(bad[i], true, &rule, error, sizeof error), "'%s' accepted", bad[i]);
        cr_expect_neq(error[0], '\0', "'%s': no reason given", bad[i]);
    }
    cr_assert(access_rule_parse("unix:", false, &rule, error, sizeof error) == false);
    cr_expect(strstr(error, "TCP only"), "%s", error);
    cr_assert(access_rule_parse("all", false, &rule, error, sizeof error));
    cr_expect(rule.everyone && !rule.allow);
    cr_assert(access_rule_parse("192.0.2.9", true, &rule, error, sizeof error));
    cr_expect(!rule.everyone && rule.allow && rule.range.prefix_length == 32);
}
