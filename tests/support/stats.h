/*
 * stats.h - read the proxy's Prometheus endpoint (`stats = ADDR`) from a
 * test: fetch a page over HTTP/1.0 and pick one sample out of it.
 */
#ifndef SNISPLICE_TESTS_STATS_H
#define SNISPLICE_TESTS_STATS_H

#include <stdint.h>

#include "proxy.h"

/* GET path from 127.0.0.1:port; the whole response (malloc'd), NULL if
 * nothing listens there. */
char *stats_fetch(uint16_t port, const char *path);
/* The value of the sample whose name and labels are exactly `series`; -1 if absent. */
long long stats_sample(const char *text, const char *series);
/* One scrape of /metrics on port: the value of series, -1 if absent or
 * the endpoint did not answer. */
long long stats_value(uint16_t port, const char *series);
/* The proxy's open fds minus the pipes its pools hold (idle or lent), read
 * from its stats endpoint on stats_port: the number a leak would show up
 * in, exact however many pipes the pools keep. *pipes_in_use gets the lent
 * pipes. -1 if the endpoint did not answer. */
int stats_fds_outside_pool(const struct proxy *proxy, uint16_t stats_port, long long *pipes_in_use);

#endif
