/* sandbox: `kvmini exec`: boot a throw-away microVM on a --rootfs, run one command through the
 * guest agent, relay its streams and exit with its status. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <termios.h>
#include <unistd.h>

#include "kvmini.h"
#include "kvmini/cache.h"
#include "kvmini/cli.h"
#include "kvmini/image.h"
#include "kvmini/rootfs.h"
#include "kvmini/sandbox.h"
#include "kvmini/vmdir.h"

#define SANDBOX_MAX_ENV	     256
#define SANDBOX_DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct sandbox_opts {
	const char *name; /* exec NAME: into this running VM */
	bool vm_opts;	  /* a VM option was given (not with NAME) */
	const char *kernel, *initrd, *rootfs, *image;
	const char *console_log; /* the guest's serial console goes here (default: discarded) */
	uint64_t mem;
	unsigned int cpus;
	int log_level;
	int seccomp; /* enum kvmini_seccomp */
	const char *env[SANDBOX_MAX_ENV + 4];
	unsigned int nenv;
	const char *cwd;
	bool set_uid, set_gid, interactive, tty;
	unsigned int uid, gid;
	unsigned int timeout_s, agent_timeout_s;
	char *const *argv; /* the command */
	char **argv_owned; /* with --image: Entrypoint + the command (or the image's Cmd) */
	char *env_owned[SANDBOX_MAX_ENV + 4];
	unsigned int nenv_owned;
};

void sandbox_usage(FILE *f)
{
	fputs("usage: kvmini exec [VM OPTIONS] --rootfs DIR [OPTIONS] -- CMD [ARG...]\n"
	      "       kvmini exec NAME [OPTIONS] -- CMD [ARG...]\n"
	      "OPTIONS: [-e K=V]... [-w DIR] [-u UID[:GID]] [-i] [-t] [--timeout SECONDS]\n"
	      "\n"
	      "Boots a throw-away microVM whose root is DIR (read-only, with a writable layer\n"
	      "in guest memory that is discarded), runs CMD in it through the guest agent,\n"
	      "relays its stdin (-i), stdout and stderr, and exits with its status. With NAME,\n"
	      "runs CMD in the VM started by `kvmini run --rootfs DIR --name NAME` instead.\n"
	      "\n"
	      "  --rootfs DIR          the guest's root filesystem (never written; an image of it\n"
	      "                        is cached, see README \"Sandboxes\")\n"
	      "  --image REF           the root of an image instead: oci:DIR[:TAG] (an OCI image\n"
	      "                        layout) or docker-archive:FILE (`docker save`); its\n"
	      "                        Entrypoint, Cmd (when no CMD is given), Env, WorkingDir "
	      "and\n"
	      "                        User apply as in Docker\n"
	      "  -e, --env K=V         set an environment variable (repeatable)\n"
	      "  -w, --workdir DIR     working directory in the guest (default /)\n"
	      "  -u, --user UID[:GID]  run as this numeric user and group (default 0:0)\n"
	      "  -i, --interactive     pipe stdin to CMD (default: /dev/null)\n"
	      "  -t, --tty             run CMD on a pseudo-terminal (its output all on stdout)\n"
	      "  --timeout SECONDS     kill CMD and the VM after SECONDS: status 124\n"
	      "  --agent-timeout SECONDS  how long to wait for the guest agent (default 60)\n"
	      "  --kernel PATH         guest kernel (default: kvmini's, from its share folder)\n"
	      "  --initrd PATH         guest initramfs with the agent (default: kvmini's)\n"
	      "  --console-log FILE    write the guest's serial console to FILE (default:\n"
	      "                        discarded)\n"
	      "  --mem SIZE, --cpus N, --log-level LEVEL, --seccomp MODE   as for `kvmini run`\n"
	      "\n"
	      "Exit status: CMD's status, 128+N if signal N killed it; 124 timeout; 125 kvmini\n"
	      "could not run it (the reason on stderr); 126 CMD cannot be executed; 127 CMD not\n"
	      "found. Ctrl-C is forwarded to CMD; a second Ctrl-C destroys the VM (130).\n",
	      f);
}

static int sandbox_usage_error(struct kvmini_error *e, const char *fmt, const char *arg)
{
	char msg[400];
	snprintf(msg, sizeof(msg), fmt, arg);
	return cli_fail(e, KVMINI_EXIT_USAGE, EINVAL, "%s; see 'kvmini exec --help'", msg);
}

