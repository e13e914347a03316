/* runner: `kvmini run`: one VM, anonymous in the foreground, or managed (named, with a control
 * socket, in the foreground or detached in the background). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "kvmini.h"
#include "kvmini/api.h"
#include "kvmini/apisrv.h"
#include "kvmini/cache.h"
#include "kvmini/jail.h"
#include "kvmini/runner.h"
#include "kvmini/sandbox.h"
#include "kvmini/vmconf.h"
#include "kvmini/vmdir.h"

#define RUNNER_CAD_RESEND_S 5	 /* Ctrl-Alt-Del again: a guest still booting loses the keys */
#define RUNNER_ESCAPE	    0x01 /* Ctrl-A: the library console's escape byte */
#define RUNNER_HELLO_OK	    "KVMINI-CONSOLE OK\n"
#define RUNNER_HELLO_BUSY   "KVMINI-CONSOLE BUSY\n"

struct runner {
	struct cli *c;
	struct cli *asked; /* --rootfs/--image: the options as given, before the sandbox set-up
			    * filled in its disk, command line and vsock (what dumpconfig shows
			    * and a restart takes); else NULL: c is that */
	struct kvmini_vm *vm;
	bool managed, detached;
	char runtime[VMDIR_PATH_MAX];
	struct vmdir_claim claim;
	struct api api;
	struct apisrv srv;
	bool srv_started;
	int sfd;      /* signalfd: SIGINT, SIGTERM, SIGHUP, SIGQUIT */
	int timer_fd; /* ticks every RUNNER_CAD_RESEND_S while a shutdown is pending (timerfd) */
	atomic_uint shutdown_timeout;
	atomic_uint_fast64_t shutdown_deadline_ns; /* destroy from then on (0: no shutdown) */
	int trace_fd;
	bool trace_created; /* this run created the --trace-file (a regular file) */

	/* Detached console: output to the capped log and an attached client, input from it. */
	pthread_mutex_t con_lock; /* log_fd, log_size, client_fd */
	int log_fd;
	uint64_t log_size;
	int client_fd;
	int in_pipe[2];	 /* client -> the library's console input */
	int con_listen;	 /* console.sock */
	int con_stop_fd; /* eventfd: the console server ends */
	pthread_t con_thread;
	bool con_thread_started;
};

/* ---- the control socket's operations ---- */

static int runner_op_state(void *o)
{
	struct runner *r = o;
	return kvmini_vm_state(r->vm);
}

static int runner_op_pause(void *o, struct kvmini_error *e)
{
	struct runner *r = o;
	return kvmini_vm_pause(r->vm, e);
}

static int runner_op_resume(void *o, struct kvmini_error *e)
{
	struct runner *r = o;
	return kvmini_vm_resume(r->vm, e);
}

/* The next shutdown tick: in RUNNER_CAD_RESEND_S, or at the deadline if that comes first. */
static int runner_arm(struct runner *r)
{
	uint64_t now = cli_now_ns(), end = atomic_load(&r->shutdown_deadline_ns);
	uint64_t left = end > now ? end - now : 1;
	uint64_t step = (uint64_t)RUNNER_CAD_RESEND_S * 1000000000ULL;
	if (left < step)
		step = left;
	struct itimerspec its = {.it_value = {.tv_sec = (time_t)(step / 1000000000ULL),
					      .tv_nsec = (long)(step % 1000000000ULL)}};
	return timerfd_settime(r->timer_fd, 0, &its, NULL);
}

static int runner_op_shutdown(void *o, unsigned int timeout_s, struct kvmini_error *e)
{
	struct runner *r = o;
	int ret = kvmini_vm_send_ctrl_alt_del(r->vm, e);
	if (ret < 0)
		return ret;
	if (!timeout_s) { /* never destroyed: an earlier deadline is cancelled */
		atomic_store(&r->shutdown_deadline_ns, 0);
		struct itimerspec off = {0};
		timerfd_settime(r->timer_fd, 0, &off, NULL);
		return 0;
	}
	/* The main thread sends Ctrl-Alt-Del again at each tick (a guest still booting
	 * flushes its keyboard) and destroys the VM at the deadline (a timerfd: any thread
	 * may arm it). */
	atomic_store(&r->shutdown_timeout, timeout_s);
	atomic_store(&r->shutdown_deadline_ns, cli_now_ns() + (uint64_t)timeout_s * 1000000000ULL);
	if (runner_arm(r) < 0) {
		snprintf(e->msg, sizeof(e->msg), "cannot arm the shutdown timer: %s",
			 strerror(errno));
		e->status = KVMINI_EXIT_HOST;
		return -errno;
	}
	return 0;
}

