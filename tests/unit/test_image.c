/* test_image: --image unpacking: OCI layouts and docker-archive files built here, whiteouts, the
 * config, digests, the cache, and layers that try to escape. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <nettle/sha2.h>

#include "kvmini/image.h"
#include "tmpdir.h"

struct member {
	const char *name;
	unsigned int type;
	const char *data; /* content, or the link target */
};

#define HARDLINK 1 /* a member type: a hard link to `data` */

struct fx {
	char top[64], oci[128], cache[128];
};

static void sha256_hex(const void *p, size_t n, char hex[65])
{
	struct sha256_ctx c;
	uint8_t md[SHA256_DIGEST_SIZE];
	sha256_init(&c);
	sha256_update(&c, n, p);
	sha256_digest(&c, sizeof(md), md);
	for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* A tar (gzip when `gz`) of `members` in memory; *len its size. */
static void *make_tar(const struct member *m, unsigned int n, bool gz, size_t *len)
{
	size_t cap = 1 << 20;
	void *buf = malloc(cap);
	struct archive *w = archive_write_new();
	archive_write_set_format_pax_restricted(w);
	if (gz)
		archive_write_add_filter_gzip(w);
	assert_int_equal(archive_write_open_memory(w, buf, cap, len), ARCHIVE_OK);
	for (unsigned int i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, m[i].name);
		archive_entry_set_filetype(e, m[i].type == HARDLINK ? AE_IFREG : m[i].type);
		archive_entry_set_perm(e, m[i].type == AE_IFDIR ? 0755 : 0644);
		if (m[i].type == AE_IFLNK)
			archive_entry_set_symlink(e, m[i].data);
		if (m[i].type == HARDLINK)
			archive_entry_set_hardlink(e, m[i].data);
		size_t dl = m[i].type == AE_IFREG && m[i].data ? strlen(m[i].data) : 0;
		archive_entry_set_size(e, (la_int64_t)dl);
		assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
		if (dl)
			archive_write_data(w, m[i].data, dl);
		archive_entry_free(e);
	}
	archive_write_close(w);
	archive_write_free(w);
	return buf;
}

/* Store a blob in the layout; its digest into `digest`. */
static void put_blob(struct fx *f, const void *p, size_t n, char digest[72])
{
	char hex[65], path[512];
	sha256_hex(p, n, hex);
	snprintf(digest, 72, "sha256:%s", hex);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", f->oci, hex);
	FILE *o = fopen(path, "w");
	assert_non_null(o);
	assert_int_equal(fwrite(p, 1, n, o), n);
	fclose(o);
}

static void put_file(const char *path, const char *text)
{
	FILE *o = fopen(path, "w");
	assert_non_null(o);
	fputs(text, o);
	fclose(o);
}

