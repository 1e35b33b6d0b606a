/*
 * fuzz_nginx_import.c - libFuzzer harness for `--import-nginx`: arbitrary
 * nginx configuration text must parse or be refused with one FILE:LINE
 * message, convert without crashing or leaking, and the INI it produces
 * must go through the INI loader (accepted or refused, never a crash).
 * include is disabled: the harness must not read files.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../config/config.h"
#include "../../config/nginx_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void load_converted(const char *ini)
{
    int fd = memfd_create("ini", 0);
    if (fd < 0)
        return;
    size_t length = strlen(ini);
    if (write(fd, ini, length) == (ssize_t)length) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        struct config_errors errors = { 0 };
        struct config *config = config_load(path, &errors);
        config_free(config);
        config_errors_free(&errors);
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nginx_tree tree;
    struct nginx_parse_options options = { "/nonexistent", false };
    char error[512];
    bool parsed = nginx_parse_text(&tree, "fuzz.conf", (const char *)data, size, &options, error,
                                   sizeof error);
    if (!parsed && strncmp(error, "fuzz.conf:", 10) != 0)
        abort(); /* a refusal always says where */
    if (parsed) {
        struct nginx_import result;
        if (!nginx_import_tree(&tree, "fuzz.conf", &result))
            abort();
        for (size_t i = 0; i < result.warning_count; i++)
            if (strncmp(result.warnings[i], "fuzz.conf:", 10) != 0)
                abort();
        load_converted(result.ini);
        nginx_import_free(&result);
    }
    nginx_tree_free(&tree);
    return 0;
}
