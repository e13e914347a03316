/* rootfs: a read-only EROFS image of a --rootfs directory, built once and kept in a cache. */
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "kvmini/cache.h"
#include "kvmini/rootfs.h"

/*
 * The cache key is a SHA-256 over a walk of the directory: for every entry its path relative to
 * the root, type and mode, owner, size, mtime and ctime (both to the nanosecond) and a symbolic
 * link's target (fts(3), in its order), plus ROOTFS_FORMAT. Writing a file changes its ctime, which
 * nobody can set back, so any change of content, metadata or the set of entries gives a new key and
 * a new image; reading the whole tree is not needed. The image is built by mkfs.erofs into a
 * temporary file in the cache directory and renamed into place, so a crash or a full disk never
 * leaves a half-written image under a valid name.
 */

#define ROOTFS_FORMAT "kvmini-rootfs-1 mkfs.erofs -x-1"

/* Hash one entry of the walk. */
static void rootfs_hash_entry(struct sha256_ctx *md, const FTSENT *f, size_t root_len)
{
	const struct stat *st = f->fts_statp;
	const char *rel = f->fts_path + (f->fts_pathlen >= root_len ? root_len : f->fts_pathlen);
	char rec[PATH_MAX + 256];
	int n = snprintf(rec, sizeof(rec), "%s%c%o %u %u %lld %lld.%09ld %lld.%09ld %llu", rel, 0,
			 (unsigned int)st->st_mode, (unsigned int)st->st_uid,
			 (unsigned int)st->st_gid, (long long)st->st_size,
			 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
			 (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec,
			 (unsigned long long)st->st_rdev);
	if (n < 0 || (size_t)n >= sizeof(rec))
		n = (int)sizeof(rec) - 1;
	sha256_update(md, (size_t)n + 1, (const uint8_t *)rec);
	if (f->fts_info == FTS_SL || f->fts_info == FTS_SLNONE) {
		char target[PATH_MAX];
		ssize_t t = readlink(f->fts_accpath, target, sizeof(target));
		if (t > 0)
			sha256_update(md, (size_t)t, (const uint8_t *)target);
	}
}

int rootfs_key(const char *dir, char key[ROOTFS_KEY_LEN + 1], struct kvmini_error *e)
{
	struct stat st;
	if (stat(dir, &st) < 0)
		return cli_fail(e, ROOTFS_EXIT, errno, "--rootfs %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return cli_fail(e, ROOTFS_EXIT, ENOTDIR, "--rootfs %s is not a directory", dir);
	if (access(dir, R_OK | X_OK) < 0)
		return cli_fail(e, ROOTFS_EXIT, errno, "--rootfs %s cannot be read: %s", dir,
				strerror(errno));
	struct sha256_ctx md;
	sha256_init(&md);
	sha256_update(&md, sizeof(ROOTFS_FORMAT), (const uint8_t *)ROOTFS_FORMAT);
	char *roots[] = {(char *)dir, NULL};
	FTS *fts = fts_open(roots, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
	int err = fts ? 0 : errno;
	char bad[PATH_MAX] = "";
	for (FTSENT *f; fts && !err && (f = fts_read(fts));) {
		if (f->fts_info == FTS_DP)
			continue; /* a directory's second visit */
		if (f->fts_info == FTS_DNR || f->fts_info == FTS_NS || f->fts_info == FTS_ERR) {
			err = f->fts_errno ? f->fts_errno : EACCES;
			snprintf(bad, sizeof(bad), "%s", f->fts_path);
			break;
		}
		rootfs_hash_entry(&md, f, strlen(dir));
	}
	if (fts)
		fts_close(fts);
	uint8_t out[SHA256_DIGEST_SIZE];
	sha256_digest(&md, sizeof(out), out);
	if (err)
		return cli_fail(e, ROOTFS_EXIT, err, "--rootfs %s: cannot read %s: %s", dir,
				bad[0] ? bad : dir, strerror(err));
	for (unsigned int i = 0; i < SHA256_DIGEST_SIZE; i++)
		snprintf(key + 2 * i, 3, "%02x", out[i]);
	return 0;
}

/* Run mkfs.erofs; its last line of output goes into `why`. 0, or -errno / -EIO. */
static int rootfs_mkfs(const char *img, const char *dir, char *why, size_t why_size)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int err = errno;
		close(pfd[0]);
		close(pfd[1]);
		return -err;
	}
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		dup2(pfd[1], STDERR_FILENO);
		execlp("mkfs.erofs", "mkfs.erofs", "-x-1", "--quiet", img, dir, (char *)NULL);
		fprintf(stderr, "mkfs.erofs not found (apt-get install erofs-utils)\n");
		_exit(127);
	}
	close(pfd[1]);
	char buf[4096];
	size_t len = 0;
	ssize_t r;
	while ((r = read(pfd[0], buf + len, sizeof(buf) - 1 - len)) > 0 ||
	       (r < 0 && errno == EINTR)) {
		if (r > 0)
			len += (size_t)r;
		if (len == sizeof(buf) - 1) /* keep the tail */
			len = 0;
	}
	close(pfd[0]);
	buf[len] = '\0';
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	char *last = strrchr(buf, '\n');
	const char *line = last ? last + 1 : buf;
	size_t n = strnlen(line, why_size - 1);
	memcpy(why, line, n);
	why[n] = '\0';
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int rootfs_image(const char *dir, char *img, size_t img_size, bool *built, struct kvmini_error *e)
{
	*built = false;
	char key[ROOTFS_KEY_LEN + 1];
	int ret = rootfs_key(dir, key, e);
	if (ret < 0)
		return ret;
	char cache[PATH_MAX];
	ret = cache_dir(cache, sizeof(cache), "rootfs", e);
	if (ret < 0)
		return ret;
	int n = snprintf(img, img_size, "%s/%s.erofs", cache, key);
	if (n < 0 || (size_t)n >= img_size)
		return cli_fail(e, ROOTFS_EXIT, ENAMETOOLONG, "the cache folder path is too long");
	if (access(img, R_OK) == 0) {
		cache_touch(img);
		return 0;
	}
	char tmp[PATH_MAX + 32];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", img, (int)getpid());
	char why[512] = "";
	ret = rootfs_mkfs(tmp, dir, why, sizeof(why));
	if (ret < 0) {
		unlink(tmp);
		return cli_fail(e, ROOTFS_EXIT, -ret,
				"cannot build the root image of %s in %s: %s (is the disk full?)",
				dir, cache, why[0] ? why : strerror(-ret));
	}
	if (rename(tmp, img) < 0) {
		int err = errno;
		unlink(tmp);
		return cli_fail(e, ROOTFS_EXIT, err, "cannot store the root image in %s: %s", cache,
				strerror(err));
	}
	*built = true;
	return 0;
}