/* An OCI layout of two layers (tag "v1") with the given second layer. */
static void make_oci(struct fx *f, const struct member *l2, unsigned int n2, char layer_dig[2][72])
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s/blobs/sha256'", f->oci, f->oci);
	assert_int_equal(system(cmd), 0);
	const struct member l1[] = {
		{"./", AE_IFDIR, NULL},
		{"./etc", AE_IFDIR, NULL},
		{"./etc/passwd", AE_IFREG,
		 "root:x:0:0::/root:/bin/sh\napp:x:1234:4321::/:/bin/sh\n"},
		{"./a", AE_IFDIR, NULL},
		{"./a/gone", AE_IFREG, "old"},
		{"./a/stays", AE_IFREG, "yes"},
		{"./opq", AE_IFDIR, NULL},
		{"./opq/old", AE_IFREG, "old"},
		{"./dev", AE_IFDIR, NULL},
		{"./dev/null", AE_IFCHR, NULL},
	};
	size_t len;
	void *t = make_tar(l1, sizeof(l1) / sizeof(l1[0]), false, &len);
	put_blob(f, t, len, layer_dig[0]);
	free(t);
	t = make_tar(l2, n2, true, &len);
	put_blob(f, t, len, layer_dig[1]);
	free(t);
	const char *cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{"
			  "\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],"
			  "\"Env\":[\"PATH=/bin\",\"FOO=img\"],\"WorkingDir\":\"/a\","
			  "\"User\":\"app\"}}";
	char cdig[72], man[1024], mdig[72], idx[512], path[512];
	put_blob(f, cfg, strlen(cfg), cdig);
	snprintf(man, sizeof(man),
		 "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/"
		 "vnd.oci.image.config.v1+json\",\"digest\":\"%s\"},\"layers\":["
		 "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\"},"
		 "{\"mediaType\":\"application/"
		 "vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\"}]}",
		 cdig, layer_dig[0], layer_dig[1]);
	put_blob(f, man, strlen(man), mdig);
	snprintf(idx, sizeof(idx),
		 "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"%s\",\"annotations\":"
		 "{\"org.opencontainers.image.ref.name\":\"v1\"}}]}",
		 mdig);
	snprintf(path, sizeof(path), "%s/index.json", f->oci);
	put_file(path, idx);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_int_equal(tmpdir_make(f->top, sizeof(f->top), "image"), 0);
	snprintf(f->oci, sizeof(f->oci), "%s/oci", f->top);
	snprintf(f->cache, sizeof(f->cache), "%s/cache", f->top);
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

static const struct member good_l2[] = {
	{"a/.wh.gone", AE_IFREG, ""},	   {"opq/.wh..wh..opq", AE_IFREG, ""},
	{"opq/new", AE_IFREG, "new"},	   {"b", AE_IFDIR, NULL},
	{"b/file", AE_IFREG, "layer two"}, {"b/link", AE_IFLNK, "/etc/passwd"},
};

static bool exists(const char *root, const char *rel)
{
	char p[PATH_MAX + 512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return lstat(p, &st) == 0;
}

static void test_oci(void **state)
{
	struct fx *f = *state;
	char ld[2][72];
	make_oci(f, good_l2, sizeof(good_l2) / sizeof(good_l2[0]), ld);
	char ref[256];
	snprintf(ref, sizeof(ref), "oci:%s:v1", f->oci);
	struct image_config ic;
	struct kvmini_error e = {0};
	bool built;
	if (image_prepare(ref, &ic, &built, &e) < 0)
		fail_msg("image_prepare: %s", e.msg);
	assert_true(built);
	assert_true(exists(ic.rootfs, "a/stays"));
	assert_false(exists(ic.rootfs, "a/gone"));  /* whiteout */
	assert_false(exists(ic.rootfs, "opq/old")); /* opaque directory */
	assert_true(exists(ic.rootfs, "opq/new"));
	assert_true(exists(ic.rootfs, "b/file"));
	assert_true(exists(ic.rootfs, "b/link"));
	assert_false(exists(ic.rootfs, "dev/null"));   /* device nodes are neutralised */
	assert_false(exists(ic.rootfs, "a/.wh.gone")); /* whiteouts are not files */
	assert_string_equal(ic.entrypoint[0], "/bin/sh");
	assert_string_equal(ic.entrypoint[1], "-c");
	assert_null(ic.entrypoint[2]);
	assert_string_equal(ic.cmd[0], "echo hi");
	assert_string_equal(ic.env[1], "FOO=img");
	assert_string_equal(ic.workdir, "/a");
	assert_string_equal(ic.user, "app");
	char root1[PATH_MAX];
	snprintf(root1, sizeof(root1), "%s", ic.rootfs);
	image_config_free(&ic);
	/* Second time: the cache. */
	assert_int_equal(image_prepare(ref, &ic, &built, &e), 0);
	assert_false(built);
	assert_string_equal(ic.rootfs, root1);
	image_config_free(&ic);
	/* A tag that is not there. */
	snprintf(ref, sizeof(ref), "oci:%s:v2", f->oci);
	memset(&e, 0, sizeof(e));
	assert_true(image_prepare(ref, &ic, &built, &e) < 0);
	assert_non_null(strstr(e.msg, "no tag 'v2'"));
	/* A bad reference. */
	memset(&e, 0, sizeof(e));
	assert_true(image_prepare("docker://busybox", &ic, &built, &e) < 0);
	assert_int_equal(e.status, 2);
}

static void test_oci_corrupt(void **state)
{
	struct fx *f = *state;
	char ld[2][72];
	make_oci(f, good_l2, sizeof(good_l2) / sizeof(good_l2[0]), ld);
	/* Flip a byte of the first layer's blob. */
	char p[512];
	snprintf(p, sizeof(p), "%s/blobs/sha256/%s", f->oci, ld[0] + 7);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 700), 1);
	close(fd);
	char ref[256];
	snprintf(ref, sizeof(ref), "oci:%s:v1", f->oci);
	struct image_config ic;
	struct kvmini_error e = {0};
	bool built;
	assert_true(image_prepare(ref, &ic, &built, &e) < 0);
	assert_int_equal(e.status, 125);
	assert_non_null(strstr(e.msg, "corrupt"));
	/* Truncated index. */
	snprintf(p, sizeof(p), "%s/index.json", f->oci);
	put_file(p, "{\"manifests\":[");
	memset(&e, 0, sizeof(e));
	assert_true(image_prepare(ref, &ic, &built, &e) < 0);
	assert_non_null(strstr(e.msg, "not valid JSON"));
	/* Nothing was left in the cache. */
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s/images')\"", f->cache);
	assert_int_equal(system(cmd), 0);
}

