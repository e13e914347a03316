/* kvmini: the public API (include/kvmini.h) over the machine builder: checked configs, VMs. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kvmini.h"
#include "kvmini/agent.h"
#include "kvmini/boottimer.h"
#include "kvmini/gmem.h"
#include "kvmini/host.h"
#include "kvmini/trace.h"
#include "kvmini/vm.h"

/* A configuration owns copies of every string it was given. */
struct kvmini_config {
	struct vm_config vm;
	char *kernel, *initrd, *cmdline, *name, *kvm_path;
	char *disk_path[VM_MAX_VIRTIO];
	char disk_serial[VM_MAX_VIRTIO][VBLK_SERIAL_MAX + 1];
	char *tap[VM_MAX_NETS];
	char *vsock_uds;
};

/* Virtio slots a config uses so far. */
static unsigned int kvmini_nr_virtio(const struct kvmini_config *c)
{
	return c->vm.nr_disks + c->vm.nr_nets + (c->vm.vsock ? 1 : 0);
}

struct kvmini_vm {
	struct vm *vm;
};

static int kvmini_fail(struct kvmini_error *err, int status, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int kvmini_fail(struct kvmini_error *err, int status, int errnum, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->status = status;
	}
	return -(errnum ? errnum : EINVAL);
}

/* Copy a vmerr into the caller's error object. */
static int kvmini_from_vmerr(struct kvmini_error *err, const struct vmerr *e, int ret)
{
	if (err) {
		err->status = e->status ? e->status : KVMINI_EXIT_HOST;
		snprintf(err->msg, sizeof(err->msg), "%s", e->msg);
	}
	return ret;
}

#define KVMINI_CHECK(cond, err, what)                                                   \
	do {                                                                            \
		if (!(cond))                                                            \
			return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL, "%s", what); \
	} while (0)

const char *kvmini_version(void)
{
	return KVMINI_VERSION;
}

const char *kvmini_state_name(int state)
{
	switch (state) {
	case KVMINI_STATE_CREATED:
		return "created";
	case KVMINI_STATE_RUNNING:
		return "running";
	case KVMINI_STATE_PAUSED:
		return "paused";
	case KVMINI_STATE_STOPPED:
		return "stopped";
	default:
		return NULL;
	}
}

int kvmini_config_new(struct kvmini_config **out)
{
	if (!out)
		return -EINVAL;
	struct kvmini_config *c = calloc(1, sizeof(*c));
	*out = c;
	if (!c)
		return -ENOMEM;
	c->vm.mem_size = KVMINI_DEFAULT_MEM;
	c->vm.cpus = 1;
	c->vm.name = "kvmini";
	c->vm.log_level = LOG_WARN;
	c->vm.log_fd = -1;
	c->vm.console_in = -1;
	c->vm.console_out = -1;
	c->vm.trace_fd = -1;
	return 0;
}

void kvmini_config_free(struct kvmini_config **cp)
{
	if (!cp || !*cp)
		return;
	struct kvmini_config *c = *cp;
	free(c->kernel);
	free(c->initrd);
	free(c->cmdline);
	free(c->name);
	free(c->kvm_path);
	free(c->vsock_uds);
	for (unsigned int i = 0; i < VM_MAX_VIRTIO; i++)
		free(c->disk_path[i]);
	for (unsigned int i = 0; i < VM_MAX_NETS; i++)
		free(c->tap[i]);
	free(c);
	*cp = NULL;
}

/* Replace *slot with a copy of `s` (NULL clears it). */
static int kvmini_set_str(char **slot, const char **field, const char *s, struct kvmini_error *err)
{
	char *copy = NULL;
	if (s) {
		copy = strdup(s);
		if (!copy)
			return kvmini_fail(err, KVMINI_EXIT_HOST, ENOMEM, "out of memory");
	}
	free(*slot);
	*slot = copy;
	*field = copy;
	return 0;
}

int kvmini_config_set_kernel(struct kvmini_config *c, const char *path, struct kvmini_error *err)
{
	KVMINI_CHECK(c && path && *path, err, "the kernel path must not be empty");
	return kvmini_set_str(&c->kernel, &c->vm.kernel, path, err);
}

int kvmini_config_set_initrd(struct kvmini_config *c, const char *path, struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	KVMINI_CHECK(!path || *path, err, "the initrd path must not be empty");
	return kvmini_set_str(&c->initrd, &c->vm.initrd, path, err);
}

int kvmini_config_set_cmdline(struct kvmini_config *c, const char *cmdline, int replace_default,
			      struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	c->vm.no_default_cmdline = replace_default != 0;
	return kvmini_set_str(&c->cmdline, &c->vm.cmdline, cmdline, err);
}

