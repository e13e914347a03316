/* image: --image REF: an OCI image layout (oci:DIR[:TAG]) or a `docker save` archive
 * (docker-archive:FILE) unpacked into a root directory in the cache, and its config. */
#ifndef KVMINI_IMAGE_H
#define KVMINI_IMAGE_H

#include <limits.h>
#include <stdbool.h>

#include "kvmini.h"
#include "kvmini/cli.h"

/* What the image's config says (each NULL when absent), and where its root was unpacked. */
struct image_config {
	char **entrypoint, **cmd, **env; /* NULL-terminated */
	char *workdir, *user;
	char key[65];	       /* the cache key: manifest digest (OCI) or config sha256 */
	char rootfs[PATH_MAX]; /* $CACHE/images/<key>: the unpacked layers */
};

/*
 * Unpack image `ref` into the cache (once per key; *built says whether this call did) and read
 * its config. Layers are checked member by member and whiteouts applied (see image.c); in an
 * OCI layout every blob's sha256 is verified. 0, or -1 with `e` (status 125: a missing or
 * corrupt image, a member escaping the root, a full disk; 2: a bad REF).
 */
int image_prepare(const char *ref, struct image_config *out, bool *built, struct kvmini_error *e);

/* Free what image_prepare() allocated. */
void image_config_free(struct image_config *c);

#endif
