/*
 * routed.h - snisplice routing every server name to one in-test backend,
 * with the Chromium hello loaded, and the short exchange that timing tests
 * run through it (hello in; 1 KiB and the FIN out).
 *
 * Owns the proxy, the backend, the hello and the config text between
 * routed_start() and routed_stop(). A struct routed must live in static
 * storage: backend_stop_all() reaches its backend after a failed assertion.
 */
#ifndef SNISPLICE_TESTS_ROUTED_H
#define SNISPLICE_TESTS_ROUTED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "hello.h"
#include "proxy.h"

struct routed {
    struct proxy proxy;
    struct backend backend;
    struct hello_bytes hello;
    char *config;
};

/* Start `handler` on backend_port (its context is `routed`) and snisplice
 * on proxy_port routing every name to it. False if either did not start;
 * then nothing is left running or allocated. */
bool routed_start(struct routed *routed, uint16_t proxy_port, uint16_t backend_port,
                  const char *name, backend_handler handler);
/* The same with snisplice listening on listen_host (an IPv4 address:
 * 0.0.0.0 for every address of the host) instead of 127.0.0.1. */
bool routed_start_on(struct routed *routed, const char *listen_host, uint16_t proxy_port,
                     uint16_t backend_port, const char *name, backend_handler handler);
/* Stop both and free; returns snisplice's exit status (0: clean). */
int routed_stop(struct routed *routed);

/* Backend side: read the whole hello; false if it did not come. */
bool routed_receive_hello(const struct routed *routed, int fd);
/* Backend handler: read the hello, answer 1 KiB with the FIN in the same
 * segment (MSG_MORE holds the bytes until the shutdown), read to the end. */
void routed_reply_and_close(struct backend *backend, int fd, void *context);

#define ROUTED_REPLY_BYTES 1024

struct routed_exchange {
    int fd;             /* still open, for the caller to inspect and close; -1: no connection */
    size_t reply_bytes; /* received before the end of stream (or the timeout) */
    bool eof;
};
/* Client side: connect to port, send the hello, read the answer to its end. */
struct routed_exchange routed_short_exchange(const struct routed *routed, uint16_t port);

#endif
