/*
 * upstream_source.h - the address a listener's upstream sockets connect
 * from (`source` in the INI; nginx's `proxy_bind`): the system's choice,
 * one fixed address, or the client's own address (transparent proxying).
 *
 * It lives in the snapshot a connection pins while connecting; the bind
 * itself is io/upstream_source.c's. No I/O here.
 */
#ifndef SNISPLICE_CORE_UPSTREAM_SOURCE_H
#define SNISPLICE_CORE_UPSTREAM_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "address.h"

enum upstream_source_kind {
    UPSTREAM_SOURCE_NONE,    /* no bind: the system picks the address */
    UPSTREAM_SOURCE_ADDRESS, /* bind `address` (port 0) before connecting */
    UPSTREAM_SOURCE_CLIENT,  /* bind the client's address (IP_TRANSPARENT) */
};

struct upstream_source {
    enum upstream_source_kind kind;
    struct address address;  /* UPSTREAM_SOURCE_ADDRESS: AF_INET or AF_INET6, port 0 */
};

/* `none`, `client`, or an IPv4 or IPv6 address without a port ("[::1]"
 * as well as "::1"; an IPv4-mapped IPv6 address is taken as the IPv4
 * address). False with the problem in error (without the key's name). */
bool upstream_source_parse(const char *text, struct upstream_source *out, char *error, size_t error_size);

/* "1.2.3.4:80" or "[::1]:80": an address with a port, which a source
 * must not have. */
bool upstream_source_has_port(const char *text);

#endif
