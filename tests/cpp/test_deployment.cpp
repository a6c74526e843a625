// The deployment options of ClientOptions: replica acknowledgement against the test server
// (which has no replica), and TLS against the TLS-only server that `tests/harness/with-redis
// --tls` adds ($REDIS_TLS_URL, with its CA and a client certificate of that CA).
#include "redilock.hpp"

#include "support.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

// The value of an environment variable, "" when unset.
std::string environment(const char* name) {
    const char* const value = std::getenv(name);
    return value == nullptr ? "" : value;
}

bool mentions(const redilock::error& e, const std::string& text) {
    return std::string(e.what()).find(text) != std::string::npos;
}

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

}  // namespace
