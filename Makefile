# redilock: `make demo` runs the demo, `make test` runs every test. Both install what is
# missing through scripts/setup. See README.md.

PREFIX   ?= /usr/local
CARGO    ?= cargo
VERSION  := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
MAJOR    := $(firstword $(subst ., ,$(VERSION)))
LIB_DIR  := $(CURDIR)/target/release
OUT      := $(CURDIR)/build
WITH_REDIS := tests/harness/with-redis

CFLAGS_C  := -std=c11 -O2 -g -Wall -Wextra -Werror -Iinclude
LINK_LIB  := -L$(LIB_DIR) -lredilock -Wl,-rpath,$(LIB_DIR)

.PHONY: all lib local-pc demo test bench install header check-header lint \
        test-rust test-c test-valgrind demo-c \
        test-cpp demo-cpp bench-cpp test-go demo-go bench-go test-ruby demo-ruby bench-ruby

all: lib

# The soname is libredilock.so.$(MAJOR) (build.rs): the link next to the build lets programs
# linked against target/release run without installing.
lib:
	$(CARGO) build --release --lib --quiet
	ln -sf libredilock.so $(LIB_DIR)/libredilock.so.$(MAJOR)

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
	$(MAKE) --no-print-directory lint check-header test-rust test-c test-valgrind test-cpp test-go test-ruby
	@echo "make test: all suites passed"

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --quiet --all-targets -- -D warnings

test-rust:
	$(CARGO) test --quiet

C_TESTS := $(patsubst tests/c/%.c,$(OUT)/c/%,$(wildcard tests/c/test_*.c))

$(OUT)/c/%: tests/c/%.c include/redilock.h lib | $(OUT)
	mkdir -p $(OUT)/c
	cc $(CFLAGS_C) -D_GNU_SOURCE $< -o $@ $(LINK_LIB) -lpthread

test-c: $(C_TESTS)
	@for t in $(C_TESTS); do echo "== $$t"; $(WITH_REDIS) -- $$t || exit 1; done

# valgrind runs the same C tests once: 0 errors, 0 bytes definitely lost.
test-valgrind: $(C_TESTS)
	@for t in $(C_TESTS); do echo "== valgrind $$t"; \
	  REDILOCK_TEST_UNDER_VALGRIND=1 $(WITH_REDIS) -- valgrind --quiet --error-exitcode=99 \
	    --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	    --suppressions=tests/c/valgrind.supp $$t || exit 1; done

# ---- header -----------------------------------------------------------------------------
header:
	cbindgen --config cbindgen.toml --crate redilock --output include/redilock.h

check-header:
	@cbindgen --config cbindgen.toml --crate redilock --output $(OUT)/redilock.h.new 2>/dev/null
	@diff -u include/redilock.h $(OUT)/redilock.h.new \
	  || { echo "include/redilock.h is out of date: run 'make header' and commit it"; exit 1; }
	@echo "header: include/redilock.h matches src/ffi.rs"

# ---- bench ------------------------------------------------------------------------------
bench:
	scripts/setup bench
	$(MAKE) --no-print-directory lib bench-cpp bench-go bench-ruby
	cc $(CFLAGS_C) -D_GNU_SOURCE bench/c_bench.c -o $(OUT)/bench-c $(LINK_LIB)
	$(CARGO) bench --quiet --bench compare -- $(OUT)

# ---- install ----------------------------------------------------------------------------
install: lib
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 644 target/release/libredilock.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 target/release/libredilock.so $(DESTDIR)$(PREFIX)/lib/libredilock.so.$(VERSION)
	ln -sf libredilock.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libredilock.so.$(MAJOR)
	ln -sf libredilock.so.$(MAJOR) $(DESTDIR)$(PREFIX)/lib/libredilock.so
	install -m 644 include/redilock.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' redilock.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/redilock.pc

# ---- C++ (include/redilock.hpp, tests/cpp, examples/cpp) --------------------------------
test-cpp:
demo-cpp:
bench-cpp:

# ---- Go (bindings/go, examples/go) ------------------------------------------------------
test-go:
demo-go:
bench-go:

# ---- Ruby (bindings/ruby, examples/ruby) ------------------------------------------------
test-ruby:
demo-ruby:
bench-ruby:
