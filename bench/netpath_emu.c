/* bench/netpath_emu.c - a wide-area path between this host and a network
 * namespace, emulated in user space through two TUN devices.
 *
 * Owns: the two TUN devices (they vanish with the process) and the packets
 * in flight between them. Never touches any other interface or namespace
 * than the one it is given.
 *
 * Why not tc netem: this machine's kernel is built without sch_netem (and
 * without sch_fq), so the path is made here instead: every IP packet the
 * host sends to the client's address is read from the host-side TUN device
 * and, after the path's delay, written into the client-side one (which lives
 * in the namespace), and the other way round. Both directions get the same
 * impairments, as netem on both ends of a veth would:
 *
 *   --delay MS      one-way delay (RTT = 2 x MS)
 *   --jitter MS     uniform +-MS added to each packet's delay; a packet may
 *                   then overtake the one before it (as netem's jitter)
 *   --loss PCT      random loss, per packet
 *   --reorder PCT   that share of packets is held --reorder-gap MS longer
 *                   (default 5), so the ones behind it arrive first
 *   --rate MBIT     bottleneck rate: packets leave one after another at this
 *                   rate (0: unlimited)
 *   --queue-ms MS   the bottleneck's buffer, as queueing delay: a packet that
 *                   would wait longer is dropped (tail drop; default 50)
 *   --netns NAME    namespace of the client side (/run/netns/NAME)
 *   --host-dev D / --client-dev D   device names (default snp-h / snp-c)
 *   --seed N
 *   --drop-synack   drop the first SYN-ACK of every connection
 *   --drop-data K   drop the first transmission of the K-th data segment the
 *                   client sends on every connection (1: the first segment
 *                   of its ClientHello; 2: the second of a 1932-byte hello
 *                   at MTU 1500). Connections are told apart by the
 *                   client's port.
 *
 * TUN devices without IFF_VNET_HDR get no GSO or TSO, so every packet is at
 * most one MTU, as on a real path (set the MTU on the devices: 1500, 1280).
 * On SIGTERM or SIGINT it prints what it did on stderr and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

struct emu_packet {
    uint64_t release_ns;
    uint64_t sequence; /* ties in release time keep arrival order */
    int out_fd;
    uint16_t length;
    uint8_t data[];
};

struct emu_direction {
    int in_fd, out_fd;
    bool to_client;
    uint64_t next_free_ns; /* when the bottleneck finishes its last packet */
    uint64_t forwarded, lost, queue_dropped, reordered;
};

static struct {
    double delay_ms, jitter_ms, loss_pct, reorder_pct, reorder_gap_ms, rate_mbit, queue_ms;
} emu_path = { .reorder_gap_ms = 5, .queue_ms = 50 };

/* Per client port: what --drop-synack and --drop-data did on its connection. */
struct emu_flow {
    bool synack_dropped;
    uint32_t data_segments; /* new (not retransmitted) data segments seen */
    uint32_t next_seq;      /* end of the highest data segment seen */
    uint32_t syn_seq;       /* the client's SYN: a retransmitted one keeps the flow */
};

static struct {
    bool drop_synack;
    uint32_t drop_data;
    struct emu_flow flows[65536];
    uint64_t dropped;
} emu_targeted;

static struct emu_packet **emu_heap;
static size_t emu_heap_count, emu_heap_capacity;
static uint64_t emu_sequence;
static volatile sig_atomic_t emu_stop;

static void emu_on_signal(int signal_number) { (void)signal_number; emu_stop = 1; }

static uint64_t emu_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static double emu_uniform(void) { return (double)random() / ((double)RAND_MAX + 1.0); }

static bool emu_before(const struct emu_packet *a, const struct emu_packet *b)
{
    return a->release_ns < b->release_ns || (a->release_ns == b->release_ns && a->sequence < b->sequence);
}

static void emu_heap_push(struct emu_packet *packet)
{
    if (emu_heap_count == emu_heap_capacity) {
        emu_heap_capacity = emu_heap_capacity ? emu_heap_capacity * 2 : 4096;
        emu_heap = realloc(emu_heap, emu_heap_capacity * sizeof *emu_heap);
        if (!emu_heap) { perror("realloc"); exit(1); }
    }
    size_t at = emu_heap_count++;
    while (at > 0 && emu_before(packet, emu_heap[(at - 1) / 2])) {
        emu_heap[at] = emu_heap[(at - 1) / 2];
        at = (at - 1) / 2;
    }
    emu_heap[at] = packet;
}

static struct emu_packet *emu_heap_pop(void)
{
    struct emu_packet *top = emu_heap[0], *last = emu_heap[--emu_heap_count];
    size_t at = 0;
    for (;;) {
        size_t child = 2 * at + 1;
        if (child >= emu_heap_count) break;
        if (child + 1 < emu_heap_count && emu_before(emu_heap[child + 1], emu_heap[child])) child++;
        if (!emu_before(emu_heap[child], last)) break;
        emu_heap[at] = emu_heap[child];
        at = child;
    }
    if (emu_heap_count) emu_heap[at] = last;
    return top;
}

