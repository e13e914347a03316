# kvmini: build, test and demo targets. `make help` lists them.
#
#   make            build build/kvmini
#   make check      every test tier: unit, tiny KVM guests, sanitizer build, Linux system tests
#   make demo       boot the demo guest (inside the nested machine on hosts without VT-x/AMD-V)

CC       ?= cc
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Iinclude \
            -D_GNU_SOURCE -MMD -MP -fno-strict-aliasing
LDLIBS   += -lpthread
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
override CFLAGS += -DKVMINI_VERSION='"$(VERSION)"'

B        ?= build
LIB_SRC  := $(wildcard vmm/*.c devices/*.c boot/*.c)
LIB_SRC  := $(filter-out vmm/main.c,$(LIB_SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
KVMT_SRC := $(wildcard tests/kvm/test_*.c)
KVMT_BIN := $(KVMT_SRC:tests/kvm/%.c=$(B)/tests/%)
TINY_SRC := $(wildcard tests/guests/*.S)
TINY_BIN := $(TINY_SRC:tests/guests/%.S=$(B)/guests/%.elf)

.PHONY: all help unit kvmtest tiny asan linuxtest check demo format format-check clean deps guests
all: $(B)/kvmini

help:
	@sed -n 's/^#   /  /p' Makefile

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libkvmini.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/kvmini: $(B)/obj/vmm/main.o $(B)/libkvmini.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests: one cmocka binary per module, no KVM needed.
$(B)/tests/%: tests/unit/%.c $(B)/libkvmini.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(B)/libkvmini.a -lcmocka $(LDLIBS)

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

kvmtest: $(KVMT_BIN)
	@set -e; for t in $(KVMT_BIN); do echo "== $$t"; $$t; done

# The same unit and KVM tests built with AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	$(MAKE) B=build/asan CC=clang CFLAGS="-O1 -g -fsanitize=address,undefined \
		-fno-sanitize-recover=all -fno-omit-frame-pointer" \
		LDFLAGS="-fsanitize=address,undefined" unit kvmtest

include guests/guests.mk

# Linux system tests: directly where the host has hardware virtualization, otherwise inside
# the nested machine (QEMU TCG with emulated AMD SVM); the choice is printed.
linuxtest: $(B)/kvmini guests
	@tests/linux/check.sh $(B)/kvmini $(GUEST_OUT)

# Guests first: with KVMINI_REQUIRE_GUESTS the unit tests that load them must not skip.
check: export KVMINI_REQUIRE_GUESTS = 1
check: format-check guests unit asan kvmtest linuxtest
	@echo "make check: all tiers passed"

demo: $(B)/kvmini guests
	@tests/linux/demo.sh $(B)/kvmini $(GUEST_OUT)

deps:
	./setup.sh --deps-only

FORMAT_SRC = $(wildcard vmm/*.c devices/*.c boot/*.c include/kvmini/*.h tests/unit/*.c tests/kvm/*.c)
format:
	clang-format -i $(FORMAT_SRC)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRC) && echo "format-check: ok"

clean:
	rm -rf build

-include $(shell find $(B)/obj $(B)/tests -name '*.d' 2>/dev/null)
