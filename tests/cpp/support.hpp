// What the C++ test files share: lock names of each test's own, time bounds, polling, error
// capture, a fixture with two clients, and redis-cli for looking at the server behind the
// library's back.
#pragma once

#include "redilock.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using redilock::errc;
using Clock = std::chrono::steady_clock;

inline std::string redis_url() { return std::getenv("REDIS_URL"); }

// The value of an environment variable, "" when unset.
inline std::string environment(const char* name) {
    const char* const value = std::getenv(name);
    return value == nullptr ? "" : value;
}

// For the tests of a lock that expires: the scoped forms renew by default.
inline const redilock::LockOptions without_renewal = redilock::LockOptions().auto_renew(false);

// A lock name of the running test's own, so tests never meet each other's locks.
inline std::string lock_name(const std::string& what) {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    return std::string("cpp:") + test->test_suite_name() + "." + test->name() + ":" + what;
}

inline std::chrono::milliseconds elapsed_since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

// A time bound of a test, stretched by REDILOCK_TEST_TIME_SCALE (default 1) on a slow or loaded
// machine. Bounds check that something happens promptly; they are never what a test waits for.
inline std::chrono::milliseconds scaled(std::chrono::milliseconds bound) {
    const char* const setting = std::getenv("REDILOCK_TEST_TIME_SCALE");
    const double scale = setting == nullptr ? 1.0 : std::max(1.0, std::atof(setting));
    return std::chrono::duration_cast<std::chrono::milliseconds>(bound * scale);
}

// Polls `condition` for a generous while; true as soon as it holds.
template <class Condition>
bool eventually(Condition condition) {
    for (const auto start = Clock::now(); elapsed_since(start) < scaled(10s); std::this_thread::sleep_for(5ms)) {
        if (condition()) return true;
    }
    return condition();
}

// Runs `statement`, which must throw redilock::error, and returns the error for inspection.
template <class Statement>
redilock::error thrown_by(Statement&& statement) {
    try {
        statement();
    } catch (const redilock::error& e) {
        return e;
    }
    ADD_FAILURE() << "no redilock::error was thrown";
    return redilock::error(std::error_code());
}

// Whether what() of `e` includes `text`.
inline bool mentions(const redilock::error& e, const std::string& text) {
    return std::string(e.what()).find(text) != std::string::npos;
}

// Runs redis-cli with `server` (its option naming the server) and `arguments` (both split by
// the shell; lock names have no spaces). Returns its output without the final newline.
inline std::string redis_cli_at(const std::string& server, const std::string& arguments) {
    const std::string command = "redis-cli " + server + " " + arguments;
    FILE* const pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) {
        ADD_FAILURE() << "cannot run " << command;
        return "";
    }
    std::string output;
    char buffer[256];
    for (size_t read; (read = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, read);
    EXPECT_EQ(pclose(pipe), 0) << command;
    while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
    return output;
}

// redis-cli against the test server.
inline std::string redis_cli(const std::string& arguments) { return redis_cli_at("-u '" + redis_url() + "'", arguments); }

// redis-cli against the node on `port`.
inline std::string redis_cli_on(const std::string& port, const std::string& arguments) {
    return redis_cli_at("-p " + port, arguments);
}

// Whether `key` exists in Redis: a lock's key is its name (the tests use no prefix).
inline bool key_exists(const std::string& key) { return redis_cli("EXISTS " + key) == "1"; }

// The key of the queue of lock `name` (the list redilock:queue:{N}:<name>, whose entries are a
// waiter's token immediately followed by its TTL in ms), "" while nobody waits.
inline std::string queue_key(const std::string& name) {
    return redis_cli("--scan --pattern 'redilock:queue:*:" + name + "'");
}

// How many callers wait in the queue of lock `name`: poll it to know that a waiter is waiting.
inline long waiters(const std::string& name) {
    const std::string queue = queue_key(name);
    return queue.empty() ? 0 : std::stol(redis_cli("LLEN '" + queue + "'"));
}

// The Redis server's clock in microseconds, the floor of every fencing number handed out after.
inline std::uint64_t redis_clock_us() {
    std::istringstream time(redis_cli("TIME"));
    std::uint64_t seconds = 0, microseconds = 0;
    time >> seconds >> microseconds;
    return seconds * 1000000 + microseconds;
}

// Counts in `drops` when the last copy is destroyed. Captured by an on_lost callback, it tells
// when the callback was dropped: by the library once it is done with it, and by the guard.
inline std::shared_ptr<void> drop_counter(std::atomic<int>& drops) {
    return std::shared_ptr<void>(nullptr, [&drops](void*) { drops++; });
}

// How many times Redis ran `command` (in lower case, as INFO names it) since the last CONFIG
// RESETSTAT.
inline long calls_of(const std::string& command) {
    std::istringstream stats(redis_cli("INFO commandstats"));
    const std::string prefix = "cmdstat_" + command + ":";
    for (std::string line; std::getline(stats, line);) {
        if (line.rfind(prefix, 0) == 0)
            return std::stol(line.substr(line.find("calls=") + std::string("calls=").size()));
    }
    return 0;
}

// How many scripts Redis ran since the last CONFIG RESETSTAT: every lock, unlock, extend,
// remaining-TTL and renewal command is one.
inline long scripts_run() { return calls_of("evalsha") + calls_of("eval"); }

class RedilockTest : public ::testing::Test {
protected:
    // Whether `name` is held, as seen by another client trying it once.
    bool held_elsewhere(const std::string& name) {
        redilock::Lock probe(observer, name, 1s, std::try_to_lock, without_renewal);
        return !probe;
    }

    redilock::Client client{redis_url(), 10s};
    redilock::Client observer{redis_url(), 10s};
};
