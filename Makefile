# The two commands of the README:
#   make run   - install what is missing, build, start `edgeplane run`
#   make test  - install build and test dependencies, build normal and
#                ASan/UBSan (+libFuzzer) variants, run every test with ctest
# Other targets: build, asan, check (warnings with clang + cppcheck), bench, clean.

JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
CTEST_ARGS ?= --output-on-failure

.PHONY: all run test build asan deps-run deps-test check bench clean test-normal test-asan

all: build

deps-run:
	@sh tools/install-deps.sh run

deps-test:
	@sh tools/install-deps.sh test

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/Makefile
	@cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/Makefile:
	CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DEP_SANITIZE=ON -DEP_FUZZ=ON

asan: $(ASAN_BUILD)/Makefile
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

run: deps-run build
	@exec ./$(BUILD)/edgeplane run

test-normal: build
	cd $(BUILD) && ctest $(CTEST_ARGS) -j $(JOBS) -LE fuzz

test-asan: asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest $(CTEST_ARGS) -j $(JOBS)

test: deps-test
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory test-normal
	@$(MAKE) --no-print-directory test-asan

check:
	@sh tools/check.sh

bench: build
	@sh bench/broker-vs-mosquitto.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
