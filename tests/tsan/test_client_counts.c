/*
 * test_client_counts.c - the per-address connection counts under
 * concurrency, as the workers use them. Built with ThreadSanitizer (and
 * with ASan): threads take and release connections of a few shared
 * addresses; no address may ever hold more than its limit, and when every
 * thread has released what it took, the table must be empty.
 *
 * Not a criterion suite, for the reason test_publisher.c gives.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../core/client_counts.h"

enum { THREADS = 4, ADDRESSES = 16, LIMIT = 3, ROUNDS = 100000, HELD_MAX = 8 };

static struct client_counts *counts;
static struct client_address addresses[ADDRESSES];
static _Atomic int held[ADDRESSES];   /* taken and not yet released, seen from outside */
static _Atomic unsigned long refusals;

#define require(condition)                                                          \
    do {                                                                            \
        if (!(condition)) {                                                         \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #condition); \
            abort();                                                                \
        }                                                                           \
    } while (0)

static void *connections(void *argument)
{
    unsigned seed = (unsigned)(uintptr_t)argument;
    int mine[HELD_MAX];
    int mine_count = 0;
    for (int round = 0; round < ROUNDS; round++) {
        if (mine_count < HELD_MAX && rand_r(&seed) % 2) {
            int i = (int)(rand_r(&seed) % ADDRESSES);
            enum client_count_result result = client_counts_take(counts, &addresses[i], LIMIT);
            require(result != CLIENT_COUNT_FULL);
            if (result == CLIENT_COUNT_AT_LIMIT) {
                refusals++;
                continue;
            }
            /* Counted under the lock first, so what is held never exceeds it. */
            require(atomic_fetch_add(&held[i], 1) + 1 <= LIMIT);
            mine[mine_count++] = i;
        } else if (mine_count > 0) {
            int at = (int)(rand_r(&seed) % (unsigned)mine_count);
            int i = mine[at];
            mine[at] = mine[--mine_count];
            atomic_fetch_sub(&held[i], 1);
            client_counts_release(counts, &addresses[i]);
        }
    }
    while (mine_count > 0) {
        int i = mine[--mine_count];
        atomic_fetch_sub(&held[i], 1);
        client_counts_release(counts, &addresses[i]);
    }
    return NULL;
}

int main(void)
{
    counts = client_counts_new(ADDRESSES, 99);
    require(counts);
    for (int i = 0; i < ADDRESSES; i++) {
        struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xC0000200u + (unsigned)i) };
        require(client_address_from((struct sockaddr *)&address, &addresses[i]));
    }
    pthread_t threads[THREADS];
    for (uintptr_t t = 0; t < THREADS; t++)
        require(pthread_create(&threads[t], NULL, connections, (void *)(t + 1)) == 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    for (int i = 0; i < ADDRESSES; i++)
        require(client_counts_of(counts, &addresses[i]) == 0);
    require(client_counts_addresses(counts) == 0);
    require(refusals > 0); /* the limit was reached, so it was tested */
    client_counts_free(counts);
    printf("client_counts: %d threads x %d rounds, %lu refusals at the limit, ok\n", THREADS, ROUNDS,
           (unsigned long)refusals);
    return 0;
}
