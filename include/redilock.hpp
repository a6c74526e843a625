// redilock.hpp: the C++17 layer over the redilock C ABI (redilock.h). Header-only.
//
//   #include <redilock.hpp>
//   using namespace std::chrono_literals;
//
//   redilock::Client client(std::getenv("REDIS_URL"), 10s);   // default TTL: 10 s
//   {
//       redilock::Lock lock(client, "orders:42", 5s);        // waits until acquired
//       ship_order(42);
//   }                                                         // released here; never throws
//
//   redilock::Lock report(client, "report", 30s, std::try_to_lock);
//   if (!report) return;                                      // another process is on it
//
//   redilock::Mutex ledger(client, "ledger", redilock::default_ttl);
//   std::lock_guard<redilock::Mutex> guard(ledger);           // any standard guard works
//
//   std::future<redilock::Lock> pending = client.lock_async("nightly", 1min);
//   redilock::Lock nightly = pending.get();                   // waited on another thread
//
// Lock, Mutex and lock_async renew their lock while it is held (redilock::LockOptions turns
// that off, caps the hold, or asks to be told of a loss), so work longer than the TTL stays
// protected:
//
//   std::atomic<bool> lost{false};
//   redilock::Lock job(client, "reindex", 30s, redilock::LockOptions().on_lost([&] { lost = true; }));
//   while (!lost && more_work()) write_batch(job.fence());    // the resource rejects stale fences
//   job.unlock();                                             // errc::not_owner if it was lost
//
// Failures throw redilock::error, a std::system_error whose code() is a redilock::errc in
// redilock::category(). The Client constructors, ping(), close(), the Lock members and
// Mutex::unlock also have noexcept overloads taking std::error_code&; after one fails,
// redilock::last_error() gives the library's message.
//
// A lock that is merely held by someone else is not an error: try_lock, try_lock_for and the
// std::try_to_lock constructor report it as "not acquired" (false, owns_lock() == false).
//
// Durations are std::chrono durations (a TTL or a hold limit with an integer count, a wait of
// any kind), rounded up to whole milliseconds: 1us asks for 1 ms, never for 0 ("the default").
// The library checks their range: a negative TTL, or one above max_ttl, throws
// errc::invalid_argument with the library's message.
//
// To shut down while other threads wait on the client, client.close() ends their waits (and
// every later call) with errc::closed; destroy the Client once they are done with it.

#ifndef REDILOCK_HPP
#define REDILOCK_HPP

#if __cplusplus < 201703L
#error "redilock.hpp needs C++17 or later"
#endif

// The C header names its handle type `redilock`, which in C++ would clash with this header's
// namespace; here the handle type is spelled `redilock_handle` (the ABI is unchanged). So the
// C header must not come first in a translation unit that uses this one; after it, it is a no-op
// and its functions are available with that spelling.
#ifdef REDILOCK_H
#error "include redilock.hpp instead of redilock.h, or before it: C++ cannot have both a type and a namespace named redilock"
#endif
#define redilock redilock_handle
#include "redilock.h"
#undef redilock

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace redilock {

/// The C ABI's status codes (redilock_status) as an error code enum: `ec == errc::not_owner`.
enum class errc : redilock_status {
    ok = REDILOCK_STATUS_OK,
    invalid_argument = REDILOCK_STATUS_INVALID_ARGUMENT,
    null_argument = REDILOCK_STATUS_NULL_ARGUMENT,
    wrong_process = REDILOCK_STATUS_WRONG_PROCESS,
    not_acquired = REDILOCK_STATUS_NOT_ACQUIRED,
    not_owner = REDILOCK_STATUS_NOT_OWNER,
    cancelled = REDILOCK_STATUS_CANCELLED,
    closed = REDILOCK_STATUS_CLOSED,
    connection = REDILOCK_STATUS_CONNECTION,
    redis = REDILOCK_STATUS_REDIS,
    tls = REDILOCK_STATUS_TLS,
    not_replicated = REDILOCK_STATUS_NOT_REPLICATED,
    quorum_unavailable = REDILOCK_STATUS_QUORUM_UNAVAILABLE,
    panic = REDILOCK_STATUS_PANIC,
};

}  // namespace redilock

namespace std {
template <>
struct is_error_code_enum<redilock::errc> : true_type {};
}  // namespace std

namespace redilock {

/// Pass as a TTL to use the client's default TTL (the C ABI's `ttl_ms = 0`).
inline constexpr std::chrono::milliseconds default_ttl{0};

/// The largest TTL Redis accepts (REDILOCK_MAX_TTL_MS): an effectively eternal lock.
inline constexpr std::chrono::milliseconds max_ttl{REDILOCK_MAX_TTL_MS};

/// ClientOptions::replica_acks that asks for one replica when the server is a primary with
/// replicas connected, none otherwise (REDILOCK_REPLICA_ACKS_AUTO, the default).
inline constexpr std::int32_t replica_acks_auto = REDILOCK_REPLICA_ACKS_AUTO;

namespace detail {

// The error category of errc. Messages are the library's static status descriptions.
class category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "redilock"; }

    std::string message(int value) const override {
        return redilock_status_str(static_cast<redilock_status>(value));
    }

    // Only natural matches are mapped; the others compare equal to themselves alone.
    // not_acquired is the condition the standard gives a mutex that is "already locked and
    // blocking is not possible"; not_owner is what pthread_mutex_unlock returns for a mutex
    // the caller does not own.
    std::error_condition default_error_condition(int value) const noexcept override {
        switch (static_cast<errc>(value)) {
        case errc::invalid_argument:
        case errc::null_argument:
            return std::errc::invalid_argument;
        case errc::not_acquired:
            return std::errc::device_or_resource_busy;
        case errc::not_owner:
            return std::errc::operation_not_permitted;
        case errc::cancelled:
            return std::errc::operation_canceled;
        // closed is left unmapped: it ends a wait the way a cancel does, but it is also what
        // every later call gets without trying, so operation_canceled would tell half of it
        // (and blur "a CancelSignal ended this wait"); bad_file_descriptor would claim the
        // handle is invalid, which it is not until the Client is destroyed.
        default:
            return {value, *this};
        }
    }
};

}  // namespace detail

/// The error category of every code the library reports. One instance per program.
inline const std::error_category& category() noexcept {
    static const detail::category_impl instance;
    return instance;
}

