/* cp: `kvmini cp`: copy files between the host and a running sandbox VM, as tar streams through
 * the guest agent; libarchive reads and writes the host side. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini.h"
#include "kvmini/cli.h"
#include "kvmini/cp.h"
#include "kvmini/sandbox.h"

/*
 * What comes back from the guest is the guest's: cp_extract() takes regular files, directories
 * and symbolic links only, refuses a member whose name is absolute or has a ".." component, a
 * hard link, a device, FIFO or socket, and lets libarchive refuse to write through a symbolic
 * link (ARCHIVE_EXTRACT_SECURE_*); it works relative to the destination directory (fchdir), so
 * a name can only land below it. Owners are not restored (the files belong to the caller).
 */

#define CP_EXTRACT_FLAGS                                                                 \
	(ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT | \
	 ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |      \
	 ARCHIVE_EXTRACT_UNLINK)

void cp_usage(FILE *f)
{
	fputs("usage: kvmini cp SRC NAME:DST      copy host SRC into directory DST of VM NAME\n"
	      "       kvmini cp NAME:SRC DST      copy SRC of VM NAME into host directory DST\n"
	      "\n"
	      "NAME is a VM started with `kvmini run --rootfs DIR --name NAME`. A directory is\n"
	      "copied recursively; DST must be an existing directory; what SRC names lands in\n"
	      "DST/<last component of SRC>. Regular files, directories and symbolic links only.\n"
	      "Exit status: 0, or 125 (the reason on stderr).\n",
	      f);
}

/* Is `name` a path component that may appear in an extracted member? */
static bool cp_component_ok(const char *s, size_t n)
{
	return !(n == 2 && s[0] == '.' && s[1] == '.');
}

int cp_check_member(const char *name, unsigned int type, bool hardlink, char *why, size_t size)
{
	if (!name || !*name || name[0] == '/') {
		snprintf(why, size, "'%s': an absolute or empty name", name ? name : "");
		return -EPERM;
	}
	for (const char *p = name; *p;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (!cp_component_ok(p, n)) {
			snprintf(why, size, "'%s': a name with '..'", name);
			return -EPERM;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	if (hardlink) {
		snprintf(why, size, "'%s': a hard link", name);
		return -EPERM;
	}
	if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
		snprintf(why, size, "'%s': not a file, directory or symbolic link", name);
		return -EPERM;
	}
	return 0;
}

int cp_copy_data(struct archive *a, struct archive *w, char *why, size_t size)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;
	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
		if (archive_write_data_block(w, buf, len, off) != ARCHIVE_OK) {
			snprintf(why, size, "cannot write it: %s (is the disk full?)",
				 archive_error_string(w));
			return -EIO;
		}
	if (r != ARCHIVE_EOF) {
		snprintf(why, size, "the stream is damaged or cut short: %s",
			 archive_error_string(a));
		return -EIO;
	}
	if (archive_write_finish_entry(w) != ARCHIVE_OK) {
		snprintf(why, size, "cannot finish it: %s", archive_error_string(w));
		return -EIO;
	}
	return 0;
}

int cp_extract(int tar_fd, const char *dst, struct kvmini_error *e)
{
	int here = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || here < 0 || fchdir(dfd) < 0) {
		int err = errno;
		if (dfd >= 0)
			close(dfd);
		if (here >= 0)
			close(here);
		return cli_fail(e, KVMINI_EXEC_FAILED, err,
				"%s is not a directory I can write to: %s", dst, strerror(err));
	}
	struct archive *a = archive_read_new(), *w = archive_write_disk_new();
	int ret = 0;
	if (!a || !w) {
		ret = cli_fail(e, KVMINI_EXEC_FAILED, ENOMEM, "out of memory");
		goto out;
	}
	archive_read_support_format_tar(a);
	archive_write_disk_set_options(w, CP_EXTRACT_FLAGS);
	if (archive_read_open_fd(a, tar_fd, 65536) != ARCHIVE_OK) {
		ret = cli_fail(e, KVMINI_EXEC_FAILED, EIO, "cannot read the copy: %s",
			       archive_error_string(a));
		goto out;
	}
	struct archive_entry *ent;
	int r;
	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		char why[PATH_MAX + 64];
		if (cp_check_member(archive_entry_pathname(ent), archive_entry_filetype(ent),
				    archive_entry_hardlink(ent) != NULL, why, sizeof(why)) < 0) {
			ret = cli_fail(e, KVMINI_EXEC_FAILED, EPERM,
				       "refused a member of the copy from the guest: %s", why);
			goto out;
		}
		archive_entry_set_uid(ent, getuid());
		archive_entry_set_gid(ent, getgid());
		if (archive_write_header(w, ent) != ARCHIVE_OK) {
			ret = cli_fail(e, KVMINI_EXEC_FAILED, EPERM, "cannot write %s: %s",
				       archive_entry_pathname(ent), archive_error_string(w));
			goto out;
		}
		if (cp_copy_data(a, w, why, sizeof(why)) < 0) {
			/* No half-written file: the member that failed goes (we are in dst). */
			if (archive_entry_filetype(ent) == AE_IFREG)
				unlink(archive_entry_pathname(ent));
			ret = cli_fail(e, KVMINI_EXEC_FAILED, EIO, "%s: %s",
				       archive_entry_pathname(ent), why);
			goto out;
		}
	}
	if (r != ARCHIVE_EOF)
		ret = cli_fail(e, KVMINI_EXEC_FAILED, EIO, "the copy from the guest is damaged: %s",
			       archive_error_string(a));
