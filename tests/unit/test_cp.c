/* test_cp: the host side of `kvmini cp`: what a hostile guest's tar stream may and may not make
 * cp_extract() write. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/cp.h"
#include "tmpdir.h"

struct member {
	const char *name;
	unsigned int type;    /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR... */
	const char *data;     /* file content, or the link target */
	const char *hardlink; /* or NULL */
};

/* A tar file of `members` (pax, as a guest agent could write anything), its fd at offset 0. */
static int make_tar(const struct member *m, unsigned int n)
{
	char path[] = "/tmp/kvmini-cp-tar-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	struct archive *w = archive_write_new();
	archive_write_set_format_pax_restricted(w);
	assert_int_equal(archive_write_open_fd(w, fd), ARCHIVE_OK);
	for (unsigned int i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, m[i].name);
		archive_entry_set_filetype(e, m[i].type);
		archive_entry_set_perm(e, m[i].type == AE_IFDIR ? 0755 : 0644);
		if (m[i].hardlink)
			archive_entry_set_hardlink(e, m[i].hardlink);
		if (m[i].type == AE_IFLNK)
			archive_entry_set_symlink(e, m[i].data);
		if (m[i].type == AE_IFREG && m[i].data && !m[i].hardlink)
			archive_entry_set_size(e, (la_int64_t)strlen(m[i].data));
		assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
		if (m[i].type == AE_IFREG && m[i].data && !m[i].hardlink)
			archive_write_data(w, m[i].data, strlen(m[i].data));
		archive_entry_free(e);
	}
	archive_write_close(w);
	archive_write_free(w);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

struct fx {
	char top[64], dst[96], outside[96];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_int_equal(tmpdir_make(f->top, sizeof(f->top), "cp"), 0);
	snprintf(f->dst, sizeof(f->dst), "%s/dst", f->top);
	snprintf(f->outside, sizeof(f->outside), "%s/outside", f->top);
	assert_int_equal(mkdir(f->dst, 0755), 0);
	assert_int_equal(mkdir(f->outside, 0755), 0);
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

/* Nothing may appear in the directory beside dst. */
static void assert_outside_empty(struct fx *f)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\" && test ! -e '%s/evil'", f->outside,
		 f->top);
	assert_int_equal(system(cmd), 0);
}

static int extract(struct fx *f, const struct member *m, unsigned int n, struct kvmini_error *e)
{
	int fd = make_tar(m, n);
	memset(e, 0, sizeof(*e));
	int ret = cp_extract(fd, f->dst, e);
	close(fd);
	return ret;
}

static void test_good_stream(void **state)
{
	struct fx *f = *state;
	const struct member m[] = {
		{"data", AE_IFDIR, NULL, NULL},
		{"data/a.txt", AE_IFREG, "hello\n", NULL},
		{"data/sub", AE_IFDIR, NULL, NULL},
		{"data/sub/b", AE_IFREG, "", NULL},
		{"data/link", AE_IFLNK, "a.txt", NULL},
		{"data/abs", AE_IFLNK, "/etc/passwd", NULL}, /* kept as a link, never followed */
	};
	struct kvmini_error e;
	assert_int_equal(extract(f, m, 6, &e), 0);
	char p[160], buf[16] = {0};
	snprintf(p, sizeof(p), "%s/data/a.txt", f->dst);
	int fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 6);
	close(fd);
	assert_string_equal(buf, "hello\n");
	snprintf(p, sizeof(p), "%s/data/abs", f->dst);
	char target[64] = {0};
	assert_int_equal(readlink(p, target, sizeof(target)), 11);
	assert_string_equal(target, "/etc/passwd");
}

