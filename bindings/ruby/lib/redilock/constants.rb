# frozen_string_literal: true

# Generated from include/redilock.h by scripts/ruby-constants; do not edit.
# Run scripts/ruby-constants after the header changes. `scripts/ruby-constants --check`
# (part of `make check-header`) fails while this file differs from what it would generate.

module Redilock
  # The integer constants of include/redilock.h, named without their REDILOCK_ prefix.
  module Native
    # What `redilock_remaining_ttl` writes for a key without expiry (which only other software
    # sets).
    NO_EXPIRY = -1

    # Size of a token buffer: 32 characters and the terminating NUL.
    TOKEN_LEN = 33

    # `timeout_ms` value that waits until the lock is acquired.
    WAIT_FOREVER = -1

    # `timeout_ms` value that tries once and does not wait.
    NO_WAIT = 0

    # The largest TTL accepted, 2^62 ms (the largest Redis takes): an effectively eternal lock.
    MAX_TTL_MS = 4_611_686_018_427_387_904

    # `count` of `redilock_options_set_replica_acks`: one replica when the server is a primary
    # with replicas connected, none otherwise (the default).
    REPLICA_ACKS_AUTO = -1

    # Library version at compile time; `redilock_version()` gives it at run time. A test keeps
    # these equal to the version in Cargo.toml. A program built against 0.MINOR runs only with a
    # library of the same minor version (the soname says so: libredilock.so.0.MINOR).
    VERSION_MAJOR = 0

    # See `REDILOCK_VERSION_MAJOR`.
    VERSION_MINOR = 2

    # See `REDILOCK_VERSION_MAJOR`.
    VERSION_PATCH = 0

    # Success.
    STATUS_OK = 0

    # An argument is unusable (empty name, negative TTL, short buffer, bad URL…); nothing was sent.
    STATUS_INVALID_ARGUMENT = 100

    # A required pointer argument is NULL; nothing was sent.
    STATUS_NULL_ARGUMENT = 101

    # The client was created in another process (before a `fork()`); create one in this process.
    STATUS_WRONG_PROCESS = 102

    # The lock is held by another owner and the wait ended (try-once or timeout).
    STATUS_NOT_ACQUIRED = 200

    # The token does not hold the lock (expired, released, or another owner's); nothing deleted.
    STATUS_NOT_OWNER = 201

    # The wait was cancelled through a `redilock_cancel`.
    STATUS_CANCELLED = 202

    # The client was closed (`redilock_close`): waits in progress end with it, and calls made
    # afterwards get it.
    STATUS_CLOSED = 203

    # Redis is unreachable, the connection broke, or a reply timed out: the outcome is unknown,
    # and nothing is left held by the call once Redis answers again.
    STATUS_CONNECTION = 300

    # Redis replied with an error (NOAUTH, NOPERM, READONLY, OOM, WRONGTYPE…).
    STATUS_REDIS = 301

    # A `rediss://` connection could not be set up: the TLS handshake failed, or a certificate
    # was refused (the server's by this client, or this client's by the server). Nothing was sent.
    STATUS_TLS = 302

    # Fewer replicas acknowledged a lock write in time than `redilock_options_set_replica_acks`
    # asks for: the lock was released (a failover could have lost it).
    STATUS_NOT_REPLICATED = 303

    # A quorum client (`redilock_new_quorum`) could not reach enough masters: more than N − quorum
    # failed or did not answer within the node timeout, so whether the lock is free is unknown
    # (NOT_ACQUIRED, by contrast, means enough masters answered that it is held). The last error
    # names each master and its answer. Nothing is left held once they answer again.
    STATUS_QUORUM_UNAVAILABLE = 304

    # A bug in the library was caught at the boundary; the handle may be unusable.
    STATUS_PANIC = 900
  end
end
