/* test_host: detecting a software-only KVM, the memory limit, errors and log levels. */
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/host.h"
#include "kvmini/log.h"

static char dir[64];

struct thread_probe {
	size_t stack;
	char name[32];
	int arg_seen;
};

static void *probe_thread(void *arg)
{
	struct thread_probe *p = arg;
	pthread_attr_t attr;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getstacksize(&attr, &p->stack);
		pthread_attr_destroy(&attr);
	}
	pthread_getname_np(pthread_self(), p->name, sizeof(p->name));
	p->arg_seen = 1;
	return p;
}

/* Threads get the small stack and their name, cut to what Linux keeps. */
static void test_thread_start(void **state)
{
	(void)state;
	struct thread_probe p = {0};
	pthread_t t;
	assert_int_equal(
		host_thread_start(&t, probe_thread, &p, "blk-a-very-long-disk-name", NULL, 0), 0);
	void *ret = NULL;
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_ptr_equal(ret, &p);
	assert_int_equal(p.arg_seen, 1);
	assert_true(p.stack >= HOST_THREAD_STACK);
	assert_true(p.stack < 2 * 1024 * 1024); /* no room for a transparent huge page */
	assert_string_equal(p.name, "blk-a-very-long");
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kvmini-host-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_slow_kvm_detection(void **state)
{
	(void)state;
	char sys[128], cpu[128], mod[160];
	snprintf(sys, sizeof(sys), "%s/sys", dir);
	snprintf(cpu, sizeof(cpu), "%s/cpuinfo", dir);
	mkdir(sys, 0755);
	write_file(cpu, "processor : 0\nflags : fpu vme de pse svm lm\n");
	assert_null(host_slow_kvm_reason(sys, cpu));
	write_file(cpu, "processor : 0\nflags : fpu vmx lm\n");
	assert_null(host_slow_kvm_reason(sys, cpu));
	write_file(cpu, "processor : 0\nflags : fpu vme lm svm_lock\n");
	assert_non_null(strstr(host_slow_kvm_reason(sys, cpu), "vmx nor svm"));
	write_file(cpu, "processor : 0\nflags : fpu vmx lm\n");
	snprintf(mod, sizeof(mod), "%s/module", sys);
	mkdir(mod, 0755);
	snprintf(mod, sizeof(mod), "%s/module/kvm_pvm", sys);
	mkdir(mod, 0755);
	assert_non_null(strstr(host_slow_kvm_reason(sys, cpu), "PVM"));
}

static void test_memory_limit(void **state)
{
	(void)state;
	struct vmerr e = {0};
	assert_int_equal(host_check_memory(16ULL << 20, &e), 0);
	assert_int_equal(e.status, 0);
	assert_int_equal(host_check_memory(1ULL << 50, &e), -EINVAL);
	assert_int_equal(e.status, KVMINI_EXIT_RESOURCE);
	assert_non_null(strstr(e.msg, "--mem"));
}

/* The hex value of `field` ("CapEff") in /proc/thread-self/status, or -1. */
static long long status_hex(const char *field)
{
	FILE *f = fopen("/proc/thread-self/status", "r");
	if (!f)
		return -1;
	char line[256];
	long long v = -1;
	size_t n = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':')
			v = strtoll(line + n + 1, NULL, 16);
	fclose(f);
	return v;
}

struct caps_probe {
	long long eff, prm, nnp;
};

static void *caps_thread(void *arg)
{
	struct caps_probe *p = arg;
	p->eff = status_hex("CapEff");
	p->prm = status_hex("CapPrm");
	p->nnp = status_hex("NoNewPrivs");
	return NULL;
}

/* A thread started by host_thread_start has no capability, whatever its creator has (make
 * check runs as root); the creator keeps its own. */
static void test_thread_drops_caps(void **state)
{
	(void)state;
	long long mine = status_hex("CapEff");
	assert_true(mine >= 0);
	struct caps_probe p = {-1, -1, -1};
	pthread_t t;
	assert_int_equal(host_thread_start(&t, caps_thread, &p, "caps", NULL, 0), 0);
	pthread_join(t, NULL);
	assert_int_equal(p.eff, 0);
	assert_int_equal(p.prm, 0);
	assert_int_equal(p.nnp, 1);
	assert_int_equal(status_hex("CapEff"), mine);
	if (mine == 0)
		print_message("note: running without capabilities, the drop had nothing to do\n");
}

/* host_drop_caps on a thread of a child: nothing effective, permitted or (as root) bounding
 * is left, and no new privileges; dropping again is a no-op. */
static void test_drop_caps(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int a = host_drop_caps(), b = host_drop_caps();
		bool root = getuid() == 0;
		_exit(a == 0 && b == 0 && status_hex("CapEff") == 0 && status_hex("CapPrm") == 0 &&
				      status_hex("CapInh") == 0 && status_hex("NoNewPrivs") == 1 &&
				      (!root || status_hex("CapBnd") == 0)
			      ? 0
			      : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_vmerr_first_wins(void **state)
{
	(void)state;
	struct vmerr e = {0};
	assert_int_equal(vmerr_set(&e, KVMINI_EXIT_INPUT, ENOENT, "open %s", "a\nb"), -ENOENT);
	assert_int_equal(vmerr_set(&e, KVMINI_EXIT_HOST, EIO, "later"), -EIO);
	assert_int_equal(e.status, KVMINI_EXIT_INPUT);
	assert_string_equal(e.msg, "open a b: No such file or directory");
	assert_int_equal(vmerr_set(NULL, 1, 0, "dropped"), -EINVAL);
	vmerr_clear(&e);
	assert_int_equal(e.status, 0);
}

static void test_log_levels_and_rate_limit(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	struct logger lg;
	log_init(&lg, LOG_WARN, fds[1]);
	log_info(&lg, "hidden");
	log_warn(&lg, "shown %d", 1);
	for (int i = 0; i < 100; i++)
		log_guest(&lg, LOG_WARN, "guest %d", i);
	close(fds[1]);
	char buf[8192];
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	buf[n > 0 ? n : 0] = '\0';
	assert_null(strstr(buf, "hidden"));
	assert_non_null(strstr(buf, "kvmini: warning: shown 1\n"));
	unsigned int lines = 0;
	for (char *p = buf; (p = strstr(p, "guest ")); p++)
		lines++;
	/* At most one burst per second (the test may straddle one second boundary). */
	assert_true(lines >= LOG_GUEST_BURST && lines <= 2 * LOG_GUEST_BURST);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slow_kvm_detection),
		cmocka_unit_test(test_memory_limit),
		cmocka_unit_test(test_thread_start),
		cmocka_unit_test(test_thread_drops_caps),
		cmocka_unit_test(test_drop_caps),
		cmocka_unit_test(test_vmerr_first_wins),
		cmocka_unit_test(test_log_levels_and_rate_limit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
