/* cp: `kvmini cp`: copy files between the host and a running sandbox VM, as tar streams through
 * the guest agent; libarchive reads and writes the host side. */
#ifndef KVMINI_CP_H
#define KVMINI_CP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "kvmini.h"

/* `kvmini cp SRC NAME:DST | NAME:SRC DST` (argv[1] is "cp"): the exit status (0 or 125). */
int cp_main(int argc, char **argv);

/* Print `kvmini cp --help`. */
void cp_usage(FILE *f);

/*
 * May a member named `name` of file type `type` (AE_IFREG...) come out of a guest's tar
 * stream? No for an absolute or empty name, a ".." component, a hard link, and anything but a
 * regular file, directory or symbolic link. 0, or -EPERM with the reason in why[0..size).
 */
int cp_check_member(const char *name, unsigned int type, bool hardlink, char *why, size_t size);

struct archive;

/*
 * Copy the data of the member libarchive reader `a` is at to disk writer `w`, and finish it.
 * 0, or -EIO with one line in why[0..size) (a full disk, a stream cut short).
 */
int cp_copy_data(struct archive *a, struct archive *w, char *why, size_t size);

/*
 * Extract the tar stream read from `tar_fd` into existing directory `dst`, every member checked
 * by cp_check_member() first and none written through a symbolic link. Stops at the first
 * refused or failing member (the ones before it stay). 0, or -errno with `e` (status 125).
 */
int cp_extract(int tar_fd, const char *dst, struct kvmini_error *e);

#endif
