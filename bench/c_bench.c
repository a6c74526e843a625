/* Benchmark worker for the C ABI, driven by bench/compare.rs (`make bench`) and by
 * bench/peers/run (`make bench-peers`).
 *
 *   c_bench uncontended URL SECONDS
 *       lock + unlock one name in a loop; prints "cycles_per_sec <float>".
 *   c_bench contend URL SECONDS HOLD_MS PAUSE_MS
 *       one of several processes on one name: lock (waiting), hold, unlock, pause; prints one
 *       line per critical section: "cs <asked_ns> <acquired_ns> <released_ns>" (CLOCK_MONOTONIC,
 *       comparable across processes).
 *   c_bench fanin URL SECONDS THREADS
 *       THREADS threads share one client, each locking + unlocking its own name; prints
 *       "cycles_per_sec <float>" for all of them together.
 *   c_bench waiters URL SECONDS WAITERS [RETRY_INTERVAL_MS [CLIENTS]]
 *       a holder takes "bench:held" and prints "held"; after a line on stdin WAITERS threads
 *       wait for it while the holder keeps it SECONDS, then each takes it once; prints
 *       "acquisitions <WAITERS>". The waiters share CLIENTS clients (default: one each),
 *       connected beforehand; RETRY_INTERVAL_MS 0 keeps the default.
 *   c_bench memory URL CYCLES
 *       CYCLES uncontended cycles on one client; prints "rss_kib <cycles> <VmRSS>" after 1000
 *       cycles and after the last.
 *   c_bench hold URL NAME
 *       takes NAME (60 s TTL) and prints "held"; after a line on stdin prints
 *       "released <ns>" (stamped just before the unlock call) and releases it.
 *   c_bench wait URL NAME
 *       waits for NAME, prints "acquired <ns>" as soon as it holds it, then releases it.
 *       With hold, the crashed-predecessor measurement of bench/peers/run: it queues two of
 *       these, kills the first and times the second from the release.
 *
 * Environment: C_BENCH_FAIR=0 makes every client of the process not fair
 * (redilock_options_set_fair(options, false)): its calls take a free lock whoever waits.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "redilock.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HELD_NAME "bench:held"
#define HOLD_TTL_MS 60000 /* the hold mode's: longer than any set-up the driver waits for */

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fail(const char *what) {
    fprintf(stderr, "c_bench: %s: %s\n", what, redilock_last_error());
    exit(1);
}

/* Whether the clients are fair (the library's default) or barge: C_BENCH_FAIR=0. */
static bool fair_clients(void) {
    const char *fair = getenv("C_BENCH_FAIR");
    return !(fair && strcmp(fair, "0") == 0);
}

/* retry_interval_ms 0 keeps the default (10 s, a safety net: a release hands the lock to the
 * first waiter in line). */
static redilock *new_client(const char *url, int64_t retry_interval_ms) {
    redilock_options *options = NULL;
    redilock *client = NULL;
    if (redilock_options_new(&options) != REDILOCK_STATUS_OK ||
        redilock_options_set_default_ttl_ms(options, 10000) != REDILOCK_STATUS_OK ||
        (retry_interval_ms && redilock_options_set_retry_interval_ms(options, retry_interval_ms) != REDILOCK_STATUS_OK) ||
        (!fair_clients() && redilock_options_set_fair(options, false) != REDILOCK_STATUS_OK) ||
        redilock_new_with_options(url, options, &client) != REDILOCK_STATUS_OK)
        fail("new");
    redilock_options_free(options);
    return client;
}

/* Takes the free lock `name` with one attempt and releases it. */
static void cycle(redilock *client, const char *name) {
    char token[REDILOCK_TOKEN_LEN];
    if (redilock_lock(client, name, 0, REDILOCK_NO_WAIT, token, sizeof token) != REDILOCK_STATUS_OK) fail("lock");
    if (redilock_unlock(client, name, token) != REDILOCK_STATUS_OK) fail("unlock");
}

