/* tar: kvmini-agent's ustar (+pax) archive writer and its streaming, confined extractor. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tar.h"

/*
 * Design choices:
 *
 * Writer. Plain ustar headers (magic "ustar\0", version "00", empty uname/gname) for regular
 * files, directories (named with a trailing '/') and symbolic links. A name over 100 bytes is
 * split at a '/' into the 155-byte prefix and the name field when it can be; otherwise, and for
 * a link target over 100 bytes, a size over 11 octal digits or an id over 7, a pax 'x' header
 * named "././@PaxHeader" carries the exact value and the ustar field holds a truncated one (or
 * 0). No GNU extensions are written, so any POSIX reader (GNU tar, bsdtar, Python's tarfile)
 * reads it. Hard links are stored as separate regular files; sockets, fifos and devices are
 * skipped. A file shrinking while it is read is padded with zeros, one growing is cut at the
 * size in its header, so the stream always stays well formed.
 *
 * Extractor. It runs in a process already chrooted into the sandbox root; on top of that it
 * never resolves a path from the archive in one go: each member's name is normalised (empty
 * and "." components dropped; absolute names and ".." refused), then walked one component at
 * a time from the destination directory with openat(O_DIRECTORY | O_NOFOLLOW), creating missing
 * directories (0755) and refusing a component that is a symbolic link or not a directory. The
 * last component is unlinked first when it exists (unless it is a directory) and created anew:
 * files with O_CREAT | O_EXCL | O_NOFOLLOW, so neither a symlink nor an existing hard link is
 * ever written through. Links may point anywhere: they are created, never followed. Modes are
 * kept as mode & 0777 (no setuid, setgid or sticky bits), files and links get the archive's
 * mtime, owners are not restored (everything belongs to the agent's user).
 */

/* ustar header fields: offset and size (POSIX.1-2008, pax "ustar Interchange Format"). */
#define H_NAME	       0
#define H_NAME_LEN     100
#define H_MODE	       100
#define H_UID	       108
#define H_GID	       116
#define H_SIZE	       124
#define H_MTIME	       136
#define H_CHKSUM       148
#define H_TYPE	       156
#define H_LINK	       157
#define H_LINK_LEN     100
#define H_MAGIC	       257
#define H_VERSION      263
#define H_PREFIX       345
#define H_PREFIX_LEN   155
#define H_ID_FIELD     8
#define H_NUM_FIELD    12
#define OCTAL_ID_MAX   07777777ULL
#define OCTAL_NUM_MAX  077777777777ULL
#define TAR_MAX_DEPTH  256   /* directory levels the writer descends */
#define TAR_IO_CHUNK   65536 /* file bytes read at a time */
#define TAR_PAX_BUFFER (2 * TAR_NAME_MAX + 256)

static const uint8_t zero_block[TAR_BLOCK];

/* Formats a one-line reason into err and returns rc. */
static int tar_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* ---- the writer ---- */

struct tar_w {
	tar_out_fn out;
	void *ctx;
	char *err;
	size_t errlen;
	size_t name_len;
	char name[TAR_NAME_MAX + 2]; /* the member's name; room for a directory's '/' */
	char link[TAR_NAME_MAX + 1];
	char pax[TAR_PAX_BUFFER];
	uint8_t buf[TAR_IO_CHUNK];
};

/* What one header describes. */
struct tar_entry {
	char type;
	mode_t mode;
	uint64_t uid, gid, size;
	int64_t mtime;
	const char *link; /* symlinks only */
};

/* Sends len bytes; a failure of the sink leaves err empty. */
static int w_out(struct tar_w *w, const void *buf, size_t len)
{
	int rc = w->out(w->ctx, buf, len);
	if (rc < 0)
		w->err[0] = '\0';
	return rc;
}

