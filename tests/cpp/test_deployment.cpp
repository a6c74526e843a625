// The deployment options of ClientOptions: replica acknowledgement against the test server
// (which has no replica), and TLS against the TLS-only server that `tests/harness/with-redis
// --tls` adds ($REDIS_TLS_URL, with its CA and a client certificate of that CA). And the
// deployments of multi-host URLs: the Redis Cluster of `with-redis --cluster`
// ($REDIS_CLUSTER_URL, $REDIS_CLUSTER_PORTS) and the Sentinels of `with-redis --sentinel`
// ($REDIS_SENTINEL_URL, $REDIS_SENTINEL_PRIMARY_PORT).
#include "redilock.hpp"

#include "support.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

// A file in the temporary folder, removed with the object.
class ScratchFile {
public:
    ScratchFile(const std::string& name, const std::string& contents)
        : path_(std::filesystem::temp_directory_path() / ("redilock-cpp-" + std::to_string(getpid()) + "-" + name)) {
        std::ofstream(path_) << contents;
    }
    ScratchFile(const ScratchFile&) = delete;
    ScratchFile& operator=(const ScratchFile&) = delete;
    ~ScratchFile() { std::filesystem::remove(path_); }

    const std::filesystem::path& path() const { return path_; }

private:
    const std::filesystem::path path_;
};

