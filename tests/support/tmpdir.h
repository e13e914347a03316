/* tmpdir: scratch folders for tests, made under /tmp and removed with all in them. */
#ifndef KVMINI_TESTS_TMPDIR_H
#define KVMINI_TESTS_TMPDIR_H

#include <stddef.h>

/* Reports with return values and never asserts, like vdriver.h: callers assert. */

/* Make a new folder /tmp/kvmini-NAME-XXXXXX (mkdtemp); its path in dir[0..size). 0 or -errno. */
int tmpdir_make(char *dir, size_t size, const char *name);

/* Remove `dir` and everything under it, never following a symbolic link. 0 or -errno. */
int tmpdir_remove(const char *dir);

#endif
