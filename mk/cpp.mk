# ---- C++ (include/redilock.hpp, tests/cpp, examples/cpp) --------------------------------
CXXFLAGS_CPP := -std=c++17 -Wall -Wextra -Wpedantic -Werror -Iinclude
CPP_TEST_SOURCES := $(wildcard tests/cpp/*.cpp)
CPP_TEST_DEPS := $(CPP_TEST_SOURCES) $(wildcard tests/cpp/*.hpp) include/redilock.hpp include/redilock.h
CPP_PREFIX := $(OUT)/cpp/prefix

# Debian's libgtest-dev ships static libraries; where it ships only sources, build them here.
GTEST_LIB_DIR := $(or $(patsubst %/,%,$(dir $(firstword $(wildcard /usr/lib/*/libgtest.a /usr/lib/libgtest.a)))),$(OUT)/gtest/lib)
GTEST_LINK := -L$(GTEST_LIB_DIR) -lgtest -lpthread

$(OUT)/gtest/lib/libgtest.a:
	cmake -S /usr/src/googletest -B $(OUT)/gtest -DBUILD_GMOCK=OFF >/dev/null
	cmake --build $(OUT)/gtest -j 2 >/dev/null

$(OUT)/cpp/test-cpp: $(CPP_TEST_DEPS) $(GTEST_LIB_DIR)/libgtest.a lib | $(OUT)
	mkdir -p $(OUT)/cpp
	c++ $(CXXFLAGS_CPP) -O2 -g $(CPP_TEST_SOURCES) -o $@ $(LINK_LIB) $(GTEST_LINK)

# The sanitizer build is clang's, so the suite also meets a second compiler.
$(OUT)/cpp/test-cpp-asan: $(CPP_TEST_DEPS) $(GTEST_LIB_DIR)/libgtest.a lib | $(OUT)
	mkdir -p $(OUT)/cpp
	clang++ $(CXXFLAGS_CPP) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
	  $(CPP_TEST_SOURCES) -o $@ $(LINK_LIB) $(GTEST_LINK)

# The suite (g++), the same suite under ASan+UBSan (clang++), each beside a TLS server, a Redis
# Cluster and Sentinels (tests/cpp/test_deployment.cpp), then an out-of-tree CMake project
# (the program linked to the shared library and to the static one) and a pkg-config build of the
# same program, against a fresh `make install`.
test-cpp: $(OUT)/cpp/test-cpp $(OUT)/cpp/test-cpp-asan
	$(WITH_REDIS) -n 5 --tls --cluster --sentinel -- $(OUT)/cpp/test-cpp --gtest_brief=1
	$(WITH_REDIS) -n 5 --tls --cluster --sentinel -- $(OUT)/cpp/test-cpp-asan --gtest_brief=1
	rm -rf $(CPP_PREFIX) $(OUT)/cpp/consumer
	$(MAKE) --no-print-directory install PREFIX=$(CPP_PREFIX) >/dev/null
	cmake -S tests/cpp/consumer -B $(OUT)/cpp/consumer -DCMAKE_PREFIX_PATH=$(CPP_PREFIX) >/dev/null
	cmake --build $(OUT)/cpp/consumer >/dev/null
	$(WITH_REDIS) -- $(OUT)/cpp/consumer/consumer
	$(WITH_REDIS) -- $(OUT)/cpp/consumer/consumer_static
	c++ -std=c++17 tests/cpp/consumer/main.cpp -o $(OUT)/cpp/consumer-pkg-config \
	  $$(PKG_CONFIG_PATH=$(CPP_PREFIX)/lib/pkgconfig pkg-config --cflags --libs redilock) -Wl,-rpath,$(CPP_PREFIX)/lib
	$(WITH_REDIS) -- $(OUT)/cpp/consumer-pkg-config

demo-cpp: lib | $(OUT)
	c++ $(CXXFLAGS_CPP) -O2 -g examples/cpp/demo.cpp -o $(OUT)/demo-cpp $(LINK_LIB)
	$(WITH_REDIS) --keep-url -- $(OUT)/demo-cpp

# The bench driver runs it: bench-cpp uncontended URL SECONDS
bench-cpp: lib | $(OUT)
	c++ $(CXXFLAGS_CPP) -O2 bench/cpp_bench.cpp -o $(OUT)/bench-cpp $(LINK_LIB)

