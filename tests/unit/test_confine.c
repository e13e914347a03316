/* test_confine: the seccomp filters: each kind's list lets its calls through and stops the
 * rest with one line and exit 159; log mode lets them run; threads start confined. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini.h"
#include "kvmini/confine.h"
#include "kvmini/host.h"

/* What a child did: its exit status (or -signal) and what it wrote to stderr. */
struct outcome {
	int status;
	char err[512];
};

/* Run fn in a child confined with kind's filter in `mode`, stderr captured. */
static struct outcome run_confined(int mode, int kind, unsigned int probe, int (*fn)(void))
{
	struct outcome o = {.status = -1000};
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		struct confine c;
		struct confine_params cp = {
			.pid = getpid(), .kick_signal = SIGRTMIN + 2, .probe = probe};
		struct vmerr e = {0};
		signal(SIGSYS, SIG_DFL); /* cmocka's handler otherwise: kvmini's must be used */
		if (confine_build(&c, mode, &cp, &e) < 0 || confine_sigsys_setup(&e) < 0)
			_exit(90);
		if (confine_enter(&c, kind, "test-thread") < 0)
			_exit(91);
		_exit(fn());
	}
	close(p[1]);
	ssize_t n, len = 0;
	while ((n = read(p[0], o.err + len, sizeof(o.err) - 1 - (size_t)len)) > 0)
		len += n;
	o.err[len] = 0;
	close(p[0]);
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	o.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -WTERMSIG(ws);
	return o;
}

static int call_getcwd(void)
{
	char buf[256];
	return syscall(SYS_getcwd, buf, sizeof(buf)) > 0 ? 0 : 3;
}

static int call_write_and_futex(void)
{
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&m);
	pthread_mutex_unlock(&m);
	return write(STDERR_FILENO, "fine\n", 5) == 5 ? 0 : 4;
}

static int call_mmap_exec(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? 5 : 0;
}

static int call_mmap_rw(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? 5 : 0;
}

static int call_open(void)
{
	int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
	return fd >= 0 ? 0 : 6;
}

static int call_kvm_run_bad_fd(void)
{
	/* Allowed by the vCPU list: the kernel answers EBADF, the process lives. */
	return ioctl(-1, KVM_RUN, 0) < 0 && errno == EBADF ? 0 : 7;
}

static int call_kvm_create_vcpu(void)
{
	/* Set-up ioctls are not allowed once a thread runs: this one ends the process. */
	ioctl(-1, KVM_CREATE_VCPU, 0);
	return 8;
}

static int call_socket_inet(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	return fd >= 0 ? 0 : 9;
}

static int call_socket_unix(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return fd >= 0 ? 0 : 9;
}

static int call_nothing(void)
{
	return 0;
}

/* A forbidden call: exit 159 and one line naming the thread and the call's number. */
static void test_forbidden_call_kills(void **state)
{
	(void)state;
	struct outcome o = run_confined(CONFINE_KILL, CONFINE_VCPU, 0, call_getcwd);
	assert_int_equal(o.status, KVMINI_EXIT_SECCOMP);
	char want[128];
	snprintf(want, sizeof(want), "the test-thread thread made system call %d,", SYS_getcwd);
	assert_non_null(strstr(o.err, want));
	assert_non_null(strstr(o.err, "seccomp filter forbids"));
	assert_int_equal((int)(strchr(o.err, '\n') - o.err) + 1, (int)strlen(o.err)); /* 1 line */
}

/* Each kind's own calls go through. */
static void test_allowed_calls_run(void **state)
{
	(void)state;
	for (int k = 0; k < CONFINE_KINDS; k++) {
		struct outcome o = run_confined(CONFINE_KILL, k, 0, call_write_and_futex);
		assert_int_equal(o.status, 0);
		assert_string_equal(o.err, "fine\n");
		assert_int_equal(run_confined(CONFINE_KILL, k, 0, call_mmap_rw).status, 0);
	}
	assert_int_equal(run_confined(CONFINE_KILL, CONFINE_VCPU, 0, call_kvm_run_bad_fd).status,
			 0);
	assert_int_equal(run_confined(CONFINE_KILL, CONFINE_VSOCK, 0, call_socket_unix).status, 0);
	assert_int_equal(run_confined(CONFINE_KILL, CONFINE_CONTROL, 0, call_open).status, 0);
}

/* Argument filters: no executable mappings anywhere, no set-up ioctls on a vCPU, no socket
 * but AF_UNIX, no open on threads that handle guest data. */