out:
	if (w) {
		archive_write_close(w);
		archive_write_free(w);
	}
	if (a)
		archive_read_free(a);
	if (fchdir(here) < 0) {
		/* the process's working directory stays the destination */
	}
	close(here);
	close(dfd);
	return ret;
}

/* The archiving thread of `cp SRC NAME:DST`: SRC as a tar stream into a pipe. */
struct cp_writer {
	const char *src;
	int fd;
	struct kvmini_error e;
};

/* The member name of `path` below SRC: SRC's last component, then what follows SRC. */
static void cp_member_name(const char *src, const char *path, char *out, size_t size)
{
	size_t slen = strlen(src);
	while (slen > 1 && src[slen - 1] == '/')
		slen--;
	const char *base = src + slen;
	while (base > src && base[-1] != '/')
		base--;
	size_t blen = (size_t)(src + slen - base);
	const char *rest = strncmp(path, src, slen) == 0 ? path + slen : "";
	snprintf(out, size, "%.*s%s", (int)(blen ? blen : 1), blen ? base : ".", rest);
}

static void *cp_writer_run(void *arg)
{
	struct cp_writer *cw = arg;
	struct archive *disk = archive_read_disk_new(), *w = archive_write_new();
	if (!disk || !w) {
		cli_fail(&cw->e, KVMINI_EXEC_FAILED, ENOMEM, "out of memory");
		goto out;
	}
	archive_read_disk_set_symlink_physical(disk);
	archive_write_set_format_pax_restricted(w);
	if (archive_write_open_fd(w, cw->fd) != ARCHIVE_OK ||
	    archive_read_disk_open(disk, cw->src) != ARCHIVE_OK) {
		cli_fail(&cw->e, KVMINI_EXEC_FAILED, EIO, "cannot read %s: %s", cw->src,
			 archive_error_string(disk));
		goto out;
	}
	struct archive_entry *ent = archive_entry_new();
	int r;
	while (ent && (r = archive_read_next_header2(disk, ent)) == ARCHIVE_OK) {
		archive_read_disk_descend(disk);
		unsigned int type = archive_entry_filetype(ent);
		if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
			continue; /* devices, FIFOs, sockets: the agent would refuse them */
		char name[PATH_MAX];
		cp_member_name(cw->src, archive_entry_pathname(ent), name, sizeof(name));
		archive_entry_set_pathname(ent, name);
		if (archive_write_header(w, ent) != ARCHIVE_OK) {
			cli_fail(&cw->e, KVMINI_EXEC_FAILED, EIO, "cannot archive %s: %s", name,
				 archive_error_string(w));
			break;
		}
		if (type == AE_IFREG && archive_entry_size(ent) > 0) {
			int fd = open(archive_entry_sourcepath(ent), O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				cli_fail(&cw->e, KVMINI_EXEC_FAILED, errno, "cannot read %s: %s",
					 archive_entry_sourcepath(ent), strerror(errno));
				break;
			}
			char buf[65536];
			ssize_t n;
			while ((n = read(fd, buf, sizeof(buf))) > 0)
				if (archive_write_data(w, buf, (size_t)n) < 0)
					break;
			close(fd);
		}
		archive_entry_clear(ent);
	}
	archive_entry_free(ent);
	archive_write_close(w);
out:
	if (w)
		archive_write_free(w);
	if (disk)
		archive_read_free(disk);
	close(cw->fd);
	return NULL;
}

