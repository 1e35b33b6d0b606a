/*
 * main.c - the snisplice process: command line, config check, listeners,
 * worker threads, and the signal loop (SIGHUP reload, SIGTERM/SIGINT/SIGQUIT
 * drain, a second SIGTERM/SIGINT during the drain closes what is still open,
 * SIGUSR2 replaces the binary: io/upgrade.c).
 *
 * The main thread never touches a connection. It owns the config file, the
 * publisher (it is the only thread that publishes and reclaims snapshots),
 * the listening sockets until the workers take them over, and a copy of
 * each (listen_fds) to hand to a new binary; the copies are closed when
 * their address goes or a drain begins, so they never keep a port open
 * that the workers let go.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../config/config.h"
#include "../config/nginx_import.h"
#include "../core/client_counts.h"
#include "../core/publisher.h"
#include "capabilities.h"
#include "listener.h"
#include "log.h"
#include "ring_support.h"
#include "service.h"
#include "stats_server.h"
#include "upgrade.h"
#include "upstream_source.h"
#include "worker.h"

#ifndef SNISPLICE_VERSION
#define SNISPLICE_VERSION "0.0.0"
#endif
#define DEFAULT_CONFIG "/etc/snisplice/snisplice.ini"

struct options {
    const char *config_path;
    bool test_only;
};

struct process {
    const char *config_path;
    char *access_log_path;      /* as configured now; NULL: off */
    char *user;                 /* as configured at start; NULL: none */
    struct publisher *publisher;
    struct client_counts *client_counts; /* max_connections_per_client, all workers' */
    struct worker *workers;
    unsigned worker_count;
    const int *worker_cpus;     /* worker w is pinned to worker_cpus[w]; NULL: not pinned */
    struct config_listen *listen; /* addresses served now (owned copy) */
    size_t listen_count;
    int *listen_fds;            /* [i * worker_count + w]: a copy of worker w's socket of listen[i] */
    struct upgrade upgrade;     /* SIGUSR2: the new process being waited for */
    bool reload_pending;        /* SIGHUP came during that wait */
    struct upgrade_inherited inherited; /* started by an upgrade: the old process's sockets */
    bool has_stats;
    struct address stats_address;
    struct stats_server stats;
    _Atomic uint64_t reloads_ok;     /* written by this thread, read by the stats thread */
    _Atomic uint64_t reloads_failed;
};

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: snisplice [-t] [-v] [-c FILE]\n"
            "       snisplice --import-nginx NGINX_CONF > snisplice.ini\n"
            "  -c FILE  config file (default " DEFAULT_CONFIG ")\n"
            "  -t       check the config and exit: 0 if valid, 1 if not\n"
            "  -v       verbose: log every connection's outcome\n"
            "  -V       print the version and exit\n"
            "  -h       this help\n"
            "  --import-nginx NGINX_CONF  print the INI equivalent of its stream blocks;\n"
            "           what cannot be carried over is a FILE:LINE warning on stderr\n"
            "signals: HUP reloads the config, USR1 reopens the access log, TERM/INT/QUIT drain and exit\n"
            "         (a second TERM/INT closes the connections still open and exits at once),\n"
            "         USR2 starts this binary again on the same sockets, then drains and exits\n");
}

/* --import-nginx: INI on stdout, warnings on stderr; 0 even with warnings. */
static int import_nginx(const char *path)
{
    struct nginx_import result;
    char error[1024];
    if (!nginx_import_file(path, &result, error, sizeof error)) {
        fprintf(stderr, "%s\n", error);
        return 1;
    }
    for (size_t i = 0; i < result.warning_count; i++)
        fprintf(stderr, "%s\n", result.warnings[i]);
    /* An INI longer than stdout's buffer is written inside fputs: a full
     * disk fails there, and the flush after it, with nothing left to
     * write, would then succeed. Both are checked. */
    bool written = fputs(result.ini, stdout) != EOF;
    int write_error = errno;
    if (fflush(stdout) != 0 && written) {
        written = false;
        write_error = errno;
    }
    if (!written)
        fprintf(stderr, "snisplice: --import-nginx: cannot write the INI: %s\n", strerror(write_error));
    nginx_import_free(&result);
    return written ? 0 : 1;
}

/* Returns -1 to go on, else an exit status. */
static int parse_options(int argc, char **argv, struct options *options)
{
    options->config_path = DEFAULT_CONFIG;
    options->test_only = false;
    static const struct option long_options[] = {
        { "import-nginx", required_argument, NULL, 'I' },
        { NULL, 0, NULL, 0 },
    };
    int option;
    while ((option = getopt_long(argc, argv, "c:tvVh", long_options, NULL)) != -1) {
        switch (option) {
        case 'I': return import_nginx(optarg);
        case 'c': options->config_path = optarg; break;
        case 't': options->test_only = true; break;
        case 'v': log_threshold = LOG_DEBUG; break;
        case 'V': printf("snisplice %s\n", SNISPLICE_VERSION); return 0;
        case 'h': print_usage(stdout); return 0;
        default: print_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "snisplice: unexpected argument '%s'\n", argv[optind]);
        print_usage(stderr);
        return 2;
    }
    return -1;
}

static struct config *load_config(const char *path)
{
    struct config_errors errors = { 0 };
    struct config *config = config_load(path, &errors);
    for (size_t i = 0; i < errors.count; i++)
        fprintf(stderr, "%s\n", errors.lines[i]);
    /* Every refusal adds a line, unless even that could not be allocated. */
    if (!config && errors.count == 0)
        fprintf(stderr, "%s: out of memory\n", path);
    config_errors_free(&errors);
    return config;
}

/* problem = "FILE:LINE: text", as the loader reports its own errors, so
 * that what start-up refuses names the line to change too. */
static void problem_at(char *problem, size_t problem_size, const char *path, int line, const char *format, ...)
    __attribute__((format(printf, 5, 6)));

static void problem_at(char *problem, size_t problem_size, const char *path, int line, const char *format, ...)
{
    char text[512];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    snprintf(problem, problem_size, "%s:%d: %s", path, line, text);
}

