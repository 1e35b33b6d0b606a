/* bench/backend.c - benchmark backend for snisplice and peer proxies.
 *
 * Listens on 127.0.0.1:PORT with N threads (one SO_REUSEPORT listener and one
 * epoll instance per thread).  Per connection it reads the TLS ClientHello
 * (record by record, handshake message possibly split across records and
 * reads), then the 16-byte request from pattern.h, and serves it.
 *
 * usage: backend -p PORT [-t THREADS] [-a ADDR]
 * SIGTERM/SIGINT: print one JSON line of counters on stdout and exit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pattern.h"

enum { ST_HELLO, ST_REQ, ST_SEND, ST_RECV, ST_ACK, ST_IDLE };

struct conn {
    int fd;
    int state;
    uint32_t events;
    /* ClientHello parser */
    uint8_t rh[5];
    int rh_have;
    uint32_t rec_left;
    uint8_t hh[4];
    int hh_have;
    uint32_t hs_left;
    int hs_loaded;
    /* request */
    uint8_t req[16];
    int req_have;
    uint32_t mode;
    uint64_t size, off, good;
    int bad;
    uint8_t ack[8];
    int ack_off;
};

static uint8_t pat[PATTERN_BUF + PATTERN_PERIOD];
static struct sockaddr_in g_addr;
static atomic_ulong st_accepted, st_done, st_err_proto, st_err_data, st_err_io;
static int listen_tag; /* address used as the listener's epoll tag */

static void die(const char *m) { perror(m); exit(2); }

static int make_listener(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one)) die("SO_REUSEPORT");
    if (bind(fd, (struct sockaddr *)&g_addr, sizeof g_addr)) die("bind");
    if (listen(fd, 4096)) die("listen");
    return fd;
}

static void conn_close(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

static void set_events(int ep, struct conn *c, uint32_t ev)
{
    if (c->events == ev) return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

/* Consume ClientHello bytes. Returns bytes consumed; sets *done when the whole
 * handshake message (and the rest of its record) has been read; -1 on error. */
static ssize_t hello_feed(struct conn *c, const uint8_t *b, size_t n, int *done)
{
    size_t i = 0;
    *done = 0;
    while (i < n) {
        if (c->rec_left == 0) { /* record header */
            c->rh[c->rh_have++] = b[i++];
            if (c->rh_have == 5) {
                if (c->rh[0] != 22) return -1;
                c->rec_left = ((uint32_t)c->rh[3] << 8) | c->rh[4];
                c->rh_have = 0;
                if (c->rec_left == 0) return -1;
            }
            continue;
        }
        size_t take = n - i < c->rec_left ? n - i : c->rec_left;
        size_t j = 0;
        while (j < take && c->hh_have < 4) c->hh[c->hh_have++] = b[i + j++];
        if (c->hh_have == 4 && !c->hs_loaded) {
            if (c->hh[0] != 1) return -1;
            c->hs_left = ((uint32_t)c->hh[1] << 16) | ((uint32_t)c->hh[2] << 8) | c->hh[3];
            c->hs_loaded = 1;
        }
        size_t body = take - j;
        if (body > c->hs_left) body = c->hs_left; /* trailing bytes of the record are skipped */
        c->hs_left -= (uint32_t)body;
        c->rec_left -= (uint32_t)take;
        i += take;
        if (c->hs_loaded && c->hs_left == 0 && c->rec_left == 0) {
            *done = 1;
            return (ssize_t)i;
        }
    }
    return (ssize_t)i;
}

static int verify_upload(struct conn *c, const uint8_t *b, size_t n)
{
    if (c->off + n > c->size) return -1;
    if (!c->bad) {
        size_t k = 0;
        while (k < n) {
            size_t chunk = n - k;
            if (chunk > PATTERN_BUF) chunk = PATTERN_BUF;
            if (memcmp(b + k, pattern_at(pat, c->off + k), chunk) != 0) {
                for (size_t q = 0; q < chunk; q++)
                    if (b[k + q] != pattern_byte(c->off + k + q)) { c->good = c->off + k + q; break; }
                c->bad = 1;
                break;
            }
            k += chunk;
        }
    }
    c->off += n;
    if (!c->bad) c->good = c->off;
    return 0;
}

/* returns 1 if the connection was closed */
static int do_send(int ep, struct conn *c)
{
    if (c->state == ST_SEND) {
        while (c->off < c->size) {
            size_t n = c->size - c->off;
            if (n > PATTERN_BUF) n = PATTERN_BUF;
            ssize_t w = send(c->fd, pattern_at(pat, c->off), n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN) { set_events(ep, c, EPOLLOUT); return 0; }
                atomic_fetch_add_explicit(&st_err_io, 1, memory_order_relaxed);
                conn_close(ep, c);
                return 1;
            }
            c->off += (uint64_t)w;
        }
        atomic_fetch_add_explicit(&st_done, 1, memory_order_relaxed);
        conn_close(ep, c);
        return 1;
    }
    if (c->state == ST_ACK) {
        while (c->ack_off < 8) {
            ssize_t w = send(c->fd, c->ack + c->ack_off, 8 - c->ack_off, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN) { set_events(ep, c, EPOLLOUT); return 0; }
                atomic_fetch_add_explicit(&st_err_io, 1, memory_order_relaxed);
                conn_close(ep, c);
                return 1;
            }
            c->ack_off += (int)w;
        }
        atomic_fetch_add_explicit(&st_done, 1, memory_order_relaxed);
        conn_close(ep, c);
        return 1;
    }
    return 0;
}

