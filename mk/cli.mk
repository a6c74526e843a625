# ---- CLI (crates/redilock-cli) ----------------------------------------------------------
# The command-line tool; `lib` builds the library only.
cli:
	$(CARGO) build --release --quiet -p redilock-cli
