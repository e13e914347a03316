/* test_require: REQUIRE_OR_SKIP skips a test, except with KVMINI_REQUIRE_HOST (make check) set,
 * where it fails it: a missing capability must not pass as a skip. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "require.h"

static void needs_what_is_missing(void **state)
{
	(void)state;
	REQUIRE_OR_SKIP("a stand-in for a missing /dev/net/tun");
}

/* Run a cmocka group of the one test above in a child, with or without the variable: its
 * exit status (the number of failed tests). */
static int run_child(int require)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0) { /* the child's own report would read like this test failing */
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		if (require)
			setenv("KVMINI_REQUIRE_HOST", "1", 1);
		else
			unsetenv("KVMINI_REQUIRE_HOST");
		const struct CMUnitTest t[] = {cmocka_unit_test(needs_what_is_missing)};
		_exit(cmocka_run_group_tests_name("child", t, NULL, NULL));
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_skip_without_require(void **state)
{
	(void)state;
	assert_int_equal(run_child(0), 0);
}

static void test_fail_with_require(void **state)
{
	(void)state;
	assert_int_equal(run_child(1), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_skip_without_require),
		cmocka_unit_test(test_fail_with_require),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
