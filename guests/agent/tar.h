/* tar: kvmini-agent's ustar (+pax) archive writer and its streaming, confined extractor. */
#ifndef KVMINI_AGENT_TAR_H
#define KVMINI_AGENT_TAR_H

#include <stddef.h>

#define TAR_BLOCK    512
#define TAR_NAME_MAX 4095  /* longest member name or link target, in bytes, without the NUL */
#define TAR_META_MAX 65536 /* largest pax extended header accepted by the extractor */

/*
 * Receives the writer's output, always in whole 512-byte blocks or parts of them in order.
 * Returns 0, or -errno to stop the archive (the writer then fails with an empty message).
 */
typedef int (*tar_out_fn)(void *ctx, const void *buf, size_t len);

/*
 * Writes a ustar archive of `base`, an entry of directory `dir_fd`, to `out`: the entry itself
 * named `base` and, for a directory, everything below it named `base/...`, then the two zero
 * blocks ending the archive. Symbolic links are archived as links, never followed; regular
 * files, directories and links are the only types written (others are skipped, and so are
 * entries that vanish while the archive is made). Names that do not fit the ustar name and
 * prefix fields, link targets over 100 bytes, sizes from 8 GiB and ids from 2^21 go into a pax
 * 'x' header ("path", "linkpath", "size", "uid", "gid") in front of their member.
 * Returns 0, or -errno with a one-line reason in err (empty when `out` failed).
 */
int tar_write(int dir_fd, const char *base, tar_out_fn out, void *ctx, char *err, size_t errlen);

struct tar_reader;

/*
 * A streaming extractor into directory `dir_fd` (not taken over: the caller closes it after
 * tar_reader_free()). Returns NULL when out of memory.
 */
struct tar_reader *tar_reader_new(int dir_fd);

/*
 * Extracts the next `len` bytes of the archive (any split of the stream is fine). Regular
 * files, directories and symbolic links are created below the directory; absolute names,
 * names with a ".." component, paths through a symbolic link or a non-directory, hard links,
 * device nodes, fifos and unknown types are refused. Understands ustar, GNU ('L', 'K', base-256
 * numbers) and pax ('x': path, linkpath, size, mtime; 'g' is skipped). Returns 0, or -errno with
 * a one-line reason in err; after a failure the reader must only be freed.
 */
int tar_reader_feed(struct tar_reader *r, const void *buf, size_t len, char *err, size_t errlen);

/* The archive's end: 0, or -EPROTO with a reason in err when it stopped inside a member. */
int tar_reader_end(struct tar_reader *r, char *err, size_t errlen);

/* Frees the reader, closing a file still being written. */
void tar_reader_free(struct tar_reader *r);

#endif
