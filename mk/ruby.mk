# ---- Ruby (bindings/ruby, examples/ruby) ------------------------------------------------
RUBY_LIB := $(LIB_DIR)/libredilock.so

# The two gems of a version: the plain one (platform ruby) loads a system libredilock, the
# platform one carries the library. Its platform is this host's, as RubyGems names it.
GEM_PLATFORM = $(shell ruby -e 'print Gem::Platform.local')
GEM_DIR      := $(OUT)/gem
GEM_STAGE    := $(GEM_DIR)/stage
PLAIN_GEM    := $(OUT)/redilock-$(VERSION).gem
PLATFORM_GEM  = $(OUT)/redilock-$(VERSION)-$(GEM_PLATFORM).gem
GEM_BUNDLED   = $(GEM_STAGE)/lib/redilock/native/$(GEM_PLATFORM)/libredilock.so

.PHONY: gem doc-ruby

# Both gems come from one staging copy of bindings/ruby plus the LICENSE, so the source tree
# never holds a copy of the library: the plain gem first, then the platform gem once a
# stripped copy of the library is added (the build tree's stays as it is, with its symbols).
gem: lib | $(OUT)
	rm -rf $(GEM_STAGE) && mkdir -p $(GEM_STAGE)
	cp -R bindings/ruby/redilock.gemspec bindings/ruby/README.md bindings/ruby/.yardopts bindings/ruby/lib LICENSE \
	  $(GEM_STAGE)/
	gem build --strict -C $(GEM_STAGE) redilock.gemspec --output $(PLAIN_GEM)
	mkdir -p $(dir $(GEM_BUNDLED))
	$(STRIP) --strip-unneeded -o $(GEM_BUNDLED) $(RUBY_LIB)
	REDILOCK_GEM_PLATFORM=$(GEM_PLATFORM) gem build --strict -C $(GEM_STAGE) redilock.gemspec \
	  --output $(PLATFORM_GEM)
	@echo "gem: $(PLAIN_GEM) ($$(stat -c %s $(PLAIN_GEM)) bytes), no library"
	@echo "gem: $(PLATFORM_GEM) ($$(stat -c %s $(PLATFORM_GEM)) bytes), with libredilock.so" \
	  "($$(stat -c %s $(GEM_BUNDLED)) bytes stripped, $$(stat -c %s $(RUBY_LIB)) in the build)"

# Every public method of the gem documented for YARD, without a warning. yard is Debian's
# package `yard`; without it the check says so and passes.
doc-ruby:
	@command -v yard >/dev/null || { echo "doc-ruby: yard is not installed (apt-get install yard): skipped"; exit 0; }; \
	  mkdir -p $(GEM_DIR); \
	  stats=$$(cd bindings/ruby && yard stats --list-undoc --no-save --db $(GEM_DIR)/yardoc 2>&1); \
	  { echo "$$stats" | grep -q '100.00% documented' && ! echo "$$stats" | grep -q -e '\[warn\]' -e '\[error\]'; } \
	    || { echo "$$stats"; exit 1; }; \
	  echo "doc-ruby: YARD finds every object documented, with no warning"

# The installed gems, used from an empty directory outside the repository without
# REDILOCK_LIB (bindings/ruby/test/installed): the platform gem locks with the library it
# carries; the plain gem alone raises Redilock::LibraryNotFound. Each goes into a fresh
# GEM_HOME; GEM_PATH adds the one directory that holds the system's ffi (Debian's ruby-ffi),
# so the dependency resolves with no network and no other gem is seen. GEM_HOME, not
# `--install-dir`, says where to install: with it, gem install looks for dependencies in that
# directory alone.
GEM_HOMES  := $(GEM_DIR)/home
FFI_GEM_DIR = $(shell ruby -e 'print Gem::Specification.find_by_name("ffi").base_dir')
# $(call use_installed_gem,NAME,GEM): installs GEM into $(GEM_HOMES)/NAME, then runs
# bindings/ruby/test/installed/NAME.rb with it, next to a throwaway redis-server.
define use_installed_gem
	GEM_HOME=$(GEM_HOMES)/$(1) GEM_PATH=$(GEM_HOMES)/$(1):$(FFI_GEM_DIR) gem install --local --no-document $(2)
	outside=$$(mktemp -d) && cd $$outside && env -u REDILOCK_LIB -u RUBYLIB -u RUBYOPT \
	  GEM_HOME=$(GEM_HOMES)/$(1) GEM_PATH=$(GEM_HOMES)/$(1):$(FFI_GEM_DIR) \
	  $(CURDIR)/$(WITH_REDIS) -- ruby $(CURDIR)/bindings/ruby/test/installed/$(1).rb; \
	  status=$$?; rm -rf $$outside; exit $$status
endef

# The unit tests run beside 5 plain Redis servers (the first is REDIS_URL; all 5 are the
# masters of the quorum tests), a TLS-only Redis, a Redis Cluster and a primary behind
# Sentinels (with-redis -n 5 --tls --cluster --sentinel); then the installed gems, as above.
test-ruby: gem doc-ruby
	REDILOCK_LIB=$(RUBY_LIB) $(WITH_REDIS) -n 5 --tls --cluster --sentinel -- rake -C bindings/ruby test
	rm -rf $(GEM_HOMES)
	$(call use_installed_gem,platform_gem,$(PLATFORM_GEM))
	$(call use_installed_gem,plain_gem,$(PLAIN_GEM))

demo-ruby: lib
	REDILOCK_LIB=$(RUBY_LIB) $(WITH_REDIS) --keep-url -- ruby -Ibindings/ruby/lib examples/ruby/demo.rb

# The bench driver runs $(OUT)/bench-ruby like the C worker: bench-ruby uncontended URL SECONDS
bench-ruby: lib | $(OUT)
	printf '#!/bin/sh\nexport REDILOCK_LIB="%s"\nexec ruby -I"%s" "%s" "$$@"\n' '$(RUBY_LIB)' \
	  '$(CURDIR)/bindings/ruby/lib' '$(CURDIR)/bindings/ruby/bench/uncontended.rb' > $(OUT)/bench-ruby
	chmod +x $(OUT)/bench-ruby