int kvmini_config_set_memory(struct kvmini_config *c, uint64_t bytes, struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	if (bytes < KVMINI_MIN_MEM)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL,
				   "guest memory of %llu bytes is too small: at least 16M",
				   (unsigned long long)bytes);
	if (bytes > KVMINI_MAX_MEM)
		return kvmini_fail(err, KVMINI_EXIT_RESOURCE, ERANGE,
				   "guest memory of %llu MiB is more than kvmini supports (1T)",
				   (unsigned long long)(bytes >> 20));
	c->vm.mem_size = (bytes + 0xfff) & ~0xfffULL; /* whole pages: KVM maps by the page */
	return 0;
}

int kvmini_config_set_cpus(struct kvmini_config *c, unsigned int cpus, struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	if (cpus < 1 || cpus > KVMINI_MAX_CPUS)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL,
				   "%u vCPUs: the count must be from 1 to %d", cpus,
				   KVMINI_MAX_CPUS);
	c->vm.cpus = cpus;
	return 0;
}

int kvmini_config_set_name(struct kvmini_config *c, const char *name, struct kvmini_error *err)
{
	KVMINI_CHECK(c && name && *name, err, "the VM name must not be empty");
	return kvmini_set_str(&c->name, &c->vm.name, name, err);
}

int kvmini_config_add_disk(struct kvmini_config *c, const char *path, unsigned int flags,
			   const char *serial, struct kvmini_error *err)
{
	KVMINI_CHECK(c && path && *path, err, "a disk needs an image path");
	if (kvmini_nr_virtio(c) >= VM_MAX_VIRTIO)
		return kvmini_fail(
			err, KVMINI_EXIT_USAGE, ENOSPC,
			"too many disks, network cards and vsock: at most %d virtio devices",
			VM_MAX_VIRTIO);
	if (flags & ~(unsigned int)(KVMINI_DISK_READONLY | KVMINI_DISK_CACHE_UNSAFE))
		return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL, "unknown disk flags 0x%x",
				   flags);
	if (serial && strlen(serial) > KVMINI_DISK_SERIAL_MAX)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL,
				   "disk serial '%s' is longer than %d bytes", serial,
				   KVMINI_DISK_SERIAL_MAX);
	unsigned int i = c->vm.nr_disks;
	struct vblk_config *d = &c->vm.disk[i];
	memset(d, 0, sizeof(*d));
	int ret = kvmini_set_str(&c->disk_path[i], &d->path, path, err);
	if (ret < 0)
		return ret;
	d->readonly = flags & KVMINI_DISK_READONLY;
	d->cache = flags & KVMINI_DISK_CACHE_UNSAFE ? VBLK_CACHE_UNSAFE : VBLK_CACHE_WRITEBACK;
	if (serial) {
		snprintf(c->disk_serial[i], sizeof(c->disk_serial[i]), "%s", serial);
		d->serial = c->disk_serial[i];
	}
	c->vm.nr_disks++;
	return 0;
}

static void kvmini_spec(struct ratelimit_spec *s, const struct kvmini_rate_limit *l)
{
	*s = (struct ratelimit_spec){0};
	if (l)
		*s = (struct ratelimit_spec){.bytes_per_s = l->bytes_per_s,
					     .bytes_burst = l->bytes_burst,
					     .ops_per_s = l->ops_per_s,
					     .ops_burst = l->ops_burst};
}

static void kvmini_public_limit(struct kvmini_rate_limit *l, const struct ratelimit_spec *s)
{
	*l = (struct kvmini_rate_limit){.bytes_per_s = s->bytes_per_s,
					.bytes_burst = s->bytes_burst,
					.ops_per_s = s->ops_per_s,
					.ops_burst = s->ops_burst};
}

int kvmini_config_set_disk_limit(struct kvmini_config *c, unsigned int index,
				 const struct kvmini_rate_limit *limit, struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	if (index >= c->vm.nr_disks)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, ENOENT,
				   "no disk %u to limit (%u added so far)", index, c->vm.nr_disks);
	kvmini_spec(&c->vm.disk[index].limit, limit);
	return 0;
}

int kvmini_config_set_net_limit(struct kvmini_config *c, unsigned int index,
				const struct kvmini_rate_limit *limit, struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	if (index >= c->vm.nr_nets)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, ENOENT,
				   "no network card %u to limit (%u added so far)", index,
				   c->vm.nr_nets);
	kvmini_spec(&c->vm.net[index].limit, limit);
	return 0;
}

int kvmini_config_add_net(struct kvmini_config *c, const char *tap, const char *mac,
			  struct kvmini_error *err)
{
	KVMINI_CHECK(c && tap && *tap, err, "a network card needs a tap name");
	if (kvmini_nr_virtio(c) >= VM_MAX_VIRTIO)
		return kvmini_fail(
			err, KVMINI_EXIT_USAGE, ENOSPC,
			"too many disks, network cards and vsock: at most %d virtio devices",
			VM_MAX_VIRTIO);
	if (c->vm.nr_nets >= VM_MAX_NETS)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, ENOSPC,
				   "too many network cards: at most %d", VM_MAX_NETS);
	unsigned int i = c->vm.nr_nets;
	struct vnet_config *n = &c->vm.net[i];
	memset(n, 0, sizeof(*n));
	if (mac) {
		if (vnet_parse_mac(mac, n->mac) < 0)
			return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL,
					   "MAC '%s' is not a unicast MAC address (example: "
					   "52:54:00:12:34:56)",
					   mac);
		n->mac_set = true;
	}
	int ret = kvmini_set_str(&c->tap[i], &n->tap, tap, err);
	if (ret < 0)
		return ret;
	c->vm.nr_nets++;
	return 0;
}

