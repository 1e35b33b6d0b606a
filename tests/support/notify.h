/*
 * notify.h - a fake systemd NOTIFY_SOCKET for the integration tests: a
 * unix datagram socket at a path of this test process's own, and the next
 * message snisplice sent to it.
 *
 * Owns nothing past the caller's fd and path: the caller closes the one
 * and unlinks the other (in its .fini).
 */
#ifndef SNISPLICE_TESTS_NOTIFY_H
#define SNISPLICE_TESTS_NOTIFY_H
#include <stddef.h>
/* Bind /tmp/snisplice-NAME-PID into path (room for 108 bytes, a
 * sockaddr_un's); the socket, or -1. */
int notify_socket_bind(const char *name, char *path, size_t path_size);
/* The next datagram on fd as text, or "" after timeout_ms. */
void notify_next(int fd, char *out, size_t size, int timeout_ms);
#endif