static void test_oci_escapes(void **state)
{
	struct fx *f = *state;
	const struct member bad[][2] = {
		{{"../../evil", AE_IFREG, "x"}, {"ok", AE_IFREG, "x"}},
		{{"/abs-evil", AE_IFREG, "x"}, {"ok", AE_IFREG, "x"}},
		{{"esc", AE_IFLNK, "/tmp"}, {"esc/kvmini-image-evil", AE_IFREG, "x"}},
	};
	for (unsigned int i = 0; i < 3; i++) {
		char ld[2][72];
		make_oci(f, bad[i], 2, ld);
		char ref[256];
		snprintf(ref, sizeof(ref), "oci:%s:v1", f->oci);
		struct image_config ic;
		struct kvmini_error e = {0};
		bool built;
		int ret = image_prepare(ref, &ic, &built, &e);
		if (i < 2) {
			assert_true(ret < 0);
			assert_non_null(strstr(e.msg, "bad member"));
		} else if (ret == 0) {
			image_config_free(&ic);
		}
		assert_int_not_equal(access("/tmp/kvmini-image-evil", F_OK), 0);
		char p[512];
		snprintf(p, sizeof(p), "%s/evil", f->top);
		assert_int_not_equal(access(p, F_OK), 0);
		assert_int_not_equal(access("/abs-evil", F_OK), 0);
	}
}

/* make_oci() with second layer `l2`, then image_prepare() of its tag v1: its result. */
static int prepare_oci(struct fx *f, const struct member *l2, unsigned int n,
		       struct image_config *ic, struct kvmini_error *e)
{
	char ld[2][72], ref[256];
	make_oci(f, l2, n, ld);
	snprintf(ref, sizeof(ref), "oci:%s:v1", f->oci);
	bool built;
	return image_prepare(ref, ic, &built, e);
}

/* Hard links, as `tar` writes them for a file with several names (busybox images are full of
 * them): both names are unpacked, one inode. */
static void test_oci_hardlinks(void **state)
{
	struct fx *f = *state;
	const struct member l2[] = {
		{"./b", AE_IFDIR, NULL},
		{"./b/first", AE_IFREG, "shared"},
		{"./b/second", HARDLINK, "./b/first"},
	};
	struct image_config ic;
	struct kvmini_error e = {0};
	if (prepare_oci(f, l2, 3, &ic, &e) < 0)
		fail_msg("image_prepare: %s", e.msg);
	char p1[PATH_MAX + 16], p2[PATH_MAX + 16];
	snprintf(p1, sizeof(p1), "%s/b/first", ic.rootfs);
	snprintf(p2, sizeof(p2), "%s/b/second", ic.rootfs);
	struct stat s1, s2;
	assert_int_equal(stat(p1, &s1), 0);
	assert_int_equal(stat(p2, &s2), 0);
	assert_int_equal(s1.st_ino, s2.st_ino);
	assert_int_equal(s2.st_size, 6);
	image_config_free(&ic);
}

