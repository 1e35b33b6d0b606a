/*
 * capabilities.h - keeping CAP_NET_RAW, and nothing else, across the
 * switch to `user =`, for listeners with `source = client`
 * (IP_TRANSPARENT). Raw system calls: no libcap.
 */
#ifndef SNISPLICE_IO_CAPABILITIES_H
#define SNISPLICE_IO_CAPABILITIES_H

#include <stdbool.h>

/* Before setuid: keep the permitted capabilities through it. */
bool capabilities_keep_across_setuid(void);

/* After setuid: CAP_NET_RAW permitted and effective, every other
 * capability dropped (permitted, effective, inheritable, ambient), and
 * the next setuid clears them again. For the calling thread, and the
 * threads it starts afterwards. */
bool capabilities_limit_to_net_raw(void);

#endif