/// Makes `errc` values usable as std::error_code (found by argument-dependent lookup).
inline std::error_code make_error_code(errc value) noexcept {
    return {static_cast<int>(value), category()};
}

/// The library's message for the last failed call on this thread ("" if none). Read it right
/// after the failing call: the next failure on the same thread replaces it.
[[nodiscard]] inline std::string last_error() { return redilock_last_error(); }

/// The library version at run time ("MAJOR.MINOR.PATCH").
[[nodiscard]] inline const char* version() noexcept { return redilock_version(); }

/// What every throwing call throws. code() is an errc in category(), or, for misuse of a
/// guard, the std::errc that std::unique_lock reports (resource_deadlock_would_occur when it
/// already owns its lock, operation_not_permitted when it owns none). what() includes the
/// library's message for the failure.
class error : public std::system_error {
public:
    using std::system_error::system_error;
};

namespace detail {

[[noreturn]] inline void throw_error(std::error_code code) {
    // The library's message describes only failures it reported itself.
    const std::string message = &code.category() == &category() ? last_error() : std::string();
    if (message.empty()) throw error(code);
    throw error(code, message);
}

// Records a C status in `ec`; true on success.
inline bool succeeded(redilock_status result, std::error_code& ec) noexcept {
    ec = result == REDILOCK_STATUS_OK ? std::error_code() : make_error_code(static_cast<errc>(result));
    return !ec;
}

// Runs a noexcept overload that reports through std::error_code and throws what it reports,
// so each throwing overload is the non-throwing one plus this.
template <class Call>
auto throw_on_error(Call&& call) {
    std::error_code ec;
    if constexpr (std::is_void_v<decltype(call(ec))>) {
        call(ec);
        if (ec) throw_error(ec);
    } else {
        auto result = call(ec);
        if (ec) throw_error(ec);
        return result;
    }
}

static_assert(std::is_same_v<std::make_signed_t<std::chrono::milliseconds::rep>, std::chrono::milliseconds::rep> &&
                  sizeof(std::chrono::milliseconds::rep) == sizeof(std::int64_t),
              "std::chrono::milliseconds must count in 64 bits, as the C ABI does");

// The one rule for a duration given to the C ABI, whose durations are int64_t milliseconds: rounded
// up to whole milliseconds (std::chrono::ceil: a positive duration never becomes 0), saturated at
// INT64_MAX. A negative one is rounded away from zero instead (and saturated at INT64_MIN), so
// that it stays negative: -1us must be refused, not become 0, which means "the default TTL" or
// "no limit". Nothing is range-checked here: the library refuses what it cannot take (a negative
// TTL, one above max_ttl, a zero interval) with errc::invalid_argument and its own message.
// `length` must not be NaN.
template <class Rep, class Period>
constexpr std::chrono::milliseconds whole_ms(const std::chrono::duration<Rep, Period>& length) noexcept {
    using limits = std::numeric_limits<std::int64_t>;
    // Compared in floating point, so that e.g. hours::max() cannot overflow the conversion; rounding
    // is monotonic, so a length of at least 2^63 ms is found so.
    const long double ms = std::chrono::duration<long double, std::milli>(length).count();
    if (ms >= static_cast<long double>(limits::max())) return std::chrono::milliseconds(limits::max());
    if (ms <= static_cast<long double>(limits::min())) return std::chrono::milliseconds(limits::min());
    return length < length.zero() ? std::chrono::floor<std::chrono::milliseconds>(length)
                                  : std::chrono::ceil<std::chrono::milliseconds>(length);
}

// whole_ms() for a TTL, an interval or a limit on a hold, which take durations with an integer
// count: a floating-point one could be NaN, which has no value in milliseconds.
template <class Rep, class Period>
constexpr std::chrono::milliseconds length_ms(const std::chrono::duration<Rep, Period>& length) noexcept {
    static_assert(!std::chrono::treat_as_floating_point_v<Rep>,
                  "redilock takes a TTL or a hold limit as a duration with an integer count: convert a "
                  "floating-point one with std::chrono::ceil<std::chrono::milliseconds>");
    return whole_ms(length);
}

// A wait as the C ABI's timeout_ms. As for std::timed_mutex, a wait that is not positive (zero,
// negative, or NaN) tries once; otherwise it is rounded up to whole milliseconds, and one too long
// for int64 milliseconds saturates at INT64_MAX, an endless wait.
template <class Rep, class Period>
constexpr std::int64_t timeout_ms(const std::chrono::duration<Rep, Period>& wait) noexcept {
    if (!(wait > wait.zero())) return REDILOCK_NO_WAIT;
    return whole_ms(wait).count();
}

}  // namespace detail

/// A client certificate and its private key, two PEM files, for mutual TLS.
struct TlsClientCert {
    /// The certificate, optionally followed by the intermediate certificates of its chain.
    std::filesystem::path cert_file;
    /// Its private key.
    std::filesystem::path key_file;
};