/* A member that cannot be written is named whole in the message, "./" prefix and all gone (the
 * name once pointed into the entry's own string, which renaming the entry overwrote). */
static void test_oci_message_names_member(void **state)
{
	struct fx *f = *state;
	const struct member l2[] = {
		{"./b", AE_IFDIR, NULL},
		{"./b/hard", HARDLINK, "./no/such/target"},
	};
	struct image_config ic;
	struct kvmini_error e = {0};
	assert_true(prepare_oci(f, l2, 2, &ic, &e) < 0);
	if (!strstr(e.msg, "cannot unpack b/hard: "))
		fail_msg("the message does not name the member: %s", e.msg);
}

/* docker save: manifest.json naming the config and the layer tars. */
static void test_docker_archive(void **state)
{
	struct fx *f = *state;
	size_t l1len, l2len;
	const struct member l1[] = {{"etc", AE_IFDIR, NULL}, {"etc/hello", AE_IFREG, "one"}};
	void *t1 = make_tar(l1, 2, false, &l1len);
	const struct member l2[] = {{"etc/.wh.hello", AE_IFREG, ""}, {"two", AE_IFREG, "2"}};
	void *t2 = make_tar(l2, 2, false, &l2len);
	const char *cfg = "{\"config\":{\"Cmd\":[\"/two\"],\"Env\":[\"A=b\"]}}";
	const char *man = "[{\"Config\":\"cfg.json\",\"RepoTags\":[\"t:1\"],"
			  "\"Layers\":[\"l1/layer.tar\",\"l2/layer.tar\"]}]";
	char path[256];
	snprintf(path, sizeof(path), "%s/img.tar", f->top);
	struct archive *w = archive_write_new();
	archive_write_set_format_pax_restricted(w);
	assert_int_equal(archive_write_open_filename(w, path), ARCHIVE_OK);
	const struct {
		const char *name;
		const void *p;
		size_t n;
	} files[] = {{"manifest.json", man, strlen(man)},
		     {"cfg.json", cfg, strlen(cfg)},
		     {"l1/layer.tar", t1, l1len},
		     {"l2/layer.tar", t2, l2len}};
	for (unsigned int i = 0; i < 4; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, files[i].name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)files[i].n);
		archive_write_header(w, e);
		archive_write_data(w, files[i].p, files[i].n);
		archive_entry_free(e);
	}
	archive_write_close(w);
	archive_write_free(w);
	free(t1);
	free(t2);
	char ref[300];
	snprintf(ref, sizeof(ref), "docker-archive:%s", path);
	struct image_config ic;
	struct kvmini_error e = {0};
	bool built;
	if (image_prepare(ref, &ic, &built, &e) < 0)
		fail_msg("image_prepare: %s", e.msg);
	assert_true(exists(ic.rootfs, "two"));
	assert_false(exists(ic.rootfs, "etc/hello"));
	assert_string_equal(ic.cmd[0], "/two");
	assert_null(ic.entrypoint);
	image_config_free(&ic);
	/* Truncated: cut the archive in the middle. */
	assert_int_equal(truncate(path, 1500), 0);
	snprintf(ref, sizeof(ref), "docker-archive:%s", path);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/images'", f->cache);
	assert_int_equal(system(cmd), 0);
	memset(&e, 0, sizeof(e));
	assert_true(image_prepare(ref, &ic, &built, &e) < 0);
	assert_int_equal(e.status, 125);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_oci, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oci_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oci_escapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oci_hardlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oci_message_names_member, setup, teardown),
		cmocka_unit_test_setup_teardown(test_docker_archive, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