int kvmini_config_set_vsock(struct kvmini_config *c, uint64_t cid, const char *uds_path,
			    struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	if (cid && (cid < VSOCK_MIN_CID || cid > VSOCK_MAX_CID))
		return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL,
				   "vsock CID %llu is reserved or too big: use %u to %u",
				   (unsigned long long)cid, VSOCK_MIN_CID, VSOCK_MAX_CID);
	if (!c->vm.vsock && kvmini_nr_virtio(c) >= VM_MAX_VIRTIO)
		return kvmini_fail(
			err, KVMINI_EXIT_USAGE, ENOSPC,
			"too many disks, network cards and vsock: at most %d virtio devices",
			VM_MAX_VIRTIO);
	if (uds_path && !*uds_path)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL,
				   "the vsock socket path is empty");
	int ret = kvmini_set_str(&c->vsock_uds, &c->vm.vsock_cfg.uds_path, uds_path, err);
	if (ret < 0)
		return ret;
	c->vm.vsock_cfg.cid = cid;
	/* The agent knocks on this host port once it listens (kvmini_agent_connect). */
	c->vm.vsock_cfg.ready_port = KVMINI_AGENT_PORT;
	c->vm.vsock = true;
	return 0;
}

int kvmini_config_set_console_fds(struct kvmini_config *c, int in_fd, int out_fd,
				  struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	KVMINI_CHECK(in_fd >= -1 && out_fd >= -1, err, "console fds must be >= 0, or -1");
	c->vm.console_in = in_fd;
	c->vm.console_out = out_fd;
	return 0;
}

int kvmini_config_set_console_callback(struct kvmini_config *c, kvmini_console_fn fn, void *opaque,
				       struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	c->vm.console_fn = fn;
	c->vm.console_opaque = opaque;
	return 0;
}

int kvmini_config_set_log(struct kvmini_config *c, int level, kvmini_log_fn fn, void *opaque,
			  int fd, struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	if (level < KVMINI_LOG_ERROR || level > KVMINI_LOG_DEBUG)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL,
				   "log level %d is not one of KVMINI_LOG_ERROR..DEBUG", level);
	KVMINI_CHECK(fd >= -1, err, "the log fd must be >= 0, or -1");
	c->vm.log_level = level;
	c->vm.log_fn = fn;
	c->vm.log_opaque = opaque;
	c->vm.log_fd = fd;
	return 0;
}

int kvmini_config_set_trace(struct kvmini_config *c, unsigned int categories, int fd,
			    struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	if (categories & ~(unsigned int)KVMINI_TRACE_ALL)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL, "unknown trace categories 0x%x",
				   categories);
	KVMINI_CHECK(!categories || fd >= 0, err, "tracing needs an fd to write to");
	c->vm.trace_mask = categories;
	c->vm.trace_fd = fd;
	return 0;
}

int kvmini_trace_parse(const char *text, unsigned int *categories, struct kvmini_error *err)
{
	KVMINI_CHECK(text && categories, err, "no trace categories given");
	char bad[64];
	if (trace_parse(text, categories, bad, sizeof(bad)) < 0)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL,
				   "unknown trace category '%s' (exits, virtio, irq, io or all)",
				   bad);
	return 0;
}

int kvmini_config_set_kick_signal(struct kvmini_config *c, int signo, struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	if (signo < SIGRTMIN || signo > SIGRTMAX)
		return kvmini_fail(
			err, KVMINI_EXIT_USAGE, EINVAL,
			"%d cannot be the kick signal: use a real-time signal, SIGRTMIN to "
			"SIGRTMAX",
			signo);
	c->vm.kick_signal = signo;
	return 0;
}

int kvmini_seccomp_parse(const char *text, int *mode, struct kvmini_error *err)
{
	int m = text ? confine_parse_mode(text) : -EINVAL;
	if (m < 0)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL,
				   "--seccomp '%s' must be off, log or kill", text ? text : "");
	*mode = m;
	return 0;
}

int kvmini_config_set_seccomp(struct kvmini_config *c, int mode, struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	int m = mode & ~KVMINI_SECCOMP_CONSOLE_FILES;
	KVMINI_CHECK(m >= KVMINI_SECCOMP_OFF && m <= KVMINI_SECCOMP_KILL, err,
		     "the seccomp mode must be off, log or kill");
	c->vm.seccomp = m;
	c->vm.seccomp_console_files = (mode & KVMINI_SECCOMP_CONSOLE_FILES) != 0;
	return 0;
}

