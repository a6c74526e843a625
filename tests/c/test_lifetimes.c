/* Who owns what, and until when, in the C ABI since 0.2, against a real redis-server
 * ($REDIS_URL from tests/harness/with-redis): parameter structs of 0.1 and of a newer header,
 * on_lost_data_drop, loss callbacks against unlock and close, redilock_close, and
 * redilock_renewal_wait. A loss is caused by deleting the lock's key behind the holder's back
 * with redis-cli. Every check prints what failed; the exit code is the count. */
#include "support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

/* redilock_lock_params as 0.1 laid it out: today's struct without its last field (0.1 had
 * max_hold_ms unsigned; 0.2 made it int64_t, of the same size and place). */
struct params_v0_1 {
    size_t struct_size;
    const redilock_cancel *cancel;
    bool auto_renew;
    uint64_t max_hold_ms;
    redilock_lost_callback on_lost;
    void *on_lost_data;
};
_Static_assert(sizeof(struct params_v0_1) == offsetof(redilock_lock_params, on_lost_data_drop),
               "0.2 added on_lost_data_drop at the end, and nothing else");
_Static_assert(offsetof(struct params_v0_1, max_hold_ms) == offsetof(redilock_lock_params, max_hold_ms) &&
                   sizeof(((redilock_lock_params *)0)->max_hold_ms) == sizeof(int64_t),
               "max_hold_ms is an int64_t where 0.1 had its uint64_t");

/* What the loss callbacks of one lock saw. They run on the library's threads. */
struct loss_watch {
    double callback_ms; /* how long on_lost takes */
    atomic_int losses_begun;
    atomic_int losses_ended;
    atomic_int drops;
    atomic_int losses_at_drop; /* losses_ended when the drop ran: it must come after on_lost */
};

static void watch_loss(void *data, const char *name) {
    struct loss_watch *watch = data;
    (void)name;
    atomic_fetch_add(&watch->losses_begun, 1);
    if (watch->callback_ms > 0) sleep_ms(watch->callback_ms);
    atomic_fetch_add(&watch->losses_ended, 1);
}

static void watch_drop(void *data) {
    struct loss_watch *watch = data;
    atomic_store(&watch->losses_at_drop, atomic_load(&watch->losses_ended));
    atomic_fetch_add(&watch->drops, 1);
}

/* Auto-renewal, nothing else. */
static redilock_lock_params renewal(void) {
    redilock_lock_params params;
    CHECK_STATUS(redilock_lock_params_init(&params), REDILOCK_STATUS_OK);
    params.auto_renew = true;
    return params;
}

/* Auto-renewal reporting to `watch`, which the library drops when it is done with it. */
static redilock_lock_params watched_renewal(struct loss_watch *watch) {
    redilock_lock_params params = renewal();
    params.on_lost = watch_loss;
    params.on_lost_data = watch;
    params.on_lost_data_drop = watch_drop;
    return params;
}

/* A deleted key is noticed at the next renewal, a third of this later; a loaded machine
 * still renews in time, so the key is there until the test deletes it. */
static int64_t renewed_ttl_ms(void) {
    return scaled_ms_arg(1500);
}

