/*
 * capabilities.c - CAP_NET_RAW kept across setuid (see capabilities.h).
 *
 * capset(2) through syscall(2), as glibc has no wrapper and libcap would
 * be a dependency for two calls. It sets the calling thread's sets only,
 * which is why main.c drops privileges before any other thread exists.
 */
#include "capabilities.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

bool capabilities_keep_across_setuid(void)
{
    return prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0;
}

bool capabilities_limit_to_net_raw(void)
{
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };
    data[CAP_TO_INDEX(CAP_NET_RAW)].permitted = CAP_TO_MASK(CAP_NET_RAW);
    data[CAP_TO_INDEX(CAP_NET_RAW)].effective = CAP_TO_MASK(CAP_NET_RAW);
    if (syscall(SYS_capset, &header, data) != 0)
        return false;
    /* Ambient capabilities outside the permitted set are already gone;
     * cleared anyway, so nothing depends on that rule. */
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    return prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == 0;
}