/// Client settings, mirroring redilock_options. An unset optional keeps the library default
/// (retry interval 10 s, connect timeout 2000 ms, command timeout 2000 ms, the system's root
/// certificates, no client certificate). The library checks the values when the Client is
/// built: an interval or timeout of zero or less, a default TTL that is negative or above
/// max_ttl, a replica count below replica_acks_auto or a TLS file it cannot use is refused with
/// errc::invalid_argument and its message. A plain value type: copy it, share it, build many
/// clients from it.
///
///   redilock::ClientOptions options;
///   options.replica_ack_timeout = 500ms;
///   options.tls_ca_file = "/etc/redis/ca.pem";                          // for rediss:// URLs
///   options.tls_client_cert = redilock::TlsClientCert{"app.pem", "app.key"};
struct ClientOptions {
    /// A waiter's safety net: how often it re-checks a held lock on its own. A release hands
    /// the lock to the first waiter in line and wakes it at once, and the first in line also
    /// watches the holder's expiry, so waits do not depend on it: it only bounds how long a
    /// waiter could miss a lost wake-up.
    std::optional<std::chrono::milliseconds> retry_interval;
    /// How long establishing a connection may take.
    std::optional<std::chrono::milliseconds> connect_timeout;
    /// How long one Redis command may wait for its reply.
    std::optional<std::chrono::milliseconds> command_timeout;
    /// TTL of locks taken with redilock::default_ttl; 0 means every lock must pass a TTL.
    std::chrono::milliseconds default_ttl{0};
    /// Text put in front of every lock name to form its Redis key (e.g. "myapp:").
    std::string key_prefix;
    /// Fair (the default): waiters take turns in arrival order, and a release hands the lock to
    /// the first in line. Not fair: this client's lock calls take a free lock whoever waits, and
    /// its waiters are only woken to try again; more throughput for short critical sections,
    /// with no bound on how often a waiter may be passed over.
    bool fair = true;
    /// How many replicas must acknowledge each lock write (an acquisition, an extend, a
    /// renewal) before it counts: replica_acks_auto (the default: one when the server is a
    /// primary with replicas connected, else none), 0 (off) or a number of replicas (more than
    /// the server has makes every lock call fail). A lock too few acknowledged is released and
    /// its lock call throws errc::not_replicated; a renewal short of them is retried while the
    /// lease lasts.
    std::int32_t replica_acks = replica_acks_auto;
    /// How long a lock write waits for those acknowledgements; 0 (the default) is half the
    /// command timeout. It must be shorter than the command timeout, which bounds a write and
    /// its wait together.
    std::chrono::milliseconds replica_ack_timeout{0};
    /// rediss:// only: the PEM file of the certificate authorities that may sign the server's
    /// certificate, trusted instead of the system's root certificates. Read when the Client is
    /// built; a file it cannot use, or one given with a URL that is not rediss://, throws
    /// errc::invalid_argument naming the file.
    std::optional<std::filesystem::path> tls_ca_file;
    /// rediss:// only: the certificate this client presents to a server that asks for one
    /// (mutual TLS). Read when the Client is built, as tls_ca_file; a key that does not belong
    /// to the certificate is refused too.
    std::optional<TlsClientCert> tls_client_cert;
    /// Client::quorum only: how many masters must grant a lock, an extension or a renewal. 0
    /// (the default) is a majority, N/2 + 1; otherwise more than half of the masters and at
    /// most all of them, or Client::quorum throws errc::invalid_argument.
    std::size_t quorum = 0;
    /// Client::quorum only: how long one master may take to answer one call before it counts
    /// as failed for that call; keep it small against the TTL. 0 (the default): a tenth of
    /// the call's TTL, at least 50 ms (500 ms for calls without a TTL), at most the command
    /// timeout.
    std::chrono::milliseconds node_timeout{0};
};

/// A cancellation signal: trigger() ends, from any thread, every lock wait given this signal
/// (Lock::lock(cancel), Client::lock_async) with errc::cancelled. A cancel seen before the wait
/// returns always wins: the library gives back a lock that an attempt in flight took, so a
/// cancelled wait never leaves a lock behind. Once triggered it stays triggered. Copies share
/// one signal, which lives as long as any copy or any wait using it. Thread-safe.
class CancelSignal {
public:
    /// Creates an untriggered signal. Throws redilock::error.
    CancelSignal() : signal_(create(), redilock_cancel_free) {}

    /// Ends the waits using this signal. Thread-safe, never throws.
    void trigger() const noexcept { redilock_cancel_trigger(signal_.get()); }

    /// The C handle, owned by this signal; valid while this object lives.
    [[nodiscard]] const redilock_cancel* c_handle() const noexcept { return signal_.get(); }

private:
    static redilock_cancel* create() {
        return detail::throw_on_error([](std::error_code& ec) {
            redilock_cancel* signal = nullptr;
            detail::succeeded(redilock_cancel_new(&signal), ec);
            return signal;
        });
    }

    std::shared_ptr<redilock_cancel> signal_;
};

class Lock;

/// How Lock, Mutex and Client::lock_async hold a lock once they have it. A small builder:
///
///   redilock::LockOptions().max_hold(10min).on_lost([&] { abandon = true; })
///   redilock::LockOptions().auto_renew(false)                // the plain lock: its TTL ends it
///
/// The defaults: auto-renewal on, no limit on the hold, nobody told of a loss. Copies share one
/// on_lost callback. A plain value type otherwise: build it once, use it for many locks.
class LockOptions {
public:
    /// Whether the library renews the lock at about a third of its TTL while it is held, so that
    /// work longer than the TTL stays protected (default true). Renewal stops at unlock. If a
    /// renewal finds the lock gone, or cannot reach Redis before the lease runs out, the lock is
    /// lost: Lock::lost() turns true, on_lost is called and unlock reports errc::not_owner.
    /// Closing the client ends renewal too, and counts the lock as lost in the same way.
    LockOptions& auto_renew(bool renew) noexcept {
        auto_renew_ = renew;
        return *this;
    }

    /// With auto-renewal: stop renewing once the lock has been held for `limit` (any duration
    /// with an integer count, rounded up to whole milliseconds; zero is the smallest limit, 1 ms);
    /// the lock then expires at its TTL and counts as lost. Default: renew until unlocked. A
    /// negative limit makes the lock calls fail with errc::invalid_argument.
    template <class Rep, class Period>
    LockOptions& max_hold(const std::chrono::duration<Rep, Period>& limit) noexcept {
        // The C ABI's max_hold_ms = 0 means "no limit": a limit of zero asks for the smallest one.
        const std::chrono::milliseconds ms = detail::length_ms(limit);
        max_hold_ = ms == ms.zero() ? std::chrono::milliseconds(1) : ms;
        return *this;
    }

    /// With auto-renewal: called once, as soon as the lock is lost (or the client closed), on a
    /// thread of the library's own while the holder may still be working. Keep it thread-safe
    /// and brief (set a flag, notify, cancel the work). It must not use the Lock it reports on,
    /// which is not for concurrent use (a Mutex's lost(), fence() and unlock() are fine); an
    /// exception leaving it calls std::terminate. Unlock, destruction, release() and
    /// Client::close() wait for a running call, and after they return no call starts, so what
    /// it captures by reference need only outlive the guard (the function object itself may be
    /// destroyed later, on a library thread). A loss racing with unlock may be reported by
    /// unlock's errc::not_owner alone. An empty function: nobody is told (Lock::lost() still
    /// knows).
    LockOptions& on_lost(std::function<void()> callback) {
        on_lost_ = callback ? std::make_shared<const std::function<void()>>(std::move(callback)) : nullptr;
        return *this;
    }

private:
    friend class Lock;

