/* sbroot: the sandbox root's mounts (see sbroot.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbroot.h"

/* mkdir that accepts an existing directory. */
static int sbroot_dir(const char *path, mode_t mode)
{
	struct stat st;
	if (mkdir(path, mode) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return -errno;
}

/* One mount, on a directory made first if missing. */
struct sbroot_step {
	const char *src, *target, *fstype; /* fstype NULL: a bind mount */
	unsigned long flags;
	const char *data;
	bool in_newroot; /* target is relative to newroot */
};

/* Bring "lo" up (SIOCSIFFLAGS); a guest kernel without networking has none: fine. */
static void sbroot_loopback(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
}

/*
 * Read ahead SBROOT_READAHEAD_KB on the root image (Linux's default is 128 KiB). The image is
 * read-only, holds mostly programs and libraries, and sits in the host's page cache, so
 * reading more at once is cheap, while each request costs the guest an exit and an
 * interrupt: with 128 KiB the first `true` (busybox, 1.9 MiB, page-faulted in) took 94 ms in
 * the nested machine, with 4 MiB 55 ms (eight runs each, 2026-12-03). Best effort.
 */
#define SBROOT_READAHEAD_KB "4096"
static void sbroot_readahead(void)
{
	int fd = open("/sys/block/vda/queue/read_ahead_kb", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, SBROOT_READAHEAD_KB, strlen(SBROOT_READAHEAD_KB)) < 0) {
		/* an older kernel's limit: its default stays */
	}
	close(fd);
}

int sbroot_mount(const char *newroot, char *msg, size_t msglen)
{
	const struct sbroot_step steps[] = {
		{"/dev/vda", "/rom", "erofs", MS_RDONLY, NULL, false},
		{"tmpfs", "/rw", "tmpfs", 0, "mode=0755", false},
		{"overlay", "", "overlay", 0, "lowerdir=/rom,upperdir=/rw/upper,workdir=/rw/work",
		 true},
		{"devpts", "/dev/pts", "devpts", 0, "ptmxmode=0666,mode=0620", false},
		{"proc", "/proc", "proc", 0, NULL, true},
		{"sysfs", "/sys", "sysfs", 0, NULL, true},
		{"/dev", "/dev", NULL, MS_BIND | MS_REC, NULL, true},
		{"tmpfs", "/tmp", "tmpfs", 0, "mode=1777", true},
	};
	char path[4096];
	sbroot_readahead();
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const struct sbroot_step *s = &steps[i];
		snprintf(path, sizeof(path), "%s%s", s->in_newroot ? newroot : "", s->target);
		int ret = sbroot_dir(path, 0755);
		if (ret < 0) {
			snprintf(msg, msglen, "cannot create %s: %s", path, strerror(-ret));
			return ret;
		}
		if (mount(s->src, path, s->fstype, s->flags, s->data) < 0) {
			ret = -errno;
			snprintf(msg, msglen, "cannot mount %s (%s) on %s: %s", s->src,
				 s->fstype ? s->fstype : "bind", path, strerror(-ret));
			return ret;
		}
		/* The overlay's layers, once their tmpfs is there. */
		if (!strcmp(s->target, "/rw") && ((ret = sbroot_dir("/rw/upper", 0755)) < 0 ||
						  (ret = sbroot_dir("/rw/work", 0755)) < 0)) {
			snprintf(msg, msglen, "cannot create /rw/upper, /rw/work: %s",
				 strerror(-ret));
			return ret;
		}
	}
	sbroot_loopback();
	return 0;
}
