// The redilock demo in C++: several processes update one shared file, which must always be
// found in its valid state. Each update is a read, a deliberately slow two-step write, and a
// check; with the lock no process ever sees a half-written file or loses an update. The file
// also checks fencing: each write carries the lock's fencing number, and a number not above the
// last one accepted is refused as a stale write. Then the same run without the lock (and so
// without fences) shows the errors the lock prevents.
//
//   REDIS_URL=redis://127.0.0.1:6379 ./demo-cpp [processes] [iterations]
#include "redilock.hpp"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <optional>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const char* const lock_name = "redilock-demo:ledger";
constexpr auto lock_ttl = 10s;

double milliseconds_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

// The ledger file holds "<count> <count * 7> <fence of the last accepted write>"; anything else
// is a torn (invalid) state, whose count is whatever could be read.
struct Ledger {
    long count = 0;
    std::uint64_t fence = 0;
    bool valid = false;
};

Ledger read_ledger(const std::string& path) {
    std::ifstream file(path);
    Ledger ledger;
    long check = -1;
    file >> ledger.count >> check >> ledger.fence;
    ledger.valid = static_cast<bool>(file) && check == ledger.count * 7;
    return ledger;
}

void write_ledger(const std::string& path, const std::string& text) {
    std::ofstream file(path, std::ios::trunc);
    if (!(file << text)) std::perror("write ledger");
}

enum class Outcome { updated, torn_read, stale_write };

// One update carrying `fence` (0: none, not checked): read, refuse a stale fence (each hold
// writes once, so its fence must be above the last one accepted), write a half-done state,
// pause, write the new valid state.
Outcome update_ledger(const std::string& path, std::uint64_t fence) {
    const Ledger ledger = read_ledger(path);
    if (fence != 0 && fence <= ledger.fence) return Outcome::stale_write;
    const std::string next = std::to_string(ledger.count + 1);
    write_ledger(path, next);  // torn: the check number and fence are missing
    std::this_thread::sleep_for(200us);
    write_ledger(path, next + " " + std::to_string((ledger.count + 1) * 7) + " " + std::to_string(fence));
    return ledger.valid ? Outcome::updated : Outcome::torn_read;
}

// What the worker processes count, in an anonymous shared mapping.
struct Counts {
    std::atomic<int> errors{0};  // torn reads and failed lock calls
    std::atomic<int> stale_writes{0};
};

struct Results {
    double* waits_ms;  // one per iteration of every worker
    Counts* counts;
};

int worker(int id, int iterations, bool use_lock, const char* url, const std::string& path, Results out) {
    std::optional<redilock::Client> client;
    int errors = 0, stale_writes = 0;
    try {
        if (use_lock) client.emplace(url, lock_ttl);
    } catch (const redilock::error& e) {
        std::fprintf(stderr, "worker %d: %s\n", id, e.what());
        return 1;
    }
    for (int i = 0; i < iterations; i++) {
        const auto asked = Clock::now();
        try {
            redilock::Lock lock;
            if (use_lock) lock = redilock::Lock(*client, lock_name, redilock::default_ttl);
            out.waits_ms[id * iterations + i] = milliseconds_between(asked, Clock::now());
            const Outcome outcome = update_ledger(path, lock.fence());  // 0 without the lock
            errors += outcome == Outcome::torn_read;
            stale_writes += outcome == Outcome::stale_write;
            if (use_lock) lock.unlock();
        } catch (const redilock::error& e) {
            std::fprintf(stderr, "worker %d: %s\n", id, e.what());
            errors++;
        }
        if ((i + 1) * 4 / iterations != i * 4 / iterations)  // each quarter
            std::printf("  worker %d: %d/%d updates\n", id, i + 1, iterations);
    }
    out.counts->errors += errors;
    out.counts->stale_writes += stale_writes;
    return 0;
}

// Runs the workers as separate processes; returns the number of errors seen.
int run(int processes, int iterations, bool use_lock, const char* url) {
    char path_template[] = "/tmp/redilock-demo-ledgerXXXXXX";
    const int fd = mkstemp(path_template);
    if (fd < 0) return -1;
    close(fd);
    const std::string path = path_template;
    write_ledger(path, "0 0 0");
    const long total = long{processes} * iterations;
    const size_t size = sizeof(double) * static_cast<size_t>(total) + sizeof(Counts);
    void* mapping = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) return -1;
    double* waits = static_cast<double*>(mapping);
    const Results results{waits, new (waits + total) Counts};

    std::printf("%s: %d processes x %d updates of one file\n", use_lock ? "with the lock" : "WITHOUT the lock",
                processes, iterations);
    std::fflush(stdout);
    const auto start = Clock::now();
    for (int id = 0; id < processes; id++) {
        if (fork() == 0) _exit(worker(id, iterations, use_lock, url, path, results));
    }
    int failed_workers = 0;
    for (int id = 0; id < processes; id++) {
        int status = 0;
        wait(&status);
        failed_workers += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    const double elapsed_s = milliseconds_between(start, Clock::now()) / 1e3;

    const Ledger final_ledger = read_ledger(path);
    const int torn_reads = results.counts->errors;
    const int stale_writes = results.counts->stale_writes;
    const long lost = std::max(0L, total - stale_writes - final_ledger.count);  // a refused stale write is not lost
    const int errors = torn_reads + stale_writes + !final_ledger.valid + static_cast<int>(lost) + failed_workers;
    std::sort(waits, waits + total);
    std::printf("  summary: %d x %d = %ld updates, errors: %d (torn reads %d, lost updates %ld", processes,
                iterations, total, errors, torn_reads, lost);
    if (use_lock) std::printf(", stale writes %d", stale_writes);
    std::printf("), %.0f updates/s", static_cast<double>(total) / elapsed_s);
    if (use_lock)
        std::printf(", lock wait p50 %.2f ms, p99 %.2f ms, last fence %llu", waits[total / 2], waits[total * 99 / 100],
                    static_cast<unsigned long long>(final_ledger.fence));
    std::printf("\n\n");
    munmap(mapping, size);
    unlink(path.c_str());
    return errors;
}

}  // namespace

int main(int argc, char** argv) {
    const char* url = std::getenv("REDIS_URL");
    const int processes = argc > 1 ? std::atoi(argv[1]) : 4;
    const int iterations = argc > 2 ? std::atoi(argv[2]) : 250;
    if (url == nullptr || processes < 1 || iterations < 1) {
        std::fprintf(stderr, "usage: REDIS_URL=redis://host:port %s [processes] [iterations]\n", argv[0]);
        return 2;
    }
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::printf("redilock %s demo against %s\n\n", redilock::version(), url);
    const int with_lock = run(processes, iterations, true, url);
    const int without_lock = run(processes, iterations, false, url);
    std::printf("result: %d errors with the lock, %d without it\n", with_lock, without_lock);
    return with_lock == 0 ? 0 : 1;
}