static void test_params_of_0_1_are_read_without_the_new_field(void) {
    redilock *client = new_client();
    struct loss_watch watch = {0};
    /* A 0.1 caller's struct, followed in memory by what the library must not take for the
     * drop function that a 0.2 struct has there. */
    struct {
        struct params_v0_1 params;
        redilock_data_drop not_a_field;
    } old = {
        .params = {.struct_size = sizeof(struct params_v0_1), .auto_renew = true, .on_lost = watch_loss,
                   .on_lost_data = &watch},
        .not_a_field = watch_drop,
    };
    const redilock_lock_params *params = (const redilock_lock_params *)&old.params;
    char token[REDILOCK_TOKEN_LEN];
    bool lost = true;
    CHECK_STATUS(redilock_lock_ex(client, "params-0.1", scaled_ms_arg(900), 0, params, token, sizeof token, NULL),
                 REDILOCK_STATUS_OK);
    CHECK(renewal_seen(client, "params-0.1", token));
    CHECK_STATUS(redilock_renewal_lost(client, token, &lost), REDILOCK_STATUS_OK);
    CHECK(!lost);
    CHECK_STATUS(redilock_unlock(client, "params-0.1", token), REDILOCK_STATUS_OK);
    CHECK(atomic_load(&watch.losses_begun) == 0);

    /* Its callback is told of a loss, as in 0.1. */
    CHECK_STATUS(redilock_lock_ex(client, "params-0.1", renewed_ttl_ms(), 0, params, token, sizeof token, NULL),
                 REDILOCK_STATUS_OK);
    CHECK(delete_key("params-0.1") == 1);
    WAIT_UNTIL(atomic_load(&watch.losses_ended) == 1);
    CHECK_STATUS(redilock_unlock(client, "params-0.1", token), REDILOCK_STATUS_NOT_OWNER);
    CHECK(atomic_load(&watch.drops) == 0);

    /* Smaller than 0.1's struct: no version had it, so nothing is read and nothing sent. */
    struct params_v0_1 too_small = old.params;
    too_small.struct_size = sizeof too_small - 1;
    CHECK_STATUS(redilock_lock_ex(client, "params-too-small", 5000, 0, (const redilock_lock_params *)&too_small,
                                  token, sizeof token, NULL),
                 REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(redilock_last_error(), "struct_size") != NULL);
    CHECK(token[0] == '\0');
    CHECK(!key_exists("params-too-small"));

    /* From a newer header than the library's: fields it cannot honour, so it refuses. */
    struct {
        redilock_lock_params params;
        uint64_t field_of_a_later_version;
    } newer = {.field_of_a_later_version = 1};
    CHECK_STATUS(redilock_lock_params_init(&newer.params), REDILOCK_STATUS_OK);
    newer.params.struct_size = sizeof newer;
    CHECK_STATUS(redilock_lock_ex(client, "params-too-new", 5000, 0, &newer.params, token, sizeof token, NULL),
                 REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(redilock_last_error(), "struct_size") != NULL);
    CHECK(!key_exists("params-too-new"));
    redilock_free(client);
}

/* A lock call that will never call on_lost drops the data before it returns. */
static void test_data_is_dropped_by_a_lock_call_without_renewal(void) {
    redilock *client = new_client();
    char token[REDILOCK_TOKEN_LEN], held[REDILOCK_TOKEN_LEN];

    struct loss_watch unrenewed = {0};
    redilock_lock_params params = watched_renewal(&unrenewed);
    params.auto_renew = false;
    CHECK_STATUS(redilock_lock_ex(client, "dropped-early", 5000, 0, &params, token, sizeof token, NULL),
                 REDILOCK_STATUS_OK);
    CHECK(atomic_load(&unrenewed.drops) == 1);
    CHECK_STATUS(redilock_unlock(client, "dropped-early", token), REDILOCK_STATUS_OK);

    struct loss_watch failed = {0};
    params = watched_renewal(&failed);
    CHECK_STATUS(redilock_lock(client, "dropped-early", 5000, 0, held, sizeof held), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_lock_ex(client, "dropped-early", 5000, REDILOCK_NO_WAIT, &params, token, sizeof token, NULL),
                 REDILOCK_STATUS_NOT_ACQUIRED);
    CHECK(atomic_load(&failed.drops) == 1);
    CHECK_STATUS(redilock_unlock(client, "dropped-early", held), REDILOCK_STATUS_OK);

    /* Once each, whatever came later. */
    CHECK(atomic_load(&unrenewed.drops) == 1 && atomic_load(&failed.drops) == 1);
    CHECK(atomic_load(&unrenewed.losses_begun) == 0 && atomic_load(&failed.losses_begun) == 0);
    redilock_free(client);
}

