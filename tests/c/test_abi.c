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

/* Releases once the waiter is queued, so that it is the release that wakes it. */
static void *release_later(void *token) {
    WAIT_UNTIL(queue_length("wake") == 1);
    redilock *releaser = new_client();
    CHECK_STATUS(redilock_unlock(releaser, "wake", token), REDILOCK_STATUS_OK);
    redilock_free(releaser);
    return NULL;
}

static void test_waiter_is_woken_by_release(void) {
    redilock *holder = new_client(), *waiter = new_client_rechecking_rarely();
    char token[REDILOCK_TOKEN_LEN], waited_token[REDILOCK_TOKEN_LEN];
    uint64_t bound = (uint64_t)scaled_ms(5000);
    CHECK_STATUS(redilock_lock(holder, "wake", bound, 0, token, sizeof token), REDILOCK_STATUS_OK);
    pthread_t releaser;
    pthread_create(&releaser, NULL, release_later, token);
    CHECK_STATUS(redilock_lock(waiter, "wake", 5000, (int64_t)bound, waited_token, sizeof waited_token),
                 REDILOCK_STATUS_OK);
    pthread_join(releaser, NULL);
    CHECK_STATUS(redilock_unlock(waiter, "wake", waited_token), REDILOCK_STATUS_OK);
    redilock_free(holder);
    redilock_free(waiter);
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
    CHECK_STATUS(redilock_lock(args.client, "cancel", 5000, 0, token, sizeof token), REDILOCK_STATUS_OK);
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

static void test_extend_and_ttl(void) {
    redilock *client = new_client();
    char token[REDILOCK_TOKEN_LEN];
    uint64_t remaining = 0;
    CHECK_STATUS(redilock_lock(client, "lease", 2000, 0, token, sizeof token), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_extend(client, "lease", token, 60000), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_ttl(client, "lease", token, &remaining), REDILOCK_STATUS_OK);
    CHECK(remaining > 50000 && remaining <= 60000);
    CHECK_STATUS(redilock_extend(client, "lease", token, 0), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(redilock_extend(client, "lease", token, REDILOCK_MAX_TTL_MS + 1), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(redilock_extend(client, "lease", "someone-else", 1000), REDILOCK_STATUS_NOT_OWNER);
    CHECK_STATUS(redilock_ttl(client, "lease", "someone-else", &remaining), REDILOCK_STATUS_NOT_OWNER);
    CHECK_STATUS(redilock_ttl(client, "lease", token, NULL), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_extend(client, "lease", NULL, 1000), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_unlock(client, "lease", token), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_extend(client, "lease", token, 1000), REDILOCK_STATUS_NOT_OWNER);
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
    CHECK_STATUS(redilock_lock_ex(client, "renewed", (uint64_t)scaled_ms(900), 0, &params, token, sizeof token, NULL),
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
    test_threads_share_one_client();
    test_waiter_is_woken_by_release();
    test_fork();
    test_cancel();
    test_unreachable_server();
    test_extend_and_ttl();
    test_fencing();
    test_auto_renewal();
    return test_report();
}
