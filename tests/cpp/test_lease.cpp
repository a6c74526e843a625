// Leases through the C++ layer: extend, remaining TTL, auto-renewal with its loss notice, and
// fencing numbers, against a real redis-server. A loss is caused by deleting the key behind the
// holder's back with redis-cli.
#include "redilock.hpp"

#include "support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

// The TTL of a lock that renewal must keep: the renewal has two thirds of it to reach Redis,
// and a loaded machine can stall a process for a good part of a second.
const std::chrono::milliseconds renewed_ttl = scaled(1s);

class Lease : public RedilockTest {
protected:
    // Checks every half TTL, for twice the TTL of a renewed lock, that `name` stays held.
    void expect_held_past_its_ttl(const std::string& name) {
        for (int halves = 1; halves <= 4; halves++) {
            std::this_thread::sleep_for(renewed_ttl / 2);
            EXPECT_TRUE(held_elsewhere(name)) << "after " << halves << " half TTLs";
        }
    }
};

// Options whose on_lost counts the losses in `losses`.
redilock::LockOptions counting_losses(std::atomic<int>& losses) {
    return redilock::LockOptions().on_lost([&losses] { losses++; });
}

// Options whose on_lost counts its calls in `calls`, and whose callback counts in `drops` when
// it is destroyed: pass them as a temporary, so that the guard and the library hold the only
// references to the callback.
redilock::LockOptions watched(std::atomic<int>& calls, std::atomic<int>& drops) {
    return redilock::LockOptions().on_lost([&calls, witness = drop_counter(drops)] { calls++; });
}

TEST_F(Lease, ExtendResetsTheTtlOfAHeldLockOnly) {
    const std::string name = lock_name("job");
    redilock::Lock lock(client, name, 2s, without_renewal);
    lock.extend(60s);
    EXPECT_GT(std::stol(redis_cli("PTTL " + name)), 50000);
    const std::chrono::milliseconds remaining = lock.remaining_ttl();
    EXPECT_GT(remaining, 50s);
    EXPECT_LE(remaining, 60s);

    // Expired: never re-created. Then another owner's: left alone.
    redilock::Lock stale(client, lock_name("stale"), 50ms, without_renewal);
    ASSERT_TRUE(eventually([&] { return !key_exists(stale.name()); }));
    EXPECT_EQ(thrown_by([&] { stale.extend(5s); }).code(), errc::not_owner);
    EXPECT_EQ(redis_cli("EXISTS " + stale.name()), "0");
    redilock::Lock successor(observer, stale.name(), 5s, without_renewal);
    std::error_code ec;
    stale.extend(60s, ec);
    EXPECT_EQ(ec, errc::not_owner);
    EXPECT_EQ(stale.remaining_ttl(ec), 0ms);
    EXPECT_EQ(ec, errc::not_owner);
    EXPECT_EQ(thrown_by([&] { static_cast<void>(stale.remaining_ttl()); }).code(), errc::not_owner);
    EXPECT_LE(successor.remaining_ttl(), 5s);

    redilock::Lock empty(client, name, 5s, std::defer_lock);
    EXPECT_EQ(thrown_by([&] { empty.extend(1s); }).code(), std::errc::operation_not_permitted);
    EXPECT_EQ(thrown_by([&] { static_cast<void>(empty.remaining_ttl()); }).code(),
              std::errc::operation_not_permitted);
}

// The library refuses them, with its own message; the C++ layer only rounds (away from zero, so
// that -500us stays negative) and saturates (so that hours::max() is too long, not overflowed).
TEST_F(Lease, InvalidExtendTtlsAreRefusedBeforeAnythingIsSent) {
    const std::string name = lock_name("job");
    redilock::Lock lock(client, name, 10s, without_renewal);
    redis_cli("CONFIG RESETSTAT");
    const std::string too_long = "the TTL must be at most 4611686018427387904 ms";
    const auto expect_refused = [&](auto ttl, const std::string& message) {
        std::error_code ec;
        lock.extend(ttl, ec);
        EXPECT_EQ(ec, errc::invalid_argument) << message;
        EXPECT_EQ(redilock::last_error(), message);
        const auto e = thrown_by([&] { lock.extend(ttl); });
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
        EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    };
    expect_refused(0ms, "the TTL must be greater than 0 ms");
    expect_refused(-1ms, "the TTL must not be negative, not -1 ms");
    expect_refused(-500us, "the TTL must not be negative, not -1 ms");
    expect_refused(redilock::max_ttl + 1ms, too_long);
    expect_refused(std::chrono::hours::max(), too_long);
    EXPECT_EQ(scripts_run(), 0);
    EXPECT_GT(std::stol(redis_cli("PTTL " + name)), 9000);  // PEXPIRE 0 would have deleted it

    lock.extend(1us);  // rounded up to 1 ms, never to 0
    EXPECT_TRUE(eventually([&] { return !key_exists(name); }));
}

