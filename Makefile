# snisplice build. Out-of-tree objects under build/<variant>/:
#   release  -O2, the binary users run (build/snisplice)
#   asan     -O1 + AddressSanitizer + UndefinedBehaviorSanitizer, what `make test` runs
#   tsan     ThreadSanitizer, for the snapshot publish/reclaim tests
CC      ?= cc
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CPPFLAGS = -D_GNU_SOURCE -MMD -MP
CFLAGS_BASE = -std=gnu11 -g -pthread $(WARN)
LDLIBS   = -luring -linih -pthread

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.1.0)
CPPFLAGS += -DSNISPLICE_VERSION='"$(VERSION)"'

FLAGS_release = -O2
FLAGS_asan    = -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FLAGS_tsan    = -O1 -fsanitize=thread

CORE_SRC   = $(wildcard core/*.c)
CONFIG_SRC = $(wildcard config/*.c)
IO_SRC     = $(filter-out io/main.c,$(wildcard io/*.c))
LIB_SRC    = $(CORE_SRC) $(CONFIG_SRC) $(IO_SRC)
UNIT_SRC   = $(wildcard tests/unit/*.c)
INTEG_SRC  = $(wildcard tests/integration/*.c) $(wildcard tests/support/*.c)
TSAN_SRC   = tests/tsan/test_publisher.c

objs = $(patsubst %.c,build/$(1)/%.o,$(2))

.DELETE_ON_ERROR:
.PHONY: all run test test-unit test-integration test-tsan deps clean bench bench-route fuzz soak install
all: build/snisplice

define variant_rules
build/$(1)/%.o: %.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) $$(CFLAGS_BASE) $$(FLAGS_$(1)) $$(CFLAGS) -c $$< -o $$@
build/$(1)/snisplice: $$(call objs,$(1),$$(LIB_SRC) io/main.c)
	$$(CC) $$(CFLAGS_BASE) $$(FLAGS_$(1)) $$(LDFLAGS) $$^ $$(LDLIBS) -o $$@
endef
$(foreach v,release asan tsan,$(eval $(call variant_rules,$(v))))

# Replace by rename: a running benchmark may be executing the old binary.
build/snisplice: build/release/snisplice
	cp $< $@.new && mv -f $@.new $@

build/asan/unit_tests: $(call objs,asan,$(LIB_SRC) $(UNIT_SRC))
	$(CC) $(CFLAGS_BASE) $(FLAGS_asan) $^ $(LDLIBS) -lcriterion -o $@

build/asan/integration_tests: $(call objs,asan,$(INTEG_SRC) $(CORE_SRC))
	$(CC) $(CFLAGS_BASE) $(FLAGS_asan) $^ $(LDLIBS) -lcriterion -o $@

build/tsan/test_publisher: $(call objs,tsan,$(CORE_SRC) $(TSAN_SRC))
	$(CC) $(CFLAGS_BASE) $(FLAGS_tsan) $^ $(LDLIBS) -o $@

# signals/signals_during_start_up_wait_for_the_main_loop preloads it into
# the proxy (tests/shim/signal_at_open.c says why); no sanitizer in it.
build/signal_at_open.so: tests/shim/signal_at_open.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS_BASE) -O1 -shared -fPIC $< -ldl -o $@

# failover/server_of_a_family_the_kernel_lacks_is_skipped preloads it
# (tests/shim/no_ipv6.c): a kernel without IPv6.
build/no_ipv6.so: tests/shim/no_ipv6.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS_BASE) -O1 -shared -fPIC $< -ldl -o $@

# The faults/* tests preload it (tests/shim/fail_call.c): the Nth call of
# malloc, socket, pthread_create... fails, as on a machine out of memory.
# It needs liburing's header only: it stands in front of one of its calls.
build/fail_call.so: tests/shim/fail_call.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS_BASE) -O1 -shared -fPIC $< -ldl -o $@

# The kernel_features/* tests preload it (tests/shim/old_kernel.c): io_uring
# as an older kernel's, to reach snisplice's fallbacks and start-up error.
build/old_kernel.so: tests/shim/old_kernel.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS_BASE) -O1 -shared -fPIC $< -ldl -o $@

# wakeups/linked_chains_are_never_cut_at_a_full_submission_queue preloads
# it (tests/shim/small_ring.c): rings with a submission queue of a few entries.
build/small_ring.so: tests/shim/small_ring.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS_BASE) -O1 -shared -fPIC $< -ldl -o $@

# The per-address connection counts the workers share, under TSan and ASan.
build/tsan/test_client_counts: $(call objs,tsan,$(CORE_SRC) tests/tsan/test_client_counts.c)
	$(CC) $(CFLAGS_BASE) $(FLAGS_tsan) $^ $(LDLIBS) -o $@
build/asan/test_client_counts: $(call objs,asan,$(CORE_SRC) tests/tsan/test_client_counts.c)
	$(CC) $(CFLAGS_BASE) $(FLAGS_asan) $^ $(LDLIBS) -o $@

# The same test under ASan/LSan: 1000 publishes must leak nothing.
build/asan/test_publisher: $(call objs,asan,$(CORE_SRC) $(TSAN_SRC))
	$(CC) $(CFLAGS_BASE) $(FLAGS_asan) $^ $(LDLIBS) -o $@

deps:
	@scripts/install-deps.sh

run: deps build/snisplice
	./build/snisplice -c config/snisplice.ini

# Unit tests and integration tests both run against the ASan+UBSan build;
# the publisher's reclamation runs under TSan. Any sanitizer report fails.
export ASAN_OPTIONS  = detect_leaks=1:abort_on_error=1:halt_on_error=1
export LSAN_OPTIONS  = suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS  = halt_on_error=1:second_deadlock_stack=1

test: deps
	$(MAKE) build/snisplice build/asan/snisplice build/asan/unit_tests build/asan/integration_tests build/tsan/test_publisher build/asan/test_publisher build/tsan/test_client_counts build/asan/test_client_counts build/tsan/snisplice build/signal_at_open.so build/no_ipv6.so build/fail_call.so build/old_kernel.so build/small_ring.so
	$(MAKE) test-unit test-tsan test-integration

# Real ClientHello captures (copied from shared/clienthello) used as test vectors.
export SNISPLICE_SHARED ?= $(CURDIR)/tests/vectors

test-unit:
	./build/asan/unit_tests --jobs 2

# The publisher under TSan, then the proxy built with TSan through every
# suite that reloads, scrapes metrics or hands sockets between threads.
TSAN_SUITES = @(signals|reload_listen|reload_scale|metrics|no_data_loss|access_log|service|client_limit)/*
test-tsan:
	./build/tsan/test_publisher
	./build/asan/test_publisher
	./build/tsan/test_client_counts
	./build/asan/test_client_counts
	SNISPLICE_BIN=$(CURDIR)/build/tsan/snisplice ./build/asan/integration_tests --jobs 2 --filter '$(TSAN_SUITES)'

# The soak once more against the release binary: only there does RSS say
# anything (ASan holds freed memory in its quarantine).
test-integration:
	SNISPLICE_BIN=$(CURDIR)/build/asan/snisplice ./build/asan/integration_tests --jobs 2
	SNISPLICE_BIN=$(CURDIR)/build/snisplice ./build/asan/integration_tests --filter '@(soak|memory)/*'

# libFuzzer harnesses (clang, libclang-rt-14-dev). FUZZ_SECONDS per harness.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
build/fuzz/fuzz_clienthello: tests/fuzz/fuzz_clienthello.c $(CORE_SRC)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=gnu11 $(FUZZ_FLAGS) $(filter %.c,$^) -o $@
# The config fuzzers link a fake host_resolve(): no name server per input.
FUZZ_CONFIG_SRC = $(CORE_SRC) $(filter-out config/host_resolve.c,$(CONFIG_SRC)) tests/fuzz/fake_host_resolve.c
build/fuzz/fuzz_config: tests/fuzz/fuzz_config.c $(FUZZ_CONFIG_SRC)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=gnu11 $(FUZZ_FLAGS) $(filter %.c,$^) -linih -o $@

build/fuzz/fuzz_nginx_import: tests/fuzz/fuzz_nginx_import.c $(FUZZ_CONFIG_SRC)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=gnu11 $(FUZZ_FLAGS) $(filter %.c,$^) -linih -o $@

build/fuzz/fuzz_route_table: tests/fuzz/fuzz_route_table.c core/route_table.c core/route_regex.c core/hostname.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=gnu11 $(FUZZ_FLAGS) $(filter %.c,$^) -o $@

# Differential: every match is checked against PCRE2, nginx's engine.
build/fuzz/fuzz_route_regex: tests/fuzz/fuzz_route_regex.c core/route_regex.c core/hostname.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=gnu11 $(FUZZ_FLAGS) $(filter %.c,$^) -lpcre2-8 -o $@

build/fuzz/fuzz_proxy_protocol: tests/fuzz/fuzz_proxy_protocol.c core/proxy_protocol.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=gnu11 $(FUZZ_FLAGS) $(filter %.c,$^) -o $@

FUZZ_HARNESSES = clienthello config nginx_import proxy_protocol route_table route_regex
# `make -j2 fuzz` runs two harnesses at a time; CI runs every one for FUZZ_SECONDS.
fuzz: $(addprefix fuzz-run-,$(FUZZ_HARNESSES))
fuzz-run-%: deps build/fuzz/fuzz_%
	@mkdir -p build/fuzz/corpus-$*
	@echo "fuzz: $* for $(FUZZ_SECONDS) s"
	@./build/fuzz/fuzz_$* -max_total_time=$(FUZZ_SECONDS) -max_len=20000 -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/crash-$*- build/fuzz/corpus-$* tests/fuzz/corpus/$* \
	    2>&1 | sed -n -E 's/^(stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)/fuzz $*: &/p' || true
	@if ls build/fuzz/crash-$*-* >/dev/null 2>&1; then echo "fuzz: $* found a crash: build/fuzz/crash-$*-*"; exit 1; fi

# A long soak (test_soak.c runs 8 s inside `make test`), SOAK_SECONDS on the
# release binary (RSS judged), then as long on the ASan one (memory errors).
SOAK_SECONDS ?= 300
soak: deps build/snisplice build/asan/snisplice build/asan/integration_tests
	SNISPLICE_SOAK_SECONDS=$(SOAK_SECONDS) SNISPLICE_BIN=$(CURDIR)/build/snisplice \
	  ./build/asan/integration_tests --filter 'soak/*' --verbose
	SNISPLICE_SOAK_SECONDS=$(SOAK_SECONDS) SNISPLICE_BIN=$(CURDIR)/build/asan/snisplice \
	  ./build/asan/integration_tests --filter 'soak/*' --verbose

build/bench/route_lookup_bench: bench/route_lookup_bench.c core/hostname.c core/route_table.c core/route_regex.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra $(filter %.c,$^) -o $@

bench-route: build/bench/route_lookup_bench
	taskset -c 1 ./build/bench/route_lookup_bench

bench: deps build/snisplice
	bench/run.sh

PREFIX  ?= /usr/local
DESTDIR ?=
install: build/snisplice
	install -D -m 0755 build/snisplice $(DESTDIR)$(PREFIX)/bin/snisplice
	install -D -m 0644 scripts/snisplice.service $(DESTDIR)$(PREFIX)/lib/systemd/system/snisplice.service
	sed -i 's|/usr/local|$(PREFIX)|g' $(DESTDIR)$(PREFIX)/lib/systemd/system/snisplice.service
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/snisplice/README.md
	@if [ ! -e $(DESTDIR)/etc/snisplice/snisplice.ini ]; then \
	  install -D -m 0644 config/snisplice.ini $(DESTDIR)/etc/snisplice/snisplice.ini; fi

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