static void test_data_is_dropped_once_when_a_renewed_lock_ends(void) {
    redilock *client = new_client();
    char token[REDILOCK_TOKEN_LEN];

    /* Unlocked without a loss: dropped by unlock, on_lost never called. */
    struct loss_watch kept = {0};
    redilock_lock_params params = watched_renewal(&kept);
    CHECK_STATUS(redilock_lock_ex(client, "renewed-kept", renewed_ttl_ms(), 0, &params, token, sizeof token, NULL),
                 REDILOCK_STATUS_OK);
    CHECK(atomic_load(&kept.drops) == 0); /* still the library's */
    CHECK_STATUS(redilock_unlock(client, "renewed-kept", token), REDILOCK_STATUS_OK);
    CHECK(atomic_load(&kept.drops) == 1);
    CHECK(atomic_load(&kept.losses_begun) == 0);

    /* Renewed with a drop function but no callback: dropped once all the same. */
    struct loss_watch unwatched = {0};
    params = watched_renewal(&unwatched);
    params.on_lost = NULL;
    CHECK_STATUS(redilock_lock_ex(client, "renewed-unwatched", renewed_ttl_ms(), 0, &params, token, sizeof token,
                                  NULL),
                 REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_unlock(client, "renewed-unwatched", token), REDILOCK_STATUS_OK);
    CHECK(atomic_load(&unwatched.drops) == 1);

    /* Lost: on_lost once, then the drop once; after unlock, nothing more. */
    struct loss_watch lost = {0};
    params = watched_renewal(&lost);
    CHECK_STATUS(redilock_lock_ex(client, "renewed-lost", renewed_ttl_ms(), 0, &params, token, sizeof token, NULL),
                 REDILOCK_STATUS_OK);
    CHECK(delete_key("renewed-lost") == 1);
    WAIT_UNTIL(atomic_load(&lost.drops) == 1);
    CHECK(atomic_load(&lost.losses_ended) == 1);
    CHECK(atomic_load(&lost.losses_at_drop) == 1);
    CHECK_STATUS(redilock_unlock(client, "renewed-lost", token), REDILOCK_STATUS_NOT_OWNER);
    redilock_free(client);
    CHECK(atomic_load(&lost.losses_begun) == 1);
    CHECK(atomic_load(&lost.drops) == 1);
    CHECK(atomic_load(&kept.drops) == 1 && atomic_load(&unwatched.drops) == 1);
}

/* Unlock returns only once a running loss callback has: the callback's memory may be freed
 * then (valgrind reports a write that comes later). */
static void test_unlock_waits_for_a_running_loss_callback(void) {
    redilock *client = new_client();
    struct loss_watch *watch = calloc(1, sizeof *watch);
    watch->callback_ms = scaled_ms(200);
    redilock_lock_params params = watched_renewal(watch);
    params.on_lost_data_drop = NULL; /* the caller frees it, after unlock */
    char token[REDILOCK_TOKEN_LEN];
    CHECK_STATUS(redilock_lock_ex(client, "slow-loss", renewed_ttl_ms(), 0, &params, token, sizeof token, NULL),
                 REDILOCK_STATUS_OK);
    CHECK(delete_key("slow-loss") == 1);
    WAIT_UNTIL(atomic_load(&watch->losses_begun) == 1);
    CHECK_STATUS(redilock_unlock(client, "slow-loss", token), REDILOCK_STATUS_NOT_OWNER);
    CHECK(atomic_load(&watch->losses_ended) == 1);
    free(watch);
    redilock_free(client);
}

/* A loss callback that calls back into the library about its own lock: unlock, or close. */
struct reentrant_callback {
    redilock *client;
    char token[REDILOCK_TOKEN_LEN];
    bool closes;
    atomic_uint status;
    atomic_int returned;
};

static void end_from_inside(void *data, const char *name) {
    struct reentrant_callback *self = data;
    redilock_status status = self->closes ? redilock_close(self->client)
                                          : redilock_unlock(self->client, name, self->token);
    atomic_store(&self->status, status);
    atomic_store(&self->returned, 1);
}

/* Neither waits for the callback it is called from (which would never return). */
static void test_loss_callback_may_unlock_or_close(void) {
    for (int closes = 0; closes <= 1; closes++) {
        struct reentrant_callback self = {.client = new_client(), .closes = closes};
        redilock_lock_params params = renewal();
        params.on_lost = end_from_inside;
        params.on_lost_data = &self;
        CHECK_STATUS(redilock_lock_ex(self.client, "reentrant", renewed_ttl_ms(), 0, &params, self.token,
                                      sizeof self.token, NULL),
                     REDILOCK_STATUS_OK);
        CHECK(delete_key("reentrant") == 1);
        WAIT_UNTIL(atomic_load(&self.returned) == 1);
        CHECK_STATUS(atomic_load(&self.status), closes ? REDILOCK_STATUS_OK : REDILOCK_STATUS_NOT_OWNER);
        CHECK_STATUS(redilock_unlock(self.client, "reentrant", self.token),
                     closes ? REDILOCK_STATUS_CLOSED : REDILOCK_STATUS_NOT_OWNER);
        redilock_free(self.client);
    }
}

/* A lock call on a thread of its own, waiting forever. */
struct waiting_lock {
    redilock *client;
    const char *name;
    pthread_t thread;
    redilock_status status;
    double returned_at;
    atomic_int returned; /* set last: the fields above are then written */
};

