/* cache: the sandboxes' cache folder, its lock, and `kvmini cache list|prune`. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/cache.h"

/*
 * Layout: $CACHE/rootfs/KEY.erofs (root images, rootfs.c), $CACHE/images/KEY/ (unpacked
 * images, image.c) with $CACHE/images/KEY.used (its last use), $CACHE/lock. Entries are made
 * under temporary names (rootfs/KEY.erofs.tmp.PID, images/tmp.PID) and renamed into place.
 *
 * Lock. A kvmini that looks an entry up, makes it or opens it holds $CACHE/lock shared (flock)
 * until its VM has the root image open; a running VM needs nothing more, since an image it has
 * open stays readable after it is unlinked. `prune` holds the lock exclusive, so it never
 * removes a tree mkfs.erofs is reading or an image between its lookup and its open, and every
 * temporary name it finds belongs to a kvmini that died: it removes those too.
 *
 * Last use: a root image's mtime (set when it is used; nothing reads it otherwise); an unpacked
 * image's KEY.used (touching the tree itself would change the key of its root image).
 */

#define CACHE_LOCK "lock"

int cache_dir(char *out, size_t size, const char *sub, struct kvmini_error *e)
{
	const char *env = getenv("KVMINI_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	const char *sep = sub ? "/" : "", *s = sub ? sub : "";
	int n;
	if (env && *env)
		n = snprintf(out, size, "%s%s%s", env, sep, s);
	else if (xdg && *xdg)
		n = snprintf(out, size, "%s/kvmini%s%s", xdg, sep, s);
	else if (home && *home)
		n = snprintf(out, size, "%s/.cache/kvmini%s%s", home, sep, s);
	else
		return cli_fail(e, KVMINI_EXEC_FAILED, ENOENT,
				"no cache folder: set KVMINI_CACHE_DIR or HOME");
	if (n < 0 || (size_t)n >= size)
		return cli_fail(e, KVMINI_EXEC_FAILED, ENAMETOOLONG,
				"the cache folder path is too long");
	/* mkdir -p */
	for (char *p = out + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(out, 0755) < 0 && errno != EEXIST) {
			int err = errno;
			*p = c;
			return cli_fail(e, KVMINI_EXEC_FAILED, err,
					"cannot create cache folder %s: %s", out, strerror(err));
		}
		*p = c;
		if (!c)
			return 0;
	}
}

/* Open the lock file of the cache folder. The fd, or -errno with `e`. */
static int cache_lock_open(struct kvmini_error *e)
{
	char top[PATH_MAX - 16], p[PATH_MAX];
	int ret = cache_dir(top, sizeof(top), NULL, e);
	if (ret < 0)
		return ret;
	snprintf(p, sizeof(p), "%s/%s", top, CACHE_LOCK);
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return cli_fail(e, KVMINI_EXEC_FAILED, errno, "cannot open %s: %s", p,
				strerror(errno));
	return fd;
}

int cache_hold(struct kvmini_error *e)
{
	int fd = cache_lock_open(e);
	if (fd < 0)
		return fd;
	while (flock(fd, LOCK_SH) < 0) {
		if (errno == EINTR)
			continue;
		int err = errno;
		close(fd);
		return cli_fail(e, KVMINI_EXEC_FAILED, err, "cannot lock the cache folder: %s",
				strerror(err));
	}
	return fd;
}

void cache_release(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void cache_touch(const char *path)
{
	size_t n = strlen(path);
	if (n > 6 && !strcmp(path + n - 6, ".erofs")) {
		utimensat(AT_FDCWD, path, NULL, 0);
		return;
	}
	char p[PATH_MAX];
	if (snprintf(p, sizeof(p), "%s.used", path) >= (int)sizeof(p))
		return;
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd >= 0) {
		futimens(fd, NULL);
		close(fd);
	}
}

