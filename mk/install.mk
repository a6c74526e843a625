# ---- install, uninstall, deb (packaging/, tests/install) ---------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=] [LIBDIR=$(PREFIX)/lib]: LIBDIR apart from PREFIX
# for multiarch layouts, as `make deb` uses (/usr/lib/x86_64-linux-gnu).
LIBDIR     ?= $(PREFIX)/lib
BINDIR     := $(PREFIX)/bin
INCLUDEDIR := $(PREFIX)/include
MAN1DIR    := $(PREFIX)/share/man/man1
CMAKEDIR    = $(LIBDIR)/cmake/redilock
MAN_PAGE   := $(OUT)/man/redilock.1

# Every file install writes, each made by one rule below; uninstall removes this same list.
INSTALLED_FILES = $(addprefix $(DESTDIR), \
  $(LIBDIR)/libredilock.so.$(VERSION) $(LIBDIR)/$(SONAME) $(LIBDIR)/libredilock.so $(LIBDIR)/libredilock.a \
  $(INCLUDEDIR)/redilock.h $(INCLUDEDIR)/redilock.hpp \
  $(LIBDIR)/pkgconfig/redilock.pc $(LIBDIR)/pkgconfig/redilock-static.pc \
  $(CMAKEDIR)/redilockConfig.cmake $(CMAKEDIR)/redilockConfigVersion.cmake \
  $(BINDIR)/redilock $(MAN1DIR)/redilock.1)
# Installing copies whatever the dates of the files already there.
.PHONY: $(INSTALLED_FILES)

install: $(INSTALLED_FILES)
	$(if $(DESTDIR),,@packaging/refresh-loader-cache install $(LIBDIR) $(SONAME))

# Only the directory that is redilock's alone goes with the files; lib, include and the rest
# are shared with other software.
uninstall:
	rm -f $(INSTALLED_FILES)
	[ ! -d $(DESTDIR)$(CMAKEDIR) ] || rmdir --ignore-fail-on-non-empty $(DESTDIR)$(CMAKEDIR)
	$(if $(DESTDIR),,@packaging/refresh-loader-cache uninstall $(LIBDIR) $(SONAME))

# The shared library keeps only what linking and loading use (15 MB down to 2); the archive
# loses its debug information but keeps the symbol table that linking it needs. Neither keeps
# the compilers' .comment notes. Mode 644: the loader maps a library without the x bit.
$(DESTDIR)$(LIBDIR)/libredilock.so.$(VERSION): lib
	install -D -m 644 $(LIB_DIR)/libredilock.so $@
	$(STRIP) --strip-unneeded --remove-section=.comment $@

$(DESTDIR)$(LIBDIR)/libredilock.a: lib
	install -D -m 644 $(LIB_DIR)/libredilock.a $@
	$(STRIP) --strip-debug --remove-section=.comment --enable-deterministic-archives $@

# The soname link is what programs load, the unversioned one what -lredilock finds.
$(DESTDIR)$(LIBDIR)/$(SONAME): $(DESTDIR)$(LIBDIR)/libredilock.so.$(VERSION)
	ln -sf $(<F) $@

$(DESTDIR)$(LIBDIR)/libredilock.so: $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(<F) $@

$(addprefix $(DESTDIR)$(INCLUDEDIR)/,redilock.h redilock.hpp): $(DESTDIR)$(INCLUDEDIR)/%: include/%
	install -D -m 644 $< $@

$(DESTDIR)$(BINDIR)/redilock: cli
	install -D -m 755 $(LIB_DIR)/redilock $@
	$(STRIP) --remove-section=.comment $@

$(DESTDIR)$(MAN1DIR)/redilock.1: man
	install -D -m 644 $(MAN_PAGE) $@

# The templates' @NAME@ fields. The .pc files name their directories from ${prefix}, as
# pkg-config's relocation expects; the CMake file finds the headers relative to itself.
SUBSTITUTE = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|' \
  -e 's|@VERSION@|$(VERSION)|' -e 's|@NATIVE_STATIC_LIBS@|$(NATIVE_STATIC_LIBS)|' \
  -e 's|@CMAKEDIR_TO_INCLUDEDIR@|$(shell realpath -m --relative-to=$(CMAKEDIR) $(INCLUDEDIR))|'

$(addprefix $(DESTDIR)$(LIBDIR)/pkgconfig/,redilock.pc redilock-static.pc): $(DESTDIR)$(LIBDIR)/pkgconfig/%: %.in $(NATIVE_LIBS_FILE)
	install -d $(@D)
	$(SUBSTITUTE) $< > $@ && chmod 644 $@

$(addprefix $(DESTDIR)$(CMAKEDIR)/,redilockConfig.cmake redilockConfigVersion.cmake): $(DESTDIR)$(CMAKEDIR)/%: cmake/%.in $(NATIVE_LIBS_FILE)
	install -d $(@D)
	$(SUBSTITUTE) $< > $@ && chmod 644 $@

# ---- Debian package ----------------------------------------------------------------------
# build/redilock_VERSION_ARCH.deb: `make install` staged under /usr, with the library in the
# multiarch directory like Debian's own; packaging/deb/build adds the rest.
# Its dates (man page, changelog, file times) are the last commit's unless SOURCE_DATE_EPOCH
# says otherwise, so that building the same sources again gives the same package.
DEB_WORK        = $(OUT)/deb
DEB_MAINTAINER ?= redilock contributors <maintainers@redilock.invalid>
DEB_DATE        = $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null || date +%s))

.PHONY: deb
deb: | $(OUT)
	rm -rf $(DEB_WORK)
	SOURCE_DATE_EPOCH=$(DEB_DATE) $(MAKE) --no-print-directory install DESTDIR=$(DEB_WORK)/debian/redilock \
	  PREFIX=/usr LIBDIR=/usr/lib/$$(dpkg-architecture -qDEB_HOST_MULTIARCH)
	SOURCE_DATE_EPOCH=$(DEB_DATE) packaging/deb/build $(DEB_WORK) $(VERSION) $(SONAME) '$(DEB_MAINTAINER)' $(OUT)

# What an installed tree gives programs outside the repository: make install and uninstall,
# static linking, the Debian package (tests/install/run says what each step checks).
test-install: $(NATIVE_LIBS_FILE)
	MAKE='$(MAKE)' VERSION=$(VERSION) SONAME=$(SONAME) NATIVE_STATIC_LIBS='$(NATIVE_STATIC_LIBS)' \
	  $(WITH_REDIS) -- tests/install/run $(OUT)/install-test
