/*
 * fail_call.c - an LD_PRELOAD library that makes one kind of call fail, as
 * a machine out of memory or out of descriptors would, for the tests of
 * what snisplice does then (and for sweeps by hand).
 *
 *   SNISPLICE_FAIL_CALL   which call: malloc calloc realloc pipe2 setpipe
 *                         (fcntl F_SETPIPE_SZ) dupfd (fcntl F_DUPFD_CLOEXEC)
 *                         setsockopt open socket bind
 *                         listen eventfd uring (io_uring_queue_init_params)
 *                         epoll_ctl (EPOLL_CTL_ADD and _MOD)
 *                         pthread_create
 *   SNISPLICE_FAIL_NTH    the first call to fail, counted from 1 (default 1)
 *   SNISPLICE_FAIL_EVERY  set: that call and every later one fail; unset:
 *                         that one alone
 *   SNISPLICE_FAIL_ERRNO  the error, as a number (default ENOMEM)
 *   SNISPLICE_FAIL_ARMED_BY  HUP or USR1: count only from when the process
 *                         takes that signal with sigtimedwait (a reload, a
 *                         log reopen); HUP,listen: from the first listen(2)
 *                         after that (a reload has bound a new address);
 *                         unset: from the start
 *   SNISPLICE_FAIL_MAIN_THREAD  set: count only the main thread's calls
 *   SNISPLICE_FAIL_PROGRAM  count only in the program of that name (a test
 *                         runner preloaded with its proxies)
 *
 * Each failure is told on stderr ("fail_call: malloc #12"). Built without
 * sanitizers; never linked into a test binary (it replaces libc calls).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static _Atomic long calls;
static atomic_bool armed, signalled;
static void *next(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static void tell(const char *name, long number)
{
    char text[96];
    int length = snprintf(text, sizeof text, "fail_call: %s #%ld\n", name, number);
    ssize_t ignored = write(STDERR_FILENO, text, (size_t)length);
    (void)ignored;
}

/* Whether this call of `name` is to fail (errno then set). */
static bool fails(const char *name)
{
    const char *chosen = getenv("SNISPLICE_FAIL_CALL");
    if (!chosen || strcmp(chosen, name) != 0)
        return false;
    if (getenv("SNISPLICE_FAIL_ARMED_BY") && !atomic_load(&armed))
        return false;
    if (getenv("SNISPLICE_FAIL_MAIN_THREAD") && gettid() != getpid())
        return false;
    const char *program = getenv("SNISPLICE_FAIL_PROGRAM");
    if (program && strcmp(program, program_invocation_short_name) != 0)
        return false;
    const char *nth_text = getenv("SNISPLICE_FAIL_NTH"), *errno_text = getenv("SNISPLICE_FAIL_ERRNO");
    long nth = nth_text ? atol(nth_text) : 1, number = atomic_fetch_add(&calls, 1) + 1;
    if (number != nth && !(getenv("SNISPLICE_FAIL_EVERY") && number > nth))
        return false;
    tell(name, number);
    errno = errno_text ? atoi(errno_text) : ENOMEM;
    return true;
}

/* SNISPLICE_FAIL_COUNT set: say at exit how many calls were counted, to
 * choose the range of SNISPLICE_FAIL_NTH to sweep. */
__attribute__((destructor)) static void count_at_exit(void)
{
    if (getenv("SNISPLICE_FAIL_COUNT"))
        tell("counted", atomic_load(&calls));
}

int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
    static int (*real)(const sigset_t *, siginfo_t *, const struct timespec *);
    if (!real)
        real = next("sigtimedwait");
    int signal_number = real(set, info, timeout);
    const char *by = getenv("SNISPLICE_FAIL_ARMED_BY");
    if (!by || !((signal_number == SIGHUP && strncmp(by, "HUP", 3) == 0) ||
                 (signal_number == SIGUSR1 && strncmp(by, "USR1", 4) == 0)))
        return signal_number;
    if (strstr(by, ",listen"))
        atomic_store(&signalled, true);
    else
        atomic_store(&armed, true);
    return signal_number;
}

