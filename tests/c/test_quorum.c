/* Quorum clients through the C ABI (redilock_new_quorum) over the 5 independent masters of
 * tests/harness/with-redis -n 5 ($REDIS_URL_1..5, $REDIS_PORT_1..5): a lock with its fence and
 * validity, the refusal of unusable arguments, and masters shut down one after another (the
 * last test, since nothing restarts them). Pauses, fences across holders and renewal by
 * majority are tested from Rust (crates/redilock/tests/quorum.rs); here the calls go through
 * the ABI and the statuses come back as the header says. Every check prints what failed; the
 * exit code is the count. */
#include "support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

enum { MASTERS = 5, TTL_MS = 10000 };

static const char *master_urls[MASTERS];
static int master_ports[MASTERS];

/* Reads the masters' environment; false (having said why) when not run through the harness
 * with -n 5. */
static bool quorum_setup(void) {
    for (int i = 0; i < MASTERS; i++) {
        char url_name[32], port_name[32];
        snprintf(url_name, sizeof url_name, "REDIS_URL_%d", i + 1);
        snprintf(port_name, sizeof port_name, "REDIS_PORT_%d", i + 1);
        const char *port = getenv(port_name);
        master_urls[i] = getenv(url_name);
        master_ports[i] = port == NULL ? 0 : atoi(port);
        if (master_urls[i] == NULL || master_ports[i] <= 0) {
            fprintf(stderr, "%s and %s are not set: run through tests/harness/with-redis -n %d\n", url_name,
                    port_name, MASTERS);
            return false;
        }
    }
    return test_setup();
}

/* A quorum client over the masters with the default quorum (3 of 5). A master shut down
 * refuses connections at once, so no call waits out these timeouts; but redilock_free does
 * flush what failed calls left to give back to those masters for the connect timeout plus the
 * command timeout, hence short ones (scaled, as every bound here). */
static redilock *new_quorum_client(void) {
    redilock_options *options = NULL;
    redilock *client = NULL;
    CHECK_STATUS(redilock_options_new(&options), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_connect_timeout_ms(options, scaled_ms_arg(250)), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_command_timeout_ms(options, scaled_ms_arg(1000)), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_node_timeout_ms(options, scaled_ms_arg(500)), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_new_quorum(master_urls, MASTERS, options, &client), REDILOCK_STATUS_OK);
    redilock_options_free(options);
    return client;
}

/* How many masters hold the key `name`. */
static int masters_holding(const char *name) {
    char arguments[256], reply[64];
    snprintf(arguments, sizeof arguments, "EXISTS '%s'", name);
    int holding = 0;
    for (int i = 0; i < MASTERS; i++) {
        redis_cli_on(master_ports[i], arguments, reply, sizeof reply);
        holding += strcmp(reply, "1") == 0;
    }
    return holding;
}

/* A lock call with a fence and a validity; both are 0 unless it returns OK. */
struct acquisition {
    redilock_status status;
    char token[REDILOCK_TOKEN_LEN];
    uint64_t fence;
    int64_t validity_ms;
};

static struct acquisition try_lock(redilock *client, const char *name) {
    struct acquisition taken = {0};
    redilock_lock_params params;
    CHECK_STATUS(redilock_lock_params_init(&params), REDILOCK_STATUS_OK);
    params.validity_ms_out = &taken.validity_ms;
    taken.status = redilock_lock_ex(client, name, TTL_MS, REDILOCK_NO_WAIT, &params, taken.token,
                                    sizeof taken.token, &taken.fence);
    return taken;
}

/* Checks an acquisition that must have succeeded: fenced, and valid for part of its TTL. */
static bool acquired(const struct acquisition *taken) {
    bool ok = CHECK_STATUS(taken->status, REDILOCK_STATUS_OK);
    ok &= CHECK(taken->fence > 0);
    ok &= CHECK(taken->validity_ms > 0 && taken->validity_ms <= TTL_MS);
    return ok;
}

/* A lock is taken on every master, with its fence and validity; another handle finds it held;
 * unlock releases it on every master, and the next holder's fence is higher. */