/* What the INI loader cannot see but start-up would refuse: an unknown
 * user, a `source = client` this process may not bind (no CAP_NET_ADMIN
 * or CAP_NET_RAW; after `user =`, only kept when the first config needed
 * it), an access log that cannot be opened (checked when check_log, by -t:
 * a reload opens the file itself, see reload). */
static bool usable_here(const struct config *config, const char *path, bool check_log, char *problem,
                        size_t problem_size)
{
    char why[512];
    if (config->transparent_line && !upstream_source_transparent_allowed(why, sizeof why)) {
        problem_at(problem, problem_size, path, config->transparent_line, "source = client: %s", why);
        return false;
    }
    if (config->user) {
        errno = 0;
        if (!getpwnam(config->user)) {
            problem_at(problem, problem_size, path, config->user_line, "user '%s': %s", config->user,
                       errno ? strerror(errno) : "no such user");
            return false;
        }
    }
    if (check_log && config->access_log && !access_log_check(config->access_log, why, sizeof why)) {
        problem_at(problem, problem_size, path, config->access_log_line, "%s", why);
        return false;
    }
    return true;
}

static bool same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* `user = NAME` needs a process that may switch users: root, or one given
 * CAP_SETUID and CAP_SETGID; one that runs as NAME already has nothing to
 * switch. The shipped systemd unit starts snisplice as an unprivileged
 * dynamic user with CAP_NET_BIND_SERVICE alone, where the switch can only
 * fail: -t (its ExecStartPre) and start-up say so before anything is
 * bound, rather than the switch failing after binding. Not checked at a
 * reload: `user` then applies only at the next start, and a warning says
 * so. */
static bool may_become_user(const struct config *config, const char *path, char *problem, size_t problem_size)
{
    struct passwd *entry = config->user ? getpwnam(config->user) : NULL;
    if (!entry || (getuid() == entry->pw_uid && geteuid() == entry->pw_uid) || capabilities_can_switch_user())
        return true;
    problem_at(problem, problem_size, path, config->user_line,
               "user '%s': this process (uid %u) may not switch users: `user =` needs snisplice started as root "
               "(or with CAP_SETUID and CAP_SETGID); under the shipped systemd unit, which starts it unprivileged "
               "with CAP_NET_BIND_SERVICE, leave `user` unset",
               config->user, (unsigned)geteuid());
    return false;
}

static int check_config(const char *path)
{
    struct config *config = load_config(path);
    char problem[1024];
    if (config && (!usable_here(config, path, true, problem, sizeof problem) ||
                   !may_become_user(config, path, problem, sizeof problem) ||
                   !ring_support_check(problem, sizeof problem))) {
        fprintf(stderr, "%s\n", problem);
        config_free(config);
        config = NULL;
    }
    if (!config) {
        fprintf(stderr, "snisplice: %s: configuration test failed\n", path);
        return 1;
    }
    fprintf(stderr, "snisplice: %s: configuration is valid\n", path);
    config_free(config);
    return 0;
}

static void raise_fd_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

/* The CPUs this process may run on, so `taskset` and cgroups are honoured. */
static unsigned allowed_cpus(int *cpus, unsigned max)
{
    cpu_set_t set;
    unsigned count = 0;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && count < max; cpu++)
        if (CPU_ISSET(cpu, &set))
            cpus[count++] = cpu;
    return count;
}

/* `workers` as a number: auto is one per CPU this process may run on. */
static unsigned workers_wanted(const struct config *config, unsigned cpu_count)
{
    return config->workers ? config->workers : (cpu_count ? cpu_count : 1);
}

static ssize_t listen_index(const struct process *process, const struct address *address)
{
    for (size_t i = 0; i < process->listen_count; i++)
        if (address_equal(&process->listen[i].address, address))
            return (ssize_t)i;
    return -1;
}

static bool is_listening_on(const struct process *process, const struct address *address)
{
    return listen_index(process, address) >= 0;
}

/* Whether one of this process's own listening sockets may be the one a
 * probe of address meets: the same family and port (0.0.0.0:443 held
 * while a reload adds 127.0.0.1:443). Those binds join our own group. */
static bool near_own_address(const struct process *process, const struct address *address)
{
    for (size_t i = 0; i < process->listen_count; i++)
        if (address_family(&process->listen[i].address) == address_family(address) &&
            address_port(&process->listen[i].address) == address_port(address))
            return true;
    return false;
}

/* With pinned workers, steer a listening address's connections to the
 * worker on the CPU that received them only if packets arrive spread over
 * the workers' CPUs: loopback (the sender's CPU) or NICs with a queue per
 * worker, or RPS. Otherwise the kernel's hash spreads them, which keeps
 * every worker busy. */
static bool steers_by_cpu(const struct address *address, bool nics_spread)
{
    return address_is_loopback(address) || nics_spread;
}

/* Said once per bind pass, naming the first such address: the cause is
 * the machine's devices, the same for each, and a line per address
 * buried the log of a host with hundreds of them at every start. */
static void say_spread_by_hash(const struct process *process, const struct address *first, size_t count)
{
    if (count == 0)
        return;
    char text[ADDRESS_TEXT_MAX];
    address_format(first, text, sizeof text);
    char more[48] = "";
    if (count > 1)
        snprintf(more, sizeof more, " and %zu more listen addresses", count - 1);
    log_info("%s%s: a network device has fewer receive queues than the %u workers and no RPS: "
             "connections are spread by hash, not by receiving CPU", text, more, process->worker_count);
}

/* A socket of this process's own whose address the reload just before
 * removed still listens until every worker has adopted that reload, which
 * a busy worker does after its current batch (over 300 ms seen under
 * ASan on two loaded cores): a reload that puts the address back meets
 * it. Ask again for a while before blaming another program; a real one
 * is still there when the patience runs out. */
#define PROBE_PATIENCE_MS 1000
#define PROBE_RETRY_MS 5

static bool taken_by_another_program(const struct address *address)
{
    for (int waited = 0; listener_address_taken(address); waited += PROBE_RETRY_MS) {
        if (waited >= PROBE_PATIENCE_MS)
            return true;
        nanosleep(&(struct timespec){ .tv_nsec = PROBE_RETRY_MS * 1000000L }, NULL);
    }
    return false;
}

/* Close the sockets handed to the workers for `epoch`, a snapshot that
 * will not be published after all. */
