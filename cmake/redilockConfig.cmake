# CMake package for redilock, installed by `make install` into <prefix>/lib/cmake/redilock:
#   find_package(redilock CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE redilock::redilock)
# The target carries the include directory (redilock.h and the C++17 redilock.hpp) and the
# shared library. Paths are found relative to this file, so the installed tree can be moved.

get_filename_component(_redilock_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

include(CMakeFindDependencyMacro)
find_dependency(Threads)  # redilock.hpp's lock_async runs on std::async threads

if(NOT TARGET redilock::redilock)
  add_library(redilock::redilock SHARED IMPORTED)
  set_target_properties(redilock::redilock PROPERTIES
    IMPORTED_LOCATION "${_redilock_prefix}/lib/libredilock.so"
    INTERFACE_INCLUDE_DIRECTORIES "${_redilock_prefix}/include"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()

unset(_redilock_prefix)
