/*
 * metrics.c - per-worker counters and their Prometheus text rendering (see
 * metrics.h). The worker side is a few relaxed stores per connection; all
 * the work of summing, sorting and formatting happens in the stats thread.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash_mix.h"
#include "worker.h"

const uint32_t metrics_preread_bucket_ms[METRICS_PREREAD_BUCKETS - 1] = { 1, 5, 10, 50, 100, 500, 1000, 5000 };

#define INDEX_SLOTS (2 * 8192) /* a power of two, at least twice METRICS_NAMES_MAX */

static bool index_init(struct metrics_index *index)
{
    index->slots = calloc(INDEX_SLOTS, sizeof *index->slots);
    index->mask = INDEX_SLOTS - 1;
    return index->slots != NULL;
}

bool metrics_init(struct metrics *metrics)
{
    memset(metrics, 0, sizeof *metrics);
    metrics->routes = calloc(METRICS_NAMES_MAX + 1, sizeof *metrics->routes);
    metrics->servers = calloc(METRICS_NAMES_MAX + 1, sizeof *metrics->servers);
    if (!metrics->routes || !metrics->servers || !index_init(&metrics->route_index) ||
        !index_init(&metrics->server_index)) {
        metrics_destroy(metrics);
        return false;
    }
    snprintf(metrics->routes[METRICS_NAMES_MAX].name, METRICS_NAME_SIZE, "other");
    snprintf(metrics->servers[METRICS_NAMES_MAX].upstream, METRICS_NAME_SIZE, "other");
    snprintf(metrics->servers[METRICS_NAMES_MAX].server, ADDRESS_TEXT_MAX, "other");
    metrics_route(metrics, "-");
    return true;
}

void metrics_destroy(struct metrics *metrics)
{
    free(metrics->routes);
    free(metrics->servers);
    free(metrics->route_index.slots);
    free(metrics->server_index.slots);
    memset(metrics, 0, sizeof *metrics);
}

struct metrics_route *metrics_route(struct metrics *metrics, const char *name)
{
    uint32_t count = atomic_load_explicit(&metrics->route_count, memory_order_relaxed);
    for (uint32_t slot = hash_name_pair(name, "") & metrics->route_index.mask;;
         slot = (slot + 1) & metrics->route_index.mask) {
        uint32_t entry = metrics->route_index.slots[slot];
        if (entry == 0) {
            if (count == METRICS_NAMES_MAX)
                return &metrics->routes[METRICS_NAMES_MAX];
            snprintf(metrics->routes[count].name, METRICS_NAME_SIZE, "%s", name);
            metrics->route_index.slots[slot] = count + 1;
            /* Publish the finished entry: readers load the count with acquire. */
            atomic_store_explicit(&metrics->route_count, count + 1, memory_order_release);
            return &metrics->routes[count];
        }
        if (strcmp(metrics->routes[entry - 1].name, name) == 0)
            return &metrics->routes[entry - 1];
    }
}

struct metrics_route *metrics_unrouted(struct metrics *metrics)
{
    return &metrics->routes[0]; /* "-", interned first by metrics_init */
}

struct metrics_server *metrics_server(struct metrics *metrics, const char *upstream, const char *server)
{
    uint32_t count = atomic_load_explicit(&metrics->server_count, memory_order_relaxed);
    for (uint32_t slot = hash_name_pair(upstream, server) & metrics->server_index.mask;;
         slot = (slot + 1) & metrics->server_index.mask) {
        uint32_t entry = metrics->server_index.slots[slot];
        if (entry == 0) {
            if (count == METRICS_NAMES_MAX)
                return &metrics->servers[METRICS_NAMES_MAX];
            struct metrics_server *added = &metrics->servers[count];
            snprintf(added->upstream, METRICS_NAME_SIZE, "%s", upstream);
            snprintf(added->server, ADDRESS_TEXT_MAX, "%s", server);
            metrics->server_index.slots[slot] = count + 1;
            atomic_store_explicit(&metrics->server_count, count + 1, memory_order_release);
            return added;
        }
        struct metrics_server *known = &metrics->servers[entry - 1];
        if (strcmp(known->upstream, upstream) == 0 && strcmp(known->server, server) == 0)
            return known;
    }
}