static void withdraw_listeners(struct process *process, uint64_t epoch)
{
    for (unsigned i = 0; i < process->worker_count; i++)
        worker_withdraw_listeners(&process->workers[i], epoch);
}

/* Give every worker its socket of each new address, in the order
 * open_new_addresses made them. All or nothing: a worker left without
 * one would never accept there (with one worker, nobody would, while the
 * reload said it applied). So if one cannot be given (out of memory),
 * those given are withdrawn and every socket is closed. */
static bool hand_over(struct process *process, const struct config_listen *listen, size_t count, const int *fds,
                      size_t opened, uint64_t epoch)
{
    size_t given = 0;
    for (size_t i = 0; i < count; i++) {
        if (is_listening_on(process, &listen[i].address))
            continue;
        for (unsigned w = 0; w < process->worker_count; w++, given++) {
            if (worker_give_listener(&process->workers[w], fds[given], &listen[i].address, epoch))
                continue;
            log_error("cannot listen on the new addresses: out of memory");
            withdraw_listeners(process, epoch);
            for (; given < opened; given++)
                close(fds[given]);
            return false;
        }
    }
    return true;
}

/*
 * Bind every address of `listen` not bound yet, one SO_REUSEPORT socket per
 * worker, and hand the sockets to the workers. All or nothing: if one bind
 * fails, every socket made here is closed and the caller keeps the old set.
 * `snapshot` is the one these addresses will serve: it says which
 * listeners route by name (and so wait for the client's first bytes);
 * `epoch` is its epoch, published or about to be: a worker takes the
 * sockets when it adopts that snapshot, not an older one.
 */
/* Steering by CPU for one address's group, whose first socket (worker
 * 0's) is fd: attached where packets arrive spread over the workers'
 * CPUs, counted in *by_hash (the first such address in *first_by_hash)
 * where not. */
static void steer_group(const struct process *process, const struct address *address, int fd, bool nics_spread,
                        const struct address **first_by_hash, size_t *by_hash)
{
    if (!process->worker_cpus || process->worker_count < 2)
        return;
    if (!steers_by_cpu(address, nics_spread)) {
        if ((*by_hash)++ == 0)
            *first_by_hash = address;
        return;
    }
    if (!listener_steer_by_cpu(fd, process->worker_cpus, process->worker_count))
        log_warn("cannot steer connections by CPU (SO_ATTACH_REUSEPORT_CBPF): %s", strerror(errno));
}

/* The main thread's copies of fds[0..count) into copies; false (none
 * left open) when out of descriptors. */
