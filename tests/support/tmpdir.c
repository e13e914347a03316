/* tmpdir: scratch folders for tests, made under /tmp and removed with all in them. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tmpdir.h"

int tmpdir_make(char *dir, size_t size, const char *name)
{
	int n = snprintf(dir, size, "/tmp/kvmini-%s-XXXXXX", name);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return mkdtemp(dir) ? 0 : -errno;
}

static int tmpdir_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

int tmpdir_remove(const char *dir)
{
	/* Depth first, without following links (FTW_PHYS): a link to outside is only unlinked. */
	if (nftw(dir, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return errno ? -errno : -EIO;
	return 0;
}
