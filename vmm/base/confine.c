/* confine: seccomp filters, one allow-list per kind of thread (libseccomp compiles them).
 *
 * Each list below names a system call, the kinds of thread that may make it, an optional
 * argument condition, and why. Anything else is forbidden: in kill mode it raises SIGSYS,
 * whose handler writes one line and exits with KVMINI_EXIT_SECCOMP (159, as a shell shows a
 * death by SIGSYS); in log mode the kernel logs it and lets it run. The filters are built on
 * the thread that creates the VM and exported as BPF, so a thread installs its own with one
 * seccomp(2) call and no allocation. Threads are never created under a filter (every thread of
 * a VM exists before its creator confines itself), so clone is in no list. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "kvmini.h"
#include "kvmini/confine.h"

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a SIGSYS from a filter */
#endif
#ifndef TUNSETOFFLOAD
#define TUNSETOFFLOAD _IOW('T', 208, unsigned int)
#endif

/* Kinds as bits. */
#define K_VCPU	  (1u << CONFINE_VCPU)
#define K_BLK	  (1u << CONFINE_BLK)
#define K_NET	  (1u << CONFINE_NET)
#define K_VSOCK	  (1u << CONFINE_VSOCK)
#define K_CONSOLE (1u << CONFINE_CONSOLE)
#define K_CONTROL (1u << CONFINE_CONTROL)
#define K_EXEC	  (1u << CONFINE_EXEC)
#define K_SERVER  (1u << CONFINE_SERVER)
#define K_DEVICES (K_BLK | K_NET | K_VSOCK)
#define K_FRONT	  (K_CONTROL | K_EXEC | K_SERVER) /* a program's own threads */
#define K_ALL	  0xffu

/* An argument condition: none, arg == value, or (arg & mask) == value. */
enum confine_cond { C_ANY = 0, C_EQ, C_MASKED };

/* Values only known when the VM is built. */
#define V_PID  (-1LL) /* the process's pid */
#define V_KICK (-2LL) /* the kick signal */

struct confine_rule {
	int nr;
	unsigned int kinds;
	enum confine_cond cond;
	unsigned int arg;
	long long value;
	unsigned long long mask;
};

#define R(sys, k)                                  \
	{                                          \
		SCMP_SYS(sys), (k), C_ANY, 0, 0, 0 \
	}
#define R_EQ(sys, k, a, v)                                       \
	{                                                        \
		SCMP_SYS(sys), (k), C_EQ, (a), (long long)(v), 0 \
	}
#define R_MASK(sys, k, a, m, v)                                        \
	{                                                              \
		SCMP_SYS(sys), (k), C_MASKED, (a), (long long)(v), (m) \
	}