    bool auto_renew_ = true;
    std::optional<std::chrono::milliseconds> max_hold_;
    std::shared_ptr<const std::function<void()>> on_lost_;
};

namespace detail {

// The on_lost callback of one hold. The C library gets a heap reference to it as on_lost_data
// and deletes that through drop() once the callback can no longer run; the guard keeps another,
// so that release(), which leaves the lock and its renewal to someone else, can silence it.
class LostNotice {
public:
    using Callback = std::shared_ptr<const std::function<void()>>;

    explicit LostNotice(Callback callback) noexcept : callback_(std::move(callback)) {}

    // The on_lost_data handed to the library for `notice`; throws std::bad_alloc.
    static void* user_data(const std::shared_ptr<LostNotice>& notice) {
        return new std::shared_ptr<LostNotice>(notice);
    }

    // A redilock_lost_callback for user_data().
    static void deliver(void* data, const char* /*name*/) noexcept {
        (*static_cast<std::shared_ptr<LostNotice>*>(data))->run();
    }

    // A redilock_data_drop for user_data().
    static void drop(void* data) noexcept { delete static_cast<std::shared_ptr<LostNotice>*>(data); }

    // Waits for a running call to return (unless it runs on this thread); no call starts after.
    void silence() noexcept {
        const std::lock_guard<std::recursive_mutex> guard(running_);
        silenced_ = true;
    }

private:
    void run() noexcept {
        const std::lock_guard<std::recursive_mutex> guard(running_);
        if (!silenced_) (*callback_)();
    }

    const Callback callback_;
    std::recursive_mutex running_;  // held during the call; recursive, for a call that releases its guard
    bool silenced_ = false;
};

}  // namespace detail

/// A connection to one Redis server (one multiplexed connection and one I/O thread), or to
/// several independent masters (Client::quorum), owning the C handle (`redilock *`, spelled
/// `redilock_handle *` here). Move-only; a moved-from client is empty and every lock call on it
/// fails with errc::null_argument. Any number of threads may use one client at once; moving or destroying
/// it must not overlap other calls. Constructors do no I/O: the client connects on first use
/// and reconnects by itself. Destroying it does not release locks still held (their TTL ends
/// them); every Lock, Mutex and pending lock_async must be done with it first: close() ends
/// the waits among them, so shutting down is close(), collect the futures and join the
/// threads, destroy. Moving a client is fine for them: they hold the C handle, not the Client
/// object.
class Client {
public:
    /// A client for `url` (`redis://[user:password@]host[:port][/db]`, the same with `rediss://`
    /// for TLS, `unix:///path`, `redis+sentinel://host:port,host:port/PRIMARY_NAME` or
    /// `redis+cluster://host:port,host:port`, the last two also with `rediss+`) whose locks
    /// last `default_ttl` unless they pass a TTL (0: every lock must pass one). Over TLS the server's certificate is verified against the
    /// system's root certificates (ClientOptions::tls_ca_file sets others; a URL ending in
    /// `#insecure` skips the verification), and a failed handshake is errc::tls. Throws
    /// redilock::error: errc::invalid_argument for an unusable URL, or a default TTL that is
    /// negative or above max_ttl.
    template <class Rep, class Period>
    Client(const std::string& url, const std::chrono::duration<Rep, Period>& default_ttl)
        : handle_(detail::throw_on_error(
              [&](std::error_code& ec) { return open(url, detail::length_ms(default_ttl), ec); })) {}

    /// Like the constructor above; on failure sets `ec` and leaves the client empty.
    template <class Rep, class Period>
    Client(const std::string& url, const std::chrono::duration<Rep, Period>& default_ttl, std::error_code& ec) noexcept
        : handle_(open(url, detail::length_ms(default_ttl), ec)) {}

    /// A client with options. Throws redilock::error (errc::invalid_argument for a bad URL or
    /// option value).
    Client(const std::string& url, const ClientOptions& options)
        : handle_(detail::throw_on_error([&](std::error_code& ec) { return open(url, options, ec); })) {}

    /// Like the constructor above; on failure sets `ec` and leaves the client empty.
    Client(const std::string& url, const ClientOptions& options, std::error_code& ec) noexcept
        : handle_(open(url, options, ec)) {}

    /// A quorum client ("Redlock") over `urls`, at least 3 independent masters, each a
    /// single-server URL (`redis://`, `rediss://` or `unix://`). Every call asks every master
    /// at once: a lock is held when a quorum (ClientOptions::quorum, a majority by default)
    /// granted it with time left of its TTL (Lock::validity()). Too many masters failing or
    /// not answering within ClientOptions::node_timeout throws errc::quorum_unavailable, never
    /// "not acquired". Fencing numbers strictly increase across holders as long as no master
    /// loses its data; FIFO turns are not kept across masters (`fair` does not apply). Throws
    /// redilock::error: errc::invalid_argument for fewer than 3 URLs, one that is not a single
    /// server, a master given twice or a quorum out of range.
    [[nodiscard]] static Client quorum(const std::vector<std::string>& urls, const ClientOptions& options = {}) {
        return Client(detail::throw_on_error([&](std::error_code& ec) { return open(urls, options, ec); }));
    }

    /// Like quorum() above; on failure sets `ec` and returns an empty client.
    [[nodiscard]] static Client quorum(const std::vector<std::string>& urls, const ClientOptions& options,
                                       std::error_code& ec) noexcept {
        return Client(open(urls, options, ec));
    }

    Client(Client&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}