int cache_rm_children(int fd)
{
	DIR *dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	struct dirent *de;
	int ret = 0;
	while (!ret && (de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			ret = cache_rm(dirfd(dir), de->d_name);
	closedir(dir);
	return ret;
}

int cache_rm(int at, const char *name)
{
	if (unlinkat(at, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	int d = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0)
		return -errno;
	int ret = cache_rm_children(d);
	if (!ret && unlinkat(at, name, AT_REMOVEDIR) < 0)
		ret = -errno;
	return ret;
}

/* ---- scanning ---- */

/* Disk space used by `path` and, for a folder, all under it (links not followed). */
static uint64_t cache_du(const char *path)
{
	char *const paths[] = {(char *)path, NULL};
	FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
	if (!fts)
		return 0;
	uint64_t sum = 0;
	FTSENT *f;
	while ((f = fts_read(fts)))
		if (f->fts_info != FTS_DP && f->fts_statp && f->fts_info != FTS_NS &&
		    f->fts_info != FTS_ERR && f->fts_info != FTS_DNR)
			sum += (uint64_t)f->fts_statp->st_blocks * 512;
	fts_close(fts);
	return sum;
}

static bool cache_is_key(const char *s, size_t len)
{
	if (len != 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int cache_add(struct cache_entry **v, size_t *n, size_t *cap, const char *top,
		     const char *name, const char *used_path)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct cache_entry *nv = realloc(*v, nc * sizeof(**v));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	char p[PATH_MAX + 128];
	snprintf(p, sizeof(p), "%s/%s", top, name);
	struct stat st;
	if (lstat(used_path ? used_path : p, &st) < 0 && lstat(p, &st) < 0)
		return 0; /* gone meanwhile */
	struct cache_entry *c = &(*v)[(*n)++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->used = st.st_mtime;
	c->bytes = cache_du(p);
	return 0;
}

static int cache_by_use(const void *a, const void *b)
{
	const struct cache_entry *x = a, *y = b;
	if (x->used != y->used)
		return x->used > y->used ? -1 : 1;
	return strcmp(x->name, y->name);
}

int cache_scan(const char *top, struct cache_entry **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	static const char *const subs[] = {"rootfs", "images"};
	for (int s = 0; s < 2; s++) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/%s", top, subs[s]);
		DIR *d = opendir(dir);
		if (!d) {
			if (errno == ENOENT)
				continue;
			int err = errno;
			free(*out);
			*out = NULL;
			*n = 0;
			return -err;
		}
		struct dirent *de;
		int ret = 0;
		while (!ret && (de = readdir(d))) {
			size_t len = strlen(de->d_name);
			char name[96], used[PATH_MAX + 80];
			if (s == 0 && len == 70 && !strcmp(de->d_name + 64, ".erofs") &&
			    cache_is_key(de->d_name, 64)) {
				snprintf(name, sizeof(name), "rootfs/%s", de->d_name);
				ret = cache_add(out, n, &cap, top, name, NULL);
			} else if (s == 1 && cache_is_key(de->d_name, len)) {
				snprintf(name, sizeof(name), "images/%s", de->d_name);
				snprintf(used, sizeof(used), "%s/%s.used", dir, de->d_name);
				ret = cache_add(out, n, &cap, top, name, used);
			}
		}
		closedir(d);
		if (ret < 0) {
			free(*out);
			*out = NULL;
			*n = 0;
			return ret;
		}
	}
	if (*n)
		qsort(*out, *n, sizeof(**out), cache_by_use);
	return 0;
}

bool cache_prune_pick(const struct cache_entry *ents, size_t n, size_t i,
		      const struct cache_prune_opts *o)
{
	if (i >= n)
		return false;
	bool by_age = o->unused_for > 0, by_size = o->max_bytes != UINT64_MAX;
	if (!by_age && !by_size)
		return true;
	if (by_age && o->now - ents[i].used >= o->unused_for)
		return true;
	if (by_size) {
		/* Kept: the most recently used entries whose sizes fit, in that order. */
		uint64_t sum = 0;
		for (size_t j = 0; j <= i; j++)
			sum += ents[j].bytes;
		if (sum > o->max_bytes)
			return true;
	}
	return false;
}

/* Remove the temporaries of kvmini processes that died while making an entry (only under the
 * exclusive lock: no live kvmini is making one then). */
static void cache_rm_stale(const char *top)
{
	static const char *const subs[] = {"rootfs", "images"};
	for (int s = 0; s < 2; s++) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/%s", top, subs[s]);
		int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		DIR *d = fdopendir(fd);
		if (!d) {
			close(fd);
			continue;
		}
		struct dirent *de;
		while ((de = readdir(d))) {
			size_t len = strlen(de->d_name);
			bool tmp = s == 0 ? strstr(de->d_name, ".erofs.tmp.") != NULL
					  : !strncmp(de->d_name, "tmp.", 4);
			/* An image's KEY.used whose KEY is gone. */
			bool orphan = false;
			if (s == 1 && len == 69 && !strcmp(de->d_name + 64, ".used")) {
				char key[65];
				memcpy(key, de->d_name, 64);
				key[64] = '\0';
				struct stat st;
				orphan = fstatat(dirfd(d), key, &st, AT_SYMLINK_NOFOLLOW) < 0;
			}
			if (tmp || orphan)
				cache_rm(dirfd(d), de->d_name);
		}
		closedir(d);
	}
}

/* ---- the verb ---- */

void cache_usage(FILE *f)
{
	fputs("usage: kvmini cache list\n"
	      "       kvmini cache prune [--max-size SIZE] [--unused-for AGE] [--dry-run]\n"
	      "\n"
	      "The cache holds the root images of --rootfs directories and the unpacked trees of\n"
	      "--image images ($KVMINI_CACHE_DIR, else $XDG_CACHE_HOME/kvmini, else\n"
	      "~/.cache/kvmini). `list` shows each entry, the most recently used first. `prune`\n"
	      "removes entries: with no option all of them; --unused-for AGE those not used for\n"
	      "AGE (a number with s, m, h or d; plain seconds); --max-size SIZE the least\n"
	      "recently used beyond SIZE (K, M, G, T suffixes); with both, either. Running VMs\n"
	      "keep what they have open; a later run rebuilds what is gone. --dry-run only says\n"
	      "what would go. Exit status: 0; 1 a folder could not be read or an entry removed;\n"
	      "2 a bad option.\n",
	      f);
}

/* "90", "90s", "15m", "12h", "7d": seconds; -EINVAL otherwise. */
static int cache_parse_age(const char *s, time_t *out)
{
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned long long mul = 1;
	if (*end == 'm')
		mul = 60;
	else if (*end == 'h')
		mul = 3600;
	else if (*end == 'd')
		mul = 86400;
	else if (*end && *end != 's')
		return -EINVAL;
	if (*end && end[1])
		return -EINVAL;
	if (errno || v > (1ULL << 40) / mul)
		return -EINVAL;
	*out = (time_t)(v * mul);
	return 0;
}

static void cache_fmt_size(uint64_t b, char *out, size_t size)
{
	if (b >= (1ULL << 30))
		snprintf(out, size, "%.1fG", (double)b / (1ULL << 30));
	else if (b >= (1ULL << 20))
		snprintf(out, size, "%.1fM", (double)b / (1ULL << 20));
	else
		snprintf(out, size, "%.1fK", (double)b / 1024);
}

static void cache_fmt_time(time_t t, char *out, size_t size)
{
	struct tm tm;
	if (!localtime_r(&t, &tm) || !strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(out, size, "%lld", (long long)t);
}

/* cache_scan() for the verb: on failure it says so on stderr and returns -1. */
static int cache_scan_said(const char *top, struct cache_entry **v, size_t *n)
{
	int ret = cache_scan(top, v, n);
	if (ret < 0)
		fprintf(stderr, "kvmini: error: cannot read the cache folder %s: %s\n", top,
			strerror(-ret));
	return ret < 0 ? -1 : 0;
}

static int cache_list(const char *top)
{
	struct cache_entry *v;
	size_t n;
	if (cache_scan_said(top, &v, &n) < 0)
		return KVMINI_EXIT_HOST;
	uint64_t sum = 0;
	printf("%-77s %8s  %s\n", "ENTRY", "SIZE", "LAST USED");
	for (size_t i = 0; i < n; i++) {
		char sz[32], tm[64];
		cache_fmt_size(v[i].bytes, sz, sizeof(sz));
		cache_fmt_time(v[i].used, tm, sizeof(tm));
		printf("%-77s %8s  %s\n", v[i].name, sz, tm);
		sum += v[i].bytes;
	}
	char sz[32];
	cache_fmt_size(sum, sz, sizeof(sz));
	printf("%zu entries, %s in %s\n", n, sz, top);
	free(v);
	return 0;
}

static int cache_prune(const char *top, const struct cache_prune_opts *o, bool dry_run)
{
	struct kvmini_error e = {0};
	int lock = cache_lock_open(&e);
	if (lock < 0) {
		fprintf(stderr, "kvmini: error: %s\n", e.msg);
		return KVMINI_EXIT_HOST;
	}
	if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr,
			"kvmini: waiting for other kvmini processes to finish with the cache "
			"(%s)\n",
			top);
		while (flock(lock, LOCK_EX) < 0 && errno == EINTR) {
		}
	}
	struct cache_entry *v;
	size_t n;
	if (cache_scan_said(top, &v, &n) < 0) {
		close(lock);
		return KVMINI_EXIT_HOST;
	}
	int status = 0;
	size_t gone = 0;
	uint64_t freed = 0, kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (!cache_prune_pick(v, n, i, o)) {
			kept += v[i].bytes;
			continue;
		}
		char sz[32];
		cache_fmt_size(v[i].bytes, sz, sizeof(sz));
		if (!dry_run) {
			char p[PATH_MAX + 128];
			snprintf(p, sizeof(p), "%s/%s", top, v[i].name);
			int r = cache_rm(AT_FDCWD, p);
			if (r < 0) {
				fprintf(stderr, "kvmini: error: cannot remove %s: %s\n", p,
					strerror(-r));
				status = KVMINI_EXIT_HOST;
				kept += v[i].bytes;
				continue;
			}
			if (!strncmp(v[i].name, "images/", 7)) {
				snprintf(p, sizeof(p), "%s/%s.used", top, v[i].name);
				unlink(p);
			}
		}
		printf("%s %s (%s)\n", dry_run ? "would remove" : "removed", v[i].name, sz);
		gone++;
		freed += v[i].bytes;
	}
	if (!dry_run)
		cache_rm_stale(top);
	char f[32], k[32];
	cache_fmt_size(freed, f, sizeof(f));
	cache_fmt_size(kept, k, sizeof(k));
	printf("%s %zu of %zu entries (%s); %s kept\n", dry_run ? "would remove" : "removed", gone,
	       n, f, k);
	free(v);
	close(lock);
	return status;
}

enum { CACHE_MAX_SIZE = 256, CACHE_UNUSED_FOR, CACHE_DRY_RUN, CACHE_HELP };

static const struct option cache_options[] = {
	{"max-size", required_argument, NULL, CACHE_MAX_SIZE},
	{"unused-for", required_argument, NULL, CACHE_UNUSED_FOR},
	{"dry-run", no_argument, NULL, CACHE_DRY_RUN},
	{"help", no_argument, NULL, CACHE_HELP},
	{NULL, 0, NULL, 0},
};

static int cache_usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "kvmini: error: %s%s%s; see 'kvmini cache --help'\n", what, arg ? " " : "",
		arg ? arg : "");
	return KVMINI_EXIT_USAGE;
}

