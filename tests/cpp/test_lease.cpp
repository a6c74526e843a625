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

using Lease = RedilockTest;

// Options whose on_lost counts the losses in `losses`.
redilock::LockOptions counting_losses(std::atomic<int>& losses) {
    return redilock::LockOptions().on_lost([&losses] { losses++; });
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
    std::this_thread::sleep_for(150ms);
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

TEST_F(Lease, InvalidExtendTtlsAreRefusedBeforeAnythingIsSent) {
    const std::string name = lock_name("job");
    redilock::Lock lock(client, name, 10s, without_renewal);
    redis_cli("CONFIG RESETSTAT");
    for (const std::chrono::milliseconds ttl : {0ms, -1ms, redilock::max_ttl + 1ms}) {
        std::error_code ec;
        lock.extend(ttl, ec);
        EXPECT_EQ(ec, errc::invalid_argument) << ttl.count() << " ms";
    }
    EXPECT_EQ(thrown_by([&] { lock.extend(0ms); }).code(), errc::invalid_argument);
    EXPECT_EQ(scripts_run(), 0);
    EXPECT_GT(std::stol(redis_cli("PTTL " + name)), 9000);  // PEXPIRE 0 would have deleted it
}

TEST_F(Lease, AutoRenewalHoldsALockFiveTimesItsTtlAndStopsAtUnlock) {
    const std::string name = lock_name("long");
    redilock::Lock lock(client, name, 200ms);  // renewed: the default
    for (int i = 1; i <= 10; i++) {
        std::this_thread::sleep_for(100ms);
        EXPECT_TRUE(held_elsewhere(name)) << "after " << i * 100 << " ms";
    }
    EXPECT_FALSE(lock.lost());
    EXPECT_LE(lock.remaining_ttl(), 200ms);
    lock.unlock();
    EXPECT_EQ(redis_cli("EXISTS " + name), "0");
    redis_cli("CONFIG RESETSTAT");
    std::this_thread::sleep_for(400ms);
    EXPECT_EQ(scripts_run(), 0) << "a renewal was sent after unlock";
}

TEST_F(Lease, WithoutRenewalTheTtlEndsTheLock) {
    const std::string name = lock_name("plain");
    redilock::Lock lock(client, name, 100ms, without_renewal);
    std::this_thread::sleep_for(300ms);
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
    EXPECT_LT(elapsed_since(deleted), 2s);  // at the next renewal, due every 100 ms
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
    const auto start = Clock::now();
    redilock::Lock lock(client, name, 200ms, counting_losses(losses).max_hold(300ms));
    ASSERT_TRUE(eventually([&] { return losses.load() == 1; }));
    EXPECT_GE(elapsed_since(start), 290ms);
    EXPECT_TRUE(lock.lost());
    EXPECT_FALSE(held_elsewhere(name));
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
// guard is gone, so what it captures may die with the guard (ASan would see a late call).
TEST_F(Lease, ACallbackNeverOutlivesItsGuard) {
    const std::string name = lock_name("racing");
    int calls = 0;
    for (int round = 0; round < 10; round++) {
        std::atomic<int> running{0};
        std::atomic<bool> called{false};
        const auto witness = std::make_unique<std::string>("alive");
        {
            redilock::Lock lock(client, name, 60ms, redilock::LockOptions().on_lost([&] {
                running++;
                called = true;
                std::this_thread::sleep_for(30ms);
                EXPECT_EQ(*witness, "alive");
                running--;
            }));
            redis_cli("DEL " + name);
            std::this_thread::sleep_for(std::chrono::milliseconds(10 * round));
        }
        EXPECT_EQ(running.load(), 0) << "round " << round;
        calls += called;
    }
    EXPECT_GT(calls, 0) << "no round reached the callback";
}

TEST_F(Lease, MovedLocksKeepTheirRenewalAndCallback) {
    const std::string name = lock_name("moved");
    std::atomic<int> losses{0};
    redilock::Lock first(client, name, 200ms, counting_losses(losses));
    const std::uint64_t fence = first.fence();
    redilock::Lock second(std::move(first));
    std::vector<redilock::Lock> held;
    held.push_back(std::move(second));
    EXPECT_EQ(first.fence(), 0u);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    EXPECT_FALSE(first.lost());    // NOLINT(bugprone-use-after-move)
    std::this_thread::sleep_for(500ms);
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

    EXPECT_GE(fences.front(), 1u);
    for (size_t i = 1; i < fences.size(); i++) EXPECT_LT(fences[i - 1], fences[i]) << "acquisition " << i;
}

TEST_F(Lease, LockAsyncRenewsAndReportsAsTold) {
    const std::string name = lock_name("async");
    redilock::Lock holder(observer, name, 5s, without_renewal);
    std::atomic<int> losses{0};
    std::future<redilock::Lock> pending = client.lock_async(name, 200ms, counting_losses(losses));
    holder.unlock();
    redilock::Lock acquired = pending.get();
    std::this_thread::sleep_for(600ms);
    EXPECT_TRUE(held_elsewhere(name));
    redis_cli("DEL " + name);
    ASSERT_TRUE(eventually([&] { return losses.load() == 1; }));
    EXPECT_TRUE(acquired.lost());
}

TEST_F(Lease, MutexRenewsThroughALongSectionUnderLockGuard) {
    const std::string name = lock_name("mutex");
    redilock::Mutex mutex(client, name, 200ms);
    {
        const std::lock_guard<redilock::Mutex> guard(mutex);
        EXPECT_GT(mutex.fence(), 0u);
        for (int i = 1; i <= 10; i++) {
            std::this_thread::sleep_for(100ms);
            EXPECT_TRUE(held_elsewhere(name)) << "after " << i * 100 << " ms";
        }
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
