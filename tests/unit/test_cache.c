/* test_cache: the sandboxes' cache folder: where it is, what `list` sees, what `prune` removes
 * (by age, by size, stale temporaries), its lock against a kvmini using the cache, and bad
 * options. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/cache.h"
#include "tmpdir.h"

struct fx {
	char top[64], cache[96];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_int_equal(tmpdir_make(f->top, sizeof(f->top), "cache"), 0);
	snprintf(f->cache, sizeof(f->cache), "%s/c/a/c/h/e", f->top);
	setenv("KVMINI_CACHE_DIR", f->cache, 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	assert_int_equal(tmpdir_remove(f->top), 0);
	free(f);
	return 0;
}

static void key(char c, char out[65])
{
	memset(out, c, 64);
	out[64] = '\0';
}

/* A file of `bytes` random-ish bytes at CACHE/rel, its mtime `age` seconds ago. */
static void put(const struct fx *f, const char *rel, size_t bytes, time_t age)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", f->cache, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	char buf[4096];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 7 + bytes);
	for (size_t done = 0; done < bytes;) {
		size_t n = bytes - done < sizeof(buf) ? bytes - done : sizeof(buf);
		assert_int_equal(write(fd, buf, n), (ssize_t)n);
		done += n;
	}
	struct timespec ts[2] = {{.tv_sec = time(NULL) - age}, {.tv_sec = time(NULL) - age}};
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
}

static bool there(const struct fx *f, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", f->cache, rel);
	return lstat(p, &st) == 0;
}

static void mk(const struct fx *f, const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", f->cache, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

/* Run `kvmini cache ARGS...` in this process; its exit status. Output to /dev/null. */
static int verb(const char *a1, const char *a2, const char *a3, const char *a4)
{
	char *argv[8] = {"kvmini", "cache"};
	int argc = 2;
	const char *a[] = {a1, a2, a3, a4};
	for (int i = 0; i < 4 && a[i]; i++)
		argv[argc++] = (char *)a[i];
	fflush(stdout);
	int saved = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY);
	dup2(null, STDOUT_FILENO);
	int status = cache_main(argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(null);
	return status;
}

/* Three root images (used 1 h, 2 d, 10 d ago; 8, 16, 32 KiB) and two unpacked images (used
 * now and 3 d ago by their KEY.used), plus names that are not entries. */
static void populate(const struct fx *f)
{
	char k[65], rel[128];
	char dir[PATH_MAX];
	struct kvmini_error e = {0};
	assert_int_equal(cache_dir(dir, sizeof(dir), "rootfs", &e), 0);
	assert_int_equal(cache_dir(dir, sizeof(dir), "images", &e), 0);
	key('a', k);
	snprintf(rel, sizeof(rel), "rootfs/%s.erofs", k);
	put(f, rel, 8192, 3600);
	key('b', k);
	snprintf(rel, sizeof(rel), "rootfs/%s.erofs", k);
	put(f, rel, 16384, 2 * 86400);
	key('c', k);
	snprintf(rel, sizeof(rel), "rootfs/%s.erofs", k);
	put(f, rel, 32768, 10 * 86400);
	key('d', k);
	snprintf(rel, sizeof(rel), "images/%s", k);
	mk(f, rel);
	snprintf(rel, sizeof(rel), "images/%s/file", k);
	put(f, rel, 4096, 100 * 86400); /* the tree's own times do not count */
	snprintf(rel, sizeof(rel), "images/%s.used", k);
	put(f, rel, 0, 0);
	key('e', k);
	snprintf(rel, sizeof(rel), "images/%s", k);
	mk(f, rel);
	snprintf(rel, sizeof(rel), "images/%s.used", k);
	put(f, rel, 0, 3 * 86400);
	put(f, "rootfs/notakey.erofs", 10, 0);
	put(f, "images/README", 10, 0);
}

static void test_dir(void **state)
{
	struct fx *f = *state;
	char dir[PATH_MAX], want[PATH_MAX];
	struct kvmini_error e = {0};
	assert_int_equal(cache_dir(dir, sizeof(dir), "rootfs", &e), 0);
	snprintf(want, sizeof(want), "%s/rootfs", f->cache);
	assert_string_equal(dir, want);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0); /* made, with every parent */
	assert_int_equal(cache_dir(dir, sizeof(dir), NULL, &e), 0);
	assert_string_equal(dir, f->cache);

	/* XDG_CACHE_HOME, then HOME; neither: a clear error. */
	unsetenv("KVMINI_CACHE_DIR");
	char xdg[128];
	snprintf(xdg, sizeof(xdg), "%s/xdg", f->top);
	setenv("XDG_CACHE_HOME", xdg, 1);
	assert_int_equal(cache_dir(dir, sizeof(dir), "images", &e), 0);
	snprintf(want, sizeof(want), "%s/kvmini/images", xdg);
	assert_string_equal(dir, want);
	unsetenv("XDG_CACHE_HOME");
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	unsetenv("HOME");
	assert_true(cache_dir(dir, sizeof(dir), NULL, &e) < 0);
	assert_non_null(strstr(e.msg, "KVMINI_CACHE_DIR"));
	assert_int_equal(e.status, KVMINI_EXEC_FAILED);
	if (home)
		setenv("HOME", home, 1);
	free(home);

	/* A path that does not fit, and one under a file. */
	setenv("KVMINI_CACHE_DIR", f->cache, 1);
	struct kvmini_error e2 = {0};
	char small[16];
	assert_int_equal(cache_dir(small, sizeof(small), "rootfs", &e2), -ENAMETOOLONG);
	put(f, "afile", 1, 0);
	struct kvmini_error e3 = {0};
	assert_true(cache_dir(dir, sizeof(dir), "afile/rootfs", &e3) < 0);
	assert_non_null(strstr(e3.msg, "cannot create cache folder"));
}

