# sealgate — plain Makefile, pkg-config for every library.
#   make            build build/sealgate
#   make run        install missing packages, build, serve policies/example.json on loopback
#   make test       unit (cmocka) + end-to-end suites
#   make asan       the same tests on an ASan+UBSan build
#   make fuzz       build libFuzzer harnesses; make fuzz-run FUZZ_SECONDS=60 runs each
#   make lint       cppcheck
#   make bench      benchmark against a local TLS upstream (see bench/);
#                   options: make bench BENCH_ARGS='-W "ka16" -d 5 -p' (bench/run.sh -h)

PREFIX   ?= /usr/local
BUILD    ?= build
CC       ?= cc
PKGS     := libevent libevent_openssl libevent_pthreads openssl libsodium jansson libpcre2-8 \
            zlib libbrotlidec libzstd
# Unit tests only: cmocka, and the brotli encoder that makes test_decode's inputs.
TEST_PKGS := cmocka libbrotlienc
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
CPPFLAGS += -Iinclude -D_GNU_SOURCE -DSEALGATE_VERSION='"$(VERSION)"'
OPT      ?= -O2 -g
SANFLAGS ?=
XCFLAGS  := -std=c11 $(WARN) $(OPT) $(SANFLAGS) -fno-strict-aliasing $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
XLDFLAGS := $(SANFLAGS) $(LDFLAGS)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lpthread

SRCS     := $(wildcard src/*.c)
LIBSRCS  := $(filter-out src/main.c,$(SRCS))
OBJS     := $(LIBSRCS:src/%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libsealgate.a
BIN      := $(BUILD)/sealgate
UTESTS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
FUZZERS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60

.PHONY: all run test unit e2e asan fuzz fuzz-run lint install clean deps bench

all: $(BIN)

deps:
	@scripts/deps.sh

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)/obj
	$(CC) $(CPPFLAGS) $(XCFLAGS) -c -o $@ $<

$(LIB): $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/obj/main.o $(LIB)
	$(CC) $(XCFLAGS) $(XLDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB) $(wildcard tests/unit/*.h) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) -Itests/unit $(XCFLAGS) -Wno-missing-prototypes $(XLDFLAGS) -o $@ $< $(LIB) \
		$(LDLIBS) $(shell pkg-config --libs $(TEST_PKGS))

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

# libFuzzer harnesses: clang, the library rebuilt with fuzzer instrumentation.
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT="-O1 -g" SANFLAGS="$(FUZZ_SAN)" build-fuzz/libsealgate.a
	@mkdir -p build-fuzz/fuzz
	@for f in tests/fuzz/fuzz_*.c; do n=$$(basename $$f .c); \
		echo "  FUZZ $$n"; \
		clang $(CPPFLAGS) -std=c11 -O1 -g -fsanitize=fuzzer,address,undefined \
			$$(pkg-config --cflags $(PKGS)) -o build-fuzz/fuzz/$$n $$f build-fuzz/libsealgate.a $(LDLIBS) || exit 1; \
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