static long long cycles_until(redilock *client, const char *name, long long end) {
    long long cycles = 0;
    while (now_ns() < end) {
        cycle(client, name);
        cycles++;
    }
    return cycles;
}

static void uncontended(redilock *client, long long end) {
    char name[64];
    snprintf(name, sizeof name, "bench:uncontended:%d", (int)getpid());
    long long start = now_ns();
    long long cycles = cycles_until(client, name, end);
    printf("cycles_per_sec %.1f\n", (double)cycles / ((double)(now_ns() - start) / 1e9));
}

static void contend(redilock *client, long long end, double hold_ms, double pause_ms) {
    char token[REDILOCK_TOKEN_LEN];
    useconds_t hold_us = (useconds_t)(hold_ms * 1000), pause_us = (useconds_t)(pause_ms * 1000);
    while (now_ns() < end) {
        long long asked = now_ns();
        if (redilock_lock(client, "bench:contended", 0, REDILOCK_WAIT_FOREVER, token, sizeof token) !=
            REDILOCK_STATUS_OK)
            fail("lock");
        long long acquired = now_ns();
        if (hold_us) usleep(hold_us); /* 0: no think time, not even a sleep call */
        long long released = now_ns();
        if (redilock_unlock(client, "bench:contended", token) != REDILOCK_STATUS_OK) fail("unlock");
        printf("cs %lld %lld %lld\n", asked, acquired, released);
        if (pause_us) usleep(pause_us);
    }
}

struct fanin_thread {
    pthread_t thread;
    redilock *client;
    long long end;
    char name[64];
    long long cycles;
};

static void *fanin_thread(void *arg) {
    struct fanin_thread *t = arg;
    t->cycles = cycles_until(t->client, t->name, t->end);
    return NULL;
}

static void fanin(redilock *client, long long end, int threads) {
    struct fanin_thread *workers = calloc((size_t)threads, sizeof *workers);
    long long start = now_ns(), cycles = 0;
    for (int i = 0; i < threads; i++) {
        workers[i] = (struct fanin_thread){.client = client, .end = end};
        snprintf(workers[i].name, sizeof workers[i].name, "bench:fanin:%d:%d", (int)getpid(), i);
        if (pthread_create(&workers[i].thread, NULL, fanin_thread, &workers[i]) != 0) fail("pthread_create");
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(workers[i].thread, NULL);
        cycles += workers[i].cycles;
    }
    printf("cycles_per_sec %.1f\n", (double)cycles / ((double)(now_ns() - start) / 1e9));
    free(workers);
}

static void *wait_once(void *client) {
    char token[REDILOCK_TOKEN_LEN];
    if (redilock_lock(client, HELD_NAME, 0, REDILOCK_WAIT_FOREVER, token, sizeof token) != REDILOCK_STATUS_OK)
        fail("lock");
    if (redilock_unlock(client, HELD_NAME, token) != REDILOCK_STATUS_OK) fail("unlock");
    return NULL;
}

static void waiters(const char *url, double seconds, int count, int64_t retry_interval_ms, int nclients) {
    redilock *holder = new_client(url, 0);
    redilock **clients = calloc((size_t)nclients, sizeof *clients);
    pthread_t *threads = calloc((size_t)count, sizeof *threads);
    char name[64], token[REDILOCK_TOKEN_LEN], line[16];
    for (int i = 0; i < nclients; i++) { /* connected and warm before the count starts */
        clients[i] = new_client(url, retry_interval_ms);
        snprintf(name, sizeof name, "bench:warm:%d", i);
        cycle(clients[i], name);
    }
    if (redilock_lock(holder, HELD_NAME, 0, REDILOCK_NO_WAIT, token, sizeof token) != REDILOCK_STATUS_OK)
        fail("hold");
    printf("held\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) fail("stdin");
    for (int i = 0; i < count; i++)
        if (pthread_create(&threads[i], NULL, wait_once, clients[i % nclients]) != 0) fail("pthread_create");
    usleep((useconds_t)(seconds * 1e6));
    if (redilock_unlock(holder, HELD_NAME, token) != REDILOCK_STATUS_OK) fail("unlock");
    for (int i = 0; i < count; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < nclients; i++) redilock_free(clients[i]);
    printf("acquisitions %d\n", count);
    free(threads);
    free(clients);
    redilock_free(holder);
}

static void hold(redilock *client, const char *name) {
    char token[REDILOCK_TOKEN_LEN], line[16];
    if (redilock_lock(client, name, HOLD_TTL_MS, REDILOCK_NO_WAIT, token, sizeof token) != REDILOCK_STATUS_OK)
        fail("hold");
    printf("held\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) fail("stdin");
    long long released = now_ns();
    if (redilock_unlock(client, name, token) != REDILOCK_STATUS_OK) fail("unlock");
    printf("released %lld\n", released);
}

static void wait_for(redilock *client, const char *name) {
    char token[REDILOCK_TOKEN_LEN];
    if (redilock_lock(client, name, 0, REDILOCK_WAIT_FOREVER, token, sizeof token) != REDILOCK_STATUS_OK)
        fail("lock");
    long long acquired = now_ns();
    printf("acquired %lld\n", acquired);
    fflush(stdout);
    if (redilock_unlock(client, name, token) != REDILOCK_STATUS_OK) fail("unlock");
}

static long rss_kib(void) {
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (status && fgets(line, sizeof line, status))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    if (status) fclose(status);
    return kib;
}

static void memory(redilock *client, long long cycles) {
    char name[64];
    snprintf(name, sizeof name, "bench:memory:%d", (int)getpid());
    for (long long i = 1; i <= cycles; i++) {
        cycle(client, name);
        if (i == 1000 || i == cycles) printf("rss_kib %lld %ld\n", i, rss_kib());
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s uncontended|contend|fanin|waiters|memory URL SECONDS|CYCLES [ARGS...]\n"
                        "       %s hold|wait URL NAME\n", argv[0], argv[0]);
        return 2;
    }
    const char *mode = argv[1], *url = argv[2];
    double seconds = atof(argv[3]);
    long long end = now_ns() + (long long)(seconds * 1e9);

    if (strcmp(mode, "waiters") == 0 && argc >= 5 && argc <= 7) {
        int count = atoi(argv[4]), nclients = argc == 7 ? atoi(argv[6]) : count;
        if (count < 1 || nclients < 1 || nclients > count) {
            fprintf(stderr, "c_bench: waiters: WAITERS and CLIENTS must be >= 1, CLIENTS <= WAITERS\n");
            return 2;
        }
        /* A negative interval is the library's to refuse (fail("new") shows why). */
        waiters(url, seconds, count, argc >= 6 ? (int64_t)strtoll(argv[5], NULL, 10) : 0, nclients);
        return 0;
    }
    redilock *client = new_client(url, 0);
    if (strcmp(mode, "uncontended") == 0 && argc == 4)
        uncontended(client, end);
    else if (strcmp(mode, "contend") == 0 && argc == 6)
        contend(client, end, atof(argv[4]), atof(argv[5]));
    else if (strcmp(mode, "fanin") == 0 && argc == 5)
        fanin(client, end, atoi(argv[4]));
    else if (strcmp(mode, "memory") == 0 && argc == 4)
        memory(client, atoll(argv[3]));
    else if (strcmp(mode, "hold") == 0 && argc == 4)
        hold(client, argv[3]);
    else if (strcmp(mode, "wait") == 0 && argc == 4)
        wait_for(client, argv[3]);
    else {
        fprintf(stderr, "c_bench: unknown mode or arguments: %s\n", mode);
        return 2;
    }
    redilock_free(client);
    return 0;
}
