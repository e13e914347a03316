/* test_kvmini: the public API without KVM: configuration checks and misuse of every call. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini.h"

static void expect_err(int ret, int want, const struct kvmini_error *e, int status,
		       const char *keyword)
{
	assert_int_equal(ret, want);
	assert_int_equal(e->status, status);
	if (!strstr(e->msg, keyword))
		fail_msg("message '%s' lacks '%s'", e->msg, keyword);
	assert_null(strchr(e->msg, '\n'));
}

/* NULL handles and arguments: -EINVAL, never a crash; err may be NULL. */
static void test_null_arguments(void **state)
{
	(void)state;
	struct kvmini_error e = {0};
	assert_int_equal(kvmini_config_new(NULL), -EINVAL);
	kvmini_config_free(NULL);
	struct kvmini_config *none = NULL;
	kvmini_config_free(&none);
	assert_int_equal(kvmini_config_set_kernel(NULL, "k", &e), -EINVAL);
	assert_int_equal(kvmini_config_set_kernel(NULL, "k", NULL), -EINVAL);
	assert_int_equal(kvmini_config_set_memory(NULL, 1 << 30, NULL), -EINVAL);
	assert_int_equal(kvmini_config_add_disk(NULL, "d", 0, NULL, NULL), -EINVAL);
	assert_int_equal(kvmini_config_set_console_callback(NULL, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(kvmini_config_set_start_time(NULL, 1, NULL), -EINVAL);
	assert_int_equal(kvmini_trace_parse(NULL, NULL, NULL), -EINVAL);

	struct kvmini_vm *vm = (struct kvmini_vm *)1; /* must be cleared */
	assert_int_equal(kvmini_vm_create(NULL, &vm, &e), -EINVAL);
	assert_null(vm);
	assert_int_equal(kvmini_vm_create(NULL, NULL, NULL), -EINVAL);
	assert_int_equal(kvmini_vm_start(NULL, &e), -EINVAL);
	assert_int_equal(kvmini_vm_wait(NULL, 0, &e), -EINVAL);
	assert_int_equal(kvmini_vm_stop(NULL, 0, NULL), -EINVAL);
	assert_int_equal(kvmini_vm_pause(NULL, NULL), -EINVAL);
	assert_int_equal(kvmini_vm_resume(NULL, NULL), -EINVAL);
	assert_int_equal(kvmini_vm_state(NULL), -EINVAL);
	assert_int_equal(kvmini_vm_exit_status(NULL), -EINVAL);
	assert_int_equal(kvmini_vm_stop_fd(NULL), -EINVAL);
	assert_null(kvmini_vm_stop_reason(NULL));
	assert_int_equal(kvmini_vm_console_dropped(NULL), 0);
	kvmini_vm_destroy(NULL);
	struct kvmini_vm *null_vm = NULL;
	kvmini_vm_destroy(&null_vm);
	assert_null(kvmini_state_name(42));
	assert_string_equal(kvmini_state_name(KVMINI_STATE_PAUSED), "paused");
	assert_non_null(kvmini_version());
}

static void test_config_checks(void **state)
{
	(void)state;
	struct kvmini_config *c = NULL;
	struct kvmini_error e = {0};
	assert_int_equal(kvmini_config_new(&c), 0);
	expect_err(kvmini_config_set_kernel(c, "", &e), -EINVAL, &e, KVMINI_EXIT_USAGE, "kernel");
	expect_err(kvmini_config_set_memory(c, 1 << 20, &e), -EINVAL, &e, KVMINI_EXIT_USAGE, "16M");
	expect_err(kvmini_config_set_memory(c, 2ULL << 40, &e), -ERANGE, &e, KVMINI_EXIT_RESOURCE,
		   "1T");
	assert_int_equal(kvmini_config_set_memory(c, 20000001, &e), 0);
	expect_err(kvmini_config_set_cpus(c, 0, &e), -EINVAL, &e, KVMINI_EXIT_USAGE, "1 to 64");
	expect_err(kvmini_config_set_cpus(c, 65, &e), -EINVAL, &e, KVMINI_EXIT_USAGE, "65");
	expect_err(kvmini_config_set_name(c, "", &e), -EINVAL, &e, KVMINI_EXIT_USAGE, "name");
	expect_err(kvmini_config_add_disk(c, "d", 0x80, NULL, &e), -EINVAL, &e, KVMINI_EXIT_USAGE,
		   "flags");
	expect_err(kvmini_config_add_disk(c, "d", 0, "012345678901234567890", &e), -EINVAL, &e,
		   KVMINI_EXIT_USAGE, "longer than 20");
	expect_err(kvmini_config_add_net(c, "t", "01:00:5e:00:00:01", &e), -EINVAL, &e,
		   KVMINI_EXIT_USAGE, "unicast");
	expect_err(kvmini_config_add_net(c, "", NULL, &e), -EINVAL, &e, KVMINI_EXIT_USAGE, "tap");
	struct kvmini_rate_limit lim = {.bytes_per_s = 1 << 20};
	expect_err(kvmini_config_set_net_limit(c, 0, &lim, &e), -ENOENT, &e, KVMINI_EXIT_USAGE,
		   "no network card 0 to limit");
	expect_err(kvmini_config_set_disk_limit(c, 0, &lim, &e), -ENOENT, &e, KVMINI_EXIT_USAGE,
		   "no disk 0 to limit");
	assert_int_equal(kvmini_config_set_disk_limit(NULL, 0, &lim, NULL), -EINVAL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(kvmini_config_add_net(c, "t", NULL, &e), 0);
	expect_err(kvmini_config_add_net(c, "t", NULL, &e), -ENOSPC, &e, KVMINI_EXIT_USAGE,
		   "at most 4");
	assert_int_equal(kvmini_config_set_net_limit(c, 3, &lim, &e), 0);
	assert_int_equal(kvmini_config_set_net_limit(c, 3, NULL, &e), 0); /* none again */
	expect_err(kvmini_config_set_net_limit(c, 4, &lim, &e), -ENOENT, &e, KVMINI_EXIT_USAGE,
		   "no network card 4");
	for (int i = 0; i < 4; i++)
		assert_int_equal(kvmini_config_add_disk(c, "d", KVMINI_DISK_READONLY, "s", &e), 0);
	expect_err(kvmini_config_add_disk(c, "d", 0, NULL, &e), -ENOSPC, &e, KVMINI_EXIT_USAGE,
		   "at most 8");
	expect_err(kvmini_config_set_log(c, 7, NULL, NULL, -1, &e), -EINVAL, &e, KVMINI_EXIT_USAGE,
		   "log level");
	expect_err(kvmini_config_set_trace(c, 0x100, 2, &e), -EINVAL, &e, KVMINI_EXIT_USAGE,
		   "trace");
	expect_err(kvmini_config_set_trace(c, KVMINI_TRACE_EXITS, -1, &e), -EINVAL, &e,
		   KVMINI_EXIT_USAGE, "fd");
	expect_err(kvmini_config_set_kick_signal(c, SIGKILL, &e), -EINVAL, &e, KVMINI_EXIT_USAGE,
		   "kick signal");
	/* A fault signal or SIGINT would be disarmed by the kick's do-nothing handler. */
	expect_err(kvmini_config_set_kick_signal(c, SIGSEGV, &e), -EINVAL, &e, KVMINI_EXIT_USAGE,
		   "real-time");
	expect_err(kvmini_config_set_kick_signal(c, SIGINT, &e), -EINVAL, &e, KVMINI_EXIT_USAGE,
		   "real-time");
	assert_int_equal(kvmini_config_set_kick_signal(c, SIGRTMAX, &e), 0);
	expect_err(kvmini_config_set_console_fds(c, -2, 1, &e), -EINVAL, &e, KVMINI_EXIT_USAGE,
		   "console");

	unsigned int cats = 0;
	assert_int_equal(kvmini_trace_parse("exits,io", &cats, &e), 0);
	assert_int_equal(cats, KVMINI_TRACE_EXITS | KVMINI_TRACE_IO);
	assert_int_equal(kvmini_trace_parse("all", &cats, &e), 0);
	assert_int_equal(cats, KVMINI_TRACE_ALL);
	expect_err(kvmini_trace_parse("irq,exit", &cats, &e), -EINVAL, &e, KVMINI_EXIT_USAGE,
		   "unknown trace category 'exit'");
	kvmini_config_free(&c);
	assert_null(c);
}

/* Creation fails cleanly: no kernel, no KVM device, too much memory. */
static void test_create_failures(void **state)
{
	(void)state;
	struct kvmini_config *c = NULL;
	struct kvmini_error e = {0};
	struct kvmini_vm *vm = NULL;
	assert_int_equal(kvmini_config_new(&c), 0);
	expect_err(kvmini_vm_create(c, &vm, &e), -EINVAL, &e, KVMINI_EXIT_USAGE, "no kernel");
	assert_null(vm);
	assert_int_equal(kvmini_config_set_kernel(c, "/nonexistent/bzImage", &e), 0);
	assert_int_equal(kvmini_config_set_memory(c, 32ULL << 20, &e), 0);
	assert_int_equal(kvmini_config_set_kvm_path(c, "/nonexistent/kvm", &e), 0);
	memset(&e, 0, sizeof(e));
	expect_err(kvmini_vm_create(c, &vm, &e), -ENOENT, &e, KVMINI_EXIT_RESOURCE,
		   "/nonexistent/kvm");
	assert_null(vm);
	assert_int_equal(kvmini_config_set_memory(c, 1ULL << 40, &e), 0);
	memset(&e, 0, sizeof(e));
	int ret = kvmini_vm_create(c, &vm, &e);
	assert_true(ret < 0);
	assert_int_equal(e.status, KVMINI_EXIT_RESOURCE); /* this host has less than 1 TiB */
	assert_null(vm);
	kvmini_config_free(&c);
}

/* The vsock socket convention's client side against a fake device on a socket pair. */
static void test_vsock_handshake(void **state)
{
	(void)state;
	int sv[2];
	char buf[64];
	/* OK: 0, the CONNECT line as the device sees it, and the stream after OK left unread. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], "OK 1073741824\nstream", 20), 20);
	assert_int_equal(kvmini_vsock_handshake(sv[0], 1024, 1000), 0);
	ssize_t n = read(sv[1], buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "CONNECT 1024\n");
	assert_int_equal(read(sv[0], buf, 6), 6);
	assert_memory_equal(buf, "stream", 6);
	close(sv[0]);
	close(sv[1]);

	/* The device closes: refused (and no SIGPIPE when it is gone before the line). */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	shutdown(sv[1], SHUT_WR);
	assert_int_equal(kvmini_vsock_handshake(sv[0], 5, 1000), -ECONNREFUSED);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	assert_int_equal(kvmini_vsock_handshake(sv[0], 5, 1000), -ECONNREFUSED);
	close(sv[0]);

	/* No answer: -ETIMEDOUT after about the time given. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(kvmini_vsock_handshake(sv[0], 5, 100), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 90 && ms < 5000);
	close(sv[0]);
	close(sv[1]);

	/* Another answer, and a line that never ends within the line's room: -EPROTO. */
	const char *bad[] = {"NO\n", "OK", "OK 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		assert_int_equal(write(sv[1], bad[i], strlen(bad[i])), (ssize_t)strlen(bad[i]));
		if (i == 1)
			shutdown(sv[1], SHUT_WR); /* "OK" then EOF: refused, not accepted */
		int want = i == 1 ? -ECONNREFUSED : -EPROTO;
		assert_int_equal(kvmini_vsock_handshake(sv[0], 5, 1000), want);
		close(sv[0]);
		close(sv[1]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_null_arguments),
		cmocka_unit_test(test_config_checks),
		cmocka_unit_test(test_create_failures),
		cmocka_unit_test(test_vsock_handshake),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
