/*
 * no_ipv6.c - an LD_PRELOAD library for one integration test
 * (failover/server_of_a_family_the_kernel_lacks_is_skipped).
 *
 * Makes the process's kernel one booted with ipv6.disable=1, as some VPS
 * images are: socket(AF_INET6, ...) fails with EAFNOSUPPORT. Every other
 * socket is made as usual. Built without sanitizers; never linked into a
 * test binary (it replaces socket).
 */
#include <dlfcn.h>
#include <errno.h>
#include <sys/socket.h>

int socket(int domain, int type, int protocol)
{
    int (*next_socket)(int, int, int) = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
    if (domain == AF_INET6) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    return next_socket(domain, type, protocol);
}
