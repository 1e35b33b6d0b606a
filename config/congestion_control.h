/*
 * congestion_control.h - the `congestion_control` value of an [upstream]
 * or a [listen]: auto, system, or the name of a TCP congestion control
 * algorithm.
 */
#ifndef SNISPLICE_CONFIG_CONGESTION_CONTROL_H
#define SNISPLICE_CONFIG_CONGESTION_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/congestion.h"

/* Parse value into *congestion. A name
 * must be one this kernel has and this process may set: it is tried on a
 * throwaway socket, so that a typo is a config error rather than the
 * system's default, silently, on every connection. On failure writes a
 * one-line reason to error. */
bool congestion_control_parse(const char *value, struct congestion *congestion, char *error,
                              size_t error_size);

/* The system's default algorithm (net.ipv4.tcp_congestion_control) into
 * out, "" if it cannot be read. */
void congestion_control_system_default(char *out, size_t size);

/* Whether every user may set this algorithm (it is listed in
 * net.ipv4.tcp_allowed_congestion_control); false if that cannot be read. */
bool congestion_control_allowed_to_users(const char *name);

#endif
