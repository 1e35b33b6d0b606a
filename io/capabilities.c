/*
 * capabilities.c - the capabilities behind `user =` (see capabilities.h).
 *
 * capget/capset(2) through syscall(2), as glibc has no wrappers and
 * libcap would be a dependency for three calls. They act on the calling
 * thread only, which is why main.c drops privileges before any other
 * thread exists.
 */
#include "capabilities.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static bool read_capabilities(struct __user_cap_data_struct *data)
{
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    return syscall(SYS_capget, &header, data) == 0;
}

static bool permitted(const struct __user_cap_data_struct *data, int capability)
{
    return (data[CAP_TO_INDEX(capability)].permitted & CAP_TO_MASK(capability)) != 0;
}

static bool effective(const struct __user_cap_data_struct *data, int capability)
{
    return (data[CAP_TO_INDEX(capability)].effective & CAP_TO_MASK(capability)) != 0;
}

bool capabilities_can_switch_user(void)
{
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };
    return read_capabilities(data) && effective(data, CAP_SETUID) && effective(data, CAP_SETGID);
}

bool capabilities_keep_across_setuid(void)
{
    return prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0;
}

static void keep(struct __user_cap_data_struct *kept, int capability, const char *name, char *names,
                 size_t names_size)
{
    kept[CAP_TO_INDEX(capability)].permitted |= CAP_TO_MASK(capability);
    kept[CAP_TO_INDEX(capability)].effective |= CAP_TO_MASK(capability);
    size_t used = 0;
    while (used < names_size && names[used])
        used++;
    snprintf(names + used, names_size - used, "%s%s", used ? " and " : "", name);
}

/* Either lets IP_TRANSPARENT through; CAP_NET_RAW allows less else. A
 * container may grant CAP_NET_ADMIN without it. -1: neither. */
static int transparent_capability(const struct __user_cap_data_struct *data)
{
    return permitted(data, CAP_NET_RAW) ? CAP_NET_RAW : permitted(data, CAP_NET_ADMIN) ? CAP_NET_ADMIN : -1;
}

bool capabilities_limit_after_setuid(bool transparent, char *kept_names, size_t kept_size)
{
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };
    if (kept_size > 0)
        kept_names[0] = '\0';
    if (!read_capabilities(data))
        return false;
    int for_transparent = transparent ? transparent_capability(data) : -1;
    if (transparent && for_transparent < 0) {
        errno = EPERM;
        return false;
    }
    struct __user_cap_data_struct kept[_LINUX_CAPABILITY_U32S_3] = { 0 };
    /* Only what start-up had: a process not given it (a container without
     * it) binds ports below 1024 neither before nor after the switch. */
    if (permitted(data, CAP_NET_BIND_SERVICE))
        keep(kept, CAP_NET_BIND_SERVICE, "CAP_NET_BIND_SERVICE", kept_names, kept_size);
    if (for_transparent >= 0)
        keep(kept, for_transparent, for_transparent == CAP_NET_RAW ? "CAP_NET_RAW" : "CAP_NET_ADMIN", kept_names,
             kept_size);
    if (syscall(SYS_capset, &header, kept) != 0)
        return false;
    /* Ambient capabilities outside the permitted set are already gone;
     * cleared anyway, so nothing depends on that rule. */
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    return prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == 0;
}

void capabilities_pass_on_exec(void)
{
    static const int passed[] = { CAP_NET_BIND_SERVICE, CAP_NET_RAW, CAP_NET_ADMIN };
    if (geteuid() == 0)
        return; /* root's exec gets every capability of the bounding set anyway */
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };
    if (!read_capabilities(data))
        return;
    /* Ambient needs each one permitted and inheritable. */
    for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++)
        if (permitted(data, passed[i]))
            data[CAP_TO_INDEX(passed[i])].inheritable |= CAP_TO_MASK(passed[i]);
    if (syscall(SYS_capset, &header, data) != 0)
        return;
    for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++)
        if (permitted(data, passed[i]))
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, passed[i], 0, 0);
}

bool capabilities_seal_for_programs(void)
{
    /* EINVAL before Linux 4.3, which has no ambient set to clear. */
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}
