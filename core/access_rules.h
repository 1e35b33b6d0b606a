/*
 * access_rules.h - nginx's `allow` / `deny` (ngx_stream_access_module): an
 * ordered list of address rules that decides which clients a listener
 * serves. Parsing and matching only; the caller finds the client's address
 * (io/admission.c). Never allocates, never does I/O.
 */
#ifndef SNISPLICE_CORE_ACCESS_RULES_H
#define SNISPLICE_CORE_ACCESS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "address.h"

struct access_rule {
    struct address_range range; /* unused when everyone */
    bool everyone;              /* "all": any address of any family */
    bool allow;                 /* allow, else deny */
};

/* "all", an IPv4 or IPv6 address, or a CIDR block. On failure writes a
 * one-line reason to error. */
bool access_rule_parse(const char *text, bool allow, struct access_rule *out, char *error,
                       size_t error_size);

/* The first rule that matches the client decides; when none does, the
 * client is served (nginx: the access phase declines). An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) is judged by the IPv4 rules, as nginx does. */
bool access_rules_admit(const struct access_rule *rules, uint32_t count, const struct sockaddr *client);

#endif
