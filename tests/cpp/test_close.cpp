// Client::close() against a real redis-server: waits in progress on other threads end with
// errc::closed, later calls get it without sending anything, and renewed locks count as lost.
#include "redilock.hpp"

#include "support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>

namespace {

using Closing = RedilockTest;

TEST_F(Closing, EndsAWaitingLockPromptlyAndRefusesLaterCalls) {
    const std::string name = lock_name("held");
    redilock::Lock holder(observer, name, 10s, without_renewal);
    std::error_code waited = errc::panic;
    std::atomic<bool> wait_ended{false};
    std::thread waiter([&] {
        redilock::Lock lock(client, name, 5s, std::defer_lock);
        lock.lock(waited);
        wait_ended = true;
    });
    ASSERT_TRUE(eventually([&] { return waiters(name) == 1; }));
    const auto closing = Clock::now();
    client.close();
    const bool ended_by_close = eventually([&] { return wait_ended.load(); });
    if (!ended_by_close) holder.unlock();  // ends the wait anyway, so that the test fails, not hangs
    waiter.join();
    EXPECT_TRUE(ended_by_close);
    EXPECT_LT(elapsed_since(closing), scaled(1s));
    EXPECT_EQ(waited, errc::closed);
    EXPECT_TRUE(eventually([&] { return waiters(name) == 0; })) << "the closed waiter kept its place";
    EXPECT_TRUE(key_exists(name));  // the other client's lock is untouched

    const std::string later = lock_name("later");
    const auto e = thrown_by([&] { redilock::Lock lock(client, later, 5s); });
    EXPECT_EQ(e.code(), errc::closed);
    EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos) << e.what();
    redilock::Lock deferred(client, later, 5s, std::defer_lock);
    std::error_code ec;
    EXPECT_FALSE(deferred.try_lock_for(1s, ec));
    EXPECT_EQ(ec, errc::closed);
    redilock::Mutex mutex(client, later, 5s);
    EXPECT_EQ(thrown_by([&] { mutex.lock(); }).code(), errc::closed);
    EXPECT_EQ(thrown_by([&] { client.ping(); }).code(), errc::closed);
    EXPECT_FALSE(key_exists(later));

    client.close();  // idempotent
    client.close(ec);
    EXPECT_FALSE(ec);
    redilock::Client moved(std::move(client));
    client.close(ec);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    EXPECT_EQ(ec, errc::null_argument);
}

TEST_F(Closing, EndsLockAsyncWithClosed) {
    const std::string name = lock_name("async");
    redilock::Lock holder(observer, name, 10s, without_renewal);
    std::future<redilock::Lock> pending = client.lock_async(name, 5s);
    ASSERT_TRUE(eventually([&] { return waiters(name) == 1; }));
    EXPECT_EQ(pending.wait_for(0ms), std::future_status::timeout);
    client.close();
    const bool ended_by_close = pending.wait_for(scaled(1s)) == std::future_status::ready;
    if (!ended_by_close) holder.unlock();  // so that the test fails rather than hangs
    EXPECT_TRUE(ended_by_close);
    EXPECT_EQ(thrown_by([&] { pending.get(); }).code(), errc::closed);

    EXPECT_EQ(thrown_by([&] { client.lock_async(name, 5s).get(); }).code(), errc::closed);
}

// A renewed lock counts as lost once its client is closed: its callback has run when close
// returns, lost() says so, and the lock is left to its TTL.
TEST_F(Closing, CountsRenewedLocksAsLostAndRunsTheirCallbacksFirst) {
    const std::string name = lock_name("renewed");
    std::atomic<int> losses{0};
    std::atomic<bool> finished{false};
    std::atomic<int> drops{0};
    {
        redilock::Lock renewed(client, name, 10s,
                               redilock::LockOptions().on_lost([&, dropped = drop_counter(drops)] {
                                   losses++;
                                   std::this_thread::sleep_for(100ms);  // close must wait for this
                                   finished = true;
                               }));
        redilock::Mutex mutex(client, name + ":mutex", 10s);
        mutex.lock();
        redilock::Lock plain(client, name + ":plain", 10s, without_renewal);
        EXPECT_FALSE(renewed.lost());
        EXPECT_FALSE(mutex.lost());
        client.close();
        EXPECT_TRUE(finished.load()) << "close returned before the callback did";
        EXPECT_EQ(losses.load(), 1);
        // What lost() translates: the library answers CLOSED, and closing counts as a loss.
        bool flag = false;
        EXPECT_EQ(redilock_renewal_lost(client.c_handle(), std::string(renewed.token()).c_str(), &flag),
                  REDILOCK_STATUS_CLOSED);
        EXPECT_TRUE(renewed.lost());
        EXPECT_TRUE(mutex.lost());
        EXPECT_FALSE(plain.lost());  // not renewed, so nothing to lose: its TTL ends it
        EXPECT_TRUE(key_exists(name));  // not released: its TTL ends it
        std::error_code ec;
        renewed.unlock(ec);
        EXPECT_EQ(ec, errc::closed);
        EXPECT_FALSE(renewed.owns_lock());
        EXPECT_FALSE(renewed.lost());
        mutex.unlock(ec);
        EXPECT_EQ(ec, errc::closed);
        EXPECT_FALSE(mutex.lost());
    }
    EXPECT_EQ(losses.load(), 1);
    EXPECT_TRUE(eventually([&] { return drops.load() == 1; }));
}

}  // namespace
