/*
 * notify.c - the fake NOTIFY_SOCKET of notify.h.
 */
#include "notify.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int notify_socket_bind(const char *name, char *path, size_t path_size)
{
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    int length = snprintf(path, path_size, "/tmp/snisplice-%s-%d", name, (int)getpid());
    if (length < 0 || (size_t)length >= path_size || (size_t)length >= sizeof address.sun_path)
        return -1;
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memcpy(address.sun_path, path, (size_t)length + 1);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void notify_next(int fd, char *out, size_t size, int timeout_ms)
{
    out[0] = '\0';
    struct pollfd ready = { .fd = fd, .events = POLLIN };
    if (poll(&ready, 1, timeout_ms) != 1)
        return;
    ssize_t length = recv(fd, out, size - 1, 0);
    out[length > 0 ? length : 0] = '\0';
}
