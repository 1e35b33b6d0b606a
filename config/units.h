/*
 * units.h - the value forms of the config file: sizes ("16k", "1m", "512")
 * and durations ("500ms", "5s", "10m", "1h"; a bare number is seconds).
 */
#ifndef SNISPLICE_CONFIG_UNITS_H
#define SNISPLICE_CONFIG_UNITS_H

#include <stdbool.h>
#include <stdint.h>

/* Bytes; suffixes k, m, g (powers of 1024), case-insensitive. */
bool units_parse_size(const char *text, uint64_t *bytes);

/* Milliseconds; suffixes ms, s, m, h, d. */
bool units_parse_duration(const char *text, uint64_t *milliseconds);

/* A plain decimal count within [low, high]: digits only, no sign, no suffix. */
bool units_parse_count(const char *text, uint64_t low, uint64_t high, uint64_t *count);

#endif