    Client& operator=(Client&& other) noexcept {
        if (this != &other) {
            redilock_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }

    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    ~Client() { redilock_free(handle_); }

    /// Checks that Redis answers, connecting first if needed. Throws redilock::error.
    void ping() {
        detail::throw_on_error([&](std::error_code& ec) { ping(ec); });
    }

    /// Like ping(); reports a failure through `ec`.
    void ping(std::error_code& ec) noexcept { detail::succeeded(redilock_ping(handle_), ec); }

    /// Closes the client, from any thread, while others use it: their lock waits (Lock,
    /// Mutex, lock_async) end with errc::closed within milliseconds, and every later call
    /// fails with errc::closed without sending anything. Renewed locks stop being renewed
    /// and count as lost: their on_lost callbacks have run when this returns (unless it is
    /// called from one), and lost() is true. Locks still held are not released; their TTL ends
    /// them. Idempotent; the destructor still frees the client. Throws redilock::error
    /// (errc::null_argument for an empty client).
    void close() {
        detail::throw_on_error([&](std::error_code& ec) { close(ec); });
    }

    /// Like close(); reports a failure through `ec`.
    void close(std::error_code& ec) noexcept { detail::succeeded(redilock_close(handle_), ec); }

    /// Starts acquiring `name` for `ttl` (redilock::default_ttl: the client's) on its own thread,
    /// waiting as long as it takes. The future yields the owning Lock, held as `options` say
    /// (renewed from the moment it is acquired, by default), or rethrows its redilock::error;
    /// triggering `cancel` ends the wait with errc::cancelled, close() with errc::closed. As
    /// with every std::async future, destroying it waits for the acquisition to end (cancel it
    /// or close the client to end it now), and a Lock nobody collects is released. Throws
    /// std::system_error if no thread can be started.
    template <class Rep, class Period>
    [[nodiscard]] std::future<Lock> lock_async(std::string name, const std::chrono::duration<Rep, Period>& ttl,
                                               LockOptions options,
                                               std::optional<CancelSignal> cancel = std::nullopt) const;

    /// lock_async() with the default LockOptions.
    template <class Rep, class Period>
    [[nodiscard]] std::future<Lock> lock_async(std::string name, const std::chrono::duration<Rep, Period>& ttl,
                                               std::optional<CancelSignal> cancel = std::nullopt) const;

    /// The C handle, still owned by this client (NULL when empty), for calls the C++ layer
    /// does not wrap.
    [[nodiscard]] redilock_handle* c_handle() const noexcept { return handle_; }

private:
    using OwnedOptions = std::unique_ptr<redilock_options, void (*)(redilock_options*)>;

    explicit Client(redilock_handle* handle) noexcept : handle_(handle) {}

    static redilock_handle* open(const std::string& url, std::chrono::milliseconds default_ttl,
                          std::error_code& ec) noexcept {
        redilock_handle* client = nullptr;
        detail::succeeded(redilock_new(url.c_str(), default_ttl.count(), &client), ec);
        return client;
    }

    static redilock_handle* open(const std::string& url, const ClientOptions& options, std::error_code& ec) noexcept {
        const OwnedOptions raw = c_options(options, ec);
        redilock_handle* client = nullptr;
        if (raw) detail::succeeded(redilock_new_with_options(url.c_str(), raw.get(), &client), ec);
        return client;
    }

    static redilock_handle* open(const std::vector<std::string>& urls, const ClientOptions& options,
                                 std::error_code& ec) noexcept {
        std::vector<const char*> c_urls;
        try {
            c_urls.reserve(urls.size());
        } catch (const std::bad_alloc&) {
            ec = std::make_error_code(std::errc::not_enough_memory);
            return nullptr;
        }
        for (const std::string& url : urls) c_urls.push_back(url.c_str());
        const OwnedOptions raw = c_options(options, ec);
        redilock_handle* client = nullptr;
        if (raw) detail::succeeded(redilock_new_quorum(c_urls.data(), c_urls.size(), raw.get(), &client), ec);
        return client;
    }

    // `options` as the C ABI's options; empty with `ec` set when the library refuses a value.
    static OwnedOptions c_options(const ClientOptions& options, std::error_code& ec) noexcept {
        redilock_options* raw = nullptr;
        if (!detail::succeeded(redilock_options_new(&raw), ec)) return OwnedOptions(nullptr, redilock_options_free);
        OwnedOptions owned(raw, redilock_options_free);
        const auto set_interval = [&](auto setter, const std::optional<std::chrono::milliseconds>& value) {
            return !value || detail::succeeded(setter(raw, value->count()), ec);
        };
        // The paths go to the C ABI as they are: a path's native form is its bytes on the
        // platforms the library supports.
        const bool applied =
            set_interval(redilock_options_set_retry_interval_ms, options.retry_interval) &&
            set_interval(redilock_options_set_connect_timeout_ms, options.connect_timeout) &&
            set_interval(redilock_options_set_command_timeout_ms, options.command_timeout) &&
            detail::succeeded(redilock_options_set_default_ttl_ms(raw, options.default_ttl.count()), ec) &&
            detail::succeeded(redilock_options_set_key_prefix(raw, options.key_prefix.c_str()), ec) &&
            detail::succeeded(redilock_options_set_fair(raw, options.fair), ec) &&
            detail::succeeded(redilock_options_set_replica_acks(raw, options.replica_acks,
                                                                options.replica_ack_timeout.count()),
                              ec) &&
            (!options.tls_ca_file ||
             detail::succeeded(redilock_options_set_tls_ca_file(raw, options.tls_ca_file->c_str()), ec)) &&
            (!options.tls_client_cert ||
             detail::succeeded(redilock_options_set_tls_client_cert_file(raw, options.tls_client_cert->cert_file.c_str(),
                                                                         options.tls_client_cert->key_file.c_str()),
                               ec)) &&
            detail::succeeded(redilock_options_set_quorum(raw, options.quorum), ec) &&
            detail::succeeded(redilock_options_set_node_timeout_ms(raw, options.node_timeout.count()), ec);
        if (!applied) owned.reset();
        return owned;
    }

    redilock_handle* handle_;
};

/// A guard for one distributed lock, modelled on std::unique_lock: it owns the lock `name` or
/// nothing, and releases what it owns when destroyed. The destructor never throws: if the lock
/// already expired or Redis is unreachable there is nothing to release or nothing it can do
/// (the TTL ends the lock). Call unlock() to learn the outcome.
///
/// A held lock is a lease. By default the guard has it renewed while it owns it (see
/// LockOptions): lost() and the on_lost callback tell when that fails; fence() gives the number
/// that lets the protected resource refuse a late holder's writes.
///
/// Move-only; moving keeps the renewal and the callback. One guard is not for concurrent use
/// by several threads; guards in any number of threads and processes exclude each other
/// through Redis. The guard keeps the client's C handle: the Client must outlive it (moving
/// the Client is fine). A guard that owns its lock and asks for it again would wait on itself,
/// so lock() and the try forms throw std::errc::resource_deadlock_would_occur instead.
class Lock {
public:
    /// Owns nothing and belongs to no client, like a default std::unique_lock.
    Lock() noexcept = default;

