# llm-route - Unix filters in front of local LLM servers.
# GNU make.  See README.md.

VERSION   = 0.1.0
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
# Completions go where the shells look: with PREFIX=/usr, in the
# directories the pkg-config files of bash-completion and fish name (and
# Debian's zsh vendor directory); under $(PREFIX)/share otherwise, or
# when pkg-config does not know.  bash-completion searches
# /usr/local/share too; fish does not when XDG_DATA_DIRS is unset.
ifeq ($(PREFIX),/usr)
BASHCOMPDIR ?= $(or $(shell $(PKG_CONFIG) --variable=completionsdir \
    bash-completion 2>/dev/null),$(PREFIX)/share/bash-completion/completions)
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR ?= $(or $(shell $(PKG_CONFIG) --variable=completionsdir \
    fish 2>/dev/null),$(PREFIX)/share/fish/vendor_completions.d)
else
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
endif
SYSTEMDUSERDIR ?= $(PREFIX)/lib/systemd/user

CC       ?= cc
PKG_CONFIG ?= pkg-config
WARN     = -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wwrite-strings -Wformat=2 -Wvla \
           -Wpointer-arith -Wcast-qual -Wundef
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -DLR_VERSION='"$(VERSION)"' \
           $(WARN) $(WERROR) $(CFLAGS) $(SAN) \
           $(shell $(PKG_CONFIG) --cflags libcurl libmd libmicrohttpd) -Isrc
LDLIBS   = $(shell $(PKG_CONFIG) --libs libcurl libmd libmicrohttpd) -ljq -lm
ALL_LDFLAGS = $(LDFLAGS) $(SAN) $(TORTURE_LDFLAGS)
# Set by `make torture` only: the allocation counter linked in, and the
# allocators wrapped (see tests/torture/alloc.c).
TORTURE_OBJ =
TORTURE_LDFLAGS =

# Builds go to build/ (objects) and bin/ (programs); the sanitizer
# build to build-san/ and bin-san/.
O ?= build
B ?= bin

PROGS = llm-estimate llm-generate llm-summarize llm-mapreduce llm-route \
        llm-serve