static void *lock_and_wait(void *arg) {
    struct waiting_lock *call = arg;
    char token[REDILOCK_TOKEN_LEN];
    call->status = redilock_lock(call->client, call->name, 5000, REDILOCK_WAIT_FOREVER, token, sizeof token);
    call->returned_at = now_ms();
    atomic_store(&call->returned, 1);
    return NULL;
}

static void test_close_ends_waits_and_refuses_later_calls(void) {
    redilock *holder = new_client(), *closing = new_client_rechecking_rarely();
    char held[REDILOCK_TOKEN_LEN], token[REDILOCK_TOKEN_LEN];
    bool lost = false;
    CHECK_STATUS(redilock_lock(holder, "closing", 60000, 0, held, sizeof held), REDILOCK_STATUS_OK);
    struct waiting_lock call = {.client = closing, .name = "closing"};
    pthread_create(&call.thread, NULL, lock_and_wait, &call);
    WAIT_UNTIL(queue_length("closing") == 1);
    double closed_at = now_ms();
    CHECK_STATUS(redilock_close(closing), REDILOCK_STATUS_OK);
    WAIT_UNTIL(atomic_load(&call.returned) == 1);
    /* Released only now: a wait that close failed to end would end with the lock, not CLOSED. */
    CHECK_STATUS(redilock_unlock(holder, "closing", held), REDILOCK_STATUS_OK);
    pthread_join(call.thread, NULL);
    CHECK_STATUS(call.status, REDILOCK_STATUS_CLOSED);
    CHECK(call.returned_at - closed_at < promptly_ms());
    CHECK(queue_length("closing") == 0);

    /* Closed for good: again is fine, and later calls send nothing. */
    CHECK_STATUS(redilock_close(closing), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_lock(closing, "after-close", 5000, 0, token, sizeof token), REDILOCK_STATUS_CLOSED);
    CHECK(!key_exists("after-close"));
    CHECK_STATUS(redilock_lock(holder, "held-at-close", 60000, 0, held, sizeof held), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_unlock(closing, "held-at-close", held), REDILOCK_STATUS_CLOSED);
    CHECK(key_exists("held-at-close"));
    CHECK_STATUS(redilock_ping(closing), REDILOCK_STATUS_CLOSED);
    CHECK_STATUS(redilock_renewal_wait(closing, held, 0, NULL, &lost), REDILOCK_STATUS_CLOSED);
    CHECK(strstr(redilock_last_error(), "closed") != NULL);
    CHECK_STATUS(redilock_renewal_lost(closing, held, &lost), REDILOCK_STATUS_CLOSED);
    int64_t remaining = 0;
    CHECK_STATUS(redilock_remaining_ttl(closing, "held-at-close", held, &remaining), REDILOCK_STATUS_CLOSED);
    CHECK_STATUS(redilock_extend(closing, "held-at-close", held, 60000), REDILOCK_STATUS_CLOSED);
    CHECK_STATUS(redilock_close(NULL), REDILOCK_STATUS_NULL_ARGUMENT);
    redilock_free(closing);
    CHECK_STATUS(redilock_unlock(holder, "held-at-close", held), REDILOCK_STATUS_OK);
    redilock_free(holder);
}

/* A renewed lock counts as lost at close, whose return waits for its callback; the key is
 * left to its TTL. */
static void test_close_reports_renewed_locks_lost(void) {
    redilock *client = new_client();
    struct loss_watch watch = {.callback_ms = scaled_ms(200)};
    redilock_lock_params params = watched_renewal(&watch);
    char token[REDILOCK_TOKEN_LEN];
    bool lost = false;
    CHECK_STATUS(redilock_lock_ex(client, "renewed-at-close", 60000, 0, &params, token, sizeof token, NULL),
                 REDILOCK_STATUS_OK);
    CHECK(atomic_load(&watch.losses_begun) == 0);
    CHECK_STATUS(redilock_close(client), REDILOCK_STATUS_OK);
    CHECK(atomic_load(&watch.losses_ended) == 1);
    CHECK(atomic_load(&watch.drops) == 1);
    CHECK(key_exists("renewed-at-close"));
    /* Its renewal is gone with the client: asked after close, both say CLOSED. */
    CHECK_STATUS(redilock_renewal_wait(client, token, 0, NULL, &lost), REDILOCK_STATUS_CLOSED);
    CHECK_STATUS(redilock_renewal_lost(client, token, &lost), REDILOCK_STATUS_CLOSED);
    CHECK_STATUS(redilock_unlock(client, "renewed-at-close", token), REDILOCK_STATUS_CLOSED);
    redilock_free(client);
    CHECK(atomic_load(&watch.losses_begun) == 1 && atomic_load(&watch.drops) == 1);
    CHECK(delete_key("renewed-at-close") == 1);
}