    /// Acquires `name` for `ttl` (redilock::default_ttl: the client's), waiting as long as it
    /// takes, and holds it as `options` say. Throws redilock::error (errc::invalid_argument for
    /// a negative TTL or one above max_ttl, with the library's message).
    template <class Rep, class Period>
    Lock(Client& client, std::string name, const std::chrono::duration<Rep, Period>& ttl, LockOptions options = {})
        : Lock(client, std::move(name), ttl, std::defer_lock, std::move(options)) {
        lock();
    }

    /// Tries once to acquire `name`: owns_lock() tells whether it did. Throws redilock::error
    /// for failures other than the lock being held.
    template <class Rep, class Period>
    Lock(Client& client, std::string name, const std::chrono::duration<Rep, Period>& ttl, std::try_to_lock_t,
         LockOptions options = {})
        : Lock(client, std::move(name), ttl, std::defer_lock, std::move(options)) {
        static_cast<void>(try_lock());
    }

    /// Owns nothing yet: lock(), try_lock() or try_lock_for() acquire `name` for `ttl` later.
    template <class Rep, class Period>
    Lock(Client& client, std::string name, const std::chrono::duration<Rep, Period>& ttl, std::defer_lock_t,
         LockOptions options = {}) noexcept
        : Lock(client.c_handle(), std::move(name), detail::length_ms(ttl), std::move(options)) {}

    /// Takes over what `other` owns; `other` is left owning nothing and belonging to no client.
    Lock(Lock&& other) noexcept { swap(other); }

    /// Releases what this guard owns (quietly, as the destructor does), then takes over `other`.
    Lock& operator=(Lock&& other) noexcept {
        Lock(std::move(other)).swap(*this);  // the temporary ends with this guard's old lock
        return *this;
    }

    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;

    /// Releases the lock if owned. Never throws.
    ~Lock() {
        std::error_code ignored;
        if (owns_lock()) unlock(ignored);
    }

    /// Waits until the lock is acquired. Throws redilock::error.
    void lock() {
        detail::throw_on_error([&](std::error_code& ec) { lock(ec); });
    }

    /// Like lock(); reports a failure through `ec`.
    void lock(std::error_code& ec) noexcept { acquire(REDILOCK_WAIT_FOREVER, nullptr, ec); }

    /// Waits until the lock is acquired or `cancel` is triggered (errc::cancelled).
    /// Throws redilock::error.
    void lock(const CancelSignal& cancel) {
        detail::throw_on_error([&](std::error_code& ec) { lock(cancel, ec); });
    }

    /// Like lock(cancel); reports a failure through `ec`.
    void lock(const CancelSignal& cancel, std::error_code& ec) noexcept {
        acquire(REDILOCK_WAIT_FOREVER, cancel.c_handle(), ec);
    }

    /// Tries once: true if acquired, false if another owner holds it. Throws redilock::error.
    [[nodiscard]] bool try_lock() {
        return detail::throw_on_error([&](std::error_code& ec) { return try_lock(ec); });
    }

    /// Like try_lock(); false with `ec` set on failure, false with `ec` clear when merely held.
    [[nodiscard]] bool try_lock(std::error_code& ec) noexcept { return acquire(REDILOCK_NO_WAIT, nullptr, ec); }

    /// Waits at most `wait` (rounded up to whole milliseconds; zero or less tries once): true if
    /// acquired, false if still held by another owner. Throws redilock::error.
    template <class Rep, class Period>
    [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& wait) {
        return detail::throw_on_error([&](std::error_code& ec) { return try_lock_for(wait, ec); });
    }

    /// Like try_lock_for(wait); false with `ec` set on failure.
    template <class Rep, class Period>
    [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& wait, std::error_code& ec) noexcept {
        return acquire(detail::timeout_ms(wait), nullptr, ec);
    }

    /// try_lock_for() until `deadline`, measured on its clock now. Throws redilock::error.
    template <class Clock, class Duration>
    [[nodiscard]] bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        return try_lock_for(deadline - Clock::now());
    }

    /// Releases the lock and stops its renewal. Throws redilock::error: errc::not_owner when it
    /// had expired (and maybe been taken by another owner), was released behind this guard's
    /// back or was lost by its renewal, so the work done under it may not have been exclusive;
    /// errc::closed when the client was closed (nothing is sent: the TTL ends the lock);
    /// std::errc::operation_not_permitted when the guard owns nothing. Afterwards the guard owns
    /// nothing, whatever the outcome, and its on_lost callback is neither running nor to come.
    void unlock() {
        detail::throw_on_error([&](std::error_code& ec) { unlock(ec); });
    }

    /// Like unlock(); reports a failure through `ec`.
    void unlock(std::error_code& ec) noexcept {
        if (!owned(ec)) return;
        detail::succeeded(redilock_unlock(client_, name_.c_str(), token_.data()), ec);
        end_hold();
    }

    /// Resets the lock's TTL in Redis to `ttl` (rounded up to whole milliseconds), atomically and
    /// only while this guard holds it. Throws redilock::error: errc::invalid_argument for a TTL
    /// of zero or less or above max_ttl, which the library refuses before anything is sent;
    /// errc::not_owner when the lock expired or is another owner's (an expired lock is never
    /// re-created); std::errc::operation_not_permitted when the guard owns nothing. With
    /// auto-renewal the next renewal sets the lock's own TTL again: extend() is for locks held
    /// without it.
    template <class Rep, class Period>
    void extend(const std::chrono::duration<Rep, Period>& ttl) {
        detail::throw_on_error([&](std::error_code& ec) { extend(ttl, ec); });
    }

    /// Like extend(ttl); reports a failure through `ec`.
    template <class Rep, class Period>
    void extend(const std::chrono::duration<Rep, Period>& ttl, std::error_code& ec) noexcept {
        const std::int64_t ttl_ms = detail::length_ms(ttl).count();
        if (owned(ec)) detail::succeeded(redilock_extend(client_, name_.c_str(), token_.data(), ttl_ms), ec);
    }

    /// The time left before the lock expires, as Redis counts it; milliseconds::max() when the
    /// key has no expiry (which only other software sets), so that it compares as the longest
    /// time left. Throws redilock::error as extend().
    [[nodiscard]] std::chrono::milliseconds remaining_ttl() const {
        return detail::throw_on_error([&](std::error_code& ec) { return remaining_ttl(ec); });
    }

