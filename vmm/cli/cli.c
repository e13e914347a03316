/* cli: parse and check `kvmini` command-line options; print the help texts. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stdio.h>

#include "kvmini/cli.h"
#include "kvmini/vmconf.h"

const char *cli_own(struct cli *c, const char *s)
{
	if (!s || c->nr_owned >= CLI_OWNED_MAX)
		return NULL;
	char *d = strdup(s);
	if (d)
		c->owned[c->nr_owned++] = d;
	return d;
}

void cli_free(struct cli *c)
{
	for (unsigned int i = 0; i < c->nr_owned; i++)
		free(c->owned[i]);
	c->nr_owned = 0;
}

void cli_defaults(struct cli *c)
{
	memset(c, 0, sizeof(*c));
	c->action = CLI_RUN;
	c->mem_size = KVMINI_DEFAULT_MEM;
	c->cpus = 1;
	c->name = "kvmini";
	c->log_level = KVMINI_LOG_WARN;
	c->seccomp = KVMINI_SECCOMP_KILL;
}

/* What a new thread needs before its function: its name and filter come first. The creator
 * waits on `done` for `ret` (the filter in place, or why not). */
struct cli_thread_boot {
	void *(*fn)(void *);
	void *arg;
	const char *name;
	struct kvmini_vm *vm;
	int kind;
	sem_t done;
	int ret;
	struct kvmini_error e;
};

static void *cli_thread_main(void *p)
{
	struct cli_thread_boot *b = p;
	void *(*fn)(void *) = b->fn;
	void *arg = b->arg;
	pthread_setname_np(pthread_self(), b->name);
	int ret = b->vm ? kvmini_vm_confine_thread(b->vm, b->kind, b->name, &b->e) : 0;
	b->ret = ret;
	sem_post(&b->done); /* b is the creator's from here on */
	return ret < 0 ? NULL : fn(arg);
}