/* A decimal number in [lo, hi]. */
static bool sandbox_number(const char *s, unsigned long long lo, unsigned long long hi,
			   unsigned long long *out)
{
	if (!isdigit((unsigned char)*s))
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || errno || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

enum {
	SB_KERNEL = 256,
	SB_INITRD,
	SB_ROOTFS,
	SB_IMAGE,
	SB_MEM,
	SB_CPUS,
	SB_LOG_LEVEL,
	SB_TIMEOUT,
	SB_AGENT_TIMEOUT,
	SB_CONSOLE_LOG,
	SB_SECCOMP,
	SB_HELP,
};

static const struct option sandbox_options[] = {
	{"kernel", required_argument, NULL, SB_KERNEL},
	{"initrd", required_argument, NULL, SB_INITRD},
	{"rootfs", required_argument, NULL, SB_ROOTFS},
	{"image", required_argument, NULL, SB_IMAGE},
	{"mem", required_argument, NULL, SB_MEM},
	{"cpus", required_argument, NULL, SB_CPUS},
	{"log-level", required_argument, NULL, SB_LOG_LEVEL},
	{"timeout", required_argument, NULL, SB_TIMEOUT},
	{"agent-timeout", required_argument, NULL, SB_AGENT_TIMEOUT},
	{"console-log", required_argument, NULL, SB_CONSOLE_LOG},
	{"seccomp", required_argument, NULL, SB_SECCOMP},
	{"env", required_argument, NULL, 'e'},
	{"workdir", required_argument, NULL, 'w'},
	{"user", required_argument, NULL, 'u'},
	{"interactive", no_argument, NULL, 'i'},
	{"tty", no_argument, NULL, 't'},
	{"help", no_argument, NULL, SB_HELP},
	{NULL, 0, NULL, 0},
};

/* Parse `kvmini exec ...` (argv[1] is "exec"). 1 when --help was asked, 0, or -errno. */
static int sandbox_parse_opts(struct sandbox_opts *o, int argc, char **argv,
			      struct kvmini_error *e);

static int sandbox_parse(struct sandbox_opts *o, int argc, char **argv, struct kvmini_error *e)
{
	memset(o, 0, sizeof(*o));
	o->mem = KVMINI_DEFAULT_MEM;
	o->cpus = 1;
	o->log_level = KVMINI_LOG_WARN;
	o->seccomp = KVMINI_SECCOMP_KILL;
	o->agent_timeout_s = 60;
	int first = 1; /* argv[first] plays getopt's argv[0]: options follow it */
	int ret = sandbox_parse_opts(o, argc - first, argv + first, e);
	if (ret)
		return ret;
	first += optind; /* the first argument that is not an option */
	if (o->rootfs && o->image)
		return sandbox_usage_error(e, "--rootfs and --image exclude each other%s", "");
	if (!o->rootfs && !o->image && first < argc && strcmp(argv[first], "--")) {
		o->name = argv[first];
		if (!cli_name_ok(o->name))
			return sandbox_usage_error(e, "'%s' is not a VM name", o->name);
		if (o->vm_opts)
			return sandbox_usage_error(
				e,
				"VM options (--rootfs, --kernel, --mem...) do not "
				"go with a VM NAME (%s)",
				o->name);
		/* exec NAME [OPTIONS] -- CMD: the options after the name, as docker exec takes. */
		ret = sandbox_parse_opts(o, argc - first, argv + first, e);
		if (ret)
			return ret;
		if (o->vm_opts)
			return sandbox_usage_error(
				e,
				"VM options (--rootfs, --kernel, --mem...) do not "
				"go with a VM NAME (%s)",
				o->name);
		first += optind;
	}
	if (first < argc && !strcmp(argv[first], "--"))
		first++;
	if (first >= argc && !o->image)
		return sandbox_usage_error(
			e, "no command given (kvmini exec --rootfs DIR -- CMD%s)", "");
	if (!o->rootfs && !o->image && !o->name)
		return sandbox_usage_error(
			e, "--rootfs DIR or --image REF (or a running VM's NAME) is required%s",
			"");
	o->argv = argv + first;
	return 0;
}

/* Parse options from argv[1] on (argv[0] is skipped, as getopt does) until the first argument
 * that is not one; optind is left at it. 0, 1 for --help, or -errno. */
static int sandbox_parse_opts(struct sandbox_opts *o, int argc, char **argv, struct kvmini_error *e)
{
	unsigned long long v;
	int opt;
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:e:w:u:it", sandbox_options, NULL)) != -1) {
		switch (opt) {
		case SB_KERNEL:
			o->kernel = optarg;
			o->vm_opts = true;
			break;
		case SB_INITRD:
			o->initrd = optarg;
			o->vm_opts = true;
			break;
		case SB_IMAGE:
			o->image = optarg;
			o->vm_opts = true;
			break;
		case SB_ROOTFS:
			o->rootfs = optarg;
			o->vm_opts = true;
			break;
		case SB_SECCOMP: {
			if (kvmini_seccomp_parse(optarg, &o->seccomp, NULL) < 0)
				return sandbox_usage_error(
					e, "--seccomp '%s' must be off, log or kill", optarg);
			o->vm_opts = true;
			break;
		}
		case SB_CONSOLE_LOG:
			o->console_log = optarg;
			o->vm_opts = true;
			break;
		case SB_MEM:
			o->vm_opts = true;
			if (cli_parse_size(optarg, &o->mem) < 0 || o->mem < KVMINI_MIN_MEM)
				return sandbox_usage_error(
					e, "--mem '%s' is not a size of at least 16M", optarg);
			break;
		case SB_CPUS:
			o->vm_opts = true;
			if (!sandbox_number(optarg, 1, KVMINI_MAX_CPUS, &v))
				return sandbox_usage_error(e, "--cpus '%s' must be 1 to 64",
							   optarg);
			o->cpus = (unsigned int)v;
			break;
		case SB_LOG_LEVEL:
			o->log_level = cli_parse_level(optarg);
			if (o->log_level < 0)
				return sandbox_usage_error(
					e, "--log-level '%s' must be error, warn, info or debug",
					optarg);
			break;
		case SB_TIMEOUT:
		case SB_AGENT_TIMEOUT:
			if (!sandbox_number(optarg, 1, 86400 * 365, &v))
				return sandbox_usage_error(
					e, "the timeout '%s' must be a whole number of seconds",
					optarg);
			if (opt == SB_TIMEOUT)
				o->timeout_s = (unsigned int)v;
			else
				o->agent_timeout_s = (unsigned int)v;
			break;
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=')
				return sandbox_usage_error(e, "-e '%s' must be NAME=VALUE", optarg);
			if (o->nenv >= SANDBOX_MAX_ENV)
				return sandbox_usage_error(e, "too many -e options (at most %s)",
							   "256");
			o->env[o->nenv++] = optarg;
			break;
		case 'w':
			if (optarg[0] != '/')
				return sandbox_usage_error(e, "-w '%s' must be an absolute path",
							   optarg);
			o->cwd = optarg;
			break;
		case 'u': {
			char *colon = strchr(optarg, ':');
			if (colon)
				*colon = '\0';
			if (!sandbox_number(optarg, 0, 0xfffffffeULL, &v))
				return sandbox_usage_error(e, "-u '%s' must be UID[:GID] (numbers)",
							   optarg);
			o->uid = (unsigned int)v;
			o->set_uid = true;
			if (colon) {
				if (!sandbox_number(colon + 1, 0, 0xfffffffeULL, &v))
					return sandbox_usage_error(
						e, "-u group '%s' must be a number", colon + 1);
				o->gid = (unsigned int)v;
				o->set_gid = true;
			}
			break;
		}
		case 'i':
			o->interactive = true;
			break;
		case 't':
			o->tty = true;
			break;
		case SB_HELP:
			return 1;
		case ':':
			return sandbox_usage_error(e, "option '%s' needs a value",
						   argv[optind - 1]);
		default:
			return sandbox_usage_error(e, "unknown option '%s'", argv[optind - 1]);
		}
	}
	return 0;
}

