# redilock: `make demo` runs the demo, `make test` runs every test. Both install what is
# missing through scripts/setup. See README.md.

PREFIX   ?= /usr/local
CARGO    ?= cargo
VERSION  := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
MAJOR    := $(firstword $(subst ., ,$(VERSION)))
MINOR    := $(word 2,$(subst ., ,$(VERSION)))
# The soname names the ABI (build.rs): libredilock.so.0.MINOR before 1.0, .so.MAJOR after.
SONAME   := libredilock.so.$(if $(filter 0,$(MAJOR)),0.$(MINOR),$(MAJOR))
LIB_DIR  := $(CURDIR)/target/release
OUT      := $(CURDIR)/build
WITH_REDIS := tests/harness/with-redis

CFLAGS_C  := -std=c11 -O2 -g -Wall -Wextra -Werror -Iinclude
LINK_LIB  := -L$(LIB_DIR) -lredilock -Wl,-rpath,$(LIB_DIR)

.PHONY: all lib local-pc demo test test-loaded check-soname bench bench-c bench-peers install header check-header lint \
        test-rust test-c test-valgrind demo-c \
        test-cpp demo-cpp bench-cpp test-go demo-go bench-go test-ruby demo-ruby bench-ruby \
        test-interop

all: lib

# The link named by the soname next to the build lets programs linked against
# target/release run without installing.
lib:
	$(CARGO) build --release --quiet -p redilock-ffi
	ln -sf libredilock.so $(LIB_DIR)/$(SONAME)

$(OUT):
	mkdir -p $(OUT)

# A pkg-config file for the build tree, so bindings that link with `pkg-config redilock`
# (Go's #cgo pkg-config) build against target/release without installing:
#   PKG_CONFIG_PATH=$(OUT)/pkgconfig go test ./...
LOCAL_PC := $(OUT)/pkgconfig/redilock.pc
local-pc: $(LOCAL_PC)
$(LOCAL_PC): redilock.pc.in Cargo.toml | $(OUT)
	mkdir -p $(OUT)/pkgconfig
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|^libdir=.*|libdir=$(LIB_DIR)|' \
	  -e 's|^includedir=.*|includedir=$(CURDIR)/include|' -e 's|^prefix=.*|prefix=$(CURDIR)|' \
	  -e 's|^Libs: .*|Libs: -L$${libdir} -lredilock -Wl,-rpath,$${libdir}|' redilock.pc.in > $@

# ---- demo -------------------------------------------------------------------------------
demo:
	scripts/setup demo
	$(MAKE) --no-print-directory demo-c demo-cpp demo-go demo-ruby

demo-c: lib | $(OUT)
	cc $(CFLAGS_C) examples/c/demo.c -o $(OUT)/demo-c $(LINK_LIB)
	$(WITH_REDIS) --keep-url -- $(OUT)/demo-c

# ---- tests ------------------------------------------------------------------------------
test:
	scripts/setup test
	$(MAKE) --no-print-directory lint check-header check-soname test-rust test-c test-valgrind test-cpp test-go test-ruby \
	  test-interop
	@echo "make test: all suites passed"

# The whole suite beside CPU-bound processes (twice as many as cores), with time bounds
# scaled by REDILOCK_TEST_TIME_SCALE: what a loaded CI machine does to the tests.
test-loaded:
	tests/harness/with-cpu-hogs -- $(MAKE) --no-print-directory test

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --quiet --workspace --all-targets -- -D warnings
	@# Both library crates are named redilock (the C library's file name): one doc run each.
	RUSTDOCFLAGS='-D warnings' $(CARGO) doc --quiet --no-deps -p redilock-ffi
	RUSTDOCFLAGS='-D warnings' $(CARGO) doc --quiet --no-deps --workspace --exclude redilock-ffi

test-rust:
	$(CARGO) test --quiet --workspace

