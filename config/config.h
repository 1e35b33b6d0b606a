/*
 * config.h - the snisplice INI file, loaded and validated.
 *
 * Owns turning a file into a struct config: [global] settings, [listen]
 * addresses, and a ready-to-publish snapshot (routes + upstreams). Every
 * problem is reported as "FILE:LINE: problem"; a config with any problem is
 * rejected whole, so a bad reload never replaces a good config.
 */
#ifndef SNISPLICE_CONFIG_CONFIG_H
#define SNISPLICE_CONFIG_CONFIG_H

#include <stddef.h>

#include "../core/address.h"
#include "../core/snapshot.h"

/* The longest duration any timeout takes: 30 days. */
#define CONFIG_TIMEOUT_MAX_MS (30ull * 24 * 3600 * 1000)

/* [global]'s values where the file sets none (the importer leaves a
 * timeout nginx did not set to these). */
extern const struct snapshot_settings config_default_settings;

struct config_errors {
    char **lines; /* "FILE:LINE: problem", each malloc'd */
    size_t count;
};

/* One listening address and the listener (snapshot->listeners[i]) it serves. */
struct config_listen {
    struct address address;
    uint32_t listener;
};

struct config {
    unsigned workers;            /* 0 = one per online CPU */
    char *user;                  /* drop to this user after binding; NULL: stay */
    int user_line;               /* of its `user` key, for problems found at start */
    char *access_log;            /* path, or NULL for none */
    int access_log_line;
    bool has_stats;              /* stats = ADDR given */
    struct address stats;        /* where Prometheus scrapes /metrics */
    int transparent_line;        /* a `source = client` some listener uses; 0: none does */
    struct config_listen *listen; /* [listen_count], grouped by listener in config order */
    size_t listen_count;
    struct snapshot *snapshot;   /* owned until handed to the publisher */
};

/* NULL when the file has any error; errors->lines then says which. */
struct config *config_load(const char *path, struct config_errors *errors);

/* Frees the config and its snapshot unless snapshot was set to NULL. */
void config_free(struct config *config);

void config_errors_free(struct config_errors *errors);

#endif