/* The guest kernel and initramfs shipped with kvmini: next to the binary in a build tree
 * (build/guest/), else $PREFIX/share/kvmini/ beside $PREFIX/bin/kvmini. */
static int sandbox_find(const char *name, char *out, size_t size, struct kvmini_error *e)
{
	char exe[PATH_MAX - 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return cli_fail(e, KVMINI_EXEC_FAILED, errno, "cannot find kvmini's own path");
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	*slash = '\0';
	const char *fmts[] = {"%s/guest/%s", "%s/../share/kvmini/%s"};
	for (unsigned int i = 0; i < 2; i++) {
		int len = snprintf(out, size, fmts[i], exe, name);
		if (len > 0 && (size_t)len < size && access(out, R_OK) == 0)
			return 0;
	}
	return cli_fail(e, KVMINI_EXEC_FAILED, ENOENT,
			"the sandbox guest's %s is not in %s/guest or %s/../share/kvmini: run "
			"`make guests` (or `make install`), or give --kernel and --initrd",
			name, exe, exe);
}

/* Look `name` up in the image root's etc/passwd (or etc/group): its id. 0 or -ENOENT. */
static int sandbox_lookup_id(const char *root, const char *file, const char *name, unsigned int *id,
			     unsigned int *gid)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/etc/%s", root, file);
	FILE *f = fopen(p, "re");
	if (!f)
		return -ENOENT;
	char line[1024];
	int ret = -ENOENT;
	size_t n = strlen(name);
	while (fgets(line, sizeof(line), f)) {
		/* name:x:ID:GID:... (group: name:x:ID:...) */
		if (strncmp(line, name, n) || line[n] != ':')
			continue;
		char *f2 = strchr(line + n + 1, ':');
		if (!f2)
			break;
		unsigned long long v;
		char *end;
		v = strtoull(f2 + 1, &end, 10);
		if (end == f2 + 1 || *end != ':' || v > 0xfffffffeULL)
			break;
		*id = (unsigned int)v;
		if (gid) {
			unsigned long long g = strtoull(end + 1, &end, 10);
			*gid = (unsigned int)g;
		}
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/* Apply the image config `ic` to `o` as Docker does: Entrypoint + (the command, else Cmd), the
 * image's Env under -e, WorkingDir unless -w, User unless -u. 0 or -1 with `e`. */
static int sandbox_apply_image(struct sandbox_opts *o, const struct image_config *ic,
			       struct kvmini_error *e)
{
	size_t ne = 0, nc = 0, na = 0;
	while (ic->entrypoint && ic->entrypoint[ne])
		ne++;
	char *const *cmd = o->argv && o->argv[0] ? o->argv : ic->cmd;
	while (cmd && cmd[nc])
		nc++;
	if (!ne && !nc)
		return cli_fail(e, KVMINI_EXEC_FAILED, EINVAL,
				"no command given and the image has no Entrypoint or Cmd");
	o->argv_owned = calloc(ne + nc + 1, sizeof(char *));
	if (!o->argv_owned)
		return cli_fail(e, KVMINI_EXEC_FAILED, ENOMEM, "out of memory");
	for (size_t i = 0; i < ne; i++)
		o->argv_owned[na++] = ic->entrypoint[i];
	for (size_t i = 0; i < nc; i++)
		o->argv_owned[na++] = cmd[i];
	o->argv = o->argv_owned;
	/* The image's Env first, each unless -e sets the same name. */
	const char *user_env[SANDBOX_MAX_ENV];
	unsigned int nu = o->nenv;
	memcpy(user_env, o->env, sizeof(char *) * nu);
	o->nenv = 0;
	for (size_t i = 0; ic->env && ic->env[i]; i++) {
		const char *eq = strchr(ic->env[i], '=');
		if (!eq)
			continue;
		bool overridden = false;
		for (unsigned int j = 0; j < nu; j++)
			overridden |=
				!strncmp(user_env[j], ic->env[i], (size_t)(eq - ic->env[i]) + 1);
		if (overridden)
			continue;
		if (o->nenv >= SANDBOX_MAX_ENV)
			return cli_fail(e, KVMINI_EXEC_FAILED, E2BIG,
					"the image and -e set more than %d variables",
					SANDBOX_MAX_ENV);
		o->env[o->nenv++] = ic->env[i];
	}
	for (unsigned int j = 0; j < nu; j++) {
		if (o->nenv >= SANDBOX_MAX_ENV)
			return cli_fail(e, KVMINI_EXEC_FAILED, E2BIG,
					"the image and -e set more than %d variables",
					SANDBOX_MAX_ENV);
		o->env[o->nenv++] = user_env[j];
	}
	if (!o->cwd && ic->workdir)
		o->cwd = ic->workdir;
	if (!o->set_uid && ic->user) {
		char u[256];
		snprintf(u, sizeof(u), "%s", ic->user);
		char *colon = strchr(u, ':');
		if (colon)
			*colon = '\0';
		unsigned long long v;
		unsigned int gid = 0;
		if (sandbox_number(u, 0, 0xfffffffeULL, &v)) {
			o->uid = (unsigned int)v;
		} else if (sandbox_lookup_id(ic->rootfs, "passwd", u, &o->uid, &gid) < 0) {
			return cli_fail(e, KVMINI_EXEC_FAILED, ENOENT,
					"the image's User '%s' is not in its /etc/passwd", u);
		}
		o->set_uid = true;
		o->gid = gid;
		o->set_gid = true;
		if (colon) {
			if (sandbox_number(colon + 1, 0, 0xfffffffeULL, &v))
				o->gid = (unsigned int)v;
			else if (sandbox_lookup_id(ic->rootfs, "group", colon + 1, &o->gid, NULL) <
				 0)
				return cli_fail(e, KVMINI_EXEC_FAILED, ENOENT,
						"the image's group '%s' is not in its /etc/group",
						colon + 1);
		}
	}
	return 0;
}

int sandbox_prepare_run(struct cli *c, const char *uds, struct kvmini_error *e)
{
	if (c->image) {
		struct image_config ic;
		bool unpacked;
		if (image_prepare(c->image, &ic, &unpacked, e) < 0)
			return -1;
		c->rootfs = cli_own(c, ic.rootfs);
		image_config_free(&ic);
		if (!c->rootfs)
			return cli_fail(e, KVMINI_EXIT_HOST, ENOMEM, "out of memory");
	}
	char img[PATH_MAX], path[PATH_MAX];
	bool built;
	if (rootfs_image(c->rootfs, img, sizeof(img), &built, e) < 0)
		return -1;
	if (!c->kernel) {
		if (sandbox_find("bzImage", path, sizeof(path), e) < 0)
			return -1;
		c->kernel = cli_own(c, path);
	}
	if (!c->initrd) {
		if (sandbox_find("sandbox.cpio.gz", path, sizeof(path), e) < 0)
			return -1;
		c->initrd = cli_own(c, path);
	}
	if (c->nr_disks + c->nr_nets + 1 >= KVMINI_MAX_VIRTIO)
		return cli_fail(e, KVMINI_EXIT_USAGE, ENOSPC,
				"--rootfs takes a disk and a vsock device: at most %d virtio "
				"devices in all",
				KVMINI_MAX_VIRTIO);
	/* The root image is /dev/vda: the sandbox init mounts that. */
	memmove(&c->disk[1], &c->disk[0], sizeof(c->disk[0]) * c->nr_disks);
	c->disk[0] = (struct cli_disk){
		.path = cli_own(c, img), .readonly = true, .serial = "kvmini-rootfs"};
	c->nr_disks++;
	char cmd[CLI_ARG_MAX];
	snprintf(cmd, sizeof(cmd), "kvmini.agent=1%s%s", c->cmdline ? " " : "",
		 c->cmdline ? c->cmdline : "");
	c->cmdline = cli_own(c, cmd);
	if (!c->vsock) {
		c->vsock = true;
		c->vsock_cid = 0;
	}
	if (!c->vsock_uds && uds)
		c->vsock_uds = cli_own(c, uds);
	if (!c->kernel || !c->initrd || !c->disk[0].path || !c->cmdline || (uds && !c->vsock_uds))
		return cli_fail(e, KVMINI_EXIT_HOST, ENOMEM, "out of memory");
	return 0;
}

/* Signals: the first SIGINT/SIGTERM/SIGHUP/SIGQUIT goes to the command, the second ends the VM. */
struct sandbox_sig {
	int sfd, pipe_w;
	struct kvmini_vm *vm; /* or NULL (exec NAME): a second signal ends the connection */
	int conn_fd;
	int stop_pipe_r; /* readable when the thread must end */
	int second;	 /* 128 + the second signal, once it came */
};

/* cli_stop_signalfd(), and with a pty SIGWINCH too (its default is to ignore it). */
static int sandbox_signalfd(bool tty)
{
	int fd = cli_stop_signalfd();
	sigset_t sigs;
	if (fd < 0 || !tty || sigemptyset(&sigs) < 0 || sigaddset(&sigs, SIGWINCH) < 0 ||
	    sigprocmask(SIG_BLOCK, &sigs, NULL) < 0 || sigprocmask(SIG_BLOCK, NULL, &sigs) < 0)
		return fd;
	signalfd(fd, &sigs, SFD_CLOEXEC); /* all the blocked ones; failing keeps the first set */
	return fd;
}

static void *sandbox_sig_thread(void *arg)
{
	struct sandbox_sig *s = arg;
	unsigned int seen = 0;
	for (;;) {
		struct pollfd p[2] = {{.fd = s->sfd, .events = POLLIN},
				      {.fd = s->stop_pipe_r, .events = POLLIN}};
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents)
			return NULL;
		struct signalfd_siginfo si;
		if (read(s->sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGWINCH) {
			uint8_t b = SIGWINCH; /* becomes WINCH with the terminal's size */
			if (write(s->pipe_w, &b, 1) != 1) {
			}
		} else if (seen++ == 0) {
			uint8_t b = (uint8_t)si.ssi_signo;
			if (write(s->pipe_w, &b, 1) != 1) {
			}
		} else if (s->vm) {
			kvmini_vm_stop(s->vm, KVMINI_EXIT_SIGNAL + (int)si.ssi_signo,
				       "destroyed by a second signal");
		} else {
			/* exec NAME: the VM stays; closing the connection makes the agent kill the
			 * command. */
			s->second = KVMINI_EXIT_SIGNAL + (int)si.ssi_signo;
			shutdown(s->conn_fd, SHUT_RDWR);
		}
	}
}

static int sandbox_config(const struct sandbox_opts *o, const char *kernel, const char *initrd,
			  const char *img, int console_fd, struct kvmini_config *cfg,
			  struct kvmini_error *e)
{
	struct kvmini_error le = {0};
	int ret = kvmini_config_set_kernel(cfg, kernel, &le);
	if (!ret)
		ret = kvmini_config_set_initrd(cfg, initrd, &le);
	if (!ret)
		ret = kvmini_config_set_cmdline(cfg, "kvmini.agent=1", 0, &le);
	if (!ret)
		ret = kvmini_config_set_memory(cfg, o->mem, &le);
	if (!ret)
		ret = kvmini_config_set_cpus(cfg, o->cpus, &le);
	if (!ret)
		ret = kvmini_config_add_disk(cfg, img, KVMINI_DISK_READONLY, "kvmini-rootfs", &le);
	if (!ret)
		ret = kvmini_config_set_vsock(cfg, 0, NULL, &le);
	if (!ret)
		ret = kvmini_config_set_console_fds(cfg, -1, console_fd, &le);
	if (!ret)
		ret = kvmini_config_set_log(cfg, o->log_level, NULL, NULL, STDERR_FILENO, &le);
	if (!ret)
		ret = kvmini_config_set_seccomp(cfg, o->seccomp, &le);
	if (ret < 0)
		return cli_fail(e, KVMINI_EXEC_FAILED, -ret, "%s", le.msg);
	return 0;
}

/* Run the command in `vm` (or on agent connection `fd` when vm is NULL) with the caller's
 * streams. Returns the exit status. */
static int sandbox_run(const struct sandbox_opts *o, struct kvmini_vm *vm, int fd, int sfd)
{
	const char *env[SANDBOX_MAX_ENV + 4];
	unsigned int n = 0;
	bool has_path = false, has_home = false, has_term = false;
	for (unsigned int i = 0; i < o->nenv; i++) {
		has_path |= !strncmp(o->env[i], "PATH=", 5);
		has_home |= !strncmp(o->env[i], "HOME=", 5);
		has_term |= !strncmp(o->env[i], "TERM=", 5);
	}
	if (!has_path)
		env[n++] = SANDBOX_DEFAULT_PATH;
	if (!has_home)
		env[n++] = o->set_uid && o->uid ? "HOME=/" : "HOME=/root";
	if (o->tty && !has_term)
		env[n++] = "TERM=xterm";
	for (unsigned int i = 0; i < o->nenv; i++)
		env[n++] = o->env[i];
	env[n] = NULL;

	struct kvmini_exec x = {
		.argv = (const char *const *)o->argv,
		.env = env,
		.cwd = o->cwd,
		.set_uid = o->set_uid,
		.set_gid = o->set_gid,
		.uid = o->uid,
		.gid = o->gid,
		.tty = o->tty,
		.stdin_fd = o->interactive ? STDIN_FILENO : -1,
		.stdout_fd = STDOUT_FILENO,
		.stderr_fd = STDERR_FILENO,
		.signal_fd = -1,
		.timeout_ms = (int)(o->timeout_s > 2000000 ? 2000000000 : o->timeout_s * 1000),
		.agent_timeout_ms = (int)(o->agent_timeout_s > 2000000 ? 2000000000
								       : o->agent_timeout_s * 1000),
	};
	struct termios saved;
	bool raw = false;
	if (o->tty) {
		struct winsize ws;
		if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
			x.rows = ws.ws_row;
			x.cols = ws.ws_col;
		} else {
			x.rows = 24;
			x.cols = 80;
		}
		if (o->interactive && isatty(STDIN_FILENO) &&
		    tcgetattr(STDIN_FILENO, &saved) == 0) {
			struct termios t = saved;
			cfmakeraw(&t);
			raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
		}
	}
	int sig_pipe[2] = {-1, -1}, stop_pipe[2] = {-1, -1};
	struct kvmini_error err = {0};
	pthread_t thr;
	bool thread = false;
	struct sandbox_sig ss = {.sfd = sfd, .vm = vm, .conn_fd = fd};
	if (sfd >= 0 && pipe2(sig_pipe, O_CLOEXEC) == 0 && pipe2(stop_pipe, O_CLOEXEC) == 0) {
		ss.pipe_w = sig_pipe[1];
		ss.stop_pipe_r = stop_pipe[0];
		x.signal_fd = sig_pipe[0];
		thread = cli_thread_start(&thr, sandbox_sig_thread, &ss, "signals", vm,
					  KVMINI_THREAD_SERVER, &err) == 0;
	}
	/* Every thread exists: this one talks to the guest's agent from here on. */
	int status = -EPERM;
	if (!err.status &&
	    (!vm || kvmini_vm_confine_thread(vm, KVMINI_THREAD_EXEC, "kvmini", &err) == 0))
		status = vm ? kvmini_vm_exec(vm, &x, &err) : kvmini_exec_fd(fd, &x, &err);
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	if (thread) {
		if (write(stop_pipe[1], "x", 1) != 1) {
		}
		pthread_join(thr, NULL);
	}
	for (int i = 0; i < 2; i++) {
		if (sig_pipe[i] >= 0)
			close(sig_pipe[i]);
		if (stop_pipe[i] >= 0)
			close(stop_pipe[i]);
	}
	if (status < 0) {
		/* A second signal: the VM was destroyed (or, exec NAME, the connection closed). */
		int vs = !vm					       ? ss.second
			 : kvmini_vm_state(vm) == KVMINI_STATE_STOPPED ? kvmini_vm_exit_status(vm)
								       : 0;
		fprintf(stderr, "kvmini: error: %s\n", err.msg);
		return vs >= KVMINI_EXIT_SIGNAL ? vs : KVMINI_EXEC_FAILED;
	}
	if (status == KVMINI_EXEC_TIMEOUT && err.status == KVMINI_EXEC_TIMEOUT)
		fprintf(stderr, "kvmini: the command ran longer than %u s: %s\n", o->timeout_s,
			vm ? "the VM was destroyed" : "it was killed");
	else if ((status == KVMINI_EXEC_NOT_FOUND || status == KVMINI_EXEC_CANNOT_EXEC) &&
		 err.status == status)
		fprintf(stderr, "kvmini: %s\n", err.msg);
	return status;
}

int sandbox_connect(const char *name, int timeout_ms, struct kvmini_error *e)
{
	char rt[VMDIR_PATH_MAX], path[VMDIR_PATH_MAX + 128];
	if (vmdir_runtime(rt, sizeof(rt), false, e) < 0)
		return -1;
	struct vmdir_info in;
	vmdir_probe(rt, name, &in);
	if (in.state != VMDIR_RUNNING)
		return cli_fail(e, KVMINI_EXEC_FAILED, ESRCH, "no running VM is named '%s'", name);
	snprintf(path, sizeof(path), "%s/%s/%s", rt, name, VMDIR_VSOCK_SOCK);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return cli_fail(e, KVMINI_EXEC_FAILED, ENAMETOOLONG, "%s: path too long", path);
	memcpy(sa.sun_path, path, strlen(path));
	uint64_t end = cli_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return cli_fail(e, KVMINI_EXEC_FAILED, errno, "socket: %s",
					strerror(errno));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			int err = errno;
			close(fd);
			return cli_fail(e, KVMINI_EXEC_FAILED, err,
					"VM '%s' has no agent socket (%s: %s): was it started with "
					"`kvmini run --rootfs`?",
					name, path, strerror(err));
		}
		if (kvmini_vsock_handshake(fd, KVMINI_AGENT_PORT, 2000) == 0)
			return fd;
		close(fd);
		if (cli_now_ns() >= end)
			return cli_fail(e, KVMINI_EXEC_FAILED, ETIMEDOUT,
					"the agent of VM '%s' does not answer (is the guest up?)",
					name);
		nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
	}
}

