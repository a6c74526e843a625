// Takes and releases one lock through the installed headers and library ($REDIS_URL).
#include <redilock.hpp>

#include <cstdio>
#include <cstdlib>

int main() {
    const char* url = std::getenv("REDIS_URL");
    if (url == nullptr) {
        std::fprintf(stderr, "REDIS_URL is not set\n");
        return 2;
    }
    try {
        redilock::Client client(url, std::chrono::seconds(10));
        redilock::Lock lock(client, "consumer:check", redilock::default_ttl);
        if (lock.fence() == 0 || lock.lost()) throw redilock::error(redilock::errc::panic, "no lease");
        lock.unlock();
    } catch (const redilock::error& e) {
        std::fprintf(stderr, "consumer: %s\n", e.what());
        return 1;
    }
    std::printf("consumer: redilock %s from the installed package: lock taken and released\n", redilock::version());
    return 0;
}
