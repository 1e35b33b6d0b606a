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
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static bool effective(const struct __user_cap_data_struct *data, int capability)
{
    return (data[CAP_TO_INDEX(capability)].effective & CAP_TO_MASK(capability)) != 0;
}

bool capabilities_can_switch_user(void)
{
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };
    return syscall(SYS_capget, &header, data) == 0 && effective(data, CAP_SETUID) && effective(data, CAP_SETGID);
}

bool capabilities_keep_across_setuid(void)
{
    return prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0;
}

static bool permitted(const struct __user_cap_data_struct *data, int capability)
{
    return (data[CAP_TO_INDEX(capability)].permitted & CAP_TO_MASK(capability)) != 0;
}

const char *capabilities_limit_for_transparent(void)
{
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };
    if (syscall(SYS_capget, &header, data) != 0)
        return NULL;
    /* Either lets IP_TRANSPARENT through; CAP_NET_RAW allows less else.
     * A container may grant CAP_NET_ADMIN without it. */
    int keep = permitted(data, CAP_NET_RAW) ? CAP_NET_RAW : permitted(data, CAP_NET_ADMIN) ? CAP_NET_ADMIN : -1;
    if (keep < 0) {
        errno = EPERM;
        return NULL;
    }
    struct __user_cap_data_struct kept[_LINUX_CAPABILITY_U32S_3] = { 0 };
    kept[CAP_TO_INDEX(keep)].permitted = CAP_TO_MASK(keep);
    kept[CAP_TO_INDEX(keep)].effective = CAP_TO_MASK(keep);
    if (syscall(SYS_capset, &header, kept) != 0)
        return NULL;
    /* Ambient capabilities outside the permitted set are already gone;
     * cleared anyway, so nothing depends on that rule. */
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0)
        return NULL;
    return keep == CAP_NET_RAW ? "CAP_NET_RAW" : "CAP_NET_ADMIN";
}
