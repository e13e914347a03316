/* test_kvmini: the public API without KVM: configuration checks and misuse of every call. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
	for (int i = 0; i < 4; i++)
		assert_int_equal(kvmini_config_add_net(c, "t", NULL, &e), 0);
	expect_err(kvmini_config_add_net(c, "t", NULL, &e), -ENOSPC, &e, KVMINI_EXIT_USAGE,
		   "at most 4");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_null_arguments),
		cmocka_unit_test(test_config_checks),
		cmocka_unit_test(test_create_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
