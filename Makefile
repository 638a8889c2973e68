# ctorch — front door over CMake.
#
#   make                 configure and build (Release) in build/
#   make test            build, run the C tests (ctest), the Python conformance suite
#                        and the install test
#   make test-asan       build with AddressSanitizer + UBSan in build-asan/ and run ctest
#                        and the conformance suite against that library, then make
#                        fuzz-smoke
#   make fuzz-smoke      build the libFuzzer targets (clang) in build-fuzz/ and run each for
#                        FUZZ_SECONDS (5) over its seed corpus and saved regressions
#   make demo            install missing dependencies, build, run the demo
#   make bench           run the benchmark suite against PyTorch (bench/run.py)
#   make bench-quick     a smaller, quicker run (about 17 s; CI runs it to keep the suite working)
#   make install         install into PREFIX (default /usr/local)
#   make test-install    install into a scratch prefix under build/ and build a small
#                        consumer against it with CMake and with pkg-config
#   make clean           remove the build directories
#
# Variables: PREFIX, JOBS (parallel build jobs, default 2), PYTHON, CC.

SHELL      := /bin/bash
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 5
JOBS       ?= 2
PREFIX     ?= /usr/local
PYTHON     ?= python3
CMAKE      ?= cmake
CTEST      ?= ctest
PKG_CONFIG ?= pkg-config

BUILD_ABS       = $(abspath $(BUILD))
LIB             = $(BUILD_ABS)/libctorch.so
INSTALL_TEST    = $(BUILD_ABS)/install-test
INSTALL_PREFIX  = $(INSTALL_TEST)/prefix

.PHONY: all test conformance test-asan conformance-asan fuzz-smoke demo bench bench-quick install test-install clean

all:
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	$(CMAKE) --build $(BUILD) -j$(JOBS)

test: all
	cd $(BUILD) && $(CTEST) --output-on-failure
	@$(MAKE) --no-print-directory -o all conformance
	@$(MAKE) --no-print-directory -o all test-install

# The Python conformance suite compares ctorch with PyTorch through the shared
# library named by CTORCH_LIB. pytest's exit code 5 (no tests collected) is not a
# failure while the suite is still empty.
conformance: all
	@if [ ! -d tests/conformance ]; then echo "conformance: tests/conformance does not exist yet"; exit 0; fi; \
	$(PYTHON) -c 'import pytest' 2>/dev/null || { echo "conformance: pytest is missing (run scripts/install-deps.sh)"; exit 1; }; \
	echo "CTORCH_LIB=$(LIB) $(PYTHON) -m pytest -q tests/conformance"; \
	rc=0; CTORCH_LIB="$(LIB)" $(PYTHON) -m pytest -q tests/conformance || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "conformance: no tests collected yet"; exit 0; fi; \
	exit $$rc

test-asan:
	$(CMAKE) -S . -B $(ASAN_BUILD) -DCT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	$(CMAKE) --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(CTEST) --output-on-failure
	@$(MAKE) --no-print-directory conformance-asan
	@$(MAKE) --no-print-directory fuzz-smoke

# The conformance suite against the sanitized library (built by test-asan with gcc):
# Python is not built with ASan, so the runtimes are preloaded; leak detection is off
# (the interpreter keeps objects alive at exit), and --capture=sys leaves the C side's
# stderr alone, so a sanitizer report reaches the log even when it stops the process.
ASAN_RT = $(shell gcc -print-file-name=libasan.so):$(shell gcc -print-file-name=libubsan.so)
conformance-asan:
	@test -f $(ASAN_BUILD)/libctorch.so || { echo "conformance-asan: run make test-asan first"; exit 1; }
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LD_PRELOAD="$(ASAN_RT)" \
		CTORCH_LIB="$(abspath $(ASAN_BUILD))/libctorch.so" $(PYTHON) -m pytest -q -p no:cacheprovider \
		--capture=sys tests/conformance

