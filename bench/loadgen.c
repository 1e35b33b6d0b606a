/* bench/loadgen.c - load generator for the snisplice benchmark.
 *
 * Each connection sends a real TLS ClientHello (--hello FILE) followed by the
 * 16-byte request of pattern.h, and verifies every byte it gets back.
 *
 *   --target HOST:PORT   where to connect (IPv4)
 *   --hello FILE         ClientHello capture (TLS record(s))
 *   --mode M             cps | bulk-down | bulk-up | idle | rate
 *   --concurrency C      cps: connections kept in flight (closed loop);
 *                        bulk-*: number of parallel transfers
 *   --duration S         cps/rate: run time; idle: hold time after "ready"
 *                        (0 = until SIGTERM)
 *   --size N             cps/rate: reply bytes (default 1024);
 *                        bulk-*: bytes per connection (suffix k/m/g allowed)
 *   --rate R             rate: new connections per second (open loop)
 *   --connections K      idle: connections to open and hold
 *   --threads T          worker threads (default 1)
 *   --timeout S          no progress on a connection for S s = error (default 10)
 *
 * Errors counted: connect (refused/failed), reset (ECONNRESET/EPIPE/other
 * I/O error), short (EOF before all bytes), data (wrong/extra byte, bad ack),
 * timeout.  Output: one JSON line on stdout (idle mode first prints a
 * {"mode":"idle","ready":true,...} line once every connection got its byte).
 * Latency is measured from connect() to the end-of-stream of the reply.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"

enum { M_CPS, M_DOWN, M_UP, M_IDLE, M_RATE };
static const char *mode_names[] = {"cps", "bulk-down", "bulk-up", "idle", "rate"};

enum { S_FREE, S_CONNECTING, S_SENDING, S_UPLOAD, S_RECV, S_ACK, S_HOLD };

struct lconn {
    int fd;
    int state;
    uint32_t events;
    uint64_t t_start, t_last;
    size_t out_off;
    uint64_t up_off, in_off;
    uint8_t ack[8];
    int ack_have;
};

struct lat {
    uint32_t *v;
    size_t n, cap;
};

struct thr {
    int id;
    pthread_t th;
    int ep, tfd;
    struct lconn *c;
    int nslots;
    int target_conc; /* cps/bulk/idle: connections this thread owns */
    int started;     /* bulk/idle: connections started so far */
    int finished;    /* bulk/idle: connections finished */
    int in_connect;  /* idle: connects in progress */
    double rate;     /* rate: conn/s for this thread */
    uint64_t next_start;
    uint64_t done, bytes;
    uint64_t e_connect, e_reset, e_short, e_data, e_timeout, e_overload;
    uint64_t t_end;
    struct lat lat;
};

static int g_mode = M_CPS;
static struct sockaddr_in g_target;
static uint8_t *g_pre;
static size_t g_pre_len;
static uint64_t g_size = 1024;
static double g_duration = 5, g_rate = 100, g_timeout = 10;
static int g_conc = 1, g_conns = 100, g_threads = 1;
static uint8_t pat[PATTERN_BUF + PATTERN_PERIOD];
static volatile sig_atomic_t g_stop;
static uint64_t g_t0, g_deadline;
static atomic_int g_ready_count;
static atomic_int g_phase; /* idle: 0 opening, 1 holding, 2 closing */
static uint64_t g_hold_until;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *m) { perror(m); exit(2); }
static void on_sig(int s) { (void)s; g_stop = 1; }

static uint64_t parse_size(const char *s)
{
    char *e;
    double v = strtod(s, &e);
    switch (*e) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
    }
    return (uint64_t)v;
}

static void lat_add(struct lat *l, uint64_t ns)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 65536;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) die("realloc");
    }
    uint64_t us = ns / 1000;
    l->v[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void set_ev(struct thr *t, struct lconn *c, uint32_t ev)
{
    if (c->events == ev) return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(t->ep, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

static void conn_free(struct thr *t, struct lconn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    if (c->state == S_CONNECTING) t->in_connect--;
    c->state = S_FREE;
}

static int conn_start(struct thr *t, struct lconn *c)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->t_start = c->t_last = now_ns();
    if (c->fd < 0) { c->fd = -1; t->e_connect++; return -1; }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&g_target, sizeof g_target) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        t->e_connect++;
        return -1;
    }
    c->state = S_CONNECTING;
    t->in_connect++;
    c->events = EPOLLOUT;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(t->ep, EPOLL_CTL_ADD, c->fd, &e);
    return 0;
}

