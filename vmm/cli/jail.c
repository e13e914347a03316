/* jail: the VMM in namespaces of its own, rooted in a tmpfs over DIR, as --uid/--gid. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvmini/jail.h"

/*
 * Design. Firecracker's jailer is a separate program that sets the jail up and executes the
 * VMM in it; here `kvmini run` does it itself, before it opens anything of the VM's:
 *  - the namespaces: mount, PID, IPC, UTS (and the network namespace --netns names, joined
 *    first), then a fork, so the VMM is PID 1 of its PID namespace and sees no other process;
 *    the parent stays outside, forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT and returns the child's
 *    exit status;
 *  - the root: a tmpfs mounted over DIR in the new mount namespace (so DIR itself stays empty
 *    and nothing is left to clean, whatever DIR's file system is), holding /dev with kvm,
 *    net/tun, null, zero and urandom as nodes of their own (kvm and tun owned by --uid/--gid,
 *    as the jailer does, so the host's nodes keep their owners), /files with the kernel,
 *    initrd and disk images bind-mounted (read-only disks read-only), a /proc of the PID
 *    namespace, and nothing else; pivot_root into it and the host's tree unmounted (on a
 *    host running from an initramfs, which pivot_root cannot leave, the jail is moved over /
 *    and chrooted into instead, as switch_root does);
 *  - the user: rlimits (RLIMIT_NOFILE 2048, RLIMIT_NPROC 512 threads, RLIMIT_FSIZE the
 *    largest writable image but at least 1 GiB, with SIGXFSZ ignored), no supplementary groups,
 * --gid, --uid, then no capability at all and PR_SET_NO_NEW_PRIVS (kvmini_drop_capabilities),
 * PR_SET_DUMPABLE 0 again. The VM is created after that, as --uid: the images must be that user's
 * to open, and a tap must exist already and belong to it (`ip tuntap add NAME mode tap user UID
 * vnet_hdr`): an unprivileged process cannot create one.
 */

#define JAIL_NOFILE 2048
#define JAIL_NPROC  512

/* Fail with a usage (2) or input (3) line. */
#define JAIL_FAIL(e, st, ...) cli_fail((e), (st), EINVAL, __VA_ARGS__)

static bool jail_dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool empty = true;
	for (struct dirent *de; empty && (de = readdir(d));)
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	closedir(d);
	return empty;
}

int jail_check(const struct cli *c, struct kvmini_error *e)
{
	if (c->detach || c->name_set || c->rootfs || c->image || c->vsock_uds)
		return JAIL_FAIL(e, KVMINI_EXIT_USAGE,
				 "--jail runs one anonymous VM in the foreground: not with "
				 "--detach, --name, --rootfs, --image or --vsock uds= (not yet)");
	if (c->jail_uid == 0 || c->jail_gid == 0)
		return JAIL_FAIL(e, KVMINI_EXIT_USAGE,
				 "--jail needs --uid and --gid, an unprivileged user and group "
				 "(not 0) to run the VM as");
	if (geteuid() != 0)
		return JAIL_FAIL(e, KVMINI_EXIT_USAGE,
				 "--jail needs root (it makes namespaces and device nodes, then "
				 "drops to --uid %u)",
				 c->jail_uid);
	if (c->jail[0] != '/')
		return JAIL_FAIL(e, KVMINI_EXIT_USAGE, "--jail %s: give an absolute path", c->jail);
	struct stat st;
	if (lstat(c->jail, &st) < 0)
		return JAIL_FAIL(e, KVMINI_EXIT_INPUT, "--jail %s: %s; make an empty directory",
				 c->jail, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return JAIL_FAIL(e, KVMINI_EXIT_INPUT,
				 "--jail %s is not a directory (a link is not taken): give an "
				 "empty directory",
				 c->jail);
	if (st.st_uid != 0)
		return JAIL_FAIL(e, KVMINI_EXIT_INPUT,
				 "--jail %s belongs to uid %u, not root: give a directory root "
				 "owns, so no one else can change it",
				 c->jail, (unsigned int)st.st_uid);
	if (!jail_dir_empty(c->jail))
		return JAIL_FAIL(e, KVMINI_EXIT_INPUT,
				 "--jail %s is not empty: give an empty directory (kvmini fills "
				 "it and leaves it empty)",
				 c->jail);
	return 0;
}

/* mkdir -p for one level under the new root; EEXIST is fine. */
static int jail_mkdir(const char *path, mode_t mode)
{
	return mkdir(path, mode) < 0 && errno != EEXIST ? -errno : 0;
}

/* A device node in the jail with the host node's numbers, owned by `uid:gid`. */
static int jail_node(const char *root, const char *host, const char *name, mode_t mode, uid_t uid,
		     gid_t gid, struct kvmini_error *e)
{
	struct stat st;
	if (stat(host, &st) < 0 || !S_ISCHR(st.st_mode))
		return cli_fail(e, KVMINI_EXIT_RESOURCE, ENODEV,
				"--jail: %s is missing or not a character device", host);
	char p[4200];
	snprintf(p, sizeof(p), "%s/dev/%s", root, name);
	if (mknod(p, S_IFCHR | mode, st.st_rdev) < 0 || chown(p, uid, gid) < 0 ||
	    chmod(p, mode) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: cannot make %s: %s", p,
				strerror(errno));
	return 0;
}

/* Bind-mount host file `*path` at /files/N-NAME in the jail and point `*path` there. */
static int jail_bind(struct cli *c, const char *root, const char **path, unsigned int n,
		     bool readonly, struct kvmini_error *e)
{
	const char *base = strrchr(*path, '/');
	base = base ? base + 1 : *path;
	char inside[600], p[4800];
	snprintf(inside, sizeof(inside), JAIL_FILES "/%u-%.500s", n, base);
	snprintf(p, sizeof(p), "%s%s", root, inside);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: cannot make %s: %s", p,
				strerror(errno));
	close(fd);
	if (mount(*path, p, NULL, MS_BIND, NULL) < 0)
		return cli_fail(e, KVMINI_EXIT_INPUT, errno, "--jail: cannot bind %s: %s", *path,
				strerror(errno));
	if (readonly && mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: cannot make %s read-only: %s",
				*path, strerror(errno));
	const char *owned = cli_own(c, inside);
	if (!owned)
		return cli_fail(e, KVMINI_EXIT_HOST, ENOMEM, "out of memory");
	*path = owned;
	return 0;
}