# Each fuzz/fuzz_<name>.c runs over fuzz/corpus/<name> (new inputs go to a scratch
# corpus in the build dir) and replays fuzz/regressions/<name>-*.
fuzz-smoke:
	$(CMAKE) -S . -B $(FUZZ_BUILD) -DCT_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug
	$(CMAKE) --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz-all
	@set -e -o pipefail; for src in fuzz/fuzz_*.c; do \
		t=$$(basename $$src .c); n=$${t#fuzz_}; \
		mkdir -p $(FUZZ_BUILD)/corpus-$$n; \
		regs=$$(ls fuzz/regressions/$$n-* 2>/dev/null || true); \
		if [ -n "$$regs" ]; then echo "fuzz-smoke: $$t replays $$(echo $$regs | wc -w) regression input(s)"; \
			ASAN_OPTIONS=detect_leaks=1 ./$(FUZZ_BUILD)/$$t $$regs >/dev/null 2>&1 || { ./$(FUZZ_BUILD)/$$t $$regs; exit 1; }; fi; \
		echo "fuzz-smoke: $$t for $(FUZZ_SECONDS) s"; \
		ASAN_OPTIONS=detect_leaks=1 ./$(FUZZ_BUILD)/$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
			-print_final_stats=1 $(FUZZ_BUILD)/corpus-$$n fuzz/corpus/$$n 2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY"; \
	done

demo:
	bash scripts/install-deps.sh
	@$(MAKE) --no-print-directory all
	@test -x $(BUILD)/example_demo || { echo "demo: $(BUILD)/example_demo was not built (examples/demo.c is missing)"; exit 1; }
	./$(BUILD)/example_demo --out $(BUILD)

bench:
	@$(MAKE) --no-print-directory all
	CTORCH_LIB="$(LIB)" $(PYTHON) bench/run.py

bench-quick:
	@$(MAKE) --no-print-directory all
	CTORCH_LIB="$(LIB)" $(PYTHON) bench/run.py --quick

# The install prefix is also written into ctorch.pc at configure time, so the build
# is configured with PREFIX before installing.
install:
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$(PREFIX)"
	$(CMAKE) --build $(BUILD) -j$(JOBS)
	$(CMAKE) --install $(BUILD)

# Installs into a scratch prefix and builds tests/install against it: with CMake
# (find_package(ctorch), shared and static targets) and with pkg-config. pkg-config is
# told the scratch prefix (--define-variable), since ctorch.pc names the prefix the
# build was configured with.
test-install: all
	rm -rf "$(INSTALL_TEST)"
	$(CMAKE) --install $(BUILD) --prefix "$(INSTALL_PREFIX)"
	@cfg=$$(find "$(INSTALL_PREFIX)" -name ctorchConfig.cmake | head -n 1); \
	test -n "$$cfg" || { echo "test-install: ctorchConfig.cmake was not installed"; exit 1; }; \
	set -x; \
	$(CMAKE) -S tests/install -B "$(INSTALL_TEST)/cmake" -DCMAKE_BUILD_TYPE=Release \
		-Dctorch_DIR="$$(dirname "$$cfg")" && \
	$(CMAKE) --build "$(INSTALL_TEST)/cmake" -j$(JOBS) && \
	"$(INSTALL_TEST)/cmake/consumer_cmake" && \
	"$(INSTALL_TEST)/cmake/consumer_cmake_static"
	@pc=$$(find "$(INSTALL_PREFIX)" -name ctorch.pc | head -n 1); \
	test -n "$$pc" || { echo "test-install: ctorch.pc was not installed"; exit 1; }; \
	export PKG_CONFIG_PATH="$$(dirname "$$pc")"; \
	pcflags="--define-variable=prefix=$(INSTALL_PREFIX)"; \
	libdir=$$($(PKG_CONFIG) $$pcflags --variable=libdir ctorch); \
	set -x; \
	$(CC) -o "$(INSTALL_TEST)/consumer_pkgconfig" tests/install/main.c \
		$$($(PKG_CONFIG) $$pcflags --cflags ctorch) $$($(PKG_CONFIG) $$pcflags --libs ctorch) -lm \
		-Wl,-rpath,"$$libdir" && \
	"$(INSTALL_TEST)/consumer_pkgconfig"
	@echo "test-install: ok"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
