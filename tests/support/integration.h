/*
 * integration.h - glue shared by the integration test files: cleanup after
 * each test, config text formatting and the one-shot client exchange.
 *
 * Owns nothing across tests; every test runs in its own process and its
 * .fini (integration_cleanup plus the file's own proxies) leaves no child,
 * thread or temp directory behind.
 */
#ifndef SNISPLICE_TESTS_INTEGRATION_H
#define SNISPLICE_TESTS_INTEGRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "byte_stream.h"
#include "child_process.h"
#include "hello.h"
#include "net.h"
#include "proxy.h"
#include "stats.h"

/* Every test gets its own block of 20 ports: 21000 + 20 * block. */
#define TEST_PORT(block, index) ((uint16_t)(21000 + 20 * (block) + (index)))

/*
 * Criterion .init: arm a SIGALRM watchdog so a hung test dies (and its
 * children with it, by PR_SET_PDEATHSIG). Used instead of criterion's
 * .timeout, whose bookkeeping leaks in the runner under --jobs 2 and makes
 * LeakSanitizer fail the whole run.
 */
#define INTEGRATION_TEST_LIMIT_SECONDS 240
void integration_init(void);

/* Re-arm the watchdog: the test now dies `seconds` from here. For tests
 * whose length is set at run time (the soak). */
void integration_set_limit(unsigned seconds);

/* Stop backends and kill children and remove temp dirs of this test process. */
void integration_cleanup(void);

/* Preload build/<shim> (tests/shim/) into every process this test starts
 * from now on, until it unsets LD_PRELOAD: each test runs in a process of
 * its own. ASan wants to come first among a process's libraries; the
 * shims have no sanitizer to conflict with, so that check is off. False
 * if the shim is not built (make test builds them). */
bool integration_preload(const char *shim);

/* A [routes] body sending matrix.exceptionerror.io (the Chromium hello) to
 * hole_port, a black hole (net_black_hole), and dimension.exceptionerror.io
 * (the GnuTLS hello) to alpha_port; caller frees. */
char *routes_to_hole_and_alpha(uint16_t hole_port, uint16_t alpha_port);

/* asprintf that aborts on failure; caller frees. */
char *text_format(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* How many times needle occurs in text, without overlaps (log lines). */
int text_count(const char *text, const char *needle);

/*
 * A snisplice config: [global] with global_lines (and `workers = 2` unless
 * they set workers), a [listen] on 127.0.0.1:listen_port, then body
 * ([routes], [upstream ...]).
 */
char *config_text(uint16_t listen_port, const char *global_lines, const char *body);

/*
 * The [routes] lines of a large table: `count` generated routes, like a
 * hosting provider's, to the targets `even` and `odd` by turns: 16 in 20
 * exact names svcNNNNN.tenantNNN.example.net, 3 wildcards
 * *.appsNNNNN.example.org, 1 suffix .siteNNNNN.example.com. Malloc'd;
 * about 40 bytes per route.
 */
char *generated_routes(int count, const char *even, const char *odd);

/*
 * Connect to 127.0.0.1:port, send payload, half-close, and read until the
 * connection closes. Returns what arrived (malloc'd, NUL-terminated, NULL if
 * the connect failed); *closed_cleanly (optional) tells EOF/reset from timeout.
 */
char *exchange_once(uint16_t port, const void *payload, size_t length, int timeout_ms,
                    bool *closed_cleanly);

/* The same from a chosen source address (net_connect_from: "127.0.0.2"),
 * so a test can be several clients. A send cut short by a refusing
 * proxy's reset is not an error: the reply is then empty. */
char *exchange_from(const char *source, uint16_t port, const void *payload, size_t length, int timeout_ms,
                    bool *closed_cleanly);

/* The same, with the payload sent in pieces of piece_size bytes pause_ms apart. */
char *exchange_in_pieces(uint16_t port, const void *payload, size_t length, size_t piece_size,
                         int pause_ms, int timeout_ms, bool *closed_cleanly);

#endif
