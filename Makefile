# kvmini: build, test and demo targets. `make help` lists them.
#
#   make            build build/kvmini
#   make check      every test tier: unit, tiny KVM guests, sanitizer build, fuzzing, Linux tests
#   make fuzz       replay the fuzz corpora, then fuzz each target for FUZZ_SECONDS (60)
#   make fuzz-long  off CI: each fuzz target for FUZZ_LONG_RUNS executions (10^7)
#   make bench      disk (kvmini vs fio), network and boot (kvmini vs QEMU microvm) benchmarks:
#                   tables and build/bench/results.json (bench/run.sh, net.sh, boot.sh)
#   make demo       boot the demo guest (inside the nested machine on hosts without VT-x/AMD-V)
#   make nestedtest the nested machine's stall watchdog, boot retry and keeper (part of make check)
#   make orphantest stop `make linuxtest` and the boot benchmark with SIGTERM after 60 s:
#                   nothing they started may be left 10 s later (part of make check)
#   make scripttest kvmini-nat's checks of its input; kvmini is not dumpable; a hung KVM test
#                   binary is killed (part of make check)
#   make soak       off CI: 100 SIGKILL rounds of the disk crash-consistency test (20 in check)

SHELL    := /bin/bash
CC       ?= cc
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Iinclude \
            -D_GNU_SOURCE -MMD -MP -fno-strict-aliasing
LDLIBS   += -luring -lseccomp -lcap-ng -lpthread
# The frontends (vmm/cli: the command, its API server and client) also use these. The kvmini
# command links them (and liburing) statically: each shared library a process maps costs
# resident pages, which count in every VM's memory overhead (bench/ctl.sh measures it).
FRONT_LIBS := -levent_core -levent_extra -ljansson -larchive -lnettle -ldl
KVMINI_LIBS := -Wl,-Bstatic -levent_extra -levent_core -ljansson -luring -lseccomp -lcap-ng -Wl,-Bdynamic -larchive -lnettle -ldl -lpthread
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
override CFLAGS += -DKVMINI_VERSION='"$(VERSION)"'

