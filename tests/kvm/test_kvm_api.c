/* test_kvm_api: the public API (kvmini.h) on /dev/kvm with tiny guests: lifecycle and misuse. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini.h"

#define WAIT_MS 20000 /* a tiny guest's whole run; far more than it needs */

/* Console bytes captured through the callback. */
struct capture {
	pthread_mutex_t lock;
	char buf[4096];
	size_t len;
	unsigned int calls;
};

static void capture_fn(void *opaque, const uint8_t *buf, size_t len)
{
	struct capture *c = opaque;
	pthread_mutex_lock(&c->lock);
	size_t room = sizeof(c->buf) - 1 - c->len;
	size_t n = len < room ? len : room;
	memcpy(c->buf + c->len, buf, n);
	c->len += n;
	c->buf[c->len] = '\0';
	c->calls++;
	pthread_mutex_unlock(&c->lock);
}

static bool capture_has(struct capture *c, const char *s)
{
	pthread_mutex_lock(&c->lock);
	bool yes = strstr(c->buf, s) != NULL;
	pthread_mutex_unlock(&c->lock);
	return yes;
}

/* Log lines captured through the callback. */
struct logs {
	pthread_mutex_t lock;
	char text[8192];
	size_t len;
};

static void log_fn(void *opaque, int level, const char *line)
{
	struct logs *l = opaque;
	pthread_mutex_lock(&l->lock);
	int n = snprintf(l->text + l->len, sizeof(l->text) - l->len, "%d %s\n", level, line);
	if (n > 0 && l->len + (size_t)n < sizeof(l->text))
		l->len += (size_t)n;
	pthread_mutex_unlock(&l->lock);
}

static struct kvmini_vm *make_vm(const char *guest, struct capture *cap, struct logs *logs)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s.elf", TINY_DIR, guest);
	struct kvmini_config *cfg = NULL;
	struct kvmini_error e = {0};
	assert_int_equal(kvmini_config_new(&cfg), 0);
	assert_int_equal(kvmini_config_set_kernel(cfg, path, &e), 0);
	assert_int_equal(kvmini_config_set_memory(cfg, 32ULL << 20, &e), 0);
	assert_int_equal(kvmini_config_set_name(cfg, guest, &e), 0);
	if (cap) {
		pthread_mutex_init(&cap->lock, NULL);
		assert_int_equal(kvmini_config_set_console_callback(cfg, capture_fn, cap, &e), 0);
	}
	if (logs) {
		pthread_mutex_init(&logs->lock, NULL);
		assert_int_equal(kvmini_config_set_log(cfg, KVMINI_LOG_DEBUG, log_fn, logs, -1, &e),
				 0);
	}
	struct kvmini_vm *vm = NULL;
	if (kvmini_vm_create(cfg, &vm, &e) < 0)
		fail_msg("kvmini_vm_create(%s): %s", guest, e.msg);
	kvmini_config_free(&cfg); /* the VM keeps what it needs */
	return vm;
}

static void wait_for_output(struct capture *c, const char *s)
{
	for (int i = 0; i < WAIT_MS / 10 && !capture_has(c, s); i++)
		usleep(10000);
	if (!capture_has(c, s))
		fail_msg("no '%s' on the console; got '%s'", s, c->buf);
}