int kvmini_config_set_start_time(struct kvmini_config *c, uint64_t monotonic_ns,
				 struct kvmini_error *err)
{
	KVMINI_CHECK(c, err, "no configuration");
	c->vm.start_ns = monotonic_ns;
	return 0;
}

int kvmini_config_set_kvm_path(struct kvmini_config *c, const char *path, struct kvmini_error *err)
{
	KVMINI_CHECK(c && path && *path, err, "the KVM device path must not be empty");
	return kvmini_set_str(&c->kvm_path, &c->vm.kvm_path, path, err);
}

int kvmini_vm_create(const struct kvmini_config *c, struct kvmini_vm **out,
		     struct kvmini_error *err)
{
	if (out)
		*out = NULL;
	KVMINI_CHECK(c && out, err, "kvmini_vm_create needs a configuration and a result");
	KVMINI_CHECK(c->vm.kernel, err, "no kernel configured (kvmini_config_set_kernel)");
	struct vmerr e = {0};
	int ret = host_check_memory(c->vm.mem_size, &e);
	if (ret < 0)
		return kvmini_from_vmerr(err, &e, ret);
	struct kvmini_vm *h = calloc(1, sizeof(*h));
	if (!h)
		return kvmini_fail(err, KVMINI_EXIT_HOST, ENOMEM, "cannot allocate the VM");
	struct vm_config vc = c->vm;
	/* The test hook (kvmini_config_set_seccomp): a kind whose threads misbehave. */
	const char *probe = getenv("KVMINI_SECCOMP_PROBE");
	for (int k = 0; probe && k < CONFINE_KINDS; k++)
		if (!strcmp(probe, confine_kind_name(k)))
			vc.seccomp_probe = (unsigned int)k + 1;
	ret = vm_create(&h->vm, &vc, &e);
	if (ret < 0) {
		free(h);
		return kvmini_from_vmerr(err, &e, ret);
	}
	*out = h;
	return 0;
}

int kvmini_vm_start(struct kvmini_vm *h, struct kvmini_error *err)
{
	KVMINI_CHECK(h, err, "no VM");
	struct vmerr e = {0};
	int ret = vm_start(h->vm, &e);
	return ret < 0 ? kvmini_from_vmerr(err, &e, ret) : 0;
}

int kvmini_vm_wait(struct kvmini_vm *h, int timeout_ms, struct kvmini_error *err)
{
	KVMINI_CHECK(h, err, "no VM");
	int ret = vm_wait(h->vm, timeout_ms);
	if (ret == -EINVAL)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL, "the VM was never started");
	if (ret == -ETIMEDOUT)
		return -ETIMEDOUT; /* not a failure: `err` is left alone */
	if (ret < 0)
		return kvmini_fail(err, KVMINI_EXIT_HOST, -ret, "waiting for the VM failed: %s",
				   strerror(-ret));
	return 0;
}

int kvmini_vm_stop_fd(const struct kvmini_vm *h)
{
	return h ? h->vm->stop_fd : -EINVAL;
}

int kvmini_vm_stop(struct kvmini_vm *h, int status, const char *reason)
{
	if (!h || status < 0 || status > 255)
		return -EINVAL;
	int st = vm_state(h->vm);
	if (st == KVMINI_STATE_CREATED || st == KVMINI_STATE_STOPPED)
		return -EINVAL;
	vm_stop(h->vm, status, "%s", reason ? reason : "stopped by the caller");
	return 0;
}

int kvmini_vm_confine_thread(struct kvmini_vm *h, int kind, const char *name,
			     struct kvmini_error *err)
{
	KVMINI_CHECK(h, err, "no VM");
	static const int kinds[] = {CONFINE_CONTROL, CONFINE_EXEC, CONFINE_SERVER};
	KVMINI_CHECK(kind >= 0 && kind < (int)(sizeof(kinds) / sizeof(kinds[0])), err,
		     "unknown thread kind");
	int ret = confine_enter(&h->vm->confine, kinds[kind], name ? name : "kvmini");
	if (ret < 0)
		return kvmini_fail(err, KVMINI_EXIT_HOST, -ret,
				   "cannot install the seccomp filter of the %s thread: %s",
				   name ? name : "kvmini", strerror(-ret));
	return 0;
}

void kvmini_seccomp_report(const void *siginfo, int fd)
{
	confine_report(siginfo, fd);
}

int kvmini_vm_pause(struct kvmini_vm *h, struct kvmini_error *err)
{
	KVMINI_CHECK(h, err, "no VM");
	struct vmerr e = {0};
	int ret = vm_pause(h->vm, &e);
	return ret < 0 ? kvmini_from_vmerr(err, &e, ret) : 0;
}