static void test_lock_and_unlock_over_every_master(void) {
    const char *name = "c:quorum:job";
    redilock *client = new_quorum_client();
    redilock *other = new_quorum_client();
    CHECK_STATUS(redilock_ping(client), REDILOCK_STATUS_OK);

    struct acquisition first = try_lock(client, name);
    acquired(&first);
    CHECK(masters_holding(name) == MASTERS);
    struct acquisition refused = try_lock(other, name);
    CHECK_STATUS(refused.status, REDILOCK_STATUS_NOT_ACQUIRED);
    CHECK(refused.token[0] == '\0' && refused.fence == 0 && refused.validity_ms == 0);
    CHECK(strstr(redilock_last_error(), "held by another owner") != NULL);

    int64_t remaining = 0;
    CHECK_STATUS(redilock_remaining_ttl(client, name, first.token, &remaining), REDILOCK_STATUS_OK);
    CHECK(remaining > 0 && remaining <= TTL_MS);
    CHECK_STATUS(redilock_unlock(client, name, first.token), REDILOCK_STATUS_OK);
    /* Unlock returns once a quorum released it; the other masters follow in the background. */
    WAIT_UNTIL(masters_holding(name) == 0);
    CHECK_STATUS(redilock_unlock(client, name, first.token), REDILOCK_STATUS_NOT_OWNER);

    struct acquisition next = try_lock(other, name);
    acquired(&next);
    CHECK(next.fence > first.fence);
    CHECK_STATUS(redilock_unlock(other, name, next.token), REDILOCK_STATUS_OK);
    redilock_free(other);
    redilock_free(client);
}

/* validity_ms_out is written for a single-server client too. */
static void test_validity_of_a_single_server_lock(void) {
    redilock *client = new_client();
    struct acquisition taken = try_lock(client, "c:quorum:single");
    acquired(&taken);
    CHECK_STATUS(redilock_unlock(client, "c:quorum:single", taken.token), REDILOCK_STATUS_OK);
    redilock_free(client);
}

/* Arguments a quorum client cannot be built from are refused before any I/O, leaving
 * *client_out NULL and a message that says why (and masks passwords). */
