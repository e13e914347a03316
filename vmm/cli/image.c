/* image: --image REF: an OCI image layout (oci:DIR[:TAG]) or a `docker save` archive
 * (docker-archive:FILE) unpacked into a root directory in the cache, and its config. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <nettle/sha2.h>

#include "kvmini/cache.h"
#include "kvmini/cp.h"
#include "kvmini/image.h"

/*
 * Unpacking. Layers are applied in order into a fresh directory with libarchive (any
 * compression it knows: gzip, zstd, xz...), relative to that directory (fchdir) with
 * ARCHIVE_EXTRACT_SECURE_* so nothing is written through a symbolic link or outside. Every
 * member name is checked first: absolute names and ".." components are refused (the image is
 * rejected), device nodes, FIFOs and sockets are skipped (neutralised), hard links must name a
 * member path that passes the same check. Whiteouts (OCI image spec, "layer.md"): ".wh.NAME"
 * removes NAME from the layers below, ".wh..wh..opq" empties its directory. Files keep the
 * image's owners when kvmini runs as root (the guest runs as root by default).
 *
 * Trust. In an OCI layout every blob read (manifest, config, layers) is checked against its
 * sha256 digest; a mismatch is a corrupt image. The cache is keyed by the manifest's digest
 * (OCI) or the config's sha256 (docker-archive: Docker's image ID): the unpacked tree goes to
 * $CACHE/images/<hex> (the key's hex digits), built under a temporary name and renamed, so a
 * failure leaves nothing behind under the final name.
 */

#define IMAGE_JSON_MAX	 (4 << 20) /* manifests, indexes and configs above this are refused */
#define IMAGE_LAYERS_MAX 256

/* ---- small helpers ---- */

static int image_fail(struct kvmini_error *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int image_fail(struct kvmini_error *e, int err, const char *fmt, ...)
{
	char msg[KVMINI_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cli_fail(e, KVMINI_EXEC_FAILED, err, "%s", msg);
}

/* "sha256:" + 64 lower-case hex digits: the hex part, else NULL (never a path). */
static const char *image_sha256_hex(const char *digest)
{
	if (!digest || strncmp(digest, "sha256:", 7) != 0)
		return NULL;
	const char *h = digest + 7;
	for (int i = 0; i < 64; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return NULL;
	return h[64] ? NULL : h;
}

/* The sha256 of file `path` as 64 hex digits. 0 or -errno. */
static int image_hash_file(const char *path, char hex[65])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct sha256_ctx md;
	sha256_init(&md);
	uint8_t buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		sha256_update(&md, (size_t)n, buf);
	int err = n < 0 ? -errno : 0;
	close(fd);
	uint8_t out[SHA256_DIGEST_SIZE];
	sha256_digest(&md, sizeof(out), out);
	for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", out[i]);
	return err;
}

/* Load a JSON file of at most IMAGE_JSON_MAX bytes. */
static json_t *image_load_json(const char *path, struct kvmini_error *e)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		image_fail(e, errno, "the image has no %s: %s", path, strerror(errno));
		return NULL;
	}
	if (st.st_size > IMAGE_JSON_MAX) {
		image_fail(e, EFBIG, "%s is too big for an image's JSON", path);
		return NULL;
	}
	json_error_t je;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		image_fail(e, EINVAL, "%s is not valid JSON: %s (line %d)", path, je.text, je.line);
	return j;
}

/* An OCI blob: its path after checking the digest's form and (verify) its content. */
static int image_blob(const char *dir, const char *digest, bool verify, char *path, size_t size,
		      struct kvmini_error *e)
{
	const char *hex = image_sha256_hex(digest);
	if (!hex)
		return image_fail(e, EINVAL, "the image names a blob by a bad digest '%.80s'",
				  digest ? digest : "(none)");
	int n = snprintf(path, size, "%s/blobs/sha256/%s", dir, hex);
	if (n < 0 || (size_t)n >= size)
		return image_fail(e, ENAMETOOLONG, "the image path is too long");
	if (!verify)
		return 0;
	char got[65];
	int ret = image_hash_file(path, got);
	if (ret < 0)
		return image_fail(e, -ret, "the image's blob %s cannot be read: %s", digest,
				  strerror(-ret));
	if (strcmp(got, hex))
		return image_fail(e, EBADMSG,
				  "the image is corrupt: blob %.19s... has sha256 %.12s...", digest,
				  got);
	return 0;
}