void metrics_count_connect_failure(struct metrics *metrics, const char *upstream, const char *server)
{
    metrics_add(&metrics_server(metrics, upstream, server)->connect_failures, 1);
}

void metrics_observe_preread(struct metrics *metrics, uint64_t milliseconds)
{
    unsigned bucket = 0;
    while (bucket < METRICS_PREREAD_BUCKETS - 1 && milliseconds > metrics_preread_bucket_ms[bucket])
        bucket++;
    metrics_add(&metrics->preread_buckets[bucket], 1);
    metrics_add(&metrics->preread_ms_sum, milliseconds);
}

/* ---- rendering ---- */

struct text {
    char *data;
    size_t length, capacity;
    bool failed;
};

static void emit(struct text *text, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct text *text, const char *format, ...)
{
    while (!text->failed) {
        va_list args;
        va_start(args, format);
        size_t room = text->capacity - text->length;
        int needed = vsnprintf(text->data ? text->data + text->length : NULL, room, format, args);
        va_end(args);
        if (needed >= 0 && (size_t)needed < room) {
            text->length += (size_t)needed;
            return;
        }
        size_t capacity = text->capacity * 2 + (needed > 0 ? (size_t)needed : 0) + 4096;
        char *grown = needed < 0 ? NULL : realloc(text->data, capacity);
        if (!grown) {
            text->failed = true;
            return;
        }
        text->data = grown;
        text->capacity = capacity;
    }
}

/* Bytes of the well-formed UTF-8 character at `in` (1 to 4), or 0 when
 * there is none: no overlong form, surrogate or code point past U+10FFFF.
 * Reads nothing past a NUL, which no second byte may be. */
static size_t utf8_character_length(const unsigned char *in)
{
    if (in[0] < 0x80)
        return 1;
    size_t length;
    unsigned char low = 0x80, high = 0xbf; /* what the second byte may be */
    if (in[0] >= 0xc2 && in[0] <= 0xdf) {
        length = 2;
    } else if (in[0] >= 0xe0 && in[0] <= 0xef) {
        length = 3;
        low = in[0] == 0xe0 ? 0xa0 : low;
        high = in[0] == 0xed ? 0x9f : high;
    } else if (in[0] >= 0xf0 && in[0] <= 0xf4) {
        length = 4;
        low = in[0] == 0xf0 ? 0x90 : low;
        high = in[0] == 0xf4 ? 0x8f : high;
    } else {
        return 0;
    }
    if (in[1] < low || in[1] > high)
        return 0;
    for (size_t i = 2; i < length; i++)
        if ((in[i] & 0xc0) != 0x80)
            return 0;
    return length;
}

/* A label value must be UTF-8, or Prometheus refuses the whole scrape; a
 * unix: path in a route or server may hold any byte, so one that is not
 * part of a UTF-8 character is written as '?'. */
void metrics_escape_label(const char *in, char *out, size_t out_size)
{
    size_t used = 0;
    for (const unsigned char *at = (const unsigned char *)in; *at && used + 4 < out_size;) {
        size_t length = utf8_character_length(at); /* 1 for the ASCII below */
        if (*at == '\\' || *at == '"') {
            out[used++] = '\\';
            out[used++] = (char)*at;
        } else if (*at == '\n') {
            out[used++] = '\\';
            out[used++] = 'n';
        } else if (length == 0) {
            out[used++] = '?';
            length = 1;
        } else {
            memcpy(out + used, at, length);
            used += length;
        }
        at += length;
    }
    out[used] = '\0';
}