/* Every state transition, and every call in a state that refuses it. */
static void test_lifecycle_and_misuse(void **state)
{
	(void)state;
	struct capture cap = {0};
	struct kvmini_error e = {0};
	struct kvmini_vm *vm = make_vm("halt", &cap, NULL);

	assert_int_equal(kvmini_vm_state(vm), KVMINI_STATE_CREATED);
	assert_int_equal(kvmini_vm_wait(vm, 0, &e), -EINVAL); /* never started */
	assert_int_equal(e.status, KVMINI_EXIT_USAGE);
	assert_int_equal(kvmini_vm_stop(vm, 0, "x"), -EINVAL);
	assert_int_equal(kvmini_vm_pause(vm, &e), -EINVAL);
	assert_int_equal(kvmini_vm_resume(vm, &e), -EINVAL);
	assert_int_equal(kvmini_vm_exit_status(vm), -EINVAL);
	assert_null(kvmini_vm_stop_reason(vm));

	assert_int_equal(kvmini_vm_start(vm, &e), 0);
	assert_int_equal(kvmini_vm_state(vm), KVMINI_STATE_RUNNING);
	assert_int_equal(kvmini_vm_start(vm, &e), -EALREADY); /* starting twice */
	wait_for_output(&cap, "halted\n");
	memset(&e, 0, sizeof(e));
	assert_int_equal(kvmini_vm_wait(vm, 50, &e), -ETIMEDOUT);
	assert_int_equal(e.status, 0);			     /* a timeout is not a failure */
	assert_int_equal(kvmini_vm_resume(vm, &e), -EINVAL); /* not paused */

	assert_int_equal(kvmini_vm_pause(vm, &e), 0);
	assert_int_equal(kvmini_vm_state(vm), KVMINI_STATE_PAUSED);
	assert_int_equal(kvmini_vm_pause(vm, &e), -EINVAL); /* pausing twice */
	assert_int_equal(kvmini_vm_resume(vm, &e), 0);
	assert_int_equal(kvmini_vm_state(vm), KVMINI_STATE_RUNNING);
	/* Pause and resume again: the parked vCPUs went back into KVM_RUN. */
	assert_int_equal(kvmini_vm_pause(vm, &e), 0);
	assert_int_equal(kvmini_vm_resume(vm, &e), 0);

	struct pollfd p = {.fd = kvmini_vm_stop_fd(vm), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 0); /* not stopping yet */
	assert_int_equal(kvmini_vm_stop(vm, KVMINI_EXIT_OK, "stopped by the test"), 0);
	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	assert_int_equal(kvmini_vm_stop(vm, KVMINI_EXIT_OK, "again"), -EINVAL);
	assert_int_equal(kvmini_vm_wait(vm, WAIT_MS, &e), 0);
	assert_int_equal(kvmini_vm_state(vm), KVMINI_STATE_STOPPED);
	assert_int_equal(kvmini_vm_exit_status(vm), KVMINI_EXIT_OK);
	assert_string_equal(kvmini_vm_stop_reason(vm), "stopped by the test");
	assert_int_equal(kvmini_vm_wait(vm, 0, &e), 0);	    /* waiting twice is fine */
	assert_int_equal(kvmini_vm_pause(vm, &e), -EINVAL); /* pausing a stopped VM */
	assert_non_null(strstr(e.msg, "stopped"));
	assert_int_equal(kvmini_vm_start(vm, &e), -EALREADY);

	kvmini_vm_destroy(&vm);
	assert_null(vm);
	/* A destroyed VM's handle is NULL: every call refuses it. */
	assert_int_equal(kvmini_vm_wait(vm, 0, &e), -EINVAL);
	assert_int_equal(kvmini_vm_state(vm), -EINVAL);
	assert_int_equal(kvmini_vm_pause(vm, &e), -EINVAL);
	assert_int_equal(kvmini_vm_stop(vm, 0, NULL), -EINVAL);
	kvmini_vm_destroy(&vm); /* destroying twice is fine */
}

/* A VM that stops by itself (the guest resets) reports why. */
static void test_guest_reset_and_callbacks(void **state)
{
	(void)state;
	struct capture cap = {0};
	struct logs logs = {0};
	struct kvmini_error e = {0};
	struct kvmini_vm *vm = make_vm("hello", &cap, &logs);
	assert_int_equal(kvmini_vm_start(vm, &e), 0);
	assert_int_equal(kvmini_vm_wait(vm, WAIT_MS, &e), 0);
	assert_int_equal(kvmini_vm_exit_status(vm), KVMINI_EXIT_OK);
	assert_non_null(strstr(kvmini_vm_stop_reason(vm), "i8042"));
	assert_string_equal(cap.buf, "hello from a tiny guest\n");
	/* The log went to the callback, one line at a time, without prefix or newline. */
	assert_non_null(strstr(logs.text, "2 hello: 1 vCPU(s), 32 MiB"));
	assert_null(strstr(logs.text, "kvmini: "));
	kvmini_vm_destroy(&vm);
}