static void start_reply(struct conn *c)
{
    memcpy(&c->mode, c->req + 4, 4);
    memcpy(&c->size, c->req + 8, 8);
    c->off = 0;
    switch (c->mode) {
    case MODE_CPS:
    case MODE_DOWN: c->state = ST_SEND; break;
    case MODE_UP: c->state = ST_RECV; break;
    case MODE_IDLE: c->state = ST_IDLE; c->size = 1; break;
    }
}

static void on_ack_ready(struct conn *c)
{
    uint64_t v = c->bad ? c->good : c->size;
    if (c->bad) atomic_fetch_add_explicit(&st_err_data, 1, memory_order_relaxed);
    memcpy(c->ack, &v, 8);
    c->state = ST_ACK;
    c->ack_off = 0;
}

static void on_readable(int ep, struct conn *c, uint8_t *buf, size_t bufsz)
{
    for (;;) {
        ssize_t r = recv(c->fd, buf, bufsz, 0);
        if (r < 0) {
            if (errno == EAGAIN) return;
            if (c->state != ST_IDLE) atomic_fetch_add_explicit(&st_err_io, 1, memory_order_relaxed);
            conn_close(ep, c);
            return;
        }
        if (r == 0) {
            if (c->state == ST_IDLE) atomic_fetch_add_explicit(&st_done, 1, memory_order_relaxed);
            else atomic_fetch_add_explicit(&st_err_proto, 1, memory_order_relaxed);
            conn_close(ep, c);
            return;
        }
        size_t n = (size_t)r, i = 0;
        if (c->state == ST_HELLO) {
            int done;
            ssize_t k = hello_feed(c, buf, n, &done);
            if (k < 0) goto proto_err;
            i = (size_t)k;
            if (done) c->state = ST_REQ;
        }
        if (c->state == ST_REQ && i < n) {
            while (i < n && c->req_have < 16) c->req[c->req_have++] = buf[i++];
            if (c->req_have == 16) {
                uint32_t magic;
                memcpy(&magic, c->req, 4);
                if (magic != BENCH_MAGIC) goto proto_err;
                start_reply(c);
                if (c->state == ST_REQ) goto proto_err;
                if (c->state == ST_IDLE) {
                    uint8_t b0 = pattern_byte(0);
                    if (send(c->fd, &b0, 1, MSG_NOSIGNAL) != 1) goto io_err;
                }
            }
        }
        if (c->state == ST_RECV && i < n) {
            if (verify_upload(c, buf + i, n - i)) goto proto_err;
            i = n;
            if (c->off == c->size) on_ack_ready(c);
        } else if (c->state == ST_RECV && c->size == 0) {
            on_ack_ready(c);
        }
        if (c->state == ST_SEND || c->state == ST_ACK) {
            if (i < n) goto proto_err;
            do_send(ep, c);
            return;
        }
        if (c->state == ST_IDLE) continue; /* discard */
    }
proto_err:
    atomic_fetch_add_explicit(&st_err_proto, 1, memory_order_relaxed);
    conn_close(ep, c);
    return;
io_err:
    atomic_fetch_add_explicit(&st_err_io, 1, memory_order_relaxed);
    conn_close(ep, c);
}

static void *worker(void *arg)
{
    (void)arg;
    int lfd = make_listener();
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event le = {.events = EPOLLIN, .data.ptr = &listen_tag};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le);
    size_t bufsz = 256 * 1024;
    uint8_t *buf = malloc(bufsz);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
        for (int k = 0; k < n; k++) {
            if (evs[k].data.ptr == &listen_tag) {
                for (int a = 0; a < 64; a++) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *c = calloc(1, sizeof *c);
                    c->fd = fd;
                    c->state = ST_HELLO;
                    c->events = EPOLLIN;
                    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                    atomic_fetch_add_explicit(&st_accepted, 1, memory_order_relaxed);
                }
                continue;
            }
            struct conn *c = evs[k].data.ptr;
            if (c->state == ST_SEND || c->state == ST_ACK) {
                if (evs[k].events & (EPOLLERR)) {
                    atomic_fetch_add_explicit(&st_err_io, 1, memory_order_relaxed);
                    conn_close(ep, c);
                    continue;
                }
                do_send(ep, c);
                continue;
            }
            on_readable(ep, c, buf, bufsz);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = 1, port = 0;
    const char *addr = "127.0.0.1";
    int opt;
    while ((opt = getopt(argc, argv, "p:t:a:")) != -1) {
        if (opt == 'p') port = atoi(optarg);
        else if (opt == 't') threads = atoi(optarg);
        else if (opt == 'a') addr = optarg;
        else { fprintf(stderr, "usage: %s -p PORT [-t THREADS] [-a ADDR]\n", argv[0]); return 2; }
    }
    if (port <= 0 || threads <= 0) { fprintf(stderr, "usage: %s -p PORT [-t THREADS]\n", argv[0]); return 2; }
    pattern_fill(pat);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &g_addr.sin_addr) != 1) die("address");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, NULL)) die("pthread_create");
    }
    int sig;
    sigwait(&set, &sig);
    printf("{\"accepted\":%lu,\"done\":%lu,\"err_proto\":%lu,\"err_data\":%lu,\"err_io\":%lu}\n",
           atomic_load(&st_accepted), atomic_load(&st_done), atomic_load(&st_err_proto),
           atomic_load(&st_err_data), atomic_load(&st_err_io));
    fflush(stdout);
    _exit(0);
}