// -1 from the library ("no expiry", which only other software sets) is the longest time left.
TEST_F(Lease, ALockWithoutExpiryHasTheLongestRemainingTtl) {
    const std::string name = lock_name("persisted");
    redilock::Lock lock(client, name, 10s, without_renewal);
    ASSERT_EQ(redis_cli("PERSIST " + name), "1");
    EXPECT_EQ(lock.remaining_ttl(), std::chrono::milliseconds::max());
    std::error_code ec = errc::panic;
    EXPECT_EQ(lock.remaining_ttl(ec), std::chrono::milliseconds::max());
    EXPECT_FALSE(ec);
    lock.unlock();
    EXPECT_FALSE(key_exists(name));
}

TEST_F(Lease, AutoRenewalHoldsALockTwiceItsTtlAndStopsAtUnlock) {
    const std::string name = lock_name("long");
    redilock::Lock lock(client, name, renewed_ttl);  // renewed: the default
    expect_held_past_its_ttl(name);
    EXPECT_FALSE(lock.lost());
    EXPECT_LE(lock.remaining_ttl(), renewed_ttl);
    lock.unlock();
    EXPECT_EQ(redis_cli("EXISTS " + name), "0");
    redis_cli("CONFIG RESETSTAT");
    std::this_thread::sleep_for(renewed_ttl * 2 / 3);  // two renewals would be due
    EXPECT_EQ(scripts_run(), 0) << "a renewal was sent after unlock";
}

TEST_F(Lease, WithoutRenewalTheTtlEndsTheLock) {
    const std::string name = lock_name("plain");
    redilock::Lock lock(client, name, 100ms, without_renewal);
    ASSERT_TRUE(eventually([&] { return !key_exists(name); }));
    EXPECT_FALSE(held_elsewhere(name));
    EXPECT_FALSE(lock.lost());  // only renewal knows about losses; Redis knows the rest
    EXPECT_EQ(thrown_by([&] { lock.unlock(); }).code(), errc::not_owner);
}

TEST_F(Lease, AFailedOrCancelledAcquisitionStartsNoRenewal) {
    const std::string name = lock_name("contended");
    redilock::Lock holder(observer, name, 10s, without_renewal);
    std::atomic<int> losses{0};
    redilock::Lock rival(client, name, 150ms, std::try_to_lock, counting_losses(losses));
    EXPECT_FALSE(rival.owns_lock());
    redilock::CancelSignal cancel;
    cancel.trigger();
    redilock::Lock waiter(client, name, 150ms, std::defer_lock, counting_losses(losses));
    EXPECT_EQ(thrown_by([&] { waiter.lock(cancel); }).code(), errc::cancelled);
    EXPECT_EQ(rival.fence(), 0u);
    EXPECT_EQ(waiter.fence(), 0u);

    redis_cli("CONFIG RESETSTAT");
    std::this_thread::sleep_for(400ms);  // a renewal would run every 50 ms
    EXPECT_EQ(scripts_run(), 0);
    EXPECT_EQ(losses.load(), 0);
}

TEST_F(Lease, ALockDeletedBehindTheHoldersBackIsReportedLost) {
    const std::string name = lock_name("deleted");
    std::atomic<bool> told{false};
    std::atomic<bool> told_on_the_holders_thread{false};
    const std::thread::id holder_thread = std::this_thread::get_id();
    const auto options = redilock::LockOptions().on_lost([&] {
        told_on_the_holders_thread = std::this_thread::get_id() == holder_thread;
        told = true;
    });
    redilock::Lock lock(client, name, 300ms, options);
    EXPECT_FALSE(lock.lost());
    redis_cli("DEL " + name);
    const auto deleted = Clock::now();
    ASSERT_TRUE(eventually([&] { return told.load(); }));
    EXPECT_LT(elapsed_since(deleted), scaled(2s));  // at the next renewal, due every 100 ms
    EXPECT_FALSE(told_on_the_holders_thread);
    EXPECT_TRUE(lock.lost());
    EXPECT_TRUE(lock.owns_lock());
    EXPECT_EQ(thrown_by([&] { lock.unlock(); }).code(), errc::not_owner);
    EXPECT_FALSE(lock.owns_lock());
    EXPECT_FALSE(lock.lost());

    // Lost, then left to the destructor, which stays quiet.
    told = false;
    std::optional<redilock::Lock> again(std::in_place, client, name, 300ms, options);
    redis_cli("DEL " + name);
    ASSERT_TRUE(eventually([&] { return told.load(); }));
    EXPECT_TRUE(again->lost());
    EXPECT_NO_THROW(again.reset());
}

