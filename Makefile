# sealgate — plain Makefile, pkg-config for every library.
#   make            build build/sealgate
#   make core       build build/libsealgate-core.a, the pure core alone (checked, below)
#   make run        install missing packages, build, serve policies/example.json on loopback
#   make test       unit (cmocka) + end-to-end suites
#   make asan       the same tests on an ASan+UBSan build
#   make fuzz       build libFuzzer harnesses; make fuzz-run FUZZ_SECONDS=60 runs each
#   make lint       cppcheck
#   make bench      benchmark against a local TLS upstream (see bench/);
#                   options: make bench BENCH_ARGS='-W "ka16" -d 5 -p' (bench/run.sh -h)
#
# The pure core and the network shell. The core is every module that needs neither
# libevent nor OpenSSL (CORE_MODS): the decisions and codecs (policy, seal, handle,
# handlecache, inject, scope, ratelimit, scrub, needles, unescape, decode, wsframe,
# wsrelay, http, leak, netaddr, egress, authz, swap, tokenizer, revoke, registry, awscred,
# awssign, awsrole, fetchcache, stscache, stsxml, mintcache, minttok, mintreq, jwt, digest,
# lineage, sigv4, awschunk, pktline, gitpush, gitpack, clustermsg, secval) and the plain-C
# support they use (util, log, stats, audit). It may use libsodium, jansson, pcre2, zlib,
# brotli, zstd and libhttp-parser (CORE_PKGS, -lhttp_parser). Everything else is the shell:
# listeners, workers, connections, TLS, DNS (resolve), the certificate forge and cache,
# metrics (it reads the certificate cache), the metadata responder, the STS client, the
# fleet-mode Redis client (cluster), the admin API and the CLI commands.
#   - build/libsealgate-core.a holds the core, compiled with the include paths of
#     CORE_PKGS only; build/libsealgate.a holds the shell and is always linked with it.
#   - Before the core is compiled, scripts/check-core.sh preprocesses every core source,
#     core unit test and fuzz harness and fails if any reaches <event2/...> or
#     <openssl/...>, directly or through a header in include/. Once it is archived, the
#     whole core must link into an empty program with CORE_PKGS alone: the core never
#     calls into the shell. `make core`, `make`, `make test`, `make asan` and `make fuzz`
#     all build the core, so all of them (and CI) enforce both.
#   - Unit tests of core modules link only the core library and CORE_PKGS; SHELL_UTESTS
#     link both libraries and every package. Fuzz harnesses link only the core.
# A new module is shell unless added to CORE_MODS; a new pkg-config library goes into
# CORE_PKGS if the core may use it, else SHELL_PKGS.

PREFIX   ?= /usr/local
BUILD    ?= build
CC       ?= cc
CORE_PKGS  := libsodium jansson libpcre2-8 zlib libbrotlidec libzstd
SHELL_PKGS := libevent libevent_openssl libevent_pthreads openssl hiredis
PKGS       := $(SHELL_PKGS) $(CORE_PKGS)
CORE_MODS  := audit authz awschunk awscred awsrole awssign clienthello clustermsg decode digest \
              egress fetchcache fleetrate fleettab gitpack gitpush handle handlecache hash http \
              inject jwt leak lineage log mintcache mintreq minttok needles netaddr nftrules \
              pktline plan policy ratelimit \
              registry revoke scope scrub seal secmem secval sigv4 snapshot stats stscache \
              stsxml swap tokenizer unescape util view wsframe wsrelay
# Unit tests of shell modules (or that use one): linked with the shell library.
SHELL_UTESTS := ca certcache certforge cluster httpsreq mainq metadata metrics mintclient \
                resolve secexec secwatch stsclient tls