/* Sends the zeros that pad `size` bytes of data to a whole block. */
static int w_pad(struct tar_w *w, uint64_t size)
{
	size_t pad = (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
	return pad ? w_out(w, zero_block, pad) : 0;
}

/* Writes v as width-1 octal digits and a NUL (the caller made sure it fits). */
static void put_octal(uint8_t *h, size_t off, size_t width, uint64_t v)
{
	char tmp[24];
	snprintf(tmp, sizeof(tmp), "%0*" PRIo64, (int)(width - 1), v);
	memcpy(h + off, tmp, width - 1);
	h[off + width - 1] = '\0';
}

/* Fills in the header checksum: six octal digits, NUL, space. */
static void put_checksum(uint8_t *h)
{
	unsigned int sum = 0;
	char tmp[16];
	memset(h + H_CHKSUM, ' ', 8);
	for (size_t i = 0; i < TAR_BLOCK; i++)
		sum += h[i];
	snprintf(tmp, sizeof(tmp), "%06o", sum & 0777777);
	memcpy(h + H_CHKSUM, tmp, 6);
	h[H_CHKSUM + 6] = '\0';
	h[H_CHKSUM + 7] = ' ';
}

static size_t decimal_digits(size_t v)
{
	size_t n = 1;
	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* Appends the pax record "LEN key=value\n" at *used; -ENAMETOOLONG when it does not fit. */
static int pax_add(char *pax, size_t *used, const char *key, const char *val)
{
	size_t body = 1 + strlen(key) + 1 + strlen(val) + 1; /* " key=value\n" */
	size_t len = body + decimal_digits(body);
	while (len != body + decimal_digits(len))
		len = body + decimal_digits(len);
	if (len >= TAR_PAX_BUFFER - *used)
		return -ENAMETOOLONG;
	int n = snprintf(pax + *used, TAR_PAX_BUFFER - *used, "%zu %s=%s\n", len, key, val);
	if (n < 0 || (size_t)n != len)
		return -EINVAL;
	*used += len;
	return 0;
}

/* Adds the pax record key=v (decimal). */
static int pax_add_num(char *pax, size_t *used, const char *key, uint64_t v)
{
	char tmp[24];
	snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
	return pax_add(pax, used, key, tmp);
}

/* A header block with the fields every header shares; name is copied as it fits. */
static void fill_header(uint8_t *h, const char *name, size_t name_len, const struct tar_entry *e)
{
	memset(h, 0, TAR_BLOCK);
	memcpy(h + H_NAME, name, name_len < H_NAME_LEN ? name_len : H_NAME_LEN);
	put_octal(h, H_MODE, H_ID_FIELD, e->mode & 07777);
	put_octal(h, H_UID, H_ID_FIELD, e->uid <= OCTAL_ID_MAX ? e->uid : 0);
	put_octal(h, H_GID, H_ID_FIELD, e->gid <= OCTAL_ID_MAX ? e->gid : 0);
	put_octal(h, H_SIZE, H_NUM_FIELD, e->size <= OCTAL_NUM_MAX ? e->size : 0);
	int64_t mtime = e->mtime < 0 ? 0 : e->mtime;
	put_octal(h, H_MTIME, H_NUM_FIELD,
		  (uint64_t)mtime <= OCTAL_NUM_MAX ? (uint64_t)mtime : OCTAL_NUM_MAX);
	h[H_TYPE] = (uint8_t)e->type;
	memcpy(h + H_MAGIC, "ustar", 6);
	memcpy(h + H_VERSION, "00", 2);
}

/*
 * Writes the header(s) of member w->name: a pax header first when a value does not fit the
 * ustar fields. Returns 0 or -errno (err set).
 */
static int w_header(struct tar_w *w, const struct tar_entry *e)
{
	uint8_t h[TAR_BLOCK];
	const char *name = w->name;
	size_t len = w->name_len, split = 0, used = 0;
	bool pax_path = false;
	int rc = 0;

	if (len > H_NAME_LEN) {
		/* The shortest prefix leaving at most 100 bytes (and at least one) after its '/'.
		 */
		size_t lo = len - H_NAME_LEN - 1;
		for (size_t i = lo ? lo : 1; i <= H_PREFIX_LEN && i + 1 < len; i++) {
			if (name[i] == '/') {
				split = i;
				break;
			}
		}
		pax_path = !split;
	}
	size_t link_len = e->link ? strlen(e->link) : 0;
	if (pax_path)
		rc = pax_add(w->pax, &used, "path", name);
	if (!rc && link_len > H_LINK_LEN)
		rc = pax_add(w->pax, &used, "linkpath", e->link);
	if (!rc && e->size > OCTAL_NUM_MAX)
		rc = pax_add_num(w->pax, &used, "size", e->size);
	if (!rc && e->uid > OCTAL_ID_MAX)
		rc = pax_add_num(w->pax, &used, "uid", e->uid);
	if (!rc && e->gid > OCTAL_ID_MAX)
		rc = pax_add_num(w->pax, &used, "gid", e->gid);
	if (rc < 0)
		return tar_fail(w->err, w->errlen, rc, "%s: cannot make a pax header", name);

	if (used) {
		static const char pax_name[] = "././@PaxHeader";
		struct tar_entry x = {.type = 'x', .mode = 0644, .size = used, .mtime = e->mtime};
		fill_header(h, pax_name, sizeof(pax_name) - 1, &x);
		put_checksum(h);
		rc = w_out(w, h, TAR_BLOCK);
		if (!rc)
			rc = w_out(w, w->pax, used);
		if (!rc)
			rc = w_pad(w, used);
		if (rc < 0)
			return rc;
	}

	if (split) {
		fill_header(h, name + split + 1, len - split - 1, e);
		memcpy(h + H_PREFIX, name, split);
	} else {
		fill_header(h, name, len, e);
	}
	if (e->link)
		memcpy(h + H_LINK, e->link, link_len < H_LINK_LEN ? link_len : H_LINK_LEN);
	put_checksum(h);
	return w_out(w, h, TAR_BLOCK);
}

/* The header fields of a stat result. */
static struct tar_entry entry_of(const struct stat *st, char type)
{
	struct tar_entry e = {
		.type = type,
		.mode = st->st_mode,
		.uid = st->st_uid,
		.gid = st->st_gid,
		.mtime = st->st_mtime,
	};
	return e;
}

static int w_entry(struct tar_w *w, int dfd, const char *comp, int depth);

/* Archives regular file `comp` of dfd as member w->name. */
static int w_file(struct tar_w *w, int dfd, const char *comp)
{
	struct stat st;
	int rc = 0;
	int fd = openat(dfd, comp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* removed meanwhile */
		return tar_fail(w->err, w->errlen, -errno, "%s: %s", w->name, strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		rc = tar_fail(w->err, w->errlen, -errno, "%s: %s", w->name, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode))
		goto out; /* replaced meanwhile */
	struct tar_entry e = entry_of(&st, '0');
	e.size = (uint64_t)st.st_size;
	rc = w_header(w, &e);
	uint64_t left = e.size;
	bool at_eof = false;
	while (!rc && left) {
		size_t want = left < TAR_IO_CHUNK ? (size_t)left : TAR_IO_CHUNK;
		ssize_t n = 0;
		if (!at_eof) {
			n = read(fd, w->buf, want);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = tar_fail(w->err, w->errlen, -errno, "%s: read: %s", w->name,
					      strerror(errno));
				break;
			}
		}
		if (n == 0) {
			/* Shrunk since fstat: the header's size still holds, pad with zeros. */
			at_eof = true;
			memset(w->buf, 0, want);
			n = (ssize_t)want;
		}
		rc = w_out(w, w->buf, (size_t)n);
		left -= (uint64_t)n;
	}
	if (!rc)
		rc = w_pad(w, e.size);
out:
	close(fd);
	return rc;
}

/* Archives directory `comp` of dfd as member w->name + '/', then its entries. */
static int w_dir(struct tar_w *w, int dfd, const char *comp, int depth)
{
	struct stat st;
	int rc;
	if (depth >= TAR_MAX_DEPTH)
		return tar_fail(w->err, w->errlen, -ELOOP, "%s: more than %d directory levels",
				w->name, TAR_MAX_DEPTH);
	int fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return 0; /* removed or replaced meanwhile */
		return tar_fail(w->err, w->errlen, -errno, "%s: %s", w->name, strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		rc = tar_fail(w->err, w->errlen, -errno, "%s: %s", w->name, strerror(errno));
		close(fd);
		return rc;
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		rc = tar_fail(w->err, w->errlen, -errno, "%s: %s", w->name, strerror(errno));
		close(fd);
		return rc;
	}

	size_t len = w->name_len;
	if (w->name[len - 1] != '/') {
		w->name[len] = '/';
		w->name[++w->name_len] = '\0';
	}
	struct tar_entry e = entry_of(&st, '5');
	rc = w_header(w, &e);
	size_t dir_len = w->name_len;
	while (!rc) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				rc = tar_fail(w->err, w->errlen, -errno, "%s: %s", w->name,
					      strerror(errno));
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		size_t n = strlen(de->d_name);
		if (dir_len + n > TAR_NAME_MAX) {
			rc = tar_fail(w->err, w->errlen, -ENAMETOOLONG,
				      "%s%s: name longer than %d bytes", w->name, de->d_name,
				      TAR_NAME_MAX);
			break;
		}
		memcpy(w->name + dir_len, de->d_name, n + 1);
		w->name_len = dir_len + n;
		rc = w_entry(w, dirfd(d), de->d_name, depth + 1);
		w->name_len = dir_len;
		w->name[dir_len] = '\0';
	}
	closedir(d);
	w->name_len = len;
	w->name[len] = '\0';
	return rc;
}

/* Archives symbolic link `comp` of dfd (the link itself) as member w->name. */
static int w_symlink(struct tar_w *w, int dfd, const char *comp, const struct stat *st)
{
	ssize_t n = readlinkat(dfd, comp, w->link, sizeof(w->link));
	if (n < 0) {
		if (errno == ENOENT || errno == EINVAL)
			return 0; /* removed or replaced meanwhile */
		return tar_fail(w->err, w->errlen, -errno, "%s: %s", w->name, strerror(errno));
	}
	if ((size_t)n >= sizeof(w->link))
		return tar_fail(w->err, w->errlen, -ENAMETOOLONG,
				"%s: link target longer than %d bytes", w->name, TAR_NAME_MAX);
	w->link[n] = '\0';
	struct tar_entry e = entry_of(st, '2');
	e.link = w->link;
	return w_header(w, &e);
}

/* Archives entry `comp` of dfd, whatever its type, as member w->name. */
static int w_entry(struct tar_w *w, int dfd, const char *comp, int depth)
{
	struct stat st;
	if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return tar_fail(w->err, w->errlen, -errno, "%s: %s", w->name, strerror(errno));
	}
	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
		return w_file(w, dfd, comp);
	case S_IFDIR:
		return w_dir(w, dfd, comp, depth);
	case S_IFLNK:
		return w_symlink(w, dfd, comp, &st);
	default:
		return 0; /* sockets, fifos, devices: not archived */
	}
}

