/*
 * capabilities.h - whether this process may switch to `user =` at all,
 * and the few capabilities it keeps across that switch: CAP_NET_BIND_SERVICE,
 * so that a reload can still bind a new port below 1024 (nginx's master
 * stays root for that), and, for listeners with `source = client`, the
 * one IP_TRANSPARENT needs; and nothing for any program it might start.
 * Raw system calls: no libcap.
 */
#ifndef SNISPLICE_IO_CAPABILITIES_H
#define SNISPLICE_IO_CAPABILITIES_H

#include <stdbool.h>
#include <stddef.h>

/* Whether the calling thread holds CAP_SETUID and CAP_SETGID, effective:
 * what initgroups, setgid and setuid to another user need. */
bool capabilities_can_switch_user(void);

/* Before setuid: keep the permitted capabilities through it. */
bool capabilities_keep_across_setuid(void);

/* After setuid: CAP_NET_BIND_SERVICE when the process had it, and, when
 * transparent, CAP_NET_RAW (or CAP_NET_ADMIN where the process was not
 * given CAP_NET_RAW), permitted and effective; every other capability
 * dropped (permitted, effective, inheritable, ambient), and the next
 * setuid clears them again. For the calling thread, and the threads it
 * starts afterwards. The names of those kept go to kept ("" when none);
 * false (errno set) when transparent and neither CAP_NET_RAW nor
 * CAP_NET_ADMIN was there to keep, or the kernel refused. */
bool capabilities_limit_after_setuid(bool transparent, char *kept, size_t kept_size);

/* In a forked child about to execve this binary again (a SIGUSR2
 * upgrade): the capabilities this process kept (CAP_NET_BIND_SERVICE,
 * CAP_NET_RAW, CAP_NET_ADMIN, where permitted) raised to ambient, so that
 * a process not running as root keeps them across the exec (the shipped
 * unit's ambient CAP_NET_BIND_SERVICE was cleared at start:
 * capabilities_seal_for_programs). Nothing else is
 * passed on. Async-signal-safe (raw system calls); best effort: what the
 * kernel refuses, the new process does without, and says so when it needs
 * it (a port below 1024 it cannot bind). */
void capabilities_pass_on_exec(void);

/* Before any other thread exists: no program started from this process
 * (it starts only itself, at a SIGUSR2 upgrade, handing over what it kept
 * with capabilities_pass_on_exec; a compromised worker might start
 * others) gains privileges, neither
 * from its setuid bit or file capabilities (no_new_privs) nor from this
 * process's ambient capabilities (the systemd unit's
 * CAP_NET_BIND_SERVICE, cleared: the process keeps it permitted and
 * effective). False (errno set) when the kernel refused no_new_privs. */
bool capabilities_seal_for_programs(void);

#endif