    /// Like remaining_ttl(); zero with `ec` set on failure.
    [[nodiscard]] std::chrono::milliseconds remaining_ttl(std::error_code& ec) const noexcept {
        std::int64_t remaining = 0;
        if (!owned(ec) ||
            !detail::succeeded(redilock_remaining_ttl(client_, name_.c_str(), token_.data(), &remaining), ec))
            return std::chrono::milliseconds::zero();
        if (remaining == REDILOCK_NO_EXPIRY) return std::chrono::milliseconds::max();
        return std::chrono::milliseconds(remaining);
    }

    /// Whether the renewal of the owned lock has lost it (found it gone, could not reach Redis
    /// before the lease ran out, or the client was closed): stop the work it protects. No I/O.
    /// False when nothing is owned or auto-renewal is off; for those, remaining_ttl() asks Redis.
    [[nodiscard]] bool lost() const noexcept {
        if (!owns_lock() || !options_.auto_renew_) return false;
        bool lost = false;
        const redilock_status status = redilock_renewal_lost(client_, token_.data(), &lost);
        // Besides OK, the library answers CLOSED once the client is closed, which counts its
        // renewed locks as lost, and WRONG_PROCESS in a forked child, where nothing renews the
        // lock for this process.
        return status != REDILOCK_STATUS_OK || lost;
    }

    /// The fencing number of the current hold, 0 when nothing is owned. It strictly increases
    /// with every acquisition of this name by any holder: send it with each write to the
    /// resource the lock protects, and have the resource refuse numbers older than the newest
    /// it has seen, so that a holder paused past its lease cannot overwrite its successor's work.
    [[nodiscard]] std::uint64_t fence() const noexcept { return fence_; }

    /// How long the current hold was sure to last when the lock call returned, unless extended
    /// or renewed: its TTL less the time the acquisition took (for a quorum client, less an
    /// allowance for clock drift too). Work that must finish under the lock without renewal
    /// has to fit in it. Zero when nothing is owned.
    [[nodiscard]] std::chrono::milliseconds validity() const noexcept { return validity_; }

    /// Gives up ownership without releasing: the lock stays in Redis until someone unlocks it
    /// with the returned token (e.g. redilock_unlock) or its TTL ends; with auto-renewal it is
    /// renewed until that unlock (or until the client is closed). The on_lost callback is no
    /// longer called: when this returns it is neither running nor to come. "" if nothing owned.
    [[nodiscard]] std::string release() {
        std::string token(token_.data());
        if (lost_notice_) lost_notice_->silence();
        end_hold();
        return token;
    }

    /// Exchanges the state of two guards.
    void swap(Lock& other) noexcept {
        std::swap(client_, other.client_);
        std::swap(name_, other.name_);
        std::swap(ttl_, other.ttl_);
        std::swap(options_, other.options_);
        std::swap(token_, other.token_);
        std::swap(fence_, other.fence_);
        std::swap(validity_, other.validity_);
        std::swap(lost_notice_, other.lost_notice_);
    }

    /// Whether this guard holds the lock (as far as it knows: the TTL may have ended it since,
    /// or lost() may tell that renewal failed).
    [[nodiscard]] bool owns_lock() const noexcept { return token_[0] != '\0'; }

    /// owns_lock().
    explicit operator bool() const noexcept { return owns_lock(); }

    /// The owner token (32 characters), "" when nothing is owned. The view stays valid until
    /// the guard is unlocked, released, moved from or destroyed.
    [[nodiscard]] std::string_view token() const noexcept { return token_.data(); }

    /// The lock's name.
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    /// The TTL each acquisition asks for (redilock::default_ttl: the client's); remaining_ttl()
    /// tells what is left of the current hold.
    [[nodiscard]] std::chrono::milliseconds ttl() const noexcept { return ttl_; }

private:
    friend class Client;
    friend class Mutex;

    Lock(redilock_handle* client, std::string name, std::chrono::milliseconds ttl, LockOptions options) noexcept
        : client_(client), name_(std::move(name)), ttl_(ttl), options_(std::move(options)) {}

    // One acquisition attempt as the C ABI's timeout_ms says; true when it acquired. A lock
    // held by another owner is not a failure: false with `ec` clear.
    bool acquire(std::int64_t timeout_ms, const redilock_cancel* cancel, std::error_code& ec) noexcept {
        if (owns_lock()) {
            ec = std::make_error_code(std::errc::resource_deadlock_would_occur);
            return false;
        }
        redilock_lock_params params{};
        std::int64_t validity_ms = 0;
        if (!fill_params(cancel, params, ec)) return false;
        params.validity_ms_out = &validity_ms;
        const redilock_status result = redilock_lock_ex(client_, name_.c_str(), ttl_.count(), timeout_ms, &params,
                                                        token_.data(), token_.size(), &fence_);
        const bool acquired = result == REDILOCK_STATUS_OK;
        validity_ = std::chrono::milliseconds(validity_ms);
        if (!acquired) end_hold();  // ownership is "token non-empty", whatever the C side wrote
        detail::succeeded(result == REDILOCK_STATUS_NOT_ACQUIRED ? REDILOCK_STATUS_OK : result, ec);
        return acquired;
    }

    // Fills the parameters of an acquisition with `cancel` and this guard's options, handing
    // the library the hold's on_lost callback; false with `ec` set when out of memory. (A hold
    // limit is passed even without renewal, for the library to check.)
    bool fill_params(const redilock_cancel* cancel, redilock_lock_params& params, std::error_code& ec) noexcept {
        static_cast<void>(redilock_lock_params_init(&params));
        params.cancel = cancel;
        params.auto_renew = options_.auto_renew_;
        params.max_hold_ms = options_.max_hold_ ? options_.max_hold_->count() : 0;
        if (!options_.auto_renew_ || !options_.on_lost_) return true;
        try {
            lost_notice_ = std::make_shared<detail::LostNotice>(options_.on_lost_);
            params.on_lost_data = detail::LostNotice::user_data(lost_notice_);
        } catch (const std::bad_alloc&) {
            lost_notice_.reset();
            ec = std::make_error_code(std::errc::not_enough_memory);
            return false;
        }
        params.on_lost = &detail::LostNotice::deliver;
        params.on_lost_data_drop = &detail::LostNotice::drop;
        return true;
    }