TEST_F(Lease, MaxHoldCapsTheRenewal) {
    const std::string name = lock_name("capped");
    std::atomic<int> losses{0};
    const auto max_hold = renewed_ttl * 3 / 2;
    const auto start = Clock::now();
    redilock::Lock lock(client, name, renewed_ttl, counting_losses(losses).max_hold(max_hold));
    ASSERT_TRUE(eventually([&] { return losses.load() == 1; }));
    EXPECT_GE(elapsed_since(start), max_hold - 10ms);
    EXPECT_TRUE(lock.lost());
    // Reported lost when the lease ends by the holder's clock; Redis may keep the key a moment
    // longer (it started the TTL when the last renewal arrived), but no renewal follows.
    EXPECT_TRUE(eventually([&] { return !key_exists(name); }));
    std::error_code ec;
    lock.unlock(ec);
    EXPECT_EQ(ec, errc::not_owner);
    EXPECT_EQ(losses.load(), 1);
}

TEST_F(Lease, UnlockWaitsForARunningCallback) {
    const std::string name = lock_name("slow-callback");
    std::atomic<bool> started{false};
    std::atomic<bool> finished{false};
    redilock::Lock lock(client, name, 300ms, redilock::LockOptions().on_lost([&] {
        started = true;
        std::this_thread::sleep_for(300ms);
        finished = true;
    }));
    redis_cli("DEL " + name);
    ASSERT_TRUE(eventually([&] { return started.load(); }));
    std::error_code ec;
    lock.unlock(ec);
    EXPECT_TRUE(finished.load());
    EXPECT_EQ(ec, errc::not_owner);
}

// Guards destroyed before, during and after their loss notice: a callback never runs once its
// guard is gone, so what it captures may die with the guard (ASan would see a late call), and
// the library drops it once whichever way the race went.
TEST_F(Lease, ACallbackNeverOutlivesItsGuard) {
    const std::string name = lock_name("racing");
    int calls = 0;
    std::atomic<int> drops{0};
    for (int round = 0; round < 10; round++) {
        std::atomic<int> running{0};
        std::atomic<bool> called{false};
        const auto witness = std::make_unique<std::string>("alive");
        {
            redilock::Lock lock(client, name, 60ms,
                                redilock::LockOptions().on_lost([&, dropped = drop_counter(drops)] {
                                    running++;
                                    called = true;
                                    std::this_thread::sleep_for(30ms);
                                    EXPECT_EQ(*witness, "alive");
                                    running--;
                                }));
            redis_cli("DEL " + name);
            std::this_thread::sleep_for(std::chrono::milliseconds(10 * round));  // each round unlocks later
        }
        EXPECT_EQ(running.load(), 0) << "round " << round;
        calls += called;
        EXPECT_TRUE(eventually([&] { return drops.load() == round + 1; })) << "round " << round;
    }
    EXPECT_GT(calls, 0) << "no round reached the callback";
}

// The use-after-free case: the callback writes into a heap object that its owner deletes as soon
// as unlock returns. Unlock must wait for the running callback; under ASan a write after it
// would be reported, and `finished` tells without it.
TEST_F(Lease, WhatTheCallbackWritesMayBeFreedRightAfterUnlock) {
    struct Progress {
        std::atomic<bool> started{false};
        std::atomic<bool> finished{false};
        std::string note;
    };
    const std::string name = lock_name("freed");
    std::atomic<int> calls{0};
    std::atomic<int> drops{0};
    auto progress = std::make_unique<Progress>();
    auto write_progress = [&calls, target = progress.get(), dropped = drop_counter(drops)] {
        calls++;
        target->started = true;
        std::this_thread::sleep_for(100ms);  // unlock is called meanwhile
        target->note = "written while unlock waits";
        target->finished = true;
    };
    {
        // Moved in, so that the guard and the library hold the only copies of `dropped`.
        redilock::Lock lock(client, name, 150ms, redilock::LockOptions().on_lost(std::move(write_progress)));
        EXPECT_EQ(drops.load(), 0);
        redis_cli("DEL " + name);  // the next renewal, within 50 ms, finds it gone
        ASSERT_TRUE(eventually([&] { return progress->started.load(); }));
        std::error_code ec;
        lock.unlock(ec);
        EXPECT_EQ(ec, errc::not_owner);
        EXPECT_TRUE(progress->finished.load()) << "unlock returned while the callback ran";
        progress.reset();
        EXPECT_FALSE(lock.lost());
    }
    EXPECT_EQ(calls.load(), 1);
    EXPECT_TRUE(eventually([&] { return drops.load() == 1; }));
}