static int emu_open_tun(const char *name)
{
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) { perror("/dev/net/tun"); exit(1); }
    struct ifreq request = { .ifr_flags = IFF_TUN | IFF_NO_PI };
    snprintf(request.ifr_name, sizeof request.ifr_name, "%s", name);
    if (ioctl(fd, TUNSETIFF, &request) < 0) { fprintf(stderr, "TUNSETIFF %s: %s\n", name, strerror(errno)); exit(1); }
    return fd;
}

/* The client's device is created inside the namespace; its fd keeps
 * working from here once this thread is back in its own namespace. */
static int emu_open_tun_in(const char *netns, const char *name)
{
    int own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    char path[256];
    snprintf(path, sizeof path, "/run/netns/%s", netns);
    int target = open(path, O_RDONLY | O_CLOEXEC);
    if (own < 0 || target < 0 || setns(target, CLONE_NEWNET) < 0) { fprintf(stderr, "netns %s: %s\n", netns, strerror(errno)); exit(1); }
    int fd = emu_open_tun(name);
    if (setns(own, CLONE_NEWNET) < 0) { perror("setns back"); exit(1); }
    close(own);
    close(target);
    return fd;
}

static uint64_t emu_ms_to_ns(double ms) { return (uint64_t)(ms * 1e6); }

static uint32_t emu_be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* --drop-synack, --drop-data: true when this packet is the one to lose.
 * to_client: the packet goes from the host to the client. */
static bool emu_targeted_drop(const uint8_t *data, size_t length, bool to_client)
{
    if (length < 20 || (data[0] >> 4) != 4 || data[9] != 6) return false;
    size_t ip_header = (size_t)(data[0] & 15) * 4;
    if (length < ip_header + 20) return false;
    const uint8_t *tcp = data + ip_header;
    uint16_t client_port = to_client ? (uint16_t)(tcp[2] << 8 | tcp[3]) : (uint16_t)(tcp[0] << 8 | tcp[1]);
    struct emu_flow *flow = &emu_targeted.flows[client_port];
    uint8_t flags = tcp[13];
    bool syn = flags & 0x02, ack = flags & 0x10;
    uint32_t seq = emu_be32(tcp + 4);
    size_t payload = length - ip_header - (size_t)(tcp[12] >> 4) * 4;
    if (!to_client && syn && !ack) { /* a new connection on this port, or its SYN again */
        if (flow->syn_seq != seq || flow->next_seq == 0)
            *flow = (struct emu_flow){ .next_seq = seq + 1, .syn_seq = seq };
        return false;
    }
    if (to_client && syn && ack && emu_targeted.drop_synack && !flow->synack_dropped) {
        flow->synack_dropped = true;
        return true;
    }
    if (to_client || payload == 0 || (int32_t)(seq - flow->next_seq) < 0) return false;
    flow->next_seq = seq + (uint32_t)payload;
    return ++flow->data_segments == emu_targeted.drop_data;
}

/* Take one packet into the path: lost, dropped at a full bottleneck, or
 * scheduled for its release. */
static void emu_admit(struct emu_direction *direction, const uint8_t *data, size_t length, uint64_t now)
{
    if ((emu_targeted.drop_synack || emu_targeted.drop_data) && emu_targeted_drop(data, length, direction->to_client)) {
        emu_targeted.dropped++;
        return;
    }
    if (emu_path.loss_pct > 0 && emu_uniform() * 100 < emu_path.loss_pct) { direction->lost++; return; }
    uint64_t departs = now;
    if (emu_path.rate_mbit > 0) {
        uint64_t start = direction->next_free_ns > now ? direction->next_free_ns : now;
        if (start - now > emu_ms_to_ns(emu_path.queue_ms)) { direction->queue_dropped++; return; }
        departs = start + (uint64_t)((double)length * 8000.0 / emu_path.rate_mbit);
        direction->next_free_ns = departs;
    }
    double delay_ms = emu_path.delay_ms;
    if (emu_path.jitter_ms > 0) delay_ms += (emu_uniform() * 2 - 1) * emu_path.jitter_ms;
    if (emu_path.reorder_pct > 0 && emu_uniform() * 100 < emu_path.reorder_pct) {
        delay_ms += emu_path.reorder_gap_ms;
        direction->reordered++;
    }
    if (delay_ms < 0) delay_ms = 0;
    struct emu_packet *packet = malloc(sizeof *packet + length);
    if (!packet) { perror("malloc"); exit(1); }
    packet->release_ns = departs + emu_ms_to_ns(delay_ms);
    packet->sequence = emu_sequence++;
    packet->out_fd = direction->out_fd;
    packet->length = (uint16_t)length;
    memcpy(packet->data, data, length);
    emu_heap_push(packet);
}