int cli_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name,
		     struct kvmini_vm *vm, int kind, struct kvmini_error *e)
{
	struct cli_thread_boot b = {.fn = fn, .arg = arg, .name = name, .vm = vm, .kind = kind};
	if (sem_init(&b.done, 0, 0) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "cannot start the %s thread", name);
	pthread_attr_t attr;
	int ret = pthread_attr_init(&attr);
	if (ret) {
		sem_destroy(&b.done);
		return cli_fail(e, KVMINI_EXIT_HOST, ret, "cannot start the %s thread: %s", name,
				strerror(ret));
	}
	ret = pthread_attr_setstacksize(&attr, CLI_THREAD_STACK);
	/* Every signal blocked but the fatal ones, whose handler (main.c) must run in the thread
	 * that caused them (as vmm/base's host_thread_start does for the VM's threads). */
	sigset_t all, old;
	sigfillset(&all);
	const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigdelset(&all, fatal[i]);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (!ret)
		ret = pthread_create(t, &attr, cli_thread_main, &b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (ret) {
		sem_destroy(&b.done);
		return cli_fail(e, KVMINI_EXIT_HOST, ret, "cannot start the %s thread: %s", name,
				strerror(ret));
	}
	while (sem_wait(&b.done) < 0 && errno == EINTR)
		;
	sem_destroy(&b.done);
	if (b.ret < 0) {
		pthread_join(*t, NULL);
		if (e)
			*e = b.e;
		return b.ret;
	}
	return 0;
}

int cli_listen_unix(const char *path, int flags, struct kvmini_error *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	if (n >= sizeof(sa.sun_path))
		return cli_fail(e, KVMINI_EXIT_RESOURCE, ENAMETOOLONG,
				"%s: path longer than 107 bytes", path);
	memcpy(sa.sun_path, path, n + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	if (fd < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, errno, "socket: %s", strerror(errno));
	unlink(path);
	/* 0600 from the start: no moment where another user could connect. */
	mode_t old = umask(0177);
	int ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int err = errno;
	umask(old);
	if (!ret && listen(fd, 128) < 0) {
		ret = -1;
		err = errno;
	}
	if (ret < 0) {
		close(fd);
		return cli_fail(e, KVMINI_EXIT_RESOURCE, err, "cannot listen on %s: %s", path,
				strerror(err));
	}
	return fd;
}

int cli_stop_signalfd(void)
{
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	int fd = signalfd(-1, &sigs, SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

uint64_t cli_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

bool cli_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n < 1 || n > 64 || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (!isalnum(ch) && ch != '_' && ch != '.' && ch != '-')
			return false;
	}
	return true;
}

const char *cli_level_name(int l)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	return l >= 0 && l < 4 ? names[l] : "warn";
}

int cli_parse_size(const char *s, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	unsigned int shift = 0;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end) {
		end++;
		/* Accept "512M", "512MB", "512MiB". */
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

void cli_usage(FILE *f)
{
	fputs("kvmini " KVMINI_VERSION " - a minimal KVM virtual machine monitor\n"
	      "\n"
	      "usage: kvmini run --kernel PATH [OPTIONS]   boot a Linux guest\n"
	      "       kvmini run --help                    options of `run`\n"
	      "       kvmini exec --rootfs DIR -- CMD...   run CMD in a throw-away sandbox VM\n"
	      "       kvmini exec --help                   options of `exec`\n"
	      "       kvmini cp SRC NAME:DST | NAME:SRC DST   copy files to or from a sandbox VM\n"
	      "       kvmini cache list | prune [OPTIONS]  the sandboxes' image cache (--help)\n"
	      "       kvmini --help | --version\n"
	      "Managing VMs by name (see the README):\n",
	      f);
}

void cli_run_usage(FILE *f)
{
	fputs("usage: kvmini run --kernel PATH [OPTIONS]\n"
	      "\n"
	      "  --kernel PATH         Linux bzImage, or ELF vmlinux with a PVH note (required)\n"
	      "  --initrd PATH         initial ramdisk (default: none)\n"
	      "  --cmdline STR         appended to the default kernel command line\n"
	      "  --no-default-cmdline  use --cmdline alone; the default is\n"
	      "                        \"" KVMINI_DEFAULT_CMDLINE "\"\n"
	      "  --mem SIZE            guest RAM, K/M/G suffixes (default: 256M, min 16M)\n"
	      "  --cpus N              vCPUs, 1..64 (default: 1)\n"
	      "  --disk PATH[,ro][,id=SERIAL][,cache=writeback|unsafe][,LIMIT...]\n"
	      "                        raw disk image as virtio-blk (repeatable; /dev/vda, vdb, "
	      "...\n"
	      "                        in order); ro: read-only; id: serial (<= 20 bytes);\n"
	      "                        cache=unsafe: ignore flushes (default: writeback);\n"
	      "                        LIMIT: bw=BYTES/s, iops=N, bw_burst=BYTES, "
	      "iops_burst=N\n"
	      "                        (token buckets; K/M/G suffixes; default: no limit)\n"
	      "  --net tap=NAME[,mac=52:54:00:xx:xx:xx][,LIMIT...]\n"
	      "                        virtio-net on host tap NAME, created if allowed "
	      "(repeatable,\n"
	      "                        up to 4; eth0, eth1, ...); default MAC derived from "
	      "--name;\n"
	      "                        LIMIT: bw=BYTES/s, pps=N, bw_burst=BYTES, pps_burst=N,\n"
	      "                        each direction on its own (default: no limit)\n"
	      "  --vsock cid=N[,uds=PATH] | uds=PATH | on\n"
	      "                        virtio-vsock; guest CID N (3..4294967294, default unique\n"
	      "                        per VM); host programs reach guest port P through unix\n"
	      "                        socket PATH (write \"CONNECT P\\n\", read \"OK ...\\n\"), "
	      "the\n"
	      "                        guest reaches host port P at PATH_P\n"
	      "  --rootfs DIR          boot the sandbox guest (kvmini's kernel and agent unless\n"
	      "                        --kernel/--initrd) on a cached read-only image of DIR,\n"
	      "                        writable in guest memory; with --name, `kvmini exec NAME`\n"
	      "                        runs commands in it (README: Sandboxes)\n"
	      "  --image REF           the same with an image's root: oci:DIR[:TAG] (an OCI\n"
	      "                        layout) or docker-archive:FILE (`docker save`)\n"
	      "  --name NAME           manage the VM by this name: control socket, `kvmini list`\n"
	      "                        ([A-Za-z0-9][A-Za-z0-9_.-]{0,63}; default MAC from it)\n"
	      "  --detach              run in the background: print the name (vmN without\n"
	      "                        --name), exit 0 once the guest runs\n"
	      "  --config FILE.json    settings from a JSON file (schema: README); options\n"
	      "                        given here override it (--disk/--net replace its lists)\n"
	      "  --log-level LEVEL     error, warn, info or debug (default: warn)\n"
	      "  --trace[=CATEGORIES]  one decoded line per event to stderr: exits, virtio, irq,\n"
	      "                        io, comma-separated (default: all)\n"
	      "  --trace-file PATH     write the trace to PATH instead (created or truncated)\n"
	      "  --seccomp MODE        kill (default): a thread's forbidden system call ends\n"
	      "                        kvmini (159); log: the kernel logs it; off: no filter\n"
	      "  --jail DIR --uid UID --gid GID [--netns PATH] [--cgroup PATH\n"
	      "                        [--cpu-max QUOTA/PERIOD] [--memory-max SIZE]]\n"
	      "                        run in new mount, PID, IPC and UTS namespaces (and network\n"
	      "                        namespace PATH), rooted in a tmpfs over the empty "
	      "root-owned\n"
	      "                        DIR with only the VM's files and devices, as UID:GID with\n"
	      "                        no capability (as root; the images must be UID's, a tap\n"
	      "                        must exist and be UID's); --cgroup: in cgroup v2 PATH\n"
	      "                        under /sys/fs/cgroup (made and removed), with cpu.max and\n"
	      "                        memory.max\n"
	      "  -h, --help            this help\n"
	      "\n"
	      "Console: the guest's ttyS0 is on stdin/stdout; Ctrl-A x quits, Ctrl-A Ctrl-A sends "
	      "Ctrl-A.\n"
	      "Arguments after \" -- \" on the kernel command line go to the guest's init.\n"
	      "\n"
	      "Exit status:\n"
	      "  0    the guest rebooted (i8042 reset, e.g. `reboot` with reboot=k), or Ctrl-A x\n"
	      "  1    host-side failure while running\n"
	      "  2    bad command line (unknown option, bad value)\n"
	      "  3    bad input file (missing, not a kernel, truncated, initrd does not fit,\n"
	      "       a disk image missing, a directory or unreadable)\n"
	      "  4    the host cannot provide it (/dev/kvm, a KVM capability, memory, a disk\n"
	      "       image locked by another VM, a busy or forbidden tap, no /dev/net/tun)\n"
	      "  5    the guest crashed (triple fault, unexpected exit)\n"
	      "  6    the --name is taken by a running VM\n"
	      "  128+N  stopped by signal N (SIGINT 130, SIGTERM 143)\n"
	      "  159  a kvmini thread made a system call its seccomp filter forbids\n",
	      f);
}

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_NO_DEFAULT_CMDLINE,
	OPT_MEM,
	OPT_CPUS,
	OPT_NAME,
	OPT_LOG_LEVEL,
	OPT_DISK,
	OPT_NET,
	OPT_TRACE,
	OPT_TRACE_FILE,
	OPT_CONFIG,
	OPT_DETACH,
	OPT_VSOCK,
	OPT_ROOTFS,
	OPT_IMAGE,
	OPT_SECCOMP,
	OPT_JAIL,
	OPT_UID,
	OPT_GID,
	OPT_NETNS,
	OPT_CGROUP,
	OPT_CPU_MAX,
	OPT_MEMORY_MAX,
};

static const struct option cli_run_options[] = {
	{"kernel", required_argument, NULL, OPT_KERNEL},
	{"initrd", required_argument, NULL, OPT_INITRD},
	{"cmdline", required_argument, NULL, OPT_CMDLINE},
	{"no-default-cmdline", no_argument, NULL, OPT_NO_DEFAULT_CMDLINE},
	{"mem", required_argument, NULL, OPT_MEM},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"name", required_argument, NULL, OPT_NAME},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"disk", required_argument, NULL, OPT_DISK},
	{"net", required_argument, NULL, OPT_NET},
	{"trace", optional_argument, NULL, OPT_TRACE},
	{"trace-file", required_argument, NULL, OPT_TRACE_FILE},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"detach", no_argument, NULL, OPT_DETACH},
	{"vsock", required_argument, NULL, OPT_VSOCK},
	{"rootfs", required_argument, NULL, OPT_ROOTFS},
	{"image", required_argument, NULL, OPT_IMAGE},
	{"seccomp", required_argument, NULL, OPT_SECCOMP},
	{"jail", required_argument, NULL, OPT_JAIL},
	{"uid", required_argument, NULL, OPT_UID},
	{"gid", required_argument, NULL, OPT_GID},
	{"netns", required_argument, NULL, OPT_NETNS},
	{"cgroup", required_argument, NULL, OPT_CGROUP},
	{"cpu-max", required_argument, NULL, OPT_CPU_MAX},
	{"memory-max", required_argument, NULL, OPT_MEMORY_MAX},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

