// Benchmark worker for the C++ layer, driven by bench/compare.rs (`make bench`) and by
// bench/peers/run (`make bench-peers`): the protocol of bench/c_bench.c, through the RAII guard.
//
//   bench-cpp uncontended URL SECONDS
//       lock (try once) + unlock one name in a loop; prints "cycles_per_sec <float>".
//   bench-cpp contend URL SECONDS HOLD_MS PAUSE_MS
//       one of several processes on one name: lock (waiting), hold, unlock, pause; prints
//       "cs <asked_ns> <acquired_ns> <released_ns>" per critical section (steady_clock, which
//       is CLOCK_MONOTONIC on Linux, like the other workers).
//
// The guard renews its lock by default; both modes turn that off, so that they measure the
// plain lock as the C worker does (redilock_lock, no parameters) and the ratio to the C row
// shows the cost of the C++ layer alone.
#include "redilock.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

const redilock::LockOptions plain = redilock::LockOptions().auto_renew(false);

long long now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

void uncontended(redilock::Client& client, Clock::time_point end) {
    const std::string name = "bench:uncontended:" + std::to_string(getpid());
    const auto start = Clock::now();
    long long cycles = 0;
    auto now = start;
    while (now < end) {
        redilock::Lock lock(client, name, redilock::default_ttl, std::try_to_lock, plain);
        if (!lock) throw redilock::error(redilock::errc::not_acquired, "uncontended lock was held");
        lock.unlock();
        cycles++;
        now = Clock::now();
    }
    std::printf("cycles_per_sec %.1f\n", static_cast<double>(cycles) / std::chrono::duration<double>(now - start).count());
}

void contend(redilock::Client& client, Clock::time_point end, double hold_ms, double pause_ms) {
    const std::chrono::duration<double, std::milli> hold(hold_ms), pause(pause_ms);
    while (Clock::now() < end) {
        const long long asked = now_ns();
        redilock::Lock lock(client, "bench:contended", redilock::default_ttl, plain);
        const long long acquired = now_ns();
        std::this_thread::sleep_for(hold);
        const long long released = now_ns();
        lock.unlock();
        std::printf("cs %lld %lld %lld\n", asked, acquired, released);
        std::this_thread::sleep_for(pause);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (!((mode == "uncontended" && argc == 4) || (mode == "contend" && argc == 6))) {
        std::fprintf(stderr, "usage: %s uncontended|contend URL SECONDS [HOLD_MS PAUSE_MS]\n", argv[0]);
        return 2;
    }
    try {
        redilock::Client client(argv[2], std::chrono::seconds(10));
        const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(std::atof(argv[3])));
        if (mode == "uncontended")
            uncontended(client, end);
        else
            contend(client, end, std::atof(argv[4]), std::atof(argv[5]));
    } catch (const redilock::error& e) {
        std::fprintf(stderr, "cpp_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
