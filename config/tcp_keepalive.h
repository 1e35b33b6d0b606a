/*
 * tcp_keepalive.h - the `tcp_keepalive` value of a [listen] or an
 * [upstream]: off, on, or nginx's so_keepalive form IDLE:INTERVAL:COUNT.
 */
#ifndef SNISPLICE_CONFIG_TCP_KEEPALIVE_H
#define SNISPLICE_CONFIG_TCP_KEEPALIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/tcp_keepalive.h"

/* Parse value into *keepalive. IDLE and INTERVAL are durations in whole
 * seconds (30m, 75s, 10), COUNT a number; an empty part keeps the system's
 * value (nginx's `30m::10`). False with the problem in error (without the
 * key's name) when value is none of these or a part is out of the kernel's
 * range. */
bool tcp_keepalive_parse(const char *value, struct tcp_keepalive *keepalive, char *error, size_t error_size);

/* The longest IDLE, INTERVAL or COUNT part any valid value has, and more. */
#define TCP_KEEPALIVE_PART_MAX 32

/* Cut "IDLE:INTERVAL:COUNT" into its three parts (each may be empty);
 * false when there are not exactly two colons or a part is longer than
 * TCP_KEEPALIVE_PART_MAX - 1. The importer converts nginx's parts with it. */
bool tcp_keepalive_split(const char *value, char parts[3][TCP_KEEPALIVE_PART_MAX]);

#endif