# Unit tests only: cmocka, and the brotli encoder that makes test_decode's inputs.
TEST_PKGS := cmocka libbrotlienc
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
CPPFLAGS += -Iinclude -D_GNU_SOURCE -DSEALGATE_VERSION='"$(VERSION)"'
OPT      ?= -O2 -g
SANFLAGS ?=
BASEFLAGS := -std=c11 $(WARN) $(OPT) $(SANFLAGS) -fno-strict-aliasing
CORE_CFLAGS := $(BASEFLAGS) $(shell pkg-config --cflags $(CORE_PKGS) 2>/dev/null) $(CFLAGS)
XCFLAGS  := $(BASEFLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
XLDFLAGS := $(SANFLAGS) $(LDFLAGS)
CORE_LDLIBS := $(shell pkg-config --libs $(CORE_PKGS) 2>/dev/null) -lhttp_parser -lpthread
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lpthread
TEST_LIBS := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

SRCS     := $(wildcard src/*.c)
HDRS     := $(wildcard include/*.h)
CORE_SRCS := $(CORE_MODS:%=src/%.c)
SHELL_SRCS := $(filter-out src/main.c $(CORE_SRCS),$(SRCS))
CORE_OBJS := $(CORE_SRCS:src/%.c=$(BUILD)/obj/%.o)
SHELL_OBJS := $(SHELL_SRCS:src/%.c=$(BUILD)/obj/%.o)
CORE_LIB := $(BUILD)/libsealgate-core.a
LIB      := $(BUILD)/libsealgate.a
BIN      := $(BUILD)/sealgate
UTESTS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
SHELL_UTEST_BINS := $(SHELL_UTESTS:%=$(BUILD)/tests/test_%)
CORE_UTEST_BINS := $(filter-out $(SHELL_UTEST_BINS),$(UTESTS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_SECONDS ?= 60
CORE_CHECKED := $(BUILD)/core-includes.ok

ifneq ($(filter-out $(SRCS),$(CORE_SRCS)),)
$(error CORE_MODS names a module with no source: $(filter-out $(SRCS),$(CORE_SRCS)))
endif

.PHONY: all core run test unit e2e asan fuzz fuzz-run lint install clean deps bench

all: $(BIN)

core: $(CORE_LIB)

deps:
	@scripts/deps.sh

# The boundary, part 1: no core file reaches a libevent or OpenSSL header.
$(CORE_CHECKED): $(CORE_SRCS) $(CORE_UTEST_BINS:$(BUILD)/tests/%=tests/unit/%.c) $(FUZZ_SRCS) \
		$(HDRS) $(wildcard tests/unit/*.h) scripts/check-core.sh | $(BUILD)/obj
	@echo "  CHECK core includes"
	@scripts/check-core.sh includes $(CC) $(CPPFLAGS) -Itests/unit $(CORE_CFLAGS) -- \
		$(filter %.c,$^)
	@touch $@

$(CORE_OBJS): $(BUILD)/obj/%.o: src/%.c $(HDRS) | $(BUILD)/obj $(CORE_CHECKED)
	$(CC) $(CPPFLAGS) $(CORE_CFLAGS) -c -o $@ $<

$(SHELL_OBJS) $(BUILD)/obj/main.o: $(BUILD)/obj/%.o: src/%.c $(HDRS) | $(BUILD)/obj
	$(CC) $(CPPFLAGS) $(XCFLAGS) -c -o $@ $<

# The boundary, part 2: the whole core links with the core packages alone.
$(CORE_LIB): $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^
	@scripts/check-core.sh links $(CC) $(BASEFLAGS) $(XLDFLAGS) -- $@ $(CORE_LDLIBS) \
		|| { rm -f $@; exit 1; }

$(LIB): $(SHELL_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/obj/main.o $(LIB) $(CORE_LIB)
	$(CC) $(XCFLAGS) $(XLDFLAGS) -o $@ $^ $(LDLIBS)

$(CORE_UTEST_BINS): $(BUILD)/tests/%: tests/unit/%.c $(CORE_LIB) $(wildcard tests/unit/*.h) \
		| $(BUILD)/tests
	$(CC) $(CPPFLAGS) -Itests/unit $(CORE_CFLAGS) -Wno-missing-prototypes $(XLDFLAGS) -o $@ $< \
		$(CORE_LIB) $(CORE_LDLIBS) $(TEST_LIBS)

$(SHELL_UTEST_BINS): $(BUILD)/tests/%: tests/unit/%.c $(LIB) $(CORE_LIB) \
		$(wildcard tests/unit/*.h) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) -Itests/unit $(XCFLAGS) -Wno-missing-prototypes $(XLDFLAGS) -o $@ $< \
		$(LIB) $(CORE_LIB) $(LDLIBS) $(TEST_LIBS)

$(BUILD)/obj $(BUILD)/tests $(BUILD)/fuzz:
	@mkdir -p $@

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/dev-upstream-certs.sh certs/demo
	$(BIN) serve --policy policies/example.json

test: deps
	@$(MAKE) --no-print-directory all $(UTESTS)
	@scripts/run-tests.sh $(BUILD)

unit: $(UTESTS)
	@scripts/run-tests.sh $(BUILD) unit

e2e: all
	@scripts/run-tests.sh $(BUILD) e2e

SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g" SANFLAGS="$(SAN)" \
		build-asan/sealgate $(UTESTS:$(BUILD)/%=build-asan/%)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		scripts/run-tests.sh build-asan

# libFuzzer harnesses: clang, the core rebuilt with fuzzer instrumentation. Every harness
# calls the pure core, so each links the core library and the core packages only.
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT="-O1 -g" SANFLAGS="$(FUZZ_SAN)" build-fuzz/libsealgate-core.a
	@mkdir -p build-fuzz/fuzz
	@for f in tests/fuzz/fuzz_*.c; do n=$$(basename $$f .c); \
		echo "  FUZZ $$n"; \
		clang $(CPPFLAGS) -std=c11 -O1 -g -fsanitize=fuzzer,address,undefined \
			$$(pkg-config --cflags $(CORE_PKGS)) -o build-fuzz/fuzz/$$n $$f \
			build-fuzz/libsealgate-core.a $(CORE_LDLIBS) || exit 1; \
	done

fuzz-run: fuzz
	@scripts/run-fuzz.sh build-fuzz/fuzz $(FUZZ_SECONDS)

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--std=c11 --inline-suppr --library=scripts/cppcheck-sealgate.cfg -Iinclude \
		--suppress=missingIncludeSystem src

BENCH_ARGS ?=
bench: deps
	@bench/run.sh $(BENCH_ARGS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/sealgate/policies
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/sealgate
	install -m 0644 policies/*.json $(DESTDIR)$(PREFIX)/share/sealgate/policies/

clean:
	rm -rf build build-asan build-fuzz
