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