B        ?= build
LIB_SRC  := $(wildcard vmm/base/*.c vmm/kvm/*.c vmm/machine/*.c vmm/sandbox/*.c devices/*/*.c boot/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)
SUPP_SRC := $(wildcard tests/support/*.c)
SUPP_OBJ := $(SUPP_SRC:%.c=$(B)/obj/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
KVMT_SRC := $(wildcard tests/kvm/test_*.c)
KVMT_BIN := $(KVMT_SRC:tests/kvm/%.c=$(B)/tests/%)
TINY_SRC := $(wildcard tests/guests/*.S)
TINY_BIN := $(TINY_SRC:tests/guests/%.S=$(B)/guests/%.elf)
# The examples built against the installed library (installtest; linuxtest runs them). Set
# here, before any rule names them as a prerequisite (those expand when make reads them).
STAGE    := $(abspath $(B))/stage
EXAMPLE  := $(B)/examples/run-command
SANDBOX_EXAMPLE := $(B)/examples/sandbox

.PHONY: all lib install uninstall installtest layercheck doccheck help unit kvmtest tiny asan fuzz fuzz-long fuzz-lib nestedtest linuxtest orphantest scripttest soak check demo format \
	format-check clean deps guests
all: $(B)/kvmini

help:
	@sed -n 's/^#   /  /p' Makefile

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libkvmini.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The shared library: position-independent objects of the same sources, exporting only the
# kvmini_* API (vmm/machine/libkvmini.map), soname libkvmini.so.0.
SONAME   := libkvmini.so.0
SHLIB    := $(B)/libkvmini.so.$(VERSION)
PIC_OBJ  := $(LIB_SRC:%.c=$(B)/pic/%.o)
$(B)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

$(SHLIB): $(PIC_OBJ) vmm/machine/libkvmini.map
	$(CC) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=vmm/machine/libkvmini.map \
		-Wl,-z,defs -o $@ $(PIC_OBJ) $(LDLIBS)

lib: $(B)/libkvmini.a $(SHLIB)

# Test support (the fake driver in tests/support/): linked into unit tests and fuzz targets.
$(B)/libsupport.a: $(SUPP_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The CLI frontend: everything but main() in libcli.a, so unit tests can link its parser.
CLI_SRC  := $(filter-out vmm/cli/main.c,$(wildcard vmm/cli/*.c))
CLI_OBJ  := $(CLI_SRC:%.c=$(B)/obj/%.o)
$(B)/libcli.a: $(CLI_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/kvmini: $(B)/obj/vmm/cli/main.o $(B)/libcli.a $(B)/libkvmini.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(KVMINI_LIBS)

# reap: runs the test, benchmark and demo targets so that nothing they start (the nested
# machine's QEMU, VMs, iperf3, fio) outlives them or make (scripts/reap.c).
# REAP_RUN= (empty) runs them without it, to see tests/nested/orphan-test.sh fail.
REAP := $(B)/reap
REAP_RUN ?= $(REAP) --
$(REAP): scripts/reap.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

# Unit tests: one cmocka binary per module, no KVM needed.
$(B)/tests/%: tests/unit/%.c $(B)/libsupport.a $(B)/libcli.a $(B)/libkvmini.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/support -o $@ $< $(B)/libsupport.a $(B)/libcli.a $(B)/libkvmini.a \
		-lcmocka $(FRONT_LIBS) $(LDLIBS)

# Tiny test guests: freestanding 32-bit-entry ELF images with a PVH note.
$(B)/guests/%.elf: tests/guests/%.S tests/guests/tiny.ld
	@mkdir -p $(dir $@)
	$(CC) -nostdlib -static -no-pie -Wl,-T,tests/guests/tiny.ld -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
		-o $@ $<

# KVM tests with tiny guests: drive the real exit loop on /dev/kvm.
$(B)/tests/test_kvm%: tests/kvm/test_kvm%.c $(B)/libkvmini.a $(TINY_BIN) $(B)/kvmini
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DTINY_DIR='"$(abspath $(B))/guests"' \
		-DKVMINI_BIN='"$(abspath $(B))/kvmini"' -o $@ $< $(B)/libkvmini.a -lcmocka -lutil $(LDLIBS)

unit: $(UNIT_BIN) $(TINY_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

tiny: $(TINY_BIN)

# Directly where /dev/kvm opens, else inside the nested machine (tests/kvm/check.sh says which).
kvmtest: $(KVMT_BIN) $(REAP)
	@$(REAP_RUN) tests/kvm/check.sh $(B) $(KVMT_BIN)

# The same unit and KVM tests built with AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	$(MAKE) B=build/asan CC=clang CFLAGS="-O1 -g -fsanitize=address,undefined \
		-fno-sanitize-recover=all -fno-omit-frame-pointer" \
		LDFLAGS="-fsanitize=address,undefined" unit kvmtest

# Fuzzing (libFuzzer, ASan+UBSan): replay the committed corpus, then fuzz each target for
# FUZZ_SECONDS from a scratch copy of it (new finds stay in build/, not in the tree).
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/bin/%)
FUZZ_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

fuzz-lib:
	@$(MAKE) --no-print-directory B=build/fuzz CC=clang \
		CFLAGS="$(FUZZ_FLAGS) -fsanitize=fuzzer-no-link" build/fuzz/libkvmini.a build/fuzz/libsupport.a \
		build/fuzz/libcli.a

build/fuzz/bin/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h tests/support/*.h) fuzz-lib
	@mkdir -p $(dir $@)
	clang $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -Itests/support -o $@ $< \
		build/fuzz/libsupport.a build/fuzz/libcli.a build/fuzz/libkvmini.a $(FRONT_LIBS) $(LDLIBS)

# What each target gets: FUZZ_SECONDS of fuzzing (make fuzz-long: FUZZ_LONG_RUNS executions).
FUZZ_RUN ?= -max_total_time=$(FUZZ_SECONDS)
fuzz: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); \
		echo "== $$n: replaying tests/fuzz/corpus/$$n"; \
		$$f -runs=0 tests/fuzz/corpus/$$n; \
		rm -rf build/fuzz/work-$$n; cp -r tests/fuzz/corpus/$$n build/fuzz/work-$$n; \
		echo "== $$n: fuzzing ($(FUZZ_RUN))"; \
		$$f $(FUZZ_RUN) -print_final_stats=1 build/fuzz/work-$$n 2>&1 | \
			grep -E '^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ +DONE)|ERROR|SUMMARY' ; \
		test $${PIPESTATUS[0]} -eq 0; \
	done

# Off CI: fuzz each target for FUZZ_LONG_RUNS executions (10^7); the executions and new inputs
# of each are printed (the README records them).
FUZZ_LONG_RUNS ?= 10000000
fuzz-long:
	@$(MAKE) --no-print-directory fuzz FUZZ_RUN=-runs=$(FUZZ_LONG_RUNS)

# Benchmarks: kvmini measured against a reference tool in the same run; bench/run.sh prints
# the table and writes $(B)/bench/results.json. Speed targets live here, never in tests.
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)
.PHONY: bench

$(B)/bench/%: bench/%.c $(B)/libsupport.a $(B)/libkvmini.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/support -o $@ $< $(B)/libsupport.a $(B)/libkvmini.a $(LDLIBS)

# The network and boot rows boot the guest images; if they cannot be built, those rows say n/a
# and the disk rows still run.
bench: $(BENCH_BIN) $(B)/kvmini $(REAP)
	@$(MAKE) --no-print-directory guests || \
		echo "bench: make guests failed; the network and boot rows will be n/a"
	@BENCH_KVMINI=$(B)/kvmini BENCH_GUEST_DIR=$(GUEST_OUT) $(REAP_RUN) bench/run.sh $(B)/bench

include guests/guests.mk

# test_agent runs the real guest agent (on a unix socket instead of vsock).
$(B)/tests/test_agent: $(GUEST_OUT)/kvmini-agent
$(B)/tests/test_agent: override CFLAGS += -DKVMINI_AGENT_BIN='"$(abspath $(GUEST_OUT))/kvmini-agent"'


# Linux system tests: directly where the host has hardware virtualization, otherwise inside
# the nested machine (QEMU TCG with emulated AMD SVM); the choice is printed.
linuxtest: $(B)/kvmini guests $(REAP) $(EXAMPLE) $(SANDBOX_EXAMPLE) $(B)/tests/pause-test \
		$(B)/tests/vsock-client $(B)/tests/sb-probe $(B)/tests/pty-crash
	@KVMINI_TEST_EXAMPLE=$(EXAMPLE) KVMINI_TEST_PAUSE=$(B)/tests/pause-test \
		KVMINI_TEST_PTY_CRASH=$(B)/tests/pty-crash \
		KVMINI_TEST_SANDBOX_EXAMPLE=$(SANDBOX_EXAMPLE) \
		KVMINI_TEST_VSOCK_CLIENT=$(B)/tests/vsock-client \
		KVMINI_TEST_SB_PROBE=$(B)/tests/sb-probe \
		$(REAP_RUN) tests/linux/check.sh $(B)/kvmini $(GUEST_OUT)

# Off CI: the disk's crash-consistency test with 100 SIGKILL rounds (make check runs 20), and
# the flush test beside it.
soak:
	@KVMINI_TEST_CRASH_ROUNDS=100 KVMINI_TEST_FILTER='^disk-(crash-consistency|flush-reaches-storage)$$' \
		$(MAKE) --no-print-directory linuxtest

# vsock-client: a host program talking to a guest listener through --vsock uds=PATH.
$(B)/tests/vsock-client: tests/linux/vsock-client.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

# pty-crash: kvmini on a pty killed with SIGSEGV once its console made the terminal raw.
$(B)/tests/pty-crash: tests/linux/pty-crash.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -lutil

# sb-probe: a static program for the sandbox tests' root (beside busybox).
$(B)/tests/sb-probe: tests/linux/sb-probe.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -static -o $@ $<

# pause-test: a libkvmini client that pauses and resumes a Linux guest (tests/linux/api-tests.sh).
$(B)/tests/pause-test: tests/linux/pause-test.c $(B)/libkvmini.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(B)/libkvmini.a $(LDLIBS)

# The nested machine's stall watchdog, boot retry and keeper, on real L2 runs (no guests), and
# the Linux suite going on in a fresh nested machine after one dies (a stand-in machine).
nestedtest: $(B)/kvmini guests $(REAP)
	@KVMINI=$(B)/kvmini GUEST_DIR=$(GUEST_OUT) $(REAP_RUN) tests/nested/watchdog-test.sh
	@$(REAP_RUN) tests/linux/resume-test.sh $(B)/kvmini $(GUEST_OUT)

# The harness's own promise: stopped, a test run or benchmark leaves nothing running.
orphantest: $(B)/kvmini guests $(REAP)
	@tests/nested/orphan-test.sh linuxtest
	@tests/nested/orphan-test.sh bench BENCH_DISK=0 BENCH_NET=0

# scripts/kvmini-nat refusing bad tap names and a crafted state file (stand-ins for ip and nft,
# its own network namespace: nothing on the host changes); kvmini not dumpable; check.sh killing
# a hung test binary. None needs /dev/kvm (a crash restoring the terminal is a Linux test).
scripttest: $(B)/kvmini
	@tests/scripts/nat-test.sh
	@tests/scripts/kvmtest-bound-test.sh
	@tests/scripts/dumpable-test.sh $(B)/kvmini

# Guests first: with KVMINI_REQUIRE_GUESTS the unit tests that load them must not skip.
check: export KVMINI_REQUIRE_GUESTS = 1
# ...and a unit test whose host lacks what it needs (/dev/net/tun, capabilities) fails, not skips.
check: export KVMINI_REQUIRE_HOST = 1
check: format-check layercheck doccheck guests unit scripttest installtest asan fuzz kvmtest nestedtest \
	linuxtest orphantest
	@echo "make check: all tiers passed"

demo: $(B)/kvmini guests $(REAP)
	@$(REAP_RUN) tests/linux/demo.sh $(B)/kvmini $(GUEST_OUT)

deps:
	./setup.sh --deps-only

FORMAT_SRC = $(wildcard vmm/*/*.c devices/*/*.c boot/*.c include/*.h include/kvmini/*.h examples/*.c tests/unit/*.c tests/kvm/*.c \
		tests/fuzz/*.c tests/linux/*.c tests/support/*.c tests/support/*.h bench/*.c tests/nested/*.c scripts/*.c)
format:
	clang-format -i $(FORMAT_SRC)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRC) && echo "format-check: ok"

# make install [PREFIX=/usr/local] [DESTDIR=...]: the command, both libraries, the header, the
# pkg-config file and the man pages.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
# kvmini exec's default guest (the kernel and the sandbox initramfs with the agent): kvmini
# looks for them in ../share/kvmini beside its own bin/ (vmm/cli/sandbox.c).
KVMINI_DATADIR ?= $(PREFIX)/share/kvmini

$(B)/kvmini.pc: scripts/kvmini.pc.in VERSION
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(VERSION)|' $< >$@.tmp && mv $@.tmp $@

install: $(B)/kvmini lib $(B)/kvmini.pc $(GUEST_OUT)/bzImage $(GUEST_OUT)/sandbox.cpio.gz
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(KVMINI_DATADIR)
	install -m 644 $(GUEST_OUT)/bzImage $(GUEST_OUT)/sandbox.cpio.gz $(DESTDIR)$(KVMINI_DATADIR)/
	install -m 755 $(B)/kvmini $(DESTDIR)$(BINDIR)/kvmini
	install -m 644 $(B)/libkvmini.a $(DESTDIR)$(LIBDIR)/libkvmini.a
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libkvmini.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libkvmini.so
	install -m 644 include/kvmini.h $(DESTDIR)$(INCLUDEDIR)/kvmini.h
	install -m 644 $(B)/kvmini.pc $(DESTDIR)$(LIBDIR)/pkgconfig/kvmini.pc
	install -m 644 docs/man/kvmini.1 $(DESTDIR)$(MANDIR)/man1/kvmini.1
	install -m 644 docs/man/libkvmini.3 $(DESTDIR)$(MANDIR)/man3/libkvmini.3

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/kvmini $(DESTDIR)$(LIBDIR)/libkvmini.a \
		$(DESTDIR)$(LIBDIR)/libkvmini.so* $(DESTDIR)$(INCLUDEDIR)/kvmini.h \
		$(DESTDIR)$(LIBDIR)/pkgconfig/kvmini.pc $(DESTDIR)$(MANDIR)/man1/kvmini.1 \
		$(DESTDIR)$(MANDIR)/man3/libkvmini.3 $(DESTDIR)$(KVMINI_DATADIR)/bzImage \
		$(DESTDIR)$(KVMINI_DATADIR)/sandbox.cpio.gz

# The installed library as a user gets it: install into a scratch DESTDIR, build the example
# with pkg-config against it (shared and static), check what the .so exports and that the
# man pages render. linuxtest then runs the example on a Linux guest (tests/linux/api-tests.sh).
$(EXAMPLE): examples/run-command.c $(B)/kvmini lib $(B)/kvmini.pc docs/man/kvmini.1 docs/man/libkvmini.3
	@rm -rf $(STAGE)
	@$(MAKE) --no-print-directory install DESTDIR=$(STAGE) PREFIX=/usr/local >/dev/null
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -o $@ $< \
		$$(PKG_CONFIG_SYSROOT_DIR=$(STAGE) PKG_CONFIG_PATH=$(STAGE)/usr/local/lib/pkgconfig \
		   pkg-config --cflags --libs kvmini) -Wl,-rpath,$(STAGE)/usr/local/lib
	$(CC) -std=gnu11 -Wall -Wextra -Werror -static-libgcc -o $@-static $< \
		$$(PKG_CONFIG_SYSROOT_DIR=$(STAGE) PKG_CONFIG_PATH=$(STAGE)/usr/local/lib/pkgconfig \
		   pkg-config --static --cflags kvmini) $(STAGE)/usr/local/lib/libkvmini.a \
		$$(pkg-config --static --libs liburing libseccomp libcap-ng) -lpthread

# The sandbox example (examples/sandbox.c), built the same way; tests/linux/sandbox-tests.sh
# runs it.
$(SANDBOX_EXAMPLE): examples/sandbox.c $(EXAMPLE)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -o $@ $< \
		$$(PKG_CONFIG_SYSROOT_DIR=$(STAGE) PKG_CONFIG_PATH=$(STAGE)/usr/local/lib/pkgconfig \
		   pkg-config --cflags --libs kvmini) -Wl,-rpath,$(STAGE)/usr/local/lib

installtest: $(EXAMPLE) $(SANDBOX_EXAMPLE)
	@tests/install-test.sh $(STAGE) $(EXAMPLE)

# The docs cite only names and paths that exist (scripts/check-doc-names.sh), docs/api.yaml
# describes exactly the routes served (scripts/check-api-doc.sh), and each check must catch a
# doc that is wrong.
doccheck:
	@scripts/check-doc-names.sh
	@t=$$(mktemp); echo 'calls `vcpu_handle_teleport()` in `vmm/kvm/gone.c`' >$$t; \
	if scripts/check-doc-names.sh $$t >/dev/null; then rm -f $$t; \
		echo "doc check: missed a name that does not exist"; exit 1; fi; rm -f $$t; \
	echo "doc check: catches a function and a file that do not exist"
	@scripts/check-api-doc.sh
	@set -e; t=$$(mktemp -d); trap 'rm -rf $$t' EXIT; mkdir -p $$t/vmm/cli $$t/docs; \
	cp vmm/cli/api.c $$t/vmm/cli/; grep -v '^  /vm/destroy:' docs/api.yaml >$$t/docs/api.yaml; \
	if scripts/check-api-doc.sh $$t >/dev/null; then \
		echo "doc check: missed a route that docs/api.yaml does not describe"; exit 1; fi; \
	echo "doc check: catches a route missing from docs/api.yaml"

# The floors of the source tree (scripts/check-layers.sh holds the allow-list).
# Then the check must catch a device that includes the machine, and a CLI that reaches
# below the public header.
layercheck:
	@scripts/check-layers.sh
	@set -e; t=$$(mktemp -d); trap 'rm -rf $$t' EXIT; \
	for bad in 'devices/legacy/uart.c:kvmini/vm.h' 'vmm/cli/main.c:kvmini/gmem.h'; do \
		rm -rf $$t/tree; mkdir $$t/tree; cp -r vmm devices boot include $$t/tree/; \
		echo "#include \"$${bad#*:}\"" >>$$t/tree/$${bad%%:*}; \
		if scripts/check-layers.sh $$t/tree >$$t/out; then \
			echo "layer check: missed $${bad%%:*} including $${bad#*:}"; exit 1; fi; \
		grep -q "$${bad%%:*}: includes \"$${bad#*:}\"" $$t/out; \
	done; echo "layer check: catches a device including the machine and a CLI below the API"

clean:
	rm -rf build

-include $(shell find $(B)/obj $(B)/pic $(B)/tests -name '*.d' 2>/dev/null)