# The C tests are built twice, by gcc and by clang: two compilers' warnings on the header and
# the tests. valgrind runs the gcc build.
C_TESTS := $(patsubst tests/c/%.c,$(OUT)/c/%,$(wildcard tests/c/test_*.c))
C_TESTS_CLANG := $(patsubst tests/c/%.c,$(OUT)/c-clang/%,$(wildcard tests/c/test_*.c))
C_TEST_DEPS := include/redilock.h $(wildcard tests/c/*.h) lib

$(OUT)/c/%: tests/c/%.c $(C_TEST_DEPS) | $(OUT)
	mkdir -p $(OUT)/c
	cc $(CFLAGS_C) -D_GNU_SOURCE $< -o $@ $(LINK_LIB) -lpthread

$(OUT)/c-clang/%: tests/c/%.c $(C_TEST_DEPS) | $(OUT)
	mkdir -p $(OUT)/c-clang
	clang $(CFLAGS_C) -D_GNU_SOURCE $< -o $@ $(LINK_LIB) -lpthread

test-c: $(C_TESTS) $(C_TESTS_CLANG)
	@for t in $(C_TESTS) $(C_TESTS_CLANG); do echo "== $$t"; $(WITH_REDIS) -- $$t || exit 1; done

# valgrind runs the same C tests once: 0 errors, 0 bytes definitely lost.
test-valgrind: $(C_TESTS)
	@for t in $(C_TESTS); do echo "== valgrind $$t"; \
	  REDILOCK_TEST_UNDER_VALGRIND=1 $(WITH_REDIS) -- valgrind --quiet --error-exitcode=99 \
	    --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	    --suppressions=tests/c/valgrind.supp $$t || exit 1; done

# ---- header -----------------------------------------------------------------------------
# The header, and the Ruby constants generated from it.
header:
	cbindgen --config cbindgen.toml --crate redilock-ffi --output include/redilock.h
	scripts/ruby-constants

check-header:
	@cbindgen --config cbindgen.toml --crate redilock-ffi --output $(OUT)/redilock.h.new 2>/dev/null
	@diff -u include/redilock.h $(OUT)/redilock.h.new \
	  || { echo "include/redilock.h is out of date: run 'make header' and commit it"; exit 1; }
	@echo "header: include/redilock.h matches crates/redilock-ffi"
	@scripts/ruby-constants --check

# The soname the linker records must be the one build.rs, the install rule and the CMake
# version file agree on (see SONAME).
check-soname: lib
	@soname=$$(readelf -d $(LIB_DIR)/libredilock.so | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p'); \
	  [ "$$soname" = "$(SONAME)" ] || { echo "soname is '$$soname', expected $(SONAME)"; exit 1; }
	@echo "soname: $(SONAME)"

# ---- bench ------------------------------------------------------------------------------
bench:
	scripts/setup bench
	$(MAKE) --no-print-directory lib bench-c bench-cpp bench-go bench-ruby
	$(CARGO) run --release --quiet -p redilock-bench --bin compare -- $(OUT)

# The C worker of both bench drivers: bench-c uncontended|contend|fanin|waiters|memory URL ...
bench-c: lib | $(OUT)
	cc $(CFLAGS_C) -D_GNU_SOURCE bench/c_bench.c -o $(OUT)/bench-c $(LINK_LIB)

# redilock next to the other Redis locks: bench/peers/install puts the peers, from their
# registries, into bench/.peers (git-ignored); bench/peers/run measures them all against one
# private redis-server and rewrites bench/RESULTS.md and bench/results.png. demo-c builds the
# demo that the run checks under valgrind (its own run here is a quiet smoke test).
bench-peers:
	scripts/setup bench
	$(MAKE) --no-print-directory lib local-pc bench-c bench-cpp bench-ruby
	$(MAKE) --no-print-directory demo-c >/dev/null
	bench/peers/install
	bench/peers/run

# ---- install ----------------------------------------------------------------------------
# The command-line tool (crates/redilock-cli); `lib` builds the library only.
.PHONY: cli
cli:
	$(CARGO) build --release --quiet -p redilock-cli

install: lib cli
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 644 target/release/libredilock.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 target/release/libredilock.so $(DESTDIR)$(PREFIX)/lib/libredilock.so.$(VERSION)
	ln -sf libredilock.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libredilock.so
	install -m 644 include/redilock.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' redilock.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/redilock.pc
	install -m 644 include/redilock.hpp $(DESTDIR)$(PREFIX)/include/
	install -d $(DESTDIR)$(PREFIX)/lib/cmake/redilock
	install -m 644 cmake/redilockConfig.cmake $(DESTDIR)$(PREFIX)/lib/cmake/redilock/
	sed -e 's|@VERSION@|$(VERSION)|' cmake/redilockConfigVersion.cmake.in \
	  > $(DESTDIR)$(PREFIX)/lib/cmake/redilock/redilockConfigVersion.cmake
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 -s target/release/redilock $(DESTDIR)$(PREFIX)/bin/

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

# The suite (g++), the same suite under ASan+UBSan (clang++), then an out-of-tree CMake project (and a
# pkg-config build of the same program) against a fresh `make install`.
test-cpp: $(OUT)/cpp/test-cpp $(OUT)/cpp/test-cpp-asan
	$(WITH_REDIS) -- $(OUT)/cpp/test-cpp --gtest_brief=1
	$(WITH_REDIS) -- $(OUT)/cpp/test-cpp-asan --gtest_brief=1
	rm -rf $(CPP_PREFIX) $(OUT)/cpp/consumer
	$(MAKE) --no-print-directory install PREFIX=$(CPP_PREFIX) >/dev/null
	cmake -S tests/cpp/consumer -B $(OUT)/cpp/consumer -DCMAKE_PREFIX_PATH=$(CPP_PREFIX) >/dev/null
	cmake --build $(OUT)/cpp/consumer >/dev/null
	$(WITH_REDIS) -- $(OUT)/cpp/consumer/consumer
	c++ -std=c++17 tests/cpp/consumer/main.cpp -o $(OUT)/cpp/consumer-pkg-config \
	  $$(PKG_CONFIG_PATH=$(CPP_PREFIX)/lib/pkgconfig pkg-config --cflags --libs redilock) -Wl,-rpath,$(CPP_PREFIX)/lib
	$(WITH_REDIS) -- $(OUT)/cpp/consumer-pkg-config

demo-cpp: lib | $(OUT)
	c++ $(CXXFLAGS_CPP) -O2 -g examples/cpp/demo.cpp -o $(OUT)/demo-cpp $(LINK_LIB)
	$(WITH_REDIS) --keep-url -- $(OUT)/demo-cpp

# The bench driver runs it: bench-cpp uncontended URL SECONDS
bench-cpp: lib | $(OUT)
	c++ $(CXXFLAGS_CPP) -O2 bench/cpp_bench.cpp -o $(OUT)/bench-cpp $(LINK_LIB)

# ---- Go (bindings/go, examples/go) ------------------------------------------------------
# cgo links through `pkg-config redilock`; the build-tree redilock.pc (local-pc) points it at
# target/release, so nothing needs installing.
GO     ?= go
GO_ENV := PKG_CONFIG_PATH=$(OUT)/pkgconfig

test-go: lib local-pc
	@unformatted=$$(gofmt -l bindings/go examples/go); \
	  if [ -n "$$unformatted" ]; then echo "gofmt -l: $$unformatted"; exit 1; fi
	cd bindings/go && $(GO_ENV) $(GO) vet ./...
	cd examples/go && $(GO_ENV) $(GO) vet ./...
	cd bindings/go && $(GO_ENV) $(CURDIR)/$(WITH_REDIS) -- $(GO) test -race -count=1 ./...
	cd bindings/go && GOGC=1 $(GO_ENV) $(CURDIR)/$(WITH_REDIS) -- $(GO) test -count=1 ./...

demo-go: lib local-pc | $(OUT)
	cd examples/go && $(GO_ENV) $(GO) build -o $(OUT)/demo-go .
	$(WITH_REDIS) --keep-url -- $(OUT)/demo-go

# The bench driver runs it: bench-go uncontended URL SECONDS
bench-go: lib local-pc | $(OUT)
	cd bindings/go && $(GO_ENV) $(GO) build -o $(OUT)/bench-go ./internal/bench

# ---- Ruby (bindings/ruby, examples/ruby) ------------------------------------------------
RUBY_LIB := $(LIB_DIR)/libredilock.so

test-ruby: lib | $(OUT)
	REDILOCK_LIB=$(RUBY_LIB) $(WITH_REDIS) -- rake -C bindings/ruby test
	gem build -C bindings/ruby redilock.gemspec --output $(OUT)/redilock-$(VERSION).gem

demo-ruby: lib
	REDILOCK_LIB=$(RUBY_LIB) $(WITH_REDIS) --keep-url -- ruby -Ibindings/ruby/lib examples/ruby/demo.rb

# The bench driver runs $(OUT)/bench-ruby like the C worker: bench-ruby uncontended URL SECONDS
bench-ruby: lib | $(OUT)
	printf '#!/bin/sh\nexport REDILOCK_LIB="%s"\nexec ruby -I"%s" "%s" "$$@"\n' '$(RUBY_LIB)' \
	  '$(CURDIR)/bindings/ruby/lib' '$(CURDIR)/bindings/ruby/bench/uncontended.rb' > $(OUT)/bench-ruby
	chmod +x $(OUT)/bench-ruby

# ---- interop (tests/interop) ------------------------------------------------------------
# python-redilock (in build/venv, from scripts/setup) and libredilock through ctypes, i.e. the
# C ABI, exclude each other on one Redis.
test-interop: lib
	REDILOCK_LIB=$(LIB_DIR)/libredilock.so $(WITH_REDIS) -- build/venv/bin/python -m pytest -q tests/interop
