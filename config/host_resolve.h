/*
 * host_resolve.h - "name:port" to socket addresses when a config is
 * loaded, as nginx resolves the host names of its upstream servers when it
 * reads its configuration: every address the name has, IPv4 and IPv6.
 *
 * Blocking (getaddrinfo): called only by the config loader, which runs at
 * start, for -t and for a reload on the main thread; never by a worker.
 * The fuzz build links a fake in its place (tests/fuzz/fake_host_resolve.c)
 * so fuzzing never asks a name server.
 */
#ifndef SNISPLICE_CONFIG_HOST_RESOLVE_H
#define SNISPLICE_CONFIG_HOST_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/address.h"

/* The addresses of `host` (a valid host name) with `port`, each once, in
 * the resolver's order, at most `capacity` of them into out[]. False with a
 * one-line reason in error when the name has no address or cannot be
 * looked up now. */
bool host_resolve(const char *host, uint16_t port, struct address *out, size_t capacity, size_t *count,
                  char *error, size_t error_size);

#endif