static int runner_op_destroy(void *o, struct kvmini_error *e)
{
	struct runner *r = o;
	int ret = kvmini_vm_stop(r->vm, RUNNER_KILLED, "destroyed (forced off)");
	if (ret < 0) {
		snprintf(e->msg, sizeof(e->msg), "the VM is not running yet, or already stopping");
		e->status = KVMINI_EXIT_USAGE;
	}
	return ret;
}

static int runner_op_stats(void *o, struct kvmini_stats *s, struct kvmini_error *e)
{
	struct runner *r = o;
	return kvmini_vm_stats(r->vm, s, e);
}

static int runner_op_set_limit(void *o, bool net, unsigned int index,
			       const struct kvmini_rate_limit *l, struct kvmini_error *e)
{
	struct runner *r = o;
	return net ? kvmini_vm_set_net_limit(r->vm, index, l, e)
		   : kvmini_vm_set_disk_limit(r->vm, index, l, e);
}

static const struct api_vm_ops runner_ops = {
	.state = runner_op_state,
	.pause = runner_op_pause,
	.resume = runner_op_resume,
	.shutdown = runner_op_shutdown,
	.destroy = runner_op_destroy,
	.stats = runner_op_stats,
	.set_limit = runner_op_set_limit,
};

/* ---- the detached console ---- */

/* Append to console.log; past RUNNER_LOG_CAP it becomes console.log.1 and a new one starts,
 * so the two never hold more than twice the cap. Under con_lock. */
static void runner_log_write(struct runner *r, const uint8_t *buf, size_t len)
{
	if (r->log_fd < 0)
		return;
	if (r->log_size + len > RUNNER_LOG_CAP) {
		char p[VMDIR_PATH_MAX + 32], old[VMDIR_PATH_MAX + 40];
		snprintf(p, sizeof(p), "%s/%s", r->claim.dir, VMDIR_CONSOLE_LOG);
		snprintf(old, sizeof(old), "%s.1", p);
		close(r->log_fd);
		rename(p, old);
		r->log_fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
		r->log_size = 0;
		if (r->log_fd < 0)
			return;
	}
	ssize_t n = write(r->log_fd, buf, len);
	if (n > 0)
		r->log_size += (uint64_t)n;
}