LIB_SRCS = $(wildcard src/*.c)
LIB_OBJS = $(LIB_SRCS:src/%.c=$(O)/src/%.o)
BINS = $(PROGS:%=$(B)/%)

all: $(BINS) $(O)/unit-tests

$(O)/src/%.o $(O)/cmd/%.o: | $(O)/src $(O)/cmd
$(O)/src $(O)/cmd $(B):
	mkdir -p $@

$(O)/src/%.o: src/%.c src/*.h Makefile | $(O)/src
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(O)/cmd/%.o: cmd/%.c src/*.h Makefile | $(O)/cmd
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(O)/libllmroute.a: $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJS)

$(B)/%: $(O)/cmd/%.o $(O)/libllmroute.a $(TORTURE_OBJ) | $(B)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(O)/libllmroute.a $(TORTURE_OBJ) \
	    $(LDLIBS)

$(O)/unit-tests: $(O)/tests/unit.o $(O)/libllmroute.a $(TORTURE_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(O)/libllmroute.a $(TORTURE_OBJ) \
	    $(LDLIBS)

$(O)/tests/torture-alloc.o: tests/torture/alloc.c Makefile
	mkdir -p $(O)/tests
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(O)/tests/unit.o: tests/unit/unit.c src/*.h Makefile
	mkdir -p $(O)/tests
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Tests: C unit tests and the bats suites, ending with "N passed, N failed".
check: all
	@LLM_ROUTE_UNIT=$(O)/unit-tests tests/run $(B)

SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=all
sanitize:
	$(MAKE) O=build-san B=bin-san SAN='$(SANFLAGS)' CFLAGS='-O1 -g' all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    LLM_ROUTE_UNIT=build-san/unit-tests tests/run bin-san

# Allocation-failure torture (curl's memdebug way): an ASan+UBSan build
# in build-torture/ and bin-torture/ whose Nth allocation fails when
# LLM_ROUTE_FAIL_ALLOC=N (tests/torture/alloc.c); tests/torture.sh runs
# each program on small inputs, counting the allocations, then failing
# each in turn (TORTURE_MAX runs per input at most: a stride beyond).
TORTURE_WRAP = -rdynamic -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc \
               -Wl,--wrap=strdup,--wrap=strndup,--wrap=getline,--wrap=_exit
TORTURE_MAX ?= 400
torture:
	$(MAKE) O=build-torture B=bin-torture SAN='$(SANFLAGS)' \
	    CFLAGS='-O1 -g' TORTURE_OBJ=build-torture/tests/torture-alloc.o \
	    TORTURE_LDFLAGS='$(TORTURE_WRAP)' all
	TORTURE_MAX=$(TORTURE_MAX) tests/torture.sh bin-torture

VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full \
           --errors-for-leak-kinds=definite --track-fds=no
valgrind: all
	LLM_ROUTE_WRAP='$(VALGRIND)' LLM_ROUTE_UNIT=$(O)/unit-tests tests/run $(B)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
	    $(DESTDIR)$(FISHCOMPDIR)
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)
	for p in $(PROGS); do \
	    install -m 644 man/$$p.1 $(DESTDIR)$(MANDIR)/man1/ && \
	    install -m 644 completions/$$p.bash $(DESTDIR)$(BASHCOMPDIR)/$$p && \
	    install -m 644 completions/_$$p $(DESTDIR)$(ZSHCOMPDIR)/_$$p && \
	    install -m 644 completions/$$p.fish $(DESTDIR)$(FISHCOMPDIR)/$$p.fish \
	    || exit 1; done
	install -d $(DESTDIR)$(SYSTEMDUSERDIR)
	sed 's|@BINDIR@|$(BINDIR)|g' contrib/llm-serve.service.in \
	    >$(DESTDIR)$(SYSTEMDUSERDIR)/llm-serve.service
	chmod 644 $(DESTDIR)$(SYSTEMDUSERDIR)/llm-serve.service

uninstall:
	for p in $(PROGS); do rm -f $(DESTDIR)$(BINDIR)/$$p \
	    $(DESTDIR)$(MANDIR)/man1/$$p.1 $(DESTDIR)$(BASHCOMPDIR)/$$p \
	    $(DESTDIR)$(ZSHCOMPDIR)/_$$p \
	    $(DESTDIR)$(FISHCOMPDIR)/$$p.fish; done
	rm -f $(DESTDIR)$(SYSTEMDUSERDIR)/llm-serve.service

# The Debian 12 packages the build and the tests need.
DEPS = build-essential pkg-config libcurl4-openssl-dev libjq-dev jq curl \
       python3 bats bats-support bats-assert mandoc valgrind hyperfine \
       clang libclang-rt-dev bc libmd-dev zsh fish \
       libmicrohttpd-dev python3-jinja2 procps bash-completion
deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEPS)
	$(MAKE) npm-deps

# The real clients of llm-serve's tests (tests/npm/package.json, pinned):
# Node.js and npm from Debian when the machine has none.
npm-deps:
	command -v npm >/dev/null || \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
	cd tests/npm && npm ci --no-audit --no-fund --loglevel=error

# What the benchmarks need besides DEPS: /usr/bin/time (hyperfine is in
# DEPS).
BENCH_DEPS = time
bench-deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_DEPS)

# A Debian package of the working tree's files (tracked and new, not
# ignored), built in a copy under build-deb/ so that the tree's own build
# is left alone; the .deb, .changes and .buildinfo land in build-deb/.
# Then lintian on the result: an error fails the target.
DEB_DIR = build-deb
DEB_DEPS = dpkg-dev debhelper lintian debootstrap
deb-deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_DEPS)

deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/llm-route-$(VERSION)
	git ls-files -z --cached --others --exclude-standard | \
	    tar -cf - --null --ignore-failed-read -T - | tar -xf - -C $(DEB_DIR)/llm-route-$(VERSION)
	cd $(DEB_DIR)/llm-route-$(VERSION) && dpkg-buildpackage -us -uc -b
	lintian $(DEB_DIR)/llm-route_*.changes

# Install the package in a fresh minimal Debian 12 chroot, use it, purge
# it and check that nothing of it is left (tests/chroot.sh, as root).
deb-check:
	tests/chroot.sh deb $(DEB_DIR)/llm-route_$(VERSION)-*_*.deb

# The README's first two commands in a fresh debootstrap of Debian 12
# (minbase), from a clone of HEAD (tests/chroot.sh, as root; about
# 210 MB in build-fresh/ and downloads from deb.debian.org).  Not in
# .ci/run: on demand.
fresh-check:
	tests/chroot.sh fresh

# Route the example conversations through canned demo backends.
demo: all
	@examples/demo.sh

# Coverage-guided fuzzing (clang's libFuzzer) of every parser of outside
# input, FUZZ_SECONDS per target; `make check` replays the seeds.
FUZZ_SECONDS ?= 60
fuzz:
	tests/fuzz/run.sh fuzz $(FUZZ_SECONDS)

# Fuzzing at depth: each target (or those in FUZZ_TARGETS) for
# FUZZ_LONG_SECONDS, FUZZ_JOBS at once; what adds coverage is merged
# into tests/fuzz/corpus/NAME/ (per target: build-fuzz/long.txt).
FUZZ_LONG_SECONDS ?= 600
FUZZ_JOBS ?= 1
FUZZ_TARGETS ?=
fuzz-long:
	FUZZ_JOBS=$(FUZZ_JOBS) tests/fuzz/run.sh long $(FUZZ_LONG_SECONDS) \
	    $(FUZZ_TARGETS)

lint-man:
	mandoc -Tlint -W warning man/*.1

clean:
	rm -rf build bin build-san bin-san build-fuzz build-torture bin-torture

.PHONY: all check sanitize torture valgrind fuzz fuzz-long demo install uninstall deps npm-deps \
        lint-man clean bench-deps deb-deps deb deb-check \
        fresh-check
.SUFFIXES:
