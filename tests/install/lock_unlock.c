/* The program of make test-install, built against an installed redilock (shared or static, by
 * pkg-config or CMake): takes a lock on $REDIS_URL, checks that a second client is refused it,
 * and releases it. */
#include <redilock.h>

#include <stdio.h>
#include <stdlib.h>

static const char *program;

static int fail(const char *what, redilock_status status) {
    fprintf(stderr, "%s: %s: %s (%s)\n", program, what, redilock_status_str(status), redilock_last_error());
    return 1;
}

int main(int argc, char **argv) {
    (void)argc;
    program = argv[0];
    const char *url = getenv("REDIS_URL");
    if (url == NULL) {
        fprintf(stderr, "%s: REDIS_URL is not set\n", program);
        return 2;
    }
    redilock *holder = NULL, *other = NULL;
    char token[REDILOCK_TOKEN_LEN], other_token[REDILOCK_TOKEN_LEN];
    redilock_status status = redilock_new(url, 10000, &holder);
    if (status != REDILOCK_STATUS_OK) return fail("redilock_new", status);
    status = redilock_new(url, 10000, &other);
    if (status != REDILOCK_STATUS_OK) return fail("redilock_new", status);

    status = redilock_lock(holder, "test-install", 0, REDILOCK_NO_WAIT, token, sizeof token);
    if (status != REDILOCK_STATUS_OK) return fail("lock", status);
    status = redilock_lock(other, "test-install", 0, REDILOCK_NO_WAIT, other_token, sizeof other_token);
    if (status != REDILOCK_STATUS_NOT_ACQUIRED) return fail("lock held by another client", status);
    status = redilock_unlock(holder, "test-install", token);
    if (status != REDILOCK_STATUS_OK) return fail("unlock", status);

    redilock_free(other);
    redilock_free(holder);
    printf("%s: redilock %s: locked, refused to a second client, unlocked\n", program, redilock_version());
    return 0;
}