int tar_write(int dir_fd, const char *base, tar_out_fn out, void *ctx, char *err, size_t errlen)
{
	size_t len = strlen(base);
	if (!len || len > TAR_NAME_MAX)
		return tar_fail(err, errlen, -ENAMETOOLONG, "%s: bad name", base);
	struct tar_w *w = malloc(sizeof(*w));
	if (!w)
		return tar_fail(err, errlen, -ENOMEM, "out of memory");
	w->out = out;
	w->ctx = ctx;
	w->err = err;
	w->errlen = errlen;
	memcpy(w->name, base, len + 1);
	w->name_len = len;
	int rc = w_entry(w, dir_fd, base, 0);
	if (!rc)
		rc = w_out(w, zero_block, TAR_BLOCK);
	if (!rc)
		rc = w_out(w, zero_block, TAR_BLOCK);
	free(w);
	return rc;
}

/* ---- the extractor ---- */

enum { R_HEADER, R_DATA, R_PAD, R_END };

/* What the current member's data is for. */
enum { K_SKIP, K_FILE, K_PAX, K_LONG_NAME, K_LONG_LINK };

struct tar_reader {
	int dir_fd;
	int state, kind;
	size_t hdr_have; /* bytes of hdr[] filled */
	uint64_t left;	 /* R_DATA: data bytes still to come */
	uint64_t pad;	 /* then this many padding bytes */
	int fd;		 /* K_FILE: the file being written, else -1 */
	mode_t mode;	 /* K_FILE: its mode and mtime, set when it is complete */
	int64_t mtime;
	size_t meta_have; /* K_PAX, K_LONG_*: bytes of meta[] filled */
	/* From a pax header or GNU 'L'/'K' member, for the next member. */
	bool has_name, has_link, has_size, has_mtime;
	uint64_t next_size;
	int64_t next_mtime;
	char next_name[TAR_NAME_MAX + 1];
	char next_link[TAR_NAME_MAX + 1];
	char member[TAR_NAME_MAX + 1]; /* the member's name as archived (messages) */
	char path[TAR_NAME_MAX + 1];   /* ... and normalised */
	char link[TAR_NAME_MAX + 1];
	uint8_t hdr[TAR_BLOCK];
	uint8_t meta[TAR_META_MAX];
};

