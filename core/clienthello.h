/*
 * clienthello.h - TLS ClientHello parser (SNI and ALPN extraction).
 *
 * Owns the reading of a client's first flight: TLS records carrying one
 * ClientHello handshake message, possibly split across many records and
 * arriving across many TCP segments. It never does I/O, never allocates and
 * is total over arbitrary bytes: every input ends in one of the statuses
 * below, with no read outside [data, data + len) or scratch.
 */
#ifndef SNISPLICE_CORE_CLIENTHELLO_H
#define SNISPLICE_CORE_CLIENTHELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostname.h"

enum clienthello_status {
    CLIENTHELLO_NEED_MORE, /* a valid prefix: the whole hello has not arrived */
    CLIENTHELLO_FOUND,     /* complete hello with a valid host_name */
    CLIENTHELLO_NO_SNI,    /* complete hello (or SSLv2-style hello) without SNI */
    CLIENTHELLO_NOT_TLS,   /* first bytes are not a TLS handshake record */
    CLIENTHELLO_INVALID,   /* TLS, but malformed or with a bad server name */
};

/* Wire-format ALPN list kept at most (longer lists are truncated at an entry). */
#define CLIENTHELLO_ALPN_MAX 256

struct clienthello_info {
    char server_name[HOSTNAME_MAX + 1]; /* normalised (hostname.h); "" unless FOUND */
    size_t server_name_len;
    /* The same name with its letters' case as sent (one trailing dot
     * dropped, so as long): what case-sensitive "~" routes match, as
     * nginx's regular expressions see $ssl_preread_server_name. */
    char server_name_as_sent[HOSTNAME_MAX + 1];
    /* ALPN protocol_name_list as sent: entries of <1-byte length><name>. */
    uint8_t alpn[CLIENTHELLO_ALPN_MAX];
    size_t alpn_len;
};

/*
 * Parse the bytes received so far. `scratch` (scratch_size bytes) is used to
 * join a handshake message split across several records; a message longer
 * than scratch_size is INVALID. `info` is filled for FOUND and NO_SNI.
 */
enum clienthello_status clienthello_parse(const uint8_t *data, size_t len,
                                          uint8_t *scratch, size_t scratch_size,
                                          struct clienthello_info *info);

/* True when the client offered `protocol` (e.g. "acme-tls/1") in ALPN. */
bool clienthello_alpn_offers(const struct clienthello_info *info, const char *protocol);

const char *clienthello_status_name(enum clienthello_status status);

#endif
