/* test_kvm_guests: tiny purpose-built guests drive the real exit loop on /dev/kvm. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pty.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <termios.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/cli.h"
#include "kvmini/layout.h"
#include "kvmini/vm.h"

#define TEST_TIMEOUT_S 20
#define STATUS_TIMEOUT 99

/* Every access a test device saw, in order. */
struct access {
	uint64_t offset;
	uint32_t len;
	bool is_write;
	uint64_t value;
};

struct testdev {
	struct access log[64];
	unsigned int n;
	uint32_t read_value; /* what reads return */
};

static void testdev_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct testdev *d = opaque;
	uint64_t v = 0;
	if (!is_write) {
		memcpy(data, &d->read_value, len > 4 ? 4 : len);
		if (len > 4)
			memset(data + 4, 0, len - 4);
	}
	memcpy(&v, data, len > 8 ? 8 : len);
	if (d->n < 64)
		d->log[d->n++] = (struct access){offset, len, is_write, v};
}

struct run {
	struct vm *vm;
	int out_fd; /* memfd holding the guest's console output */
	int status;
	char out[4096];
};

/* Stop the VM if a test guest runs away. */
static void *watchdog(void *arg)
{
	struct vm *vm = arg;
	for (int i = 0; i < TEST_TIMEOUT_S * 10 && !vm_stopping(vm); i++)
		usleep(100000);
	if (!vm_stopping(vm))
		vm_stop(vm, STATUS_TIMEOUT, "test watchdog: guest ran for %d s", TEST_TIMEOUT_S);
	return NULL;
}

static void run_create(struct run *r, const char *guest)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s.elf", TINY_DIR, guest);
	memset(r, 0, sizeof(*r));
	r->out_fd = memfd_create("console", MFD_CLOEXEC);
	assert_true(r->out_fd >= 0);
	struct vm_config cfg = {
		.mem_size = 32ULL << 20,
		.cpus = 1,
		.kernel = path,
		.log_level = LOG_WARN,
		.console_in = -1,
		.console_out = r->out_fd,
		.log_fd = 2,
		.trace_fd = -1,
		.kvm_path = "/dev/kvm",
		.name = guest,
	};
	struct vmerr e = {0};
	int ret = vm_create(&r->vm, &cfg, &e);
	if (ret < 0)
		fail_msg("vm_create(%s): %s", guest, e.msg);
}

static void run_go(struct run *r)
{
	pthread_t wd;
	assert_int_equal(pthread_create(&wd, NULL, watchdog, r->vm), 0);
	r->status = vm_run(r->vm);
	pthread_join(wd, NULL);
	ssize_t n = pread(r->out_fd, r->out, sizeof(r->out) - 1, 0);
	r->out[n > 0 ? n : 0] = '\0';
}

static void run_destroy(struct run *r)
{
	vm_destroy(r->vm);
	close(r->out_fd);
}

static void test_hello_prints_and_resets(void **state)
{
	(void)state;
	struct run r;
	run_create(&r, "hello");
	run_go(&r);
	assert_int_equal(r.status, KVMINI_EXIT_OK);
	assert_string_equal(r.out, "hello from a tiny guest\n");
	assert_non_null(strstr(r.vm->stop_reason, "i8042"));
	run_destroy(&r);
}

static void test_pio_registered_and_unclaimed(void **state)
{
	(void)state;
	struct run r;
	struct testdev d = {.read_value = 0xcafef00d};
	run_create(&r, "pio");
	assert_int_equal(bus_register(&r.vm->pio, 0x500, 16, testdev_io, &d, "test"), 0);
	run_go(&r);
	assert_int_equal(r.status, KVMINI_EXIT_OK);
	const struct access want[] = {
		{0, 1, true, 0x11},
		{0, 2, true, 0x2233},
		{0, 4, true, 0x44556677},
		{2, 4, false, 0xcafef00d},
		{4, 4, true, 0xcafef00d},
		{8, 4, true, 0xffffffff}, /* what the unclaimed port read gave */
		{12, 1, true, 'k'},
		{12, 1, true, 'v'},
		{12, 1, true, 'm'},
		{12, 1, true, '!'},
	};
	assert_int_equal(d.n, sizeof(want) / sizeof(want[0]));
	for (unsigned int i = 0; i < d.n; i++) {
		assert_int_equal(d.log[i].offset, want[i].offset);
		assert_int_equal(d.log[i].len, want[i].len);
		assert_int_equal(d.log[i].is_write, want[i].is_write);
		assert_int_equal(d.log[i].value, want[i].value);
	}
	/* The i8042 reset loop reads port 0x64 (claimed); 0x5f0 is the only unclaimed port. */
	assert_int_equal(atomic_load(&r.vm->pio.unclaimed_reads), 1);
	assert_int_equal(atomic_load(&r.vm->pio.unclaimed_writes), 1);
	run_destroy(&r);
}

