/* The C ABI as a C program sees it, against a real redis-server ($REDIS_URL from
 * tests/harness/with-redis). Every check prints what failed; the exit code is the count. */
#include "support.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

static void test_version_and_status_text(void) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", REDILOCK_VERSION_MAJOR, REDILOCK_VERSION_MINOR,
             REDILOCK_VERSION_PATCH);
    CHECK(strcmp(redilock_version(), expected) == 0);
    CHECK(strcmp(redilock_status_str(REDILOCK_STATUS_OK), "ok") == 0);
    CHECK(strstr(redilock_status_str(REDILOCK_STATUS_NOT_OWNER), "owner") != NULL);
    CHECK(strcmp(redilock_status_str(REDILOCK_STATUS_CLOSED), "client closed") == 0);
    CHECK(strcmp(redilock_status_str(12345), "unknown status") == 0);
    CHECK(redilock_last_error() != NULL);
    CHECK(REDILOCK_TOKEN_LEN == 33);
}

static void test_null_and_invalid_arguments(void) {
    redilock *client = new_client();
    char token[REDILOCK_TOKEN_LEN];
    redilock *out = (redilock *)&out; /* a failed constructor must reset it */

    CHECK_STATUS(redilock_new(NULL, 1000, &out), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK(out == NULL);
    CHECK_STATUS(redilock_new(url, 1000, NULL), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_new("http://nope", 1000, &out), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(redilock_new("redis://u:hunter2@[::bad", 1000, &out), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(redilock_last_error(), "hunter2") == NULL);
    CHECK(strstr(redilock_last_error(), "invalid Redis URL") != NULL);

    CHECK_STATUS(redilock_lock(NULL, "n", 0, 0, token, sizeof token), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_lock(client, NULL, 0, 0, token, sizeof token), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_lock(client, "n", 0, 0, NULL, sizeof token), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_lock(client, "", 0, 0, token, sizeof token), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(redilock_last_error(), "empty") != NULL);
    CHECK_STATUS(redilock_lock(client, "n", 0, -2, token, sizeof token), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(redilock_lock(client, "n", REDILOCK_MAX_TTL_MS + 1, 0, token, sizeof token),
                 REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(redilock_unlock(client, "n", NULL), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_unlock(client, NULL, "t"), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_unlock(NULL, "n", "t"), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_ping(NULL), REDILOCK_STATUS_NULL_ARGUMENT);

    /* A short buffer is refused before anything is sent: no lock is left behind. */
    char small[REDILOCK_TOKEN_LEN - 1];
    memset(small, 'x', sizeof small);
    CHECK_STATUS(redilock_lock(client, "short-buffer", 0, 0, small, sizeof small),
                 REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(small[0] == '\0');
    CHECK_STATUS(redilock_lock(client, "short-buffer", 0, 0, token, sizeof token), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_unlock(client, "short-buffer", token), REDILOCK_STATUS_OK);

    /* No default TTL and none passed: a TTL is mandatory. */
    redilock *no_default = NULL;
    CHECK_STATUS(redilock_new(url, 0, &no_default), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_lock(no_default, "n", 0, 0, token, sizeof token), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(redilock_last_error(), "TTL") != NULL);
    redilock_free(no_default);

    redilock_free(NULL);
    redilock_options_free(NULL);
    redilock_cancel_free(NULL);
    redilock_cancel_trigger(NULL);
    redilock_free(client);
}

static void test_lock_unlock_and_ownership(void) {
    redilock *client = new_client();
    char token[REDILOCK_TOKEN_LEN], other[REDILOCK_TOKEN_LEN];

    CHECK_STATUS(redilock_lock(client, "orders:42", 5000, REDILOCK_NO_WAIT, token, sizeof token),
                 REDILOCK_STATUS_OK);
    CHECK(strlen(token) == REDILOCK_TOKEN_LEN - 1);
    memset(other, 'x', sizeof other);
    CHECK_STATUS(redilock_lock(client, "orders:42", 5000, REDILOCK_NO_WAIT, other, sizeof other),
                 REDILOCK_STATUS_NOT_ACQUIRED);
    CHECK(other[0] == '\0');
    CHECK(strstr(redilock_last_error(), "lock 'orders:42' is held by another owner") != NULL);

    double start = now_ms();
    CHECK_STATUS(redilock_lock(client, "orders:42", 5000, 200, other, sizeof other), REDILOCK_STATUS_NOT_ACQUIRED);
    double waited = now_ms() - start;
    CHECK(waited >= 190 && waited < scaled_ms(3000));

    CHECK_STATUS(redilock_unlock(client, "orders:42", "0123456789abcdef0123456789abcdef"),
                 REDILOCK_STATUS_NOT_OWNER);
    CHECK_STATUS(redilock_unlock(client, "orders:42", token), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_unlock(client, "orders:42", token), REDILOCK_STATUS_NOT_OWNER);

    const char *names[] = {"a:b", "{braces}", "with space", "\xc3\xbcnicode-\xe9\x94\x81"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        CHECK_STATUS(redilock_lock(client, names[i], 5000, 0, token, sizeof token), REDILOCK_STATUS_OK);
        CHECK_STATUS(redilock_unlock(client, names[i], token), REDILOCK_STATUS_OK);
    }
    redilock_free(client);
}

static void count_drop(void *data) {
    __atomic_add_fetch((int *)data, 1, __ATOMIC_SEQ_CST);
}

static void test_options(void) {
    redilock_options *options = NULL;
    CHECK_STATUS(redilock_options_new(&options), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_new(NULL), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_options_set_retry_interval_ms(options, 0), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(redilock_options_set_retry_interval_ms(options, 20), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_connect_timeout_ms(options, 0), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(redilock_options_set_connect_timeout_ms(options, 500), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_command_timeout_ms(options, 500), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_default_ttl_ms(options, REDILOCK_MAX_TTL_MS + 1),
                 REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(redilock_options_set_default_ttl_ms(options, 3000), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_key_prefix(options, NULL), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_options_set_key_prefix(options, "app:"), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_retry_interval_ms(NULL, 1), REDILOCK_STATUS_NULL_ARGUMENT);

    redilock *client = NULL, *plain = NULL;
    CHECK_STATUS(redilock_new_with_options(url, options, &client), REDILOCK_STATUS_OK);
    redilock_options_free(options); /* copied by the constructor */
    CHECK_STATUS(redilock_new_with_options(url, NULL, &plain), REDILOCK_STATUS_OK);

    char token[REDILOCK_TOKEN_LEN], other[REDILOCK_TOKEN_LEN];
    CHECK_STATUS(redilock_lock(client, "job", 0, 0, token, sizeof token), REDILOCK_STATUS_OK);
    /* The prefixed key is "app:job": the unprefixed client sees it under that name. */
    CHECK_STATUS(redilock_lock(plain, "app:job", 1000, 0, other, sizeof other), REDILOCK_STATUS_NOT_ACQUIRED);
    CHECK_STATUS(redilock_lock(plain, "job", 1000, 0, other, sizeof other), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_unlock(plain, "job", other), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_unlock(client, "job", token), REDILOCK_STATUS_OK);
    redilock_free(plain);
    redilock_free(client);
}

static bool last_error_says(const char *words) {
    return strstr(redilock_last_error(), words) != NULL;
}

/* Replica acknowledgement: the arguments, the refusal of a WAIT timeout that does not fit inside
 * the command timeout, and NOT_REPLICATED from a Redis that has no replica to acknowledge. */
static void test_replica_acks(void) {
    CHECK(REDILOCK_STATUS_NOT_REPLICATED == 303);
    CHECK(strcmp(redilock_status_str(REDILOCK_STATUS_NOT_REPLICATED),
                 "lock write not acknowledged by enough replicas") == 0);
    redilock_options *options = NULL;
    CHECK_STATUS(redilock_options_new(&options), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_replica_acks(NULL, 1, 0), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_options_set_replica_acks(options, -2, 0), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(last_error_says("REDILOCK_REPLICA_ACKS_AUTO (-1), 0 (off) or positive, not -2"));
    CHECK_STATUS(redilock_options_set_replica_acks(options, INT32_MIN, 0), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(redilock_options_set_replica_acks(options, 1, -1), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(last_error_says("negative"));
    CHECK_STATUS(redilock_options_set_replica_acks(options, REDILOCK_REPLICA_ACKS_AUTO, 0), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_replica_acks(options, INT32_MAX, 0), REDILOCK_STATUS_OK);

    /* WAIT and the write share one command timeout: a WAIT as long as it is refused. */
    redilock *client = (redilock *)&client;
    CHECK_STATUS(redilock_options_set_command_timeout_ms(options, 500), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_replica_acks(options, 1, 500), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_new_with_options(url, options, &client), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(client == NULL);
    CHECK(last_error_says("must be shorter than the command timeout (500 ms)"));

    /* The test Redis has no replica: one required is never there. */
    CHECK_STATUS(redilock_options_set_replica_acks(options, 1, 50), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_new_with_options(url, options, &client), REDILOCK_STATUS_OK);
    char token[REDILOCK_TOKEN_LEN];
    CHECK_STATUS(redilock_lock(client, "acks:job", 5000, REDILOCK_NO_WAIT, token, sizeof token),
                 REDILOCK_STATUS_NOT_REPLICATED);
    CHECK(token[0] == '\0');
    CHECK(last_error_says("acknowledged by 0 of the 1 replicas required within 50 ms"));
    redilock_free(client);

    /* Off: no WAIT at all. */
    CHECK_STATUS(redilock_options_set_replica_acks(options, 0, 0), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_new_with_options(url, options, &client), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_lock(client, "acks:job", 5000, REDILOCK_NO_WAIT, token, sizeof token),
                 REDILOCK_STATUS_OK); /* and so the failed call above left nothing held */
    CHECK_STATUS(redilock_unlock(client, "acks:job", token), REDILOCK_STATUS_OK);
    redilock_free(client);
    redilock_options_free(options);
}

/* The TLS options and the TLS status. Handshakes with TLS servers (certificates, mutual TLS)
 * are tested from Rust: crates/redilock/tests/tls.rs, and through this ABI in
 * crates/redilock-ffi. The constructor reads the files and names the one it cannot use. */
static void test_tls_options(void) {
    CHECK(strcmp(redilock_status_str(REDILOCK_STATUS_TLS), "TLS handshake with Redis failed") == 0);
    CHECK_STATUS(redilock_options_set_tls_ca_file(NULL, "ca.pem"), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_options_set_tls_client_cert_file(NULL, "client.pem", "client.key"),
                 REDILOCK_STATUS_NULL_ARGUMENT);

    redilock_options *options = NULL;
    redilock *client = (redilock *)&client; /* a failed constructor must reset it */
    CHECK_STATUS(redilock_options_new(&options), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_tls_client_cert_file(options, "client.pem", NULL),
                 REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_options_set_tls_client_cert_file(options, "/nonexistent/client.pem", "client.key"),
                 REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_new_with_options("rediss://127.0.0.1", options, &client), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(client == NULL);
    CHECK(last_error_says("/nonexistent/client.pem"));
    /* Certificates with a plain URL would send in the clear what was meant to be encrypted. */
    CHECK_STATUS(redilock_new_with_options(url, options, &client), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(last_error_says("not rediss://"));
    CHECK_STATUS(redilock_options_set_tls_client_cert_file(options, NULL, NULL), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_tls_ca_file(options, "/nonexistent/ca.pem"), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_new_with_options("rediss://127.0.0.1", options, &client), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(last_error_says("/nonexistent/ca.pem"));
    CHECK_STATUS(redilock_options_set_tls_ca_file(options, NULL), REDILOCK_STATUS_OK); /* NULL clears */

    /* A TLS client on the test server's plain port gets no TLS answer: TLS, within the
     * connect timeout. #insecure: no certificate is needed to try. */
    char tls_url[256];
    snprintf(tls_url, sizeof tls_url, "rediss://%s#insecure", strstr(url, "://") + 3);
    CHECK_STATUS(redilock_options_set_connect_timeout_ms(options, scaled_ms_arg(300)), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_new_with_options(tls_url, options, &client), REDILOCK_STATUS_OK);
    double started = now_ms();
    CHECK_STATUS(redilock_ping(client), REDILOCK_STATUS_TLS);
    CHECK(last_error_says("is it a TLS port?"));
    CHECK(now_ms() - started < scaled_ms(1500));
    redilock_free(client);
    redilock_options_free(options);
}

/* Every duration of the ABI is a signed int64_t of milliseconds, and the library itself refuses
 * a negative one: INVALID_ARGUMENT, a message that says so, nothing sent, no lock left. */
static void test_negative_durations_are_refused(void) {
    redilock *client = new_client();
    redilock_options *options = NULL;
    CHECK_STATUS(redilock_options_new(&options), REDILOCK_STATUS_OK);
    char token[REDILOCK_TOKEN_LEN], held[REDILOCK_TOKEN_LEN];
    CHECK_STATUS(redilock_lock(client, "negative-held", 60000, 0, held, sizeof held), REDILOCK_STATUS_OK);
    const int64_t negatives[] = {-1, -1000, INT64_MIN};
    for (size_t i = 0; i < sizeof negatives / sizeof *negatives; i++) {
        int64_t ms = negatives[i];

        redilock *out = NULL;
        CHECK_STATUS(redilock_new(url, ms, &out), REDILOCK_STATUS_INVALID_ARGUMENT);
        CHECK(last_error_says("negative"));
        CHECK(out == NULL);

        memset(token, 'x', sizeof token);
        CHECK_STATUS(redilock_lock(client, "negative", ms, REDILOCK_NO_WAIT, token, sizeof token),
                     REDILOCK_STATUS_INVALID_ARGUMENT);
        CHECK(last_error_says("negative") && last_error_says("TTL"));
        CHECK(token[0] == '\0');
        CHECK_STATUS(redilock_lock(client, "negative", ms, REDILOCK_WAIT_FOREVER, token, sizeof token),
                     REDILOCK_STATUS_INVALID_ARGUMENT);
        CHECK(last_error_says("negative"));

        /* -1 waits forever; below it nothing is a wait. */
        if (ms < REDILOCK_WAIT_FOREVER) {
            memset(token, 'x', sizeof token);
            CHECK_STATUS(redilock_lock(client, "negative", 5000, ms, token, sizeof token),
                         REDILOCK_STATUS_INVALID_ARGUMENT);
            CHECK(last_error_says("timeout"));
            CHECK(token[0] == '\0');
            /* Not even when the lock is held: refused at once, not a wait of some length. */
            double start = now_ms();
            CHECK_STATUS(redilock_lock(client, "negative-held", 5000, ms, token, sizeof token),
                         REDILOCK_STATUS_INVALID_ARGUMENT);
            CHECK(now_ms() - start < promptly_ms());
            CHECK(queue_length("negative-held") == 0);
        }

        CHECK_STATUS(redilock_options_set_retry_interval_ms(options, ms), REDILOCK_STATUS_INVALID_ARGUMENT);
        CHECK(last_error_says("negative") && last_error_says("retry interval"));
        CHECK_STATUS(redilock_options_set_connect_timeout_ms(options, ms), REDILOCK_STATUS_INVALID_ARGUMENT);
        CHECK(last_error_says("negative") && last_error_says("connect timeout"));
        CHECK_STATUS(redilock_options_set_command_timeout_ms(options, ms), REDILOCK_STATUS_INVALID_ARGUMENT);
        CHECK(last_error_says("negative") && last_error_says("command timeout"));
        CHECK_STATUS(redilock_options_set_default_ttl_ms(options, ms), REDILOCK_STATUS_INVALID_ARGUMENT);
        CHECK(last_error_says("negative") && last_error_says("TTL"));

        CHECK_STATUS(redilock_extend(client, "negative-held", held, ms), REDILOCK_STATUS_INVALID_ARGUMENT);
        CHECK(last_error_says("negative") && last_error_says("TTL"));

        /* The parameters of lock_ex: the refusal also hands the data back through its drop. */
        int drops = 0;
        redilock_lock_params params;
        CHECK_STATUS(redilock_lock_params_init(&params), REDILOCK_STATUS_OK);
        params.auto_renew = true;
        params.max_hold_ms = ms;
        params.on_lost_data = &drops;
        params.on_lost_data_drop = count_drop;
        memset(token, 'x', sizeof token);
        CHECK_STATUS(redilock_lock_ex(client, "negative", 5000, REDILOCK_NO_WAIT, &params, token, sizeof token, NULL),
                     REDILOCK_STATUS_INVALID_ARGUMENT);
        CHECK(last_error_says("negative") && last_error_says("hold"));
        CHECK(token[0] == '\0');
        CHECK(__atomic_load_n(&drops, __ATOMIC_SEQ_CST) == 1);
        params.max_hold_ms = 0;
        params.on_lost_data_drop = NULL;
        CHECK_STATUS(redilock_lock_ex(client, "negative", ms, REDILOCK_NO_WAIT, &params, token, sizeof token, NULL),
                     REDILOCK_STATUS_INVALID_ARGUMENT);
        CHECK(last_error_says("negative"));
        CHECK(!key_exists("negative"));
    }
    /* The refused setters changed nothing: a client made with these options has no default TTL. */
    redilock *defaults = NULL;
    CHECK_STATUS(redilock_new_with_options(url, options, &defaults), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_lock(defaults, "negative", 0, 0, token, sizeof token), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(last_error_says("TTL")); /* no default TTL */
    redilock_free(defaults);
    redilock_options_free(options);

    /* The refused extends left the lock as it was. */
    int64_t remaining = 0;
    CHECK_STATUS(redilock_remaining_ttl(client, "negative-held", held, &remaining), REDILOCK_STATUS_OK);
    CHECK(remaining > 0 && remaining <= 60000);
    CHECK_STATUS(redilock_unlock(client, "negative-held", held), REDILOCK_STATUS_OK);
    CHECK(!key_exists("negative"));
    redilock_free(client);
}

/* Triggers `signal` once somebody waits in the queue of lock `name`. */
struct queued_cancel {
    const char *name;
    redilock_cancel *signal;
};

static void *cancel_when_queued(void *arg) {
    struct queued_cancel *cancel = arg;
    WAIT_UNTIL(queue_length(cancel->name) == 1);
    redilock_cancel_trigger(cancel->signal);
    return NULL;
}

/* A binding converts its unit to milliseconds saturating at INT64_MAX: that is a valid wait,
 * interval and hold (as good as forever), and a TTL refused as too large, not an overflow. */
static void test_saturated_durations(void) {
    redilock_options *options = NULL;
    CHECK_STATUS(redilock_options_new(&options), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_retry_interval_ms(options, INT64_MAX), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_connect_timeout_ms(options, INT64_MAX), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_command_timeout_ms(options, INT64_MAX), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_default_ttl_ms(options, INT64_MAX), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(last_error_says("at most"));
    CHECK_STATUS(redilock_options_set_default_ttl_ms(options, REDILOCK_MAX_TTL_MS), REDILOCK_STATUS_OK);
    redilock *client = NULL, *out = NULL;
    CHECK_STATUS(redilock_new_with_options(url, options, &client), REDILOCK_STATUS_OK);
    redilock_options_free(options);
    CHECK_STATUS(redilock_new(url, INT64_MAX, &out), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(out == NULL);

    char token[REDILOCK_TOKEN_LEN], other[REDILOCK_TOKEN_LEN];
    int64_t remaining = 0;
    CHECK_STATUS(redilock_lock(client, "saturated", INT64_MAX, 0, token, sizeof token),
                 REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(last_error_says("at most"));
    CHECK(!key_exists("saturated"));
    CHECK_STATUS(redilock_lock(client, "saturated", 0, INT64_MAX, token, sizeof token), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_remaining_ttl(client, "saturated", token, &remaining), REDILOCK_STATUS_OK);
    CHECK(remaining > REDILOCK_MAX_TTL_MS - 60000 && remaining <= REDILOCK_MAX_TTL_MS);
    CHECK_STATUS(redilock_extend(client, "saturated", token, INT64_MAX), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(last_error_says("at most"));
    CHECK_STATUS(redilock_extend(client, "saturated", token, 5000), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_remaining_ttl(client, "saturated", token, &remaining), REDILOCK_STATUS_OK);
    CHECK(remaining > 0 && remaining <= 5000);
    /* A wait of INT64_MAX ms on a held lock is a wait, in line, ended here by a cancel. */
    struct queued_cancel cancel = {.name = "saturated"};
    CHECK_STATUS(redilock_cancel_new(&cancel.signal), REDILOCK_STATUS_OK);
    pthread_t canceller;
    pthread_create(&canceller, NULL, cancel_when_queued, &cancel);
    CHECK_STATUS(redilock_lock_cancellable(client, "saturated", 1000, INT64_MAX, cancel.signal, other, sizeof other),
                 REDILOCK_STATUS_CANCELLED);
    pthread_join(canceller, NULL);
    redilock_cancel_free(cancel.signal);
    WAIT_UNTIL(queue_length("saturated") == 0); /* given back at once, or soon after in the background */
    CHECK_STATUS(redilock_unlock(client, "saturated", token), REDILOCK_STATUS_OK);

    redilock_lock_params params;
    CHECK_STATUS(redilock_lock_params_init(&params), REDILOCK_STATUS_OK);
    params.auto_renew = true;
    params.max_hold_ms = INT64_MAX;
    CHECK_STATUS(redilock_lock_ex(client, "saturated", 60000, 0, &params, token, sizeof token, NULL),
                 REDILOCK_STATUS_OK);
    bool lost = true;
    CHECK_STATUS(redilock_renewal_wait(client, token, 1, NULL, &lost), REDILOCK_STATUS_OK);
    CHECK(!lost);
    CHECK_STATUS(redilock_unlock(client, "saturated", token), REDILOCK_STATUS_OK);
    redilock_free(client);
}

struct shared_counter {
    redilock *client;
    long counter; /* deliberately not atomic: the lock is what protects it */
    int overlaps;
    int inside;
    int iterations;
    int errors;
};

static void *count_under_lock(void *arg) {
    struct shared_counter *shared = arg;
    char token[REDILOCK_TOKEN_LEN];
    for (int i = 0; i < shared->iterations; i++) {
        if (redilock_lock(shared->client, "counter", 5000, REDILOCK_WAIT_FOREVER, token, sizeof token) !=
            REDILOCK_STATUS_OK) {
            __atomic_add_fetch(&shared->errors, 1, __ATOMIC_SEQ_CST);
            continue;
        }
        if (__atomic_add_fetch(&shared->inside, 1, __ATOMIC_SEQ_CST) != 1)
            __atomic_add_fetch(&shared->overlaps, 1, __ATOMIC_SEQ_CST);
        long seen = shared->counter;
        sched_yield();
        shared->counter = seen + 1;
        __atomic_sub_fetch(&shared->inside, 1, __ATOMIC_SEQ_CST);
        if (redilock_unlock(shared->client, "counter", token) != REDILOCK_STATUS_OK)
            __atomic_add_fetch(&shared->errors, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void test_threads_share_one_client(void) {
    enum { THREADS = 8 };
    struct shared_counter shared = {.client = new_client(), .iterations = under_valgrind ? 10 : 100};
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, count_under_lock, &shared);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    CHECK(shared.errors == 0);
    CHECK(shared.overlaps == 0);
    CHECK(shared.counter == (long)THREADS * shared.iterations);
    redilock_free(shared.client);
}

/* Leaves a forked child through exec: the heap it inherited points into the parent's thread
 * stacks, which do not exist here, so a leak checker would misjudge it at exit. */
static void exit_child(int status) {
    char code[16];
    snprintf(code, sizeof code, "exit %d", status);
    execl("/bin/sh", "sh", "-c", code, (char *)NULL);
    _exit(status);
}

static void test_fork(void) {
    redilock *parent = new_client();
    char parent_token[REDILOCK_TOKEN_LEN];
    CHECK_STATUS(redilock_lock(parent, "fork-a", 5000, 0, parent_token, sizeof parent_token), REDILOCK_STATUS_OK);
    int pipe_fds[2];
    CHECK(pipe(pipe_fds) == 0);
    pid_t child = fork();
    if (child == 0) {
        char token[REDILOCK_TOKEN_LEN] = "";
        int status = 0;
        /* The parent's handle refuses to work here; a new one works; freeing the old is safe. */
        if (redilock_lock(parent, "fork-b", 5000, 0, token, sizeof token) != REDILOCK_STATUS_WRONG_PROCESS)
            status |= 1;
        redilock_free(parent);
        redilock *mine = NULL;
        if (redilock_new(url, 5000, &mine) != REDILOCK_STATUS_OK) status |= 2;
        if (redilock_lock(mine, "fork-b", 5000, 0, token, sizeof token) != REDILOCK_STATUS_OK) status |= 4;
        if (write(pipe_fds[1], token, sizeof token) != (ssize_t)sizeof token) status |= 8;
        redilock_unlock(mine, "fork-b", token);
        redilock_free(mine);
        exit_child(status);
    }
    char child_token[REDILOCK_TOKEN_LEN] = "";
    CHECK(read(pipe_fds[0], child_token, sizeof child_token) == (ssize_t)sizeof child_token);
    int status = -1;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strlen(child_token) == REDILOCK_TOKEN_LEN - 1);
    CHECK(strcmp(child_token, parent_token) != 0);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    CHECK_STATUS(redilock_unlock(parent, "fork-a", parent_token), REDILOCK_STATUS_OK);
    redilock_free(parent);
}

/* The release of lock `name` on a thread of its own, once the waiter is in the queue (behind
 * `queued_ahead` others), after `dead_entry` (when not NULL) was put in front of everyone. */
struct release_args {
    const char *name;
    const char *token; /* the holder's */
    long queued_ahead;
    const char *dead_entry;
    char entry[64]; /* the waiter's queue entry, as it was before the release */
    double released_at;
};

static void *release_when_queued(void *arg) {
    struct release_args *a = arg;
    redilock *releaser = new_client();
    CHECK_STATUS(redilock_ping(releaser), REDILOCK_STATUS_OK); /* connected before the clock starts */
    WAIT_UNTIL(queue_length(a->name) == a->queued_ahead + 1);
    queue_entry(a->name, a->queued_ahead, a->entry, sizeof a->entry);
    if (a->dead_entry != NULL) {
        push_to_queue_head(a->name, a->dead_entry);
        CHECK(queue_length(a->name) == a->queued_ahead + 2);
    }
    a->released_at = now_ms();
    CHECK_STATUS(redilock_unlock(releaser, a->name, a->token), REDILOCK_STATUS_OK);
    redilock_free(releaser);
    return NULL;
}

/* A waiter that looks at the lock on its own only once a minute is handed `name`, held with
 * `holder_token` under `holder_fence`, by its release: within a second, whoever else was in
 * line ahead of it, with the next fencing number. */
static void check_release_hands_over(const char *name, const char *holder_token, uint64_t holder_fence,
                                     long queued_ahead, const char *dead_entry) {
    redilock *waiter = new_client_rechecking_rarely();
    CHECK_STATUS(redilock_ping(waiter), REDILOCK_STATUS_OK);
    struct release_args release = {.name = name, .token = holder_token, .queued_ahead = queued_ahead,
                                   .dead_entry = dead_entry};
    pthread_t releaser;
    pthread_create(&releaser, NULL, release_when_queued, &release);
    char token[REDILOCK_TOKEN_LEN];
    uint64_t fence = 0;
    redilock_status status =
        redilock_lock_ex(waiter, name, 5000, scaled_ms_arg(20000), NULL, token, sizeof token, &fence);
    double acquired_at = now_ms();
    pthread_join(releaser, NULL);
    CHECK_STATUS(status, REDILOCK_STATUS_OK);
    CHECK(acquired_at - release.released_at < scaled_ms(1000));
    CHECK(fence > holder_fence);
    /* Its place in the queue was its token followed by the TTL it asked for. */
    CHECK(strlen(release.entry) == REDILOCK_TOKEN_LEN - 1 + strlen("5000"));
    CHECK(starts_with(release.entry, token, REDILOCK_TOKEN_LEN - 1));
    CHECK(strcmp(release.entry + REDILOCK_TOKEN_LEN - 1, "5000") == 0);
    /* Handed over under its own TTL, and nobody is left in line. */
    int64_t remaining = 0;
    CHECK_STATUS(redilock_remaining_ttl(waiter, name, token, &remaining), REDILOCK_STATUS_OK);
    CHECK(remaining > 0 && remaining <= 5000);
    CHECK(queue_length(name) == 0);
    CHECK_STATUS(redilock_unlock(waiter, name, token), REDILOCK_STATUS_OK);
    CHECK(!key_exists(name));
    redilock_free(waiter);
}

/* The holder's TTL is far beyond the bound: the first in line, which watches it, plays no part. */
static void test_release_hands_the_lock_to_the_waiter(void) {
    redilock *holder = new_client();
    char token[REDILOCK_TOKEN_LEN];
    uint64_t fence = 0;
    CHECK_STATUS(redilock_lock_ex(holder, "hand-over", 60000, 0, NULL, token, sizeof token, &fence),
                 REDILOCK_STATUS_OK);
    check_release_hands_over("hand-over", token, fence, 0, NULL);
    redilock_free(holder);
}

/* An entry of a client that listens nowhere (as if it crashed while waiting) is first in line
 * at the release: the release skips it. */
static void test_a_dead_waiter_is_skipped(void) {
    redilock *holder = new_client();
    char token[REDILOCK_TOKEN_LEN];
    uint64_t fence = 0;
    CHECK_STATUS(redilock_lock_ex(holder, "dead-waiter", 60000, 0, NULL, token, sizeof token, &fence),
                 REDILOCK_STATUS_OK);
    /* 16 hex characters naming a client nobody runs, 16 of a lock call, a TTL. */
    check_release_hands_over("dead-waiter", token, fence, 0, "00000000dead0000" "0123456789abcdef" "5000");
    redilock_free(holder);
}

/* The same with a real crash: a process killed while it waits, first in line. */
static void test_a_crashed_waiter_is_skipped(void) {
    redilock *holder = new_client();
    char token[REDILOCK_TOKEN_LEN];
    uint64_t fence = 0;
    CHECK_STATUS(redilock_lock_ex(holder, "crashed-waiter", 60000, 0, NULL, token, sizeof token, &fence),
                 REDILOCK_STATUS_OK);
    pid_t child = fork();
    if (child == 0) {
        redilock *mine = NULL;
        char taken[REDILOCK_TOKEN_LEN];
        if (redilock_new(url, 5000, &mine) == REDILOCK_STATUS_OK)
            redilock_lock(mine, "crashed-waiter", 5000, REDILOCK_WAIT_FOREVER, taken, sizeof taken);
        exit_child(1); /* not reached: killed while waiting */
    }
    WAIT_UNTIL(queue_length("crashed-waiter") == 1);
    char entry[64], arguments[128], channel[64];
    queue_entry("crashed-waiter", 0, entry, sizeof entry);
    CHECK(strlen(entry) > 16);
    snprintf(arguments, sizeof arguments, "PUBSUB CHANNELS 'redilock:wake:%.16s'", entry);
    redis_cli(arguments, channel, sizeof channel);
    CHECK(channel[0] != '\0'); /* its client listens while it waits */
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* Redis has seen its connections close. */
    WAIT_UNTIL((redis_cli(arguments, channel, sizeof channel), channel[0] == '\0'));
    CHECK(queue_length("crashed-waiter") == 1); /* still in line */
    check_release_hands_over("crashed-waiter", token, fence, 1, NULL);
    redilock_free(holder);
}

struct cancel_args {
    redilock *client;
    redilock_cancel *cancel;
    redilock_status status;
    double returned_at;
};

static void *wait_cancellable(void *arg) {
    struct cancel_args *a = arg;
    char token[REDILOCK_TOKEN_LEN];
    a->status = redilock_lock_cancellable(a->client, "cancel", 5000, REDILOCK_WAIT_FOREVER, a->cancel, token,
                                          sizeof token);
    a->returned_at = now_ms();
    return NULL;
}

static void test_cancel(void) {
    struct cancel_args args = {.client = new_client_rechecking_rarely()};
    char token[REDILOCK_TOKEN_LEN];
    CHECK_STATUS(redilock_cancel_new(&args.cancel), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_cancel_new(NULL), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_lock_cancellable(args.client, "cancel", 5000, 0, NULL, token, sizeof token),
                 REDILOCK_STATUS_NULL_ARGUMENT);
    /* Held far beyond the bound: the waiter, first in line, would take it at its expiry. */
    CHECK_STATUS(redilock_lock(args.client, "cancel", 60000, 0, token, sizeof token), REDILOCK_STATUS_OK);
    pthread_t thread;
    pthread_create(&thread, NULL, wait_cancellable, &args);
    WAIT_UNTIL(queue_length("cancel") == 1);
    double cancelled_at = now_ms();
    redilock_cancel_trigger(args.cancel);
    pthread_join(thread, NULL);
    CHECK_STATUS(args.status, REDILOCK_STATUS_CANCELLED);
    CHECK(args.returned_at - cancelled_at < promptly_ms());
    CHECK_STATUS(redilock_unlock(args.client, "cancel", token), REDILOCK_STATUS_OK);

    /* A cancel already triggered wins even over a free lock: nothing is sent, nothing taken. */
    memset(token, 'x', sizeof token);
    CHECK_STATUS(redilock_lock_cancellable(args.client, "cancel-early", 5000, 0, args.cancel, token, sizeof token),
                 REDILOCK_STATUS_CANCELLED);
    CHECK(token[0] == '\0');
    CHECK(!key_exists("cancel-early"));
    redilock_cancel_free(args.cancel);
    redilock_free(args.client);
}

static void test_unreachable_server(void) {
    redilock_options *options = NULL;
    redilock_options_new(&options);
    redilock_options_set_connect_timeout_ms(options, 300);
    redilock *client = NULL;
    /* Port 1 on loopback: nothing listens there. */
    CHECK_STATUS(redilock_new_with_options("redis://127.0.0.1:1", options, &client), REDILOCK_STATUS_OK);
    redilock_options_free(options);
    char token[REDILOCK_TOKEN_LEN];
    double start = now_ms();
    CHECK_STATUS(redilock_lock(client, "n", 1000, REDILOCK_WAIT_FOREVER, token, sizeof token),
                 REDILOCK_STATUS_CONNECTION);
    CHECK(now_ms() - start < scaled_ms(2000));
    CHECK(strstr(redilock_last_error(), "127.0.0.1:1") != NULL);
    CHECK_STATUS(redilock_ping(client), REDILOCK_STATUS_CONNECTION);
    redilock_free(client);
}

static void test_extend_and_remaining_ttl(void) {
    redilock *client = new_client();
    char token[REDILOCK_TOKEN_LEN];
    int64_t remaining = 0;
    CHECK_STATUS(redilock_lock(client, "lease", 2000, 0, token, sizeof token), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_extend(client, "lease", token, 60000), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_remaining_ttl(client, "lease", token, &remaining), REDILOCK_STATUS_OK);
    CHECK(remaining > 50000 && remaining <= 60000);
    CHECK_STATUS(redilock_extend(client, "lease", token, 0), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(redilock_extend(client, "lease", token, REDILOCK_MAX_TTL_MS + 1), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(redilock_extend(client, "lease", "someone-else", 1000), REDILOCK_STATUS_NOT_OWNER);
    remaining = 12345;
    CHECK_STATUS(redilock_remaining_ttl(client, "lease", "someone-else", &remaining), REDILOCK_STATUS_NOT_OWNER);
    CHECK(strstr(redilock_last_error(), "lease") != NULL);
    CHECK_STATUS(redilock_remaining_ttl(client, "lease", "0123456789abcdef0123456789abcdef", &remaining),
                 REDILOCK_STATUS_NOT_OWNER);
    CHECK_STATUS(redilock_remaining_ttl(client, "lease", token, NULL), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_remaining_ttl(client, "lease", NULL, &remaining), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_remaining_ttl(client, NULL, token, &remaining), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_remaining_ttl(NULL, "lease", token, &remaining), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_extend(client, "lease", NULL, 1000), REDILOCK_STATUS_NULL_ARGUMENT);

    /* A key without expiry (only other software makes one): -1, and still this token's. */
#ifdef REDILOCK_NO_EXPIRY
    _Static_assert(REDILOCK_NO_EXPIRY == -1, "-1 means no expiry");
#endif
    CHECK(redis_integer("PERSIST", "lease") == 1);
    CHECK_STATUS(redilock_remaining_ttl(client, "lease", token, &remaining), REDILOCK_STATUS_OK);
    CHECK(remaining == -1);
    CHECK_STATUS(redilock_remaining_ttl(client, "lease", "someone-else", &remaining), REDILOCK_STATUS_NOT_OWNER);
    CHECK_STATUS(redilock_extend(client, "lease", token, 60000), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_remaining_ttl(client, "lease", token, &remaining), REDILOCK_STATUS_OK);
    CHECK(remaining > 50000 && remaining <= 60000);

    CHECK_STATUS(redilock_unlock(client, "lease", token), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_extend(client, "lease", token, 1000), REDILOCK_STATUS_NOT_OWNER);
    CHECK_STATUS(redilock_remaining_ttl(client, "lease", token, &remaining), REDILOCK_STATUS_NOT_OWNER);
    CHECK(!key_exists("lease"));
    redilock_free(client);
}

/* Fencing numbers strictly increase with every acquisition of a name, whoever takes it and
 * however the previous holder let go. They start near the Redis clock in microseconds (so
 * that they keep increasing across a restart that lost the data), never at 1. */
static void test_fencing(void) {
    redilock *clients[] = {new_client(), new_client()};
    char token[REDILOCK_TOKEN_LEN];
    uint64_t previous = 0, fence = 0;
    for (int i = 0; i < 6; i++) {
        redilock *client = clients[i % 2];
        CHECK_STATUS(redilock_lock_ex(client, "fenced", 5000, 0, NULL, token, sizeof token, &fence),
                     REDILOCK_STATUS_OK);
        CHECK(fence > previous);
        if (i == 0) CHECK(fence >= 1000000000000000ULL);
        previous = fence;
        if (i % 3 == 2) {
            CHECK(delete_key("fenced") == 1); /* gone without an unlock, as an expiry does it */
        } else {
            CHECK_STATUS(redilock_unlock(client, "fenced", token), REDILOCK_STATUS_OK);
        }
    }
    redilock_free(clients[0]);
    redilock_free(clients[1]);
}

static void note_loss(void *user_data, const char *name) {
    if (strcmp(name, "renewed") == 0) __atomic_store_n((int *)user_data, 1, __ATOMIC_SEQ_CST);
}

static void test_auto_renewal(void) {
    redilock *client = new_client();
    char token[REDILOCK_TOKEN_LEN], other[REDILOCK_TOKEN_LEN];
    int lost = 0;
    bool lost_flag = true;
    redilock_lock_params params;
    CHECK_STATUS(redilock_lock_params_init(NULL), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_lock_params_init(&params), REDILOCK_STATUS_OK);
    params.auto_renew = true;
    params.on_lost = note_loss;
    params.on_lost_data = &lost;

    /* Renewed four times, each a third of its TTL after the last, so held past its TTL; then
     * released. */
    CHECK_STATUS(redilock_lock_ex(client, "renewed", scaled_ms_arg(900), 0, &params, token, sizeof token, NULL),
                 REDILOCK_STATUS_OK);
    for (int i = 0; i < 4; i++) {
        CHECK(renewal_seen(client, "renewed", token));
        CHECK_STATUS(redilock_lock(client, "renewed", 200, 0, other, sizeof other), REDILOCK_STATUS_NOT_ACQUIRED);
    }
    CHECK_STATUS(redilock_renewal_lost(client, token, &lost_flag), REDILOCK_STATUS_OK);
    CHECK(!lost_flag);
    CHECK_STATUS(redilock_unlock(client, "renewed", token), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_renewal_lost(client, token, &lost_flag), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(__atomic_load_n(&lost, __ATOMIC_SEQ_CST) == 0);

    /* A failed acquisition starts no renewal. */
    CHECK_STATUS(redilock_lock(client, "renewed", 5000, 0, other, sizeof other), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_lock_ex(client, "renewed", 200, 0, &params, token, sizeof token, NULL),
                 REDILOCK_STATUS_NOT_ACQUIRED);
    CHECK(token[0] == '\0');
    CHECK_STATUS(redilock_unlock(client, "renewed", other), REDILOCK_STATUS_OK);

    /* A capped hold runs out: the callback fires and unlock reports NOT_OWNER. */
    params.max_hold_ms = 300;
    CHECK_STATUS(redilock_lock_ex(client, "renewed", 200, 0, &params, token, sizeof token, NULL), REDILOCK_STATUS_OK);
    WAIT_UNTIL(__atomic_load_n(&lost, __ATOMIC_SEQ_CST) == 1);
    CHECK_STATUS(redilock_renewal_lost(client, token, &lost_flag), REDILOCK_STATUS_OK);
    CHECK(lost_flag);
    CHECK_STATUS(redilock_unlock(client, "renewed", token), REDILOCK_STATUS_NOT_OWNER);
    redilock_free(client);
}

int main(void) {
    if (!test_setup()) return 2;
    test_version_and_status_text();
    test_null_and_invalid_arguments();
    test_lock_unlock_and_ownership();
    test_options();
    test_tls_options();
    test_negative_durations_are_refused();
    test_replica_acks();
    test_saturated_durations();
    test_threads_share_one_client();
    test_fork();
    test_release_hands_the_lock_to_the_waiter();
    test_a_dead_waiter_is_skipped();
    test_a_crashed_waiter_is_skipped();
    test_cancel();
    test_unreachable_server();
    test_extend_and_remaining_ttl();
    test_fencing();
    test_auto_renewal();
    return test_report();
}