/* A NULL-terminated copy of a JSON array of strings (NULL for a missing key or null). */
static char **image_strv(json_t *a, bool *bad)
{
	if (!a || json_is_null(a))
		return NULL;
	if (!json_is_array(a) || json_array_size(a) > 4096) {
		*bad = true;
		return NULL;
	}
	char **v = calloc(json_array_size(a) + 1, sizeof(char *));
	if (!v) {
		*bad = true;
		return NULL;
	}
	for (size_t i = 0; i < json_array_size(a); i++) {
		const char *s = json_string_value(json_array_get(a, i));
		v[i] = s ? strdup(s) : NULL;
		if (!v[i]) {
			*bad = true;
			return v;
		}
	}
	return v;
}

static void image_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void image_config_free(struct image_config *c)
{
	image_strv_free(c->entrypoint);
	image_strv_free(c->cmd);
	image_strv_free(c->env);
	free(c->workdir);
	free(c->user);
	memset(c, 0, sizeof(*c));
}

/* The image config's "config" object: Entrypoint, Cmd, Env, WorkingDir, User. */
static int image_parse_config(json_t *cfg, struct image_config *out, struct kvmini_error *e)
{
	json_t *c = json_object_get(cfg, "config");
	if (!c || json_is_null(c))
		return 0;
	if (!json_is_object(c))
		return image_fail(e, EINVAL, "the image config's \"config\" is not an object");
	bool bad = false;
	out->entrypoint = image_strv(json_object_get(c, "Entrypoint"), &bad);
	out->cmd = image_strv(json_object_get(c, "Cmd"), &bad);
	out->env = image_strv(json_object_get(c, "Env"), &bad);
	const char *wd = json_string_value(json_object_get(c, "WorkingDir"));
	const char *user = json_string_value(json_object_get(c, "User"));
	if (wd && *wd)
		out->workdir = strdup(wd);
	if (user && *user)
		out->user = strdup(user);
	if (bad || (wd && *wd && !out->workdir) || (user && *user && !out->user))
		return image_fail(e, EINVAL,
				  "the image config's Entrypoint, Cmd or Env is not a list of "
				  "strings");
	return 0;
}

/* ---- layers ---- */

/* Empty directory `path` (relative to the working directory, the root being built). */
static int image_empty_dir(const char *path)
{
	int d = open(*path ? path : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0)
		return errno == ENOENT ? 0 : -errno;
	return cache_rm_children(d);
}

/* Strip a leading "./" (and repeated slashes after it) from a member name. */
static const char *image_clean_name(const char *n)
{
	while (n[0] == '.' && n[1] == '/') {
		n += 2;
		while (*n == '/')
			n++;
	}
	return n;
}

/* What to add to an unpacking error when the cache's disk is full. */
static const char *image_full(struct archive *w)
{
	int err = archive_errno(w);
	return err == ENOSPC || err == EDQUOT
		       ? " (the cache's disk is full: free space, `kvmini cache prune`, or set "
			 "KVMINI_CACHE_DIR)"
		       : "";
}