static void test_mmio_registered_and_unclaimed(void **state)
{
	(void)state;
	struct run r;
	struct testdev d = {.read_value = 0x8badf00d};
	run_create(&r, "mmio");
	assert_int_equal(
		bus_register(&r.vm->mmio, LAYOUT_MMIO_DEVICES, 0x1000, testdev_io, &d, "test"), 0);
	run_go(&r);
	assert_int_equal(r.status, KVMINI_EXIT_OK);
	const struct access want[] = {
		{0, 1, true, 0x11},	   {2, 2, true, 0x2233},      {4, 4, true, 0x44556677},
		{8, 4, false, 0x8badf00d}, {12, 4, true, 0x8badf00d}, {16, 4, true, 0xffffffff},
	};
	assert_int_equal(d.n, sizeof(want) / sizeof(want[0]));
	for (unsigned int i = 0; i < d.n; i++) {
		assert_int_equal(d.log[i].offset, want[i].offset);
		assert_int_equal(d.log[i].len, want[i].len);
		assert_int_equal(d.log[i].is_write, want[i].is_write);
		assert_int_equal(d.log[i].value, want[i].value);
	}
	assert_int_equal(atomic_load(&r.vm->mmio.unclaimed_reads), 1);
	assert_int_equal(atomic_load(&r.vm->mmio.unclaimed_writes), 1);
	run_destroy(&r);
}

static void test_triple_fault_is_a_guest_crash(void **state)
{
	(void)state;
	struct run r;
	run_create(&r, "triple");
	run_go(&r);
	assert_int_equal(r.status, KVMINI_EXIT_GUEST);
	assert_string_equal(r.out, "faulting\n");
	assert_non_null(strstr(r.vm->stop_reason, "triple"));
	run_destroy(&r);
}

struct stopper {
	struct run *r;
	int out_seen;
};

/* Wait for the halted guest's message, then stop the VM as a signal handler would. */
static void *stop_when_halted(void *arg)
{
	struct stopper *s = arg;
	char buf[64];
	for (int i = 0; i < 100; i++) {
		ssize_t n = pread(s->r->out_fd, buf, sizeof(buf) - 1, 0);
		if (n >= 7 && memcmp(buf, "halted\n", 7) == 0) {
			s->out_seen = 1;
			break;
		}
		usleep(50000);
	}
	usleep(100000); /* let the vCPU sit in HLT */
	vm_stop(s->r->vm, KVMINI_EXIT_SIGNAL + SIGTERM, "stopped by the test");
	return NULL;
}

static void test_halted_vcpu_can_be_stopped(void **state)
{
	(void)state;
	struct run r;
	struct stopper s = {.r = &r};
	pthread_t t;
	run_create(&r, "halt");
	assert_int_equal(pthread_create(&t, NULL, stop_when_halted, &s), 0);
	run_go(&r);
	pthread_join(t, NULL);
	assert_true(s.out_seen);
	assert_int_equal(r.status, KVMINI_EXIT_SIGNAL + SIGTERM);
	run_destroy(&r);
}

static void test_two_vms_in_one_process(void **state)
{
	(void)state;
	struct run a, b;
	run_create(&a, "hello");
	run_create(&b, "hello");
	run_go(&a);
	run_go(&b);
	assert_int_equal(a.status, KVMINI_EXIT_OK);
	assert_int_equal(b.status, KVMINI_EXIT_OK);
	assert_string_equal(a.out, b.out);
	run_destroy(&a);
	run_destroy(&b);
}

/* hello on 4 vCPUs in 64 MiB, its console to `fd`. */
static struct vm *smp_hello_create(int fd)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/hello.elf", TINY_DIR);
	struct vm *vm;
	struct vmerr e = {0};
	struct vm_config cfg = {.mem_size = 64ULL << 20,
				.cpus = 4,
				.kernel = path,
				.log_level = LOG_WARN,
				.console_in = -1,
				.console_out = fd,
				.log_fd = 2,
				.trace_fd = -1,
				.kvm_path = "/dev/kvm"};
	assert_int_equal(vm_create(&vm, &cfg, &e), 0);
	return vm;
}