// The library drops the callback exactly once however the hold ends; a second drop would free
// it twice (ASan), none would leave `drops` at 0.
TEST_F(Lease, TheCallbackIsDroppedOnceWhicheverWayTheHoldEnds) {
    const std::string name = lock_name("dropped");
    std::atomic<int> calls{0};
    std::atomic<int> drops{0};
    {
        redilock::Lock unlocked(client, name, 10s, watched(calls, drops));
        unlocked.unlock();
    }
    EXPECT_TRUE(eventually([&] { return drops.load() == 1; })) << "unlocked before any loss";
    {
        redilock::Lock holder(observer, name, 10s, without_renewal);
        redilock::Lock refused(client, name, 10s, std::try_to_lock, watched(calls, drops));
        EXPECT_FALSE(refused.owns_lock());
        redilock::CancelSignal cancel;
        cancel.trigger();
        redilock::Lock cancelled(client, name, 10s, std::defer_lock, watched(calls, drops));
        EXPECT_EQ(thrown_by([&] { cancelled.lock(cancel); }).code(), errc::cancelled);
    }
    EXPECT_TRUE(eventually([&] { return drops.load() == 3; })) << "failed acquisitions";

    // Released: the renewal keeps the callback until the token is unlocked or the lease lost,
    // but silenced, so a loss after release() reaches nobody.
    const auto release_a_hold = [&](std::chrono::milliseconds ttl) {
        redilock::Lock released(client, name, ttl, watched(calls, drops));
        return released.release();
    };
    std::string token = release_a_hold(10s);
    EXPECT_EQ(drops.load(), 3);  // the renewal keeps it
    EXPECT_EQ(redilock_unlock(client.c_handle(), name.c_str(), token.c_str()), REDILOCK_STATUS_OK);
    EXPECT_TRUE(eventually([&] { return drops.load() == 4; })) << "released, then unlocked by its token";

    token = release_a_hold(300ms);  // renewed every 100 ms, so the loss is soon noticed
    redis_cli("DEL " + name);
    bool lost = false;
    ASSERT_TRUE(eventually([&] {
        return redilock_renewal_lost(client.c_handle(), token.c_str(), &lost) == REDILOCK_STATUS_OK && lost;
    }));
    EXPECT_TRUE(eventually([&] { return drops.load() == 5; })) << "released, then lost";
    EXPECT_EQ(redilock_unlock(client.c_handle(), name.c_str(), token.c_str()), REDILOCK_STATUS_NOT_OWNER);
    EXPECT_EQ(calls.load(), 0);
    EXPECT_EQ(drops.load(), 5);
}

// A callback may unlock its own Mutex: the unlock does not wait for the callback it runs in.
TEST_F(Lease, ACallbackMayUnlockItsOwnMutex) {
    const std::string name = lock_name("self-unlock");
    std::optional<redilock::Mutex> mutex;
    std::error_code unlocked_inside = errc::panic;
    std::atomic<bool> returned{false};
    mutex.emplace(client, name, 300ms, redilock::LockOptions().on_lost([&] {
        mutex->unlock(unlocked_inside);
        returned = true;
    }));
    mutex->lock();
    redis_cli("DEL " + name);
    ASSERT_TRUE(eventually([&] { return returned.load(); }));
    EXPECT_EQ(unlocked_inside, errc::not_owner);  // the lease was lost
    EXPECT_FALSE(mutex->lost());
    EXPECT_EQ(mutex->fence(), 0u);
    EXPECT_TRUE(mutex->try_lock());
    mutex->unlock();
}

