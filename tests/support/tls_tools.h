/*
 * tls_tools.h - real TLS peers for the integration tests: a self-signed
 * certificate made by `openssl req` and `openssl s_server -WWW` backends.
 *
 * Owns nothing itself: processes are registered with child_process.h and
 * files live in the caller's temp directory.
 */
#ifndef SNISPLICE_TESTS_TLS_TOOLS_H
#define SNISPLICE_TESTS_TLS_TOOLS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct tls_certificate {
    char *certificate_path; /* malloc'd */
    char *key_path;         /* malloc'd */
};

/* RSA 2048 self-signed CN=test valid one day, written into directory. */
bool tls_certificate_create(const char *directory, struct tls_certificate *certificate);
void tls_certificate_free(struct tls_certificate *certificate);

/*
 * `openssl s_server -WWW` on 127.0.0.1:port serving a fresh directory that
 * holds id.txt containing `name`. Returns the pid once the port accepts,
 * -1 otherwise.
 */
pid_t tls_server_start(const struct tls_certificate *certificate, const char *name, uint16_t port);

#endif