static void test_unusable_arguments_are_refused(void) {
    char cluster[128], with_password[128]; /* the second names the first master again */
    snprintf(cluster, sizeof cluster, "redis+cluster://u:hunter2@127.0.0.1:%d", master_ports[2]);
    snprintf(with_password, sizeof with_password, "redis://u:hunter2@127.0.0.1:%d", master_ports[0]);
    const char *with_null[] = {master_urls[0], NULL, master_urls[2]};
    const char *with_cluster[] = {master_urls[0], master_urls[1], cluster};
    const char *one_twice[] = {master_urls[0], master_urls[1], with_password};
    const struct {
        const char *const *urls;
        size_t count;
        size_t quorum; /* 0: the default */
        redilock_status status;
        const char *reason;
    } cases[] = {
        {NULL, MASTERS, 0, REDILOCK_STATUS_NULL_ARGUMENT, "urls"},
        {with_null, 3, 0, REDILOCK_STATUS_NULL_ARGUMENT, "urls[1]"},
        {master_urls, 2, 0, REDILOCK_STATUS_INVALID_ARGUMENT, "at least 3 masters, got 2"},
        {master_urls, 0, 0, REDILOCK_STATUS_INVALID_ARGUMENT, "at least 3 masters, got 0"},
        {with_cluster, 3, 0, REDILOCK_STATUS_INVALID_ARGUMENT, "must be one server"},
        {one_twice, 3, 0, REDILOCK_STATUS_INVALID_ARGUMENT, "is given twice"},
        {master_urls, MASTERS, 2, REDILOCK_STATUS_INVALID_ARGUMENT, "more than half of the 5 masters"},
        {master_urls, MASTERS, 6, REDILOCK_STATUS_INVALID_ARGUMENT, "at most all of them, got 6"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        redilock_options *options = NULL;
        CHECK_STATUS(redilock_options_new(&options), REDILOCK_STATUS_OK);
        CHECK_STATUS(redilock_options_set_quorum(options, cases[i].quorum), REDILOCK_STATUS_OK);
        redilock *client = (redilock *)&client; /* a failed constructor must reset it */
        bool refused = CHECK_STATUS(redilock_new_quorum(cases[i].urls, cases[i].count, options, &client),
                                    cases[i].status);
        refused &= CHECK(client == NULL);
        refused &= CHECK(strstr(redilock_last_error(), cases[i].reason) != NULL);
        refused &= CHECK(strstr(redilock_last_error(), "hunter2") == NULL);
        if (!refused) fprintf(stderr, "  in case %zu, expecting '%s'\n", i, cases[i].reason);
        redilock_free(client);
        redilock_options_free(options);
    }

    redilock_options *options = NULL;
    CHECK_STATUS(redilock_options_new(&options), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_options_set_node_timeout_ms(options, -1), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(redilock_last_error(), "node timeout") != NULL);
    CHECK_STATUS(redilock_options_set_quorum(NULL, 3), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_options_set_node_timeout_ms(NULL, 100), REDILOCK_STATUS_NULL_ARGUMENT);
    redilock_options_free(options);

    CHECK(strcmp(redilock_status_str(REDILOCK_STATUS_QUORUM_UNAVAILABLE),
                 "too few masters answered to form a quorum") == 0);
}

/* Whether something listens on the loopback port `port`. */
static bool accepts_connections(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (!CHECK(fd >= 0)) return false;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool connected = connect(fd, (const struct sockaddr *)&address, sizeof address) == 0;
    close(fd);
    return connected;
}

/* Stops the master on `port` for good, and waits until it refuses connections. */
static void shut_down(int port) {
    char reply[64];
    redis_cli_on(port, "SHUTDOWN NOSAVE", reply, sizeof reply);
    WAIT_UNTIL(!accepts_connections(port));
}

/* With 2 of 5 masters down a quorum still answers: locks are taken, and a lock held by another
 * handle is NOT_ACQUIRED. With 3 down it does not: every lock call is QUORUM_UNAVAILABLE, held
 * lock or not, and the message names each master. */
static void test_masters_going_down(void) {
    const char *held = "c:quorum:held", *free_name = "c:quorum:free";
    redilock *holder = new_quorum_client();
    redilock *client = new_quorum_client();
    struct acquisition holding = try_lock(holder, held);
    acquired(&holding);

    shut_down(master_ports[3]);
    shut_down(master_ports[4]);
    CHECK_STATUS(redilock_ping(client), REDILOCK_STATUS_OK);
    struct acquisition taken = try_lock(client, free_name);
    acquired(&taken);
    CHECK_STATUS(redilock_unlock(client, free_name, taken.token), REDILOCK_STATUS_OK);
    CHECK_STATUS(try_lock(client, held).status, REDILOCK_STATUS_NOT_ACQUIRED);

    shut_down(master_ports[2]);
    const char *names[] = {free_name, held};
    for (size_t n = 0; n < sizeof names / sizeof *names; n++) {
        struct acquisition unavailable = try_lock(client, names[n]);
        CHECK_STATUS(unavailable.status, REDILOCK_STATUS_QUORUM_UNAVAILABLE);
        CHECK(unavailable.token[0] == '\0' && unavailable.fence == 0 && unavailable.validity_ms == 0);
        char message[2048];
        snprintf(message, sizeof message, "%s", redilock_last_error());
        for (int i = 0; i < MASTERS; i++) {
            char address[32];
            snprintf(address, sizeof address, "127.0.0.1:%d", master_ports[i]);
            if (!CHECK(strstr(message, address) != NULL)) fprintf(stderr, "  %s not in: %s\n", address, message);
        }
    }
    CHECK_STATUS(redilock_ping(client), REDILOCK_STATUS_QUORUM_UNAVAILABLE);
    redilock_free(client);
    redilock_free(holder);
}

int main(void) {
    if (!quorum_setup()) return 2;
    test_unusable_arguments_are_refused();
    test_validity_of_a_single_server_lock();
    test_lock_and_unlock_over_every_master();
    test_masters_going_down();
    return test_report();
}