static const struct confine_rule confine_rules[] = {
	/* Every thread. */
	R(futex, K_ALL),	       /* mutexes, condition variables, pthread_join */
	R(read, K_ALL),		       /* eventfds (kicks, stop, device control), tap, sockets */
	R(write, K_ALL),	       /* log and trace lines, eventfd kicks, the SIGSYS line */
	R(sendto, K_ALL),	       /* log lines when stderr is a socket (nbout) */
	R(poll, K_ALL),		       /* waiting for a slow log fd (nbout) */
	R(rt_sigprocmask, K_ALL),      /* SIGPIPE held around log writes to a pipe (nbout) */
	R(rt_sigpending, K_ALL),       /* the same */
	R(rt_sigtimedwait, K_ALL),     /* the same: a SIGPIPE of our own is taken back */
	R(rt_sigreturn, K_ALL),	       /* return from the kick and fatal-signal handlers */
	R(restart_syscall, K_ALL),     /* a sleep interrupted by the kick resumes */
	R(clock_gettime, K_ALL),       /* timestamps (the vDSO falls back to it on some hosts) */
	R(clock_nanosleep, K_ALL),     /* back-off after an error in a device loop (nanosleep) */
	R(getpid, K_ALL),	       /* pthread_kill, raise */
	R(gettid, K_ALL),	       /* the same */
	R_EQ(tgkill, K_ALL, 0, V_PID), /* the vCPU kick, raise(): own threads only */
	R_EQ(rt_sigaction, K_ALL, 0, SIGABRT),	  /* abort() */
	R_MASK(mmap, K_ALL, 2, PROT_EXEC, 0),	  /* malloc arenas and large blocks; never code */
	R_MASK(mprotect, K_ALL, 2, PROT_EXEC, 0), /* malloc arena growth; never code */
	R(munmap, K_ALL),			  /* free of large blocks, teardown */
	R(madvise, K_ALL),			  /* free's trim, thread stacks at exit */
	R(brk, K_ALL),				  /* the main arena */
	R(close, K_ALL),			  /* fds of connections and teardown */
	R(exit, K_ALL),				  /* a thread's end */
	R(exit_group, K_ALL),			  /* the SIGSYS handler's _exit */
	R_EQ(ioctl, K_ALL, 1, TCSETS),		  /* the crash handlers put the terminal back */
	R_EQ(ioctl, K_ALL, 1, TCGETS),		  /* isatty() */
#ifdef CONFINE_SANITIZED
	R(sigaltstack, K_ALL), /* the sanitizers' signal stacks (never in a release build) */
	R(prctl, K_ALL),       /* the sanitizers' dumpability checks (the same) */
#endif

	/* vCPU: guest exits; a virtio Status write runs the device's activate on this thread. */
	R_EQ(ioctl, K_VCPU, 1, KVM_RUN),			    /* the guest itself */
	R_EQ(ioctl, K_VCPU | K_CONSOLE | K_FRONT, 1, KVM_IRQ_LINE), /* UART and i8042 lines */
	R_EQ(ioctl, K_VCPU, 1, TUNSETOFFLOAD), /* offloads the driver acked (virtio-net) */
	R_EQ(ioctl, K_VCPU, 1, KVM_GET_REGS),  /* rip in error messages */

	/* Disks: every read, write, flush and eventfd wait goes through the ring. */
	R(io_uring_enter, K_BLK),

	/* Network cards, vsock, API server: event loops over sockets and the tap. */
	R(epoll_wait, K_NET | K_VSOCK | K_SERVER),
	R(epoll_ctl, K_NET | K_VSOCK | K_FRONT),	  /* main: the API server's teardown */
	R(readv, K_NET | K_VSOCK | K_SERVER),		  /* frames, libevent buffers */
	R(writev, K_NET | K_VSOCK | K_SERVER),		  /* frames to the tap, replies */
	R(sendmsg, K_NET | K_VSOCK | K_EXEC),		  /* socket-mode frames, host sockets */
	R(recvfrom, K_NET | K_VSOCK | K_EXEC | K_SERVER), /* host sockets, peeks */
	R(recvmsg, K_VSOCK | K_EXEC),			  /* the same */
	R(shutdown, K_VSOCK | K_FRONT),	    /* half-closes; main: the API server's idle clients */
	R(accept4, K_VSOCK | K_SERVER),	    /* host connections to a guest port */
	R_EQ(socket, K_VSOCK, 0, AF_UNIX),  /* guest connects to a host socket */
	R(connect, K_VSOCK),		    /* the same */
	R(getsockopt, K_VSOCK),		    /* SO_ERROR of a connect */
	R(fcntl, K_VSOCK | K_FRONT),	    /* O_NONBLOCK on accepted sockets, vmdir locks */
	R_EQ(ioctl, K_SERVER, 1, FIONREAD), /* libevent sizes its reads */
	R_EQ(ioctl, K_EXEC, 1, TIOCGWINSZ), /* the terminal's size for the command */

	/* A program's threads (the kvmini command: main, API, console server, signals). */
	R(gettimeofday, K_FRONT),    /* libevent's clock (the vDSO's fallback) */
	R(time, K_FRONT),	     /* time(): the exit record, HTTP dates (the same) */
	R(mremap, K_FRONT),	     /* realloc of large buffers (HTTP bodies, JSON) */
	R(timerfd_settime, K_FRONT), /* shutdown grace timers */
	R(mincore, K_FRONT),	     /* guest memory resident, in stats */
	R(openat, K_FRONT),	     /* /proc/self/statm in stats; main: the VM directory */
	R(newfstatat, K_FRONT),	     /* fopen, fstat */
	R(lseek, K_FRONT),	     /* fclose of a stream read in part */
	R(socketpair, K_EXEC),	     /* the agent session's own streams */
	/* The thread that ends the VM writes its exit record and cleans up its folder. */
	R(rename, K_CONTROL | K_EXEC), /* the VM directory's files are replaced whole */
	R(unlink, K_CONTROL | K_EXEC), /* its sockets and files at exit */
};

