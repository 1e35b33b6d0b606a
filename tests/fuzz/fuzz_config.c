/*
 * fuzz_config.c - libFuzzer harness for the config loader: arbitrary file
 * contents must load or be refused with messages, never crash or leak.
 * The input is handed over as a memfd path, as config_load() reads files.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("config", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct config_errors errors;
    struct config *config = config_load(path, &errors);
    /* Exactly one of: a config, or at least one message. */
    if ((config != NULL) == (errors.count > 0))
        abort();
    for (size_t i = 0; i < errors.count; i++)
        if (strncmp(errors.lines[i], path, strlen(path)) != 0)
            abort();
    config_free(config);
    config_errors_free(&errors);
    close(fd);
    return 0;
}