/* Apply one layer (a tar, compressed or not) to the root that is the working directory. */
static int image_apply_layer(const char *path, struct kvmini_error *e)
{
	struct archive *a = archive_read_new(), *w = archive_write_disk_new();
	int ret = 0;
	if (!a || !w) {
		ret = image_fail(e, ENOMEM, "out of memory");
		goto out;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
		    ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |
		    ARCHIVE_EXTRACT_UNLINK;
	if (geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER;
	archive_write_disk_set_options(w, flags);
	if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
		ret = image_fail(e, EIO, "cannot read layer %s: %s", path, archive_error_string(a));
		goto out;
	}
	struct archive_entry *ent;
	int r;
	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		const char *raw = archive_entry_pathname(ent);
		/* A copy: archive_entry_set_pathname() below replaces the string `raw` is in. */
		char name[PATH_MAX];
		if (snprintf(name, sizeof(name), "%s", image_clean_name(raw ? raw : "")) >=
		    (int)sizeof(name)) {
			ret = image_fail(e, EPERM,
					 "the image's layer %s has a member name longer "
					 "than %d bytes",
					 path, PATH_MAX - 1);
			goto out;
		}
		if (!*name || !strcmp(name, "."))
			continue; /* the root itself */
		char why[PATH_MAX + 64];
		const char *hl = archive_entry_hardlink(ent);
		/* A tar hard link (typeflag '1') has no file type of its own: a regular file. */
		unsigned int type = hl ? AE_IFREG : archive_entry_filetype(ent);
		if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO || type == AE_IFSOCK)
			continue; /* neutralised: a guest gets its devices from devtmpfs */
		if (cp_check_member(name, type, false, why, sizeof(why)) < 0 ||
		    (hl && cp_check_member(image_clean_name(hl), AE_IFREG, false, why,
					   sizeof(why)) < 0)) {
			ret = image_fail(e, EPERM, "the image's layer %s has a bad member: %s",
					 path, why);
			goto out;
		}
		const char *base = strrchr(name, '/');
		base = base ? base + 1 : name;
		if (!strncmp(base, ".wh.", 4)) {
			char dirpart[PATH_MAX];
			snprintf(dirpart, sizeof(dirpart), "%.*s", (int)(base - name), name);
			if (!strcmp(base, ".wh..wh..opq"))
				ret = image_empty_dir(dirpart);
			else {
				char victim[PATH_MAX + 8];
				snprintf(victim, sizeof(victim), "%s%s", dirpart, base + 4);
				ret = cache_rm(AT_FDCWD, victim);
			}
			if (ret < 0) {
				ret = image_fail(e, -ret, "cannot apply whiteout %s: %s", name,
						 strerror(-ret));
				goto out;
			}
			continue;
		}
		archive_entry_set_pathname(ent, name);
		if (hl)
			archive_entry_set_hardlink(ent, image_clean_name(hl));
		if (archive_write_header(w, ent) != ARCHIVE_OK) {
			ret = image_fail(e, EIO, "cannot unpack %s: %s%s", name,
					 archive_error_string(w), image_full(w));
			goto out;
		}
		if (cp_copy_data(a, w, why, sizeof(why)) < 0) {
			ret = image_fail(e, EIO, "layer %s at %s: %s", path, name, why);
			goto out;
		}
	}
	if (r != ARCHIVE_EOF)
		ret = image_fail(e, EIO, "layer %s is damaged or truncated: %s", path,
				 archive_error_string(a));
out:
	if (w) {
		archive_write_close(w);
		archive_write_free(w);
	}
	if (a)
		archive_read_free(a);
	return ret;
}

/* Apply `n` layer files to directory `root`, in order. */
static int image_apply_layers(const char *root, char **layers, size_t n, struct kvmini_error *e)
{
	int here = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (here < 0 || chdir(root) < 0) {
		int err = errno;
		if (here >= 0)
			close(here);
		return image_fail(e, err, "cannot enter %s: %s", root, strerror(err));
	}
	int ret = 0;
	for (size_t i = 0; !ret && i < n; i++)
		ret = image_apply_layer(layers[i], e);
	if (fchdir(here) < 0 && !ret)
		ret = image_fail(e, errno, "cannot return to the working directory");
	close(here);
	return ret;
}

/* ---- references ---- */

/* The OCI layout's manifest for `tag` (or the only one): its digest. */
static int image_oci_manifest(const char *dir, const char *tag, char *digest, size_t size,
			      struct kvmini_error *e)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/index.json", dir);
	json_t *idx = image_load_json(p, e);
	if (!idx)
		return -1;
	json_t *ms = json_object_get(idx, "manifests");
	const char *found = NULL;
	size_t i;
	json_t *m;
	json_array_foreach(ms, i, m)
	{
		const char *ref = json_string_value(json_object_get(
			json_object_get(m, "annotations"), "org.opencontainers.image.ref.name"));
		if ((!tag && json_array_size(ms) == 1) || (tag && ref && !strcmp(ref, tag))) {
			found = json_string_value(json_object_get(m, "digest"));
			break;
		}
	}
	int ret = 0;
	if (!found)
		ret = image_fail(e, ENOENT,
				 tag ? "the image layout %s has no tag '%s'"
				     : "the image layout %s%s holds several images: name a tag "
				       "(oci:DIR:TAG)",
				 dir, tag ? tag : "");
	else
		snprintf(digest, size, "%s", found);
	json_decref(idx);
	return ret;
}

