// The second translation unit of the double-include test: the header included twice here and
// once in the other unit must give one program (no duplicate symbols, one category instance).
#include "redilock.hpp"
#include "redilock.hpp"

#include "second_unit.hpp"

#include <chrono>

const std::error_category& category_in_second_unit() { return redilock::category(); }

bool try_lock_in_second_unit(redilock::Client& client, const std::string& name) {
    redilock::Lock lock(client, name, std::chrono::seconds(5), std::try_to_lock);
    return lock.owns_lock();
}
