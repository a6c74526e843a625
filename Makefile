# redilock: `make demo` runs the demo, `make test` runs every test. Both install what is
# missing through scripts/setup. See README.md.

PREFIX   ?= /usr/local
# Cargo never sees SOURCE_DATE_EPOCH, which dates the man page and the Debian package only:
# ring's build script tracks it, and a change rebuilds the whole TLS stack and everything on it.
CARGO    ?= env -u SOURCE_DATE_EPOCH cargo
STRIP    ?= strip
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

.PHONY: all lib local-pc demo test test-loaded check-soname bench bench-c bench-peers bench-fanin header check-header lint \
        test-rust test-c test-valgrind demo-c cli install uninstall test-install test-docs check-crates \
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

# The system libraries libredilock.a needs, as rustc reports them for this target (-lgcc_s
# -lutil ... -lc on Linux). Asked once per Cargo.lock: asking rebuilds the crate.
NATIVE_LIBS_FILE := $(OUT)/native-static-libs
$(NATIVE_LIBS_FILE): Cargo.lock | $(OUT)
	$(CARGO) rustc --quiet -p redilock-ffi --release --crate-type staticlib -- --print native-static-libs \
	  2> $@.log || { cat $@.log; exit 1; }
	sed -n 's/^note: native-static-libs: //p' $@.log | grep . > $@.tmp && mv $@.tmp $@
NATIVE_STATIC_LIBS = $(shell cat $(NATIVE_LIBS_FILE))

# A pkg-config file for the build tree, so bindings that link with `pkg-config redilock`
# (Go's #cgo pkg-config) build against target/release without installing:
#   PKG_CONFIG_PATH=$(OUT)/pkgconfig go test ./...
LOCAL_PC := $(OUT)/pkgconfig/redilock.pc
local-pc: $(LOCAL_PC)
$(LOCAL_PC): redilock.pc.in Cargo.toml $(NATIVE_LIBS_FILE) | $(OUT)
	mkdir -p $(OUT)/pkgconfig
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|^libdir=.*|libdir=$(LIB_DIR)|' -e 's|@NATIVE_STATIC_LIBS@|$(NATIVE_STATIC_LIBS)|' \
	  -e 's|^includedir=.*|includedir=$(CURDIR)/include|' -e 's|^prefix=.*|prefix=$(CURDIR)|' \
	  -e 's|^Libs: .*|Libs: -L$${libdir} -lredilock -Wl,-rpath,$${libdir}|' redilock.pc.in > $@

# ---- demo -------------------------------------------------------------------------------
demo:
	scripts/setup demo
	$(MAKE) --no-print-directory demo-c demo-cpp demo-go demo-ruby

# ---- tests ------------------------------------------------------------------------------
test:
	scripts/setup test
	$(MAKE) --no-print-directory lint check-header check-soname check-crates test-rust test-c test-valgrind test-cpp test-go test-ruby \
	  test-interop test-docs test-install
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

# ---- header -----------------------------------------------------------------------------
# The header, the Ruby constants generated from it, and the Go module's copy of it.
header:
	cbindgen --config cbindgen.toml --crate redilock-ffi --output include/redilock.h
	scripts/ruby-constants
	$(MAKE) --no-print-directory go-header

check-header:
	@cbindgen --config cbindgen.toml --crate redilock-ffi --output $(OUT)/redilock.h.new 2>/dev/null
	@diff -u include/redilock.h $(OUT)/redilock.h.new \
	  || { echo "include/redilock.h is out of date: run 'make header' and commit it"; exit 1; }
	@echo "header: include/redilock.h matches crates/redilock-ffi"
	@scripts/ruby-constants --check

# Each published crate packages and builds on its own, as crates.io would see it.
PUBLISHED_CRATES := -p redilock -p redilock-ffi -p redilock-cli
# Cargo verifies them against a local registry of the crates just packaged, but takes registry
# crates as immutable: it keeps what it once extracted (in a registry/src folder named without a
# host) and built. Both are cleared first, or a crate is built against its dependency as it was
# at an earlier run; the build has a target folder of its own, so only these crates rebuild.
CRATES_CHECK_DIR := $(CURDIR)/target/crates-check
check-crates:
	rm -rf $${CARGO_HOME:-$$HOME/.cargo}/registry/src/-*/redilock* $(CRATES_CHECK_DIR)/debug/.fingerprint/redilock-*
	CARGO_TARGET_DIR=$(CRATES_CHECK_DIR) $(CARGO) package --quiet --allow-dirty $(PUBLISHED_CRATES)
	@echo "crates: $(PUBLISHED_CRATES) package and build"

# The soname the linker records must be the one build.rs, the install rule and the CMake
# version file agree on (see SONAME).
check-soname: lib
	@soname=$$(readelf -d $(LIB_DIR)/libredilock.so | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p'); \
	  [ "$$soname" = "$(SONAME)" ] || { echo "soname is '$$soname', expected $(SONAME)"; exit 1; }
	@echo "soname: $(SONAME)"


# One fragment per front-end or concern; each names the paths it builds.
include mk/c.mk mk/cpp.mk mk/go.mk mk/ruby.mk mk/cli.mk mk/docs.mk mk/interop.mk mk/install.mk mk/bench.mk
