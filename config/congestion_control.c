/*
 * congestion_control.c - validates a `congestion_control` value, of an
 * [upstream] or a [listen]. Opens one socket per named value while
 * loading, never during relaying. What the values do is in
 * core/congestion.h.
 */
#include "congestion_control.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Zero, or the errno of setting the algorithm on a fresh TCP socket. */
static int try_algorithm(const char *name)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int result = setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)strlen(name)) == 0 ? 0 : errno;
    close(fd);
    return result;
}

bool congestion_control_parse(const char *value, struct congestion *congestion, char *error,
                              size_t error_size)
{
    if (strcmp(value, "auto") == 0) {
        congestion->choice = CONGESTION_AUTO;
        return true;
    }
    if (strcmp(value, "system") == 0) {
        congestion->choice = CONGESTION_SYSTEM;
        return true;
    }
    size_t length = strlen(value);
    if (length == 0 || length >= CONGESTION_NAME_MAX) {
        snprintf(error, error_size, "expected auto, system or an algorithm name, got '%s'", value);
        return false;
    }
    int failure = try_algorithm(value);
    if (failure == ENOENT) {
        snprintf(error, error_size,
                 "'%s' is not in this kernel (see net.ipv4.tcp_available_congestion_control)", value);
        return false;
    }
    if (failure == EPERM) {
        snprintf(error, error_size,
                 "'%s' is not allowed for this user (see net.ipv4.tcp_allowed_congestion_control)", value);
        return false;
    }
    if (failure != 0) {
        snprintf(error, error_size, "'%s': %s", value, strerror(failure));
        return false;
    }
    congestion->choice = CONGESTION_NAMED;
    memcpy(congestion->name, value, length + 1);
    return true;
}

void congestion_control_system_default(char *out, size_t size)
{
    out[0] = '\0';
    FILE *file = fopen("/proc/sys/net/ipv4/tcp_congestion_control", "re");
    if (!file)
        return;
    if (!fgets(out, (int)size, file))
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    fclose(file);
}

bool congestion_control_allowed_to_users(const char *name)
{
    FILE *file = fopen("/proc/sys/net/ipv4/tcp_allowed_congestion_control", "re");
    if (!file)
        return false;
    char list[512];
    bool listed = false;
    if (fgets(list, sizeof list, file)) {
        char *save = NULL;
        for (char *word = strtok_r(list, " \t\n", &save); word && !listed; word = strtok_r(NULL, " \t\n", &save))
            listed = strcmp(word, name) == 0;
    }
    fclose(file);
    return listed;
}
