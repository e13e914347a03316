/* cache: the sandboxes' cache folder (root images and unpacked images), the lock that keeps
 * `kvmini cache prune` away from what another kvmini is making or opening, and the
 * `kvmini cache` verb. */
#ifndef KVMINI_CACHE_H
#define KVMINI_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "kvmini.h"
#include "kvmini/cli.h"

/*
 * The cache folder, or its sub-folder `sub` (NULL: the top), created if needed:
 * $KVMINI_CACHE_DIR, else $XDG_CACHE_HOME/kvmini, else $HOME/.cache/kvmini. 0, or -errno with
 * `e` (status KVMINI_EXEC_FAILED).
 */
int cache_dir(char *out, size_t size, const char *sub, struct kvmini_error *e);

/*
 * Take the cache's lock shared, as every kvmini that makes or opens a cache entry does from
 * before it looks the entry up until its VM has opened it; `kvmini cache prune` takes it
 * exclusive. The lock's fd (give it to cache_release()), or -errno with `e`.
 */
int cache_hold(struct kvmini_error *e);

/* Let go of a lock cache_hold() took (*fd < 0: nothing) and set *fd to -1. */
void cache_release(int *fd);

/* Record that the entry at `path` was used now (its mtime; an unpacked image's is kept in
 * PATH.used, since touching the tree would change its root image's key). */
void cache_touch(const char *path);

/* Remove `name` (below directory fd `at`, or AT_FDCWD) and all under it, never following a
 * symbolic link. 0 (also when it did not exist), or -errno. */
int cache_rm(int at, const char *name);

/* Remove what is in the directory open as `fd` (which this closes), never following links. */
int cache_rm_children(int fd);

/* One entry: a root image (rootfs/KEY.erofs) or an unpacked image (images/KEY). */
struct cache_entry {
	char name[96];	/* relative to the cache folder */
	uint64_t bytes; /* disk space used */
	time_t used;	/* last use */
};

/* What to remove: every entry unused for at least `unused_for` seconds (0: not by age), and the
 * least recently used beyond `max_bytes` (UINT64_MAX: not by size); both 0/UINT64_MAX: all. */
struct cache_prune_opts {
	time_t unused_for;
	uint64_t max_bytes;
	time_t now;
};

/*
 * The entries of cache folder `top`, the most recently used first, in a malloc'd array (*out,
 * *n). 0, or -errno. A missing folder has none.
 */
int cache_scan(const char *top, struct cache_entry **out, size_t *n);

/*
 * Whether entry `i` of `ents` (cache_scan's order) goes under `o`.
 */
bool cache_prune_pick(const struct cache_entry *ents, size_t n, size_t i,
		      const struct cache_prune_opts *o);

/* `kvmini cache list|prune ...` (argv[1] is "cache"): the exit status. */
int cache_main(int argc, char **argv);

/* The verb's usage. */
void cache_usage(FILE *f);

#endif
