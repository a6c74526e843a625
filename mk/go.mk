# ---- Go (bindings/go, examples/go, tests/packaging/go) ---------------------------------
# By default cgo links the static library inside the module (bindings/go/internal/clib), which
# go-dist writes; -tags redilock_system links through `pkg-config redilock` instead, which the
# build-tree redilock.pc (local-pc) points at target/release.
GO      ?= go
GO_CLIB := bindings/go/internal/clib
GO_SYSTEM := -tags redilock_system
GO_SYSTEM_ENV := PKG_CONFIG_PATH=$(OUT)/pkgconfig

.PHONY: go-dist go-header

# The host platform's libredilock.a, named by GOOS_GOARCH, without its debug information (less
# than half the size) and with zeroed archive dates, so that a rebuild of the same sources
# commits the same bytes. The module's copy of the header must match include/redilock.h.
# The module also carries the project's LICENSE, which pkg.go.dev needs to show its documentation;
# link_static.go names the system libraries the archive needs, as rustc reports them.
go-dist: lib $(NATIVE_LIBS_FILE)
	@grep -qF 'LDFLAGS: $(NATIVE_STATIC_LIBS)' bindings/go/link_static.go \
	  || { echo "bindings/go/link_static.go: the system libraries differ from rustc's: $(NATIVE_STATIC_LIBS)"; exit 1; }
	@cmp -s include/redilock.h $(GO_CLIB)/redilock.h \
	  || { echo "$(GO_CLIB)/redilock.h differs from include/redilock.h: run 'make go-header' and commit it"; exit 1; }
	@cmp -s LICENSE bindings/go/LICENSE || { echo "bindings/go/LICENSE differs from LICENSE: copy it"; exit 1; }
	@dist=$(GO_CLIB)/libredilock_$$($(GO) env GOOS)_$$($(GO) env GOARCH).a; \
	  $(STRIP) --strip-debug --enable-deterministic-archives -o $$dist $(LIB_DIR)/libredilock.a && \
	  echo "go-dist: $$dist, $$(du -h --apparent-size $$dist | cut -f1)" \
	    "($(LIB_DIR)/libredilock.a: $$(du -h --apparent-size $(LIB_DIR)/libredilock.a | cut -f1))"

go-header:
	cp include/redilock.h $(GO_CLIB)/redilock.h

# The unit tests run once on each link: -race on the default (static) one, GOGC=1 on the
# system one, each beside 5 plain Redis servers (the first for most tests, all five as the
# masters of the quorum tests), a TLS-only one, a Redis Cluster and a primary behind Sentinels
# (with-redis -n 5 --tls --cluster --sentinel).
# tests/packaging/go/check then builds a program outside the repository as `go get` users do.
test-go: go-dist local-pc
	@unformatted=$$(gofmt -l bindings/go examples/go tests/packaging/go); \
	  if [ -n "$$unformatted" ]; then echo "gofmt -l: $$unformatted"; exit 1; fi
	cd bindings/go && $(GO) vet ./...
	cd bindings/go && $(GO_SYSTEM_ENV) $(GO) vet $(GO_SYSTEM) ./...
	cd examples/go && $(GO) vet ./...
	cd bindings/go && $(CURDIR)/$(WITH_REDIS) -n 5 --tls --cluster --sentinel -- $(GO) test -race -count=1 ./...
	cd bindings/go && GOGC=1 $(GO_SYSTEM_ENV) $(CURDIR)/$(WITH_REDIS) -n 5 --tls --cluster --sentinel -- $(GO) test $(GO_SYSTEM) -count=1 ./...
	tests/packaging/go/check $(OUT) $(VERSION)

# The demo and the bench worker link as a Go user's program does, statically. The go command
# does not see the library change: removing the binary makes it link again.
demo-go: go-dist | $(OUT)
	rm -f $(OUT)/demo-go
	cd examples/go && $(GO) build -o $(OUT)/demo-go .
	$(WITH_REDIS) --keep-url -- $(OUT)/demo-go

# The bench driver runs it: bench-go uncontended URL SECONDS
bench-go: go-dist | $(OUT)
	rm -f $(OUT)/bench-go
	cd bindings/go && $(GO) build -o $(OUT)/bench-go ./internal/bench
