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
 *   c_bench fencing URLS SECONDS
 *       the uncontended cycle on a quorum client, each cycle timed alone (lock + unlock
 *       calls); before each, untimed, sets the lock's fencing counter on every master over a
 *       plain connection to one value above any Redis clock: every other cycle all the same
 *       (the counters agree), in between with the first master 1,000,000 higher (it alone has
 *       the highest number, which the client then writes back to the others: the fencing
 *       phase). Prints for each kind of cycle, "agreeing" and "one_ahead",
 *       "<kind>_cycles_per_sec <float>" (over their timed time) and "<kind>_p50_us <float>",
 *       then "written_back <share>": the share of one_ahead cycles after which every master
 *       held the number the lock call returned.
 *
 * URL may be several URLs separated by spaces: the independent masters of a quorum client
 * (redilock_new_quorum, its default quorum). URLS is such a list.
 *
 * Environment: C_BENCH_FAIR=0 makes every client of the process not fair
 * (redilock_options_set_fair(options, false)): its calls take a free lock whoever waits.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "redilock.h"

#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HELD_NAME "bench:held"
#define HOLD_TTL_MS 60000 /* the hold mode's: longer than any set-up the driver waits for */
#define MAX_MASTERS 16
#define FENCE_LEAD 1000000 /* how far the fencing mode puts masters ahead of the others */

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fail_with(const char *what, const char *why) {
    fprintf(stderr, "c_bench: %s: %s\n", what, why);
    exit(1);
}

static void fail(const char *what) { fail_with(what, redilock_last_error()); }

/* Whether the clients are fair (the library's default) or barge: C_BENCH_FAIR=0. */
static bool fair_clients(void) {
    const char *fair = getenv("C_BENCH_FAIR");
    return !(fair && strcmp(fair, "0") == 0);
}

/* The URLs of a space-separated list, in `masters` (at most MAX_MASTERS), pointing into
 * `copy`, which the caller frees; returns how many. */
static size_t split_urls(const char *urls, char **copy, const char *masters[MAX_MASTERS]) {
    size_t count = 0;
    char *rest = NULL;
    *copy = strdup(urls);
    for (char *url = strtok_r(*copy, " ", &rest); url; url = strtok_r(NULL, " ", &rest)) {
        if (count == MAX_MASTERS) {
            fprintf(stderr, "c_bench: more than %d URLs\n", MAX_MASTERS);
            exit(2);
        }
        masters[count++] = url;
    }
    return count;
}

/* retry_interval_ms 0 keeps the default (10 s, a safety net: a release hands the lock to the
 * first waiter in line). Several URLs make a quorum client. */
