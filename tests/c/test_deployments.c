/* The C ABI against the deployments behind multi-host URLs: a Redis Cluster of 3 masters and 3
 * replicas ($REDIS_CLUSTER_URL, $REDIS_CLUSTER_PORTS) and a primary with a replica behind 3
 * Sentinels ($REDIS_SENTINEL_URL, $REDIS_SENTINEL_PRIMARY_PORT), both from
 * tests/harness/with-redis --cluster --sentinel; and the refusal of malformed multi-host URLs.
 * Failovers and slot migrations are tested from Rust (crates/redilock/tests/cluster.rs and
 * sentinel.rs); here the URLs go through the ABI unchanged and the calls land where they
 * should. Every check prints what failed; the exit code is the count. */
#include "support.h"

#include <pthread.h>

enum { MAX_MASTERS = 8 };

static const char *cluster_url;
static const char *sentinel_url;
static int masters[MAX_MASTERS]; /* the cluster's masters' ports */
static int master_count;
static int primary_port; /* the port of the primary that the Sentinels name */

/* Reads the deployments' environment; false (having said why) when not run through the harness
 * with --cluster --sentinel. */
static bool deployments_setup(void) {
    const char *ports = getenv("REDIS_CLUSTER_PORTS");
    const char *primary = getenv("REDIS_SENTINEL_PRIMARY_PORT");
    cluster_url = getenv("REDIS_CLUSTER_URL");
    sentinel_url = getenv("REDIS_SENTINEL_URL");
    if (cluster_url == NULL || ports == NULL || sentinel_url == NULL || primary == NULL) {
        fprintf(stderr, "REDIS_CLUSTER_URL and REDIS_SENTINEL_URL are not set: run through "
                        "tests/harness/with-redis --cluster --sentinel\n");
        return false;
    }
    /* The masters' ports come first, then their replicas', as many of each. */
    int all[2 * MAX_MASTERS], count = 0, used = 0;
    while (count < 2 * MAX_MASTERS && sscanf(ports, "%d%n", &all[count], &used) == 1) {
        ports += used;
        count++;
    }
    master_count = count / 2;
    for (int i = 0; i < master_count; i++) masters[i] = all[i];
    primary_port = atoi(primary);
    if (master_count < 2 || primary_port <= 0) {
        fprintf(stderr, "REDIS_CLUSTER_PORTS ('%s') or REDIS_SENTINEL_PRIMARY_PORT ('%s') is not as "
                        "tests/harness/with-redis --cluster --sentinel sets them\n",
                getenv("REDIS_CLUSTER_PORTS"), primary);
        return false;
    }
    return test_setup();
}

/* How many keys matching `pattern` the node on `port` holds itself (SCAN does not look at other
 * nodes); the first of them goes to `first`. */
static int keys_on(int port, const char *pattern, char *first, size_t first_len) {
    char arguments[320];
    snprintf(arguments, sizeof arguments, "--scan --pattern '%.256s'", pattern);
    return redis_cli_on(port, arguments, first, first_len);
}

/* The index in `masters` of the master serving the slot of `key`: the one that answers EXISTS
 * rather than redirecting it (MOVED); -1 if none does. */
static int master_of(const char *key) {
    char arguments[256], reply[256];
    snprintf(arguments, sizeof arguments, "EXISTS '%s'", key);
    for (int i = 0; i < master_count; i++) {
        redis_cli_on(masters[i], arguments, reply, sizeof reply);
        if (strcmp(reply, "0") == 0 || strcmp(reply, "1") == 0) return i;
    }
    return -1;
}

/* How many callers wait in the queue of lock `name`, as the node on `port` holds it. */
static long queue_length_on(int port, const char *name) {
    char pattern[256], key[256], arguments[320], reply[64];
    snprintf(pattern, sizeof pattern, "redilock:queue:*:%.200s", name);
    if (keys_on(port, pattern, key, sizeof key) == 0) return 0;
    snprintf(arguments, sizeof arguments, "LLEN '%s'", key);
    redis_cli_on(port, arguments, reply, sizeof reply);
    return strtol(reply, NULL, 10);
}

