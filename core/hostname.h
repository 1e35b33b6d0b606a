/*
 * hostname.h - validation and normalisation of DNS host names.
 *
 * Owns the one definition of "a valid server name" shared by the ClientHello
 * parser, the route table and the config loader: letters, digits, '-', '_' and '.',
 * no empty label, at most 253 bytes once one trailing dot is dropped.
 * Pure functions: no allocation, no I/O.
 */
#ifndef SNISPLICE_CORE_HOSTNAME_H
#define SNISPLICE_CORE_HOSTNAME_H

#include <stdbool.h>
#include <stddef.h>

#define HOSTNAME_MAX 253

/*
 * Validate `name` (len bytes, not NUL-terminated) and write its normal form to
 * `out` (at least HOSTNAME_MAX + 1 bytes): lower case, one trailing dot
 * removed, NUL-terminated. Returns false, leaving *out_len untouched, when the
 * name is empty, too long, has an empty label or a byte outside [A-Za-z0-9._-].
 */
bool hostname_normalize(const char *name, size_t len, char *out, size_t *out_len);

#endif