static void test_scan(void **state)
{
	struct fx *f = *state;
	populate(f);
	char k[65];
	struct cache_entry *v;
	size_t n;
	assert_int_equal(cache_scan(f->cache, &v, &n), 0);
	assert_int_equal(n, 5);
	/* Most recently used first: d (now), a (1 h), b (2 d), e (3 d), c (10 d). */
	const char order[] = "dabec";
	for (size_t i = 0; i < n; i++) {
		key(order[i], k);
		assert_non_null(strstr(v[i].name, k));
		if (i)
			assert_true(v[i - 1].used >= v[i].used);
	}
	assert_true(v[1].bytes >= 8192);
	assert_true(v[4].bytes >= 32768);
	assert_true(v[0].bytes >= 4096); /* an image's tree is counted */
	free(v);

	struct cache_entry *none;
	char missing[PATH_MAX];
	snprintf(missing, sizeof(missing), "%s/nothing", f->top);
	assert_int_equal(cache_scan(missing, &none, &n), 0);
	assert_int_equal(n, 0);
}

static void test_pick(void **state)
{
	(void)state;
	time_t now = 1000000;
	struct cache_entry v[4] = {
		{.name = "w", .bytes = 100, .used = now},
		{.name = "x", .bytes = 200, .used = now - 50},
		{.name = "y", .bytes = 300, .used = now - 100},
		{.name = "z", .bytes = 50, .used = now - 200},
	};
	struct cache_prune_opts all = {.max_bytes = UINT64_MAX, .now = now};
	for (size_t i = 0; i < 4; i++)
		assert_true(cache_prune_pick(v, 4, i, &all));
	assert_false(cache_prune_pick(v, 4, 4, &all));

	struct cache_prune_opts age = {.unused_for = 100, .max_bytes = UINT64_MAX, .now = now};
	assert_false(cache_prune_pick(v, 4, 0, &age));
	assert_false(cache_prune_pick(v, 4, 1, &age));
	assert_true(cache_prune_pick(v, 4, 2, &age));
	assert_true(cache_prune_pick(v, 4, 3, &age));

	/* Size: the most recently used that fit are kept, everything after them goes. */
	struct cache_prune_opts size = {.max_bytes = 300, .now = now};
	assert_false(cache_prune_pick(v, 4, 0, &size));
	assert_false(cache_prune_pick(v, 4, 1, &size));
	assert_true(cache_prune_pick(v, 4, 2, &size));
	assert_true(cache_prune_pick(v, 4, 3, &size));
	struct cache_prune_opts zero = {.max_bytes = 0, .now = now};
	assert_true(cache_prune_pick(v, 4, 0, &zero));

	/* Both: either one removes. */
	struct cache_prune_opts both = {.unused_for = 60, .max_bytes = 1000, .now = now};
	assert_false(cache_prune_pick(v, 4, 0, &both));
	assert_false(cache_prune_pick(v, 4, 1, &both));
	assert_true(cache_prune_pick(v, 4, 2, &both));
}