static void test_argument_filters(void **state)
{
	(void)state;
	for (int k = 0; k < CONFINE_KINDS; k++) {
#ifdef CONFINE_SANITIZED
		if (k == CONFINE_CONTROL || k == CONFINE_EXEC)
			continue; /* not installed in this build (confine.h) */
#endif
		assert_int_equal(run_confined(CONFINE_KILL, k, 0, call_mmap_exec).status,
				 KVMINI_EXIT_SECCOMP);
	}
	assert_int_equal(run_confined(CONFINE_KILL, CONFINE_VCPU, 0, call_kvm_create_vcpu).status,
			 KVMINI_EXIT_SECCOMP);
	assert_int_equal(run_confined(CONFINE_KILL, CONFINE_VSOCK, 0, call_socket_inet).status,
			 KVMINI_EXIT_SECCOMP);
	const int guest_facing[] = {CONFINE_VCPU, CONFINE_BLK, CONFINE_NET, CONFINE_VSOCK,
				    CONFINE_CONSOLE};
	for (size_t i = 0; i < sizeof(guest_facing) / sizeof(guest_facing[0]); i++)
		assert_int_equal(run_confined(CONFINE_KILL, guest_facing[i], 0, call_open).status,
				 KVMINI_EXIT_SECCOMP);
}

/* Log mode: the forbidden call runs (the kernel logs it); off: no filter at all. */
static void test_log_and_off(void **state)
{
	(void)state;
	struct outcome o = run_confined(CONFINE_LOG, CONFINE_VCPU, 0, call_getcwd);
	assert_int_equal(o.status, 0);
	assert_string_equal(o.err, "");
	assert_int_equal(run_confined(CONFINE_OFF, CONFINE_VCPU, 0, call_getcwd).status, 0);
}

/* The test hook: the named kind's thread makes a forbidden call as soon as it is confined. */
static void test_probe(void **state)
{
	(void)state;
	assert_int_equal(
		run_confined(CONFINE_KILL, CONFINE_NET, CONFINE_NET + 1, call_nothing).status,
		KVMINI_EXIT_SECCOMP);
	assert_int_equal(
		run_confined(CONFINE_KILL, CONFINE_NET, CONFINE_BLK + 1, call_nothing).status, 0);
}

struct seen {
	char status[256];
};

static void *read_seccomp(void *arg)
{
	struct seen *s = arg;
	FILE *f = fopen("/proc/thread-self/status", "re");
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Seccomp:", 8))
			snprintf(s->status, sizeof(s->status), "%s", line);
	if (f)
		fclose(f);
	return NULL;
}

/* host_thread_start: the new thread runs its function already confined (SERVER may open
 * /proc files); a program without a filter is refused and the function never runs. */
static void test_thread_starts_confined(void **state)
{
	(void)state;
	struct confine c;
	struct confine_params cp = {.pid = getpid(), .kick_signal = SIGRTMIN + 2};
	struct vmerr e = {0};
	assert_int_equal(confine_build(&c, CONFINE_KILL, &cp, &e), 0);
	struct seen s = {{0}};
	pthread_t t;
	assert_int_equal(host_thread_start(&t, read_seccomp, &s, "confined", &c, CONFINE_SERVER),
			 0);
	pthread_join(t, NULL);
	assert_string_equal(s.status, "Seccomp:\t2\n");
	struct seen s2 = {{0}};
	assert_int_equal(host_thread_start(&t, read_seccomp, &s2, "free", NULL, 0), 0);
	pthread_join(t, NULL);
	assert_string_equal(s2.status, "Seccomp:\t0\n");
	struct confine broken = c;
	broken.prog[CONFINE_SERVER].len = 0;
	struct seen s3 = {{0}};
	assert_int_equal(
		host_thread_start(&t, read_seccomp, &s3, "broken", &broken, CONFINE_SERVER),
		-EINVAL);
	assert_string_equal(s3.status, "");
	confine_free(&c);
}

/* Modes by name; the lists stay below Firecracker's for the same kinds of thread (vmm 50,
 * api 31, vcpu 27 system calls in its x86_64 filters). */
static void test_modes_and_counts(void **state)
{
	(void)state;
	assert_int_equal(confine_parse_mode("off"), CONFINE_OFF);
	assert_int_equal(confine_parse_mode("log"), CONFINE_LOG);
	assert_int_equal(confine_parse_mode("kill"), CONFINE_KILL);
	assert_int_equal(confine_parse_mode("Kill"), -EINVAL);
	assert_int_equal(confine_parse_mode(""), -EINVAL);
	int m = -1;
	struct kvmini_error err = {0};
	assert_int_equal(kvmini_seccomp_parse("strict", &m, &err), -EINVAL);
	assert_int_equal(err.status, KVMINI_EXIT_USAGE);
	assert_non_null(strstr(err.msg, "must be off, log or kill"));
	for (int k = 0; k < CONFINE_KINDS; k++) {
		print_message("%-8s %u system calls\n", confine_kind_name(k), confine_count(k));
		assert_true(confine_count(k) > 20);
	}
	assert_true(confine_count(CONFINE_VCPU) <= 27);
	assert_true(confine_count(CONFINE_SERVER) <= 50);
	assert_true(confine_count(CONFINE_CONTROL) <= 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forbidden_call_kills),
		cmocka_unit_test(test_allowed_calls_run),
		cmocka_unit_test(test_argument_filters),
		cmocka_unit_test(test_log_and_off),
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_thread_starts_confined),
		cmocka_unit_test(test_modes_and_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
