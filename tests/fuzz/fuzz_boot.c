/*
 * fuzz_boot: the boot loader fed hostile kernel and initrd files. Input: a 4-byte
 * little-endian kernel length, the kernel's bytes, then the initrd's (none when nothing is
 * left); both go through real files (memfds), as `kvmini run --kernel/--initrd` reads them.
 * Oracles: a refused image is one line with status 3 (or 4: it does not fit); an accepted one
 * put its entry point, kernel, initrd and command line inside guest RAM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "kvmini.h"
#include "kvmini/boot.h"
#include "kvmini/gmem.h"

#define RAM (64ULL << 20)

/* A memfd holding buf, and its /proc path in `path`; -1 on failure. */
static int file_of(const uint8_t *buf, size_t n, char *path, size_t cap)
{
	int fd = memfd_create("fuzz-boot", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (n && write(fd, buf, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	snprintf(path, cap, "/proc/self/fd/%d", fd);
	return fd;
}

static bool inside(uint64_t start, uint64_t len)
{
	return start <= RAM && len <= RAM - start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gmem gm;
	static bool ready;
	if (!ready) {
		struct vmerr e = {0};
		if (gmem_init(&gm, RAM, &e) < 0)
			abort();
		ready = true;
	}
	if (size < 4)
		return 0;
	size_t klen = get32(data) % (size - 3);
	const uint8_t *kernel = data + 4, *initrd = data + 4 + klen;
	size_t ilen = size - 4 - klen;
	char kpath[64], ipath[64];
	int kfd = file_of(kernel, klen, kpath, sizeof(kpath));
	int ifd = ilen ? file_of(initrd, ilen, ipath, sizeof(ipath)) : -2;
	if (kfd < 0 || ifd == -1)
		abort();
	struct boot_config bc = {.kernel_path = kpath,
				 .initrd_path = ilen ? ipath : NULL,
				 .cmdline = "console=ttyS0 -- fuzz",
				 .cpus = 2};
	struct boot_info bi;
	struct vmerr e = {0};
	int ret = boot_load(&gm, &bc, &bi, &e);
	if (ret < 0) {
		if (e.status != KVMINI_EXIT_INPUT && e.status != KVMINI_EXIT_RESOURCE)
			abort();
		if (!e.msg[0] || strchr(e.msg, '\n'))
			abort();
	} else {
		if (!inside(bi.entry, 1) || bi.kernel_end < bi.kernel_start ||
		    !inside(bi.kernel_start, bi.kernel_end - bi.kernel_start) ||
		    !inside(bi.cmdline, bi.cmdline_len + 1) ||
		    (bi.initrd_size && !inside(bi.initrd_start, bi.initrd_size)) ||
		    (ilen && bi.initrd_size != ilen))
			abort();
	}
	close(kfd);
	if (ifd >= 0)
		close(ifd);
	return 0;
}