/* Destroying a running (and a paused) VM stops it first. */
static void test_destroy_running(void **state)
{
	(void)state;
	struct capture cap = {0};
	struct kvmini_error e = {0};
	struct kvmini_vm *vm = make_vm("halt", &cap, NULL);
	assert_int_equal(kvmini_vm_start(vm, &e), 0);
	kvmini_vm_destroy(&vm);
	assert_null(vm);

	vm = make_vm("halt", &cap, NULL);
	assert_int_equal(kvmini_vm_start(vm, &e), 0);
	assert_int_equal(kvmini_vm_pause(vm, &e), 0);
	kvmini_vm_destroy(&vm);
	assert_null(vm);

	/* Stopped while paused: stopped, and resume refuses it. */
	vm = make_vm("halt", &cap, NULL);
	assert_int_equal(kvmini_vm_start(vm, &e), 0);
	assert_int_equal(kvmini_vm_pause(vm, &e), 0);
	assert_int_equal(kvmini_vm_stop(vm, KVMINI_EXIT_OK, "stopped while paused"), 0);
	assert_int_equal(kvmini_vm_state(vm), KVMINI_STATE_STOPPED);
	assert_int_equal(kvmini_vm_resume(vm, &e), -EINVAL);
	assert_int_equal(kvmini_vm_wait(vm, WAIT_MS, &e), 0);
	assert_string_equal(kvmini_vm_stop_reason(vm), "stopped while paused");
	kvmini_vm_destroy(&vm);

	vm = make_vm("halt", NULL, NULL); /* never started */
	kvmini_vm_destroy(&vm);
}

struct runner {
	struct kvmini_vm *vm;
	int ret;
};

static void *run_thread(void *arg)
{
	struct runner *r = arg;
	struct kvmini_error e = {0};
	r->ret = kvmini_vm_start(r->vm, &e);
	if (!r->ret)
		r->ret = kvmini_vm_wait(r->vm, WAIT_MS, &e);
	return NULL;
}

/* Two VMs at once in one process, each driven from its own thread. */
static void test_two_vms_at_once(void **state)
{
	(void)state;
	struct capture ca = {0}, cb = {0};
	struct runner a = {.vm = make_vm("hello", &ca, NULL)};
	struct runner b = {.vm = make_vm("hello", &cb, NULL)};
	pthread_t ta, tb;
	assert_int_equal(pthread_create(&ta, NULL, run_thread, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, run_thread, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.ret, 0);
	assert_int_equal(b.ret, 0);
	assert_int_equal(kvmini_vm_exit_status(a.vm), KVMINI_EXIT_OK);
	assert_int_equal(kvmini_vm_exit_status(b.vm), KVMINI_EXIT_OK);
	assert_string_equal(ca.buf, "hello from a tiny guest\n");
	assert_string_equal(cb.buf, "hello from a tiny guest\n");
	kvmini_vm_destroy(&a.vm);
	kvmini_vm_destroy(&b.vm);
}

static void noop_handler(int sig)
{
	(void)sig;
}

/* The library never replaces a handler of the caller's. */
static void test_kick_signal_taken(void **state)
{
	(void)state;
	int sig = SIGRTMIN + 5;
	struct sigaction sa = {0}, old;
	sa.sa_handler = noop_handler;
	assert_int_equal(sigaction(sig, &sa, &old), 0);

	char path[512];
	snprintf(path, sizeof(path), "%s/hello.elf", TINY_DIR);
	struct kvmini_config *cfg = NULL;
	struct kvmini_error e = {0};
	struct kvmini_vm *vm = NULL;
	assert_int_equal(kvmini_config_new(&cfg), 0);
	assert_int_equal(kvmini_config_set_kernel(cfg, path, &e), 0);
	assert_int_equal(kvmini_config_set_memory(cfg, 32ULL << 20, &e), 0);
	assert_int_equal(kvmini_config_set_kick_signal(cfg, sig, &e), 0);
	assert_int_equal(kvmini_vm_create(cfg, &vm, &e), -EBUSY);
	assert_null(vm);
	assert_int_equal(e.status, KVMINI_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "already has a handler"));
	struct sigaction now;
	assert_int_equal(sigaction(sig, NULL, &now), 0);
	assert_ptr_equal(now.sa_handler, noop_handler); /* untouched */

	/* Another signal works; the VM runs and stops as usual. */
	assert_int_equal(kvmini_config_set_kick_signal(cfg, SIGRTMIN + 6, &e), 0);
	assert_int_equal(kvmini_vm_create(cfg, &vm, &e), 0);
	assert_int_equal(kvmini_vm_start(vm, &e), 0);
	assert_int_equal(kvmini_vm_wait(vm, WAIT_MS, &e), 0);
	assert_int_equal(kvmini_vm_exit_status(vm), KVMINI_EXIT_OK);
	kvmini_vm_destroy(&vm);
	kvmini_config_free(&cfg);
	sigaction(sig, &old, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_and_misuse),
		cmocka_unit_test(test_guest_reset_and_callbacks),
		cmocka_unit_test(test_destroy_running),
		cmocka_unit_test(test_two_vms_at_once),
		cmocka_unit_test(test_kick_signal_taken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