/* With a console callback that rotates files (kvmini --detach writes console.log). */
static const struct confine_rule confine_console_files[] = {
	R(openat, K_CONSOLE),
	R(rename, K_CONSOLE),
};

static const char *const confine_names[CONFINE_KINDS] = {
	"vcpu", "blk", "net", "vsock", "console", "control", "exec", "server",
};

const char *confine_kind_name(int kind)
{
	return kind >= 0 && kind < CONFINE_KINDS ? confine_names[kind] : "?";
}

int confine_parse_mode(const char *text)
{
	if (!strcmp(text, "off"))
		return CONFINE_OFF;
	if (!strcmp(text, "log"))
		return CONFINE_LOG;
	if (!strcmp(text, "kill"))
		return CONFINE_KILL;
	return -EINVAL;
}

unsigned int confine_count(int kind)
{
	unsigned int n = 0;
	size_t total = sizeof(confine_rules) / sizeof(confine_rules[0]);
	for (size_t i = 0; i < total; i++) {
		if (!(confine_rules[i].kinds & (1u << kind)))
			continue;
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = confine_rules[j].nr == confine_rules[i].nr &&
			       (confine_rules[j].kinds & (1u << kind));
		n += !seen;
	}
	return n;
}

static int confine_add(scmp_filter_ctx ctx, const struct confine_rule *r,
		       const struct confine_params *p)
{
	if (r->cond == C_ANY)
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 0);
	long long v = r->value == V_PID ? p->pid : r->value == V_KICK ? p->kick_signal : r->value;
	/* Every argument compared is an int (a pid, a signal, an ioctl request, prot bits): only
	 * its low 32 bits count, as for the kernel, whatever the caller left in the upper half. */
	struct scmp_arg_cmp cmp = {
		.arg = r->arg,
		.op = SCMP_CMP_MASKED_EQ,
		.datum_a = r->cond == C_EQ ? 0xffffffffull : r->mask,
		.datum_b = (uint64_t)(uint32_t)v,
	};
	return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r->nr, 1, &cmp);
}

