/*
 * route_table.h - immutable server-name -> target table.
 *
 * Matching follows nginx `map ... hostnames`: an exact name (case-insensitive,
 * trailing dot ignored) first, then the longest suffix pattern ("*.x" matches
 * any subdomain of x at any depth but not x; ".x" matches x and every
 * subdomain), then the longest trailing wildcard ("www.example.*": any
 * name that starts with "www.example."), then the regular expressions
 * ("~re", "~*re") in the order they were added, then `default`. A client
 * that does not speak TLS has its own entry, `not_tls`. Built once by a builder, then read-only: any
 * number of threads may call route_lookup() at once with no shared writes
 * (except inside the C library's regexec, which locks an expression while
 * it matches: only names that reach the regular expressions take it).
 * Storage is an open-addressing hash table (linear probing, power-of-two
 * capacity, load <= 1/2) of 4-byte slots pointing into one arena that holds
 * every key with its targets.
 */
#ifndef SNISPLICE_CORE_ROUTE_TABLE_H
#define SNISPLICE_CORE_ROUTE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUTE_NO_MATCH (-1)

struct route_table;
struct route_table_builder;

enum route_add_result {
    ROUTE_ADD_OK,
    ROUTE_ADD_DUPLICATE, /* the same pattern (or "*.x" with ".x") was already added */
    ROUTE_ADD_INVALID,   /* not a valid host name pattern */
    ROUTE_ADD_NO_MEMORY,
    ROUTE_ADD_FULL,      /* the table's names already take ROUTE_TABLE_RECORDS_MAX */
};

/* What one table's names and targets may take (about 3 million routes of
 * 30-character names). */
#define ROUTE_TABLE_RECORDS_MAX ((size_t)128 << 20)

struct route_table_builder *route_table_builder_new(void);
/* pattern: "default", "not_tls", "name", "*.suffix", ".suffix" or
 * "prefix.*"; target >= 0. */
enum route_add_result route_table_builder_add(struct route_table_builder *builder,
                                              const char *pattern, int32_t target);
/* The same as route_table_builder_add() for each pattern in order, result
 * i for pattern i; faster for many (a reload): it hashes a few patterns
 * ahead and asks the memory for their slots before inserting them. */
void route_table_builder_add_all(struct route_table_builder *builder, const char *const *patterns,
                                 const int32_t *targets, size_t count, enum route_add_result *results);
/* Room for this many patterns without rehashing as they are added (a
 * reload knows how many routes it has). false on ENOMEM; the builder stays
 * usable either way. */
bool route_table_builder_reserve(struct route_table_builder *builder, size_t patterns);
/* Consumes the builder (also on failure). NULL on ENOMEM. */
struct route_table *route_table_build(struct route_table_builder *builder);
void route_table_builder_free(struct route_table_builder *builder);

/*
 * name must be normalised (hostname_normalize()); len == 0 means "no SNI".
 * Returns the target, the default target, or ROUTE_NO_MATCH.
 */
int32_t route_lookup(const struct route_table *table, const char *name, size_t len);

/* The same, with `as_sent`: the name with its case as the client sent it
 * (len bytes, clienthello_info.server_name_as_sent), for the
 * case-sensitive "~" expressions, which nginx matches against that. */
int32_t route_lookup_as_sent(const struct route_table *table, const char *name, const char *as_sent, size_t len);

/* A client whose first bytes are not a TLS handshake record (SSH, plain
 * HTTP: nginx's empty $ssl_preread_protocol): the "not_tls" target, else
 * the default target, else ROUTE_NO_MATCH. */
int32_t route_lookup_not_tls(const struct route_table *table);

/* "~PCRE" or "~*PCRE" (case-insensitive), nginx's map regex entries
 * (route_regex.h). ROUTE_ADD_INVALID with the reason in error. */
enum route_add_result route_table_builder_add_regex(struct route_table_builder *builder, const char *pattern,
                                                    int32_t target, char *error, size_t error_size);

/* ALPN routes ("alpn:acme-tls/1 = helper") are consulted before names. */
enum route_add_result route_table_builder_add_alpn(struct route_table_builder *builder,
                                                   const char *protocol, int32_t target);
/*
 * alpn: the client's protocol_name_list in wire format (1-byte length +
 * name, repeated). Returns the target of the first offered protocol that
 * has a route, in the client's order, or ROUTE_NO_MATCH.
 */
int32_t route_lookup_alpn(const struct route_table *table, const uint8_t *alpn, size_t alpn_len);

size_t route_table_size(const struct route_table *table); /* patterns, default excluded */
void route_table_free(struct route_table *table);

#endif