/* RLIMIT_FSIZE: the largest writable disk image (so no image can be made to grow), but at
 * least JAIL_FSIZE_MIN, since the console or a trace redirected to a file counts too. */
#define JAIL_FSIZE_MIN (1ULL << 30)
static rlim_t jail_fsize(const struct cli *c)
{
	rlim_t max = JAIL_FSIZE_MIN;
	for (unsigned int i = 0; i < c->nr_disks; i++) {
		struct stat st;
		if (!c->disk[i].readonly && stat(c->disk[i].path, &st) == 0 &&
		    (rlim_t)st.st_size > max)
			max = (rlim_t)st.st_size;
	}
	return max;
}

/* In the child: build the root over c->jail, pivot into it, drop to the user. */
static int jail_build(struct cli *c, struct kvmini_error *e)
{
	const char *root = c->jail;
	rlim_t fsize = jail_fsize(c);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: mount namespace: %s",
				strerror(errno));
	if (mount("kvmini-jail", root, "tmpfs", MS_NOSUID, "mode=0755,size=1m") < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno,
				"--jail: cannot mount a tmpfs on %s: %s", root, strerror(errno));
	char p[4200];
	const char *dirs[] = {"dev", "dev/net", "files", "proc", "old"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
		if (jail_mkdir(p, 0755) < 0)
			return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: cannot make %s: %s", p,
					strerror(errno));
	}
	uid_t uid = c->jail_uid;
	gid_t gid = c->jail_gid;
	if (jail_node(root, "/dev/kvm", "kvm", 0660, uid, gid, e) < 0 ||
	    (c->nr_nets && jail_node(root, "/dev/net/tun", "net/tun", 0660, uid, gid, e) < 0) ||
	    jail_node(root, "/dev/null", "null", 0666, 0, 0, e) < 0 ||
	    jail_node(root, "/dev/zero", "zero", 0666, 0, 0, e) < 0 ||
	    jail_node(root, "/dev/urandom", "urandom", 0444, 0, 0, e) < 0)
		return -1;
	unsigned int n = 0;
	if (jail_bind(c, root, &c->kernel, n++, true, e) < 0)
		return -1;
	if (c->initrd && jail_bind(c, root, &c->initrd, n++, true, e) < 0)
		return -1;
	for (unsigned int i = 0; i < c->nr_disks; i++)
		if (jail_bind(c, root, &c->disk[i].path, n++, c->disk[i].readonly, e) < 0)
			return -1;
	snprintf(p, sizeof(p), "%s/proc", root);
	if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: cannot mount /proc: %s",
				strerror(errno));
	snprintf(p, sizeof(p), "%s/old", root);
	if (syscall(SYS_pivot_root, root, p) == 0) {
		if (chdir("/") < 0 || umount2("/old", MNT_DETACH) < 0 || rmdir("/old") < 0)
			return cli_fail(e, KVMINI_EXIT_HOST, errno,
					"--jail: cannot drop the host's root: %s", strerror(errno));
	} else if (errno == EINVAL) {
		/* The host runs from an initramfs (rootfs), which pivot_root cannot leave: move
		 * the jail over / and chroot into it, as switch_root does. The host's files stay
		 * under the mount, out of reach without CAP_SYS_CHROOT or CAP_SYS_ADMIN. */
		if (chdir(root) < 0 || mount(root, "/", NULL, MS_MOVE, NULL) < 0 ||
		    chroot(".") < 0 || chdir("/") < 0 || rmdir("/old") < 0)
			return cli_fail(e, KVMINI_EXIT_HOST, errno,
					"--jail: cannot move into %s: %s", root, strerror(errno));
	} else {
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: pivot_root into %s: %s", root,
				strerror(errno));
	}
	/* The tmpfs's own root goes read-only: the VMM has nothing to write in it. */
	if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: cannot make / read-only: %s",
				strerror(errno));
	sethostname("kvmini", 6);
	struct rlimit nofile = {JAIL_NOFILE, JAIL_NOFILE}, nproc = {JAIL_NPROC, JAIL_NPROC},
		      fs = {fsize, fsize};
	/* Past RLIMIT_FSIZE a write fails with EFBIG (output is dropped and counted), rather
	 * than SIGXFSZ ending the VM. */
	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_NOFILE, &nofile) < 0 || setrlimit(RLIMIT_NPROC, &nproc) < 0 ||
	    setrlimit(RLIMIT_FSIZE, &fs) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: setrlimit: %s",
				strerror(errno));
	/* The bounding set first, while CAP_SETPCAP is still there (the uid change clears the
	 * rest: permitted, effective, ambient); EINVAL past the kernel's last capability. */
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: PR_CAPBSET_DROP: %s",
					strerror(errno));
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: cannot become %u:%u: %s",
				(unsigned int)uid, (unsigned int)gid, strerror(errno));
	if (kvmini_drop_capabilities(e) < 0)
		return -1;
	/* A change of credentials clears both: not dumpable again, and still killed with the
	 * kvmini outside, so a jailed VM never outlives it. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: PR_SET_PDEATHSIG: %s",
				strerror(errno));
	return 0;
}

static void jail_noop(int sig)
{
	(void)sig;
}

#define JAIL_CGROUP_ROOT "/sys/fs/cgroup"

/* Write `text` into cgroup file `dir`/`file`. */
static int jail_cg_write(const char *dir, const char *file, const char *text,
			 struct kvmini_error *e)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : write(fd, text, strlen(text));
	int err = errno;
	if (fd >= 0)
		close(fd);
	if (n < 0)
		return cli_fail(e, KVMINI_EXIT_RESOURCE, err,
				"--cgroup: cannot write '%s' to %s: %s", text, p, strerror(err));
	return 0;
}

/*
 * The parent, with the child waiting: the cgroup --cgroup names (made when missing: *made),
 * its limits (the controllers enabled in its parent first), the child moved in.
 */
static int jail_cgroup_join(const struct cli *c, pid_t child, char *dir, size_t len, bool *made,
			    struct kvmini_error *e)
{
	const char *g = c->jail_cgroup;
	const char *rel = !strncmp(g, JAIL_CGROUP_ROOT "/", sizeof(JAIL_CGROUP_ROOT))
				  ? g + sizeof(JAIL_CGROUP_ROOT)
				  : g;
	if (rel[0] == '/' || !rel[0])
		return cli_fail(e, KVMINI_EXIT_USAGE, EINVAL,
				"--cgroup %s: give a path under " JAIL_CGROUP_ROOT, g);
	if (access(JAIL_CGROUP_ROOT "/cgroup.controllers", F_OK) < 0)
		return cli_fail(e, KVMINI_EXIT_RESOURCE, ENOENT,
				"--cgroup: cgroup v2 is not mounted at " JAIL_CGROUP_ROOT);
	snprintf(dir, len, JAIL_CGROUP_ROOT "/%s", rel);
	*made = mkdir(dir, 0755) == 0;
	if (!*made && errno != EEXIST)
		return cli_fail(e, KVMINI_EXIT_RESOURCE, errno, "--cgroup: cannot make %s: %s", dir,
				strerror(errno));
	char parent[4200];
	snprintf(parent, sizeof(parent), "%s", dir);
	*strrchr(parent, '/') = '\0';
	char text[64];
	if (c->jail_cpu_quota) {
		snprintf(text, sizeof(text), "%llu %llu", (unsigned long long)c->jail_cpu_quota,
			 (unsigned long long)c->jail_cpu_period);
		if (jail_cg_write(parent, "cgroup.subtree_control", "+cpu", e) < 0 ||
		    jail_cg_write(dir, "cpu.max", text, e) < 0)
			return -1;
	}
	if (c->jail_memory_max) {
		snprintf(text, sizeof(text), "%llu", (unsigned long long)c->jail_memory_max);
		if (jail_cg_write(parent, "cgroup.subtree_control", "+memory", e) < 0 ||
		    jail_cg_write(dir, "memory.max", text, e) < 0)
			return -1;
	}
	snprintf(text, sizeof(text), "%d", (int)child);
	return jail_cg_write(dir, "cgroup.procs", text, e);
}