int kvmini_vm_set_disk_limit(struct kvmini_vm *h, unsigned int index,
			     const struct kvmini_rate_limit *limit, struct kvmini_error *err)
{
	KVMINI_CHECK(h, err, "no VM");
	if (index >= VM_MAX_VIRTIO || !h->vm->blk[index])
		return kvmini_fail(err, KVMINI_EXIT_USAGE, ENOENT, "the VM has no disk %u", index);
	struct ratelimit_spec s;
	kvmini_spec(&s, limit);
	if (vblk_set_limit(h->vm->blk[index], &s) < 0)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL,
				   "disk %u no longer runs: its limit cannot change", index);
	return 0;
}

int kvmini_drop_capabilities(struct kvmini_error *err)
{
	int ret = host_drop_caps();
	if (ret < 0)
		return kvmini_fail(err, KVMINI_EXIT_HOST, -ret,
				   "cannot give up this thread's capabilities: %s", strerror(-ret));
	return 0;
}

int kvmini_vm_set_net_limit(struct kvmini_vm *h, unsigned int index,
			    const struct kvmini_rate_limit *limit, struct kvmini_error *err)
{
	KVMINI_CHECK(h, err, "no VM");
	if (index >= VM_MAX_NETS || !h->vm->net[index])
		return kvmini_fail(err, KVMINI_EXIT_USAGE, ENOENT, "the VM has no network card %u",
				   index);
	struct ratelimit_spec s;
	kvmini_spec(&s, limit);
	if (vnet_set_limit(h->vm->net[index], &s) < 0)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, EINVAL,
				   "network card %u no longer runs: its limit cannot change",
				   index);
	return 0;
}

int kvmini_vm_resume(struct kvmini_vm *h, struct kvmini_error *err)
{
	KVMINI_CHECK(h, err, "no VM");
	struct vmerr e = {0};
	int ret = vm_resume(h->vm, &e);
	return ret < 0 ? kvmini_from_vmerr(err, &e, ret) : 0;
}

int kvmini_vm_state(const struct kvmini_vm *h)
{
	return h ? vm_state(h->vm) : -EINVAL;
}

int kvmini_vm_exit_status(const struct kvmini_vm *h)
{
	if (!h || !vm_stopping(h->vm))
		return -EINVAL;
	return h->vm->exit_status;
}

const char *kvmini_vm_stop_reason(const struct kvmini_vm *h)
{
	if (!h || !vm_stopping(h->vm))
		return NULL;
	return h->vm->stop_reason;
}

int kvmini_vm_send_ctrl_alt_del(struct kvmini_vm *h, struct kvmini_error *err)
{
	KVMINI_CHECK(h, err, "no VM");
	struct vmerr e = {0};
	int ret = vm_ctrl_alt_del(h->vm, &e);
	return ret < 0 ? kvmini_from_vmerr(err, &e, ret) : 0;
}

uint64_t kvmini_vm_vsock_cid(const struct kvmini_vm *h)
{
	return h && h->vm->vsock ? vsock_cid(h->vm->vsock) : 0;
}

/* The "CONNECT <port>\n" / "OK <hostport>\n" exchange (contract in kvmini.h). */
int kvmini_vsock_handshake(int fd, uint32_t port, int timeout_ms)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	ssize_t w; /* send: no SIGPIPE for a caller whose device closed the socket */
	while ((w = send(fd, line, (size_t)n, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
	}
	if (w != n)
		return w < 0 ? (errno == EPIPE || errno == ECONNRESET ? -ECONNREFUSED : -errno)
			     : -EIO;
	size_t len = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (len < sizeof(line) - 1) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = timeout_ms -
			    ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -ETIMEDOUT;
		ssize_t got =
			read(fd, line + len, 1); /* byte by byte: what follows is the stream's */
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -ECONNREFUSED;
		if (line[len++] == '\n')
			break;
	}
	line[len] = '\0';
	return strncmp(line, "OK ", 3) == 0 && line[len - 1] == '\n' ? 0 : -EPROTO;
}

int kvmini_vm_vsock_connect(struct kvmini_vm *h, uint32_t port, int timeout_ms,
			    struct kvmini_error *err)
{
	KVMINI_CHECK(h, err, "no VM");
	if (!h->vm->vsock)
		return kvmini_fail(err, KVMINI_EXIT_USAGE, ENODEV, "the VM has no vsock device");
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return kvmini_fail(err, KVMINI_EXIT_RESOURCE, errno, "cannot create a socket pair");
	int ret = vsock_connect(h->vm->vsock, sv[0]);
	if (ret < 0) {
		close(sv[1]);
		return kvmini_fail(err, KVMINI_EXIT_RESOURCE, -ret,
				   "cannot connect to guest vsock port %u", port);
	}
	ret = kvmini_vsock_handshake(sv[1], port, timeout_ms > 0 ? timeout_ms : 1);
	if (ret < 0) {
		close(sv[1]);
		return kvmini_fail(err, KVMINI_EXIT_RESOURCE, -ret,
				   ret == -ECONNREFUSED ? "nothing listens on guest vsock port %u"
				   : ret == -ETIMEDOUT
					   ? "guest vsock port %u does not answer"
					   : "bad answer connecting to guest vsock port %u",
				   port);
	}
	return sv[1];
}

