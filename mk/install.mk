# ---- install ----------------------------------------------------------------------------
install: lib cli
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 644 target/release/libredilock.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 target/release/libredilock.so $(DESTDIR)$(PREFIX)/lib/libredilock.so.$(VERSION)
	ln -sf libredilock.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libredilock.so
	install -m 644 include/redilock.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' redilock.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/redilock.pc
	install -m 644 include/redilock.hpp $(DESTDIR)$(PREFIX)/include/
	install -d $(DESTDIR)$(PREFIX)/lib/cmake/redilock
	install -m 644 cmake/redilockConfig.cmake $(DESTDIR)$(PREFIX)/lib/cmake/redilock/
	sed -e 's|@VERSION@|$(VERSION)|' cmake/redilockConfigVersion.cmake.in \
	  > $(DESTDIR)$(PREFIX)/lib/cmake/redilock/redilockConfigVersion.cmake
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 -s target/release/redilock $(DESTDIR)$(PREFIX)/bin/


# What an installed tree offers programs outside the repository.
test-install:
	@echo "test-install: nothing yet"
