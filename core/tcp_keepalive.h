/*
 * tcp_keepalive.h - TCP keepalive on a listener's client sockets or an
 * upstream's server sockets (`tcp_keepalive` in the INI; nginx's
 * `listen ... so_keepalive=` and `proxy_socket_keepalive`).
 *
 * Keepalive finds a peer that vanished without a FIN or RST (a NAT entry
 * that expired, a laptop closed): the kernel probes an idle connection and
 * resets it when the probes go unanswered, so both of the proxy's sockets
 * close before idle_timeout. The timers are ints in seconds because the
 * socket options take ints, and they live here, in the snapshot a
 * connection pins, because an io_uring setsockopt reads them only when its
 * batch is submitted.
 */
#ifndef SNISPLICE_CORE_TCP_KEEPALIVE_H
#define SNISPLICE_CORE_TCP_KEEPALIVE_H

#include <stdbool.h>

/* The kernel's limits (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT). */
#define TCP_KEEPALIVE_TIME_MAX 32767
#define TCP_KEEPALIVE_COUNT_MAX 127

struct tcp_keepalive {
    bool enabled;  /* SO_KEEPALIVE; false: nothing is set, off as in nginx */
    int idle;      /* TCP_KEEPIDLE, seconds; 0: net.ipv4.tcp_keepalive_time */
    int interval;  /* TCP_KEEPINTVL, seconds; 0: net.ipv4.tcp_keepalive_intvl */
    int count;     /* TCP_KEEPCNT; 0: net.ipv4.tcp_keepalive_probes */
};

#endif
