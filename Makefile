# The two commands of the README:
#   make run   - install what is missing, build, start `edgeplane run`
#   make test  - install build and test dependencies, build normal,
#                ASan/UBSan (+libFuzzer) and TSan variants, run every test
# Other targets: build, asan, check (warnings with clang + cppcheck), bench, clean.

JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
# A test that fails is run once more before the stage fails: the
# integration tests start real processes on a loaded 2-core machine, and a
# second failure is a real one. ctest prints every failed attempt.
CTEST_ARGS ?= --output-on-failure --repeat until-pass:2

.PHONY: all run test build asan tsan deps-run deps-test check bench clean test-normal test-asan test-tsan

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

$(TSAN_BUILD)/Makefile:
	CC=clang cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DEP_TSAN=ON

# ThreadSanitizer covers the threaded code: the loop/mailbox tests, the
# in-process broker test, and the paho interop suite against a TSan broker.
TSAN_TARGETS = edgeplane ep_core_loop_test ep_svc_broker_auth_test ep_svc_auth_callout_test
tsan: $(TSAN_BUILD)/Makefile
	@cmake --build $(TSAN_BUILD) -j $(JOBS) --target $(TSAN_TARGETS)

test-tsan: tsan
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ./$(TSAN_BUILD)/src/core/ep_core_loop_test
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ./$(TSAN_BUILD)/src/svc/broker/ep_svc_broker_auth_test
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ./$(TSAN_BUILD)/src/svc/auth/ep_svc_auth_callout_test
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 EP_BINARY=$(CURDIR)/$(TSAN_BUILD)/edgeplane \
	  /usr/bin/python3 tests/interop/mqtt/test_paho.py

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
	@$(MAKE) --no-print-directory test-tsan

check:
	@sh tools/check.sh

bench: build
	@sh bench/broker-vs-mosquitto.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) build-clang