/* Gather an OCI image: config and layer paths (all verified). */
static int image_oci(const char *dir, const char *tag, struct image_config *out, char ***layers,
		     size_t *nlayers, struct kvmini_error *e)
{
	char digest[128], p[PATH_MAX];
	if (image_oci_manifest(dir, tag, digest, sizeof(digest), e) < 0 ||
	    image_blob(dir, digest, true, p, sizeof(p), e) < 0)
		return -1;
	snprintf(out->key, sizeof(out->key), "%s", image_sha256_hex(digest));
	json_t *man = image_load_json(p, e);
	if (!man)
		return -1;
	int ret = -1;
	json_t *cfg = NULL;
	const char *cdig =
		json_string_value(json_object_get(json_object_get(man, "config"), "digest"));
	json_t *ls = json_object_get(man, "layers");
	if (!json_is_array(ls) || json_array_size(ls) > IMAGE_LAYERS_MAX) {
		image_fail(e, EINVAL, "the image manifest has no list of layers");
		goto out;
	}
	if (image_blob(dir, cdig, true, p, sizeof(p), e) < 0 || !(cfg = image_load_json(p, e)) ||
	    image_parse_config(cfg, out, e) < 0)
		goto out;
	*layers = calloc(json_array_size(ls) + 1, sizeof(char *));
	if (!*layers) {
		image_fail(e, ENOMEM, "out of memory");
		goto out;
	}
	size_t i;
	json_t *l;
	json_array_foreach(ls, i, l)
	{
		if (image_blob(dir, json_string_value(json_object_get(l, "digest")), true, p,
			       sizeof(p), e) < 0)
			goto out;
		(*layers)[i] = strdup(p);
		if (!(*layers)[i]) {
			image_fail(e, ENOMEM, "out of memory");
			goto out;
		}
		*nlayers = i + 1;
	}
	ret = 0;
out:
	json_decref(cfg);
	json_decref(man);
	return ret;
}

/* The flattened path of archive member `name` in `dir`. */
static void image_flat(const char *dir, const char *name, char *p, size_t size)
{
	snprintf(p, size, "%s/", dir);
	size_t off = strlen(p);
	for (const char *c = image_clean_name(name); *c && off + 2 < size; c++)
		p[off++] = *c == '/' ? '%' : *c;
	p[off] = '\0';
}

/* Unpack a `docker save` archive's members (checked names, regular files only) into `dir`. */
static int image_unpack_archive(const char *file, const char *dir, struct kvmini_error *e)
{
	struct archive *a = archive_read_new();
	if (!a)
		return image_fail(e, ENOMEM, "out of memory");
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	int ret = 0;
	if (archive_read_open_filename(a, file, 65536) != ARCHIVE_OK) {
		ret = image_fail(e, EIO, "cannot read %s: %s", file, archive_error_string(a));
		goto out;
	}
	struct archive_entry *ent;
	int r;
	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		const char *name = image_clean_name(archive_entry_pathname(ent));
		char why[PATH_MAX + 64], p[PATH_MAX * 2];
		unsigned int type = archive_entry_filetype(ent);
		if (type == AE_IFDIR || !*name)
			continue;
		if (cp_check_member(name, type, archive_entry_hardlink(ent), why, sizeof(why)) <
			    0 ||
		    type != AE_IFREG) {
			ret = image_fail(e, EPERM, "%s has a bad member: %s", file,
					 type == AE_IFREG ? why : name);
			goto out;
		}
		/* Flatten: members are found by their name with '/' turned into '%'. */
		image_flat(dir, name, p, sizeof(p));
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			ret = image_fail(e, errno, "cannot unpack %s: %s", name, strerror(errno));
			goto out;
		}
		if (archive_read_data_into_fd(a, fd) != ARCHIVE_OK) {
			close(fd);
			ret = image_fail(e, EIO, "%s is damaged or truncated at %s: %s", file, name,
					 archive_error_string(a));
			goto out;
		}
		close(fd);
	}
	if (r != ARCHIVE_EOF)
		ret = image_fail(e, EIO, "%s is damaged or truncated: %s", file,
				 archive_error_string(a));
out:
	archive_read_free(a);
	return ret;
}

