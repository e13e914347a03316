/* test_vmdir: runtime and definition folders, claims, stale state after SIGKILL, listings. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
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

#include "kvmini/cli.h"
#include "kvmini/vmdir.h"

static char root[64];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/kvmini-vmdir-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void test_folder_resolution(void **state)
{
	(void)state;
	char out[VMDIR_PATH_MAX], want[VMDIR_PATH_MAX];
	struct kvmini_error e = {0};
	snprintf(want, sizeof(want), "%s/rt/deep", root);
	setenv("KVMINI_RUNTIME_DIR", want, 1);
	assert_int_equal(vmdir_runtime(out, sizeof(out), true, &e), 0);
	assert_string_equal(out, want);
	struct stat st;
	assert_int_equal(stat(out, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	unsetenv("KVMINI_RUNTIME_DIR");
	setenv("XDG_RUNTIME_DIR", root, 1);
	assert_int_equal(vmdir_runtime(out, sizeof(out), false, &e), 0);
	snprintf(want, sizeof(want), "%s/kvmini", root);
	assert_string_equal(out, want);
	setenv("XDG_RUNTIME_DIR", "relative/dir", 1); /* ignored, as the XDG spec says */
	assert_int_equal(vmdir_runtime(out, sizeof(out), false, &e), 0);
	assert_string_equal(out, geteuid() == 0 ? "/run/kvmini" : out);
	unsetenv("XDG_RUNTIME_DIR");

	setenv("KVMINI_CONFIG_DIR", "/x/defs", 1);
	assert_int_equal(vmdir_config(out, sizeof(out), false, &e), 0);
	assert_string_equal(out, "/x/defs");
	unsetenv("KVMINI_CONFIG_DIR");
	setenv("XDG_CONFIG_HOME", "/cfg", 1);
	assert_int_equal(vmdir_config(out, sizeof(out), false, &e), 0);
	assert_string_equal(out, "/cfg/kvmini/vms");
	unsetenv("XDG_CONFIG_HOME");
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("HOME", "/home/u", 1);
	assert_int_equal(vmdir_config(out, sizeof(out), false, &e), 0);
	assert_string_equal(out, "/home/u/.config/kvmini/vms");
	unsetenv("HOME");
	assert_int_equal(vmdir_config(out, sizeof(out), false, &e), 0);
	assert_string_equal(out, "/etc/kvmini/vms");
	if (home) {
		setenv("HOME", home, 1);
		free(home);
	}

	/* A folder that cannot be created: one line naming it, the resource status. */
	snprintf(want, sizeof(want), "%s/file", root);
	int fd = open(want, O_CREAT | O_WRONLY, 0600);
	close(fd);
	snprintf(want, sizeof(want), "%s/file/sub", root);
	setenv("KVMINI_RUNTIME_DIR", want, 1);
	memset(&e, 0, sizeof(e));
	assert_true(vmdir_runtime(out, sizeof(out), true, &e) < 0);
	assert_int_equal(e.status, KVMINI_EXIT_RESOURCE);
	assert_non_null(strstr(e.msg, "cannot create"));
	unsetenv("KVMINI_RUNTIME_DIR");
}

static void test_claim_probe_release(void **state)
{
	(void)state;
	struct vmdir_claim a, b;
	struct vmdir_info in;
	struct kvmini_error e = {0};
	vmdir_probe(root, "web", &in);
	assert_int_equal(in.state, VMDIR_NONE);
	assert_int_equal(vmdir_claim(&a, root, "web", &e), 0);
	assert_int_equal(vmdir_write(&a, VMDIR_PID, "1234\n"), 0);
	vmdir_probe(root, "web", &in);
	assert_int_equal(in.state, VMDIR_RUNNING);
	assert_int_equal(in.pid, 1234);
	/* The name is taken while the claim lives: status 6, one line. */
	assert_int_equal(vmdir_claim(&b, root, "web", &e), -EBUSY);
	assert_int_equal(e.status, CLI_EXIT_STATE);
	assert_non_null(strstr(e.msg, "a VM named 'web' is already running (pid 1234)"));
	assert_int_equal(vmdir_write(&a, VMDIR_EXIT, "{\"status\": 0, \"reason\": \"bye\"}"), 0);
	vmdir_release(&a);
	vmdir_release(&a); /* idempotent */
	vmdir_probe(root, "web", &in);
	assert_int_equal(in.state, VMDIR_EXITED);
	assert_int_equal(in.exit_status, 0);
	assert_string_equal(in.reason, "bye");
	/* A new claim clears the last run's record. */
	memset(&e, 0, sizeof(e));
	assert_int_equal(vmdir_claim(&b, root, "web", &e), 0);
	vmdir_probe(root, "web", &in);
	assert_int_equal(in.state, VMDIR_RUNNING);
	vmdir_release(&b);
	vmdir_probe(root, "web", &in);
	assert_int_equal(in.state, VMDIR_NONE); /* only its lock is left: no VM */
	memset(&e, 0, sizeof(e));
	assert_int_equal(vmdir_claim(&b, root, "web", &e), 0);
	assert_int_equal(vmdir_write(&b, VMDIR_CONFIG, "{}"), 0);
	vmdir_release(&b);
	vmdir_probe(root, "web", &in);
	assert_int_equal(in.state, VMDIR_DIED); /* it ran, and recorded no exit */
}

