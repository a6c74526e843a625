# ---- C (tests/c, examples/c) -------------------------------------------------------------
demo-c: lib | $(OUT)
	cc $(CFLAGS_C) examples/c/demo.c -o $(OUT)/demo-c $(LINK_LIB)
	$(WITH_REDIS) --keep-url -- $(OUT)/demo-c


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

# with-redis for the test the loops below run ($$t): test_deployments also needs a Redis Cluster
# and Sentinels, which take a few seconds to start, so only it gets them; test_quorum needs 5
# independent masters, and shuts some of them down.
C_WITH_REDIS = $(WITH_REDIS) $$(case $$t in */test_deployments) echo --cluster --sentinel ;; */test_quorum) printf '%s' '-n 5' ;; esac)

test-c: $(C_TESTS) $(C_TESTS_CLANG)
	@for t in $(C_TESTS) $(C_TESTS_CLANG); do echo "== $$t"; $(C_WITH_REDIS) -- $$t || exit 1; done

# valgrind runs the same C tests once: 0 errors, 0 bytes definitely lost.
test-valgrind: $(C_TESTS)
	@for t in $(C_TESTS); do echo "== valgrind $$t"; \
	  REDILOCK_TEST_UNDER_VALGRIND=1 $(C_WITH_REDIS) -- valgrind --quiet --error-exitcode=99 \
	    --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	    --suppressions=tests/c/valgrind.supp $$t || exit 1; done


# The C worker of both bench drivers: bench-c uncontended|contend|fanin|waiters|memory URL ...
bench-c: lib | $(OUT)
	cc $(CFLAGS_C) -D_GNU_SOURCE bench/c_bench.c -o $(OUT)/bench-c $(LINK_LIB)