static void test_smp_vm_starts_and_stops(void **state)
{
	(void)state;
	/* Application processors wait for INIT/SIPI in the kernel; the BSP runs the guest. */
	int fd = memfd_create("console", MFD_CLOEXEC);
	struct vm *vm = smp_hello_create(fd);
	assert_int_equal(vm->nr_vcpus, 4);
	pthread_t wd;
	pthread_create(&wd, NULL, watchdog, vm);
	assert_int_equal(vm_run(vm), KVMINI_EXIT_OK);
	pthread_join(wd, NULL);
	vm_destroy(vm);
	close(fd);
}

struct bounded_run {
	struct vm *vm;
	int status;
	sem_t done;
};

static void *bounded_run_thread(void *arg)
{
	struct bounded_run *b = arg;
	b->status = vm_run(b->vm);
	sem_post(&b->done);
	return NULL;
}

static void test_smp_stop_while_vcpus_start(void **state)
{
	(void)state;
	/* hello prints a line and resets on vCPU 0, often while vm_start is still starting the
	 * other three: a stop whose kick comes before a vCPU counts as started must still end that
	 * vCPU's KVM_RUN (it waits for INIT, so nothing else would). Many rounds, each bounded:
	 * a vm_run that does not return is the bug (the round's threads are left behind). */
	for (int round = 0; round < 300; round++) {
		int fd = memfd_create("console", MFD_CLOEXEC);
		assert_true(fd >= 0);
		struct vm *vm = smp_hello_create(fd);
		struct bounded_run *b = calloc(1, sizeof(*b));
		assert_non_null(b);
		b->vm = vm;
		sem_init(&b->done, 0, 0);
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, bounded_run_thread, b), 0);
		struct timespec end;
		clock_gettime(CLOCK_REALTIME, &end);
		end.tv_sec += TEST_TIMEOUT_S;
		int r;
		while ((r = sem_timedwait(&b->done, &end)) < 0 && errno == EINTR)
			;
		if (r < 0)
			fail_msg("round %d: vm_run did not return in %d s (a vCPU never left "
				 "KVM_RUN)",
				 round, TEST_TIMEOUT_S);
		pthread_join(t, NULL);
		assert_int_equal(b->status, KVMINI_EXIT_OK);
		sem_destroy(&b->done);
		free(b);
		vm_destroy(vm);
		close(fd);
	}
}

static void test_missing_kvm_device(void **state)
{
	(void)state;
	struct vm *vm;
	struct vmerr e = {0};
	char path[512];
	snprintf(path, sizeof(path), "%s/hello.elf", TINY_DIR);
	struct vm_config cfg = {.mem_size = 32ULL << 20,
				.cpus = 1,
				.kernel = path,
				.console_in = -1,
				.console_out = -1,
				.log_fd = 2,
				.trace_fd = -1,
				.kvm_path = "/nonexistent/kvm"};
	assert_int_equal(vm_create(&vm, &cfg, &e), -ENOENT);
	assert_null(vm);
	assert_int_equal(e.status, KVMINI_EXIT_RESOURCE);
	assert_non_null(strstr(e.msg, "/nonexistent/kvm"));
}

/* --- the kvmini binary itself: exit statuses and messages ---------------------------- */

struct proc {
	int status;
	char out[16384];
	char err[16384];
};

/* Run a shell `body` in which $K is the kvmini binary and $T a timeout prefix; collect its
 * stdout, stderr and exit status. */
static void run_shell(struct proc *p, const char *body)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 "K=%s; T='timeout %d'; o=$(mktemp); e=$(mktemp); ( %s ) >$o 2>$e; s=$?;"
		 " cat $o; echo '<<ERR>>'; cat $e; rm -f $o $e; exit $s",
		 KVMINI_BIN, TEST_TIMEOUT_S, body);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	char all[16384];
	size_t n = fread(all, 1, sizeof(all) - 1, f);
	all[n] = '\0';
	int st = pclose(f);
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	char *sep = strstr(all, "<<ERR>>\n");
	assert_non_null(sep);
	*sep = '\0';
	snprintf(p->out, sizeof(p->out), "%s", all);
	snprintf(p->err, sizeof(p->err), "%s", sep + 8);
}

