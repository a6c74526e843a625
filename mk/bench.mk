# ---- bench ------------------------------------------------------------------------------
bench:
	scripts/setup bench
	$(MAKE) --no-print-directory lib bench-c bench-cpp bench-go bench-ruby
	$(CARGO) run --release --quiet -p redilock-bench --bin compare -- $(OUT)

# redilock next to the other Redis locks: bench/peers/install puts the peers, from their
# registries, into bench/.peers (git-ignored); bench/peers/run measures them all against one
# private redis-server (the quorum part against 5 more) and rewrites bench/RESULTS.md and
# bench/results.png. demo-c builds the demo that the run checks under valgrind (its own run
# here is a quiet smoke test).
bench-peers:
	scripts/setup bench
	$(MAKE) --no-print-directory lib local-pc bench-c bench-cpp bench-ruby
	$(MAKE) --no-print-directory demo-c >/dev/null
	bench/peers/install
	bench/peers/run

# Where the time of the fan-in scenario (16 threads on one client) goes, libredilock C beside
# the raw baseline: CPU time and context switches per cycle, the worker's and Redis's.
bench-fanin:
	scripts/setup bench
	$(MAKE) --no-print-directory lib bench-c
	bench/peers/install raw_baseline
	bench/peers/fanin-costs
