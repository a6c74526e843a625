/* What the C test programs share: checks that count their failures, the redis-server they run
 * against ($REDIS_URL from tests/harness/with-redis), time bounds scaled for slow machines,
 * polling, and redis-cli for looking at the server behind the library's back.
 * Each program includes it once, so everything here is static. */
#ifndef REDILOCK_TEST_SUPPORT_H
#define REDILOCK_TEST_SUPPORT_H

#include "redilock.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Counted atomically: checks also run on the test's own threads and in loss callbacks. */
static int failures = 0;
static int checks = 0;

static inline void report_failure(const char *file, int line, const char *what) {
    __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
    fprintf(stderr, "%s:%d: %s failed; last error: %s\n", file, line, what, redilock_last_error());
}

static inline bool check_that(bool ok, const char *file, int line, const char *what) {
    __atomic_add_fetch(&checks, 1, __ATOMIC_SEQ_CST);
    if (!ok) report_failure(file, line, what);
    return ok;
}

#define CHECK(cond) check_that((cond), __FILE__, __LINE__, "CHECK(" #cond ")")
#define CHECK_STATUS(expr, expected) CHECK((expr) == (expected))

static const char *url;
static int under_valgrind;
static double time_scale = 1;

/* Reads the environment; false (having said why) when not run through the harness. */
static inline bool test_setup(void) {
    url = getenv("REDIS_URL");
    if (url == NULL) {
        fprintf(stderr, "REDIS_URL is not set: run through tests/harness/with-redis\n");
        return false;
    }
    under_valgrind = getenv("REDILOCK_TEST_UNDER_VALGRIND") != NULL;
    const char *scale = getenv("REDILOCK_TEST_TIME_SCALE");
    if (scale != NULL && atof(scale) > 1) time_scale = atof(scale);
    if (under_valgrind) time_scale *= 10; /* valgrind runs every thread many times slower */
    return true;
}

/* The summary line and the exit code. */
static inline int test_report(void) {
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}

static inline double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline void sleep_ms(double ms) {
    long long ns = (long long)(ms * 1e6);
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
}

/* A time bound of a test, stretched by REDILOCK_TEST_TIME_SCALE (and under valgrind). Bounds
 * check that something happens promptly; they are never what a test waits for. */
static inline double scaled_ms(double ms) {
    return ms * time_scale;
}

/* A bound as a duration argument of the ABI: whole milliseconds, rounded up. */
static inline int64_t scaled_ms_arg(double ms) {
    return (int64_t)(scaled_ms(ms) + 0.999);
}

/* How soon what the library does "within milliseconds" must show on a loaded machine: far
 * less than the minute after which a client of new_client_rechecking_rarely() looks again
 * (and than the 10 s safety net of a client with the default options). */
static inline double promptly_ms(void) {
    return scaled_ms(2000);
}