int sandbox_main(int argc, char **argv, uint64_t t0_ns)
{
	struct sandbox_opts o;
	struct kvmini_error e = {0};
	int ret = sandbox_parse(&o, argc, argv, &e);
	if (ret == 1) {
		sandbox_usage(stdout);
		return 0;
	}
	if (ret < 0) {
		fprintf(stderr, "kvmini: error: %s\n", e.msg);
		return KVMINI_EXEC_FAILED;
	}
	if (o.name) {
		int fd = sandbox_connect(o.name, (int)o.agent_timeout_s * 1000, &e);
		if (fd < 0) {
			fprintf(stderr, "kvmini: error: %s\n", e.msg);
			return KVMINI_EXEC_FAILED;
		}
		int sfd = sandbox_signalfd(o.tty);
		int status = sandbox_run(&o, NULL, fd, sfd);
		close(fd);
		if (sfd >= 0)
			close(sfd);
		return status;
	}
	/* Everything the exit path below releases; each failure on the way jumps there. */
	int console_fd = -1, hold = -1, sfd = -1, status = KVMINI_EXEC_FAILED;
	struct image_config ic = {0};
	struct kvmini_config *cfg = NULL;
	struct kvmini_vm *vm = NULL;
	/* Before the image work, so that a console log that cannot be written fails at once. */
	if (o.console_log) {
		console_fd = open(o.console_log,
				  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
		if (console_fd < 0) {
			fprintf(stderr, "kvmini: error: cannot create the console log %s: %s\n",
				o.console_log, strerror(errno));
			goto out;
		}
	}
	/* The cache's lock, shared, until the VM has its root image open (see cache.c). */
	hold = cache_hold(&e);
	if (hold < 0) {
		fprintf(stderr, "kvmini: error: %s\n", e.msg);
		goto out;
	}
	if (o.image) {
		bool unpacked;
		if (image_prepare(o.image, &ic, &unpacked, &e) < 0 ||
		    sandbox_apply_image(&o, &ic, &e) < 0) {
			fprintf(stderr, "kvmini: error: %s\n", e.msg);
			goto out;
		}
		if (unpacked && o.log_level >= KVMINI_LOG_INFO)
			fprintf(stderr, "kvmini: unpacked the image into %s\n", ic.rootfs);
		o.rootfs = ic.rootfs;
	}
	char kernel[PATH_MAX], initrd[PATH_MAX], img[PATH_MAX];
	bool built;
	if ((!o.kernel && sandbox_find("bzImage", kernel, sizeof(kernel), &e) < 0) ||
	    (!o.initrd && sandbox_find("sandbox.cpio.gz", initrd, sizeof(initrd), &e) < 0) ||
	    rootfs_image(o.rootfs, img, sizeof(img), &built, &e) < 0) {
		fprintf(stderr, "kvmini: error: %s\n", e.msg);
		goto out;
	}
	if (built && o.log_level >= KVMINI_LOG_INFO)
		fprintf(stderr, "kvmini: built the root image %s\n", img);

	sfd = sandbox_signalfd(o.tty);
	if (kvmini_config_new(&cfg) < 0) {
		fprintf(stderr, "kvmini: error: out of memory\n");
		goto out;
	}
	struct kvmini_error le = {0};
	if (sandbox_config(&o, o.kernel ? o.kernel : kernel, o.initrd ? o.initrd : initrd, img,
			   console_fd, cfg, &e) < 0 ||
	    kvmini_config_set_start_time(cfg, t0_ns, &le) < 0) {
		fprintf(stderr, "kvmini: error: %s\n", e.msg[0] ? e.msg : le.msg);
		goto out;
	}
	int created = kvmini_vm_create(cfg, &vm, &le);
	cache_release(&hold);
	if (created == 0)
		created = kvmini_drop_capabilities(&le); /* as run does (runner.c) */
	if (created < 0 || kvmini_vm_start(vm, &le) < 0) {
		fprintf(stderr, "kvmini: error: %s\n", le.msg);
		goto out;
	}
	status = sandbox_run(&o, vm, -1, sfd);
	kvmini_vm_stop(vm, KVMINI_EXIT_OK, "the command ended");
	kvmini_vm_wait(vm, -1, NULL);
out:
	kvmini_vm_destroy(&vm);
	kvmini_config_free(&cfg);
	free(o.argv_owned);
	image_config_free(&ic);
	if (sfd >= 0)
		close(sfd);
	if (console_fd >= 0)
		close(console_fd);
	cache_release(&hold);
	return status;
}