/* Guest output, on the library's console thread. */
static void runner_console_out(void *opaque, const uint8_t *buf, size_t len)
{
	struct runner *r = opaque;
	pthread_mutex_lock(&r->con_lock);
	runner_log_write(r, buf, len);
	if (r->client_fd >= 0) {
		/* Never wait for a slow client: what it cannot take now is in the log. */
		size_t off = 0;
		while (off < len) {
			ssize_t n = send(r->client_fd, buf + off, len - off,
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
	}
	pthread_mutex_unlock(&r->con_lock);
}

static void runner_client_close(struct runner *r)
{
	pthread_mutex_lock(&r->con_lock);
	if (r->client_fd >= 0)
		close(r->client_fd);
	r->client_fd = -1;
	pthread_mutex_unlock(&r->con_lock);
}

/* The console server: one client at a time; a second is told BUSY and closed. */
static void *runner_console_thread(void *arg)
{
	struct runner *r = arg;
	uint8_t buf[4096];
	for (;;) {
		pthread_mutex_lock(&r->con_lock);
		int client = r->client_fd;
		pthread_mutex_unlock(&r->con_lock);
		struct pollfd p[3] = {
			{.fd = r->con_stop_fd, .events = POLLIN},
			{.fd = r->con_listen, .events = POLLIN},
			{.fd = client, .events = POLLIN},
		};
		if (poll(p, client >= 0 ? 3 : 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		if (p[1].revents & POLLIN) {
			int fd = accept4(r->con_listen, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0 && (errno == EMFILE || errno == ENFILE))
				usleep(100 * 1000); /* out of fds: do not spin */
			if (fd >= 0 && client >= 0) {
				if (send(fd, RUNNER_HELLO_BUSY, strlen(RUNNER_HELLO_BUSY),
					 MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
					/* it left already */
				}
				close(fd);
			} else if (fd >= 0) {
				if (send(fd, RUNNER_HELLO_OK, strlen(RUNNER_HELLO_OK),
					 MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
					close(fd);
					continue;
				}
				pthread_mutex_lock(&r->con_lock);
				r->client_fd = fd;
				pthread_mutex_unlock(&r->con_lock);
			}
		}
		if (client >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = recv(client, buf, sizeof(buf), MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				runner_client_close(r);
			} else if (n > 0) {
				/* Every Ctrl-A doubled: the library's console reads Ctrl-A x as
				 * "stop the VM", and no client byte may do that (the attached
				 * client detaches on its own Ctrl-A x). What the pipe cannot
				 * hold is dropped: the guest is slow to read. */
				uint8_t esc[2 * sizeof(buf)];
				size_t m = 0;
				for (ssize_t i = 0; i < n; i++) {
					esc[m++] = buf[i];
					if (buf[i] == RUNNER_ESCAPE)
						esc[m++] = RUNNER_ESCAPE;
				}
				if (write(r->in_pipe[1], esc, m) < 0) {
				}
			}
		}
	}
	runner_client_close(r);
	return NULL;
}

/* Set up the detached console before the VM is created (the config needs the pipe). */
static int runner_console_setup(struct runner *r, struct kvmini_error *e)
{
	char p[VMDIR_PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/%s", r->claim.dir, VMDIR_CONSOLE_LOG);
	r->log_fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (r->log_fd < 0)
		return cli_fail(e, KVMINI_EXIT_RESOURCE, EINVAL, "cannot create %s: %s", p,
				strerror(errno));
	if (pipe2(r->in_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, EINVAL, "pipe: %s", strerror(errno));
	r->con_stop_fd = eventfd(0, EFD_CLOEXEC);
	if (r->con_stop_fd < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, EINVAL, "eventfd: %s", strerror(errno));
	snprintf(p, sizeof(p), "%s/%s", r->claim.dir, VMDIR_CONSOLE_SOCK);
	r->con_listen = cli_listen_unix(p, 0, e);
	return r->con_listen < 0 ? -1 : 0;
}

static int runner_console_start(struct runner *r, struct kvmini_error *e)
{
	int ret = cli_thread_start(&r->con_thread, runner_console_thread, r, "console-srv", r->vm,
				   KVMINI_THREAD_SERVER, e);
	if (ret < 0)
		return ret;
	r->con_thread_started = true;
	return 0;
}

static void runner_console_stop(struct runner *r)
{
	if (r->con_thread_started) {
		uint64_t one = 1;
		if (write(r->con_stop_fd, &one, sizeof(one)) < 0) {
		}
		pthread_join(r->con_thread, NULL);
		r->con_thread_started = false;
	}
	int *fds[] = {&r->con_listen, &r->con_stop_fd, &r->in_pipe[0], &r->in_pipe[1]};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	pthread_mutex_lock(&r->con_lock);
	if (r->log_fd >= 0)
		close(r->log_fd);
	r->log_fd = -1;
	pthread_mutex_unlock(&r->con_lock);
}

/* ---- running ---- */

/* At exit, a warning per network card that dropped frames, with the counters that say why
 * (the "dropped" of `kvmini stats`). */
static void runner_warn_net_drops(const struct kvmini_vm *vm, int log_level)
{
	struct kvmini_stats s;
	struct kvmini_error e = {0};
	if (log_level < KVMINI_LOG_WARN || kvmini_vm_stats(vm, &s, &e) < 0)
		return;
	for (unsigned int i = 0; i < s.nr_nets; i++) {
		char why[256];
		uint64_t n = api_net_drops_text(&s.net[i], why, sizeof(why));
		if (n)
			fprintf(stderr, "kvmini: warning: %s dropped %llu frames (%s)\n",
				s.net[i].name, (unsigned long long)n, why);
	}
}

/* Until the VM stops: a signal stops it with 128 + N, the shutdown deadline destroys it. */
static void runner_wait(struct runner *r)
{
	struct pollfd p[3] = {
		{.fd = r->sfd, .events = POLLIN},
		{.fd = kvmini_vm_stop_fd(r->vm), .events = POLLIN},
		{.fd = r->timer_fd, .events = POLLIN},
	};
	while (kvmini_vm_wait(r->vm, 0, NULL) == -ETIMEDOUT) {
		if (poll(p, 3, -1) < 0 && errno != EINTR) {
			kvmini_vm_stop(r->vm, KVMINI_EXIT_HOST,
				       "poll failed in the kvmini command");
			break;
		}
		struct signalfd_siginfo si;
		if ((p[0].revents & POLLIN) &&
		    read(r->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			char why[128];
			int sig = (int)si.ssi_signo;
			snprintf(why, sizeof(why), "stopped by signal %d (%s)", sig,
				 strsignal(sig));
			kvmini_vm_stop(r->vm, KVMINI_EXIT_SIGNAL + sig, why);
		}
		uint64_t ticks;
		if ((p[2].revents & POLLIN) && read(r->timer_fd, &ticks, sizeof(ticks)) > 0) {
			uint64_t end = atomic_load(&r->shutdown_deadline_ns);
			if (!end)
				continue; /* cancelled meanwhile */
			if (cli_now_ns() + 1000000 < end) {
				kvmini_vm_send_ctrl_alt_del(r->vm, NULL); /* -EBUSY: still queued */
				runner_arm(r);
				continue;
			}
			char why[160];
			snprintf(why, sizeof(why),
				 "did not shut down within %u s of Ctrl-Alt-Del: destroyed",
				 atomic_load(&r->shutdown_timeout));
			kvmini_vm_stop(r->vm, RUNNER_KILLED, why);
		}
	}
	kvmini_vm_wait(r->vm, -1, NULL);
}

/* What a detached child tells its parent: the status and, on failure, the message. */
static void runner_tell(int fd, const struct kvmini_error *e)
{
	if (fd < 0)
		return;
	if (write(fd, e, sizeof(*e)) < 0) {
		/* the parent is gone: nothing to tell */
	}
	close(fd);
}

/* True if a VM definition by that name exists. */
static bool runner_defined(const char *name)
{
	char dir[VMDIR_PATH_MAX], p[VMDIR_PATH_MAX + 80];
	struct kvmini_error e = {0};
	struct stat st;
	if (vmdir_config(dir, sizeof(dir), false, &e) < 0)
		return false;
	snprintf(p, sizeof(p), "%s/%s.json", dir, name);
	return stat(p, &st) == 0;
}

/* A name for a detached VM without one: the first free vmN. */
static int runner_pick_name(struct runner *r, struct kvmini_error *e)
{
	for (int i = 1; i < 10000; i++) {
		char name[16];
		snprintf(name, sizeof(name), "vm%d", i);
		struct vmdir_info in;
		vmdir_probe(r->runtime, name, &in);
		if (in.state != VMDIR_NONE || runner_defined(name))
			continue; /* running, or the record of a past run, or a definition */
		struct kvmini_error ce = {0};
		if (vmdir_claim(&r->claim, r->runtime, name, &ce) == 0) {
			r->c->name = cli_own(r->c, name);
			if (!r->c->name)
				return cli_fail(e, KVMINI_EXIT_HOST, EINVAL, "out of memory");
			return 0;
		}
		if (ce.status != CLI_EXIT_STATE) {
			*e = ce;
			return -1;
		}
	}
	return cli_fail(e, CLI_EXIT_STATE, EINVAL,
			"no free VM name vm1..vm9999; give one with --name");
}

/* Claim, configure, create and start; the control socket and console go up. */
static int runner_start(struct runner *r, uint64_t t0_ns, struct kvmini_error *e)
{
	struct cli *c = r->c;
	struct kvmini_config *cfg = NULL;
	int ret = -1, hold = -1;
	if (kvmini_config_new(&cfg) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, EINVAL, "out of memory");
	kvmini_config_set_start_time(cfg, t0_ns, NULL);
	if (c->rootfs || c->image) {
		/* A shallow copy: its strings stay c's (c outlives it), it owns none. */
		r->asked = malloc(sizeof(*r->asked));
		if (!r->asked) {
			cli_fail(e, KVMINI_EXIT_HOST, ENOMEM, "out of memory");
			goto out;
		}
		*r->asked = *c;
		r->asked->nr_owned = 0;
		char uds[VMDIR_PATH_MAX + 32];
		snprintf(uds, sizeof(uds), "%s/%s", r->claim.dir, VMDIR_VSOCK_SOCK);
		/* The cache's lock, shared, until the VM has its root image open (cache.c). */
		hold = cache_hold(e);
		if (hold < 0 || sandbox_prepare_run(c, r->managed ? uds : NULL, e) < 0)
			goto out;
	}
	if (cli_apply(c, cfg, r->trace_fd, e) < 0)
		goto out;
	if (r->detached) {
		if (runner_console_setup(r, e) < 0)
			goto out;
		struct kvmini_error le = {0};
		/* runner_console_out rotates console.log on the console thread. */
		if (kvmini_config_set_console_fds(cfg, r->in_pipe[0], -1, &le) < 0 ||
		    kvmini_config_set_console_callback(cfg, runner_console_out, r, &le) < 0 ||
		    kvmini_config_set_seccomp(cfg, c->seccomp | KVMINI_SECCOMP_CONSOLE_FILES, &le) <
			    0) {
			*e = le;
			goto out;
		}
	}
	if (kvmini_vm_create(cfg, &r->vm, e) < 0)
		goto out;
	/* Everything privileged (KVM, the disks, the taps) is open: the main thread gives up its
	 * capabilities before it starts the API and console servers, which inherit none. */
	if (kvmini_drop_capabilities(e) < 0)
		goto out;
	cache_release(&hold);
	if (r->managed) {
		const struct cli *asked = r->asked ? r->asked : c;
		char *conf = vmconf_dump(asked, 1);
		if (conf)
			vmdir_write(&r->claim, VMDIR_CONFIG, conf);
		free(conf);
		r->api = (struct api){.ops = &runner_ops,
				      .opaque = r,
				      .config = asked,
				      .pid = getpid(),
				      .vm = r->vm};
		char p[VMDIR_PATH_MAX + 32];
		snprintf(p, sizeof(p), "%s/%s", r->claim.dir, VMDIR_API_SOCK);
		if (apisrv_start(&r->srv, p, &r->api, 0, e) < 0)
			goto out;
		r->srv_started = true;
	}
	if (r->detached && runner_console_start(r, e) < 0)
		goto out;
	r->api.start_ns = cli_now_ns();
	if (kvmini_vm_start(r->vm, e) < 0)
		goto out;
	if (r->managed) {
		char pid[32];
		snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		vmdir_write(&r->claim, VMDIR_PID, pid);
	}
	ret = 0;
out:
	cache_release(&hold);
	kvmini_config_free(&cfg);
	return ret;
}

/* The VM ended: record how, for `kvmini list --all`. */
static void runner_record(struct runner *r, int status, const char *reason)
{
	json_t *o = json_pack("{s:i, s:s, s:I}", "status", status, "reason", reason ? reason : "",
			      "time", (json_int_t)time(NULL));
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (text)
		vmdir_write(&r->claim, VMDIR_EXIT, text);
	free(text);
	json_decref(o);
}

/* A managed VM that never ran leaves nothing behind: the claim goes, then the record (under
 * the lock again, so a run that claimed the name meanwhile keeps its files). */
static void runner_forget(struct runner *r)
{
	vmdir_release(&r->claim);
	vmdir_forget(r->runtime, r->c->name);
}

/* Fork: the parent waits for the child to report that the guest runs (or why not). */
static int runner_detach(struct runner *r, int *tell_fd, struct kvmini_error *e)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return cli_fail(e, KVMINI_EXIT_HOST, EINVAL, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return cli_fail(e, KVMINI_EXIT_HOST, EINVAL, "fork: %s", strerror(errno));
	}
	if (pid > 0) {
		close(p[1]);
		struct kvmini_error got = {0};
		ssize_t n;
		do
			n = read(p[0], &got, sizeof(got));
		while (n < 0 && errno == EINTR);
		close(p[0]);
		/* The child owns the claim and its clean-up from here on: the parent keeps none
		 * of it, so a child that died leaves its vmm.log to read. */
		close(r->claim.lock_fd);
		r->claim.lock_fd = -1;
		if (n != (ssize_t)sizeof(got))
			return cli_fail(e, KVMINI_EXIT_HOST, EINVAL,
					"the VM process ended while starting; see %s/%s",
					r->claim.dir, VMDIR_VMM_LOG);
		if (got.status) {
			*e = got;
			return -1;
		}
		return 1; /* parent: done */
	}
	/* The child: its own session, no terminal, its messages to vmm.log. */
	close(p[0]);
	*tell_fd = p[1];
	setsid();
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	char log[VMDIR_PATH_MAX + 32];
	snprintf(log, sizeof(log), "%s/%s", r->claim.dir, VMDIR_VMM_LOG);
	int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(lfd >= 0 ? lfd : null, STDERR_FILENO);
	}
	if (null > STDERR_FILENO)
		close(null);
	if (lfd > STDERR_FILENO)
		close(lfd);
	if (chdir("/") < 0) {
		/* paths are absolute already */
	}
	/* Nothing else the caller had open stays open for the VM's life (a harness waiting
	 * for EOF on a pipe would wait forever). */
	int keep[] = {p[1], r->claim.lock_fd, r->sfd, r->timer_fd, r->trace_fd};
	long max = sysconf(_SC_OPEN_MAX);
	for (int fd = STDERR_FILENO + 1; fd < (max > 0 && max < 65536 ? max : 65536); fd++) {
		bool kept = false;
		for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
			kept |= keep[i] == fd;
		if (!kept)
			close(fd);
	}
	return 0;
}

int runner_run(struct cli *c, uint64_t t0_ns)
{
	struct runner r = {.c = c,
			   .sfd = -1,
			   .timer_fd = -1,
			   .trace_fd = STDERR_FILENO,
			   .log_fd = -1,
			   .client_fd = -1,
			   .in_pipe = {-1, -1},
			   .con_listen = -1,
			   .con_stop_fd = -1,
			   .claim = {.lock_fd = -1}};
	struct kvmini_error e = {0};
	int status = 0, tell_fd = -1;
	pthread_mutex_init(&r.con_lock, NULL);
	r.detached = c->detach;
	r.managed = c->detach || c->name_set;

	/* SIGINT/SIGTERM/SIGHUP/SIGQUIT arrive on a signalfd; blocked before any thread exists
	 * (the library's threads block every signal anyway). */
	r.sfd = cli_stop_signalfd();
	signal(SIGPIPE, SIG_IGN);
	r.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (r.sfd < 0 || r.timer_fd < 0) {
		cli_fail(&e, KVMINI_EXIT_HOST, EINVAL, "signalfd/timerfd: %s", strerror(errno));
		goto fail;
	}
	if (c->trace_file) {
		/* Remember whether it is ours: only a file this run created is removed when the VM
		 * never comes to be (never /dev/null, a FIFO or someone's existing file). */
		r.trace_fd = open(c->trace_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		r.trace_created = r.trace_fd >= 0;
		if (r.trace_fd < 0 && errno == EEXIST)
			r.trace_fd = open(c->trace_file, O_WRONLY | O_TRUNC | O_CLOEXEC);
		if (r.trace_fd < 0) {
			cli_fail(&e, KVMINI_EXIT_INPUT, EINVAL,
				 "cannot open --trace-file %s: %s; check the path and its "
				 "directory",
				 c->trace_file, strerror(errno));
			goto fail;
		}
	}
	if (c->jail) {
		/* From here on this is the jailed child, or the parent that waits for it. */
		int jailed_status = 0;
		int ret = jail_check(c, &e) < 0 ? -1 : jail_enter(c, r.sfd, &jailed_status, &e);
		if (ret < 0)
			goto fail;
		if (ret > 0) {
			status = jailed_status;
			goto out; /* the parent: nothing of a VM here */
		}
	}
	if (r.managed) {
		if (vmconf_absolute(c) < 0) {
			cli_fail(&e, KVMINI_EXIT_HOST, EINVAL, "out of memory");
			goto fail;
		}
		if (vmdir_runtime(r.runtime, sizeof(r.runtime), true, &e) < 0)
			goto fail;
		if (!c->name_set ? runner_pick_name(&r, &e) < 0
				 : vmdir_claim(&r.claim, r.runtime, c->name, &e) < 0)
			goto fail;
	}
	if (r.detached) {
		int ret = runner_detach(&r, &tell_fd, &e);
		if (ret < 0)
			goto fail;
		if (ret > 0) {
			/* The parent: the child owns the VM (and the claim, shared until it
			 * exits). */
			printf("%s\n", c->name);
			return 0;
		}
	}
	if (runner_start(&r, t0_ns, &e) < 0)
		goto fail;
	/* Every thread exists: from here on this one only waits, stops and cleans up. */
	if (kvmini_vm_confine_thread(r.vm, KVMINI_THREAD_CONTROL, "kvmini", &e) < 0)
		goto fail;
	runner_tell(tell_fd, &e); /* e.status is 0: the guest runs */
	tell_fd = -1;

	runner_wait(&r);
	status = kvmini_vm_exit_status(r.vm);
	const char *reason = kvmini_vm_stop_reason(r.vm);
	if (status != KVMINI_EXIT_OK)
		fprintf(stderr, "kvmini: %s: %s\n",
			status >= KVMINI_EXIT_SIGNAL ? "stopped" : "error", reason);
	else if (c->log_level >= KVMINI_LOG_INFO)
		fprintf(stderr, "kvmini: info: %s\n", reason);
	uint64_t dropped = kvmini_vm_console_dropped(r.vm);
	if (dropped && c->log_level >= KVMINI_LOG_WARN)
		fprintf(stderr,
			"kvmini: warning: %llu bytes of console output were dropped (output too "
			"slow)\n",
			(unsigned long long)dropped);
	runner_warn_net_drops(r.vm, c->log_level);
	uint64_t lost = kvmini_vm_log_dropped(r.vm);
	if (lost)
		fprintf(stderr,
			"kvmini: warning: %llu log or trace lines were dropped (stderr too slow)\n",
			(unsigned long long)lost);
	if (r.managed)
		runner_record(&r, status, reason); /* first: list says shut off from now on */
	if (r.srv_started)
		apisrv_stop(&r.srv);
	kvmini_vm_destroy(&r.vm);
	runner_console_stop(&r);
	vmdir_release(&r.claim);
	goto out;

fail:
	fprintf(stderr, "kvmini: error: %s\n", e.msg);
	status = e.status ? e.status : KVMINI_EXIT_HOST;
	if (r.srv_started)
		apisrv_stop(&r.srv);
	if (!r.vm && r.trace_created && tell_fd < 0 && !r.detached)
		unlink(c->trace_file); /* no trace of a VM that never was */
	kvmini_vm_destroy(&r.vm);      /* joins the library's threads before their fds close */
	runner_console_stop(&r);
	if (r.claim.lock_fd >= 0)
		runner_forget(&r);
	runner_tell(tell_fd, &e);
out:
	if (r.trace_fd >= 0 && r.trace_fd != STDERR_FILENO)
		close(r.trace_fd);
	if (r.sfd >= 0)
		close(r.sfd);
	if (r.timer_fd >= 0)
		close(r.timer_fd);
	pthread_mutex_destroy(&r.con_lock);
	free(r.asked);
	return status;
}