static redilock *new_client(const char *urls, int64_t retry_interval_ms) {
    redilock_options *options = NULL;
    redilock *client = NULL;
    const char *masters[MAX_MASTERS];
    char *copy;
    size_t count = split_urls(urls, &copy, masters);
    if (redilock_options_new(&options) != REDILOCK_STATUS_OK ||
        redilock_options_set_default_ttl_ms(options, 10000) != REDILOCK_STATUS_OK ||
        (retry_interval_ms && redilock_options_set_retry_interval_ms(options, retry_interval_ms) != REDILOCK_STATUS_OK) ||
        (!fair_clients() && redilock_options_set_fair(options, false) != REDILOCK_STATUS_OK) ||
        (count == 1 ? redilock_new_with_options(masters[0], options, &client)
                    : redilock_new_quorum(masters, count, options, &client)) != REDILOCK_STATUS_OK)
        fail("new");
    redilock_options_free(options);
    free(copy);
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

/* A plain connection to one master (redis://HOST:PORT), for the fencing mode's set-up: the
 * library rightly has no call that sets a fencing counter. */
struct plain_connection {
    int fd;
    FILE *replies;
};

static struct plain_connection connect_plain(const char *url) {
    char host[256], port[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *found = NULL;
    int fd = -1;
    if (sscanf(url, "redis://%255[^:/]:%15[0-9]", host, port) != 2) fail_with(url, "not redis://HOST:PORT");
    if (getaddrinfo(host, port, &hints, &found) == 0) {
        fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
        if (fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
        freeaddrinfo(found);
    }
    if (fd < 0) fail_with(url, "cannot connect");
    return (struct plain_connection){.fd = fd, .replies = fdopen(fd, "r")};
}

/* Sets the fencing counter of the lock whose key ends with ARGV[1] (the library names the
 * counter redilock:fence:{TAG}:<key>) to ARGV[2]; returns what it held. */
static const char SET_FENCE_SCRIPT[] = "local key = redis.call('KEYS', 'redilock:fence:*' .. ARGV[1])[1] "
                                       "return redis.call('SET', key, ARGV[2], 'GET')";

static uint64_t set_fence(struct plain_connection *master, const char *name, uint64_t value) {
    char request[512], number[32], reply[64] = "";
    snprintf(number, sizeof number, "%" PRIu64, value);
    /* EVAL script 0 name number, in RESP */
    int length = snprintf(request, sizeof request, "*5\r\n$4\r\nEVAL\r\n$%zu\r\n%s\r\n$1\r\n0\r\n$%zu\r\n%s\r\n"
                          "$%zu\r\n%s\r\n", strlen(SET_FENCE_SCRIPT), SET_FENCE_SCRIPT, strlen(name), name,
                          strlen(number), number);
    if (length >= (int)sizeof request || write(master->fd, request, (size_t)length) != length)
        fail_with("fencing", "cannot send to a master");
    /* a bulk reply: "$<length>", then the counter; "-ERR ..." when the counter was not found */
    if (!fgets(reply, sizeof reply, master->replies) || reply[0] != '$' ||
        !fgets(reply, sizeof reply, master->replies))
        fail_with("fencing: a master's reply", reply);
    return strtoull(reply, NULL, 10);
}

/* Sets the counters for the next acquisition, the first master FENCE_LEAD higher when
 * `one_ahead`; returns whether every master held `last_fence` before. */
static bool set_fences(struct plain_connection *masters, size_t count, const char *name, uint64_t value,
                       bool one_ahead, uint64_t last_fence) {
    bool all_held = true;
    for (size_t i = 0; i < count; i++)
        all_held &= set_fence(&masters[i], name, value + (one_ahead && i == 0 ? FENCE_LEAD : 0)) == last_fence;
    return all_held;
}

/* The cycles of one kind in the fencing mode. */
struct timed_cycles {
    long long *ns;
    size_t count, capacity;
    long long total_ns;
};

static void add_cycle(struct timed_cycles *cycles, long long ns) {
    if (cycles->count == cycles->capacity) {
        cycles->capacity = cycles->capacity ? 2 * cycles->capacity : 4096;
        cycles->ns = realloc(cycles->ns, cycles->capacity * sizeof *cycles->ns);
        if (!cycles->ns) fail_with("fencing", "out of memory");
    }
    cycles->ns[cycles->count++] = ns;
    cycles->total_ns += ns;
}

static int compare_ns(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static void print_cycles(const char *kind, struct timed_cycles *cycles) {
    qsort(cycles->ns, cycles->count, sizeof *cycles->ns, compare_ns);
    printf("%s_cycles_per_sec %.1f\n%s_p50_us %.1f\n", kind, (double)cycles->count / ((double)cycles->total_ns / 1e9),
           kind, (double)cycles->ns[cycles->count / 2] / 1e3);
    free(cycles->ns);
}

/* The two kinds of cycle alternate, so that a machine busy with other work slows both alike. */
static void fencing(redilock *client, const char *urls, long long end) {
    const char *master_urls[MAX_MASTERS];
    struct plain_connection masters[MAX_MASTERS];
    struct timed_cycles agreeing = {0}, one_ahead = {0};
    char *copy, name[64], token[REDILOCK_TOKEN_LEN];
    size_t count = split_urls(urls, &copy, master_urls);
    for (size_t i = 0; i < count; i++) masters[i] = connect_plain(master_urls[i]);
    snprintf(name, sizeof name, "bench:fencing:%d", (int)getpid());
    cycle(client, name); /* makes the counters, which set_fence finds by their key */
    /* A master's counter starts at its clock (µs since 1970): twice the clock is above it. */
    struct timespec clock;
    clock_gettime(CLOCK_REALTIME, &clock);
    uint64_t base = ((uint64_t)clock.tv_sec * 1000000 + (uint64_t)clock.tv_nsec / 1000) * 2, fence = 0;
    long long written_back = 0;
    bool ahead = false;
    set_fences(masters, count, name, base, ahead, 0);
    while (now_ns() < end || one_ahead.count == 0) {
        long long start = now_ns();
        if (redilock_lock_ex(client, name, 0, REDILOCK_NO_WAIT, NULL, token, sizeof token, &fence) !=
            REDILOCK_STATUS_OK)
            fail("lock");
        if (redilock_unlock(client, name, token) != REDILOCK_STATUS_OK) fail("unlock");
        add_cycle(ahead ? &one_ahead : &agreeing, now_ns() - start);
        if (fence != base + 1 + (ahead ? FENCE_LEAD : 0))
            fail_with("fencing", "the lock's number is not the highest counter's plus one");
        base += 2 * FENCE_LEAD;
        bool all_held = set_fences(masters, count, name, base, !ahead, fence);
        written_back += ahead && all_held;
        ahead = !ahead;
    }
    print_cycles("agreeing", &agreeing);
    print_cycles("one_ahead", &one_ahead);
    printf("written_back %.3f\n", (double)written_back / (double)one_ahead.count);
    for (size_t i = 0; i < count; i++) fclose(masters[i].replies);
    free(copy);
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
                        "       %s hold|wait URL NAME\n"
                        "       %s fencing URLS SECONDS\n", argv[0], argv[0], argv[0]);
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
    else if (strcmp(mode, "fencing") == 0 && argc == 4)
        fencing(client, url, end);
    else {
        fprintf(stderr, "c_bench: unknown mode or arguments: %s\n", mode);
        return 2;
    }
    redilock_free(client);
    return 0;
}