/* A client for `deployment_url` whose waiters look at a held lock on their own only once a
 * minute: what ends a wait sooner is the release waking them. The command timeout leaves room
 * for the replica acknowledgement (on by default: every master and the primary have a replica)
 * on a loaded machine. */
static redilock *new_deployment_client(const char *deployment_url) {
    redilock_options *options = NULL;
    redilock *client = NULL;
    CHECK_STATUS(redilock_options_new(&options), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_retry_interval_ms(options, 60000), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_command_timeout_ms(options, scaled_ms_arg(5000)), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_new_with_options(deployment_url, options, &client), REDILOCK_STATUS_OK);
    redilock_options_free(options);
    return client;
}

/* 30 locks held at once spread over the masters by name, each on the master of its slot; each
 * lock is fenced and released. */
static void test_cluster_locks_spread_over_the_masters(void) {
    enum { LOCKS = 30 };
    redilock *client = new_deployment_client(cluster_url);
    char names[LOCKS][32], tokens[LOCKS][REDILOCK_TOKEN_LEN], key[256];
    uint64_t fence = 0;
    for (int i = 0; i < LOCKS; i++) {
        snprintf(names[i], sizeof names[i], "c:deploy:spread:%02d", i);
        fence = 0;
        CHECK_STATUS(redilock_lock_ex(client, names[i], 60000, REDILOCK_NO_WAIT, NULL, tokens[i], sizeof tokens[i],
                                      &fence),
                     REDILOCK_STATUS_OK);
        CHECK(fence > 0);
    }

    int total = 0, masters_used = 0;
    for (int m = 0; m < master_count; m++) {
        int here = keys_on(masters[m], "c:deploy:spread:*", key, sizeof key);
        total += here;
        if (here > 0) masters_used++;
    }
    CHECK(total == LOCKS);
    CHECK(masters_used > 1);
    /* Each lock's key sits on the master serving its slot, with its fencing counter. */
    for (int i = 0; i < LOCKS; i += 7) {
        int m = master_of(names[i]);
        if (!CHECK(m >= 0)) continue;
        CHECK(keys_on(masters[m], names[i], key, sizeof key) == 1);
        char pattern[64];
        snprintf(pattern, sizeof pattern, "redilock:fence:*:%.31s", names[i]);
        CHECK(keys_on(masters[m], pattern, key, sizeof key) == 1);
    }

    for (int i = 0; i < LOCKS; i++) CHECK_STATUS(redilock_unlock(client, names[i], tokens[i]), REDILOCK_STATUS_OK);
    total = 0;
    for (int m = 0; m < master_count; m++) total += keys_on(masters[m], "c:deploy:spread:*", key, sizeof key);
    CHECK(total == 0);
    redilock_free(client);
}

/* A waiter blocked in redilock_lock on its own thread. */
struct waiter {
    redilock *client;
    const char *name;
    int64_t timeout_ms;
    redilock_status status;
    char token[REDILOCK_TOKEN_LEN];
    uint64_t fence;
    double returned_at;
};

static void *wait_for_lock(void *arg) {
    struct waiter *waiter = arg;
    waiter->status = redilock_lock_ex(waiter->client, waiter->name, 60000, waiter->timeout_ms, NULL, waiter->token,
                                      sizeof waiter->token, &waiter->fence);
    waiter->returned_at = now_ms();
    return NULL;
}

/* For a lock on each master: a try-once call on the held lock is NOT_ACQUIRED, and a waiter of
 * another client, queued on that master, gets the lock promptly after the holder releases it.
 * Neither the waiter's retry interval (a minute) nor the holder's TTL (a minute) explains that:
 * the release's wake-up does, whichever master publishes it. */
