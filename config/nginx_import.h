/*
 * nginx_import.h - `snisplice --import-nginx FILE`: an nginx configuration's
 * stream blocks converted to the equivalent snisplice INI.
 *
 * Owns the meaning of nginx's stream directives (map on
 * $ssl_preread_server_name with hostnames, on $ssl_preread_alpn_protocols,
 * and on $ssl_preread_protocol, whose "" entry becomes not_tls; upstream,
 * whose least_conn, hash $remote_addr and random two become its balance;
 * server with listen / ssl_preread / proxy_pass / proxy_protocol /
 * timeouts / preread_buffer_size, allow / deny, limit_conn on a limit_conn_zone keyed by the
 * client's address) and how each maps to an INI key. Whatever cannot
 * be carried over becomes a warning with the file and line it came from,
 * and for nginx's known directives the reason and what snisplice does
 * instead: nothing is dropped silently. Never touches a socket and never resolves a
 * host name.
 */
#ifndef SNISPLICE_CONFIG_NGINX_IMPORT_H
#define SNISPLICE_CONFIG_NGINX_IMPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "nginx_lexer.h"

struct nginx_import {
    char *ini;            /* the converted configuration */
    char **warnings;      /* "FILE:LINE: warning: ...", in the order found */
    size_t warning_count;
};

/* Convert a parsed tree; `source` names it in the INI's header comment.
 * False only when out of memory. */
bool nginx_import_tree(const struct nginx_tree *tree, const char *source, struct nginx_import *out);

/* Read, parse and convert. False (with "FILE:LINE: problem" in error) when
 * the file cannot be read or is not valid nginx syntax. */
bool nginx_import_file(const char *path, struct nginx_import *out, char *error, size_t error_size);

void nginx_import_free(struct nginx_import *out);

#endif