/* The agent's side of `cp NAME:SRC DST`: the stream into a pipe. */
struct cp_reader {
	int sock, fd;
	const char *path;
	struct kvmini_error e;
	int ret;
};

static void *cp_reader_run(void *arg)
{
	struct cp_reader *cr = arg;
	cr->ret = kvmini_copy_out_fd(cr->sock, cr->path, cr->fd, &cr->e);
	close(cr->fd);
	return NULL;
}

/* "NAME:PATH" (NAME a VM name, no '/' before the ':'): split it. */
static bool cp_vm_path(char *arg, const char **name, const char **path)
{
	char *colon = strchr(arg, ':');
	if (!colon || colon == arg || memchr(arg, '/', (size_t)(colon - arg)))
		return false;
	*colon = '\0';
	if (!cli_name_ok(arg)) {
		*colon = ':';
		return false;
	}
	*name = arg;
	*path = colon + 1;
	return true;
}

int cp_main(int argc, char **argv)
{
	if (argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
		cp_usage(stdout);
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "kvmini: error: cp needs SRC and DST; see 'kvmini cp --help'\n");
		return KVMINI_EXEC_FAILED;
	}
	const char *sname, *spath, *dname, *dpath;
	bool from_vm = cp_vm_path(argv[2], &sname, &spath);
	bool to_vm = cp_vm_path(argv[3], &dname, &dpath);
	if (from_vm == to_vm) {
		fprintf(stderr, "kvmini: error: exactly one of SRC and DST must be NAME:PATH; see "
				"'kvmini cp --help'\n");
		return KVMINI_EXEC_FAILED;
	}
	struct kvmini_error e = {0};
	if (to_vm && access(argv[2], R_OK) < 0) {
		fprintf(stderr, "kvmini: error: %s: %s\n", argv[2], strerror(errno));
		return KVMINI_EXEC_FAILED;
	}
	int sock = sandbox_connect(from_vm ? sname : dname, 60000, &e);
	if (sock < 0) {
		fprintf(stderr, "kvmini: error: %s\n", e.msg);
		return KVMINI_EXEC_FAILED;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		close(sock);
		fprintf(stderr, "kvmini: error: pipe: %s\n", strerror(errno));
		return KVMINI_EXEC_FAILED;
	}
	pthread_t t;
	int status = 0;
	if (to_vm) {
		struct cp_writer cw = {.src = argv[2], .fd = p[1]};
		if (cli_thread_start(&t, cp_writer_run, &cw, "archive", NULL, 0, NULL) < 0) {
			close(p[1]);
			cli_fail(&e, KVMINI_EXEC_FAILED, EAGAIN, "cannot start a thread");
		} else {
			int ret = kvmini_copy_in_fd(sock, dpath, p[0], &e);
			close(sock); /* a writer blocked on a full pipe ends with EPIPE */
			sock = -1;
			close(p[0]);
			p[0] = -1;
			pthread_join(t, NULL);
			if (cw.e.status) /* the host side's own error explains the agent's */
				e = cw.e;
			else if (ret >= 0)
				e.status = 0;
		}
	} else {
		struct cp_reader cr = {.sock = sock, .fd = p[1], .path = spath};
		if (cli_thread_start(&t, cp_reader_run, &cr, "copy", NULL, 0, NULL) < 0) {
			close(p[1]);
			cli_fail(&e, KVMINI_EXEC_FAILED, EAGAIN, "cannot start a thread");
		} else {
			int ret = cp_extract(p[0], argv[3], &e);
			close(p[0]); /* the agent's side ends with EPIPE if we stopped early */
			p[0] = -1;
			pthread_join(t, NULL);
			/* The agent's reason (no such file) explains an empty or cut stream. */
			if (cr.ret < 0)
				e = cr.e;
			else if (ret >= 0)
				e.status = 0;
		}
	}
	if (p[0] >= 0)
		close(p[0]);
	if (sock >= 0)
		close(sock);
	if (e.status) {
		fprintf(stderr, "kvmini: error: %s\n", e.msg);
		status = KVMINI_EXEC_FAILED;
	}
	return status;
}