static void test_prune(void **state)
{
	struct fx *f = *state;
	populate(f);
	char k[65], rel[160];
	/* Stale temporaries of a dead kvmini, and an orphaned KEY.used. */
	key('a', k);
	snprintf(rel, sizeof(rel), "rootfs/%s.erofs.tmp.12345", k);
	put(f, rel, 100, 0);
	mk(f, "images/tmp.12345");
	put(f, "images/tmp.12345/partial", 100, 0);
	key('f', k);
	snprintf(rel, sizeof(rel), "images/%s.used", k);
	put(f, rel, 0, 0);

	/* --dry-run removes nothing. */
	assert_int_equal(verb("prune", "--unused-for", "1d", "--dry-run"), 0);
	key('c', k);
	snprintf(rel, sizeof(rel), "rootfs/%s.erofs", k);
	assert_true(there(f, rel));
	assert_true(there(f, "images/tmp.12345"));

	/* Unused for a day: b (2 d), e (3 d) and c (10 d) go; a and d stay. */
	assert_int_equal(verb("prune", "--unused-for", "1d", NULL), 0);
	const char *gone = "bce", *kept = "ad";
	for (const char *c = gone; *c; c++) {
		key(*c, k);
		snprintf(rel, sizeof(rel), *c == 'e' ? "images/%s" : "rootfs/%s.erofs", k);
		assert_false(there(f, rel));
	}
	key('e', k);
	snprintf(rel, sizeof(rel), "images/%s.used", k);
	assert_false(there(f, rel)); /* its use record went with it */
	for (const char *c = kept; *c; c++) {
		key(*c, k);
		snprintf(rel, sizeof(rel), *c == 'd' ? "images/%s/file" : "rootfs/%s.erofs", k);
		assert_true(there(f, rel));
	}
	key('a', k);
	snprintf(rel, sizeof(rel), "rootfs/%s.erofs.tmp.12345", k);
	assert_false(there(f, rel));
	assert_false(there(f, "images/tmp.12345"));
	key('f', k);
	snprintf(rel, sizeof(rel), "images/%s.used", k);
	assert_false(there(f, rel));
	assert_true(there(f, "rootfs/notakey.erofs")); /* not ours: left alone */
	assert_true(there(f, "images/README"));

	/* 12 KiB: d (about 8 KiB with its folder) fits, a (8 KiB more) does not. */
	assert_int_equal(verb("prune", "--max-size", "12K", NULL), 0);
	key('d', k);
	snprintf(rel, sizeof(rel), "images/%s/file", k);
	assert_true(there(f, rel));
	key('a', k);
	snprintf(rel, sizeof(rel), "rootfs/%s.erofs", k);
	assert_false(there(f, rel));

	/* No option: all. */
	assert_int_equal(verb("prune", NULL, NULL, NULL), 0);
	struct cache_entry *v;
	size_t n;
	assert_int_equal(cache_scan(f->cache, &v, &n), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(verb("list", NULL, NULL, NULL), 0);
}

/* cache_rm never follows a symbolic link out of what it removes. */
static void test_rm_no_follow(void **state)
{
	struct fx *f = *state;
	char out[PATH_MAX], in[PATH_MAX], p[PATH_MAX + 16];
	snprintf(out, sizeof(out), "%s/outside", f->top);
	assert_int_equal(mkdir(out, 0755), 0);
	snprintf(p, sizeof(p), "%s/keep", out);
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	snprintf(in, sizeof(in), "%s/tree", f->top);
	assert_int_equal(mkdir(in, 0755), 0);
	snprintf(p, sizeof(p), "%s/link", in);
	assert_int_equal(symlink(out, p), 0);
	assert_int_equal(cache_rm(AT_FDCWD, in), 0);
	struct stat st;
	assert_true(lstat(in, &st) < 0);
	snprintf(p, sizeof(p), "%s/keep", out);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(cache_rm(AT_FDCWD, in), 0); /* gone already: fine */
}

static void test_touch(void **state)
{
	struct fx *f = *state;
	populate(f);
	char k[65], rel[160], p[PATH_MAX];
	struct stat st;
	key('c', k);
	snprintf(rel, sizeof(rel), "rootfs/%s.erofs", k);
	snprintf(p, sizeof(p), "%s/%s", f->cache, rel);
	cache_touch(p);
	assert_int_equal(stat(p, &st), 0);
	assert_true(time(NULL) - st.st_mtime < 60);
	/* An image: KEY.used, made if missing; the tree's own mtime stays. */
	key('d', k);
	snprintf(p, sizeof(p), "%s/images/%s", f->cache, k);
	struct stat before;
	assert_int_equal(stat(p, &before), 0);
	snprintf(rel, sizeof(rel), "images/%s.used", k);
	char used[PATH_MAX];
	snprintf(used, sizeof(used), "%s/%s", f->cache, rel);
	unlink(used);
	cache_touch(p);
	assert_int_equal(stat(used, &st), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mtime, before.st_mtime);
	assert_int_equal(st.st_ctime, before.st_ctime);
}

/* prune waits while a kvmini holds the cache (cache_hold), and goes on once it lets go. */
static void test_lock(void **state)
{
	struct fx *f = *state;
	populate(f);
	struct kvmini_error e = {0};
	int hold = cache_hold(&e);
	assert_true(hold >= 0);
	int hold2 = cache_hold(&e); /* shared: a second user is not kept out */
	assert_true(hold2 >= 0);
	cache_release(&hold2);
	assert_int_equal(hold2, -1);
	fflush(stdout);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(hold); /* the child's copy would hold the lock for it */
		_exit(verb("prune", NULL, NULL, NULL));
	}
	char k[65], rel[160];
	key('a', k);
	snprintf(rel, sizeof(rel), "rootfs/%s.erofs", k);
	usleep(300 * 1000);
	assert_true(there(f, rel)); /* still held: prune waits */
	int st;
	assert_int_equal(waitpid(pid, &st, WNOHANG), 0);
	cache_release(&hold);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_false(there(f, rel));
}