TEST_F(Lease, MovedLocksKeepTheirRenewalAndCallback) {
    const std::string name = lock_name("moved");
    std::atomic<int> losses{0};
    redilock::Lock first(client, name, renewed_ttl, counting_losses(losses));
    const std::uint64_t fence = first.fence();
    redilock::Lock second(std::move(first));
    std::vector<redilock::Lock> held;
    held.push_back(std::move(second));
    EXPECT_EQ(first.fence(), 0u);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    EXPECT_FALSE(first.lost());    // NOLINT(bugprone-use-after-move)
    std::this_thread::sleep_for(renewed_ttl * 3 / 2);  // past its TTL
    EXPECT_TRUE(held_elsewhere(name));
    EXPECT_EQ(held.front().fence(), fence);

    redis_cli("DEL " + name);
    ASSERT_TRUE(eventually([&] { return losses.load() == 1; }));
    EXPECT_TRUE(held.front().lost());
    held.clear();
    EXPECT_EQ(losses.load(), 1);
}

TEST_F(Lease, FencingNumbersStrictlyIncreaseOnEveryAcquisitionPath) {
    const std::string name = lock_name("fenced");
    std::vector<std::uint64_t> fences;
    EXPECT_EQ(redilock::Lock().fence(), 0u);

    // Fencing numbers are large, never below the Redis clock in microseconds: all 64 bits arrive.
    const std::uint64_t floor = redis_clock_us();
    redilock::Lock lock(client, name, 5s);
    fences.push_back(lock.fence());
    lock.unlock();
    EXPECT_EQ(lock.fence(), 0u);
    ASSERT_TRUE(lock.try_lock());
    fences.push_back(lock.fence());
    lock.unlock();
    ASSERT_TRUE(lock.try_lock_for(1s));
    fences.push_back(lock.fence());
    lock.unlock();
    redilock::CancelSignal cancel;
    lock.lock(cancel);
    fences.push_back(lock.fence());
    lock.unlock();
    fences.push_back(redilock::Lock(observer, name, 5s, std::try_to_lock, without_renewal).fence());
    fences.push_back(client.lock_async(name, 5s).get().fence());
    fences.push_back(client.lock_async(name, 5s, without_renewal).get().fence());

    redilock::Mutex mutex(observer, name, 5s);
    EXPECT_EQ(mutex.fence(), 0u);
    {
        const std::lock_guard<redilock::Mutex> guard(mutex);
        fences.push_back(mutex.fence());
    }
    EXPECT_EQ(mutex.fence(), 0u);

    EXPECT_GE(fences.front(), floor);
    for (size_t i = 1; i < fences.size(); i++) EXPECT_LT(fences[i - 1], fences[i]) << "acquisition " << i;
}

TEST_F(Lease, LockAsyncRenewsAndReportsAsTold) {
    const std::string name = lock_name("async");
    redilock::Lock holder(observer, name, 5s, without_renewal);
    std::atomic<int> losses{0};
    std::future<redilock::Lock> pending = client.lock_async(name, renewed_ttl, counting_losses(losses));
    holder.unlock();
    redilock::Lock acquired = pending.get();
    std::this_thread::sleep_for(renewed_ttl * 3 / 2);  // past its TTL
    EXPECT_TRUE(held_elsewhere(name));
    redis_cli("DEL " + name);
    ASSERT_TRUE(eventually([&] { return losses.load() == 1; }));
    EXPECT_TRUE(acquired.lost());
}

TEST_F(Lease, MutexRenewsThroughALongSectionUnderLockGuard) {
    const std::string name = lock_name("mutex");
    redilock::Mutex mutex(client, name, renewed_ttl);
    {
        const std::lock_guard<redilock::Mutex> guard(mutex);
        EXPECT_GT(mutex.fence(), 0u);
        expect_held_past_its_ttl(name);
        EXPECT_FALSE(mutex.lost());
    }
    EXPECT_FALSE(held_elsewhere(name));
    EXPECT_FALSE(mutex.lost());
}

TEST_F(Lease, MutexReportsALostHold) {
    const std::string name = lock_name("mutex-lost");
    std::atomic<int> losses{0};
    redilock::Mutex mutex(client, name, 300ms, counting_losses(losses));
    mutex.lock();
    redis_cli("DEL " + name);
    ASSERT_TRUE(eventually([&] { return losses.load() == 1; }));
    EXPECT_TRUE(mutex.lost());
    std::error_code ec;
    mutex.unlock(ec);
    EXPECT_EQ(ec, errc::not_owner);
    EXPECT_FALSE(mutex.lost());

    // The next hold is watched as well; the standard guard's unlock ignores the loss.
    {
        const std::lock_guard<redilock::Mutex> guard(mutex);
        redis_cli("DEL " + name);
        ASSERT_TRUE(eventually([&] { return losses.load() == 2; }));
        EXPECT_TRUE(mutex.lost());
    }
    EXPECT_FALSE(held_elsewhere(name));
}

}  // namespace
