/*
 * congestion.h - which TCP congestion control algorithm a socket of the
 * proxy gets: `congestion_control` of an [upstream] (its sockets to the
 * servers) and of a [listen] (the client sockets it accepts). Pure: it
 * names an algorithm, it never sets one (io/connect.c, io/listener.c do).
 *
 * Between two sockets of one host no packet is lost or queued on a path,
 * so algorithms differ only in pacing, and pacing (BBR's, without the fq
 * qdisc) arms a kernel timer per segment: about half the relay's CPU per
 * byte on a loopback leg (bench/NOTES.md). So `auto` picks reno for a leg
 * that cannot leave the host: a loopback server, or a listener bound to a
 * loopback address (whose every client is on this host, unless a firewall
 * DNATs outside traffic there with route_localnet: the README tells such
 * a setup to say `system`). Reno never
 * paces, is built into every kernel and is allowed to every user. Every
 * other leg keeps the system's choice (net.ipv4.tcp_congestion_control):
 * across the internet its pacing is what the administrator chose it for.
 */
#ifndef SNISPLICE_CORE_CONGESTION_H
#define SNISPLICE_CORE_CONGESTION_H

#include <stdint.h>

#include "address.h"

enum congestion_choice {
    CONGESTION_AUTO,   /* CONGESTION_LOOPBACK on a loopback leg; the system's elsewhere */
    CONGESTION_SYSTEM, /* never set: net.ipv4.tcp_congestion_control decides */
    CONGESTION_NAMED,  /* `name`, on every TCP socket of the leg */
};

#define CONGESTION_LOOPBACK "reno"
#define CONGESTION_NAME_MAX 16 /* the kernel's TCP_CA_NAME_MAX, NUL included */

struct congestion {
    uint8_t choice;                /* enum congestion_choice; zero is auto */
    char name[CONGESTION_NAME_MAX]; /* for CONGESTION_NAMED */
};

/* The algorithm to set on a socket whose leg is `leg` (the server's
 * address, or the address a listener is bound to), or NULL to leave the
 * system's default (always for unix sockets: they have no TCP). */
const char *congestion_algorithm(const struct congestion *congestion, const struct address *leg);

#endif