static void test_bad_options(void **state)
{
	(void)state;
	assert_int_equal(verb(NULL, NULL, NULL, NULL), KVMINI_EXIT_USAGE);
	assert_int_equal(verb("bogus", NULL, NULL, NULL), KVMINI_EXIT_USAGE);
	assert_int_equal(verb("prune", "--max-size", "lots", NULL), KVMINI_EXIT_USAGE);
	assert_int_equal(verb("prune", "--unused-for", "5y", NULL), KVMINI_EXIT_USAGE);
	assert_int_equal(verb("prune", "--unused-for", "d", NULL), KVMINI_EXIT_USAGE);
	assert_int_equal(verb("prune", "--unused-for", "5dd", NULL), KVMINI_EXIT_USAGE);
	assert_int_equal(verb("prune", "--max-size", NULL, NULL), KVMINI_EXIT_USAGE);
	assert_int_equal(verb("prune", "--nope", NULL, NULL), KVMINI_EXIT_USAGE);
	assert_int_equal(verb("prune", "extra", NULL, NULL), KVMINI_EXIT_USAGE);
	assert_int_equal(verb("list", "--dry-run", NULL, NULL), KVMINI_EXIT_USAGE);
	assert_int_equal(verb("--help", NULL, NULL, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
		cmocka_unit_test(test_pick),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rm_no_follow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_touch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
