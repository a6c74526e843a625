# ---- CLI (crates/redilock-cli) ----------------------------------------------------------
# The command-line tool; `lib` builds the library only.
cli:
	$(CARGO) build --release --quiet -p redilock-cli

# Its man page, $(OUT)/man/redilock.1, generated from the argument definitions by an example
# of the crate (examples/man.rs), so the tool itself carries no generator. The folder holds
# man pages only: it is emptied first, and install copies what is there. SOURCE_DATE_EPOCH,
# when set, dates the page: the example runs apart from cargo, which does not see it (CARGO).
.PHONY: man
man:
	rm -rf $(OUT)/man
	$(CARGO) build --quiet -p redilock-cli --example man
	$(CURDIR)/target/debug/examples/man $(OUT)/man