static void emu_read_all(struct emu_direction *direction, uint64_t now)
{
    uint8_t buffer[65536];
    for (int i = 0; i < 256; i++) {
        ssize_t got = read(direction->in_fd, buffer, sizeof buffer);
        if (got <= 0) return;
        emu_admit(direction, buffer, (size_t)got, now);
    }
}

static void emu_release_due(uint64_t now, struct emu_direction *directions)
{
    while (emu_heap_count && emu_heap[0]->release_ns <= now) {
        struct emu_packet *packet = emu_heap_pop();
        /* A full device queue loses the packet, as a real link would. */
        if (write(packet->out_fd, packet->data, packet->length) == packet->length)
            directions[packet->out_fd == directions[0].out_fd ? 0 : 1].forwarded++;
        free(packet);
    }
}

static void emu_usage(void)
{
    fprintf(stderr, "usage: netpath_emu --netns NAME [--delay MS] [--jitter MS] [--loss PCT] [--reorder PCT]\n"
                    "       [--reorder-gap MS] [--rate MBIT] [--queue-ms MS] [--host-dev D] [--client-dev D] [--seed N]\n"
                    "       [--drop-synack] [--drop-data K]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *netns = NULL, *host_dev = "snp-h", *client_dev = "snp-c";
    unsigned seed = 1;
    static const struct option options[] = {
        { "delay", 1, 0, 'd' }, { "jitter", 1, 0, 'j' }, { "loss", 1, 0, 'l' }, { "reorder", 1, 0, 'r' },
        { "reorder-gap", 1, 0, 'g' }, { "rate", 1, 0, 'R' }, { "queue-ms", 1, 0, 'q' }, { "netns", 1, 0, 'n' },
        { "host-dev", 1, 0, 'H' }, { "client-dev", 1, 0, 'C' }, { "seed", 1, 0, 's' },
        { "drop-synack", 0, 0, 'S' }, { "drop-data", 1, 0, 'D' }, { 0, 0, 0, 0 } };
    int option;
    while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (option) {
        case 'd': emu_path.delay_ms = atof(optarg); break;
        case 'j': emu_path.jitter_ms = atof(optarg); break;
        case 'l': emu_path.loss_pct = atof(optarg); break;
        case 'r': emu_path.reorder_pct = atof(optarg); break;
        case 'g': emu_path.reorder_gap_ms = atof(optarg); break;
        case 'R': emu_path.rate_mbit = atof(optarg); break;
        case 'q': emu_path.queue_ms = atof(optarg); break;
        case 'n': netns = optarg; break;
        case 'H': host_dev = optarg; break;
        case 'C': client_dev = optarg; break;
        case 'S': emu_targeted.drop_synack = true; break;
        case 'D': emu_targeted.drop_data = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 's': seed = (unsigned)strtoul(optarg, NULL, 10); break;
        default: emu_usage();
        }
    }
    if (!netns) emu_usage();
    srandom(seed);
    struct sigaction action = { .sa_handler = emu_on_signal };
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);

    int host_fd = emu_open_tun(host_dev);
    int client_fd = emu_open_tun_in(netns, client_dev);
    struct emu_direction directions[2] = {
        { .in_fd = host_fd, .out_fd = client_fd, .to_client = true },
        { .in_fd = client_fd, .out_fd = host_fd },
    };
    fprintf(stderr, "netpath_emu: ready\n");
    struct pollfd polls[2] = { { .fd = host_fd, .events = POLLIN }, { .fd = client_fd, .events = POLLIN } };
    while (!emu_stop) {
        uint64_t now = emu_now_ns();
        emu_release_due(now, directions);
        struct timespec timeout, *wait = NULL;
        if (emu_heap_count) {
            uint64_t left = emu_heap[0]->release_ns > now ? emu_heap[0]->release_ns - now : 0;
            timeout = (struct timespec){ (time_t)(left / 1000000000u), (long)(left % 1000000000u) };
            wait = &timeout;
        }
        if (ppoll(polls, 2, wait, NULL) < 0 && errno != EINTR) { perror("ppoll"); return 1; }
        now = emu_now_ns();
        for (int i = 0; i < 2; i++)
            if (polls[i].revents & POLLIN) emu_read_all(&directions[i], now);
    }
    fprintf(stderr, "netpath_emu: targeted drops %llu\n", (unsigned long long)emu_targeted.dropped);
    for (int i = 0; i < 2; i++)
        fprintf(stderr, "netpath_emu: %s forwarded %llu lost %llu queue_dropped %llu reordered %llu\n",
                i == 0 ? "to_client" : "from_client", (unsigned long long)directions[i].forwarded,
                (unsigned long long)directions[i].lost, (unsigned long long)directions[i].queue_dropped,
                (unsigned long long)directions[i].reordered);
    return 0;
}