/* The parent: forward the stop signals to the jailed child until it ends; its status. */
static int jail_wait(pid_t child, int sfd)
{
	int pfd = (int)syscall(SYS_pidfd_open, child, 0);
	for (;;) {
		struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = pfd, .events = POLLIN}};
		if (pfd >= 0 && poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd >= 0 && (p[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				kill(child, (int)si.ssi_signo);
		}
		int st;
		pid_t r = waitpid(child, &st, pfd >= 0 ? WNOHANG : 0);
		if (r == child) {
			if (pfd >= 0)
				close(pfd);
			return WIFEXITED(st) ? WEXITSTATUS(st) : KVMINI_EXIT_SIGNAL + WTERMSIG(st);
		}
		if (r < 0 && errno != EINTR)
			break;
	}
	if (pfd >= 0)
		close(pfd);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return KVMINI_EXIT_HOST;
}

int jail_enter(struct cli *c, int sfd, int *status, struct kvmini_error *e)
{
	if (c->jail_netns) {
		int fd = open(c->jail_netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
			int err = errno;
			if (fd >= 0)
				close(fd);
			return cli_fail(e, KVMINI_EXIT_INPUT, err,
					"--netns %s: %s; give a network namespace such as "
					"/run/netns/NAME",
					c->jail_netns, strerror(err));
		}
		close(fd);
	}
	if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: cannot make namespaces: %s",
				strerror(errno));
	/* The child waits for a byte: it is in its cgroup before it allocates anything. */
	int go[2];
	if (pipe2(go, O_CLOEXEC) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: pipe: %s", strerror(errno));
	pid_t child = fork();
	if (child < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "--jail: fork: %s", strerror(errno));
	if (child > 0) {
		close(go[0]);
		char cg[4200] = "";
		bool made = false;
		if (c->jail_cgroup && jail_cgroup_join(c, child, cg, sizeof(cg), &made, e) < 0) {
			kill(child, SIGKILL);
			waitpid(child, NULL, 0);
			close(go[1]);
			if (made)
				rmdir(cg);
			return -1;
		}
		if (write(go[1], "g", 1) != 1) {
			/* the child is gone already: its status says why */
		}
		close(go[1]);
		*status = jail_wait(child, sfd);
		if (made && rmdir(cg) < 0)
			fprintf(stderr, "kvmini: warning: --cgroup: cannot remove %s: %s\n", cg,
				strerror(errno));
		return 1;
	}
	close(go[1]);
	char byte;
	ssize_t got;
	while ((got = read(go[0], &byte, 1)) < 0 && errno == EINTR)
		;
	close(go[0]);
	if (got != 1)
		_exit(KVMINI_EXIT_HOST); /* the parent failed and said why */
	/* PID 1 of its namespace gets a signal from outside only if it has a handler: give the
	 * stop signals one (they stay blocked, read on the signalfd as before). */
	struct sigaction sa = {.sa_handler = jail_noop};
	sigemptyset(&sa.sa_mask);
	const int stops[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
		sigaction(stops[i], &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (jail_build(c, e) < 0)
		return -1;
	return 0;
}