static bool copy_fds(const int *fds, size_t count, int *copies)
{
    for (size_t i = 0; i < count; i++) {
        copies[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
        if (copies[i] >= 0)
            continue;
        log_error("cannot listen on the new addresses: dup: %s", strerror(errno));
        while (i > 0)
            close(copies[--i]);
        return false;
    }
    return true;
}

/* *copies (malloc'd, the caller's) gets a copy of every socket opened, in
 * the order they were, for process->listen_fds (remember_listen); NULL when
 * none was. */
static bool open_new_addresses(struct process *process, const struct config_listen *listen, size_t count,
                               const struct snapshot *snapshot, uint64_t epoch, int **copies)
{
    *copies = NULL;
    size_t fresh = 0;
    for (size_t i = 0; i < count; i++)
        fresh += !is_listening_on(process, &listen[i].address);
    if (fresh == 0)
        return true;
    int *fds = malloc(fresh * process->worker_count * sizeof *fds);
    *copies = malloc(fresh * process->worker_count * sizeof **copies);
    if (!fds || !*copies) {
        log_error("cannot listen on the new addresses: out of memory");
        free(fds);
        free(*copies);
        *copies = NULL;
        return false;
    }
    size_t opened = 0;
    bool ok = true;
    /* Every new address is probed before any is bound: one bound here
     * would hold the port for the next probe (0.0.0.0:443 beside
     * 127.0.0.1:443 in one config). */
    for (size_t i = 0; ok && i < count; i++) {
        if (is_listening_on(process, &listen[i].address) || near_own_address(process, &listen[i].address) ||
            !taken_by_another_program(&listen[i].address))
            continue;
        char text[ADDRESS_TEXT_MAX];
        address_format(&listen[i].address, text, sizeof text);
        log_error("cannot listen on %s: another program listens there (nginx, or another snisplice, still "
                  "running?)", text);
        ok = false;
    }
    /* Read once per bind pass, not per address: the devices are the same. */
    bool nics_spread = ok && listener_nics_spread_over("/sys/class/net", process->worker_count);
    const struct address *first_by_hash = NULL;
    size_t by_hash = 0;
    for (size_t i = 0; ok && i < count; i++) {
        if (is_listening_on(process, &listen[i].address))
            continue;
        size_t first = opened;
        const struct snapshot_listener *listener = &snapshot->listeners[listen[i].listener];
        for (unsigned w = 0; ok && w < process->worker_count; w++) {
            char error[512];
            int fd = listener_open(&listen[i].address, listener, error, sizeof error);
            if (fd < 0) {
                log_error("cannot listen on %s", error);
                ok = false;
            } else {
                fds[opened++] = fd;
            }
        }
        /* Every worker's socket has joined the group, in worker order. */
        if (ok)
            steer_group(process, &listen[i].address, fds[first], nics_spread, &first_by_hash, &by_hash);
    }
    ok = ok && copy_fds(fds, opened, *copies);
    if (ok) {
        say_spread_by_hash(process, first_by_hash, by_hash);
        ok = hand_over(process, listen, count, fds, opened, epoch);
        if (!ok) /* hand_over closed the sockets; the copies are ours */
            for (size_t i = 0; i < opened; i++)
                close((*copies)[i]);
    } else {
        for (size_t i = 0; i < opened; i++)
            close(fds[i]);
    }
    if (!ok) {
        free(*copies);
        *copies = NULL;
    }
    free(fds);
    return ok;
}

/* A copy of the config's addresses, made before they are bound: after
 * that, nothing but the publish may fail. NULL when out of memory. */
static struct config_listen *copy_listen(const struct config_listen *listen, size_t count)
{
    struct config_listen *copy = malloc((count ? count : 1) * sizeof *copy);
    if (copy)
        memcpy(copy, listen, count * sizeof *copy);
    return copy;
}

/* Room for listen_fds of count addresses, made with copy_listen: after
 * the bind, nothing but the publish may fail. */
static int *new_fd_table(const struct process *process, size_t count)
{
    return malloc((count ? count : 1) * process->worker_count * sizeof(int));
}

/* Remember the addresses now served (copy_listen's copy, now the
 * process's) and the copies of their sockets in table (new_fd_table's):
 * kept addresses keep theirs, new ones take `fresh` (open_new_addresses'
 * copies, in its order; may be NULL when none is new), and those of
 * addresses no longer served are closed. Frees fresh. */
static void remember_listen(struct process *process, struct config_listen *copy, size_t count, int *table,
                            int *fresh)
{
    unsigned workers = process->worker_count;
    size_t taken = 0;
    for (size_t i = 0; i < count; i++) {
        ssize_t kept = listen_index(process, &copy[i].address);
        int *row = kept >= 0 ? &process->listen_fds[(size_t)kept * workers] : &fresh[taken++ * workers];
        memcpy(&table[i * workers], row, workers * sizeof *row);
        for (unsigned w = 0; w < workers; w++)
            row[w] = -1;
    }
    for (size_t i = 0; process->listen_fds && i < process->listen_count * workers; i++)
        if (process->listen_fds[i] >= 0)
            close(process->listen_fds[i]);
    free(process->listen_fds);
    free(fresh);
    free(process->listen);
    process->listen = copy;
    process->listen_fds = table;
    process->listen_count = count;
}

/* A drain begins, or the new process of an upgrade took over: the workers'
 * sockets must be the last, so that closing them frees the ports. */
static void close_listen_copies(struct process *process)
{
    for (size_t i = 0; process->listen_fds && i < process->listen_count * process->worker_count; i++)
        if (process->listen_fds[i] >= 0)
            close(process->listen_fds[i]);
    free(process->listen_fds);
    process->listen_fds = NULL;
}

/* With `user =`, root hands the access log file to that user when it opens
 * it at start: every later open (SIGUSR1, a reload) happens as the user,
 * and one of a file root created with mode 0640 would be refused. */
static void own_access_log_as(const char *user)
{
    if (!user || geteuid() != 0)
        return;
    struct passwd *entry = getpwnam(user);
    if (entry)
        access_log_set_owner(entry->pw_uid);
}

/* The access log at start; the reason it cannot be opened names its line. */
static bool open_first_log(const struct config *config, const char *path)
{
    char why[512], problem[1024];
    int fd = access_log_open_file(config->access_log, why, sizeof why);
    if (fd < 0) {
        problem_at(problem, sizeof problem, path, config->access_log_line, "%s", why);
        log_error("%s", problem);
        return false;
    }
    access_log_install(fd);
    return true;
}

/* After binding, before any worker exists: every thread starts unprivileged,
 * with CAP_NET_BIND_SERVICE (a reload may add a port below 1024; nginx's
 * master stays root for that) and, when transparent (`source = client`),
 * the one capability IP_TRANSPARENT needs. */
static bool drop_privileges(const char *user, bool transparent)
{
    if (!user)
        return true;
    errno = 0;
    struct passwd *entry = getpwnam(user);
    if (!entry) {
        log_error("user '%s': %s", user, errno ? strerror(errno) : "no such user");
        return false;
    }
    if (getuid() == entry->pw_uid && geteuid() == entry->pw_uid)
        return true;
    if (!capabilities_keep_across_setuid()) {
        log_error("cannot keep capabilities across the switch to user '%s': %s", user, strerror(errno));
        return false;
    }
    if (initgroups(user, entry->pw_gid) != 0 || setgid(entry->pw_gid) != 0 || setuid(entry->pw_uid) != 0) {
        log_error("cannot switch to user '%s': %s", user, strerror(errno));
        return false;
    }
    char kept[96];
    if (!capabilities_limit_after_setuid(transparent, kept, sizeof kept)) {
        log_error("switched to '%s' but cannot keep CAP_NET_BIND_SERVICE%s alone: %s", user,
                  transparent ? " and CAP_NET_RAW or CAP_NET_ADMIN" : "", strerror(errno));
        return false;
    }
    /* Dropped for good: regaining root must be impossible. */
    if (setuid(0) == 0) {
        log_error("switched to '%s' but could regain root; refusing to run", user);
        return false;
    }
    if (kept[0])
        log_info("running as user %s (uid %u) with %s alone", user, (unsigned)entry->pw_uid, kept);
    else
        log_info("running as user %s (uid %u)", user, (unsigned)entry->pw_uid);
    return true;
}

/* The per-address counts behind max_connections_per_client, made whether
 * or not the config asks for it (a reload may). Every counted connection
 * holds a descriptor, so room for as many addresses as the process may
 * open fds means the table can never be full; its pages are touched only
 * as clients are counted. The hash is keyed at random so clients cannot
 * pick addresses that share a probe run. */
static struct client_counts *make_client_counts(void)
{
    struct rlimit limit;
    rlim_t fds = getrlimit(RLIMIT_NOFILE, &limit) == 0 ? limit.rlim_cur : 65536;
    /* Linux's own ceiling (fs.nr_open) is 1M by default: 40 MiB of
     * address space at most, untouched until used. */
    if (fds > (1u << 20))
        fds = 1u << 20;
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    (void)!getrandom(&seed, sizeof seed, GRND_NONBLOCK);
    return client_counts_new((uint32_t)fds, seed);
}

/* Workers ready to be handed sockets, their threads not started yet. */
static bool init_workers(struct process *process, const int *cpus, unsigned cpu_count)
{
    process->workers = calloc(process->worker_count, sizeof *process->workers);
    if (!process->workers) {
        log_error("out of memory");
        process->worker_count = 0;
        return false;
    }
    for (unsigned i = 0; i < process->worker_count; i++) {
        int cpu = cpu_count > 0 ? cpus[i % cpu_count] : -1;
        if (!worker_init(&process->workers[i], i, process->worker_count, cpu, process->publisher)) {
            process->worker_count = i;
            return false;
        }
        process->workers[i].client_counts = process->client_counts;
    }
    return true;
}

static bool start_workers(struct process *process)
{
    unsigned started = 0;
    for (unsigned i = 0; i < process->worker_count; i++) {
        if (!worker_start(&process->workers[i]))
            break;
        started++;
    }
    bool ok = started == process->worker_count;
    for (unsigned i = 0; i < started; i++) {
        while (atomic_load(&process->workers[i].start_status) == 0)
            usleep(1000);
        if (atomic_load(&process->workers[i].start_status) < 0)
            ok = false;
    }
    /* Workers whose thread never started are destroyed here; the caller
     * joins and destroys the others. */
    for (unsigned i = started; i < process->worker_count; i++)
        worker_destroy(&process->workers[i]);
    process->worker_count = started;
    return ok;
}

/* log_fd: path opened by the reload (-1 when path is NULL, logging off,
 * or when the file already open is kept: see open_reload_log). */
static void apply_access_log(struct process *process, const char *path, int log_fd)
{
    if (!path)
        access_log_disable();
    else if (log_fd >= 0)
        access_log_install(log_fd);
    free(process->access_log_path);
    process->access_log_path = path ? strdup(path) : NULL;
}

/* Counted, told to systemd; the previous configuration keeps serving.
 * Frees config (may be NULL) and closes log_fd (may be -1). */
static void reload_rejected(struct process *process, const char *why, struct config *config, int log_fd)
{
    atomic_fetch_add_explicit(&process->reloads_failed, 1, memory_order_relaxed);
    char status[128];
    snprintf(status, sizeof status, "READY=1\nSTATUS=reload rejected: %s", why);
    service_notify(status);
    config_free(config);
    if (log_fd >= 0)
        close(log_fd);
}

/* The reload's access log, opened before anything changes so that a new
 * path the process cannot open rejects the reload (README). The same path
 * is reopened, as SIGUSR1 does; if that fails (after `user =` the user may
 * not reopen what root opened: a root-owned file or stdout, a file
 * logrotate moved to a directory the user cannot write), the reload still
 * applies, with a warning, and lines go on to the file already open:
 * routes must not wait for a log. False with the reason in problem;
 * *log_fd is -1 when logging is off or the open file is kept. */
static bool open_reload_log(const struct process *process, const struct config *config, int *log_fd,
                            char *problem, size_t problem_size)
{
    *log_fd = -1;
    if (!config->access_log)
        return true;
    char why[512];
    *log_fd = access_log_open_file(config->access_log, why, sizeof why);
    if (*log_fd >= 0)
        return true;
    if (!same_text(config->access_log, process->access_log_path)) {
        problem_at(problem, problem_size, process->config_path, config->access_log_line, "%s", why);
        return false;
    }
    log_warn("reload: %s; lines go on to the file already open", why);
    return true;
}

static void reload(struct process *process)
{
    log_info("reloading %s", process->config_path);
    service_notify("RELOADING=1");
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    struct config *config = load_config(process->config_path);
    if (!config) {
        log_error("reload rejected: %s has errors; the previous configuration keeps serving",
                  process->config_path);
        reload_rejected(process, "config has errors", NULL, -1);
        return;
    }
    char problem[1024];
    if (!usable_here(config, process->config_path, false, problem, sizeof problem)) {
        log_error("reload rejected: %s; the previous configuration keeps serving", problem);
        reload_rejected(process, "config has errors", config, -1);
        return;
    }
    int log_fd;
    if (!open_reload_log(process, config, &log_fd, problem, sizeof problem)) {
        log_error("reload rejected: %s; the previous configuration keeps serving", problem);
        reload_rejected(process, "cannot open the access log", config, -1);
        return;
    }
    /* auto compared as the count it stands for: 1 -> auto on 2 CPUs is
     * a change, auto -> 2 there is none. */
    int cpus[CPU_SETSIZE];
    if (workers_wanted(config, allowed_cpus(cpus, CPU_SETSIZE)) != process->worker_count)
        log_warn("reload: workers changed; a restart is needed to apply that");
    if (!same_text(config->user, process->user))
        log_warn("reload: user changed; a restart is needed to apply that");
    if (config->has_stats != process->has_stats ||
        (config->has_stats && (config->stats.length != process->stats_address.length ||
                               memcmp(&config->stats.storage, &process->stats_address.storage,
                                      config->stats.length) != 0)))
        log_warn("reload: stats address changed; a restart is needed to apply that");
    struct config_listen *listen = copy_listen(config->listen, config->listen_count);
    int *table = new_fd_table(process, config->listen_count);
    if (!listen || !table) {
        log_error("reload rejected: out of memory; the previous configuration keeps serving");
        free(listen);
        free(table);
        reload_rejected(process, "out of memory", config, log_fd);
        return;
    }
    /* New addresses are bound before anything changes: a reload that
     * cannot bind them is rejected whole. Workers close the addresses the
     * new snapshot no longer lists when they adopt it. */
    uint64_t epoch = publisher_next_epoch(process->publisher);
    int *fresh;
    if (!open_new_addresses(process, config->listen, config->listen_count, config->snapshot, epoch, &fresh)) {
        log_error("reload rejected: cannot bind its new listen addresses; the previous configuration "
                  "keeps serving");
        free(listen);
        free(table);
        reload_rejected(process, "cannot listen", config, log_fd);
        return;
    }
    if (!publisher_publish(process->publisher, config->snapshot)) {
        /* Bound and handed over already: left so, they would take
         * connections no worker ever accepts until the next reload. */
        withdraw_listeners(process, epoch);
        size_t opened = 0;
        for (size_t i = 0; i < config->listen_count; i++)
            opened += !is_listening_on(process, &config->listen[i].address);
        for (size_t i = 0; fresh && i < opened * process->worker_count; i++)
            close(fresh[i]);
        free(fresh);
        log_error("reload rejected: out of memory; the previous configuration keeps serving");
        free(listen);
        free(table);
        reload_rejected(process, "out of memory", config, log_fd);
        return;
    }
    remember_listen(process, listen, config->listen_count, table, fresh);
    /* After the last way to fail: a rejected reload keeps the old log. */
    apply_access_log(process, config->access_log, log_fd);
    config->snapshot = NULL;
    config_free(config);
    /* Wake idle workers so they pass a quiescent point and the old snapshot can go. */
    for (unsigned i = 0; i < process->worker_count; i++)
        worker_wake(&process->workers[i]);
    atomic_fetch_add_explicit(&process->reloads_ok, 1, memory_order_relaxed);
    struct timespec finished;
    clock_gettime(CLOCK_MONOTONIC, &finished);
    double took_ms = (double)(finished.tv_sec - started.tv_sec) * 1e3 + (double)(finished.tv_nsec - started.tv_nsec) / 1e6;
    log_info("reloaded %s (%zu listen addresses) in %.1f ms", process->config_path, process->listen_count, took_ms);
    service_notify("READY=1\nSTATUS=serving");
}

static void request_stop(struct process *process)
{
    for (unsigned i = 0; i < process->worker_count; i++)
        worker_request_stop(&process->workers[i]);
}

static void stop_workers(struct process *process)
{
    request_stop(process);
    for (unsigned i = 0; i < process->worker_count; i++)
        worker_join(&process->workers[i]);
}

static uint64_t open_connections(const struct process *process)
{
    uint64_t open = 0;
    for (unsigned i = 0; i < process->worker_count; i++)
        open += atomic_load_explicit(&process->workers[i].counters.active, memory_order_relaxed);
    return open;
}

/* Join the draining workers (up to drain_timeout). A second SIGTERM or
 * SIGINT, as nginx's fast shutdown or Ctrl-C twice, cuts the drain: every
 * connection still open is closed at once; SIGQUIT, nginx's graceful
 * stop, leaves it running. The workers' ends are polled, not waited for,
 * as the signals can only be taken on this thread. */
static void drain_workers(struct process *process, const sigset_t *signals)
{
    bool cut = false;
    unsigned joined = 0;
    while (joined < process->worker_count) {
        if (worker_try_join(&process->workers[joined])) {
            joined++;
            continue;
        }
        struct timespec timeout = { .tv_sec = 0, .tv_nsec = 50000000 };
        int signal_number = sigtimedwait(signals, NULL, &timeout);
        if (cut || (signal_number != SIGTERM && signal_number != SIGINT))
            continue;
        cut = true;
        log_info("%s again: cutting %llu open connections, exiting now", strsignal(signal_number),
                 (unsigned long long)open_connections(process));
        for (unsigned i = joined; i < process->worker_count; i++)
            worker_request_cut(&process->workers[i]);
    }
}

/* SIGUSR2: start this binary again on every listening socket (each
 * worker's of each address, and the stats endpoint's). Nothing changes
 * here until it says it is ready (check_upgrade). */
static void begin_upgrade(struct process *process)
{
    if (process->upgrade.child) {
        log_warn("SIGUSR2: an upgrade is already in progress (new process pid %d): ignored",
                 (int)process->upgrade.child);
        return;
    }
    size_t count = process->listen_count * process->worker_count;
    struct upgrade_socket *sockets = malloc((count ? count : 1) * sizeof *sockets);
    if (!sockets) {
        log_error("upgrade: out of memory; this process keeps serving");
        return;
    }
    for (size_t i = 0; i < count; i++)
        sockets[i] = (struct upgrade_socket){ process->listen_fds[i], (unsigned)(i % process->worker_count) };
    log_info("SIGUSR2: upgrading pid %d: starting a new process on its %zu listen addresses", (int)getpid(),
             process->listen_count);
    upgrade_start(&process->upgrade, sockets, count, process->stats.listen_fd);
    free(sockets);
}

/* True once the new process took over: systemd is told it is the main
 * process now (NotifyAccess=main: only this one may say so), and a reload
 * asked for during the wait goes to whichever process serves after it. */
static bool check_upgrade(struct process *process)
{
    pid_t child = process->upgrade.child;
    enum upgrade_state state = upgrade_poll(&process->upgrade);
    if (state == UPGRADE_WAITING)
        return false;
    bool reload_pending = process->reload_pending;
    process->reload_pending = false;
    if (state == UPGRADE_FAILED) {
        if (reload_pending)
            reload(process);
        return false;
    }
    char message[96];
    snprintf(message, sizeof message, "MAINPID=%d\nSTATUS=upgraded: pid %d serves", (int)child, (int)child);
    service_notify(message);
    if (reload_pending) {
        log_info("passing the SIGHUP that came during the upgrade on to pid %d", (int)child);
        kill(child, SIGHUP);
    }
    return true;
}

/* True when a new process took over (SIGUSR2), false for a stop signal. */
static bool serve_signals(struct process *process, const sigset_t *signals)
{
    for (;;) {
        if (process->upgrade.child && check_upgrade(process))
            return true;
        size_t retired = publisher_reclaim(process->publisher);
        bool soon = retired || process->upgrade.child;
        struct timespec timeout = { .tv_sec = soon ? 0 : 1, .tv_nsec = soon ? 50000000 : 0 };
        int signal_number = sigtimedwait(signals, NULL, &timeout);
        if (signal_number == SIGHUP && process->upgrade.child) {
            /* The new process read the config when it started; an edit
             * since is applied by whichever process serves after the wait. */
            process->reload_pending = true;
            log_info("SIGHUP during an upgrade: the reload waits until the new process is ready or has failed");
        } else if (signal_number == SIGHUP) {
            reload(process);
        } else if (signal_number == SIGUSR2) {
            begin_upgrade(process);
        } else if (signal_number == SIGUSR1) {
            /* logrotate moved the file away: write to a new one at the path. */
            if (process->access_log_path && access_log_open(process->access_log_path))
                log_info("reopened access log %s", process->access_log_path);
            else if (process->access_log_path)
                log_warn("access log not reopened: lines go on to the file already open");
        } else if (signal_number == SIGTERM || signal_number == SIGINT || signal_number == SIGQUIT) {
            upgrade_abandon(&process->upgrade);
            log_info("%s: draining connections, then exiting (another TERM or INT closes them now)",
                     strsignal(signal_number));
            service_notify("STOPPING=1");
            return false;
        }
    }
}

/* One address's inherited sockets, fds[w] for worker w: each worker's
 * listener options applied again (this config may route it otherwise), a
 * copy kept, and every socket given to its worker. False (logged, fds
 * closed or the workers') when out of descriptors or memory. */
static bool adopt_group(struct process *process, const struct config_listen *entry, const struct snapshot *snapshot,
                        int *fds)
{
    unsigned workers = process->worker_count;
    const struct snapshot_listener *listener = &snapshot->listeners[entry->listener];
    for (unsigned w = 0; w < workers; w++)
        listener_apply_options(fds[w], &entry->address, listener);
    size_t row = process->listen_count;
    if (!copy_fds(fds, workers, &process->listen_fds[row * workers])) {
        for (unsigned w = 0; w < workers; w++)
            close(fds[w]);
        return false;
    }
    process->listen[row] = *entry;
    process->listen_count++;
    for (unsigned w = 0; w < workers; w++) {
        if (worker_give_listener(&process->workers[w], fds[w], &entry->address, snapshot->epoch))
            continue;
        log_error("cannot take over the old process's sockets: out of memory");
        for (; w < workers; w++)
            close(fds[w]);
        return false;
    }
    return true;
}

/* Why one address's inherited sockets cannot be adopted: their number is
 * not the worker count, or they do not name each worker once. */
static void refuse_inherited_group(const struct address *address, size_t found, unsigned workers)
{
    char text[ADDRESS_TEXT_MAX];
    address_format(address, text, sizeof text);
    if (found != workers)
        log_error("upgrade refused: the old process handed over %zu sockets of %s, one per worker, and this "
                  "config has %u workers: an upgrade keeps `workers` (a socket closed would lose the "
                  "connections queued on it); change it with a restart", found, text, workers);
    else
        log_error("upgrade refused: the %zu sockets of %s handed over do not name each of the %u workers "
                  "once (SNISPLICE_UPGRADE_LISTEN)", found, text, workers);
}

/* Started by an upgrade: the old process's sockets of every address this
 * config still names, one per worker, instead of new binds (the same
 * accept queues: what waits in them is not lost). process->listen becomes
 * those addresses, so that open_new_addresses binds only the others. The
 * group's CPU steering is attached again, for this process's CPUs. */
static bool adopt_inherited(struct process *process, const struct config *config, const struct snapshot *snapshot)
{
    if (process->inherited.count == 0)
        return true;
    unsigned workers = process->worker_count;
    process->listen = copy_listen(config->listen, config->listen_count);
    process->listen_fds = new_fd_table(process, config->listen_count);
    int *fds = malloc(workers * sizeof *fds);
    if (!process->listen || !process->listen_fds || !fds) {
        log_error("out of memory");
        free(fds);
        return false;
    }
    bool nics_spread = listener_nics_spread_over("/sys/class/net", workers);
    const struct address *first_by_hash = NULL;
    size_t by_hash = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < config->listen_count; i++) {
        const struct config_listen *entry = &config->listen[i];
        size_t found = upgrade_inherited_count(&process->inherited, &entry->address);
        if (found == 0)
            continue;
        bool claimed = found == workers &&
                       upgrade_inherited_claim(&process->inherited, &entry->address, fds, workers) == workers;
        if (!claimed) {
            refuse_inherited_group(&entry->address, found, workers);
            ok = false;
            continue;
        }
        ok = adopt_group(process, entry, snapshot, fds);
        if (ok)
            steer_group(process, &entry->address, fds[0], nics_spread, &first_by_hash, &by_hash);
    }
    free(fds);
    if (ok)
        say_spread_by_hash(process, first_by_hash, by_hash);
    return ok;
}