// The files are read when the client is built, before any I/O: no TLS server is needed.
TEST(DeploymentOptions, TlsFilesThatCannotBeUsedAreRefusedNamingTheFile) {
    const std::string url = "rediss://127.0.0.1:1";  // never connected to
    const std::filesystem::path missing = "/nonexistent/redilock-ca.pem";
    redilock::ClientOptions options;
    options.tls_ca_file = missing;
    auto e = thrown_by([&] { redilock::Client client(url, options); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_TRUE(mentions(e, "the TLS CA file " + missing.string() + " cannot be read")) << e.what();

    std::error_code ec;
    redilock::Client empty(url, options, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    EXPECT_EQ(empty.c_handle(), nullptr);

    const ScratchFile not_pem("not-a-certificate.pem", "not a certificate\n");
    options.tls_ca_file = not_pem.path();
    e = thrown_by([&] { redilock::Client client(url, options); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_TRUE(mentions(e, not_pem.path().string() + " holds no PEM certificate")) << e.what();

    options.tls_ca_file.reset();
    options.tls_client_cert = redilock::TlsClientCert{not_pem.path(), "/nonexistent/redilock-client.key"};
    e = thrown_by([&] { redilock::Client client(url, options); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_TRUE(mentions(e, "the TLS client key file /nonexistent/redilock-client.key cannot be read")) << e.what();

    // Certificate files with a URL that is not rediss:// are refused rather than ignored.
    options.tls_client_cert.reset();
    options.tls_ca_file = not_pem.path();
    e = thrown_by([&] { redilock::Client client(redis_url(), options); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_TRUE(mentions(e, "rediss://")) << e.what();
}

TEST(DeploymentOptions, ReplicaAcknowledgementArgumentsAreChecked) {
    redilock::ClientOptions options;
    options.replica_acks = -2;
    auto e = thrown_by([&] { redilock::Client client(redis_url(), options); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_TRUE(mentions(e, "the replica count must be")) << e.what();

    options.replica_acks = 1;
    options.replica_ack_timeout = -1ms;
    e = thrown_by([&] { redilock::Client client(redis_url(), options); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_TRUE(mentions(e, "the replica acknowledgement timeout must not be negative, not -1 ms")) << e.what();

    options.command_timeout = 500ms;
    options.replica_ack_timeout = 500ms;
    e = thrown_by([&] { redilock::Client client(redis_url(), options); });
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_TRUE(mentions(e, "must be shorter than the command timeout (500 ms)")) << e.what();

    options.replica_ack_timeout = 499ms;
    redilock::Client accepted(redis_url(), options);
    EXPECT_NE(accepted.c_handle(), nullptr);
}

// The test server has no replica: a lock that must be acknowledged by one is released, and
// every acquiring form reports it as a failure, not as "held by someone else".
TEST_F(RedilockTest, TooFewReplicaAcknowledgementsThrowNotReplicatedAndLeaveNothingHeld) {
    const std::string name = lock_name("acked");
    redilock::ClientOptions options;
    options.replica_acks = 1;
    options.replica_ack_timeout = 50ms;
    redilock::Client acknowledged(redis_url(), options);
    redis_cli("CONFIG RESETSTAT");

    auto e = thrown_by([&] { redilock::Lock lock(acknowledged, name, 10s); });
    EXPECT_EQ(e.code(), errc::not_replicated);
    EXPECT_TRUE(mentions(e, "acknowledged by 0 of the 1 replicas required within 50 ms")) << e.what();
    EXPECT_FALSE(key_exists(name));
    EXPECT_EQ(queue_key(name), "");
    EXPECT_FALSE(held_elsewhere(name));

    redilock::Lock deferred(acknowledged, name, 10s, std::defer_lock);
    std::error_code ec;
    EXPECT_FALSE(deferred.try_lock(ec));
    EXPECT_EQ(ec, errc::not_replicated);
    EXPECT_FALSE(deferred.owns_lock());
    EXPECT_EQ(thrown_by([&] { acknowledged.lock_async(name, 10s).get(); }).code(), errc::not_replicated);
    EXPECT_FALSE(key_exists(name));
    EXPECT_GE(calls_of("wait"), 3);
}

TEST_F(RedilockTest, ReplicaAcknowledgementOffSendsNoWait) {
    const std::string name = lock_name("unacked");
    redilock::ClientOptions options;
    options.replica_acks = 0;
    redilock::Client unacknowledged(redis_url(), options);
    redis_cli("CONFIG RESETSTAT");
    {
        redilock::Lock lock(unacknowledged, name, 10s, without_renewal);
        EXPECT_TRUE(held_elsewhere(name));
        lock.extend(20s);
    }
    EXPECT_FALSE(key_exists(name));
    EXPECT_EQ(calls_of("wait"), 0);
}

// Against the TLS server of `with-redis --tls`, which asks for a client certificate and takes
// clients without one, so one server serves the CA-only and the mutual round trips.
class Tls : public ::testing::Test {
protected:
    void SetUp() override {
        if (url.empty()) GTEST_SKIP() << "REDIS_TLS_URL is not set: run through tests/harness/with-redis --tls";
        options.tls_ca_file = environment("REDIS_TLS_CA");
    }

    // A lock and unlock through `client`, seen from another TLS client in between.
    void round_trip(redilock::Client& client) {
        const std::string name = lock_name("round-trip");
        redilock::Lock lock(client, name, 10s);
        EXPECT_GT(lock.fence(), 0u);
        redilock::Client observer(url, options);
        EXPECT_FALSE(redilock::Lock(observer, name, 10s, std::try_to_lock, without_renewal).owns_lock());
        lock.unlock();
        EXPECT_TRUE(redilock::Lock(observer, name, 10s, std::try_to_lock, without_renewal).owns_lock());
    }

    const std::string url = environment("REDIS_TLS_URL");
    redilock::ClientOptions options;
};

TEST_F(Tls, LocksAndUnlocksTrustingTheCaFile) {
    redilock::Client client(url, options);
    client.ping();
    round_trip(client);
}

TEST_F(Tls, LocksAndUnlocksPresentingAClientCertificate) {
    options.tls_client_cert =
        redilock::TlsClientCert{environment("REDIS_TLS_CLIENT_CERT"), environment("REDIS_TLS_CLIENT_KEY")};
    redilock::Client client(url, options);
    round_trip(client);
}

TEST_F(Tls, WithTheSystemRootsTheHandshakeFails) {
    options.tls_ca_file.reset();
    options.connect_timeout = 1s;
    const auto e = thrown_by([&] {
        redilock::Client client(url, options);
        redilock::Lock lock(client, lock_name("unverified"), 10s);
    });
    EXPECT_EQ(e.code(), errc::tls);
    EXPECT_TRUE(mentions(e, "the server's certificate did not verify")) << e.what();
}

TEST_F(Tls, InsecureSkipsTheVerification) {
    options.tls_ca_file.reset();
    redilock::Client client(url + "#insecure", options);
    redilock::Lock lock(client, lock_name("insecure"), 10s);
    EXPECT_TRUE(lock.owns_lock());
}

// Malformed multi-host URLs are refused before any I/O, with a message that says what is wrong
// and masks the password.
TEST(DeploymentOptions, BadMultiHostUrlsThrowInvalidArgumentWithThePasswordMasked) {
    const struct {
        std::string url;
        std::string reason;
    } refused[] = {
        {"redis+cluster://u:hunter2@127.0.0.1:1,,127.0.0.1:2", "an empty host"},
        {"redis+cluster://u:hunter2@127.0.0.1:1/3", "a cluster has one database"},
        {"redis+sentinel://u:hunter2@127.0.0.1:1", "no primary name"},
    };
    for (const auto& bad : refused) {
        const std::string& url = bad.url;
        const std::string& reason = bad.reason;
        const auto e = thrown_by([&] { redilock::Client client(url, 10s); });
        EXPECT_EQ(e.code(), errc::invalid_argument) << url;
        EXPECT_EQ(e.code(), std::errc::invalid_argument) << url;
        EXPECT_TRUE(mentions(e, "invalid Redis URL")) << e.what();
        EXPECT_TRUE(mentions(e, reason)) << e.what();
        EXPECT_TRUE(mentions(e, "u:***@")) << e.what();
        EXPECT_FALSE(mentions(e, "hunter2")) << e.what();

        std::error_code ec;
        redilock::Client empty(url, redilock::ClientOptions(), ec);
        EXPECT_EQ(ec, errc::invalid_argument) << url;
        EXPECT_EQ(empty.c_handle(), nullptr);
        EXPECT_EQ(redilock::last_error().find("hunter2"), std::string::npos) << redilock::last_error();
    }
}

// The keys matching `pattern` that the node on `port` holds itself (SCAN sees no other node's).
std::vector<std::string> keys_on(const std::string& port, const std::string& pattern) {
    std::istringstream lines(redis_cli_on(port, "--scan --pattern '" + pattern + "'"));
    std::vector<std::string> keys;
    for (std::string key; std::getline(lines, key);) keys.push_back(key);
    return keys;
}

// A client whose waiters look at a held lock on their own only once a minute, so that what
// serves them sooner is a release waking them; the command timeout leaves room for the replica
// acknowledgement (every master, and the primary, has a replica) on a loaded machine.
redilock::ClientOptions rarely_rechecking() {
    redilock::ClientOptions options;
    options.retry_interval = 60s;
    options.command_timeout = scaled(5s);
    return options;
}

// Against the cluster of `with-redis --cluster`: 3 masters, each with a replica.
class Cluster : public ::testing::Test {
protected:
    void SetUp() override {
        if (url.empty()) GTEST_SKIP() << "REDIS_CLUSTER_URL is not set: run through tests/harness/with-redis --cluster";
        // The masters' ports come first, then their replicas', as many of each.
        std::istringstream ports(environment("REDIS_CLUSTER_PORTS"));
        std::vector<std::string> all;
        for (std::string port; ports >> port;) all.push_back(port);
        masters.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(all.size() / 2));
        ASSERT_GE(masters.size(), 2u) << "REDIS_CLUSTER_PORTS: " << environment("REDIS_CLUSTER_PORTS");
    }

    // The port of the master serving the slot of `key`: the one that answers for it rather than
    // redirecting (MOVED); "" if none does.
    std::string master_of(const std::string& key) {
        for (const std::string& port : masters) {
            const std::string reply = redis_cli_on(port, "EXISTS '" + key + "'");
            if (reply == "0" || reply == "1") return port;
        }
        return "";
    }

    const std::string url = environment("REDIS_CLUSTER_URL");
    std::vector<std::string> masters;
};

TEST_F(Cluster, GuardsLockManyNamesSpreadOverTheMasters) {
    redilock::Client client(url, rarely_rechecking());
    redilock::Client observer(url, rarely_rechecking());
    const std::string prefix = lock_name("many:");
    {
        std::vector<redilock::Lock> guards;
        for (int i = 0; i < 30; i++) {
            guards.emplace_back(client, prefix + std::to_string(i), 30s);
            EXPECT_TRUE(guards.back().owns_lock());
            EXPECT_GT(guards.back().fence(), 0u);
        }
        std::size_t total = 0, masters_used = 0;
        for (const std::string& port : masters) {
            const std::size_t here = keys_on(port, prefix + "*").size();
            total += here;
            masters_used += here > 0 ? 1 : 0;
        }
        EXPECT_EQ(total, 30u);
        EXPECT_GT(masters_used, 1u) << "every lock is on one master";
        for (const redilock::Lock& guard : guards) {
            EXPECT_FALSE(redilock::Lock(observer, guard.name(), 10s, std::try_to_lock, without_renewal).owns_lock())
                << guard.name();
        }
    }  // the guards release their locks
    for (const std::string& port : masters) EXPECT_EQ(keys_on(port, prefix + "*"), std::vector<std::string>());
    redilock::Lock again(observer, prefix + "0", 10s, std::try_to_lock, without_renewal);
    EXPECT_TRUE(again.owns_lock());
}

// For a lock on each master: a waiter of another client, queued on that master, is handed the
// lock promptly by the release, which neither its retry interval nor the holder's TTL (a
// minute each) explains: the wake-up does, whichever master publishes it.
TEST_F(Cluster, AWaiterIsWokenWhicheverMasterServesTheLock) {
    std::map<std::string, std::string> name_on;  // master port -> a lock name it serves
    for (int i = 0; i < 1000 && name_on.size() < masters.size(); i++) {
        const std::string name = lock_name(std::to_string(i));
        const std::string port = master_of(name);
        ASSERT_FALSE(port.empty()) << "no master serves " << name;
        name_on.emplace(port, name);
    }
    ASSERT_EQ(name_on.size(), masters.size());

    redilock::Client client(url, rarely_rechecking());
    redilock::Client patient(url, rarely_rechecking());
    for (const auto& served_by : name_on) {
        const std::string& port = served_by.first;  // not a structured binding: C++17 lambdas cannot capture one
        const std::string& name = served_by.second;
        redilock::Lock holder(client, name, 60s, without_renewal);
        EXPECT_EQ(keys_on(port, name).size(), 1u) << name << " is not on the master of its slot, " << port;
        EXPECT_FALSE(redilock::Lock(patient, name, 60s, std::try_to_lock, without_renewal).owns_lock());

        redilock::CancelSignal cancel;
        std::future<redilock::Lock> pending = patient.lock_async(name, 60s, without_renewal, cancel);
        ASSERT_TRUE(eventually([&] {
            const std::vector<std::string> queue = keys_on(port, "redilock:queue:*:" + name);
            return queue.size() == 1 && redis_cli_on(port, "LLEN '" + queue[0] + "'") == "1";
        })) << "the waiter did not queue on the master of the lock's slot, " << port;

        const std::uint64_t fence = holder.fence();
        holder.unlock();
        const bool served = pending.wait_for(scaled(2s)) == std::future_status::ready;
        if (!served) cancel.trigger();  // so that the test fails rather than waits out the retry interval
        ASSERT_TRUE(served) << "the release on the master " << port << " did not wake the waiter";
        redilock::Lock woken = pending.get();
        EXPECT_TRUE(woken.owns_lock());
        EXPECT_GT(woken.fence(), fence);
    }
}

// Against the primary that the Sentinels of `with-redis --sentinel` name.
class Sentinel : public ::testing::Test {
protected:
    void SetUp() override {
        if (url.empty()) GTEST_SKIP() << "REDIS_SENTINEL_URL is not set: run through tests/harness/with-redis --sentinel";
    }

    const std::string url = environment("REDIS_SENTINEL_URL");
    const std::string primary = environment("REDIS_SENTINEL_PRIMARY_PORT");
};

TEST_F(Sentinel, LocksExtendsAndUnlocksOnThePrimary) {
    const std::string name = lock_name("job");
    redilock::Client client(url, rarely_rechecking());
    redilock::Client observer(url, rarely_rechecking());
    redilock::Lock lock(client, name, 10s, without_renewal);
    EXPECT_GT(lock.fence(), 0u);
    EXPECT_EQ(redis_cli_on(primary, "EXISTS '" + name + "'"), "1");
    EXPECT_FALSE(redilock::Lock(observer, name, 10s, std::try_to_lock, without_renewal).owns_lock());

    lock.extend(60s);
    EXPECT_GT(lock.remaining_ttl(), 10s);  // only the extend makes it more than the 10 s locked for
    EXPECT_LE(lock.remaining_ttl(), 60s);
    const std::uint64_t fence = lock.fence();
    lock.unlock();
    EXPECT_FALSE(lock.owns_lock());
    EXPECT_EQ(redis_cli_on(primary, "EXISTS '" + name + "'"), "0");

    redilock::Lock next(observer, name, 10s, std::try_to_lock, without_renewal);
    EXPECT_TRUE(next.owns_lock());
    EXPECT_GT(next.fence(), fence);
}

}  // namespace
