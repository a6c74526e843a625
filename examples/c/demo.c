/* The redilock demo: several processes update one shared file, which must always be found in
 * its valid state. Each update is a read, a deliberately slow two-step write, and a check; with
 * the lock no process ever sees a half-written file or loses an update. The file also checks
 * fencing: each write carries the lock's fencing number, and a number not above the last one
 * accepted is refused as a stale write. Then the same run without the lock (and so without
 * fences) shows the errors the lock prevents.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./demo [processes] [iterations]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "redilock.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOCK_NAME "redilock-demo:ledger"
#define LOCK_TTL_MS 10000

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The ledger file holds "<count> <count * 7> <fence of the last accepted write>"; anything else
 * is a torn (invalid) state. */
static int read_ledger(const char *path, long *count, uint64_t *fence) {
    char text[64] = "";
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, text, sizeof text - 1);
    if (fd >= 0) close(fd);
    long check = -1;
    if (n <= 0 || sscanf(text, "%ld %ld %" SCNu64, count, &check, fence) != 3) return -1;
    return check == *count * 7 ? 0 : -1;
}

static void write_ledger(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) < 0) perror("write ledger");
    if (fd >= 0) close(fd);
}

enum outcome { UPDATED, TORN_READ, STALE_WRITE };

/* One update carrying `fence` (0: none, not checked): read, refuse a stale fence (each hold
 * writes once, so its fence must be above the last one accepted), write a half-done state,
 * pause, write the new valid state. */
static enum outcome update_ledger(const char *path, uint64_t fence) {
    long count = 0;
    uint64_t last_fence = 0;
    int torn = read_ledger(path, &count, &last_fence) != 0;
    if (fence != 0 && fence <= last_fence) return STALE_WRITE;
    char text[64];
    snprintf(text, sizeof text, "%ld", count + 1); /* torn: the check number and fence are missing */
    write_ledger(path, text);
    usleep(200);
    snprintf(text, sizeof text, "%ld %ld %" PRIu64, count + 1, (count + 1) * 7, fence);
    write_ledger(path, text);
    return torn ? TORN_READ : UPDATED;
}

struct results {
    int errors;        /* torn reads and failed lock calls */
    int stale_writes;
    double waits_ms[]; /* one per iteration of every worker */
};

static int worker(int id, int iterations, int use_lock, const char *url, const char *path, struct results *out) {
    redilock *client = NULL;
    if (use_lock && redilock_new(url, LOCK_TTL_MS, &client) != REDILOCK_STATUS_OK) {
        fprintf(stderr, "worker %d: %s\n", id, redilock_last_error());
        return 1;
    }
    int errors = 0, stale_writes = 0;
    for (int i = 0; i < iterations; i++) {
        char token[REDILOCK_TOKEN_LEN];
        uint64_t fence = 0;
        double asked = now_ms();
        if (use_lock) {
            redilock_status status =
                redilock_lock_ex(client, LOCK_NAME, 0, REDILOCK_WAIT_FOREVER, NULL, token, sizeof token, &fence);
            if (status != REDILOCK_STATUS_OK) {
                fprintf(stderr, "worker %d: lock: %s\n", id, redilock_last_error());
                errors++;
                continue;
            }
        }
        out->waits_ms[id * iterations + i] = now_ms() - asked;
        enum outcome outcome = update_ledger(path, fence);
        errors += outcome == TORN_READ;
        stale_writes += outcome == STALE_WRITE;
        if (use_lock && redilock_unlock(client, LOCK_NAME, token) != REDILOCK_STATUS_OK) {
            fprintf(stderr, "worker %d: unlock: %s\n", id, redilock_last_error());
            errors++;
        }
        if ((i + 1) * 4 / iterations != i * 4 / iterations) /* each quarter */
            printf("  worker %d: %d/%d updates\n", id, i + 1, iterations);
    }
    __atomic_add_fetch(&out->errors, errors, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&out->stale_writes, stale_writes, __ATOMIC_SEQ_CST);
    redilock_free(client);
    return 0;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs the workers as separate processes; returns the number of errors seen. */
static int run(int processes, int iterations, int use_lock, const char *url) {
    char path[] = "/tmp/redilock-demo-ledgerXXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_ledger(path, "0 0 0");
    size_t size = sizeof(struct results) + sizeof(double) * (size_t)processes * (size_t)iterations;
    struct results *results = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (results == MAP_FAILED) return -1;

    printf("%s: %d processes x %d updates of one file\n", use_lock ? "with the lock" : "WITHOUT the lock",
           processes, iterations);
    fflush(stdout);
    double start = now_ms();
    for (int id = 0; id < processes; id++) {
        if (fork() == 0) _exit(worker(id, iterations, use_lock, url, path, results));
    }
    int failed_workers = 0;
    for (int id = 0; id < processes; id++) {
        int status = 0;
        wait(&status);
        failed_workers += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    double elapsed_s = (now_ms() - start) / 1e3;

    long final_count = 0;
    uint64_t last_fence = 0;
    int torn = read_ledger(path, &final_count, &last_fence) != 0;
    long total = (long)processes * iterations;
    long lost = total - results->stale_writes - final_count; /* a refused stale write is not lost */
    if (lost < 0) lost = 0;
    int errors = results->errors + results->stale_writes + torn + (int)lost + failed_workers;
    qsort(results->waits_ms, (size_t)total, sizeof(double), by_value);
    printf("  summary: %d x %d = %ld updates, errors: %d (torn reads %d, lost updates %ld", processes, iterations,
           total, errors, results->errors, lost);
    if (use_lock) printf(", stale writes %d", results->stale_writes);
    printf("), %.0f updates/s", (double)total / elapsed_s);
    if (use_lock)
        printf(", lock wait p50 %.2f ms, p99 %.2f ms, last fence %" PRIu64, results->waits_ms[total / 2],
               results->waits_ms[total * 99 / 100], last_fence);
    printf("\n\n");
    munmap(results, size);
    unlink(path);
    return errors;
}

int main(int argc, char **argv) {
    const char *url = getenv("REDIS_URL");
    int processes = argc > 1 ? atoi(argv[1]) : 4;
    int iterations = argc > 2 ? atoi(argv[2]) : 250;
    if (url == NULL || processes < 1 || iterations < 1) {
        fprintf(stderr, "usage: REDIS_URL=redis://host:port %s [processes] [iterations]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("redilock %s demo against %s\n\n", redilock_version(), url);
    int with_lock = run(processes, iterations, 1, url);
    int without_lock = run(processes, iterations, 0, url);
    printf("result: %d errors with the lock, %d without it\n", with_lock, without_lock);
    return with_lock == 0 ? 0 : 1;
}
