// Benchmark worker for the C++ layer, driven by bench/compare.rs (`make bench`): the same
// protocol as bench/c_bench.c's uncontended mode, through the RAII guard.
//
//   bench-cpp uncontended URL SECONDS
//       lock (try once) + unlock one name in a loop; prints "cycles_per_sec <float>".
#include "redilock.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    if (argc != 4 || std::string(argv[1]) != "uncontended") {
        std::fprintf(stderr, "usage: %s uncontended URL SECONDS\n", argv[0]);
        return 2;
    }
    using Clock = std::chrono::steady_clock;
    try {
        redilock::Client client(argv[2], std::chrono::seconds(10));
        const std::string name = "bench:uncontended:" + std::to_string(getpid());
        const auto start = Clock::now();
        const auto end = start + std::chrono::duration<double>(std::atof(argv[3]));
        long long cycles = 0;
        auto now = start;
        while (now < end) {
            redilock::Lock lock(client, name, redilock::default_ttl, std::try_to_lock);
            if (!lock) throw redilock::error(redilock::errc::not_acquired, "uncontended lock was held");
            lock.unlock();
            cycles++;
            now = Clock::now();
        }
        std::printf("cycles_per_sec %.1f\n", static_cast<double>(cycles) / std::chrono::duration<double>(now - start).count());
    } catch (const redilock::error& e) {
        std::fprintf(stderr, "cpp_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