/* The allocator this library stands in front of: AddressSanitizer's when
 * the process has it, glibc's otherwise. Weak references the dynamic
 * linker binds at load: dlsym would allocate, and call back in here. */
extern void *__interceptor_malloc(size_t) __attribute__((weak));
extern void *__interceptor_calloc(size_t, size_t) __attribute__((weak));
extern void *__interceptor_realloc(void *, size_t) __attribute__((weak));
extern void __interceptor_free(void *) __attribute__((weak));
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

void *malloc(size_t size)
{
    if (fails("malloc"))
        return NULL;
    return __interceptor_malloc ? __interceptor_malloc(size) : __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
    if (fails("calloc"))
        return NULL;
    return __interceptor_calloc ? __interceptor_calloc(count, size) : __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size)
{
    if (fails("realloc"))
        return NULL;
    return __interceptor_realloc ? __interceptor_realloc(pointer, size) : __libc_realloc(pointer, size);
}

void free(void *pointer)
{
    if (__interceptor_free)
        __interceptor_free(pointer);
    else
        __libc_free(pointer);
}

#define FAILING(type, name, parameters, arguments)   \
    type name parameters                             \
    {                                                \
        static type(*real) parameters;               \
        if (!real)                                   \
            real = next(#name);                      \
        return fails(#name) ? -1 : real arguments;   \
    }

FAILING(int, pipe2, (int fds[2], int flags), (fds, flags))
FAILING(int, setsockopt, (int fd, int level, int name, const void *value, socklen_t length),
        (fd, level, name, value, length))
FAILING(int, socket, (int domain, int type, int protocol), (domain, type, protocol))
FAILING(int, bind, (int fd, const struct sockaddr *address, socklen_t length), (fd, address, length))

int listen(int fd, int backlog)
{
    static int (*real)(int, int);
    if (!real)
        real = next("listen");
    if (fails("listen"))
        return -1;
    int result = real(fd, backlog);
    if (atomic_load(&signalled))
        atomic_store(&armed, true);
    return result;
}

FAILING(int, eventfd, (unsigned value, int flags), (value, flags))

/* Adding to or re-arming in an epoll set only: a removal that failed
 * would leave a closed socket's entry behind, which no kernel does. */
int epoll_ctl(int epoll_fd, int operation, int fd, struct epoll_event *event)
{
    static int (*real)(int, int, int, struct epoll_event *);
    if (!real)
        real = next("epoll_ctl");
    if (operation != EPOLL_CTL_DEL && fails("epoll_ctl"))
        return -1;
    return real(epoll_fd, operation, fd, event);
}

int open(const char *path, int flags, ...)
{
    static int (*real)(const char *, int, ...);
    if (!real)
        real = next("open");
    va_list arguments;
    va_start(arguments, flags);
    mode_t mode = (flags & O_CREAT) ? va_arg(arguments, mode_t) : 0;
    va_end(arguments);
    return fails("open") ? -1 : real(path, flags, mode);
}

int fcntl(int fd, int command, ...)
{
    static int (*real)(int, int, ...);
    if (!real)
        real = next("fcntl");
    va_list arguments;
    va_start(arguments, command);
    long argument = va_arg(arguments, long);
    va_end(arguments);
    if ((command == F_SETPIPE_SZ && fails("setpipe")) || (command == F_DUPFD_CLOEXEC && fails("dupfd")))
        return -1;
    return real(fd, command, argument);
}

int pthread_create(pthread_t *thread, const pthread_attr_t *attributes, void *(*start)(void *), void *argument)
{
    static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (!real)
        real = next("pthread_create");
    return fails("pthread_create") ? errno : real(thread, attributes, start, argument);
}

int io_uring_queue_init_params(unsigned entries, struct io_uring *ring, struct io_uring_params *params)
{
    static int (*real)(unsigned, struct io_uring *, struct io_uring_params *);
    if (!real)
        real = next("io_uring_queue_init_params");
    return fails("uring") ? -errno : real(entries, ring, params);
}