/* Forgetting a record holds the lock: refused while the VM runs, and the lock file stays
 * (a run may already have it open). */
static void test_forget(void **state)
{
	(void)state;
	struct vmdir_claim a;
	struct kvmini_error e = {0};
	struct vmdir_info in;
	assert_int_equal(vmdir_forget(root, "db"), -ENOENT);
	assert_int_equal(vmdir_claim(&a, root, "db", &e), 0);
	assert_int_equal(vmdir_write(&a, VMDIR_CONFIG, "{}"), 0);
	assert_int_equal(vmdir_forget(root, "db"), -EBUSY);
	assert_int_equal(vmdir_write(&a, VMDIR_EXIT, "{\"status\": 0}"), 0);
	vmdir_release(&a);
	vmdir_probe(root, "db", &in);
	assert_int_equal(in.state, VMDIR_EXITED);
	assert_int_equal(vmdir_forget(root, "db"), 0);
	vmdir_probe(root, "db", &in);
	assert_int_equal(in.state, VMDIR_NONE);
	char p[VMDIR_PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/db/%s", root, VMDIR_LOCK);
	assert_int_equal(access(p, F_OK), 0);
	assert_int_equal(vmdir_forget(root, "db"), -ENOENT); /* nothing left to forget */
}

/* A claim held by a process killed with SIGKILL: not running, and claimable again, which
 * removes its stale socket and pid file. */
static void test_sigkill_leaves_stale_state(void **state)
{
	(void)state;
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct vmdir_claim c;
		struct kvmini_error e = {0};
		if (vmdir_claim(&c, root, "db", &e) < 0)
			_exit(1);
		vmdir_write(&c, VMDIR_PID, "99\n");
		vmdir_write(&c, VMDIR_API_SOCK, "stale");
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char x;
	assert_int_equal(read(ready[0], &x, 1), 1);
	struct vmdir_info in;
	vmdir_probe(root, "db", &in);
	assert_int_equal(in.state, VMDIR_RUNNING);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	vmdir_probe(root, "db", &in);
	assert_int_equal(in.state, VMDIR_DIED);
	assert_int_equal(in.pid, 0);
	char p[VMDIR_PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/db/%s", root, VMDIR_API_SOCK);
	assert_int_equal(access(p, F_OK), 0); /* the stale socket is still there */
	struct vmdir_claim c;
	struct kvmini_error e = {0};
	assert_int_equal(vmdir_claim(&c, root, "db", &e), 0);
	assert_int_equal(access(p, F_OK), -1); /* cleaned up by the next claim */
	vmdir_release(&c);
	close(ready[0]);
	close(ready[1]);
}

static void test_names(void **state)
{
	(void)state;
	char d[VMDIR_PATH_MAX];
	snprintf(d, sizeof(d), "%s/defs", root);
	mkdir(d, 0700);
	const char *files[] = {"b.json", "a.json", "bad name.json", "x.txt", ".json", "c.json"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char p[VMDIR_PATH_MAX + 32];
		snprintf(p, sizeof(p), "%s/%s", d, files[i]);
		close(open(p, O_CREAT | O_WRONLY, 0600));
	}
	char **names;
	int n = vmdir_names(d, true, &names);
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "a");
	assert_string_equal(names[1], "b");
	assert_string_equal(names[2], "c");
	vmdir_free_names(names, n);
	snprintf(d, sizeof(d), "%s/none", root);
	assert_int_equal(vmdir_names(d, false, &names), 0); /* a missing folder: no VMs */
}

static void test_name_rule(void **state)
{
	(void)state;
	assert_true(cli_name_ok("web"));
	assert_true(cli_name_ok("a"));
	assert_true(cli_name_ok("Web-1.test_2"));
	char n64[65];
	memset(n64, 'a', 64);
	n64[64] = '\0';
	assert_true(cli_name_ok(n64));
	char n65[66];
	memset(n65, 'a', 65);
	n65[65] = '\0';
	assert_false(cli_name_ok(n65));
	assert_false(cli_name_ok(""));
	assert_false(cli_name_ok(NULL));
	assert_false(cli_name_ok("-web"));
	assert_false(cli_name_ok(".web"));
	assert_false(cli_name_ok("we b"));
	assert_false(cli_name_ok("we/b"));
	assert_false(cli_name_ok("web\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_folder_resolution, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_probe_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigkill_leaves_stale_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
		cmocka_unit_test(test_name_rule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