int cache_main(int argc, char **argv)
{
	if (argc < 3)
		return cache_usage_error("'kvmini cache' needs list or prune", NULL);
	const char *verb = argv[2];
	if (!strcmp(verb, "--help") || !strcmp(verb, "-h")) {
		cache_usage(stdout);
		return 0;
	}
	bool prune = !strcmp(verb, "prune");
	if (!prune && strcmp(verb, "list"))
		return cache_usage_error("unknown cache command", verb);
	struct cache_prune_opts o = {.max_bytes = UINT64_MAX, .now = time(NULL)};
	bool dry_run = false;
	int opt;
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc - 2, argv + 2, "+:", cache_options, NULL)) != -1) {
		const char *bad = argv[2 + optind - 1];
		if (opt == CACHE_HELP) {
			cache_usage(stdout);
			return 0;
		}
		if (!prune && opt != ':' && opt != '?')
			return cache_usage_error("'list' takes no option, not", bad);
		switch (opt) {
		case CACHE_MAX_SIZE:
			if (cli_parse_size(optarg, &o.max_bytes) < 0)
				return cache_usage_error("--max-size is not a size:", optarg);
			break;
		case CACHE_UNUSED_FOR:
			if (cache_parse_age(optarg, &o.unused_for) < 0)
				return cache_usage_error(
					"--unused-for is not an age (90s, 15m, 12h, 7d):", optarg);
			break;
		case CACHE_DRY_RUN:
			dry_run = true;
			break;
		case ':':
			return cache_usage_error("option needs a value:", bad);
		default:
			return cache_usage_error("unknown option", bad);
		}
	}
	if (2 + optind < argc)
		return cache_usage_error("unexpected argument", argv[2 + optind]);
	char top[PATH_MAX - 128];
	struct kvmini_error e = {0};
	if (cache_dir(top, sizeof(top), NULL, &e) < 0) {
		fprintf(stderr, "kvmini: error: %s\n", e.msg);
		return KVMINI_EXIT_HOST;
	}
	return prune ? cache_prune(top, &o, dry_run) : cache_list(top);
}