/* Connect to the agent, retrying while the guest boots, until `timeout_ms` passed or the VM
 * stopped. Between tries it waits for the agent's knock (the agent connects to host port
 * KVMINI_AGENT_PORT once it listens: docs/agent-protocol.md), the VM's stop or 100 ms, so an
 * agent that never knocks is still found. The socket, or -errno with `err` (status
 * KVMINI_EXEC_FAILED). */
static int kvmini_agent_connect(struct kvmini_vm *h, int timeout_ms, struct kvmini_error *err)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* An attempt that timed out waited for the rest of the budget: the budget is spent. */
	bool fd_timed_out = false;
	for (;;) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long spent = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (vm_stopping(h->vm))
			return kvmini_fail(err, KVMINI_EXEC_FAILED, ECHILD,
					   "the VM stopped before its agent answered: %s",
					   kvmini_vm_stop_reason(h));
		if (spent >= timeout_ms || fd_timed_out)
			return kvmini_fail(
				err, KVMINI_EXEC_FAILED, ETIMEDOUT,
				"the guest agent did not answer within %d s (is it in the "
				"guest, and did the guest boot?)",
				timeout_ms / 1000);
		struct kvmini_error ce = {0};
		int fd =
			kvmini_vm_vsock_connect(h, KVMINI_AGENT_PORT, timeout_ms - (int)spent, &ce);
		if (fd >= 0)
			return fd;
		fd_timed_out = fd == -ETIMEDOUT;
		if (fd_timed_out)
			continue;
		if (fd != -ECONNREFUSED && fd != -EAGAIN)
			return kvmini_fail(err, KVMINI_EXEC_FAILED, -fd, "%s", ce.msg);
		struct pollfd p[2] = {{.fd = vsock_ready_fd(h->vm->vsock), .events = POLLIN},
				      {.fd = h->vm->stop_fd, .events = POLLIN}};
		if (poll(p, 2, 100) > 0 && (p[0].revents & POLLIN))
			host_eventfd_drain(p[0].fd);
	}
}

/* The agent session on a connected socket, for kvmini_vm_exec() (h set: its stop fd aborts) and
 * kvmini_exec_fd() (h NULL). */
static int kvmini_exec_session(struct kvmini_vm *h, int sock, const struct kvmini_exec *x,
			       int agent_ms, struct kvmini_error *err)
{
	struct agent_exec_req req = {
		.argv = x->argv,
		.env = x->env,
		.cwd = x->cwd,
		.flags = (x->tty ? AGENT_EXEC_PTY : 0) | (x->stdin_fd >= 0 ? AGENT_EXEC_STDIN : 0) |
			 (x->set_uid ? AGENT_EXEC_UID : 0) | (x->set_gid ? AGENT_EXEC_GID : 0),
		.uid = x->uid,
		.gid = x->gid,
		.rows = (uint16_t)x->rows,
		.cols = (uint16_t)x->cols,
	};
	struct agent_io io = {
		.in_fd = x->stdin_fd,
		.out_fd = x->stdout_fd,
		.err_fd = x->stderr_fd,
		.sig_fd = x->signal_fd,
		.winsize_fd = !x->tty		     ? -1
			      : isatty(x->stdout_fd) ? x->stdout_fd
						     : x->stdin_fd,
		.abort_fd = h ? h->vm->stop_fd : -1,
		.timeout_ms = x->timeout_ms,
		.hello_timeout_ms = agent_ms,
	};
	struct agent_result res;
	struct vmerr e = {0};
	int ret = agent_exec(sock, &req, &io, &res, &e);
	if (ret < 0 && h && !vm_stopping(h->vm)) {
		/* A guest going down closes its connections before the VM stops: give the stop a
		 * moment, so the reason names the VM rather than the connection. */
		struct pollfd p = {.fd = h->vm->stop_fd, .events = POLLIN};
		poll(&p, 1, 2000);
	}
	if (ret < 0) {
		if (h && vm_stopping(h->vm))
			return kvmini_fail(err, KVMINI_EXEC_FAILED, -ret,
					   "the VM stopped while the command ran: %s",
					   kvmini_vm_stop_reason(h));
		return kvmini_fail(err, KVMINI_EXEC_FAILED, -ret, "%s", e.msg);
	}
	if (res.outcome == AGENT_ABORTED)
		return kvmini_fail(err, KVMINI_EXEC_FAILED, ECHILD,
				   "the VM stopped while the command ran: %s",
				   kvmini_vm_stop_reason(h));
	if (res.outcome == AGENT_REFUSED && res.value == KVMINI_EXEC_FAILED)
		return kvmini_fail(err, KVMINI_EXEC_FAILED, EINVAL, "%s", res.msg);
	if (res.outcome == AGENT_REFUSED)
		kvmini_fail(err, res.value, 0, "%s", res.msg);
	if (res.outcome == AGENT_TIMEOUT)
		kvmini_fail(err, KVMINI_EXEC_TIMEOUT, 0, "the command ran longer than %d ms",
			    x->timeout_ms);
	return agent_status(&res);
}

