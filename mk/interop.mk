# ---- interop (tests/interop) ------------------------------------------------------------
# python-redilock (in build/venv, from scripts/setup) and libredilock through ctypes, i.e. the
# C ABI, exclude each other on one Redis.
test-interop: lib
	REDILOCK_LIB=$(LIB_DIR)/libredilock.so $(WITH_REDIS) -- build/venv/bin/python -m pytest -q tests/interop
