/* rootfs: a read-only EROFS image of a --rootfs directory, built once and kept in a cache. */
#ifndef KVMINI_ROOTFS_H
#define KVMINI_ROOTFS_H

#include <stdbool.h>
#include <stddef.h>

#include "kvmini.h"
#include "kvmini/cli.h"

#define ROOTFS_KEY_LEN 64		  /* hex digits of the SHA-256 cache key */
#define ROOTFS_EXIT    KVMINI_EXEC_FAILED /* the status of every rootfs failure */

/*
 * The cache key of directory `dir`: a SHA-256 over every entry's relative path, mode, owner,
 * size, mtime, ctime, device number and symlink target (see rootfs.c). 0, or -errno with `e`: a
 * missing path, not a directory, an entry that cannot be read.
 */
int rootfs_key(const char *dir, char key[ROOTFS_KEY_LEN + 1], struct kvmini_error *e);

/*
 * The image of `dir` in the cache folder's rootfs/ (its path in img[0..img_size)): reused (and
 * marked used) when its key is there,
 * else built with mkfs.erofs into a temporary file and renamed into place (*built true). The
 * directory is only read. 0, or -errno with `e` (mkfs.erofs failed or is missing, the disk is
 * full: nothing is left behind).
 */
int rootfs_image(const char *dir, char *img, size_t img_size, bool *built, struct kvmini_error *e);

#endif