/* connection ended (ok or error): account and maybe restart */
static void conn_end(struct thr *t, struct lconn *c, int ok)
{
    uint64_t now = now_ns();
    if (ok) {
        t->done++;
        if (g_mode == M_CPS || g_mode == M_RATE) lat_add(&t->lat, now - c->t_start);
    }
    conn_free(t, c);
    if (g_mode == M_DOWN || g_mode == M_UP || g_mode == M_IDLE) {
        t->finished++;
        t->t_end = now;
        return;
    }
    if (g_mode == M_CPS && !g_stop && now < g_deadline) conn_start(t, c);
}

static void io_error(struct thr *t, struct lconn *c, int err)
{
    (void)err;
    t->e_reset++;
    conn_end(t, c, 0);
}

static uint64_t expected_in(void)
{
    return g_mode == M_IDLE ? 1 : g_size;
}

static void after_sent(struct thr *t, struct lconn *c)
{
    if (g_mode == M_UP) { c->state = S_UPLOAD; set_ev(t, c, EPOLLOUT | EPOLLIN); }
    else { c->state = S_RECV; set_ev(t, c, EPOLLIN); }
}

static void do_write(struct thr *t, struct lconn *c)
{
    if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) { t->e_connect++; conn_end(t, c, 0); return; }
        t->in_connect--;
        c->state = S_SENDING;
    }
    if (c->state == S_SENDING) {
        while (c->out_off < g_pre_len) {
            ssize_t w = send(c->fd, g_pre + c->out_off, g_pre_len - c->out_off, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN) { set_ev(t, c, EPOLLOUT); return; }
                io_error(t, c, errno);
                return;
            }
            c->out_off += (size_t)w;
            c->t_last = now_ns();
        }
        after_sent(t, c);
        if (c->state != S_UPLOAD) return;
    }
    if (c->state == S_UPLOAD) {
        while (c->up_off < g_size) {
            size_t n = g_size - c->up_off;
            if (n > PATTERN_BUF) n = PATTERN_BUF;
            ssize_t w = send(c->fd, pattern_at(pat, c->up_off), n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN) return;
                io_error(t, c, errno);
                return;
            }
            c->up_off += (uint64_t)w;
            t->bytes += (uint64_t)w;
            c->t_last = now_ns();
        }
        c->state = S_ACK;
        set_ev(t, c, EPOLLIN);
    }
}

static void do_read(struct thr *t, struct lconn *c, uint8_t *buf, size_t bufsz)
{
    for (;;) {
        ssize_t r = recv(c->fd, buf, bufsz, 0);
        if (r < 0) {
            if (errno == EAGAIN) return;
            io_error(t, c, errno);
            return;
        }
        c->t_last = now_ns();
        if (r == 0) {
            if (c->state == S_RECV && c->in_off == expected_in() && g_mode != M_IDLE) { conn_end(t, c, 1); return; }
            if (c->state == S_ACK && c->ack_have == 8) {
                uint64_t v;
                memcpy(&v, c->ack, 8);
                if (v == g_size) { conn_end(t, c, 1); return; }
                t->e_data++;
                conn_end(t, c, 0);
                return;
            }
            if (c->state == S_HOLD && atomic_load(&g_phase) == 2) { conn_end(t, c, 1); return; }
            t->e_short++;
            conn_end(t, c, 0);
            return;
        }
        size_t n = (size_t)r;
        if (c->state == S_RECV) {
            uint64_t exp = expected_in();
            if (c->in_off + n > exp) { t->e_data++; conn_end(t, c, 0); return; }
            size_t k = 0;
            while (k < n) {
                size_t ch = n - k > PATTERN_BUF ? PATTERN_BUF : n - k;
                if (memcmp(buf + k, pattern_at(pat, c->in_off + k), ch)) { t->e_data++; conn_end(t, c, 0); return; }
                k += ch;
            }
            c->in_off += n;
            if (g_mode != M_IDLE) t->bytes += n;
            if (g_mode == M_IDLE && c->in_off == 1) {
                c->state = S_HOLD;
                int k2 = atomic_fetch_add(&g_ready_count, 1) + 1;
                if (k2 == g_conns) {
                    uint64_t now = now_ns();
                    printf("{\"mode\":\"idle\",\"ready\":true,\"connections\":%d,\"open_s\":%.3f}\n", g_conns,
                           (double)(now - g_t0) / 1e9);
                    fflush(stdout);
                    g_hold_until = g_duration > 0 ? now + (uint64_t)(g_duration * 1e9) : UINT64_MAX;
                    atomic_store(&g_phase, 1);
                }
            }
        } else if (c->state == S_ACK || c->state == S_UPLOAD) {
            if (c->state == S_UPLOAD || c->ack_have + n > 8) { t->e_data++; conn_end(t, c, 0); return; }
            memcpy(c->ack + c->ack_have, buf, n);
            c->ack_have += (int)n;
        } else { /* S_HOLD: no byte expected */
            t->e_data++;
            conn_end(t, c, 0);
            return;
        }
    }
}