static void test_cluster_waiters_are_woken_from_every_master(void) {
    redilock *holder = new_deployment_client(cluster_url);
    redilock *waiting = new_deployment_client(cluster_url);

    /* A lock name served by each master. */
    char names[MAX_MASTERS][32];
    int found = 0;
    bool have[MAX_MASTERS] = {false};
    for (int i = 0; i < 1000 && found < master_count; i++) {
        char name[32];
        snprintf(name, sizeof name, "c:deploy:wake:%d", i);
        int m = master_of(name);
        if (m >= 0 && !have[m]) {
            have[m] = true;
            snprintf(names[m], sizeof names[m], "%s", name);
            found++;
        }
    }
    if (!CHECK(found == master_count)) {
        redilock_free(waiting);
        redilock_free(holder);
        return;
    }

    for (int m = 0; m < master_count; m++) {
        const char *name = names[m];
        char token[REDILOCK_TOKEN_LEN], other[REDILOCK_TOKEN_LEN], key[256];
        uint64_t fence = 0;
        CHECK_STATUS(redilock_lock_ex(holder, name, 60000, REDILOCK_NO_WAIT, NULL, token, sizeof token, &fence),
                     REDILOCK_STATUS_OK);
        CHECK(fence > 0);
        CHECK(keys_on(masters[m], name, key, sizeof key) == 1);

        memset(other, 'x', sizeof other);
        CHECK_STATUS(redilock_lock(waiting, name, 60000, REDILOCK_NO_WAIT, other, sizeof other),
                     REDILOCK_STATUS_NOT_ACQUIRED);
        CHECK(other[0] == '\0');
        CHECK(strstr(redilock_last_error(), "is held by another owner") != NULL);

        struct waiter waiter = {.client = waiting, .name = name, .timeout_ms = scaled_ms_arg(5000)};
        pthread_t thread;
        if (!CHECK(pthread_create(&thread, NULL, wait_for_lock, &waiter) == 0)) break;
        /* Queued, on the master of the lock's slot. */
        WAIT_UNTIL(queue_length_on(masters[m], name) == 1);
        double released_at = now_ms();
        CHECK_STATUS(redilock_unlock(holder, name, token), REDILOCK_STATUS_OK);
        pthread_join(thread, NULL);
        CHECK_STATUS(waiter.status, REDILOCK_STATUS_OK);
        CHECK(waiter.returned_at - released_at < promptly_ms());
        CHECK(waiter.fence > fence);
        CHECK(queue_length_on(masters[m], name) == 0);
        CHECK_STATUS(redilock_unlock(waiting, name, waiter.token), REDILOCK_STATUS_OK);
        CHECK(keys_on(masters[m], name, key, sizeof key) == 0);
    }
    redilock_free(waiting);
    redilock_free(holder);
}