/* Checks shared by both exec calls. */
static int kvmini_exec_check(const struct kvmini_exec *x, struct kvmini_error *err)
{
	if (!x || !x->argv || !x->argv[0] || !*x->argv[0])
		return kvmini_fail(err, KVMINI_EXEC_FAILED, EINVAL, "no command given");
	if (x->tty && (x->rows > 0xffff || x->cols > 0xffff))
		return kvmini_fail(err, KVMINI_EXEC_FAILED, EINVAL, "terminal size out of range");
	return 0;
}

int kvmini_vm_exec(struct kvmini_vm *h, const struct kvmini_exec *x, struct kvmini_error *err)
{
	if (!h)
		return kvmini_fail(err, KVMINI_EXEC_FAILED, EINVAL, "no VM");
	int ret = kvmini_exec_check(x, err);
	if (ret < 0)
		return ret;
	if (!h->vm->vsock)
		return kvmini_fail(err, KVMINI_EXEC_FAILED, ENODEV,
				   "the VM has no vsock device, so no agent to run commands");
	int agent_ms = x->agent_timeout_ms > 0 ? x->agent_timeout_ms : 60000;
	int sock = kvmini_agent_connect(h, agent_ms, err);
	if (sock < 0)
		return sock;
	ret = kvmini_exec_session(h, sock, x, agent_ms, err);
	close(sock);
	return ret;
}

int kvmini_exec_fd(int fd, const struct kvmini_exec *x, struct kvmini_error *err)
{
	if (fd < 0)
		return kvmini_fail(err, KVMINI_EXEC_FAILED, EBADF, "no connection to the agent");
	int ret = kvmini_exec_check(x, err);
	if (ret < 0)
		return ret;
	return kvmini_exec_session(NULL, fd, x,
				   x->agent_timeout_ms > 0 ? x->agent_timeout_ms : 60000, err);
}

/* A tar stream to or from the agent on `fd` (CP_IN / CP_OUT). */
static int kvmini_copy(int fd, bool in, const char *path, int tar_fd, struct kvmini_error *err)
{
	if (fd < 0 || tar_fd < 0 || !path)
		return kvmini_fail(err, KVMINI_EXEC_FAILED, EINVAL,
				   "no connection, stream or path");
	struct agent_io io = {.in_fd = in ? tar_fd : -1,
			      .out_fd = in ? -1 : tar_fd,
			      .err_fd = -1,
			      .sig_fd = -1,
			      .winsize_fd = -1,
			      .abort_fd = -1,
			      .hello_timeout_ms = 60000};
	struct agent_result res;
	struct vmerr e = {0};
	int ret = agent_copy(fd, in, path, &io, &res, &e);
	if (ret < 0)
		return kvmini_fail(err, KVMINI_EXEC_FAILED, -ret, "%s", e.msg);
	if (res.outcome == AGENT_REFUSED)
		return kvmini_fail(err, KVMINI_EXEC_FAILED, EINVAL, "%s", res.msg);
	if (res.outcome != AGENT_EXITED || res.value != 0)
		return kvmini_fail(err, KVMINI_EXEC_FAILED, EPROTO,
				   "the guest agent did not finish the copy");
	return 0;
}

int kvmini_copy_in_fd(int fd, const char *guest_dir, int tar_fd, struct kvmini_error *err)
{
	return kvmini_copy(fd, true, guest_dir, tar_fd, err);
}

int kvmini_copy_out_fd(int fd, const char *guest_path, int tar_fd, struct kvmini_error *err)
{
	return kvmini_copy(fd, false, guest_path, tar_fd, err);
}

const char *kvmini_exit_kind_name(int kind)
{
	static const char *const names[KVMINI_EXIT_KINDS] = {
		"io", "mmio", "intr", "hlt", "shutdown", "system_event", "other",
	};
	return kind >= 0 && kind < KVMINI_EXIT_KINDS ? names[kind] : NULL;
}