/* Polls `cond` until it holds; a failed check once a generous limit has passed. */
#define WAIT_UNTIL(cond)                                                                  \
    do {                                                                                  \
        double give_up_at_ = now_ms() + scaled_ms(20000);                                 \
        while (!(cond) && now_ms() < give_up_at_) sleep_ms(5);                            \
        check_that((cond), __FILE__, __LINE__, "WAIT_UNTIL(" #cond ")");                  \
    } while (0)

static inline redilock *new_client(void) {
    redilock *client = NULL;
    CHECK_STATUS(redilock_new(url, 10000, &client), REDILOCK_STATUS_OK);
    return client;
}

/* A client whose waiters look at a held lock on their own only once a minute (the retry
 * interval, a safety net: the default is 10 s): whatever ends a wait sooner (a release handing
 * the lock over, a cancel, close) is then what the test sees. */
static inline redilock *new_client_rechecking_rarely(void) {
    redilock_options *options = NULL;
    redilock *client = NULL;
    CHECK_STATUS(redilock_options_new(&options), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_retry_interval_ms(options, 60000), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_default_ttl_ms(options, 10000), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_new_with_options(url, options, &client), REDILOCK_STATUS_OK);
    redilock_options_free(options);
    return client;
}

/* Polls the remaining TTL of the lock `token` holds on `name` until it goes up, which only a
 * renewal makes it do; false once the lock is not held, or after a generous limit. */
static inline bool renewal_seen(redilock *client, const char *name, const char *token) {
    int64_t previous = INT64_MAX, remaining = 0;
    for (double give_up_at = now_ms() + scaled_ms(20000); now_ms() < give_up_at; sleep_ms(5)) {
        if (redilock_remaining_ttl(client, name, token, &remaining) != REDILOCK_STATUS_OK) return false;
        if (remaining < 0) return false; /* no expiry: nothing of ours would do that */
        if (remaining > previous) return true;
        previous = remaining;
    }
    return false;
}

/* Runs redis-cli against the test server with `arguments` (split by the shell: lock names in
 * these tests are plain words) and puts its first output line in `out`. */
static inline void redis_cli(const char *arguments, char *out, size_t out_len) {
    char command[512];
    snprintf(command, sizeof command, "redis-cli -u '%s' %s", url, arguments);
    out[0] = '\0';
    FILE *pipe = popen(command, "r");
    if (pipe == NULL) {
        report_failure(__FILE__, __LINE__, command);
        return;
    }
    if (fgets(out, (int)out_len, pipe) == NULL) out[0] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    while (fgetc(pipe) != EOF) {} /* the rest, so that redis-cli is not cut off mid-write */
    if (pclose(pipe) != 0) report_failure(__FILE__, __LINE__, command);
}

/* Runs `redis-cli -p PORT ARGUMENTS` (split by the shell: names here are plain words) against
 * one node, and returns how many lines it printed; the first goes to `first` ("" if none). */
static inline int redis_cli_on(int port, const char *arguments, char *first, size_t first_len) {
    char command[512], line[256];
    snprintf(command, sizeof command, "redis-cli -p %d %s", port, arguments);
    first[0] = '\0';
    FILE *pipe = popen(command, "r");
    if (pipe == NULL) {
        report_failure(__FILE__, __LINE__, command);
        return 0;
    }
    int lines = 0;
    while (fgets(line, sizeof line, pipe) != NULL) {
        if (lines++ == 0) { /* cut to fit, without its line break */
            size_t length = strcspn(line, "\r\n");
            if (length >= first_len) length = first_len - 1;
            memcpy(first, line, length);
            first[length] = '\0';
        }
    }
    if (pclose(pipe) != 0) report_failure(__FILE__, __LINE__, command);
    return lines;
}

/* redis-cli's integer reply to `command` on the key `name`. */
static inline long redis_integer(const char *command, const char *name) {
    char arguments[256], reply[64];
    snprintf(arguments, sizeof arguments, "%s '%s'", command, name);
    redis_cli(arguments, reply, sizeof reply);
    return strtol(reply, NULL, 10);
}

static inline bool key_exists(const char *name) {
    return redis_integer("EXISTS", name) == 1;
}

/* Deletes a lock's key behind its holder's back; the number of keys deleted. */
static inline long delete_key(const char *name) {
    return redis_integer("DEL", name);
}

/* The key of the queue of lock `name`, redilock:queue:{N}:<name> ("" when there is none). */
static inline void queue_key(const char *name, char *out, size_t out_len) {
    char arguments[256];
    snprintf(arguments, sizeof arguments, "--scan --pattern 'redilock:queue:*:%s'", name);
    redis_cli(arguments, out, out_len);
}

/* How many callers wait in the queue of lock `name`. */
static inline long queue_length(const char *name) {
    char key[128];
    queue_key(name, key, sizeof key);
    return key[0] == '\0' ? 0 : redis_integer("LLEN", key);
}

/* The entry at `index` of the queue of lock `name` ("" when there is none): a waiter's token,
 * 32 characters, immediately followed by the TTL in ms it asked for. */
static inline void queue_entry(const char *name, long index, char *out, size_t out_len) {
    char key[128], arguments[256];
    queue_key(name, key, sizeof key);
    out[0] = '\0';
    if (key[0] == '\0') return;
    snprintf(arguments, sizeof arguments, "LINDEX '%s' %ld", key, index);
    redis_cli(arguments, out, out_len);
}

/* Puts `entry` at the head of the queue of lock `name`, which must exist (someone waits). */
static inline void push_to_queue_head(const char *name, const char *entry) {
    char key[128], arguments[256], reply[64];
    queue_key(name, key, sizeof key);
    if (!CHECK(key[0] != '\0')) return;
    snprintf(arguments, sizeof arguments, "LPUSH '%s' '%s'", key, entry);
    redis_cli(arguments, reply, sizeof reply);
}

/* Whether `text` starts with the `n` characters of `prefix`. */
static inline bool starts_with(const char *text, const char *prefix, size_t n) {
    return strlen(text) >= n && strlen(prefix) >= n && strncmp(text, prefix, n) == 0;
}

#endif /* REDILOCK_TEST_SUPPORT_H */
