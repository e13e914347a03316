/* test_log: one whole line per write, and a full stderr never blocks a logging thread. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/log.h"

static void test_line_format(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct logger lg;
	log_init(&lg, LOG_INFO, p[1]);
	log_info(&lg, "hello %d", 42);
	log_debug(&lg, "not shown");
	char buf[128] = {0};
	assert_true(read(p[0], buf, sizeof(buf) - 1) > 0);
	assert_string_equal(buf, "kvmini: info: hello 42\n");
	close(p[0]);
	close(p[1]);
}

struct flood {
	struct logger *lg;
	int lines;
	volatile int done;
};

static void *flood_log(void *arg)
{
	struct flood *f = arg;
	for (int i = 0; i < f->lines; i++)
		log_warn(f->lg, "line %04d %s", i, "....................................");
	f->done = 1;
	return NULL;
}

/* Threads logging into a pipe that nobody reads (a stalled stderr reader) finish anyway;
 * what got into the pipe is whole lines, the rest is counted. */
static void test_full_stderr_never_blocks(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
	struct logger lg;
	log_init(&lg, LOG_WARN, p[1]);
	struct flood f[2] = {{&lg, 500, 0}, {&lg, 500, 0}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, flood_log, &f[i]), 0);
	for (int i = 0; i < 200 && !(f[0].done && f[1].done); i++)
		usleep(10000);
	int finished = f[0].done && f[1].done;
	/* Unblock a (wrongly) blocked writer before asserting, so a failure cannot hang. */
	char buf[8192];
	ssize_t n = 0;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	if (!finished)
		while (!(f[0].done && f[1].done))
			if (read(p[0], buf, sizeof(buf)) <= 0)
				usleep(1000);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_true(finished);
	n = read(p[0], buf, sizeof(buf));
	assert_true(n > 0);
	int got = 0;
	for (char *line = buf; line < buf + n;) {
		char *nl = memchr(line, '\n', (size_t)(buf + n - line));
		assert_non_null(nl); /* no partial line */
		assert_memory_equal(line, "kvmini: warning: line ", 22);
		got++;
		line = nl + 1;
	}
	assert_int_equal(got + (int)atomic_load(&lg.dropped), 1000);
	assert_true(atomic_load(&lg.dropped) > 0);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_format),
		cmocka_unit_test(test_full_stderr_never_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