    // True when the guard owns its lock; otherwise sets `ec` as std::unique_lock would.
    bool owned(std::error_code& ec) const noexcept {
        if (!owns_lock()) ec = std::make_error_code(std::errc::operation_not_permitted);
        return owns_lock();
    }

    // Forgets the current hold, once its on_lost callback is neither running nor to come
    // (the library sees to that when unlock returns or a lock call fails).
    void end_hold() noexcept {
        lost_notice_.reset();
        token_[0] = '\0';
        fence_ = 0;
        validity_ = std::chrono::milliseconds::zero();
    }

    redilock_handle* client_ = nullptr;
    std::string name_;
    std::chrono::milliseconds ttl_{0};
    LockOptions options_;
    std::array<char, REDILOCK_TOKEN_LEN> token_{};  // "" when nothing is owned
    std::uint64_t fence_ = 0;
    std::chrono::milliseconds validity_{0};
    std::shared_ptr<detail::LostNotice> lost_notice_;  // the hold's on_lost callback, if any
};

/// Exchanges the state of two guards (found by argument-dependent lookup, as for unique_lock).
inline void swap(Lock& a, Lock& b) noexcept { a.swap(b); }

template <class Rep, class Period>
std::future<Lock> Client::lock_async(std::string name, const std::chrono::duration<Rep, Period>& ttl,
                                     LockOptions options, std::optional<CancelSignal> cancel) const {
    // The task owns copies of everything it uses but the C handle, and the signal's copy keeps
    // the signal alive until the wait returns.
    return std::async(std::launch::async, [client = handle_, name = std::move(name), ttl_ms = detail::length_ms(ttl),
                                           options = std::move(options), cancel = std::move(cancel)]() mutable {
        Lock lock(client, std::move(name), ttl_ms, std::move(options));
        detail::throw_on_error([&](std::error_code& ec) {
            lock.acquire(REDILOCK_WAIT_FOREVER, cancel ? cancel->c_handle() : nullptr, ec);
        });
        return lock;
    });
}

template <class Rep, class Period>
std::future<Lock> Client::lock_async(std::string name, const std::chrono::duration<Rep, Period>& ttl,
                                     std::optional<CancelSignal> cancel) const {
    return lock_async(std::move(name), ttl, LockOptions(), std::move(cancel));
}

/// A distributed lock with the standard Lockable and TimedLockable members, so std::lock_guard,
/// std::unique_lock, std::scoped_lock and std::lock work with it. Mutexes on the same name
/// exclude each other across threads, processes and machines.
///
/// Each hold is renewed until unlock unless `options` turn that off (see LockOptions); lost()
/// and the on_lost callback report a hold whose renewal failed, fence() gives its fencing number.
///
/// Like a std::mutex, one Mutex may be shared by threads; it is neither copyable nor movable.
/// It is not recursive: a thread locking it again waits until the first hold ends, which with
/// renewal is never (or at max_hold). unlock() cannot report failure (the standard guards call
/// it from destructors); call unlock(std::error_code&) to learn whether the lock had expired or
/// been lost. The Client must outlive it.
class Mutex {
public:
    /// A mutex for the lock `name`, taken for `ttl` (redilock::default_ttl: the client's) at
    /// each acquisition and held as `options` say. No I/O happens here.
    template <class Rep, class Period>
    Mutex(Client& client, std::string name, const std::chrono::duration<Rep, Period>& ttl, LockOptions options = {})
        : client_(client.c_handle()),
          name_(std::move(name)),
          ttl_(detail::length_ms(ttl)),
          options_(std::move(options)) {}

    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;

    /// Waits until acquired. Throws redilock::error.
    void lock() {
        Lock acquired = unlocked_guard();
        acquired.lock();
        hold(std::move(acquired));
    }

    /// Tries once: true if acquired. Throws redilock::error for failures other than the lock
    /// being held.
    [[nodiscard]] bool try_lock() { return try_lock_for(std::chrono::milliseconds::zero()); }

    /// Waits at most `wait`: true if acquired. Throws redilock::error, as try_lock().
    template <class Rep, class Period>
    [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& wait) {
        Lock acquired = unlocked_guard();
        if (!acquired.try_lock_for(wait)) return false;
        hold(std::move(acquired));
        return true;
    }

    /// try_lock_for() until `deadline`, measured on its clock now. Throws redilock::error.
    template <class Clock, class Duration>
    [[nodiscard]] bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        return try_lock_for(deadline - Clock::now());
    }

    /// Releases the lock; a failure (it had expired, Redis is unreachable) is ignored, since
    /// the TTL ends the lock anyway. Never throws.
    void unlock() noexcept {
        std::error_code ignored;
        unlock(ignored);
    }

    /// Releases the lock; reports a failure through `ec` as Lock::unlock(std::error_code&).
    void unlock(std::error_code& ec) noexcept {
        Lock releasing;
        {
            const std::lock_guard<std::mutex> guard(state_);
            releasing.swap(held_);
        }
        releasing.unlock(ec);  // outside state_: a waiting lock() must not block this
    }

    /// Whether the renewal of the current hold has lost it (Lock::lost()); false when not held.
    [[nodiscard]] bool lost() const noexcept {
        const std::lock_guard<std::mutex> guard(state_);
        return held_.lost();
    }

    /// The fencing number of the current hold (Lock::fence()); 0 when not held.
    [[nodiscard]] std::uint64_t fence() const noexcept {
        const std::lock_guard<std::mutex> guard(state_);
        return held_.fence();
    }

    /// The validity of the current hold (Lock::validity()); zero when not held.
    [[nodiscard]] std::chrono::milliseconds validity() const noexcept {
        const std::lock_guard<std::mutex> guard(state_);
        return held_.validity();
    }

    /// The lock's name.
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

private:
    Lock unlocked_guard() const { return Lock(client_, name_, ttl_, options_); }

    void hold(Lock&& acquired) noexcept {
        const std::lock_guard<std::mutex> guard(state_);
        held_ = std::move(acquired);
    }

    redilock_handle* const client_;
    const std::string name_;
    const std::chrono::milliseconds ttl_;
    const LockOptions options_;
    // The guard owning the lock between lock() and unlock(), which may run on different
    // threads sharing this Mutex; the waiting itself happens outside state_.
    mutable std::mutex state_;
    Lock held_;
};

}  // namespace redilock

#endif  // REDILOCK_HPP
