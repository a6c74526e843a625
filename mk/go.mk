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