int cli_fail(struct kvmini_error *e, int status, int err, const char *fmt, ...)
{
	if (e && !e->status) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
		e->status = status;
	}
	return -(err ? err : EINVAL);
}

static int cli_usage_error(struct kvmini_error *e, const char *what)
{
	return cli_fail(e, KVMINI_EXIT_USAGE, EINVAL, "%s; see 'kvmini run --help'", what);
}

int cli_parse_level(const char *s)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	if (strcmp(s, "warning") == 0)
		return KVMINI_LOG_WARN;
	return -EINVAL;
}

int cli_parse_cpu_max(const char *s, uint64_t *quota, uint64_t *period)
{
	char *end;
	errno = 0;
	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	unsigned long long q = strtoull(s, &end, 10), p = 100000;
	if (*end == '/') {
		const char *ps = end + 1;
		if (!isdigit((unsigned char)*ps))
			return -EINVAL;
		p = strtoull(ps, &end, 10);
	}
	/* cgroup v2 takes periods of 1 ms to 1 s and quotas of at least 1 ms. */
	if (*end || errno || q < 1000 || p < 1000 || p > 1000000 || q > 1000000ULL * 1000000ULL)
		return -EINVAL;
	*quota = q;
	*period = p;
	return 0;
}

int cli_limit_key(struct kvmini_rate_limit *l, const char *ops, const char *key, const char *value)
{
	char burst[32];
	snprintf(burst, sizeof(burst), "%s_burst", ops);
	uint64_t *slot = !strcmp(key, "bw")	    ? &l->bytes_per_s
			 : !strcmp(key, "bw_burst") ? &l->bytes_burst
			 : !strcmp(key, ops)	    ? &l->ops_per_s
			 : !strcmp(key, burst)	    ? &l->ops_burst
						    : NULL;
	if (!slot)
		return 0;
	uint64_t v;
	if (cli_parse_size(value, &v) < 0)
		return -EINVAL;
	*slot = v;
	return 1;
}

