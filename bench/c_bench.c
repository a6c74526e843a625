/* Benchmark worker for the C ABI, driven by bench/compare.rs (`make bench`).
 *
 *   c_bench uncontended URL SECONDS
 *       lock + unlock one name in a loop; prints "cycles_per_sec <float>".
 *   c_bench contend URL SECONDS HOLD_MS PAUSE_MS
 *       one of several processes on one name: lock (waiting), hold, unlock, pause; prints one
 *       line per critical section: "cs <asked_ns> <acquired_ns> <released_ns>" (CLOCK_MONOTONIC,
 *       comparable across processes).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "redilock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fail(const char *what) {
    fprintf(stderr, "c_bench: %s: %s\n", what, redilock_last_error());
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s uncontended|contend URL SECONDS [HOLD_MS PAUSE_MS]\n", argv[0]);
        return 2;
    }
    redilock *client = NULL;
    if (redilock_new(argv[2], 10000, &client) != REDILOCK_STATUS_OK) fail("new");
    long long end = now_ns() + (long long)(atof(argv[3]) * 1e9);
    char token[REDILOCK_TOKEN_LEN];

    if (strcmp(argv[1], "uncontended") == 0) {
        char name[64];
        snprintf(name, sizeof name, "bench:uncontended:%d", (int)getpid());
        long long cycles = 0, start = now_ns(), now = start;
        while (now < end) {
            if (redilock_lock(client, name, 0, REDILOCK_NO_WAIT, token, sizeof token) != REDILOCK_STATUS_OK)
                fail("lock");
            if (redilock_unlock(client, name, token) != REDILOCK_STATUS_OK) fail("unlock");
            cycles++;
            now = now_ns();
        }
        printf("cycles_per_sec %.1f\n", (double)cycles / ((double)(now - start) / 1e9));
    } else if (strcmp(argv[1], "contend") == 0 && argc == 6) {
        useconds_t hold_us = (useconds_t)(atof(argv[4]) * 1000), pause_us = (useconds_t)(atof(argv[5]) * 1000);
        while (now_ns() < end) {
            long long asked = now_ns();
            if (redilock_lock(client, "bench:contended", 0, REDILOCK_WAIT_FOREVER, token, sizeof token) !=
                REDILOCK_STATUS_OK)
                fail("lock");
            long long acquired = now_ns();
            usleep(hold_us);
            long long released = now_ns();
            if (redilock_unlock(client, "bench:contended", token) != REDILOCK_STATUS_OK) fail("unlock");
            printf("cs %lld %lld %lld\n", asked, acquired, released);
            usleep(pause_us);
        }
    } else {
        fprintf(stderr, "c_bench: unknown mode %s\n", argv[1]);
        return 2;
    }
    redilock_free(client);
    return 0;
}