static void test_renewal_wait_arguments(void) {
    redilock *client = new_client();
    char renewed[REDILOCK_TOKEN_LEN], plain[REDILOCK_TOKEN_LEN];
    bool lost = true;
    redilock_lock_params params = renewal();
    CHECK_STATUS(redilock_lock_ex(client, "awaited", 60000, 0, &params, renewed, sizeof renewed, NULL),
                 REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_lock(client, "not-renewed", 60000, 0, plain, sizeof plain), REDILOCK_STATUS_OK);

    CHECK_STATUS(redilock_renewal_wait(NULL, renewed, 0, NULL, &lost), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_renewal_wait(client, NULL, 0, NULL, &lost), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_renewal_wait(client, renewed, 0, NULL, NULL), REDILOCK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(redilock_renewal_wait(client, renewed, -2, NULL, &lost), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(redilock_last_error(), "timeout") != NULL);
    CHECK_STATUS(redilock_renewal_wait(client, renewed, INT64_MIN, NULL, &lost), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(redilock_renewal_wait(client, plain, 0, NULL, &lost), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(redilock_last_error(), "auto-renewal") != NULL);

    /* 0 only looks; a timeout ends the wait without a loss. */
    CHECK_STATUS(redilock_renewal_wait(client, renewed, 0, NULL, &lost), REDILOCK_STATUS_OK);
    CHECK(!lost);
    lost = true;
    double start = now_ms();
    CHECK_STATUS(redilock_renewal_wait(client, renewed, 50, NULL, &lost), REDILOCK_STATUS_OK);
    double waited = now_ms() - start;
    CHECK(!lost);
    CHECK(waited >= 45 && waited < promptly_ms());

    CHECK_STATUS(redilock_unlock(client, "awaited", renewed), REDILOCK_STATUS_OK);
    CHECK_STATUS(redilock_renewal_wait(client, renewed, 0, NULL, &lost), REDILOCK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(redilock_unlock(client, "not-renewed", plain), REDILOCK_STATUS_OK);
    redilock_free(client);
}

/* redilock_renewal_wait on a thread of its own. */
struct renewal_waiter {
    redilock *client;
    const char *token;
    int64_t timeout_ms;
    const redilock_cancel *cancel;
    pthread_t thread;
    atomic_int calling; /* set just before the call */
    redilock_status status;
    bool lost;
    double returned_at;
    atomic_int returned; /* set last: the fields above are then written */
};

static void *wait_for_loss(void *arg) {
    struct renewal_waiter *waiter = arg;
    atomic_store(&waiter->calling, 1);
    waiter->status = redilock_renewal_wait(waiter->client, waiter->token, waiter->timeout_ms, waiter->cancel,
                                           &waiter->lost);
    waiter->returned_at = now_ms();
    atomic_store(&waiter->returned, 1);
    return NULL;
}

static void start_renewal_waiter(struct renewal_waiter *waiter) {
    pthread_create(&waiter->thread, NULL, wait_for_loss, waiter);
    WAIT_UNTIL(atomic_load(&waiter->calling) == 1);
}

/* Unlock on another thread ends the wait without a loss. Nothing shows that the waiter has
 * begun to wait, so a round in which the unlock came first (the waiter then finds no renewal:
 * INVALID_ARGUMENT) is played again. */
static void test_renewal_wait_ends_at_unlock(void) {
    redilock *client = new_client();
    redilock_lock_params params = renewal();
    char token[REDILOCK_TOKEN_LEN];
    bool woken = false;
    for (int round = 0; round < 10 && !woken; round++) {
        CHECK_STATUS(redilock_lock_ex(client, "awaited-unlock", 60000, 0, &params, token, sizeof token, NULL),
                     REDILOCK_STATUS_OK);
        struct renewal_waiter waiter = {.client = client, .token = token, .timeout_ms = (int64_t)scaled_ms(60000)};
        start_renewal_waiter(&waiter);
        double unlocked_at = now_ms();
        CHECK_STATUS(redilock_unlock(client, "awaited-unlock", token), REDILOCK_STATUS_OK);
        pthread_join(waiter.thread, NULL);
        if (waiter.status == REDILOCK_STATUS_INVALID_ARGUMENT) continue;
        woken = true;
        CHECK_STATUS(waiter.status, REDILOCK_STATUS_OK);
        CHECK(!waiter.lost);
        CHECK(waiter.returned_at - unlocked_at < promptly_ms());
    }
    CHECK(woken);
    redilock_free(client);
}

static void test_renewal_wait_sees_a_loss(void) {
    redilock *client = new_client();
    redilock_lock_params params = renewal();
    char token[REDILOCK_TOKEN_LEN];
    bool lost = false;
    CHECK_STATUS(redilock_lock_ex(client, "awaited-loss", renewed_ttl_ms(), 0, &params, token, sizeof token, NULL),
                 REDILOCK_STATUS_OK);
    CHECK(delete_key("awaited-loss") == 1);
    CHECK_STATUS(redilock_renewal_wait(client, token, (int64_t)scaled_ms(20000), NULL, &lost), REDILOCK_STATUS_OK);
    CHECK(lost);
    CHECK_STATUS(redilock_unlock(client, "awaited-loss", token), REDILOCK_STATUS_NOT_OWNER);
    redilock_free(client);
}

static void test_renewal_wait_is_cancellable(void) {
    redilock *client = new_client();
    redilock_lock_params params = renewal();
    char token[REDILOCK_TOKEN_LEN];
    CHECK_STATUS(redilock_lock_ex(client, "awaited-cancel", 60000, 0, &params, token, sizeof token, NULL),
                 REDILOCK_STATUS_OK);
    redilock_cancel *cancel = NULL;
    CHECK_STATUS(redilock_cancel_new(&cancel), REDILOCK_STATUS_OK);
    struct renewal_waiter waiter = {.client = client, .token = token, .timeout_ms = REDILOCK_WAIT_FOREVER,
                                    .cancel = cancel};
    start_renewal_waiter(&waiter);
    double cancelled_at = now_ms();
    redilock_cancel_trigger(cancel);
    WAIT_UNTIL(atomic_load(&waiter.returned) == 1);
    /* Unlocked only now: a wait the cancel failed to end ends here, with OK. */
    CHECK_STATUS(redilock_unlock(client, "awaited-cancel", token), REDILOCK_STATUS_OK);
    pthread_join(waiter.thread, NULL);
    CHECK_STATUS(waiter.status, REDILOCK_STATUS_CANCELLED);
    CHECK(waiter.returned_at - cancelled_at < promptly_ms());
    redilock_cancel_free(cancel);
    redilock_free(client);
}

/* A wait in progress when the client is closed ends with the loss that close is: OK, lost.
 * Nothing shows that the waiter has begun to wait, so a round in which close came first (the
 * wait then finds the client closed: CLOSED) is played again with a new client. */
static void test_renewal_wait_in_progress_at_close_sees_a_loss(void) {
    bool seen = false;
    for (int round = 0; round < 10 && !seen; round++) {
        redilock *client = new_client();
        struct loss_watch watch = {0};
        redilock_lock_params params = watched_renewal(&watch);
        char token[REDILOCK_TOKEN_LEN];
        CHECK_STATUS(redilock_lock_ex(client, "awaited-close", 60000, 0, &params, token, sizeof token, NULL),
                     REDILOCK_STATUS_OK);
        struct renewal_waiter waiter = {.client = client, .token = token, .timeout_ms = REDILOCK_WAIT_FOREVER};
        start_renewal_waiter(&waiter);
        sleep_ms(20 * (round + 1)); /* makes it likelier that the wait has begun; no bound */
        double closed_at = now_ms();
        CHECK_STATUS(redilock_close(client), REDILOCK_STATUS_OK);
        WAIT_UNTIL(atomic_load(&waiter.returned) == 1);
        pthread_join(waiter.thread, NULL);
        CHECK(atomic_load(&watch.losses_ended) == 1 && atomic_load(&watch.drops) == 1);
        if (waiter.status != REDILOCK_STATUS_CLOSED) { /* CLOSED: it began after close */
            seen = true;
            CHECK_STATUS(waiter.status, REDILOCK_STATUS_OK);
            CHECK(waiter.lost);
            CHECK(waiter.returned_at - closed_at < promptly_ms());
        }
        /* Started after close: CLOSED. */
        bool lost = false;
        CHECK_STATUS(redilock_renewal_wait(client, token, REDILOCK_WAIT_FOREVER, NULL, &lost),
                     REDILOCK_STATUS_CLOSED);
        CHECK(key_exists("awaited-close")); /* left to its TTL */
        redilock_free(client);
        CHECK(delete_key("awaited-close") == 1);
    }
    CHECK(seen);
}

struct closer {
    redilock *client;
    pthread_t thread;
};

static void *close_client(void *arg) {
    struct closer *closer = arg;
    CHECK_STATUS(redilock_close(closer->client), REDILOCK_STATUS_OK);
    return NULL;
}

/* Close runs the loss callback of a renewed lock; an unlock of that lock on another thread
 * meanwhile returns only once the callback has: the caller may then free the callback's data
 * (valgrind reports a write that comes later). */
static void test_unlock_racing_close_waits_for_the_callback(void) {
    redilock *client = new_client();
    struct loss_watch *watch = calloc(1, sizeof *watch);
    watch->callback_ms = scaled_ms(300);
    redilock_lock_params params = watched_renewal(watch);
    params.on_lost_data_drop = NULL; /* the caller frees it, after unlock */
    char token[REDILOCK_TOKEN_LEN];
    CHECK_STATUS(redilock_lock_ex(client, "unlock-at-close", 60000, 0, &params, token, sizeof token, NULL),
                 REDILOCK_STATUS_OK);
    struct closer closer = {.client = client};
    pthread_create(&closer.thread, NULL, close_client, &closer);
    WAIT_UNTIL(atomic_load(&watch->losses_begun) == 1); /* close is in the callback */
    redilock_status status = redilock_unlock(client, "unlock-at-close", token);
    CHECK(atomic_load(&watch->losses_ended) == 1);
    CHECK_STATUS(status, REDILOCK_STATUS_CLOSED);
    free(watch);
    pthread_join(closer.thread, NULL);
    CHECK(key_exists("unlock-at-close")); /* close releases nothing; unlock came after it */
    redilock_free(client);
    CHECK(delete_key("unlock-at-close") == 1);

    /* Unlock and close at once, whichever wins (unlock is held back a little longer each
     * round): once unlock has returned, the callback is done or will never run. */
    for (int round = 0; round < 8; round++) {
        client = new_client();
        watch = calloc(1, sizeof *watch);
        watch->callback_ms = scaled_ms(50);
        params = watched_renewal(watch);
        params.on_lost_data_drop = NULL;
        CHECK_STATUS(redilock_lock_ex(client, "unlock-at-close", 60000, 0, &params, token, sizeof token, NULL),
                     REDILOCK_STATUS_OK);
        closer = (struct closer){.client = client};
        pthread_create(&closer.thread, NULL, close_client, &closer);
        if (round > 0) sleep_ms(0.05 * (1 << round));
        status = redilock_unlock(client, "unlock-at-close", token);
        int begun = atomic_load(&watch->losses_begun);
        CHECK(atomic_load(&watch->losses_ended) == begun);
        CHECK(status == REDILOCK_STATUS_OK ? begun == 0 : status == REDILOCK_STATUS_CLOSED);
        pthread_join(closer.thread, NULL);
        CHECK(atomic_load(&watch->losses_begun) == begun); /* nothing ran after unlock returned */
        free(watch);
        redilock_free(client);
        if (status != REDILOCK_STATUS_OK) CHECK(delete_key("unlock-at-close") == 1);
        CHECK(!key_exists("unlock-at-close"));
    }
}

int main(void) {
    if (!test_setup()) return 2;
    test_params_of_0_1_are_read_without_the_new_field();
    test_data_is_dropped_by_a_lock_call_without_renewal();
    test_data_is_dropped_once_when_a_renewed_lock_ends();
    test_unlock_waits_for_a_running_loss_callback();
    test_loss_callback_may_unlock_or_close();
    test_close_ends_waits_and_refuses_later_calls();
    test_close_reports_renewed_locks_lost();
    test_renewal_wait_in_progress_at_close_sees_a_loss();
    test_unlock_racing_close_waits_for_the_callback();
    test_renewal_wait_arguments();
    test_renewal_wait_ends_at_unlock();
    test_renewal_wait_sees_a_loss();
    test_renewal_wait_is_cancellable();
    return test_report();
}
