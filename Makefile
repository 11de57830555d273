# probe — build, test and benchmark.
#
#   make          builds ./probe
#   make test     builds and runs every tests/check_*.c suite; non-zero on any failure
#   make asan     the same suites under AddressSanitizer + UBSan
#   make fuzz     each tests/fuzz harness under libFuzzer (clang) for FUZZ_SECONDS
#   make bench    benchmark against PyTorch and the FLOP ceiling (scripts/bench/bench.sh)
#   make fixtures regenerates every committed test fixture (scripts/fixtures/gen_all_fixtures.sh)
#
# Dependencies come from pkg-config: openblas, libcjson, sqlite3, check.

CC      ?= cc
PKGS    := openblas libcjson sqlite3
CFLAGS  ?= -O3 -g
CFLAGS  += -std=c11 -Wall -Wextra -D_GNU_SOURCE -march=native $(shell pkg-config --cflags $(PKGS))
ifdef CI
CFLAGS  += -Werror
endif
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -lm -lpthread
TEST_CFLAGS := $(shell pkg-config --cflags check)
TEST_LIBS   := $(shell pkg-config --libs check)

# Sources: src/main.c and one folder per layer (README, "Code map"); every
# folder is on the include path, so headers are included by their name.
BUILD   ?= build
BIN     ?= probe
SRCDIRS := $(sort $(dir $(wildcard src/*/*.c)))
SRCS    := $(wildcard src/*.c src/*/*.c)
HDRS    := $(wildcard src/*.h src/*/*.h)
INCS    := -Isrc $(patsubst %/,-I%,$(SRCDIRS))
GEN     := $(BUILD)/gen/schema_sql.c
OBJS    := $(patsubst src/%.c,$(BUILD)/%.o,$(SRCS)) $(BUILD)/gen/schema_sql.o
LIBOBJS := $(filter-out $(BUILD)/main.o,$(OBJS))
TESTS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/check_*.c))
FUZZERS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REGRESS := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZERS))

.PHONY: all test asan fuzz fuzz-run bench fixtures demo clean test-slurm
all: $(BIN)

$(BIN): $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c $(HDRS) | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCS) -c -o $@ $<

# The schema is the one source of truth: every schema/*.sql, in name order,
# is embedded into the binary by a generator (never retyped in C).
$(GEN): $(sort $(wildcard schema/*.sql)) scripts/build/embed_sql.sh | $(BUILD)
	sh scripts/build/embed_sql.sh $(sort $(wildcard schema/*.sql)) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/schema_sql.o: $(GEN)
	$(CC) $(CFLAGS) $(INCS) -c -o $@ $<

$(BUILD)/tests/%: tests/%.c tests/testutil.h $(LIBOBJS) $(BIN) | $(BUILD)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $(INCS) -Itests -o $@ $< $(LIBOBJS) $(LDLIBS) $(TEST_LIBS)

$(BUILD):
	mkdir -p $(BUILD)/gen $(BUILD)/tests

# The fuzz harnesses (tests/fuzz/fuzz_*.c) linked with a plain main()
# (tests/fuzz/driver.c) that runs each over its committed corpus: the
# regression run of `make test`, no clang needed.
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/driver.c tests/fuzz/fuzz_util.h $(LIBOBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCS) -Itests/fuzz -DFUZZ_TOKENIZER_DIR='"$(CURDIR)/models/gpt2-tokenizer"' -o $@ $< tests/fuzz/driver.c $(LIBOBJS) $(LDLIBS)

# Each suite is its own binary; all run, and the target fails if any failed.
test: $(BIN) $(TESTS) $(FUZZ_REGRESS)
	@fail=0; for t in $(TESTS); do echo "== $$t"; PROBE_BIN=$(CURDIR)/$(BIN) $$t || fail=1; done; \
	for f in $(FUZZERS); do echo "== fuzz regression: $$f"; $(BUILD)/fuzz/fuzz_$$f tests/fuzz/corpus/$$f || fail=1; done; \
	if [ $$fail = 0 ]; then echo "all test suites passed"; else echo "some test suites FAILED"; exit 1; fi

asan:
	$(MAKE) BUILD=build-asan BIN=build-asan/probe CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

# libFuzzer: probe's objects and each harness built with clang and
# -fsanitize=fuzzer,address,undefined into build-fuzz, then each harness runs
# FUZZ_SECONDS on tests/fuzz/corpus/NAME; new inputs go to
# build-fuzz/fuzz/new/NAME (the committed corpus is never written), crashes to
# build-fuzz/fuzz/crashes/NAME/. Needs `sh scripts/install_deps.sh --fuzz`.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   ?=
FUZZ_CFLAGS  := -O1 -g -std=c11 -D_GNU_SOURCE -march=native -fno-omit-frame-pointer \
                -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
                $(shell pkg-config --cflags $(PKGS))
fuzz:
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) CFLAGS="$(FUZZ_CFLAGS)" fuzz-run

fuzz-run: $(LIBOBJS)
	@mkdir -p $(BUILD)/fuzz
	@set -e; for f in $(FUZZERS); do \
	  echo "$(CC) ... -fsanitize=fuzzer -o $(BUILD)/fuzz/lf_$$f tests/fuzz/fuzz_$$f.c"; \
	  $(CC) $(CFLAGS) -fsanitize=fuzzer $(INCS) -Itests/fuzz -DFUZZ_TOKENIZER_DIR='"$(CURDIR)/models/gpt2-tokenizer"' \
	    -o $(BUILD)/fuzz/lf_$$f tests/fuzz/fuzz_$$f.c $(LIBOBJS) $(LDLIBS); done
	@fail=0; for f in $(FUZZERS); do \
	  mkdir -p $(BUILD)/fuzz/new/$$f $(BUILD)/fuzz/crashes/$$f; echo "== fuzz $$f ($(FUZZ_SECONDS) s)"; \
	  $(BUILD)/fuzz/lf_$$f -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(BUILD)/fuzz/crashes/$$f/ \
	    $(FUZZ_FLAGS) $(BUILD)/fuzz/new/$$f tests/fuzz/corpus/$$f || fail=1; done; \
	if [ $$fail = 0 ]; then echo "no fuzzer found a crash"; else echo "a fuzzer found a crash: see $(BUILD)/fuzz/crashes/"; exit 1; fi

bench: $(BIN)
	sh scripts/bench/bench.sh

# Every file under tests/fixtures from its generator (NumPy and regex, no
# probe), then `git status --short tests/fixtures`: empty when nothing changed.
fixtures:
	sh scripts/fixtures/gen_all_fixtures.sh

# The bench's bare forward pass, linked against probe's own objects.
$(BUILD)/bench_forward: scripts/bench/bench_forward.c $(LIBOBJS)
	$(CC) $(CFLAGS) $(INCS) -o $@ $< $(LIBOBJS) $(LDLIBS)

# The README's first command: record the bundled corpus with the bundled
# model into a fresh demo.db and show layer 5's top neurons.
# scripts/record_slurm.sh for real on a single-node Slurm (root; Debian's
# slurm-wlm and munge): not part of `make test`.
test-slurm: $(BIN)
	sh scripts/test_slurm.sh

demo: $(BIN)
	rm -f demo.db demo.db-wal demo.db-shm
	./$(BIN) record examples/demo_corpus.txt --db demo.db
	./$(BIN) top-neurons --db demo.db --layer 5

clean:
	rm -rf build build-asan build-fuzz probe