/* One kind's program, compiled and exported as BPF into `out`. */
static int confine_compile(int kind, int mode, const struct confine_params *p,
			   struct sock_fprog *out)
{
	scmp_filter_ctx ctx = seccomp_init(mode == CONFINE_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
	if (!ctx)
		return -ENOMEM;
	int ret = 0;
	/* Installing needs no_new_privs; confine_enter sets it, libseccomp must not. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	size_t n = sizeof(confine_rules) / sizeof(confine_rules[0]);
	for (size_t i = 0; !ret && i < n; i++)
		if (confine_rules[i].kinds & (1u << kind))
			ret = confine_add(ctx, &confine_rules[i], p);
	if (p->console_files && kind == CONFINE_CONSOLE)
		for (size_t i = 0;
		     !ret && i < sizeof(confine_console_files) / sizeof(confine_console_files[0]);
		     i++)
			ret = confine_add(ctx, &confine_console_files[i], p);
	int fd = -1;
	if (!ret) {
		fd = memfd_create("kvmini-seccomp", MFD_CLOEXEC);
		ret = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
	}
	off_t size = 0;
	if (!ret) {
		size = lseek(fd, 0, SEEK_END);
		if (size <= 0 || size % sizeof(struct sock_filter) ||
		    size / sizeof(struct sock_filter) > BPF_MAXINSNS)
			ret = -EINVAL;
	}
	if (!ret) {
		out->filter = malloc((size_t)size);
		if (!out->filter)
			ret = -ENOMEM;
		else if (pread(fd, out->filter, (size_t)size, 0) != size)
			ret = -EIO;
		else
			out->len = (unsigned short)(size / sizeof(struct sock_filter));
	}
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return ret;
}

int confine_build(struct confine *c, int mode, const struct confine_params *p, struct vmerr *e)
{
	memset(c, 0, sizeof(*c));
	c->mode = mode;
	c->probe = p->probe;
	if (mode == CONFINE_OFF)
		return 0;
	for (int k = 0; k < CONFINE_KINDS; k++) {
		int ret = confine_compile(k, mode, p, &c->prog[k]);
		if (ret < 0) {
			confine_free(c);
			return vmerr_set(e, KVMINI_EXIT_HOST, -ret,
					 "cannot build the seccomp filter of the %s threads",
					 confine_names[k]);
		}
	}
	return 0;
}

void confine_free(struct confine *c)
{
	for (int k = 0; k < CONFINE_KINDS; k++) {
		free(c->prog[k].filter);
		c->prog[k].filter = NULL;
		c->prog[k].len = 0;
	}
}

/* The calling thread's name, for the SIGSYS line: set before its filter, read by the handler
 * (a signal handler has no other way to know which thread it runs in). */
static __thread char confine_thread[16] __attribute__((tls_model("initial-exec")));

int confine_enter(const struct confine *c, int kind, const char *name)
{
	if (!c || c->mode == CONFINE_OFF || kind < 0 || kind >= CONFINE_KINDS)
		return 0;
	const struct sock_fprog *prog = &c->prog[kind];
	if (!prog->len)
		return -EINVAL;
#ifdef CONFINE_SANITIZED
	/* The leak checker clones a tracer from the thread that exits the process. */
	if (kind == CONFINE_CONTROL || kind == CONFINE_EXEC)
		return 0;
#endif
	snprintf(confine_thread, sizeof(confine_thread), "%s", name);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0)
		return -errno;
	confine_probe(c, kind);
	return 0;
}

void confine_probe(const struct confine *c, int kind)
{
	if (c && c->probe == (unsigned int)kind + 1)
		syscall(SYS_getcwd, NULL, 0); /* in no list: the probe's forbidden call */
}

/* Decimal, async-signal-safe. */
static size_t confine_utoa(char *p, unsigned long v)
{
	char tmp[24];
	size_t n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < sizeof(tmp));
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

static size_t confine_cat(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

void confine_report(const siginfo_t *si, int fd)
{
	char buf[256], num[24];
	const size_t cap = sizeof(buf);
	size_t n = confine_cat(buf, 0, cap, "kvmini: error: the ");
	n = confine_cat(buf, n, cap, confine_thread[0] ? confine_thread : "kvmini");
	if (si->si_code == SYS_SECCOMP) {
		n = confine_cat(buf, n, cap, " thread made system call ");
		num[confine_utoa(num, (unsigned long)si->si_syscall)] = 0;
		n = confine_cat(buf, n, cap, num);
		n = confine_cat(
			buf, n, cap,
			", which its seccomp filter forbids (a kvmini bug, or a compromised "
			"thread); stopping (exit 159)\n");
	} else {
		n = confine_cat(
			buf, n, cap,
			" thread got a SIGSYS that no filter raised; stopping (exit 159)\n");
	}
	ssize_t w = write(fd, buf, n);
	(void)w;
}

static void confine_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	confine_report(si, STDERR_FILENO);
	_exit(KVMINI_EXIT_SECCOMP);
}

int confine_sigsys_setup(struct vmerr *e)
{
	struct sigaction old;
	if (sigaction(SIGSYS, NULL, &old) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "cannot read SIGSYS's action");
	/* SIG_IGN counts as none: the kernel would reset it and dump core. */
	if ((old.sa_flags & SA_SIGINFO) || (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN))
		return 0; /* the program's own handler decides */
	struct sigaction sa = {.sa_sigaction = confine_sigsys, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "cannot install the SIGSYS handler");
	return 0;
}
