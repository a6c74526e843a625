// The C++ layer (include/redilock.hpp) against a real redis-server ($REDIS_URL from
// tests/harness/with-redis).
#include "redilock.hpp"

#include "second_unit.hpp"
#include "support.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

TEST(ErrorCategory, NamesMessagesAndConditions) {
    EXPECT_STREQ(redilock::category().name(), "redilock");
    for (const errc value : {errc::ok, errc::invalid_argument, errc::null_argument, errc::wrong_process,
                             errc::not_acquired, errc::not_owner, errc::cancelled, errc::closed, errc::connection,
                             errc::redis, errc::tls, errc::not_replicated, errc::panic}) {
        const std::error_code code = value;
        EXPECT_EQ(&code.category(), &redilock::category());
        EXPECT_EQ(code.message(), redilock_status_str(static_cast<redilock_status>(value)));
    }
    EXPECT_EQ(std::error_code(errc::invalid_argument), std::errc::invalid_argument);
    EXPECT_EQ(std::error_code(errc::null_argument), std::errc::invalid_argument);
    EXPECT_EQ(std::error_code(errc::not_acquired), std::errc::device_or_resource_busy);
    EXPECT_EQ(std::error_code(errc::not_owner), std::errc::operation_not_permitted);
    EXPECT_EQ(std::error_code(errc::cancelled), std::errc::operation_canceled);
    EXPECT_EQ(std::error_code(errc::closed).message(), "client closed");
    EXPECT_NE(std::error_code(errc::closed), std::errc::operation_canceled);  // a close is no cancel
    for (const errc unmapped :
         {errc::wrong_process, errc::closed, errc::connection, errc::redis, errc::tls, errc::not_replicated,
          errc::panic}) {
        EXPECT_EQ(&std::error_code(unmapped).default_error_condition().category(), &redilock::category());
    }
    static_assert(std::is_base_of_v<std::system_error, redilock::error>);
    const std::string expected_version = std::to_string(REDILOCK_VERSION_MAJOR) + "." +
                                         std::to_string(REDILOCK_VERSION_MINOR) + "." +
                                         std::to_string(REDILOCK_VERSION_PATCH);
    EXPECT_EQ(redilock::version(), expected_version);
}

TEST(TwoTranslationUnits, ShareOneCategoryAndOneLock) {
    EXPECT_EQ(&category_in_second_unit(), &redilock::category());
    redilock::Client client(redis_url(), 10s);
    const std::string name = lock_name("shared");
    ASSERT_TRUE(try_lock_in_second_unit(client, name));  // released on return
    redilock::Lock here(client, name, 5s);
    EXPECT_FALSE(try_lock_in_second_unit(client, name));
}

TEST_F(RedilockTest, BlockingConstructorOwnsAndDestructorReleases) {
    const std::string name = lock_name("block");
    {
        redilock::Lock lock(client, name, 5s);
        EXPECT_TRUE(lock.owns_lock());
        EXPECT_TRUE(lock);
        EXPECT_EQ(lock.token().size(), REDILOCK_TOKEN_LEN - 1u);
        EXPECT_EQ(lock.name(), name);
        EXPECT_EQ(lock.ttl(), 5s);
        EXPECT_TRUE(held_elsewhere(name));
    }
    EXPECT_FALSE(held_elsewhere(name));
}

TEST_F(RedilockTest, TryToLockTriesOnce) {
    const std::string name = lock_name("try");
    redilock::Lock holder(client, name, 5s);
    const auto start = Clock::now();
    redilock::Lock second(client, name, 5s, std::try_to_lock);
    EXPECT_LT(elapsed_since(start), scaled(1000ms));
    EXPECT_FALSE(second.owns_lock());
    EXPECT_FALSE(second);
    EXPECT_EQ(second.token(), "");
    holder.unlock();
    redilock::Lock third(client, name, 5s, std::try_to_lock);
    EXPECT_TRUE(third.owns_lock());
    EXPECT_NE(third.token(), second.token());
}

TEST_F(RedilockTest, DeferLockAcquiresLater) {
    const std::string name = lock_name("defer");
    redilock::Lock lock(client, name, 5s, std::defer_lock);
    EXPECT_FALSE(lock.owns_lock());
    EXPECT_FALSE(held_elsewhere(name));
    lock.lock();
    EXPECT_TRUE(lock.owns_lock());
    lock.unlock();
    EXPECT_FALSE(lock.owns_lock());
    EXPECT_TRUE(lock.try_lock());
    EXPECT_TRUE(held_elsewhere(name));
}

TEST_F(RedilockTest, TryLockForWaitsAtMostTheTimeout) {
    const std::string name = lock_name("timed");
    redilock::Lock holder(client, name, 5s);
    redilock::Lock waiter(client, name, 5s, std::defer_lock);

    auto start = Clock::now();
    EXPECT_FALSE(waiter.try_lock_for(200ms));
    EXPECT_GE(elapsed_since(start), 190ms);
    EXPECT_LT(elapsed_since(start), scaled(3000ms));

    start = Clock::now();
    EXPECT_FALSE(waiter.try_lock_until(Clock::now() + 100ms));
    EXPECT_GE(elapsed_since(start), 90ms);

    start = Clock::now();
    EXPECT_FALSE(waiter.try_lock_for(-1s));  // tries once, as std::timed_mutex does
    EXPECT_FALSE(waiter.try_lock_for(std::chrono::hours::min()));
    EXPECT_FALSE(waiter.try_lock_for(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN())));
    EXPECT_LT(elapsed_since(start), scaled(1000ms));

    Clock::time_point released;
    std::thread releaser([&] {
        EXPECT_TRUE(eventually([&] { return waiters(name) == 1; }));
        released = Clock::now();
        holder.unlock();
    });
    EXPECT_TRUE(waiter.try_lock_for(std::chrono::hours::max()));
    releaser.join();
    EXPECT_LT(elapsed_since(released), scaled(1000ms));  // the release ends the wait
}

TEST_F(RedilockTest, DefaultTtlComesFromTheClient) {
    const std::string name = lock_name("default-ttl");
    redilock::Lock lock(client, name, redilock::default_ttl);
    EXPECT_TRUE(lock.owns_lock());

    redilock::Client without_default(redis_url(), redilock::default_ttl);
    const auto e = thrown_by([&] { redilock::Lock needs_ttl(without_default, name + ":2", redilock::default_ttl); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("TTL"), std::string::npos);
}

TEST_F(RedilockTest, MisuseIsReportedAsUniqueLockReportsIt) {
    const std::string name = lock_name("misuse");
    redilock::Lock lock(client, name, 5s);
    EXPECT_EQ(thrown_by([&] { lock.lock(); }).code(), std::errc::resource_deadlock_would_occur);
    EXPECT_EQ(thrown_by([&] { static_cast<void>(lock.try_lock()); }).code(),
              std::errc::resource_deadlock_would_occur);
    EXPECT_TRUE(lock.owns_lock());
    lock.unlock();
    EXPECT_EQ(thrown_by([&] { lock.unlock(); }).code(), std::errc::operation_not_permitted);

    redilock::Lock empty;
    EXPECT_FALSE(empty.owns_lock());
    EXPECT_EQ(thrown_by([&] { empty.lock(); }).code(), errc::null_argument);
}

TEST_F(RedilockTest, ReleaseKeepsTheLockAndHandsOverTheToken) {
    const std::string name = lock_name("release");
    redilock::Lock lock(client, name, 5s);
    const std::string token = lock.release();
    EXPECT_EQ(token.size(), REDILOCK_TOKEN_LEN - 1u);
    EXPECT_FALSE(lock.owns_lock());
    EXPECT_EQ(lock.release(), "");
    EXPECT_TRUE(held_elsewhere(name));
    EXPECT_EQ(redilock_unlock(client.c_handle(), name.c_str(), token.c_str()), REDILOCK_STATUS_OK);
    EXPECT_FALSE(held_elsewhere(name));
}

TEST_F(RedilockTest, MovesTransferOwnership) {
    static_assert(!std::is_copy_constructible_v<redilock::Lock> && std::is_nothrow_move_constructible_v<redilock::Lock>);
    static_assert(!std::is_copy_constructible_v<redilock::Client> && std::is_nothrow_move_assignable_v<redilock::Client>);
    const std::string first = lock_name("first"), second = lock_name("second");

    redilock::Lock a(client, first, 5s);
    const std::string token(a.token());
    redilock::Lock b(std::move(a));
    EXPECT_FALSE(a.owns_lock());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    EXPECT_TRUE(b.owns_lock());
    EXPECT_EQ(b.token(), token);
    EXPECT_EQ(b.name(), first);

    redilock::Lock c(client, second, 5s);
    c = std::move(b);  // releases `second`, takes over `first`
    EXPECT_FALSE(held_elsewhere(second));
    EXPECT_TRUE(c.owns_lock());
    EXPECT_EQ(c.token(), token);

    redilock::Lock d;
    swap(c, d);
    EXPECT_FALSE(c.owns_lock());
    EXPECT_TRUE(d.owns_lock());

    std::vector<redilock::Lock> held;
    held.push_back(std::move(d));
    held.emplace_back(client, second, 5s);
    held.clear();
    EXPECT_FALSE(held_elsewhere(first));
    EXPECT_FALSE(held_elsewhere(second));
}

TEST_F(RedilockTest, MovingTheClientKeepsItsLocksWorking) {
    const std::string name = lock_name("client-move");
    redilock::Lock lock(client, name, 5s);
    redilock::Client moved(std::move(client));
    EXPECT_EQ(client.c_handle(), nullptr);  // NOLINT(bugprone-use-after-move)
    lock.unlock();
    redilock::Lock again(moved, name, 5s);
    EXPECT_TRUE(again.owns_lock());

    const auto e = thrown_by([&] { redilock::Lock on_empty(client, name + ":2", 5s); });
    EXPECT_EQ(e.code(), errc::null_argument);
    EXPECT_EQ(e.code(), std::errc::invalid_argument);

    redilock::Client assigned(redis_url(), 1s);
    assigned = std::move(moved);
    again.unlock();
    redilock::Lock through_assigned(assigned, name, 5s, std::try_to_lock);
    EXPECT_TRUE(through_assigned.owns_lock());
}

TEST_F(RedilockTest, DestructorOfAnExpiredLockDoesNotThrow) {
    static_assert(std::is_nothrow_destructible_v<redilock::Lock>);
    const std::string name = lock_name("expired");
    EXPECT_NO_THROW({
        redilock::Lock lock(client, name, 50ms, without_renewal);
        ASSERT_TRUE(eventually([&] { return !key_exists(name); }));
    });

    // Expired and taken by another owner: the old guard must not delete the new owner's lock.
    std::optional<redilock::Lock> stale(std::in_place, client, name, 50ms, without_renewal);
    ASSERT_TRUE(eventually([&] { return !key_exists(name); }));
    redilock::Lock current(observer, name, 5s, std::try_to_lock);
    ASSERT_TRUE(current.owns_lock());
    EXPECT_NO_THROW(stale.reset());
    EXPECT_TRUE(held_elsewhere(name));
}

TEST_F(RedilockTest, UnlockOfAnExpiredLockReportsNotOwner) {
    const std::string name = lock_name("not-owner");
    redilock::Lock lock(client, name, 50ms, without_renewal);
    ASSERT_TRUE(eventually([&] { return !key_exists(name); }));
    const auto e = thrown_by([&] { lock.unlock(); });
    EXPECT_EQ(e.code(), errc::not_owner);
    EXPECT_EQ(e.code(), std::errc::operation_not_permitted);
    EXPECT_NE(std::string(e.what()).find("is not held by this token"), std::string::npos) << e.what();
    EXPECT_FALSE(lock.owns_lock());

    ASSERT_TRUE(lock.try_lock_for(50ms));
    ASSERT_TRUE(eventually([&] { return !key_exists(name); }));
    std::error_code ec;
    lock.unlock(ec);
    EXPECT_EQ(ec, errc::not_owner);
    EXPECT_NE(redilock::last_error().find("is not held by this token"), std::string::npos) << redilock::last_error();
}

TEST_F(RedilockTest, InvalidArgumentsThrowAndSetCodes) {
    auto e = thrown_by([&] { redilock::Lock lock(client, "", 5s); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();

    e = thrown_by([&] { redilock::Lock lock(client, lock_name("negative"), -5ms); });
    EXPECT_EQ(e.code(), errc::invalid_argument);

    e = thrown_by([] { redilock::Client bad("http://nope", 1s); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("invalid Redis URL"), std::string::npos) << e.what();

    std::error_code ec;
    redilock::Client bad("http://nope", 1s, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    EXPECT_EQ(bad.c_handle(), nullptr);

    redilock::ClientOptions options;
    options.retry_interval = 0ms;
    e = thrown_by([&] { redilock::Client with_options(redis_url(), options); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("retry interval"), std::string::npos) << e.what();

    options.retry_interval.reset();
    options.command_timeout = -1s;
    redilock::Client with_options(redis_url(), options, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
}

// The library checks every duration, whatever took it: a negative one is refused with
// errc::invalid_argument and the library's own message, before anything is sent.
TEST_F(RedilockTest, NegativeDurationsAreRefusedWithTheLibrarysMessage) {
    const std::string name = lock_name("negative");
    const auto expect_refused = [](const redilock::error& e, const std::string& message) {
        EXPECT_EQ(e.code(), errc::invalid_argument);
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
        EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(redilock::last_error()), std::string::npos) << e.what();
    };
    redis_cli("CONFIG RESETSTAT");

    expect_refused(thrown_by([&] { redilock::Lock lock(client, name, -5ms); }),
                   "the TTL must not be negative, not -5 ms");
    expect_refused(thrown_by([&] { redilock::Lock lock(client, name, -1s, std::try_to_lock); }),
                   "the TTL must not be negative, not -1000 ms");
    // Rounded away from zero: -500us must not become 0, the client's default TTL.
    expect_refused(thrown_by([&] { redilock::Lock lock(client, name, -500us, without_renewal); }),
                   "the TTL must not be negative, not -1 ms");
    expect_refused(thrown_by([&] { redilock::Mutex(client, name, -5ms).lock(); }),
                   "the TTL must not be negative, not -5 ms");
    expect_refused(thrown_by([&] { client.lock_async(name, -5ms).get(); }), "the TTL must not be negative, not -5 ms");
    expect_refused(thrown_by([&] { redilock::Lock lock(client, name, 5s, redilock::LockOptions().max_hold(-1s)); }),
                   "the maximum hold time must not be negative, not -1000 ms");
    const auto unrenewed_negative_hold = redilock::LockOptions(without_renewal).max_hold(-1s);  // checked all the same
    expect_refused(thrown_by([&] { redilock::Lock lock(client, name, 5s, unrenewed_negative_hold); }),
                   "the maximum hold time must not be negative, not -1000 ms");

    std::error_code ec;
    redilock::Lock deferred(client, name, -5ms, std::defer_lock);
    EXPECT_EQ(deferred.ttl(), -5ms);
    EXPECT_FALSE(deferred.try_lock_for(1s, ec));
    EXPECT_EQ(ec, errc::invalid_argument);
    EXPECT_EQ(redilock::last_error(), "the TTL must not be negative, not -5 ms");
    EXPECT_FALSE(deferred.owns_lock());

    expect_refused(thrown_by([] { redilock::Client negative(redis_url(), -1s); }),
                   "the TTL must not be negative, not -1000 ms");
    redilock::Client negative(redis_url(), -1ms, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    EXPECT_EQ(negative.c_handle(), nullptr);
    const auto expect_option_refused = [&](auto field, const std::string& message) {
        redilock::ClientOptions options;
        options.*field = -1s;
        expect_refused(thrown_by([&] { redilock::Client with_options(redis_url(), options); }), message);
    };
    using Options = redilock::ClientOptions;
    expect_option_refused(&Options::retry_interval, "the retry interval must not be negative, not -1000 ms");
    expect_option_refused(&Options::connect_timeout, "the connect timeout must not be negative, not -1000 ms");
    expect_option_refused(&Options::command_timeout, "the command timeout must not be negative, not -1000 ms");
    expect_option_refused(&Options::default_ttl, "the TTL must not be negative, not -1000 ms");

    EXPECT_FALSE(key_exists(name));
    EXPECT_EQ(scripts_run(), 0);
}

// Durations are rounded up to whole milliseconds, so that a positive one never becomes 0 (which
// would ask for the client's default TTL); one too long for int64 milliseconds saturates, so that
// the library refuses it as too long instead of seeing an overflowed value.
TEST_F(RedilockTest, DurationsAreRoundedUpToWholeMillisecondsAndSaturate) {
    const std::string name = lock_name("rounded");
    redilock::Client hour_by_default(redis_url(), 1h);
    EXPECT_EQ(redilock::Lock(hour_by_default, name, 1ns, std::defer_lock).ttl(), 1ms);
    redilock::Lock brief(hour_by_default, name, 1500us, std::defer_lock, without_renewal);
    EXPECT_EQ(brief.ttl(), 2ms);
    ASSERT_TRUE(brief.try_lock());
    EXPECT_TRUE(eventually([&] { return !key_exists(name); })) << "taken for the default hour, not for 2 ms";

    redilock::Lock endless(client, name, std::chrono::hours::max(), std::defer_lock);
    EXPECT_EQ(endless.ttl(), std::chrono::milliseconds::max());
    const auto e = thrown_by([&] { endless.lock(); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("the TTL must be at most 4611686018427387904 ms"), std::string::npos)
        << e.what();
    EXPECT_EQ(thrown_by([&] { redilock::Lock lock(client, name, redilock::max_ttl + 1ms); }).code(),
              errc::invalid_argument);

    redilock::Lock eternal(client, name, redilock::max_ttl, without_renewal);
    EXPECT_GT(eternal.remaining_ttl(), 24h * 365 * 1000);
}

// A release hands the lock to the first waiter in line and wakes it at once: the retry interval
// is only a safety net, so waiters are served promptly and in order even when it is a minute
// (and the holders' TTLs are longer than the test, so that no expiry is what serves them).
TEST_F(RedilockTest, AWaiterIsHandedTheLockByTheReleasePromptlyWhateverTheRetryInterval) {
    const std::string name = lock_name("handed");
    redilock::ClientOptions options;
    options.retry_interval = 60s;
    redilock::Client patient(redis_url(), options);
    redilock::Lock holder(observer, name, 60s, without_renewal);

    std::future<redilock::Lock> first = patient.lock_async(name, 30s, without_renewal);
    ASSERT_TRUE(eventually([&] { return waiters(name) == 1; }));
    const std::string entry = redis_cli("LINDEX '" + queue_key(name) + "' 0");
    std::future<redilock::Lock> second = patient.lock_async(name, 45s);
    ASSERT_TRUE(eventually([&] { return waiters(name) == 2; }));

    // Whether `pending` is served promptly; if not, closing the client ends its wait, so that
    // the test fails rather than waits out the retry interval.
    const auto served_promptly = [&](std::future<redilock::Lock>& pending) {
        const bool served = pending.wait_for(scaled(2s)) == std::future_status::ready;
        if (!served) patient.close();
        return served;
    };
    holder.unlock();
    ASSERT_TRUE(served_promptly(first)) << "the release did not hand the lock to the first waiter";
    redilock::Lock one = first.get();
    EXPECT_EQ(entry, std::string(one.token()) + "30000");  // the queue entry: its token, then its TTL
    EXPECT_EQ(second.wait_for(0ms), std::future_status::timeout);
    EXPECT_EQ(waiters(name), 1);
    one.unlock();
    ASSERT_TRUE(served_promptly(second)) << "the release did not hand the lock to the next waiter";
    redilock::Lock two = second.get();
    EXPECT_TRUE(two.owns_lock());
    EXPECT_GT(two.remaining_ttl(), 40s);  // the TTL it queued with
    EXPECT_GT(two.fence(), 0u);
}

// A client that is not fair takes a free lock whoever waits in line; the fair waiter keeps its
// place, and the barger's release hands the lock to it.
TEST_F(RedilockTest, AClientThatIsNotFairBarges) {
    const std::string name = lock_name("barged");
    redilock::ClientOptions options;
    options.retry_interval = 60s;
    redilock::Client fair(redis_url(), options);
    redilock::Lock holder(observer, name, 60s, without_renewal);
    std::future<redilock::Lock> in_line = fair.lock_async(name, 60s, without_renewal);
    ASSERT_TRUE(eventually([&] { return waiters(name) == 1; }));
    redis_cli("DEL " + name);  // free, with a waiter in line

    options.fair = false;
    redilock::Client barger(redis_url(), options);
    redilock::Lock barged(barger, name, 60s, std::try_to_lock, without_renewal);
    EXPECT_TRUE(barged.owns_lock()) << "a client that is not fair did not take the free lock";
    EXPECT_EQ(waiters(name), 1) << "the fair waiter lost its place";
    barged.unlock();
    const bool served = in_line.wait_for(scaled(2s)) == std::future_status::ready;
    if (!served) fair.close();  // so that the test fails rather than waits out the retry interval
    ASSERT_TRUE(served);
    EXPECT_TRUE(in_line.get().owns_lock());
}

TEST_F(RedilockTest, OptionsReachTheClient) {
    redilock::ClientOptions options;
    options.retry_interval = 20ms;
    options.connect_timeout = 500ms;
    options.command_timeout = 500ms;
    options.default_ttl = 3s;
    options.key_prefix = lock_name("prefix:");
    redilock::Client prefixed(redis_url(), options);
    redilock::Lock lock(prefixed, "job", redilock::default_ttl);
    EXPECT_TRUE(held_elsewhere(options.key_prefix + "job"));
    EXPECT_FALSE(held_elsewhere("job"));
}

TEST_F(RedilockTest, ErrorCodeOverloadsNeverThrow) {
    std::error_code ec = errc::panic;
    redilock::Client quiet(redis_url(), 10s, ec);
    EXPECT_FALSE(ec);
    quiet.ping(ec);
    EXPECT_FALSE(ec);

    const std::string name = lock_name("codes");
    redilock::Lock lock(quiet, name, 5s, std::defer_lock);
    lock.lock(ec);
    EXPECT_FALSE(ec);
    EXPECT_FALSE(lock.try_lock(ec));
    EXPECT_EQ(ec, std::errc::resource_deadlock_would_occur);
    lock.unlock(ec);
    EXPECT_FALSE(ec);
    lock.unlock(ec);
    EXPECT_EQ(ec, std::errc::operation_not_permitted);

    redilock::Lock holder(client, name, 5s);
    EXPECT_FALSE(lock.try_lock(ec));
    EXPECT_FALSE(ec);  // held by another owner is an outcome, not a failure
    EXPECT_FALSE(lock.try_lock_for(50ms, ec));
    EXPECT_FALSE(ec);
    holder.unlock();
    EXPECT_TRUE(lock.try_lock_for(50ms, ec));
    EXPECT_FALSE(ec);
}

TEST_F(RedilockTest, UnreachableServerIsAConnectionError) {
    redilock::ClientOptions options;
    options.connect_timeout = 300ms;
    redilock::Client unreachable("redis://127.0.0.1:1", options);  // nothing listens on port 1
    const auto start = Clock::now();
    const auto e = thrown_by([&] { redilock::Lock lock(unreachable, lock_name("n"), 1s); });
    EXPECT_LT(elapsed_since(start), scaled(2000ms));
    EXPECT_EQ(e.code(), errc::connection);
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
    EXPECT_EQ(thrown_by([&] { unreachable.ping(); }).code(), errc::connection);
    std::error_code ec;
    unreachable.ping(ec);
    EXPECT_EQ(ec, errc::connection);
}

TEST_F(RedilockTest, ErrorReplyFromRedisIsARedisError) {
    // The test server has no password: AUTH with one is refused with an error reply.
    std::string url = redis_url();
    ASSERT_EQ(url.rfind("redis://", 0), 0u);
    url.insert(std::string("redis://").size(), ":wrong-password@");
    redilock::Client refused(url, 10s);
    const auto e = thrown_by([&] { redilock::Lock lock(refused, lock_name("n"), 1s); });
    EXPECT_EQ(e.code(), errc::redis);
    EXPECT_EQ(e.code().message(), redilock_status_str(REDILOCK_STATUS_REDIS));
    EXPECT_EQ(std::string(e.what()).find("wrong-password"), std::string::npos) << e.what();
}

TEST_F(RedilockTest, HandleFromBeforeForkIsWrongProcess) {
    const pid_t child = fork();
    if (child == 0) {
        redilock::Lock lock(client, lock_name("fork"), 5s, std::defer_lock);
        std::error_code ec;
        lock.lock(ec);
        _exit(ec == errc::wrong_process ? 0 : 1);
    }
    int status = -1;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

TEST_F(RedilockTest, CancelEndsABlockingWait) {
    const std::string name = lock_name("cancel");
    redilock::Lock holder(client, name, 5s);
    redilock::CancelSignal cancel;
    Clock::time_point triggered;
    std::thread canceller([&] {
        EXPECT_TRUE(eventually([&] { return waiters(name) == 1; }));
        triggered = Clock::now();
        cancel.trigger();
    });
    redilock::Lock waiter(client, name, 5s, std::defer_lock);
    const auto e = thrown_by([&] { waiter.lock(cancel); });
    canceller.join();
    EXPECT_LT(elapsed_since(triggered), scaled(1000ms));
    EXPECT_EQ(e.code(), errc::cancelled);
    EXPECT_EQ(e.code(), std::errc::operation_canceled);
    EXPECT_FALSE(waiter.owns_lock());
    std::error_code ec;
    waiter.lock(cancel, ec);  // a triggered signal stays triggered
    EXPECT_EQ(ec, errc::cancelled);
}

TEST_F(RedilockTest, LockAsyncWaitsForTheRelease) {
    const std::string name = lock_name("async");
    redilock::Lock holder(client, name, 5s);
    std::future<redilock::Lock> pending = client.lock_async(name, 5s);
    ASSERT_TRUE(eventually([&] { return waiters(name) == 1; }));
    EXPECT_EQ(pending.wait_for(0ms), std::future_status::timeout);
    holder.unlock();
    redilock::Lock acquired = pending.get();
    EXPECT_TRUE(acquired.owns_lock());
    EXPECT_EQ(acquired.name(), name);
    EXPECT_TRUE(held_elsewhere(name));
    acquired.unlock();

    // A result nobody collects is released with the future.
    client.lock_async(name, 5s).wait();
    EXPECT_FALSE(held_elsewhere(name));
}

TEST_F(RedilockTest, LockAsyncCanBeCancelled) {
    const std::string name = lock_name("async-cancel");
    redilock::Lock holder(client, name, 5s);
    redilock::CancelSignal cancel;
    std::future<redilock::Lock> pending = client.lock_async(name, 5s, cancel);
    EXPECT_TRUE(eventually([&] { return waiters(name) == 1; }));
    EXPECT_EQ(pending.wait_for(0ms), std::future_status::timeout);
    cancel.trigger();
    EXPECT_EQ(pending.wait_for(scaled(2s)), std::future_status::ready);
    EXPECT_EQ(thrown_by([&] { pending.get(); }).code(), errc::cancelled);
}

TEST_F(RedilockTest, MutexWorksWithLockGuardAndUniqueLock) {
    const std::string name = lock_name("mutex");
    redilock::Mutex mutex(client, name, 5s);
    EXPECT_EQ(mutex.name(), name);
    {
        const std::lock_guard<redilock::Mutex> guard(mutex);
        EXPECT_TRUE(held_elsewhere(name));
    }
    EXPECT_FALSE(held_elsewhere(name));

    redilock::Mutex rival(observer, name, 5s);
    std::unique_lock<redilock::Mutex> mine(mutex, std::try_to_lock);
    EXPECT_TRUE(mine.owns_lock());
    std::unique_lock<redilock::Mutex> theirs(rival, std::try_to_lock);
    EXPECT_FALSE(theirs.owns_lock());
    EXPECT_FALSE(theirs.try_lock_for(100ms));
    EXPECT_FALSE(theirs.try_lock_until(Clock::now() + 50ms));
    mine.unlock();
    EXPECT_TRUE(theirs.try_lock_for(scaled(2s)));
}

TEST_F(RedilockTest, ScopedLockTakesSeveralMutexesWithoutDeadlock) {
    const std::string first = lock_name("first"), second = lock_name("second");
    redilock::Mutex a(client, first, 5s), b(client, second, 5s);
    {
        const std::scoped_lock both(a, b);
        EXPECT_TRUE(held_elsewhere(first));
        EXPECT_TRUE(held_elsewhere(second));
    }
    EXPECT_FALSE(held_elsewhere(first));
    EXPECT_FALSE(held_elsewhere(second));

    // Opposite orders from two threads: std::scoped_lock's algorithm must avoid the deadlock.
    int sections = 0;
    const auto take_both = [&](const std::string& one, const std::string& other) {
        redilock::Client own(redis_url(), 10s);
        redilock::Mutex x(own, one, 5s), y(own, other, 5s);
        for (int i = 0; i < 50; i++) {
            const std::scoped_lock guard(x, y);
            sections++;
        }
    };
    std::thread forward(take_both, first, second), backward(take_both, second, first);
    forward.join();
    backward.join();
    EXPECT_EQ(sections, 100);
}

TEST_F(RedilockTest, MutexUnlockReportsAnExpiredLockOnRequest) {
    redilock::Mutex mutex(client, lock_name("mutex-expired"), 50ms, without_renewal);
    mutex.lock();
    ASSERT_TRUE(eventually([&] { return !key_exists(mutex.name()); }));
    std::error_code ec;
    mutex.unlock(ec);
    EXPECT_EQ(ec, errc::not_owner);
    ASSERT_TRUE(mutex.try_lock());
    ASSERT_TRUE(eventually([&] { return !key_exists(mutex.name()); }));
    static_assert(noexcept(mutex.unlock()));
    mutex.unlock();  // the standard guards' unlock: never throws
}

// Eight threads increment a plain counter under the lock; any overlap would lose updates.
class Counting : public RedilockTest {
protected:
    static constexpr int threads = 8;
    static constexpr int iterations = 500;

    void count_once() {
        if (inside.fetch_add(1) != 0) overlaps++;
        const long seen = counter;
        std::this_thread::yield();
        counter = seen + 1;
        inside.fetch_sub(1);
    }

    template <class Body>
    void run_threads(Body body) {
        std::vector<std::thread> workers;
        for (int t = 0; t < threads; t++) workers.emplace_back(body);
        for (auto& worker : workers) worker.join();
        EXPECT_EQ(overlaps.load(), 0);
        EXPECT_EQ(counter, long{threads} * iterations);
    }

    long counter = 0;  // deliberately not atomic: the lock is what protects it
    std::atomic<int> inside{0};
    std::atomic<int> overlaps{0};
};

TEST_F(Counting, EightThreadsWithLockGuards) {
    const std::string name = lock_name("counter");
    run_threads([&] {
        for (int i = 0; i < iterations; i++) {
            redilock::Lock lock(client, name, 5s);
            count_once();
        }
    });
}

TEST_F(Counting, EightThreadsSharingOneMutex) {
    redilock::Mutex mutex(client, lock_name("counter"), 5s);
    run_threads([&] {
        for (int i = 0; i < iterations; i++) {
            const std::lock_guard<redilock::Mutex> guard(mutex);
            count_once();
        }
    });
}

}  // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (std::getenv("REDIS_URL") == nullptr) {
        std::fprintf(stderr, "REDIS_URL is not set: run through tests/harness/with-redis\n");
        return 2;
    }
    return RUN_ALL_TESTS();
}
