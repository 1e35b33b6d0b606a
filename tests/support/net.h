/*
 * net.h - blocking loopback TCP helpers for the integration tests.
 *
 * Owns small socket conveniences with deadlines: listen, connect, send all,
 * receive exactly / until EOF, and measuring how long until a peer closes.
 * Everything is 127.0.0.1 and blocking; never leaves a socket open on a
 * failure path.
 */
#ifndef SNISPLICE_TESTS_NET_H
#define SNISPLICE_TESTS_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Listening socket on 127.0.0.1:port (SO_REUSEADDR), or -1. */
int net_listen(uint16_t port);

/* A listener on 127.0.0.1:port whose accept queue is full (backlog 0 and
 * `filler_count` connections it never accepts; their fds go to fillers):
 * it drops new SYNs, which to a client looks exactly like a server that
 * never answers. Returns the listening fd, or -1. */
int net_black_hole(uint16_t port, int *fillers, int filler_count);

/* Connected socket to 127.0.0.1:port, or -1 with errno (e.g. ECONNREFUSED). */
int net_connect(uint16_t port);

/* The same from a chosen IPv4 source address (`source`: "127.0.0.2"; any
 * 127/8 address is this host's), so tests can be different clients. */
int net_connect_from(const char *source, uint16_t port);

/* A port in 991..999 nothing is bound to on 127.0.0.1 (for tests of
 * CAP_NET_BIND_SERVICE); 0 when every one is taken. */
uint16_t net_free_low_port(void);
/* True once 127.0.0.1:port accepts a connection, polling until timeout_ms. */
bool net_wait_accepting(uint16_t port, int timeout_ms);

/* True once something listens on 127.0.0.1:port, polling /proc/net/tcp
 * until timeout_ms: no connection is made (a probe through a plain
 * forward would be a real connection to its backend). */
bool net_wait_listening(uint16_t port, int timeout_ms);
/* The kernel's timer of a TCP socket on this host, as /proc/net/tcp and
 * /proc/net/tcp6 show it: `kind` is the "tr" column (0 none, 1
 * retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero-window probe), `ticks` the
 * time left in USER_HZ ticks ("tm->when"). */
struct net_tcp_timer {
    unsigned kind;
    unsigned long ticks;
};

/* The timer of the first established socket with local port local_port
 * and remote port remote_port (either 0: any); false when there is none. */
bool net_tcp_timer(uint16_t local_port, uint16_t remote_port, struct net_tcp_timer *timer);

struct tcp_info; /* <linux/tcp.h>'s, which has every field glibc's lacks */
/* TCP_INFO of fd (zeroed first); false if getsockopt failed. */
bool net_tcp_info(int fd, struct tcp_info *info);

/* SO_RCVTIMEO and SO_SNDTIMEO, so no test blocks forever. */
void net_set_timeouts(int fd, int timeout_ms);

bool net_send_all(int fd, const void *data, size_t length);

/* Read until `length` bytes, EOF, error or timeout; returns how many arrived. */
size_t net_receive_exact(int fd, void *buffer, size_t length, int timeout_ms);

struct net_receive_result {
    size_t length;   /* bytes stored (at most capacity; more may have been dropped) */
    size_t total;    /* bytes received in all */
    bool eof;        /* orderly EOF seen */
    bool reset;      /* ECONNRESET seen */
    bool timed_out;  /* the deadline passed first */
};

/* Read (storing up to capacity bytes) until EOF, reset, error or the deadline. */
struct net_receive_result net_receive_until_closed(int fd, void *buffer, size_t capacity,
                                                   int timeout_ms);

/*
 * Milliseconds until the peer closed the connection (EOF or reset), counting
 * from `since_ms` (monotonic_ms()); -1 if still open after timeout_ms.
 * *bytes_received (optional) gets how many bytes arrived meanwhile.
 */
long long net_ms_until_closed(int fd, long long since_ms, int timeout_ms, size_t *bytes_received);

#endif