struct cli_limit_ctx {
	struct kvmini_rate_limit *l;
	const char *ops;    /* "iops" or "pps" */
	const char *option; /* "--disk" or "--net" */
	struct kvmini_error *e;
};

/* `o` (KEY=VALUE) as a rate-limit key of --disk or --net: 1 taken, 0 not one, <0 refused. */
static int cli_limit_opt(struct cli_limit_ctx *x, const char *o)
{
	const char *eq = strchr(o, '=');
	char key[32];
	if (!eq || (size_t)(eq - o) >= sizeof(key))
		return 0;
	memcpy(key, o, (size_t)(eq - o));
	key[eq - o] = '\0';
	int r = cli_limit_key(x->l, x->ops, key, eq + 1);
	if (r < 0) {
		char msg[CLI_ARG_MAX + 100];
		snprintf(msg, sizeof(msg),
			 "%s %s '%s' is not a rate (digits with an optional K, M, G or T)",
			 x->option, key, eq + 1);
		return cli_usage_error(x->e, msg);
	}
	return r;
}

/*
 * Parse one --disk PATH[,ro][,id=SERIAL][,cache=writeback|unsafe] into the next disk slot.
 * The option text is copied into `c`, which the vblk_config strings then point into.
 */
static int cli_parse_disk(struct cli *c, const char *arg, struct kvmini_error *e)
{
	char msg[CLI_ARG_MAX + 100];
	if (c->nr_disks + c->nr_nets >= KVMINI_MAX_VIRTIO)
		return cli_usage_error(e,
				       "too many --disk/--net options: at most 8 virtio devices");
	if (strlen(arg) >= CLI_ARG_MAX)
		return cli_usage_error(e, "--disk value is too long");
	char *buf = c->disk_arg[c->nr_disks];
	strcpy(buf, arg);
	struct cli_disk *d = &c->disk[c->nr_disks];
	memset(d, 0, sizeof(*d));

	char *save = NULL;
	char *path = strtok_r(buf, ",", &save);
	if (!path || buf[0] == ',') {
		snprintf(msg, sizeof(msg), "--disk '%s' needs an image path first", arg);
		return cli_usage_error(e, msg);
	}
	d->path = path;
	for (char *o = strtok_r(NULL, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (!strcmp(o, "ro")) {
			d->readonly = true;
		} else if (!strncmp(o, "id=", 3)) {
			if (strlen(o + 3) > KVMINI_DISK_SERIAL_MAX) {
				snprintf(msg, sizeof(msg), "--disk id '%s' is longer than %d bytes",
					 o + 3, KVMINI_DISK_SERIAL_MAX);
				return cli_usage_error(e, msg);
			}
			d->serial = o + 3;
		} else if (!strcmp(o, "cache=writeback")) {
			d->cache_unsafe = false;
		} else if (!strcmp(o, "cache=unsafe")) {
			d->cache_unsafe = true;
		} else {
			struct cli_limit_ctx lx = {&d->limit, "iops", "--disk", e};
			int r = cli_limit_opt(&lx, o);
			if (r < 0)
				return r;
			if (r)
				continue;
			snprintf(msg, sizeof(msg),
				 "--disk option '%s' is unknown (ro, id=SERIAL, "
				 "cache=writeback|unsafe, bw=RATE, iops=N, bw_burst=BYTES, "
				 "iops_burst=N)",
				 o);
			return cli_usage_error(e, msg);
		}
	}
	c->nr_disks++;
	return 0;
}

/* Parse one --net tap=NAME[,mac=52:54:00:xx:xx:xx] into the next network slot. */
static int cli_parse_net(struct cli *c, const char *arg, struct kvmini_error *e)
{
	char msg[CLI_ARG_MAX + 100];
	if (c->nr_disks + c->nr_nets >= KVMINI_MAX_VIRTIO)
		return cli_usage_error(e,
				       "too many --disk/--net options: at most 8 virtio devices");
	if (c->nr_nets >= KVMINI_MAX_NETS)
		return cli_usage_error(e, "too many --net options: at most 4");
	if (strlen(arg) >= CLI_ARG_MAX)
		return cli_usage_error(e, "--net value is too long");
	char *buf = c->net_arg[c->nr_nets];
	strcpy(buf, arg);
	struct cli_net *n = &c->net[c->nr_nets];
	memset(n, 0, sizeof(*n));

	char *save = NULL;
	for (char *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (!strncmp(o, "tap=", 4)) {
			n->tap = o[4] ? o + 4 : NULL; /* empty: refused below */
		} else if (!strncmp(o, "mac=", 4)) {
			n->mac = o + 4; /* checked by kvmini_config_add_net */
		} else {
			struct cli_limit_ctx lx = {&n->limit, "pps", "--net", e};
			int r = cli_limit_opt(&lx, o);
			if (r < 0)
				return r;
			if (r)
				continue;
			snprintf(msg, sizeof(msg),
				 "--net option '%s' is unknown (tap=NAME, mac=xx:xx:xx:xx:xx:xx, "
				 "bw=RATE, pps=N, bw_burst=BYTES, pps_burst=N)",
				 o);
			return cli_usage_error(e, msg);
		}
	}
	if (!n->tap) {
		snprintf(msg, sizeof(msg), "--net '%s' needs tap=NAME", arg);
		return cli_usage_error(e, msg);
	}
	c->nr_nets++;
	return 0;
}

/* Parse --vsock cid=N[,uds=PATH] | uds=PATH | on (the defaults: a unique CID, no socket). */
static int cli_parse_vsock(struct cli *c, const char *arg, struct kvmini_error *e)
{
	char msg[CLI_ARG_MAX + 100];
	c->vsock = true;
	c->vsock_cid = 0;
	c->vsock_uds = NULL;
	if (!strcmp(arg, "on"))
		return 0;
	if (strlen(arg) >= CLI_ARG_MAX)
		return cli_usage_error(e, "--vsock value is too long");
	strcpy(c->vsock_arg, arg);
	char *save = NULL;
	for (char *o = strtok_r(c->vsock_arg, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (!strncmp(o, "cid=", 4)) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(o + 4, &end, 10);
			if (!isdigit((unsigned char)o[4]) || *end || errno ||
			    v < CLI_VSOCK_CID_MIN || v > CLI_VSOCK_CID_MAX) {
				snprintf(msg, sizeof(msg),
					 "--vsock cid '%s' must be a number from %llu to %llu",
					 o + 4, CLI_VSOCK_CID_MIN, CLI_VSOCK_CID_MAX);
				return cli_usage_error(e, msg);
			}
			c->vsock_cid = v;
		} else if (!strncmp(o, "uds=", 4) && o[4]) {
			c->vsock_uds = o + 4;
		} else {
			snprintf(msg, sizeof(msg),
				 "--vsock option '%s' is unknown (cid=N, uds=PATH, or on)", o);
			return cli_usage_error(e, msg);
		}
	}
	return 0;
}

static int cli_parse_run(struct cli *c, int argc, char **argv, struct kvmini_error *e)
{
	char msg[300];
	uint64_t v;
	char *end;
	int opt;

	optind = 0; /* full re-initialisation of getopt (glibc), so parsing can be repeated */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:h", cli_run_options, NULL)) != -1) {
		switch (opt) {
		case OPT_KERNEL:
			c->kernel = optarg;
			break;
		case OPT_INITRD:
			c->initrd = optarg;
			break;
		case OPT_CMDLINE:
			c->cmdline = optarg;
			break;
		case OPT_NO_DEFAULT_CMDLINE:
			c->no_default_cmdline = true;
			break;
		case OPT_MEM:
			if (cli_parse_size(optarg, &v) < 0) {
				snprintf(msg, sizeof(msg),
					 "--mem '%s' is not a size (examples: 512M, 2G)", optarg);
				return cli_usage_error(e, msg);
			}
			if (v < KVMINI_MIN_MEM) {
				snprintf(msg, sizeof(msg), "--mem %s is too small: at least 16M",
					 optarg);
				return cli_usage_error(e, msg);
			}
			if (v > KVMINI_MAX_MEM) {
				return cli_fail(e, KVMINI_EXIT_RESOURCE, EINVAL,
						"--mem %s is more than kvmini supports (1T)",
						optarg);
			}
			/* Whole pages; KVM maps memory by the page. */
			c->mem_size = (v + 0xfff) & ~0xfffULL;
			break;
		case OPT_CPUS:
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (!isdigit((unsigned char)optarg[0]) || *end || errno || v < 1 ||
			    v > KVMINI_MAX_CPUS) {
				snprintf(msg, sizeof(msg),
					 "--cpus '%s' must be a number from 1 to %d", optarg,
					 KVMINI_MAX_CPUS);
				return cli_usage_error(e, msg);
			}
			c->cpus = (unsigned int)v;
			break;
		case OPT_DISK: {
			if (c->disks_from_file) { /* the command line's list replaces the file's */
				c->nr_disks = 0;
				c->disks_from_file = false;
			}
			int ret = cli_parse_disk(c, optarg, e);
			if (ret < 0)
				return ret;
			break;
		}
		case OPT_NET: {
			if (c->nets_from_file) {
				c->nr_nets = 0;
				c->nets_from_file = false;
			}
			int ret = cli_parse_net(c, optarg, e);
			if (ret < 0)
				return ret;
			break;
		}
		case OPT_NAME:
			if (!cli_name_ok(optarg)) {
				snprintf(msg, sizeof(msg),
					 "--name '%.100s' must be 1..64 letters, digits, '_', '.' "
					 "or '-', starting with a letter or digit",
					 optarg);
				return cli_usage_error(e, msg);
			}
			c->name = optarg;
			c->name_set = true;
			break;
		case OPT_CONFIG:
			/* Read before this loop, when spelt out; an abbreviation was not. */
			if (optarg != c->config_file)
				return cli_usage_error(e,
						       "write --config in full (--config FILE or "
						       "--config=FILE)");
			break;
		case OPT_DETACH:
			c->detach = true;
			break;
		case OPT_IMAGE:
			if (!*optarg)
				return cli_usage_error(e, "--image must not be empty");
			c->image = optarg;
			break;
		case OPT_ROOTFS:
			if (!*optarg)
				return cli_usage_error(e, "--rootfs must not be empty");
			c->rootfs = optarg;
			break;
		case OPT_VSOCK: {
			int ret = cli_parse_vsock(c, optarg, e);
			if (ret < 0)
				return ret;
			break;
		}
		case OPT_LOG_LEVEL: {
			int l = cli_parse_level(optarg);
			if (l < 0) {
				snprintf(msg, sizeof(msg),
					 "--log-level '%s' must be error, warn, info or debug",
					 optarg);
				return cli_usage_error(e, msg);
			}
			c->log_level = l;
			break;
		}
		case OPT_TRACE: {
			c->trace = KVMINI_TRACE_ALL;
			struct kvmini_error te = {0};
			if (optarg && kvmini_trace_parse(optarg, &c->trace, &te) < 0)
				return cli_usage_error(e, te.msg);
			break;
		}
		case OPT_SECCOMP: {
			struct kvmini_error se = {0};
			if (kvmini_seccomp_parse(optarg, &c->seccomp, &se) < 0)
				return cli_usage_error(e, se.msg);
			break;
		}
		case OPT_JAIL:
			if (!*optarg)
				return cli_usage_error(e, "--jail must not be empty");
			c->jail = optarg;
			break;
		case OPT_UID:
		case OPT_GID: {
			char *idend;
			errno = 0;
			unsigned long id = strtoul(optarg, &idend, 10);
			if (!isdigit((unsigned char)optarg[0]) || *idend || errno || id == 0 ||
			    id >= 0xffffffffUL) {
				snprintf(msg, sizeof(msg),
					 "--%s '%s' is not a numeric id other than 0",
					 opt == OPT_UID ? "uid" : "gid", optarg);
				return cli_usage_error(e, msg);
			}
			*(opt == OPT_UID ? &c->jail_uid : &c->jail_gid) = (unsigned int)id;
			break;
		}
		case OPT_NETNS:
			if (!*optarg)
				return cli_usage_error(e, "--netns must not be empty");
			c->jail_netns = optarg;
			break;
		case OPT_CGROUP:
			if (!*optarg || strstr(optarg, "..") || optarg[strlen(optarg) - 1] == '/')
				return cli_usage_error(e,
						       "--cgroup takes a path under /sys/fs/cgroup "
						       "without '..' (kvmini/vm1)");
			c->jail_cgroup = optarg;
			break;
		case OPT_CPU_MAX:
			if (cli_parse_cpu_max(optarg, &c->jail_cpu_quota, &c->jail_cpu_period) <
			    0) {
				snprintf(msg, sizeof(msg),
					 "--cpu-max '%s' is not QUOTA/PERIOD in microseconds "
					 "(50000/100000: half a CPU)",
					 optarg);
				return cli_usage_error(e, msg);
			}
			break;
		case OPT_MEMORY_MAX:
			if (cli_parse_size(optarg, &c->jail_memory_max) < 0 ||
			    !c->jail_memory_max) {
				snprintf(msg, sizeof(msg), "--memory-max '%s' is not a size (512M)",
					 optarg);
				return cli_usage_error(e, msg);
			}
			break;
		case OPT_TRACE_FILE:
			if (!*optarg)
				return cli_usage_error(e, "--trace-file must not be empty");
			c->trace_file = optarg;
			if (!c->trace)
				c->trace = KVMINI_TRACE_ALL;
			break;
		case 'h':
			c->action = CLI_RUN_HELP;
			return 0;
		case ':':
			snprintf(msg, sizeof(msg), "option '%s' needs a value", argv[optind - 1]);
			return cli_usage_error(e, msg);
		default:
			snprintf(msg, sizeof(msg), "unknown option '%s'", argv[optind - 1]);
			return cli_usage_error(e, msg);
		}
	}
	if (optind < argc) {
		snprintf(msg, sizeof(msg), "unexpected argument '%s'", argv[optind]);
		return cli_usage_error(e, msg);
	}
	if (c->rootfs && c->image)
		return cli_usage_error(e, "--rootfs and --image exclude each other");
	if (!c->jail && (c->jail_uid || c->jail_gid || c->jail_netns || c->jail_cgroup))
		return cli_usage_error(e, "--uid, --gid, --netns and --cgroup go with --jail DIR");
	if (!c->jail_cgroup && (c->jail_cpu_quota || c->jail_memory_max))
		return cli_usage_error(e, "--cpu-max and --memory-max go with --cgroup PATH");
	if (!c->kernel && !c->rootfs && !c->image)
		return cli_usage_error(e, "--kernel PATH is required (or \"kernel\" in --config, "
					  "or --rootfs DIR)");
	return 0;
}