/* The stats endpoint: the old process's socket when it is handed over
 * for the same address (scrapes waiting on it are answered), else bound. */
static bool open_stats(struct process *process, const struct config *config)
{
    if (!config->has_stats)
        return true;
    struct upgrade_inherited *inherited = &process->inherited;
    if (inherited->stats_fd < 0 || !address_equal(&inherited->stats_address, &config->stats))
        return stats_server_bind(&process->stats, &config->stats);
    stats_server_adopt(&process->stats, inherited->stats_fd);
    inherited->stats_fd = -1;
    return true;
}

#define RELOAD_MMAP_THRESHOLD (32 << 20)

/* A reload builds the new routes while the old ones still serve, then
 * frees the old ones: with glibc's default, moving thresholds, each of its
 * multi-MiB arrays could land in a fresh mmap or a trimmed heap and be
 * faulted in again, page by page, at every reload (100 000 routes: 11 000
 * faults per 10 reloads, and this VM charges microseconds per fault). A
 * fixed threshold keeps them in the heap, and the heap keeps what a reload
 * freed for the next one: RSS stays at the largest reload's peak.
 * bench/NOTES.md has the numbers. */
static void keep_reload_memory(void)
{
    mallopt(M_MMAP_THRESHOLD, RELOAD_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

/* The heap after the first load holds that config and what its loading
 * freed, but a reload needs room for a second config beside the serving
 * one: without this, the first reload faults in every page of its new
 * table (100 000 routes: about 2 100 faults, 1.5x the time of a later
 * reload). So, once at start, the heap grows by what the first load took
 * and those pages are touched; freed, they stay in the heap (the trim
 * threshold above) for the first reload, as later reloads find the pages
 * of the config before. In pieces below the mmap threshold, which would
 * otherwise hand them out and take them back as mappings. */
static void reserve_reload_memory(size_t bytes)
{
    enum { PIECE = RELOAD_MMAP_THRESHOLD / 2, PIECES_MAX = 64 };
    void *pieces[PIECES_MAX];
    size_t count = 0;
    while (bytes > 0 && count < PIECES_MAX) {
        size_t size = bytes < PIECE ? bytes : PIECE;
        void *piece = malloc(size);
        if (!piece)
            break;
        /* explicit_bzero: a memset before free() may be optimised away. */
        explicit_bzero(piece, size);
        pieces[count++] = piece;
        bytes -= size;
    }
    while (count > 0)
        free(pieces[--count]);
}

static int serve(const char *config_path)
{
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    /* nginx's graceful stop (its Docker image's STOPSIGNAL): a drain, not
     * the default action, which cuts every connection and dumps core. */
    sigaddset(&signals, SIGQUIT);
    sigaddset(&signals, SIGUSR1);
    sigaddset(&signals, SIGUSR2);
    /* Blocked before any thread exists, so workers inherit the mask; and
     * before the config loads (host names resolve there, for seconds
     * perhaps), so a reload or logrotate's SIGUSR1 then does not kill
     * the process: they wait for the main loop. */
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct upgrade_inherited inherited;
    char why[512];
    if (!upgrade_inherited_take(&inherited, why, sizeof why)) {
        log_error("%s", why);
        upgrade_inherited_free(&inherited);
        return 1;
    }
    if (inherited.ready_fd >= 0)
        log_info("pid %d: started by an upgrade with %zu listening sockets", (int)getpid(), inherited.count);
    size_t heap_before = mallinfo2().arena;
    struct config *config = load_config(config_path);
    if (!config) {
        fprintf(stderr, "snisplice: %s: configuration has errors\n", config_path);
        upgrade_inherited_free(&inherited);
        return 1;
    }
    char problem[1024];
    if (!usable_here(config, config_path, false, problem, sizeof problem) ||
        !may_become_user(config, config_path, problem, sizeof problem) ||
        !ring_support_check(problem, sizeof problem)) {
        fprintf(stderr, "%s\n", problem);
        config_free(config);
        upgrade_inherited_free(&inherited);
        return 1;
    }
    raise_fd_limit();
    int cpus[CPU_SETSIZE];
    unsigned cpu_count = allowed_cpus(cpus, CPU_SETSIZE);
    struct process process = {
        .config_path = config_path,
        .worker_count = workers_wanted(config, cpu_count),
        .upgrade = { .ready_fd = -1 },
        .inherited = inherited,
    };
    process.stats.listen_fd = process.stats.stop_fd = -1;
    /* Pin only when there is a CPU per worker: never stack two on one core. */
    if (process.worker_count > cpu_count)
        cpu_count = 0;
    process.worker_cpus = cpu_count > 0 ? cpus : NULL;

    int status = 1;
    process.publisher = publisher_new(process.worker_count);
    process.client_counts = make_client_counts();
    if (!process.publisher || !process.client_counts || !publisher_publish(process.publisher, config->snapshot)) {
        log_error("out of memory");
        goto out;
    }
    /* Now the publisher's; it stays current until the first reload, which
     * cannot come before the main loop. */
    const struct snapshot *first_snapshot = config->snapshot;
    config->snapshot = NULL;
    own_access_log_as(config->user);
    if (config->access_log) {
        if (!open_first_log(config, config_path))
            goto out;
        process.access_log_path = strdup(config->access_log);
    }
    process.user = config->user ? strdup(config->user) : NULL;
    process.has_stats = config->has_stats;
    process.stats_address = config->stats;
    reserve_reload_memory(mallinfo2().arena - heap_before);
    if (!init_workers(&process, cpus, cpu_count)) {
        log_error("cannot set up the workers");
        goto out;
    }
    struct config_listen *listen = copy_listen(config->listen, config->listen_count);
    int *table = new_fd_table(&process, config->listen_count);
    if (!listen || !table) {
        log_error("out of memory");
        free(listen);
        free(table);
        goto out;
    }
    /* The stats port first: once a traffic port answers, so does it (its
     * connections wait in the backlog until the stats thread starts). */
    int *fresh;
    if (!open_stats(&process, config) || !adopt_inherited(&process, config, first_snapshot) ||
        !open_new_addresses(&process, config->listen, config->listen_count, first_snapshot, first_snapshot->epoch,
                            &fresh)) {
        free(listen);
        free(table);
        goto out;
    }
    remember_listen(&process, listen, config->listen_count, table, fresh);
    if (!drop_privileges(config->user, config->transparent_line != 0))
        goto out;
    /* Per thread, so before the workers: they inherit it. */
    if (!capabilities_seal_for_programs()) {
        log_error("no_new_privs: %s", strerror(errno));
        goto out;
    }
    if (!start_workers(&process)) {
        log_error("cannot start workers");
        stop_workers(&process);
        goto out;
    }
    if (config->has_stats &&
        !stats_server_start(&process.stats, process.workers, process.worker_count, &process.reloads_ok,
                            &process.reloads_failed)) {
        stop_workers(&process);
        goto out;
    }
    log_info("snisplice %s: pid %d, %u workers, %zu listen addresses, config %s", SNISPLICE_VERSION, (int)getpid(),
             process.worker_count, process.listen_count, config_path);
    /* Started by an upgrade: the old process is the one systemd listens
     * to, and tells it this pid is the main one now. */
    if (process.inherited.ready_fd >= 0)
        upgrade_inherited_ready(&process.inherited);
    else
        service_notify("READY=1\nSTATUS=serving");
    bool handed_off = serve_signals(&process, &signals);
    close_listen_copies(&process);
    /* Workers stop accepting first: the stats thread may be busy with a
     * slow scraper, and the drain must not wait for it. */
    for (unsigned i = 0; i < process.worker_count; i++) {
        if (handed_off)
            worker_request_handoff(&process.workers[i]);
        else
            worker_request_stop(&process.workers[i]);
    }
    stats_server_stop(&process.stats);
    drain_workers(&process, &signals);
    log_info("stopped");
    status = 0;
out:
    upgrade_abandon(&process.upgrade);
    close_listen_copies(&process);
    upgrade_inherited_free(&process.inherited);
    stats_server_stop(&process.stats);
    for (unsigned i = 0; process.workers && i < process.worker_count; i++)
        worker_destroy(&process.workers[i]);
    free(process.workers);
    free(process.listen);
    access_log_close();
    free(process.access_log_path);
    free(process.user);
    if (process.publisher)
        publisher_free(process.publisher);
    client_counts_free(process.client_counts);
    config_free(config);
    return status;
}

int main(int argc, char **argv)
{
    /* First: a package upgrade may replace the file at any moment after. */
    upgrade_remember_self(argv);
    keep_reload_memory();
    struct options options;
    int status = parse_options(argc, argv, &options);
    if (status >= 0)
        return status;
    if (options.test_only)
        return check_config(options.config_path);
    return serve(options.config_path);
}
