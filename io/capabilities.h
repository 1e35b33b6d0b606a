/*
 * capabilities.h - whether this process may switch to `user =` at all,
 * and keeping the one capability IP_TRANSPARENT needs, and nothing else,
 * across that switch, for listeners with `source = client`. Raw system
 * calls: no libcap.
 */
#ifndef SNISPLICE_IO_CAPABILITIES_H
#define SNISPLICE_IO_CAPABILITIES_H

#include <stdbool.h>

/* Whether the calling thread holds CAP_SETUID and CAP_SETGID, effective:
 * what initgroups, setgid and setuid to another user need. */
bool capabilities_can_switch_user(void);

/* Before setuid: keep the permitted capabilities through it. */
bool capabilities_keep_across_setuid(void);

/* After setuid: CAP_NET_RAW permitted and effective, or CAP_NET_ADMIN
 * where the process was not given CAP_NET_RAW; every other capability
 * dropped (permitted, effective, inheritable, ambient), and the next
 * setuid clears them again. For the calling thread, and the threads it
 * starts afterwards. The name of the one kept, or NULL (errno set). */
const char *capabilities_limit_for_transparent(void);

#endif
