/*
 * integration.c - cleanup, text formatting and one-shot client exchanges
 * shared by the integration tests.
 *
 * Owns the sockets of an exchange for its duration only.
 */
#include "integration.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXCHANGE_CAPACITY 65536

void integration_init(void)
{
    integration_set_limit(INTEGRATION_TEST_LIMIT_SECONDS);
}

void integration_set_limit(unsigned seconds)
{
    alarm(seconds);
}

void integration_cleanup(void)
{
    backend_stop_all();
    child_cleanup_all();
}

bool integration_preload(const char *shim)
{
    char relative[256], path[PATH_MAX];
    snprintf(relative, sizeof relative, "build/%s", shim);
    if (!realpath(relative, path))
        return false;
    return setenv("LD_PRELOAD", path, 1) == 0 &&
           setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:halt_on_error=1:verify_asan_link_order=0", 1) == 0;
}

char *routes_to_hole_and_alpha(uint16_t hole_port, uint16_t alpha_port)
{
    return text_format("[routes]\nmatrix.exceptionerror.io = 127.0.0.1:%u\n"
                       "dimension.exceptionerror.io = 127.0.0.1:%u\n", hole_port, alpha_port);
}

char *text_format(const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    char *text = NULL;
    int length = vasprintf(&text, format, arguments);
    va_end(arguments);
    if (length < 0)
        abort();
    return text;
}

int text_count(const char *text, const char *needle)
{
    int count = 0;
    for (const char *at = text; (at = strstr(at, needle)) != NULL; at += strlen(needle))
        count++;
    return count;
}

char *config_text(uint16_t listen_port, const char *global_lines, const char *body)
{
    /* Two workers unless global_lines says otherwise: a key given twice
     * in one section is a config error. */
    const char *lines = global_lines ? global_lines : "";
    const char *workers = strncmp(lines, "workers =", 9) == 0 || strstr(lines, "\nworkers =") ? "" : "workers = 2\n";
    return text_format("[global]\n%s%s\n[listen]\naddress = 127.0.0.1:%u\n\n%s", workers, lines, listen_port, body);
}

char *generated_routes(int count, const char *even, const char *odd)
{
    char *lines = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&lines, &length); /* grows as it is written */
    if (!out)
        abort();
    for (int i = 0; i < count; i++) {
        const char *target = i % 2 ? odd : even;
        int kind = i % 20;
        if (kind < 16)
            fprintf(out, "svc%05d.tenant%03d.example.net = %s\n", i, i % 997, target);
        else if (kind < 19)
            fprintf(out, "*.apps%05d.example.org = %s\n", i, target);
        else
            fprintf(out, ".site%05d.example.com = %s\n", i, target);
    }
    if (fclose(out) != 0)
        abort();
    return lines;
}

/* exchange_in_pieces from `source` (NULL: the system's choice). */
static char *exchange_from_in_pieces(const char *source, uint16_t port, const void *payload, size_t length,
                                     size_t piece_size, int pause_ms, int timeout_ms, bool *closed_cleanly)
{
    if (closed_cleanly)
        *closed_cleanly = false;
    int fd = net_connect_from(source, port);
    if (fd < 0)
        return NULL;
    net_set_timeouts(fd, timeout_ms);
    const uint8_t *cursor = payload;
    size_t remaining = length;
    while (remaining > 0) {
        size_t take = remaining < piece_size ? remaining : piece_size;
        if (!net_send_all(fd, cursor, take))
            break;
        cursor += take;
        remaining -= take;
        if (remaining > 0 && pause_ms > 0)
            sleep_ms(pause_ms);
    }
    shutdown(fd, SHUT_WR);
    char *received = malloc(EXCHANGE_CAPACITY + 1);
    if (!received)
        abort();
    struct net_receive_result result =
        net_receive_until_closed(fd, received, EXCHANGE_CAPACITY, timeout_ms);
    received[result.length] = '\0';
    if (closed_cleanly)
        *closed_cleanly = result.eof || result.reset;
    close(fd);
    return received;
}

char *exchange_in_pieces(uint16_t port, const void *payload, size_t length, size_t piece_size,
                         int pause_ms, int timeout_ms, bool *closed_cleanly)
{
    return exchange_from_in_pieces(NULL, port, payload, length, piece_size, pause_ms, timeout_ms,
                                   closed_cleanly);
}

char *exchange_from(const char *source, uint16_t port, const void *payload, size_t length, int timeout_ms,
                    bool *closed_cleanly)
{
    return exchange_from_in_pieces(source, port, payload, length, length ? length : 1, 0, timeout_ms,
                                   closed_cleanly);
}

char *exchange_once(uint16_t port, const void *payload, size_t length, int timeout_ms,
                    bool *closed_cleanly)
{
    return exchange_in_pieces(port, payload, length, length ? length : 1, 0, timeout_ms,
                              closed_cleanly);
}