/* Gather a docker-archive image (its members unpacked into `tmp`). */
static int image_docker(const char *file, const char *tmp, struct image_config *out, char ***layers,
			size_t *nlayers, struct kvmini_error *e)
{
	if (image_unpack_archive(file, tmp, e) < 0)
		return -1;
	char p[PATH_MAX];
	image_flat(tmp, "manifest.json", p, sizeof(p));
	json_t *man = image_load_json(p, e);
	if (!man)
		return -1;
	int ret = -1;
	json_t *cfg = NULL, *m0 = json_array_get(man, 0);
	const char *cname = json_string_value(json_object_get(m0, "Config"));
	json_t *ls = json_object_get(m0, "Layers");
	if (!cname || !json_is_array(ls) || json_array_size(ls) > IMAGE_LAYERS_MAX) {
		image_fail(e, EINVAL, "%s has no image in its manifest.json", file);
		goto out;
	}
	image_flat(tmp, cname, p, sizeof(p));
	char hex[65];
	if (image_hash_file(p, hex) < 0 || !(cfg = image_load_json(p, e)) ||
	    image_parse_config(cfg, out, e) < 0) {
		if (!e->status)
			image_fail(e, EINVAL, "%s: its config %s cannot be read", file, cname);
		goto out;
	}
	snprintf(out->key, sizeof(out->key), "%s", hex);
	*layers = calloc(json_array_size(ls) + 1, sizeof(char *));
	if (!*layers) {
		image_fail(e, ENOMEM, "out of memory");
		goto out;
	}
	size_t i;
	json_t *l;
	json_array_foreach(ls, i, l)
	{
		const char *ln = json_string_value(l);
		char why[PATH_MAX + 64];
		if (!ln ||
		    cp_check_member(image_clean_name(ln), AE_IFREG, false, why, sizeof(why)) < 0) {
			image_fail(e, EINVAL, "%s names a bad layer", file);
			goto out;
		}
		image_flat(tmp, ln, p, sizeof(p));
		(*layers)[i] = strdup(p);
		if (!(*layers)[i]) {
			image_fail(e, ENOMEM, "out of memory");
			goto out;
		}
		*nlayers = i + 1;
	}
	ret = 0;
out:
	json_decref(cfg);
	json_decref(man);
	return ret;
}

int image_prepare(const char *ref, struct image_config *out, bool *built, struct kvmini_error *e)
{
	memset(out, 0, sizeof(*out));
	*built = false;
	char cache[PATH_MAX - 128];
	if (cache_dir(cache, sizeof(cache), "images", e) < 0)
		return -1;
	char tmp[PATH_MAX + 64];
	snprintf(tmp, sizeof(tmp), "%s/tmp.%d", cache, (int)getpid());
	cache_rm(AT_FDCWD, tmp);
	if (mkdir(tmp, 0700) < 0)
		return image_fail(e, errno, "cannot create %s: %s", tmp, strerror(errno));
	char **layers = NULL;
	size_t nlayers = 0;
	int ret;
	if (!strncmp(ref, "oci:", 4)) {
		char dir[PATH_MAX - 128];
		snprintf(dir, sizeof(dir), "%s", ref + 4);
		char *colon = strrchr(dir, ':'), *sl = strrchr(dir, '/');
		const char *tag = NULL;
		if (colon && (!sl || colon > sl)) {
			*colon = '\0';
			tag = colon + 1;
		}
		ret = image_oci(dir, tag, out, &layers, &nlayers, e);
	} else if (!strncmp(ref, "docker-archive:", 15)) {
		ret = image_docker(ref + 15, tmp, out, &layers, &nlayers, e);
	} else {
		ret = cli_fail(e, KVMINI_EXIT_USAGE, EINVAL,
			       "--image '%s' must be oci:DIR[:TAG] or docker-archive:FILE", ref);
	}
	if (ret < 0)
		goto out;
	snprintf(out->rootfs, sizeof(out->rootfs), "%s/%s", cache, out->key);
	struct stat st;
	if (stat(out->rootfs, &st) == 0) {
		cache_touch(out->rootfs); /* unpacked before */
		goto out;
	}
	char root[PATH_MAX + 80];
	snprintf(root, sizeof(root), "%s/root", tmp);
	if (mkdir(root, 0755) < 0) {
		ret = image_fail(e, errno, "cannot create %s: %s", root, strerror(errno));
		goto out;
	}
	ret = image_apply_layers(root, layers, nlayers, e);
	if (!ret && rename(root, out->rootfs) < 0)
		ret = image_fail(e, errno, "cannot store the unpacked image in %s: %s", cache,
				 strerror(errno));
	*built = ret == 0;
	if (*built)
		cache_touch(out->rootfs);
out:
	cache_rm(AT_FDCWD, tmp);
	for (size_t i = 0; layers && i < nlayers; i++)
		free(layers[i]);
	free(layers);
	if (ret < 0)
		image_config_free(out);
	return ret < 0 ? -1 : 0;
}
