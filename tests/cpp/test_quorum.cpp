// Quorum clients (Client::quorum) over the 5 independent masters of `tests/harness/with-redis
// -n 5` ($REDIS_URL_1..5, $REDIS_PORT_1..5): a guard with its fence and validity, the refusal of
// unusable arguments, and errc::quorum_unavailable while 3 of the masters are stopped. Stopped
// masters are resumed when the test ends: the other suites use the first one as their server.
#include "redilock.hpp"

#include "support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <system_error>
#include <vector>

namespace {

constexpr std::size_t masters = 5;
constexpr auto ttl = 10s;

// The values of NAME_1 .. NAME_5; fewer when the harness was not asked for 5 servers.
std::vector<std::string> numbered(const std::string& name) {
    std::vector<std::string> values;
    for (std::size_t i = 1; i <= masters; i++) {
        const std::string value = environment((name + std::to_string(i)).c_str());
        if (value.empty()) break;
        values.push_back(value);
    }
    return values;
}

// Stops a redis-server (SIGSTOP) until destroyed: it keeps its connections and accepts new ones,
// but answers nothing, so every call it is asked waits out the node timeout.
class StoppedMaster {
public:
    explicit StoppedMaster(const std::string& port) : pid_(pid_on(port)) {
        if (pid_ > 0) {
            EXPECT_EQ(kill(pid_, SIGSTOP), 0) << "SIGSTOP " << pid_;
        }
    }
    StoppedMaster(const StoppedMaster&) = delete;
    StoppedMaster& operator=(const StoppedMaster&) = delete;
    ~StoppedMaster() {
        if (pid_ > 0) kill(pid_, SIGCONT);
    }

private:
    static pid_t pid_on(const std::string& port) {
        const std::string info = redis_cli_on(port, "INFO server");
        const std::string field = "process_id:";
        const std::size_t at = info.find(field);
        if (at == std::string::npos) {
            ADD_FAILURE() << "no " << field << " in INFO server of port " << port;
            return 0;
        }
        return static_cast<pid_t>(std::stol(info.substr(at + field.size())));
    }

    const pid_t pid_;
};

class Quorum : public ::testing::Test {
protected:
    void SetUp() override {
        if (urls.size() < masters || ports.size() < masters)
            GTEST_SKIP() << "REDIS_URL_1.." << masters << " are not set: run through tests/harness/with-redis -n "
                         << masters;
    }

    // A stopped master answers nothing: each call waits out the node timeout for it, and the
    // client flushes what is left to give back to it for the connect and command timeouts
    // when destroyed (the tests resume the masters first).
    static redilock::ClientOptions options() {
        redilock::ClientOptions options;
        options.connect_timeout = scaled(250ms);
        options.command_timeout = scaled(1s);
        options.node_timeout = scaled(500ms);
        return options;
    }

    // How many masters hold the key `name`.
    std::size_t holding(const std::string& name) const {
        std::size_t holding = 0;
        for (const std::string& port : ports) holding += redis_cli_on(port, "EXISTS '" + name + "'") == "1";
        return holding;
    }

    const std::vector<std::string> urls = numbered("REDIS_URL_");
    const std::vector<std::string> ports = numbered("REDIS_PORT_");
};

TEST_F(Quorum, AGuardHoldsTheLockOnEveryMasterWithItsFenceAndValidity) {
    const std::string name = lock_name("job");
    redilock::Client client = redilock::Client::quorum(urls, options());
    redilock::Client other = redilock::Client::quorum(urls, options());
    client.ping();
    std::uint64_t fence = 0;
    {
        redilock::Lock lock(client, name, ttl);
        fence = lock.fence();
        EXPECT_GT(fence, 0u);
        EXPECT_GT(lock.validity(), 0ms);
        EXPECT_LE(lock.validity(), ttl);
        EXPECT_EQ(holding(name), masters);
        EXPECT_FALSE(redilock::Lock(other, name, ttl, std::try_to_lock));
        lock.unlock();
        EXPECT_EQ(lock.validity(), 0ms);
        // Unlock returns once a quorum released it; the other masters follow in the background.
        EXPECT_TRUE(eventually([&] { return holding(name) == 0; }));
    }
    redilock::Mutex mutex(other, name, ttl);
    {
        const std::lock_guard<redilock::Mutex> guard(mutex);
        EXPECT_GT(mutex.fence(), fence);
        EXPECT_GT(mutex.validity(), 0ms);
    }
    EXPECT_EQ(mutex.validity(), 0ms);
}

TEST_F(Quorum, UnusableArgumentsAreRefused) {
    auto e = thrown_by([&] { redilock::Client client = redilock::Client::quorum({urls[0], urls[1]}); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_TRUE(mentions(e, "at least 3 masters, got 2")) << e.what();

    e = thrown_by([&] { redilock::Client client = redilock::Client::quorum({urls[0], urls[1], urls[0]}); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_TRUE(mentions(e, "is given twice")) << e.what();

    redilock::ClientOptions minority = options();
    minority.quorum = 2;
    std::error_code ec;
    const redilock::Client empty = redilock::Client::quorum(urls, minority, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    EXPECT_EQ(empty.c_handle(), nullptr);
    EXPECT_NE(redilock::last_error().find("more than half of the 5 masters"), std::string::npos)
        << redilock::last_error();

    redilock::ClientOptions negative = options();
    negative.node_timeout = -1ms;
    e = thrown_by([&] { redilock::Client client = redilock::Client::quorum(urls, negative); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_TRUE(mentions(e, "node timeout")) << e.what();
}

TEST_F(Quorum, ThreeMastersDownIsQuorumUnavailable) {
    const std::string name = lock_name("job");
    redilock::Client client = redilock::Client::quorum(urls, options());
    client.ping();
    const StoppedMaster fifth(ports[4]), fourth(ports[3]);  // resumed before the client goes
    {
        redilock::Lock lock(client, name, ttl);
        EXPECT_GT(lock.validity(), 0ms);
    }

    const StoppedMaster third(ports[2]);
    try {
        redilock::Lock lock(client, name, ttl);
        ADD_FAILURE() << "locked with 3 of 5 masters stopped";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), errc::quorum_unavailable);
        EXPECT_EQ(e.code().message(), "too few masters answered to form a quorum");
        for (const std::string& port : ports)
            EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + port), std::string::npos) << e.what();
    }
    redilock::Lock attempt(client, name, ttl, std::defer_lock);
    std::error_code ec;
    EXPECT_FALSE(attempt.try_lock(ec));
    EXPECT_EQ(ec, errc::quorum_unavailable);
    EXPECT_EQ(thrown_by([&] { client.ping(); }).code(), errc::quorum_unavailable);
}

}  // namespace
