/*
 * pause-test: pause and resume a Linux guest through libkvmini. The guest prints a counter
 * every 100 ms; paused, it must print nothing; resumed, it must go on counting.
 *
 *   pause-test KERNEL INITRD
 *
 * Prints what it saw; exit 0 on success, 1 on a failed check, 2 on a usage or set-up error.
 * Run by tests/linux/api-tests.sh on a real Linux guest.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvmini.h"

#define READY_S	 600 /* nested TCG boots slowly */
#define PAUSED_S 3

struct console {
	pthread_mutex_t lock;
	char text[1 << 20];
	size_t len;
};

static void on_console(void *opaque, const uint8_t *buf, size_t len)
{
	struct console *c = opaque;
	pthread_mutex_lock(&c->lock);
	if (len > sizeof(c->text) - 1 - c->len)
		len = sizeof(c->text) - 1 - c->len;
	memcpy(c->text + c->len, buf, len);
	c->len += len;
	c->text[c->len] = '\0';
	pthread_mutex_unlock(&c->lock);
}

/* The highest "tick N" printed so far (-1: none), and the console's length. */
static long last_tick(struct console *c, size_t *len)
{
	long n = -1;
	pthread_mutex_lock(&c->lock);
	for (const char *p = c->text; (p = strstr(p, "tick ")); p += 5)
		n = strtol(p + 5, NULL, 10) > n ? strtol(p + 5, NULL, 10) : n;
	if (len)
		*len = c->len;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* Wait up to `secs` for a tick above `above`; returns it, or -1. */
static long wait_tick(struct console *c, long above, int secs)
{
	for (int i = 0; i < secs * 10; i++) {
		long n = last_tick(c, NULL);
		if (n > above)
			return n;
		usleep(100000);
	}
	return -1;
}

static int fail(struct kvmini_vm **vm, const char *what)
{
	printf("pause-test: FAIL: %s\n", what);
	kvmini_vm_destroy(vm);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s KERNEL INITRD\n", argv[0]);
		return 2;
	}
	static struct console con = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct kvmini_error e = {0};
	struct kvmini_config *cfg = NULL;
	struct kvmini_vm *vm = NULL;
	if (kvmini_config_new(&cfg) < 0 || kvmini_config_set_kernel(cfg, argv[1], &e) < 0 ||
	    kvmini_config_set_initrd(cfg, argv[2], &e) < 0 ||
	    kvmini_config_set_cmdline(
		    cfg, "-- i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done", 0, &e) <
		    0 ||
	    kvmini_config_set_console_callback(cfg, on_console, &con, &e) < 0 ||
	    kvmini_config_set_log(cfg, KVMINI_LOG_INFO, NULL, NULL, 2, &e) < 0 ||
	    kvmini_config_set_seccomp(cfg, KVMINI_SECCOMP_KILL, &e) < 0 ||
	    kvmini_vm_create(cfg, &vm, &e) < 0 || kvmini_vm_start(vm, &e) < 0 ||
	    kvmini_vm_confine_thread(vm, KVMINI_THREAD_CONTROL, "main", &e) < 0) {
		fprintf(stderr, "pause-test: %s\n", e.msg);
		kvmini_vm_destroy(&vm);
		return 2;
	}
	kvmini_config_free(&cfg);

	for (int round = 1; round <= 2; round++) {
		long before = wait_tick(&con, round == 1 ? 4 : last_tick(&con, NULL), READY_S);
		if (before < 0)
			return fail(&vm, "the guest printed no (new) tick");
		if (kvmini_vm_pause(vm, &e) < 0)
			return fail(&vm, e.msg);
		if (kvmini_vm_state(vm) != KVMINI_STATE_PAUSED)
			return fail(&vm, "state is not paused after kvmini_vm_pause");
		usleep(300000); /* what was already queued drains */
		size_t len0, len1;
		long t0 = last_tick(&con, &len0);
		sleep(PAUSED_S);
		long t1 = last_tick(&con, &len1);
		printf("pause-test: round %d: paused at tick %ld; %d s later tick %ld, %zu new "
		       "bytes\n",
		       round, t0, PAUSED_S, t1, len1 - len0);
		if (len1 != len0)
			return fail(&vm, "the guest printed while paused");
		if (kvmini_vm_resume(vm, &e) < 0)
			return fail(&vm, e.msg);
		long after = wait_tick(&con, t1, 120);
		printf("pause-test: round %d: resumed, tick %ld follows\n", round, after);
		if (after < 0)
			return fail(&vm, "no tick after resume");
	}
	kvmini_vm_stop(vm, KVMINI_EXIT_OK, "stopped by pause-test");
	if (kvmini_vm_wait(vm, 60000, &e) < 0)
		return fail(&vm, e.msg);
	printf("pause-test: PASS (%s)\n", kvmini_vm_stop_reason(vm));
	kvmini_vm_destroy(&vm);
	return 0;
}