/* --config FILE is read first, so that every other option overrides what it sets. */
static int cli_load_config(struct cli *c, int argc, char **argv, struct kvmini_error *e)
{
	for (int i = 1; i < argc; i++) {
		const char *file = NULL;
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			file = argv[++i];
		else if (!strncmp(argv[i], "--config=", 9))
			file = argv[i] + 9;
		if (!file)
			continue;
		if (c->config_file)
			return cli_usage_error(e, "--config given twice");
		c->config_file = file;
		int ret = vmconf_load(c, file, e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Turn a library error into the CLI's: same status, the message names the option. */
static int cli_lib(int ret, struct kvmini_error *e, const struct kvmini_error *le,
		   const char *option)
{
	if (ret >= 0)
		return 0;
	cli_fail(e, le->status ? le->status : KVMINI_EXIT_USAGE, EINVAL, "%s%s%s",
		 option ? option : "", option ? ": " : "", le->msg);
	return ret;
}

int cli_apply(const struct cli *c, struct kvmini_config *cfg, int trace_fd, struct kvmini_error *e)
{
	struct kvmini_error le = {0};
	int ret = cli_lib(kvmini_config_set_kernel(cfg, c->kernel, &le), e, &le, "--kernel");
	if (!ret && c->initrd)
		ret = cli_lib(kvmini_config_set_initrd(cfg, c->initrd, &le), e, &le, "--initrd");
	if (!ret)
		ret = cli_lib(
			kvmini_config_set_cmdline(cfg, c->cmdline, c->no_default_cmdline, &le), e,
			&le, "--cmdline");
	if (!ret)
		ret = cli_lib(kvmini_config_set_memory(cfg, c->mem_size, &le), e, &le, "--mem");
	if (!ret)
		ret = cli_lib(kvmini_config_set_cpus(cfg, c->cpus, &le), e, &le, "--cpus");
	if (!ret)
		ret = cli_lib(kvmini_config_set_name(cfg, c->name, &le), e, &le, "--name");
	for (unsigned int i = 0; !ret && i < c->nr_disks; i++) {
		const struct cli_disk *d = &c->disk[i];
		unsigned int flags = (d->readonly ? KVMINI_DISK_READONLY : 0) |
				     (d->cache_unsafe ? KVMINI_DISK_CACHE_UNSAFE : 0);
		ret = cli_lib(kvmini_config_add_disk(cfg, d->path, flags, d->serial, &le), e, &le,
			      "--disk");
		if (!ret)
			ret = cli_lib(kvmini_config_set_disk_limit(cfg, i, &d->limit, &le), e, &le,
				      "--disk");
	}
	for (unsigned int i = 0; !ret && i < c->nr_nets; i++) {
		ret = cli_lib(kvmini_config_add_net(cfg, c->net[i].tap, c->net[i].mac, &le), e, &le,
			      "--net");
		if (!ret)
			ret = cli_lib(kvmini_config_set_net_limit(cfg, i, &c->net[i].limit, &le), e,
				      &le, "--net");
	}
	if (!ret && c->vsock)
		ret = cli_lib(kvmini_config_set_vsock(cfg, c->vsock_cid, c->vsock_uds, &le), e, &le,
			      "--vsock");
	if (!ret)
		ret = cli_lib(kvmini_config_set_console_fds(cfg, STDIN_FILENO, STDOUT_FILENO, &le),
			      e, &le, NULL);
	if (!ret)
		ret = cli_lib(
			kvmini_config_set_log(cfg, c->log_level, NULL, NULL, STDERR_FILENO, &le), e,
			&le, "--log-level");
	if (!ret && c->trace)
		ret = cli_lib(kvmini_config_set_trace(cfg, c->trace, trace_fd, &le), e, &le,
			      "--trace");
	if (!ret)
		ret = cli_lib(kvmini_config_set_seccomp(cfg, c->seccomp, &le), e, &le, "--seccomp");
	return ret;
}

int cli_parse(struct cli *c, int argc, char **argv, struct kvmini_error *e)
{
	cli_defaults(c);

	if (argc < 2)
		return cli_usage_error(e, "no command given (try 'kvmini run --kernel PATH')");
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		c->action = CLI_HELP;
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		c->action = CLI_VERSION;
		return 0;
	}
	if (strcmp(cmd, "run") != 0) {
		char msg[300];
		snprintf(msg, sizeof(msg), "unknown command or option '%s'", cmd);
		return cli_fail(e, KVMINI_EXIT_USAGE, EINVAL, "%s; see 'kvmini --help'", msg);
	}
	int ret = cli_load_config(c, argc - 1, argv + 1, e);
	return ret < 0 ? ret : cli_parse_run(c, argc - 1, argv + 1, e);
}