struct tar_reader *tar_reader_new(int dir_fd)
{
	struct tar_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->dir_fd = dir_fd;
	r->state = R_HEADER;
	r->fd = -1;
	return r;
}

void tar_reader_free(struct tar_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

/*
 * Parses a numeric header field: octal digits (leading spaces allowed, ended by NUL, space or
 * the field's end; empty is 0) or GNU base-256 (first byte 0x80). -EINVAL when malformed,
 * negative or above INT64_MAX.
 */
static int parse_num(const uint8_t *f, size_t width, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	if (f[0] & 0x80) {
		if (f[0] & 0x40)
			return -EINVAL; /* negative */
		v = f[0] & 0x3f;
		for (i = 1; i < width; i++) {
			if (v > (UINT64_MAX >> 8))
				return -EINVAL;
			v = v << 8 | f[i];
		}
	} else {
		while (i < width && f[i] == ' ')
			i++;
		for (; i < width && f[i] >= '0' && f[i] <= '7'; i++) {
			if (v > (UINT64_MAX >> 3))
				return -EINVAL;
			v = v << 3 | (uint64_t)(f[i] - '0');
		}
		for (; i < width; i++)
			if (f[i] != ' ' && f[i] != '\0')
				return -EINVAL;
	}
	if (v > INT64_MAX)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Parses a pax decimal value (mtime may have a fraction, ignored; a negative one is 0). */
static int parse_decimal(const char *s, size_t len, bool fraction_ok, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	bool negative = false;
	if (fraction_ok && len && s[0] == '-') {
		negative = true;
		i++;
	}
	size_t start = i;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (INT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == start)
		return -EINVAL;
	if (i < len) {
		if (!fraction_ok || s[i] != '.')
			return -EINVAL;
		for (i++; i < len; i++)
			if (s[i] < '0' || s[i] > '9')
				return -EINVAL;
	}
	*out = negative ? 0 : v;
	return 0;
}

/* Copies a pax or GNU long value into dst (TAR_NAME_MAX + 1 bytes): -EINVAL when too long or
 * holding a NUL. */
static int copy_long(char *dst, const char *src, size_t len)
{
	if (len > TAR_NAME_MAX || memchr(src, '\0', len))
		return -EINVAL;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

/* Applies the records of the pax header in r->meta to the next member. */
static int r_pax(struct tar_reader *r, char *err, size_t errlen)
{
	const char *p = (const char *)r->meta;
	size_t off = 0;
	while (off < r->meta_have) {
		const char *rec = p + off;
		size_t room = r->meta_have - off, len = 0, i = 0;
		for (; i < room && i < 10 && rec[i] >= '0' && rec[i] <= '9'; i++)
			len = len * 10 + (size_t)(rec[i] - '0');
		if (!i || i >= room || rec[i] != ' ' || len > room || len < i + 3 ||
		    rec[len - 1] != '\n')
			return tar_fail(err, errlen, -EPROTO, "bad pax header");
		const char *kv = rec + i + 1;
		size_t kv_len = len - i - 2;
		const char *eq = memchr(kv, '=', kv_len);
		if (!eq)
			return tar_fail(err, errlen, -EPROTO, "bad pax record");
		size_t key_len = (size_t)(eq - kv), val_len = kv_len - key_len - 1;
		const char *val = eq + 1;
		int rc = 0;
		uint64_t v;
		if (key_len == 4 && !memcmp(kv, "path", 4)) {
			r->has_name = val_len > 0;
			if (val_len)
				rc = copy_long(r->next_name, val, val_len);
		} else if (key_len == 8 && !memcmp(kv, "linkpath", 8)) {
			r->has_link = val_len > 0;
			if (val_len)
				rc = copy_long(r->next_link, val, val_len);
		} else if (key_len == 4 && !memcmp(kv, "size", 4)) {
			rc = parse_decimal(val, val_len, false, &v);
			r->has_size = !rc;
			r->next_size = v;
		} else if (key_len == 5 && !memcmp(kv, "mtime", 5)) {
			rc = parse_decimal(val, val_len, true, &v);
			r->has_mtime = !rc;
			r->next_mtime = (int64_t)v;
		}
		if (rc < 0)
			return tar_fail(err, errlen, -EPROTO, "bad pax record %.*s", (int)key_len,
					kv);
		off += len;
	}
	return 0;
}

/*
 * Normalises r->member into r->path: drops empty and "." components and any trailing '/';
 * refuses absolute names and ".." components. The result may be empty (the directory itself).
 */
static int r_normalise(struct tar_reader *r, char *err, size_t errlen)
{
	const char *s = r->member;
	size_t out = 0;
	if (s[0] == '/')
		return tar_fail(err, errlen, -EPERM, "member %s: absolute name refused", s);
	while (*s) {
		const char *end = strchr(s, '/');
		size_t n = end ? (size_t)(end - s) : strlen(s);
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return tar_fail(err, errlen, -EPERM, "member %s: name with '..' refused",
					r->member);
		if (n && !(n == 1 && s[0] == '.')) {
			if (out)
				r->path[out++] = '/';
			memcpy(r->path + out, s, n);
			out += n;
		}
		s += n;
		if (*s == '/')
			s++;
	}
	r->path[out] = '\0';
	return 0;
}

/*
 * Opens the directory that is to hold r->path's last component, walking down from the
 * destination one component at a time without following symbolic links and creating missing
 * directories (0755). Sets *last to that component. Returns the fd (the caller closes it) or
 * -errno with err set.
 */
static int r_parent(struct tar_reader *r, const char **last, char *err, size_t errlen)
{
	int fd = fcntl(r->dir_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return tar_fail(err, errlen, -errno, "member %s: %s", r->member, strerror(errno));
	char *p = r->path;
	for (;;) {
		char *slash = strchr(p, '/');
		if (!slash) {
			*last = p;
			return fd;
		}
		*slash = '\0';
		int nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT) {
			if (mkdirat(fd, p, 0755) < 0 && errno != EEXIST)
				nfd = -1;
			else
				nfd = openat(fd, p,
					     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		int e = errno;
		*slash = '/';
		close(fd);
		if (nfd < 0) {
			if (e == ELOOP || e == ENOTDIR)
				return tar_fail(err, errlen, -e,
						"member %s: path through a symbolic link or a "
						"non-directory refused",
						r->member);
			return tar_fail(err, errlen, -e, "member %s: %s", r->member, strerror(e));
		}
		fd = nfd;
		p = slash + 1;
	}
}

/* Removes what exists at `last` in pfd, unless it is a directory (then -EISDIR). */
static int r_clear(struct tar_reader *r, int pfd, const char *last, char *err, size_t errlen)
{
	if (unlinkat(pfd, last, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno == EISDIR || errno == EPERM)
		return tar_fail(err, errlen, -EISDIR, "member %s: a directory is in the way",
				r->member);
	return tar_fail(err, errlen, -errno, "member %s: %s", r->member, strerror(errno));
}

/* Starts a regular file: created anew, written by r_data(), finished by r_member_end(). */
static int r_file(struct tar_reader *r, char *err, size_t errlen)
{
	const char *last;
	if (!r->path[0])
		return tar_fail(err, errlen, -EINVAL, "member %s: not a file name", r->member);
	int pfd = r_parent(r, &last, err, errlen);
	if (pfd < 0)
		return pfd;
	int rc = r_clear(r, pfd, last, err, errlen);
	if (!rc) {
		r->fd = openat(pfd, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			       0600);
		if (r->fd < 0)
			rc = tar_fail(err, errlen, -errno, "member %s: %s", r->member,
				      strerror(errno));
	}
	close(pfd);
	r->kind = K_FILE;
	return rc;
}

/* Creates (or keeps) a directory and sets its mode. */
static int r_dir(struct tar_reader *r, char *err, size_t errlen)
{
	const char *last;
	struct stat st;
	if (!r->path[0])
		return 0; /* the destination itself: left as it is */
	int pfd = r_parent(r, &last, err, errlen);
	if (pfd < 0)
		return pfd;
	int rc = 0;
	if (mkdirat(pfd, last, 0700) < 0) {
		if (errno != EEXIST)
			rc = tar_fail(err, errlen, -errno, "member %s: %s", r->member,
				      strerror(errno));
		else if (fstatat(pfd, last, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			rc = tar_fail(err, errlen, -EEXIST,
				      "member %s: a non-directory is in the way", r->member);
	}
	if (!rc) {
		int fd = openat(pfd, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fchmod(fd, r->mode & 0777) < 0)
			rc = tar_fail(err, errlen, -errno, "member %s: %s", r->member,
				      strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	close(pfd);
	return rc;
}

/* Creates a symbolic link (replacing a non-directory) with the member's mtime. */
static int r_symlink(struct tar_reader *r, char *err, size_t errlen)
{
	const char *last;
	if (!r->path[0] || !r->link[0])
		return tar_fail(err, errlen, -EINVAL, "member %s: bad symbolic link", r->member);
	int pfd = r_parent(r, &last, err, errlen);
	if (pfd < 0)
		return pfd;
	int rc = r_clear(r, pfd, last, err, errlen);
	if (!rc && symlinkat(r->link, pfd, last) < 0)
		rc = tar_fail(err, errlen, -errno, "member %s: %s", r->member, strerror(errno));
	if (!rc) {
		struct timespec ts[2] = {{.tv_sec = r->mtime}, {.tv_sec = r->mtime}};
		utimensat(pfd, last, ts, AT_SYMLINK_NOFOLLOW); /* best effort */
	}
	close(pfd);
	return rc;
}

/* Handles a complete header block in r->hdr and sets up its data. */
static int r_header(struct tar_reader *r, char *err, size_t errlen)
{
	const uint8_t *h = r->hdr;
	uint64_t size, mode, mtime, sum;
	size_t i;

	for (i = 0; i < TAR_BLOCK && !h[i]; i++)
		;
	if (i == TAR_BLOCK) {
		r->state = R_END; /* end of archive: whatever follows is ignored */
		return 0;
	}
	unsigned int usum = 0;
	int ssum = 0;
	for (i = 0; i < TAR_BLOCK; i++) {
		uint8_t b = (i >= H_CHKSUM && i < H_CHKSUM + 8) ? ' ' : h[i];
		usum += b;
		ssum += (int8_t)b;
	}
	if (parse_num(h + H_CHKSUM, 8, &sum) < 0 || (sum != usum && (int64_t)sum != ssum))
		return tar_fail(err, errlen, -EPROTO,
				"bad tar header checksum (not a tar stream?)");

	bool posix = !memcmp(h + H_MAGIC, "ustar\0", 6);
	if (r->has_name) {
		memcpy(r->member, r->next_name, sizeof(r->member));
	} else {
		size_t nlen = strnlen((const char *)h + H_NAME, H_NAME_LEN);
		size_t plen = posix ? strnlen((const char *)h + H_PREFIX, H_PREFIX_LEN) : 0;
		snprintf(r->member, sizeof(r->member), "%.*s%s%.*s", (int)plen,
			 (const char *)h + H_PREFIX, plen ? "/" : "", (int)nlen,
			 (const char *)h + H_NAME);
	}
	if (r->has_link)
		memcpy(r->link, r->next_link, sizeof(r->link));
	else
		snprintf(r->link, sizeof(r->link), "%.*s",
			 (int)strnlen((const char *)h + H_LINK, H_LINK_LEN),
			 (const char *)h + H_LINK);
	/* A pax size or mtime is for the next real member, not for a pax or GNU record. */
	char type = (char)h[H_TYPE];
	bool record = type == 'x' || type == 'g' || type == 'L' || type == 'K';
	bool use_size = r->has_size && !record;
	if (parse_num(h + H_MODE, H_ID_FIELD, &mode) < 0 ||
	    parse_num(h + H_MTIME, H_NUM_FIELD, &mtime) < 0 ||
	    (!use_size && parse_num(h + H_SIZE, H_NUM_FIELD, &size) < 0))
		return tar_fail(err, errlen, -EPROTO, "member %s: bad header field", r->member);
	if (use_size)
		size = r->next_size;
	r->mode = (mode_t)(mode & 0777);
	r->mtime = r->has_mtime && !record ? r->next_mtime : (int64_t)mtime;
	r->left = size;
	r->pad = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
	r->kind = K_SKIP;
	r->meta_have = 0;

	int rc = 0;
	switch (type) {
	case 'x':
		if (size > TAR_META_MAX)
			return tar_fail(err, errlen, -EPROTO, "pax header of %" PRIu64 " bytes",
					size);
		r->kind = K_PAX;
		break;
	case 'g':
		break; /* global pax header: nothing in it is used */
	case 'L':
	case 'K':
		if (size > TAR_NAME_MAX + 1)
			return tar_fail(err, errlen, -EPROTO, "GNU long name of %" PRIu64 " bytes",
					size);
		r->kind = type == 'L' ? K_LONG_NAME : K_LONG_LINK;
		break;
	default:
		/* A member: what came before applied to it and is used up. */
		r->has_name = r->has_link = r->has_size = r->has_mtime = false;
		rc = r_normalise(r, err, errlen);
		if (rc < 0)
			return rc;
		switch (type) {
		case '0':
		case '\0':
		case '7':
			rc = r_file(r, err, errlen);
			break;
		case '5':
			rc = r_dir(r, err, errlen);
			break;
		case '2':
			rc = r_symlink(r, err, errlen);
			break;
		case '1':
			return tar_fail(err, errlen, -EPERM,
					"member %s: hard links are not supported", r->member);
		case '3':
		case '4':
		case '6':
			return tar_fail(err, errlen, -EPERM,
					"member %s: device nodes and fifos are not supported",
					r->member);
		default:
			return tar_fail(err, errlen, -EPERM, "member %s: unsupported type '%c'",
					r->member, type >= 0x20 && type < 0x7f ? type : '?');
		}
		break;
	}
	if (rc < 0)
		return rc;
	r->state = R_DATA;
	return 0;
}

/* Takes n bytes of the current member's data. */
static int r_data(struct tar_reader *r, const uint8_t *buf, size_t n, char *err, size_t errlen)
{
	switch (r->kind) {
	case K_FILE:
		while (n) {
			ssize_t w = write(r->fd, buf, n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return tar_fail(err, errlen, -errno, "member %s: write: %s",
						r->member, strerror(errno));
			buf += w;
			n -= (size_t)w;
		}
		return 0;
	case K_PAX:
	case K_LONG_NAME:
	case K_LONG_LINK:
		memcpy(r->meta + r->meta_have, buf, n); /* bounded by the checks in r_header() */
		r->meta_have += n;
		return 0;
	default:
		return 0;
	}
}

/* Finishes the current member once all its data came. */
static int r_member_end(struct tar_reader *r, char *err, size_t errlen)
{
	int rc = 0;
	switch (r->kind) {
	case K_FILE: {
		struct timespec ts[2] = {{.tv_sec = r->mtime}, {.tv_sec = r->mtime}};
		if (fchmod(r->fd, r->mode) < 0 || futimens(r->fd, ts) < 0)
			rc = tar_fail(err, errlen, -errno, "member %s: %s", r->member,
				      strerror(errno));
		if (close(r->fd) < 0 && !rc)
			rc = tar_fail(err, errlen, -errno, "member %s: %s", r->member,
				      strerror(errno));
		r->fd = -1;
		break;
	}
	case K_PAX:
		rc = r_pax(r, err, errlen);
		break;
	case K_LONG_NAME:
	case K_LONG_LINK: {
		const char *s = (const char *)r->meta;
		size_t len = strnlen(s, r->meta_have);
		char *dst = r->kind == K_LONG_NAME ? r->next_name : r->next_link;
		if (!len || copy_long(dst, s, len) < 0)
			return tar_fail(err, errlen, -EPROTO, "bad GNU long name");
		if (r->kind == K_LONG_NAME)
			r->has_name = true;
		else
			r->has_link = true;
		break;
	}
	default:
		break;
	}
	r->kind = K_SKIP;
	return rc;
}

int tar_reader_feed(struct tar_reader *r, const void *buf, size_t len, char *err, size_t errlen)
{
	const uint8_t *p = buf;
	while (len || (r->state == R_DATA && !r->left)) {
		size_t n = 0;
		int rc = 0;
		switch (r->state) {
		case R_HEADER:
			n = TAR_BLOCK - r->hdr_have;
			n = n < len ? n : len;
			memcpy(r->hdr + r->hdr_have, p, n);
			r->hdr_have += n;
			if (r->hdr_have == TAR_BLOCK) {
				r->hdr_have = 0;
				rc = r_header(r, err, errlen);
			}
			break;
		case R_DATA:
			n = r->left < len ? (size_t)r->left : len;
			rc = r_data(r, p, n, err, errlen);
			r->left -= n;
			if (!rc && !r->left) {
				rc = r_member_end(r, err, errlen);
				r->state = r->pad ? R_PAD : R_HEADER;
			}
			break;
		case R_PAD:
			n = r->pad < len ? (size_t)r->pad : len;
			r->pad -= n;
			if (!r->pad)
				r->state = R_HEADER;
			break;
		default:
			n = len; /* after the end of the archive */
			break;
		}
		if (rc < 0)
			return rc;
		p += n;
		len -= n;
	}
	return 0;
}

int tar_reader_end(struct tar_reader *r, char *err, size_t errlen)
{
	if (r->state == R_END || (r->state == R_HEADER && !r->hdr_have))
		return 0;
	return tar_fail(err, errlen, -EPROTO, "the tar stream ends inside member %s", r->member);
}