/* Run kvmini with `args`, feeding `input` (printf format) on stdin. */
static void run_kvmini(struct proc *p, const char *input, const char *fmt, ...)
{
	char args[1024], body[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(body, sizeof(body), "printf '%s' | $T $K %s", input ? input : "", args);
	run_shell(p, body);
}

static unsigned int count_lines_with(const char *s, const char *needle)
{
	unsigned int n = 0;
	for (const char *l = s; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		if (memmem(l, len, needle, strlen(needle)))
			n++;
		l = nl ? nl + 1 : NULL;
	}
	return n;
}

static void test_cli_hello_exit_0(void **state)
{
	(void)state;
	struct proc p;
	run_kvmini(&p, NULL, "run --kernel %s/hello.elf --mem 32M", TINY_DIR);
	assert_int_equal(p.status, 0);
	assert_string_equal(p.out, "hello from a tiny guest\n");
	assert_int_equal(count_lines_with(p.err, "error"), 0);
}

/* The boot timer reports once, at info level, when the guest writes its magic value; the
 * first KVM_RUN's wall-clock time at debug level. */
static void test_cli_boot_timer(void **state)
{
	(void)state;
	struct proc p;
	run_kvmini(&p, NULL, "run --kernel %s/boottimer.elf --mem 32M --log-level info", TINY_DIR);
	assert_int_equal(p.status, 0);
	assert_int_equal(count_lines_with(p.err, "boot timer: guest init reached"), 1);
	assert_int_equal(count_lines_with(p.err, "VMM start-up"), 1);
	assert_int_equal(count_lines_with(p.err, "first KVM_RUN at"), 0); /* debug level only */
	run_kvmini(&p, NULL, "run --kernel %s/boottimer.elf --mem 32M --log-level debug", TINY_DIR);
	assert_int_equal(p.status, 0);
	assert_int_equal(count_lines_with(p.err, "boot timer: first KVM_RUN at "), 1);
	assert_int_equal(count_lines_with(p.err, "s CLOCK_REALTIME"), 1);
	run_kvmini(&p, NULL, "run --kernel %s/boottimer.elf --mem 32M", TINY_DIR);
	assert_int_equal(p.status, 0);
	assert_int_equal(count_lines_with(p.err, "boot timer"), 0); /* warn level: silent */
}

static void test_cli_triple_fault_exit_5(void **state)
{
	(void)state;
	struct proc p;
	run_kvmini(&p, NULL, "run --kernel %s/triple.elf --mem 32M", TINY_DIR);
	assert_int_equal(p.status, KVMINI_EXIT_GUEST);
	assert_int_equal(count_lines_with(p.err, "kvmini: error: guest triple-faulted"), 1);
}

static void test_cli_sigterm_exit_143(void **state)
{
	(void)state;
	struct proc p;
	/* Raw: not under timeout(1), so the signal reaches kvmini itself. */
	run_shell(&p, "$K run --kernel " TINY_DIR "/halt.elf --mem 32M </dev/null & k=$!;"
		      " sleep 1; kill -TERM $k; wait $k");
	assert_int_equal(p.status, 128 + SIGTERM);
	assert_string_equal(p.out, "halted\n");
	assert_int_equal(count_lines_with(p.err, "signal 15"), 1);
}

static void test_cli_ctrl_a_x_quits(void **state)
{
	(void)state;
	struct proc p;
	run_kvmini(&p, "\\001x", "run --kernel %s/halt.elf --mem 32M", TINY_DIR);
	assert_int_equal(p.status, 0);
}

static void test_cli_input_reaches_guest(void **state)
{
	(void)state;
	struct proc p;
	/* Ctrl-A Ctrl-A sends one Ctrl-A: the guest echoes it (0x01) like any other byte. */
	run_kvmini(&p, "abc\\001\\001def\\nq", "run --kernel %s/echo.elf --mem 32M", TINY_DIR);
	assert_int_equal(p.status, 0);
	assert_string_equal(p.out, "echo ready\nabc\001def\n");
}

/* Raw mode while attached to a terminal, and the terminal restored after a signal. */
static void test_cli_terminal_raw_and_restored(void **state)
{
	(void)state;
	int master;
	struct termios before, during, after;
	pid_t pid = forkpty(&master, NULL, NULL, NULL);
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(KVMINI_BIN, "kvmini", "run", "--kernel", TINY_DIR "/halt.elf", "--mem", "32M",
		      "--log-level", "error", (char *)NULL);
		_exit(127);
	}
	assert_int_equal(tcgetattr(master, &before), 0);
	/* Wait for the guest's line: by then the console is attached. */
	char buf[256];
	size_t got = 0;
	for (int i = 0; i < 100 && !memmem(buf, got, "halted", 6); i++) {
		ssize_t n = read(master, buf + got, sizeof(buf) - got);
		if (n > 0)
			got += (size_t)n;
	}
	assert_non_null(memmem(buf, got, "halted", 6));
	assert_int_equal(tcgetattr(master, &during), 0);
	assert_int_equal(during.c_lflag & (ICANON | ECHO | ISIG), 0);
	assert_int_equal(kill(pid, SIGTERM), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 128 + SIGTERM);
	/* The slave side is closed now; its settings live on in the pty pair. */
	assert_int_equal(tcgetattr(master, &after), 0);
	assert_int_equal(after.c_lflag & (ICANON | ECHO | ISIG), ICANON | ECHO | ISIG);
	assert_int_equal(after.c_iflag, before.c_iflag);
	close(master);
}