/* Through the Sentinels, on the primary they name: lock, extend, remaining TTL, unlock. */
static void test_sentinel_lock_extend_unlock(void) {
    const char *name = "c:deploy:sentinel";
    redilock *client = new_deployment_client(sentinel_url);
    redilock *other_client = new_deployment_client(sentinel_url);
    char token[REDILOCK_TOKEN_LEN], other[REDILOCK_TOKEN_LEN], reply[64];
    uint64_t fence = 0;

    CHECK_STATUS(redilock_lock_ex(client, name, 10000, REDILOCK_NO_WAIT, NULL, token, sizeof token, &fence),
                 REDILOCK_STATUS_OK);
    CHECK(fence > 0);
    redis_cli_on(primary_port, "EXISTS c:deploy:sentinel", reply, sizeof reply);
    CHECK(strcmp(reply, "1") == 0);
    CHECK_STATUS(redilock_lock(other_client, name, 10000, REDILOCK_NO_WAIT, other, sizeof other),
                 REDILOCK_STATUS_NOT_ACQUIRED);

    int64_t remaining = 0;
    CHECK_STATUS(redilock_extend(client, name, token, 60000), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_remaining_ttl(client, name, token, &remaining), REDILOCK_STATUS_OK);
    CHECK(remaining > 10000 && remaining <= 60000); /* only the extend makes it more than 10 s */
    redis_cli_on(primary_port, "PTTL c:deploy:sentinel", reply, sizeof reply);
    CHECK(strtol(reply, NULL, 10) > 10000);

    CHECK_STATUS(redilock_unlock(client, name, token), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_unlock(client, name, token), REDILOCK_STATUS_NOT_OWNER);
    CHECK_STATUS(redilock_extend(client, name, token, 60000), REDILOCK_STATUS_NOT_OWNER);
    CHECK_STATUS(redilock_remaining_ttl(client, name, token, &remaining), REDILOCK_STATUS_NOT_OWNER);
    redis_cli_on(primary_port, "EXISTS c:deploy:sentinel", reply, sizeof reply);
    CHECK(strcmp(reply, "0") == 0);

    uint64_t next_fence = 0;
    CHECK_STATUS(redilock_lock_ex(other_client, name, 10000, REDILOCK_NO_WAIT, NULL, other, sizeof other, &next_fence),
                 REDILOCK_STATUS_OK);
    CHECK(next_fence > fence);
    CHECK_STATUS(redilock_unlock(other_client, name, other), REDILOCK_STATUS_OK);
    redilock_free(other_client);
    redilock_free(client);
}

/* Malformed multi-host URLs are refused by the constructors, before any I/O, with a message
 * that names the fault and masks the passwords the URL holds. */
static void test_bad_multi_host_urls_are_refused(void) {
    static const struct {
        const char *url;
        const char *reason;
        const char *masked; /* how the message shows the password, NULL: the URL has none */
    } cases[] = {
        {"redis+cluster://127.0.0.1:1,,127.0.0.1:2", "an empty host", NULL},
        {"redis+cluster://u:hunter2@127.0.0.1:1,,127.0.0.1:2", "an empty host", "u:***@"},
        {"redis+cluster://h:1/3", "one database", NULL},
        {"rediss+cluster://u:hunter2@h:1/3", "one database", "u:***@"},
        {"redis+sentinel://127.0.0.1:1", "no primary name", NULL},
        {"redis+sentinel://u:hunter2@127.0.0.1:1,127.0.0.1:2", "no primary name", "u:***@"},
        {"redis+sentinel://127.0.0.1:1?sentinel_username=s&sentinel_password=hunter2", "no primary name",
         "sentinel_password=***"},
    };
    redilock_options *options = NULL;
    CHECK_STATUS(redilock_options_new(&options), REDILOCK_STATUS_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int with_options = 0; with_options < 2; with_options++) {
            redilock *client = (redilock *)&client; /* a failed constructor must reset it */
            redilock_status status = with_options ? redilock_new_with_options(cases[i].url, options, &client)
                                                  : redilock_new(cases[i].url, 10000, &client);
            CHECK_STATUS(status, REDILOCK_STATUS_INVALID_ARGUMENT);
            CHECK(client == NULL);
            const char *message = redilock_last_error();
            bool readable = CHECK(strstr(message, "invalid Redis URL") != NULL);
            readable &= CHECK(strstr(message, cases[i].reason) != NULL);
            readable &= CHECK(strstr(message, "hunter2") == NULL);
            if (cases[i].masked != NULL) readable &= CHECK(strstr(message, cases[i].masked) != NULL);
            if (!readable) fprintf(stderr, "  for the URL %s\n", cases[i].url);
        }
    }
    redilock_options_free(options);
}

int main(void) {
    if (!deployments_setup()) return 2;
    test_bad_multi_host_urls_are_refused();
    test_cluster_locks_spread_over_the_masters();
    test_cluster_waiters_are_woken_from_every_master();
    test_sentinel_lock_extend_unlock();
    return test_report();
}