int kvmini_vm_stats(const struct kvmini_vm *h, struct kvmini_stats *s, struct kvmini_error *err)
{
	KVMINI_CHECK(h && s, err, "no VM or no stats buffer");
	const struct vm *vm = h->vm;
	memset(s, 0, sizeof(*s));
	s->state = vm_state(vm);
	s->cpus = vm->cfg.cpus;
	s->memory = vm->cfg.mem_size;
	uint64_t t0 = atomic_load(&vm->started_ns), t1 = atomic_load(&vm->stopped_ns);
	if (t0)
		s->uptime_ns = (t1 >= t0 ? t1 : boottimer_now_ns()) - t0;
	if (gmem_resident(&vm->mem, &s->guest_resident) < 0)
		s->guest_resident = 0;
	if (host_rss(&s->process_resident) < 0)
		s->process_resident = 0;
	for (unsigned int i = 0; i < vm->nr_vcpus && i < KVMINI_MAX_CPUS; i++)
		for (unsigned int k = 0; k < KVMINI_EXIT_KINDS; k++)
			s->exits[i][k] = vcpu_exit_count(&vm->vcpu[i], k);
	for (unsigned int i = 0; i < VM_MAX_VIRTIO && s->nr_disks < KVMINI_MAX_VIRTIO; i++) {
		if (!vm->blk[i])
			continue;
		struct kvmini_disk_stats *d = &s->disk[s->nr_disks++];
		struct vblk_stats b;
		vblk_get_stats(vm->blk[i], &b);
		snprintf(d->name, sizeof(d->name), "vd%c", 'a' + (int)i);
		d->reads = b.reads;
		d->writes = b.writes;
		d->flushes = b.flushes;
		d->discards = b.discards;
		d->write_zeroes = b.write_zeroes;
		d->get_ids = b.get_ids;
		d->read_bytes = b.read_bytes;
		d->write_bytes = b.write_bytes;
		d->errors = b.errors;
		d->inflight_peak = b.inflight_peak;
		d->needs_reset = b.needs_reset;
		d->throttled = b.throttled;
		struct ratelimit_spec l;
		vblk_get_limit(vm->blk[i], &l);
		kvmini_public_limit(&d->limit, &l);
	}
	for (unsigned int i = 0; i < VM_MAX_NETS && s->nr_nets < KVMINI_MAX_NETS; i++) {
		if (!vm->net[i])
			continue;
		struct kvmini_net_stats *n = &s->net[s->nr_nets++];
		struct vnet_stats v;
		vnet_get_stats(vm->net[i], &v);
		snprintf(n->name, sizeof(n->name), "eth%u", i);
		n->rx_frames = v.rx_frames;
		n->rx_bytes = v.rx_bytes;
		n->tx_frames = v.tx_frames;
		n->tx_bytes = v.tx_bytes;
		n->rx_drop_oversize = v.rx_oversize;
		n->rx_drop_short = v.rx_short;
		n->rx_drop_offload = v.rx_bad_offload;
		n->rx_drop_no_room = v.rx_no_room;
		n->rx_drop_reset = v.rx_reset;
		n->rx_errors = v.rx_errors;
		n->tx_drop_short = v.tx_short;
		n->tx_drop_bad_chain = v.tx_bad_chain;
		n->tx_drop_oversize = v.tx_oversize;
		n->tx_drop_offload = v.tx_bad_offload;
		n->tx_errors = v.tx_errors;
		n->tx_blocked = v.tx_blocked;
		n->needs_reset = v.needs_reset;
		n->rx_throttled = v.rx_throttled;
		n->tx_throttled = v.tx_throttled;
		struct ratelimit_spec l;
		vnet_get_limit(vm->net[i], &l);
		kvmini_public_limit(&n->limit, &l);
	}
	if (vm->vsock) {
		struct vsock_stats v;
		vsock_get_stats(vm->vsock, &v);
		s->has_vsock = 1;
		s->vsock = (struct kvmini_vsock_stats){
			.cid = vsock_cid(vm->vsock),
			.host_connects = v.host_connects,
			.guest_connects = v.guest_connects,
			.refused = v.refused,
			.closed = v.closed,
			.rx_packets = v.rx_packets,
			.rx_bytes = v.rx_bytes,
			.tx_packets = v.tx_packets,
			.tx_bytes = v.tx_bytes,
			.bad_packets = v.bad_packets,
			.bad_cid = v.bad_cid,
			.bad_handshake = v.bad_handshake,
			.conn_limit = v.conn_limit,
			.timeouts = v.timeouts,
			.needs_reset = v.needs_reset,
			.ready_knocks = v.ready_knocks,
		};
	}
	s->console_dropped = kvmini_vm_console_dropped(h);
	s->log_dropped = kvmini_vm_log_dropped(h);
	struct boottimer_times bt;
	if (boottimer_get(&vm->timer, &bt)) {
		s->boot_first_run_ns = bt.vmm_start_wall;
		s->boot_init_ns = bt.init_wall;
		s->boot_init_since_run_ns = bt.init_since_run;
	}
	return 0;
}

uint64_t kvmini_vm_console_dropped(const struct kvmini_vm *h)
{
	return h ? atomic_load(&h->vm->con.dropped) : 0;
}

uint64_t kvmini_vm_log_dropped(const struct kvmini_vm *h)
{
	return h ? atomic_load(&h->vm->log.dropped) + atomic_load(&h->vm->trace.dropped) : 0;
}

void kvmini_vm_destroy(struct kvmini_vm **hp)
{
	if (!hp || !*hp)
		return;
	vm_destroy((*hp)->vm);
	free(*hp);
	*hp = NULL;
}