static void test_cli_bad_inputs(void **state)
{
	(void)state;
	static const struct {
		const char *args;
		int status;
		const char *keyword;
	} cases[] = {
		{"run --kernel /nonexistent/bzImage", KVMINI_EXIT_INPUT, "/nonexistent/bzImage"},
		{"run --kernel /etc/passwd", KVMINI_EXIT_INPUT, "/etc/passwd"},
		{"run --kernel /etc", KVMINI_EXIT_INPUT, "/etc"},
		{"run --kernel K --mem 0", KVMINI_EXIT_USAGE, "--mem"},
		{"run --kernel K --mem 12Q", KVMINI_EXIT_USAGE, "--mem"},
		{"run --kernel K --mem 100000G", KVMINI_EXIT_RESOURCE, "--mem"},
		{"run --kernel K --mem 1000G", KVMINI_EXIT_RESOURCE, "RAM"},
		{"run --kernel K --cpus 0", KVMINI_EXIT_USAGE, "--cpus"},
		{"run --kernel K --cpus 65", KVMINI_EXIT_USAGE, "--cpus"},
		{"run --kernel K --cpus two", KVMINI_EXIT_USAGE, "--cpus"},
		{"run --kernel K --bogus", KVMINI_EXIT_USAGE, "--bogus"},
		{"run --kernel", KVMINI_EXIT_USAGE, "--kernel"},
		{"run", KVMINI_EXIT_USAGE, "--kernel"},
		{"frobnicate", KVMINI_EXIT_USAGE, "frobnicate"},
		{"run --kernel K --log-level loud", KVMINI_EXIT_USAGE, "--log-level"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct proc p;
		run_kvmini(&p, NULL, "%s", cases[i].args);
		print_message("kvmini %s -> %d: %s", cases[i].args, p.status, p.err);
		assert_int_equal(p.status, cases[i].status);
		assert_int_equal(count_lines_with(p.err, "kvmini: error: "), 1);
		assert_int_equal(count_lines_with(p.err, cases[i].keyword), 1);
		assert_string_equal(p.out, "");
	}
}

static void test_cli_help_and_version(void **state)
{
	(void)state;
	struct proc p;
	run_kvmini(&p, NULL, "--version");
	assert_int_equal(p.status, 0);
	assert_non_null(strstr(p.out, "kvmini " KVMINI_VERSION));
	run_kvmini(&p, NULL, "run --help");
	assert_int_equal(p.status, 0);
	static const char *const opts[] = {
		"--kernel", "--initrd", "--cmdline",   "--no-default-cmdline", "--mem",
		"--cpus",   "--name",	"--log-level", "Exit status",	       "143"};
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		assert_non_null(strstr(p.out, opts[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_prints_and_resets),
		cmocka_unit_test(test_pio_registered_and_unclaimed),
		cmocka_unit_test(test_mmio_registered_and_unclaimed),
		cmocka_unit_test(test_triple_fault_is_a_guest_crash),
		cmocka_unit_test(test_halted_vcpu_can_be_stopped),
		cmocka_unit_test(test_two_vms_in_one_process),
		cmocka_unit_test(test_smp_vm_starts_and_stops),
		cmocka_unit_test(test_smp_stop_while_vcpus_start),
		cmocka_unit_test(test_missing_kvm_device),
		cmocka_unit_test(test_cli_hello_exit_0),
		cmocka_unit_test(test_cli_boot_timer),
		cmocka_unit_test(test_cli_triple_fault_exit_5),
		cmocka_unit_test(test_cli_sigterm_exit_143),
		cmocka_unit_test(test_cli_ctrl_a_x_quits),
		cmocka_unit_test(test_cli_input_reaches_guest),
		cmocka_unit_test(test_cli_terminal_raw_and_restored),
		cmocka_unit_test(test_cli_bad_inputs),
		cmocka_unit_test(test_cli_help_and_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