static uint64_t load(const _Atomic uint64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

static int compare_routes(const void *a, const void *b)
{
    return strcmp((*(const struct metrics_route *const *)a)->name, (*(const struct metrics_route *const *)b)->name);
}

static int compare_servers(const void *a, const void *b)
{
    const struct metrics_server *x = *(const struct metrics_server *const *)a;
    const struct metrics_server *y = *(const struct metrics_server *const *)b;
    int by_upstream = strcmp(x->upstream, y->upstream);
    return by_upstream ? by_upstream : strcmp(x->server, y->server);
}

/* Each worker's route (or server) entry count, loaded once into counts;
 * their sum. A worker may intern a name between two loads: read twice,
 * the second walk would fill the room counted for the workers after it,
 * and their entries would drop out of the sums, a counter going
 * backwards (a reset, to Prometheus). */
static size_t load_counts(const struct worker *workers, unsigned worker_count, bool servers, uint32_t *counts)
{
    size_t total = 0;
    for (unsigned w = 0; w < worker_count; w++) {
        const struct metrics *metrics = &workers[w].metrics;
        counts[w] = atomic_load_explicit(servers ? &metrics->server_count : &metrics->route_count,
                                         memory_order_acquire);
        total += counts[w];
    }
    return total;
}

/* Every worker's route entries, sorted by name (the "other" entries too). */
static const struct metrics_route **gather_routes(const struct worker *workers, unsigned worker_count,
                                                  size_t *count)
{
    uint32_t *counts = malloc((worker_count ? worker_count : 1) * sizeof *counts);
    if (!counts)
        return NULL;
    size_t total = load_counts(workers, worker_count, false, counts) + worker_count;
    const struct metrics_route **all = malloc((total ? total : 1) * sizeof *all);
    if (!all) {
        free(counts);
        return NULL;
    }
    size_t used = 0;
    for (unsigned w = 0; w < worker_count; w++) {
        const struct metrics *metrics = &workers[w].metrics;
        for (uint32_t i = 0; i < counts[w]; i++)
            all[used++] = &metrics->routes[i];
        all[used++] = &metrics->routes[METRICS_NAMES_MAX];
    }
    free(counts);
    qsort(all, used, sizeof *all, compare_routes);
    *count = used;
    return all;
}

static void render_routes(struct text *text, const struct worker *workers, unsigned worker_count)
{
    size_t count = 0;
    const struct metrics_route **all = gather_routes(workers, worker_count, &count);
    if (!all) {
        text->failed = true;
        return;
    }
    emit(text, "# HELP snisplice_connections_total Finished connections by route (upstream) and outcome.\n"
               "# TYPE snisplice_connections_total counter\n");
    char label[2 * METRICS_NAME_SIZE];
    for (size_t i = 0; i < count;) {
        size_t end = i;
        while (end < count && strcmp(all[end]->name, all[i]->name) == 0)
            end++;
        metrics_escape_label(all[i]->name, label, sizeof label);
        for (int outcome = 0; outcome < OUTCOME_COUNT; outcome++) {
            uint64_t sum = 0;
            for (size_t j = i; j < end; j++)
                sum += load(&all[j]->outcomes[outcome]);
            if (sum)
                emit(text, "snisplice_connections_total{route=\"%s\",outcome=\"%s\"} %llu\n", label,
                     connection_outcome_name(outcome), (unsigned long long)sum);
        }
        i = end;
    }
    emit(text, "# HELP snisplice_bytes_total Bytes relayed by route and direction.\n"
               "# TYPE snisplice_bytes_total counter\n");
    for (size_t i = 0; i < count;) {
        size_t end = i;
        uint64_t up = 0, down = 0;
        for (; end < count && strcmp(all[end]->name, all[i]->name) == 0; end++) {
            up += load(&all[end]->bytes_to_upstream);
            down += load(&all[end]->bytes_to_client);
        }
        if (up || down) {
            metrics_escape_label(all[i]->name, label, sizeof label);
            emit(text, "snisplice_bytes_total{route=\"%s\",direction=\"to_upstream\"} %llu\n"
                       "snisplice_bytes_total{route=\"%s\",direction=\"to_client\"} %llu\n",
                 label, (unsigned long long)up, label, (unsigned long long)down);
        }
        i = end;
    }
    free(all);
}

enum server_family { SERVER_CONNECT_FAILURES, SERVER_CONNECTIONS, SERVER_OPEN };

static const char *const server_family_headers[] = {
    [SERVER_CONNECT_FAILURES] = "# HELP snisplice_upstream_connect_failures_total Failed connect attempts by upstream server.\n"
                                "# TYPE snisplice_upstream_connect_failures_total counter\n",
    [SERVER_CONNECTIONS] = "# HELP snisplice_upstream_connections_total Connections made to each upstream server.\n"
                           "# TYPE snisplice_upstream_connections_total counter\n",
    [SERVER_OPEN] = "# HELP snisplice_upstream_open_connections Connections open to each upstream server now.\n"
                    "# TYPE snisplice_upstream_open_connections gauge\n",
};

static const char *const server_family_names[] = {
    [SERVER_CONNECT_FAILURES] = "snisplice_upstream_connect_failures_total",
    [SERVER_CONNECTIONS] = "snisplice_upstream_connections_total",
    [SERVER_OPEN] = "snisplice_upstream_open_connections",
};

/* A worker's entry as the family counts it. Open connections are
 * connections less closed ones, each counter read once: a reader racing
 * the worker may see a close before its connect, so the sum over workers
 * is clamped at zero rather than wrapping. */
static int64_t server_family_value(const struct metrics_server *entry, enum server_family family)
{
    switch (family) {
    case SERVER_CONNECT_FAILURES:
        return (int64_t)load(&entry->connect_failures);
    case SERVER_CONNECTIONS:
        return (int64_t)load(&entry->connections);
    case SERVER_OPEN:
        break;
    }
    uint64_t closed = load(&entry->closed);
    return (int64_t)(load(&entry->connections) - closed);
}

/* One family over `all` (sorted; a name may appear once per worker). */
static void render_server_family(struct text *text, const struct metrics_server **all, size_t used,
                                 enum server_family family)
{
    emit(text, "%s", server_family_headers[family]);
    char upstream[2 * METRICS_NAME_SIZE], server[2 * ADDRESS_TEXT_MAX];
    for (size_t i = 0; i < used;) {
        int64_t sum = 0;
        size_t end = i;
        for (; end < used && compare_servers(&all[end], &all[i]) == 0; end++)
            sum += server_family_value(all[end], family);
        metrics_escape_label(all[i]->upstream, upstream, sizeof upstream);
        metrics_escape_label(all[i]->server, server, sizeof server);
        emit(text, "%s{upstream=\"%s\",server=\"%s\"} %lld\n", server_family_names[family], upstream, server,
             (long long)(sum > 0 ? sum : 0));
        i = end;
    }
}

static void render_servers(struct text *text, const struct worker *workers, unsigned worker_count)
{
    uint32_t *counts = malloc((worker_count ? worker_count : 1) * sizeof *counts);
    size_t total = counts ? load_counts(workers, worker_count, true, counts) + worker_count : 0;
    const struct metrics_server **all = counts ? malloc((total ? total : 1) * sizeof *all) : NULL;
    if (!all) {
        free(counts);
        text->failed = true;
        return;
    }
    size_t used = 0;
    for (unsigned w = 0; w < worker_count; w++) {
        const struct metrics *metrics = &workers[w].metrics;
        for (uint32_t i = 0; i < counts[w]; i++)
            all[used++] = &metrics->servers[i];
        const struct metrics_server *other = &metrics->servers[METRICS_NAMES_MAX];
        if (load(&other->connect_failures) || load(&other->connections))
            all[used++] = other;
    }
    free(counts);
    qsort(all, used, sizeof *all, compare_servers);
    render_server_family(text, all, used, SERVER_CONNECT_FAILURES);
    render_server_family(text, all, used, SERVER_CONNECTIONS);
    render_server_family(text, all, used, SERVER_OPEN);
    free(all);
}

static void render_preread(struct text *text, const struct worker *workers, unsigned worker_count)
{
    uint64_t buckets[METRICS_PREREAD_BUCKETS] = { 0 }, sum_ms = 0;
    for (unsigned w = 0; w < worker_count; w++) {
        for (unsigned b = 0; b < METRICS_PREREAD_BUCKETS; b++)
            buckets[b] += load(&workers[w].metrics.preread_buckets[b]);
        sum_ms += load(&workers[w].metrics.preread_ms_sum);
    }
    emit(text, "# HELP snisplice_preread_seconds Time from accept until the whole ClientHello was there.\n"
               "# TYPE snisplice_preread_seconds histogram\n");
    uint64_t cumulative = 0;
    for (unsigned b = 0; b < METRICS_PREREAD_BUCKETS; b++) {
        cumulative += buckets[b];
        if (b < METRICS_PREREAD_BUCKETS - 1)
            emit(text, "snisplice_preread_seconds_bucket{le=\"%g\"} %llu\n",
                 metrics_preread_bucket_ms[b] / 1000.0, (unsigned long long)cumulative);
        else
            emit(text, "snisplice_preread_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
    }
    emit(text, "snisplice_preread_seconds_sum %.3f\nsnisplice_preread_seconds_count %llu\n",
         sum_ms / 1000.0, (unsigned long long)cumulative);
}

char *metrics_render(const struct worker *workers, unsigned worker_count, uint64_t reloads_ok,
                     uint64_t reloads_failed)
{
    struct text text = { 0 };
    uint64_t active = 0, accepted = 0, rejected = 0, in_use = 0, idle = 0;
    uint64_t hello_in_use = 0, hello_idle = 0, log_lines_lost = 0;
    for (unsigned w = 0; w < worker_count; w++) {
        log_lines_lost += load(&workers[w].counters.access_log_lines_lost);
        active += load(&workers[w].counters.active);
        accepted += load(&workers[w].counters.accepted);
        rejected += load(&workers[w].counters.rejected_at_limit);
        in_use += load(&workers[w].metrics.pipes_in_use);
        idle += load(&workers[w].metrics.pipes_idle);
        hello_in_use += load(&workers[w].metrics.hello_buffers_in_use);
        hello_idle += load(&workers[w].metrics.hello_buffers_idle);
    }
    emit(&text, "# HELP snisplice_workers Worker threads.\n# TYPE snisplice_workers gauge\nsnisplice_workers %u\n",
         worker_count);
    emit(&text, "# HELP snisplice_active_connections Connections open now.\n"
                "# TYPE snisplice_active_connections gauge\nsnisplice_active_connections %llu\n",
         (unsigned long long)active);
    emit(&text, "# HELP snisplice_accepted_total Connections accepted.\n"
                "# TYPE snisplice_accepted_total counter\nsnisplice_accepted_total %llu\n",
         (unsigned long long)accepted);
    emit(&text, "# HELP snisplice_rejected_total Connections closed at once because max_connections was reached.\n"
                "# TYPE snisplice_rejected_total counter\nsnisplice_rejected_total %llu\n",
         (unsigned long long)rejected);
    emit(&text, "# HELP snisplice_worker_accepted_total Connections accepted, by worker thread.\n"
                "# TYPE snisplice_worker_accepted_total counter\n");
    for (unsigned w = 0; w < worker_count; w++)
        emit(&text, "snisplice_worker_accepted_total{worker=\"%u\"} %llu\n", w,
             (unsigned long long)load(&workers[w].counters.accepted));
    render_routes(&text, workers, worker_count);
    render_servers(&text, workers, worker_count);
    render_preread(&text, workers, worker_count);
    emit(&text, "# HELP snisplice_pipe_pool_pipes Pipes held by relaying connections and kept idle for reuse.\n"
                "# TYPE snisplice_pipe_pool_pipes gauge\n"
                "snisplice_pipe_pool_pipes{state=\"in_use\"} %llu\nsnisplice_pipe_pool_pipes{state=\"idle\"} %llu\n",
         (unsigned long long)in_use, (unsigned long long)idle);
    emit(&text, "# HELP snisplice_hello_buffers ClientHello buffers held by connecting connections and kept idle for reuse.\n"
                "# TYPE snisplice_hello_buffers gauge\n"
                "snisplice_hello_buffers{state=\"in_use\"} %llu\nsnisplice_hello_buffers{state=\"idle\"} %llu\n",
         (unsigned long long)hello_in_use, (unsigned long long)hello_idle);
    emit(&text, "# HELP snisplice_access_log_lost_lines_total Access log lines lost: the disk was too slow or "
                "a write failed.\n# TYPE snisplice_access_log_lost_lines_total counter\n"
                "snisplice_access_log_lost_lines_total %llu\n",
         (unsigned long long)log_lines_lost);
    emit(&text, "# HELP snisplice_reloads_total Configuration reloads (SIGHUP) by result.\n"
                "# TYPE snisplice_reloads_total counter\n"
                "snisplice_reloads_total{result=\"ok\"} %llu\nsnisplice_reloads_total{result=\"failed\"} %llu\n",
         (unsigned long long)reloads_ok, (unsigned long long)reloads_failed);
    if (text.failed) {
        free(text.data);
        return NULL;
    }
    return text.data;
}
