// Functions compiled in second_unit.cpp, a separate translation unit that also includes
// redilock.hpp: the test links both and checks they agree.
#pragma once

#include <string>
#include <system_error>

namespace redilock {
class Client;
}

// The category instance as the second translation unit sees it.
const std::error_category& category_in_second_unit();

// Tries once to take `name` through a Lock built in the second translation unit.
bool try_lock_in_second_unit(redilock::Client& client, const std::string& name);
