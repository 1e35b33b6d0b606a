/*
 * hello.h - TLS ClientHello bytes for the integration tests: the real
 * captures in $SNISPLICE_SHARED/clienthello/ and small synthetic hellos with
 * a chosen server name (or none).
 *
 * Owns building well-formed (or deliberately broken) first flights; never
 * parses what snisplice parses, so a parser bug cannot hide in both.
 */
#ifndef SNISPLICE_TESTS_HELLO_H
#define SNISPLICE_TESTS_HELLO_H

#include <stddef.h>
#include <stdint.h>

struct hello_bytes {
    uint8_t *data; /* malloc'd */
    size_t length;
};

#define HELLO_CHROMIUM "chromium156_matrix.exceptionerror.io.bin"
#define HELLO_CURL "curl_openssl3.0_matrix.exceptionerror.io.bin"
#define HELLO_GNUTLS "gnutls3.7_dimension.exceptionerror.io.bin"

/* $SNISPLICE_SHARED (default "../shared"), for messages and paths. */
const char *hello_shared_directory(void);

/* Load a capture by file name; data NULL when it cannot be read. */
struct hello_bytes hello_load_capture(const char *file_name);

/*
 * A complete one-record TLS 1.2 ClientHello (one an RSA server accepts) with server_name
 * `server_name` written as given (no validation: tests pass bad names on
 * purpose), or without any SNI extension when server_name is NULL.
 */
struct hello_bytes hello_build(const char *server_name);

/*
 * hello_build(server_name) with a padding extension (RFC 7685) of
 * padding_bytes more, still in one record: a hello over 16 KiB must then be
 * split with hello_split_records() to be valid TLS. What a client with many
 * extensions, key shares or PSK identities sends.
 */
struct hello_bytes hello_build_padded(const char *server_name, size_t padding_bytes);

/*
 * The same handshake message re-framed into TLS records carrying at most
 * record_payload bytes each (what a client splitting its hello does).
 */
struct hello_bytes hello_split_records(const struct hello_bytes *hello, size_t record_payload);

void hello_free(struct hello_bytes *hello);

#endif
