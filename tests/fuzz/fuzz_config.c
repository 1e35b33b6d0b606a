/*
 * fuzz_config.c - libFuzzer harness for the config loader: arbitrary file
 * contents must load or be refused with messages, never crash or leak.
 * The input is handed over as a memfd path, as config_load() reads files.
 * Each of its lines is also split by the loader's fast path for routes
 * (route_line.c): a line it takes must be what libinih makes of it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <ini.h>

#include "../../config/config.h"
#include "../../config/route_line.h"
#include "../support/inih_reading.h"

/* A line the fast path takes must read the same through inih. */
static void compare_with_inih(const uint8_t *line, size_t length)
{
    char text[200], copy[200];
    if (length >= sizeof text || memchr(line, '\0', length))
        return;
    memcpy(text, line, length);
    text[length] = '\0';
    memcpy(copy, text, length + 1);
    char *name, *target;
    if (!route_line_split(copy, &name, &target))
        return;
    /* Only a line the fast path took is worth inih's reading. */
    struct inih_reading reading;
    inih_reading_of_route_line(text, &reading);
    if (!inih_reading_agrees(&reading, name, target))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t start = 0; start < size;) {
        const uint8_t *end = memchr(data + start, '\n', size - start);
        size_t length = end ? (size_t)(end - data) + 1 - start : size - start;
        compare_with_inih(data + start, length);
        start += length;
    }
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