static void test_refused(void **state)
{
	struct fx *f = *state;
	struct kvmini_error e;
	const struct member dotdot[] = {{"../outside/evil", AE_IFREG, "x", NULL}};
	assert_true(extract(f, dotdot, 1, &e) < 0);
	assert_non_null(strstr(e.msg, ".."));
	const struct member deep[] = {{"a/b/../../../evil", AE_IFREG, "x", NULL}};
	assert_true(extract(f, deep, 1, &e) < 0);
	const struct member abs[] = {{"/tmp/kvmini-cp-evil", AE_IFREG, "x", NULL}};
	assert_true(extract(f, abs, 1, &e) < 0);
	assert_non_null(strstr(e.msg, "absolute"));
	assert_int_not_equal(access("/tmp/kvmini-cp-evil", F_OK), 0);
	const struct member dev[] = {{"null", AE_IFCHR, NULL, NULL}};
	assert_true(extract(f, dev, 1, &e) < 0);
	assert_non_null(strstr(e.msg, "not a file"));
	const struct member fifo[] = {{"fifo", AE_IFIFO, NULL, NULL}};
	assert_true(extract(f, fifo, 1, &e) < 0);
	const struct member hard[] = {{"h", AE_IFREG, NULL, "/etc/passwd"}};
	assert_true(extract(f, hard, 1, &e) < 0);
	assert_non_null(strstr(e.msg, "hard link"));
	/* A symlink out, then a file through it: the file must not land outside. */
	char out[128];
	snprintf(out, sizeof(out), "%s", f->outside);
	const struct member through[] = {{"esc", AE_IFLNK, out, NULL},
					 {"esc/evil", AE_IFREG, "x", NULL}};
	if (extract(f, through, 2, &e) == 0) {
		/* libarchive removed the link and made a real directory (SECURE_SYMLINKS with
		 * UNLINK): the file is inside dst. */
		char p[160];
		struct stat st;
		snprintf(p, sizeof(p), "%s/esc", f->dst);
		assert_int_equal(lstat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
	}
	assert_outside_empty(f);
	/* A damaged stream. */
	char junk[] = "/tmp/kvmini-cp-junk-XXXXXX";
	int fd = mkstemp(junk);
	unlink(junk);
	assert_int_equal(write(fd, "this is not a tar stream at all", 31), 31);
	lseek(fd, 0, SEEK_SET);
	memset(&e, 0, sizeof(e));
	assert_true(cp_extract(fd, f->dst, &e) < 0);
	close(fd);
	/* A stream cut in the middle of a member's data: that member is not left half-written. */
	static char big[200000];
	memset(big, 'b', sizeof(big) - 1);
	const struct member cut[] = {{"whole", AE_IFREG, "complete", NULL},
				     {"half", AE_IFREG, big, NULL}};
	fd = make_tar(cut, 2);
	assert_int_equal(ftruncate(fd, 1536 + 512 + 100000), 0);
	memset(&e, 0, sizeof(e));
	assert_true(cp_extract(fd, f->dst, &e) < 0);
	close(fd);
	char hp[160];
	snprintf(hp, sizeof(hp), "%s/half", f->dst);
	assert_int_not_equal(access(hp, F_OK), 0);
	snprintf(hp, sizeof(hp), "%s/whole", f->dst);
	assert_int_equal(access(hp, F_OK), 0);
	/* A destination that is not a directory. */
	fd = make_tar(dotdot, 1);
	memset(&e, 0, sizeof(e));
	assert_true(cp_extract(fd, "/etc/passwd", &e) < 0);
	assert_non_null(strstr(e.msg, "not a directory"));
	close(fd);
	assert_outside_empty(f);
}

static void test_check_member(void **state)
{
	(void)state;
	char why[128];
	assert_int_equal(cp_check_member("a/b..c/..d", AE_IFREG, false, why, sizeof(why)), 0);
	assert_int_equal(cp_check_member("a/..", AE_IFDIR, false, why, sizeof(why)), -EPERM);
	assert_int_equal(cp_check_member("..", AE_IFDIR, false, why, sizeof(why)), -EPERM);
	assert_int_equal(cp_check_member("", AE_IFREG, false, why, sizeof(why)), -EPERM);
	assert_int_equal(cp_check_member("x", AE_IFSOCK, false, why, sizeof(why)), -EPERM);
	assert_int_equal(cp_check_member("x", AE_IFBLK, false, why, sizeof(why)), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test(test_check_member),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