static void arm_timer(struct thr *t, uint64_t at_ns)
{
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(at_ns / 1000000000ull);
    its.it_value.tv_nsec = (long)(at_ns % 1000000000ull);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
    timerfd_settime(t->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static int active_count(struct thr *t)
{
    int a = 0;
    for (int i = 0; i < t->nslots; i++) a += t->c[i].state != S_FREE;
    return a;
}

static void *thr_main(void *arg)
{
    struct thr *t = arg;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    t->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event te = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(t->ep, EPOLL_CTL_ADD, t->tfd, &te);
    for (int i = 0; i < t->nslots; i++) { t->c[i].fd = -1; t->c[i].state = S_FREE; }
    size_t bufsz = PATTERN_BUF;
    uint8_t *buf = malloc(bufsz);
    uint64_t timeout_ns = (uint64_t)(g_timeout * 1e9);
    uint64_t last_scan = now_ns();

    if (g_mode == M_CPS || g_mode == M_DOWN || g_mode == M_UP) {
        for (int i = 0; i < t->target_conc; i++) { conn_start(t, &t->c[i]); t->started++; }
    }
    if (g_mode == M_RATE) {
        t->next_start = g_t0 + (uint64_t)(1e9 / t->rate * (t->id / (double)g_threads));
        arm_timer(t, t->next_start);
    }
    struct epoll_event evs[256];
    for (;;) {
        uint64_t now = now_ns();
        /* termination conditions */
        if (g_mode == M_CPS || g_mode == M_RATE) {
            if (g_stop || now >= g_deadline) {
                if (g_mode == M_CPS || g_stop || active_count(t) == 0 || now >= g_deadline + timeout_ns) break;
            }
        } else if (g_mode == M_DOWN || g_mode == M_UP) {
            if (t->finished >= t->target_conc || g_stop) break;
        } else if (g_mode == M_IDLE) {
            /* phase 2 means another thread already stopped: every thread must
             * leave, or its held connections stay open until the proxy's
             * idle_timeout (10 minutes with the bench config) */
            int phase = atomic_load(&g_phase);
            if (g_stop || phase == 2) break;
            if (phase == 1 && now >= g_hold_until) break;
            if (t->finished >= t->target_conc) break; /* every connection failed */
            while (t->started < t->target_conc && t->in_connect < 128) {
                if (conn_start(t, &t->c[t->started]) < 0) t->finished++;
                t->started++;
            }
        }
        int n = epoll_wait(t->ep, evs, 256, 50);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int k = 0; k < n; k++) {
            struct lconn *c = evs[k].data.ptr;
            if (!c) { /* rate timer */
                uint64_t x;
                if (read(t->tfd, &x, sizeof x) < 0) {}
                uint64_t tn = now_ns();
                while (t->next_start <= tn && t->next_start < g_deadline) {
                    int slot = -1;
                    for (int i = 0; i < t->nslots; i++) if (t->c[i].state == S_FREE) { slot = i; break; }
                    if (slot < 0) t->e_overload++;
                    else conn_start(t, &t->c[slot]);
                    t->next_start += (uint64_t)(1e9 / t->rate);
                }
                if (t->next_start < g_deadline) arm_timer(t, t->next_start);
                continue;
            }
            if (c->state == S_FREE) continue;
            uint32_t e = evs[k].events;
            if ((e & EPOLLOUT) && (c->state == S_CONNECTING || c->state == S_SENDING || c->state == S_UPLOAD)) {
                do_write(t, c);
                if (c->state == S_FREE) continue;
            }
            if ((e & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->state != S_CONNECTING) do_read(t, c, buf, bufsz);
            else if ((e & (EPOLLHUP | EPOLLERR)) && c->state == S_CONNECTING) do_write(t, c);
        }
        now = now_ns();
        if (now - last_scan > 100000000ull) {
            last_scan = now;
            for (int i = 0; i < t->nslots; i++) {
                struct lconn *c = &t->c[i];
                if (c->state == S_FREE || c->state == S_HOLD) continue;
                if (now - c->t_last > timeout_ns) { t->e_timeout++; conn_end(t, c, 0); }
            }
        }
    }
    /* idle: close everything (the backend sees EOF); bulk/cps: abandon in-flight */
    if (g_mode == M_IDLE) {
        atomic_store(&g_phase, 2);
        for (int i = 0; i < t->nslots; i++) {
            struct lconn *c = &t->c[i];
            if (c->state == S_HOLD) { t->done++; conn_free(t, c); }
            else if (c->state != S_FREE) { conn_free(t, c); }
        }
    } else {
        for (int i = 0; i < t->nslots; i++) if (t->c[i].state != S_FREE) conn_free(t, &t->c[i]);
    }
    if (!t->t_end) t->t_end = now_ns();
    free(buf);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen --target HOST:PORT --hello FILE --mode cps|bulk-down|bulk-up|idle|rate\n"
                    "  [--concurrency C] [--duration S] [--size N] [--rate R] [--connections K]\n"
                    "  [--threads T] [--timeout S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static struct option lo[] = {
        {"target", 1, 0, 't'}, {"hello", 1, 0, 'h'}, {"mode", 1, 0, 'm'},
        {"concurrency", 1, 0, 'c'}, {"duration", 1, 0, 'd'}, {"size", 1, 0, 's'},
        {"rate", 1, 0, 'r'}, {"connections", 1, 0, 'k'}, {"threads", 1, 0, 'T'},
        {"timeout", 1, 0, 'o'}, {0, 0, 0, 0}};
    const char *target = NULL, *hello = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (opt) {
        case 't': target = optarg; break;
        case 'h': hello = optarg; break;
        case 'm': {
            int m = -1;
            for (int i = 0; i < 5; i++) if (!strcmp(optarg, mode_names[i])) m = i;
            if (m < 0) usage();
            g_mode = m;
            break;
        }
        case 'c': g_conc = atoi(optarg); break;
        case 'd': g_duration = atof(optarg); break;
        case 's': g_size = parse_size(optarg); break;
        case 'r': g_rate = atof(optarg); break;
        case 'k': g_conns = atoi(optarg); break;
        case 'T': g_threads = atoi(optarg); break;
        case 'o': g_timeout = atof(optarg); break;
        default: usage();
        }
    }
    if (!target || !hello || g_threads < 1) usage();
    char host[256];
    const char *colon = strrchr(target, ':');
    if (!colon || (size_t)(colon - target) >= sizeof host) usage();
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = 0;
    g_target.sin_family = AF_INET;
    g_target.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &g_target.sin_addr) != 1) { fprintf(stderr, "bad host %s\n", host); return 2; }

    int hfd = open(hello, O_RDONLY);
    if (hfd < 0) die(hello);
    struct stat st;
    fstat(hfd, &st);
    g_pre_len = (size_t)st.st_size + sizeof(struct bench_req);
    g_pre = malloc(g_pre_len);
    if (read(hfd, g_pre, (size_t)st.st_size) != st.st_size) die("read hello");
    close(hfd);
    struct bench_req rq = {.magic = BENCH_MAGIC};
    switch (g_mode) {
    case M_CPS: case M_RATE: rq.mode = MODE_CPS; break;
    case M_DOWN: rq.mode = MODE_DOWN; break;
    case M_UP: rq.mode = MODE_UP; break;
    case M_IDLE: rq.mode = MODE_IDLE; break;
    }
    rq.size = g_mode == M_IDLE ? 0 : g_size;
    memcpy(g_pre + st.st_size, &rq, sizeof rq);
    pattern_fill(pat);

    struct sigaction sa = {0};
    sa.sa_handler = on_sig;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int total = g_mode == M_IDLE ? g_conns : g_conc;
    if (g_mode == M_IDLE && g_conns < 1) usage();
    if (g_mode != M_IDLE && g_mode != M_RATE && g_conc < 1) usage();
    struct thr *th = calloc((size_t)g_threads, sizeof *th);
    g_t0 = now_ns();
    g_deadline = g_t0 + (uint64_t)(g_duration * 1e9);
    for (int i = 0; i < g_threads; i++) {
        struct thr *t = &th[i];
        t->id = i;
        t->target_conc = total / g_threads + (i < total % g_threads);
        if (g_mode == M_RATE) {
            t->rate = g_rate / g_threads;
            t->nslots = 4096;
        } else {
            t->nslots = t->target_conc > 0 ? t->target_conc : 1;
        }
        t->c = calloc((size_t)t->nslots, sizeof *t->c);
        if (pthread_create(&t->th, NULL, thr_main, t)) die("pthread_create");
    }
    struct thr sum = {0};
    struct lat all = {0};
    uint64_t t_end = 0;
    for (int i = 0; i < g_threads; i++) {
        struct thr *t = &th[i];
        pthread_join(t->th, NULL);
        sum.done += t->done;
        sum.bytes += t->bytes;
        sum.e_connect += t->e_connect;
        sum.e_reset += t->e_reset;
        sum.e_short += t->e_short;
        sum.e_data += t->e_data;
        sum.e_timeout += t->e_timeout;
        sum.e_overload += t->e_overload;
        if (t->t_end > t_end) t_end = t->t_end;
        for (size_t j = 0; j < t->lat.n; j++) lat_add(&all, (uint64_t)t->lat.v[j] * 1000);
    }
    double el = (double)(t_end - g_t0) / 1e9;
    if (g_mode == M_CPS || g_mode == M_RATE) el = g_duration; /* fixed window */
    if (g_mode == M_CPS && t_end - g_t0 < (uint64_t)(g_duration * 1e9)) el = (double)(t_end - g_t0) / 1e9;
    uint64_t errors = sum.e_connect + sum.e_reset + sum.e_short + sum.e_data + sum.e_timeout + sum.e_overload;
    if ((g_mode == M_DOWN || g_mode == M_UP) && sum.done != (uint64_t)g_conc) {
        /* a transfer that neither finished nor errored (interrupted) */
        if (errors == 0) errors = (uint64_t)g_conc - sum.done;
    }
    if (g_mode == M_IDLE && sum.done != (uint64_t)g_conns && errors == 0) errors = (uint64_t)g_conns - sum.done;
    double p50 = 0, p99 = 0, p999 = 0;
    if (all.n) {
        qsort(all.v, all.n, sizeof *all.v, cmp_u32);
        p50 = all.v[(size_t)((double)(all.n - 1) * 0.5)];
        p99 = all.v[(size_t)((double)(all.n - 1) * 0.99)];
        p999 = all.v[(size_t)((double)(all.n - 1) * 0.999)];
    }
    printf("{\"mode\":\"%s\",\"connections\":%llu,\"errors\":%llu,\"conn_per_s\":%.1f,"
           "\"p50_us\":%.0f,\"p99_us\":%.0f,\"p999_us\":%.0f,\"gbps\":%.3f,\"bytes\":%llu,"
           "\"elapsed_s\":%.3f,\"concurrency\":%d,\"size\":%llu,"
           "\"err_connect\":%llu,\"err_reset\":%llu,\"err_short\":%llu,\"err_data\":%llu,"
           "\"err_timeout\":%llu,\"err_overload\":%llu}\n",
           mode_names[g_mode], (unsigned long long)sum.done, (unsigned long long)errors,
           el > 0 ? (double)sum.done / el : 0.0, p50, p99, p999,
           el > 0 ? (double)sum.bytes * 8 / el / 1e9 : 0.0, (unsigned long long)sum.bytes, el,
           g_mode == M_IDLE ? g_conns : g_conc, (unsigned long long)g_size,
           (unsigned long long)sum.e_connect, (unsigned long long)sum.e_reset,
           (unsigned long long)sum.e_short, (unsigned long long)sum.e_data,
           (unsigned long long)sum.e_timeout, (unsigned long long)sum.e_overload);
    return errors ? 1 : 0;
}
