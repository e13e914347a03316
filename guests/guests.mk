# guests/guests.mk: guest Linux kernel + initramfs for kvmini's system tests.
# Included by the top-level Makefile (paths are relative to the repo top).
#
# Build dependencies (Debian packages):
#   linux-source-6.1 bc flex bison libelf-dev libssl-dev cpio xz-utils busybox-static musl-tools
#
# Targets:
#   make guests      $(GUEST_OUT)/bzImage, $(GUEST_OUT)/vmlinux, $(GUEST_OUT)/initramfs.cpio.gz,
#                    $(GUEST_OUT)/kvmini-agent and $(GUEST_OUT)/sandbox.cpio.gz (the initramfs
#                    of `kvmini exec`: the same plus the guest agent)
#   make guests-deps print the Debian packages the guest build needs
#
# The kernel is built once per (guests/kernel.config, linux-source-6.1 version) and
# cached in $(KVMINI_CACHE); later builds, also from fresh clones, just copy from
# there. See guests/README.md.

GUEST_OUT    ?= build/guest
KVMINI_CACHE ?= $(HOME)/.cache/kvmini
GUEST_DEPS   := linux-source-6.1 bc flex bison libelf-dev libssl-dev cpio xz-utils busybox-static \
	musl-tools

.PHONY: guests guests-deps
guests: $(GUEST_OUT)/bzImage $(GUEST_OUT)/vmlinux $(GUEST_OUT)/initramfs.cpio.gz \
	$(GUEST_OUT)/sandbox.cpio.gz

guests-deps:
	@echo $(GUEST_DEPS)

# One build produces both images (grouped target, GNU make >= 4.3). The script looks
# in the cache first, so rerunning it is cheap.
$(GUEST_OUT)/bzImage $(GUEST_OUT)/vmlinux &: guests/kernel.config guests/build-kernel.sh \
		$(wildcard /usr/src/linux-source-6.1.tar.xz)
	KVMINI_CACHE='$(KVMINI_CACHE)' guests/build-kernel.sh guests/kernel.config $(GUEST_OUT)

$(GUEST_OUT)/initramfs.cpio.gz: guests/init guests/build-initramfs.sh $(wildcard /bin/busybox)
	guests/build-initramfs.sh guests/init $@

# The guest agent (guests/agent, docs/agent-protocol.md): a static binary for the sandbox guest,
# linked with musl (Debian's musl-tools): 84 KiB stripped, where static glibc made 814 KiB, and
# every byte of it is unpacked at each sandbox's boot. musl-gcc leaves the kernel's headers out,
# so the agent gets only theirs (linux/, asm/, asm-generic/), through links in AGENT_INC.
AGENT_SRC := $(wildcard guests/agent/*.c)
AGENT_CC  ?= musl-gcc
AGENT_INC := $(GUEST_OUT)/agent-include
AGENT_ARCH_INC := /usr/include/$(shell $(CC) -print-multiarch)
$(GUEST_OUT)/kvmini-agent: $(AGENT_SRC) $(wildcard guests/agent/*.h) guests/guests.mk
	@command -v $(AGENT_CC) >/dev/null || { echo "$(AGENT_CC) is missing: ./setup.sh --deps-only installs musl-tools" >&2; exit 1; }
	@mkdir -p $(AGENT_INC)
	ln -sfn /usr/include/linux $(AGENT_INC)/linux
	ln -sfn $(AGENT_ARCH_INC)/asm $(AGENT_INC)/asm
	ln -sfn /usr/include/asm-generic $(AGENT_INC)/asm-generic
	$(AGENT_CC) -std=gnu11 -Os -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -static \
		-isystem $(AGENT_INC) -s -o $@ $(AGENT_SRC)

$(GUEST_OUT)/sandbox.cpio.gz: guests/init guests/build-initramfs.sh $(GUEST_OUT)/kvmini-agent \
		$(wildcard /bin/busybox)
	KVMINI_AGENT=$(GUEST_OUT)/kvmini-agent guests/build-initramfs.sh guests/init $@
