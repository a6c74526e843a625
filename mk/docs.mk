# ---- docs (README.md, docs/) -------------------------------------------------------------
# Every code example of the README, docs/ and the other READMEs runs against a test Redis
# (tests/docs/run-examples says how each language is run); the CMake one against this install.
DOCS_PREFIX := $(OUT)/docs/prefix

test-docs: lib cli go-dist
	rm -rf $(DOCS_PREFIX)
	$(MAKE) --no-print-directory install PREFIX=$(DOCS_PREFIX) >/dev/null
	REDILOCK_PREFIX=$(DOCS_PREFIX) $(WITH_REDIS) -- tests/docs/run-examples
