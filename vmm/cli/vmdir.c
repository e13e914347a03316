/* vmdir: where managed VMs live: runtime folders (sockets, pid, console log), definitions. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/cli.h"
#include "kvmini/vmdir.h"

/* mkdir -p with mode 0700 for every folder it creates; the last one must be ours and 0700. */
static int vmdir_mkdirs(const char *path, struct kvmini_error *e)
{
	char p[VMDIR_PATH_MAX];
	if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
		return cli_fail(e, KVMINI_EXIT_USAGE, ENAMETOOLONG, "%s: path too long", path);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return cli_fail(e, KVMINI_EXIT_RESOURCE, errno,
					"cannot create %s: %s; set KVMINI_RUNTIME_DIR or "
					"KVMINI_CONFIG_DIR to a folder you may write",
					p, strerror(errno));
		*s = c;
		if (!c)
			break;
	}
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return cli_fail(e, KVMINI_EXIT_RESOURCE, ENOTDIR, "%s is not a folder", path);
	if (st.st_uid != geteuid())
		return cli_fail(e, KVMINI_EXIT_RESOURCE, EPERM,
				"%s belongs to another user; use a folder of your own "
				"(KVMINI_RUNTIME_DIR, KVMINI_CONFIG_DIR)",
				path);
	if ((st.st_mode & 077) && chmod(path, 0700) < 0)
		return cli_fail(e, KVMINI_EXIT_RESOURCE, errno, "cannot make %s private: %s", path,
				strerror(errno));
	return 0;
}

static int vmdir_pick(char *out, size_t n, bool create, struct kvmini_error *e, const char *fmt,
		      ...) __attribute__((format(printf, 5, 6)));
static int vmdir_pick(char *out, size_t n, bool create, struct kvmini_error *e, const char *fmt,
		      ...)
{
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= n || len + 40 > VMDIR_PATH_MAX)
		return cli_fail(e, KVMINI_EXIT_USAGE, ENAMETOOLONG,
				"the folder %.100s... is too long (max %d bytes)", out,
				VMDIR_PATH_MAX - 40);
	return create ? vmdir_mkdirs(out, e) : 0;
}

static const char *vmdir_env(const char *name)
{
	const char *v = getenv(name);
	return v && v[0] == '/' ? v : NULL; /* relative: ignored, as the XDG spec says */
}

int vmdir_runtime(char *out, size_t n, bool create, struct kvmini_error *e)
{
	const char *v;
	if ((v = vmdir_env("KVMINI_RUNTIME_DIR")))
		return vmdir_pick(out, n, create, e, "%s", v);
	if ((v = vmdir_env("XDG_RUNTIME_DIR")))
		return vmdir_pick(out, n, create, e, "%s/kvmini", v);
	if (geteuid() == 0)
		return vmdir_pick(out, n, create, e, "/run/kvmini");
	return vmdir_pick(out, n, create, e, "/tmp/kvmini-%u", (unsigned int)geteuid());
}

int vmdir_config(char *out, size_t n, bool create, struct kvmini_error *e)
{
	const char *v;
	if ((v = vmdir_env("KVMINI_CONFIG_DIR")))
		return vmdir_pick(out, n, create, e, "%s", v);
	if ((v = vmdir_env("XDG_CONFIG_HOME")))
		return vmdir_pick(out, n, create, e, "%s/kvmini/vms", v);
	if ((v = vmdir_env("HOME")))
		return vmdir_pick(out, n, create, e, "%s/.config/kvmini/vms", v);
	return vmdir_pick(out, n, create, e, "/etc/kvmini/vms");
}

int vmdir_path(char *out, size_t n, const char *dir, const char *name, const char *file)
{
	int len = snprintf(out, n, "%s/%s%s%s", dir, name, file ? "/" : "", file ? file : "");
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

/* An OFD write lock on the whole file: shared by fork, released when the last fd closes. */
static int vmdir_lock(int fd, int cmd, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = F_WRLCK;
	fl->l_whence = SEEK_SET;
	return fcntl(fd, cmd, fl);
}

static void vmdir_unlink(const char *dir, const char *file)
{
	char p[VMDIR_PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	unlink(p);
}

int vmdir_claim(struct vmdir_claim *cl, const char *runtime, const char *name,
		struct kvmini_error *e)
{
	cl->lock_fd = -1;
	if (vmdir_path(cl->dir, sizeof(cl->dir), runtime, name, NULL) < 0)
		return cli_fail(e, KVMINI_EXIT_USAGE, ENAMETOOLONG, "runtime path too long");
	int ret = vmdir_mkdirs(cl->dir, e);
	if (ret < 0)
		return ret;
	char p[VMDIR_PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/%s", cl->dir, VMDIR_LOCK);
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return cli_fail(e, KVMINI_EXIT_RESOURCE, errno, "cannot open %s: %s", p,
				strerror(errno));
	struct flock fl;
	if (vmdir_lock(fd, F_OFD_SETLK, &fl) < 0) {
		int err = errno;
		close(fd);
		if (err == EAGAIN || err == EACCES) {
			struct vmdir_info in;
			vmdir_probe(runtime, name, &in);
			return cli_fail(e, CLI_EXIT_STATE, EBUSY,
					"a VM named '%s' is already running (pid %d); pick another "
					"--name, or stop it with 'kvmini shutdown %s'",
					name, (int)in.pid, name);
		}
		return cli_fail(e, KVMINI_EXIT_HOST, err, "cannot lock %s: %s", p, strerror(err));
	}
	cl->lock_fd = fd;
	/* Whatever is here belongs to a VM that is gone (its lock was free). */
	vmdir_unlink(cl->dir, VMDIR_API_SOCK);
	vmdir_unlink(cl->dir, VMDIR_CONSOLE_SOCK);
	vmdir_unlink(cl->dir, VMDIR_PID);
	vmdir_unlink(cl->dir, VMDIR_EXIT);
	return 0;
}

int vmdir_write(const struct vmdir_claim *cl, const char *file, const char *text)
{
	char p[VMDIR_PATH_MAX + 32], tmp[VMDIR_PATH_MAX + 48];
	snprintf(p, sizeof(p), "%s/%s", cl->dir, file);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", p, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	int ret = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, p) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

void vmdir_release(struct vmdir_claim *cl)
{
	if (cl->lock_fd < 0)
		return;
	vmdir_unlink(cl->dir, VMDIR_API_SOCK);
	vmdir_unlink(cl->dir, VMDIR_CONSOLE_SOCK);
	vmdir_unlink(cl->dir, VMDIR_PID);
	close(cl->lock_fd);
	cl->lock_fd = -1;
}

/* Read a small file into `buf`; its length or -errno. */
static ssize_t vmdir_read(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t r = read(fd, buf, n - 1);
	int err = errno;
	close(fd);
	if (r < 0)
		return -err;
	buf[r] = '\0';
	return r;
}

void vmdir_probe(const char *runtime, const char *name, struct vmdir_info *out)
{
	memset(out, 0, sizeof(*out));
	char dir[VMDIR_PATH_MAX], p[VMDIR_PATH_MAX + 32], buf[1024];
	struct stat st;
	if (vmdir_path(dir, sizeof(dir), runtime, name, NULL) < 0 || stat(dir, &st) < 0 ||
	    !S_ISDIR(st.st_mode))
		return;
	snprintf(p, sizeof(p), "%s/%s", dir, VMDIR_PID);
	if (vmdir_read(p, buf, sizeof(buf)) > 0)
		out->pid = (pid_t)strtol(buf, NULL, 10);
	/* Running = its lock is held. F_OFD_GETLK only looks: it neither takes nor disturbs it. */
	snprintf(p, sizeof(p), "%s/%s", dir, VMDIR_LOCK);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		struct flock fl;
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_RDLCK;
		fl.l_whence = SEEK_SET;
		int r = fcntl(fd, F_OFD_GETLK, &fl);
		close(fd);
		if (r == 0 && fl.l_type != F_UNLCK) {
			out->state = VMDIR_RUNNING;
			return;
		}
	}
	/* Only a lock (a run that failed to start, or a forgotten record): no VM. */
	static const char *const traces[] = {VMDIR_PID, VMDIR_CONFIG, VMDIR_EXIT};
	bool any = false;
	for (size_t i = 0; i < sizeof(traces) / sizeof(traces[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, traces[i]);
		any |= access(p, F_OK) == 0;
	}
	if (!any) {
		out->pid = 0;
		return;
	}
	snprintf(p, sizeof(p), "%s/%s", dir, VMDIR_EXIT);
	json_t *x = vmdir_read(p, buf, sizeof(buf)) > 0 ? json_loads(buf, 0, NULL) : NULL;
	if (x && json_is_integer(json_object_get(x, "status"))) {
		out->state = VMDIR_EXITED;
		out->exit_status = (int)json_integer_value(json_object_get(x, "status"));
		const char *why = json_string_value(json_object_get(x, "reason"));
		snprintf(out->reason, sizeof(out->reason), "%s", why ? why : "");
	} else {
		out->state = VMDIR_DIED;
		snprintf(out->reason, sizeof(out->reason),
			 "the VMM process%s ended without recording why (killed?)",
			 out->pid ? "" : " (never fully started)");
	}
	json_decref(x);
	out->pid = 0;
}

int vmdir_forget(const char *runtime, const char *name)
{
	char dir[VMDIR_PATH_MAX], p[VMDIR_PATH_MAX + 32];
	if (vmdir_path(dir, sizeof(dir), runtime, name, NULL) < 0)
		return -ENAMETOOLONG;
	snprintf(p, sizeof(p), "%s/%s", dir, VMDIR_LOCK);
	int fd = open(p, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	struct flock fl;
	if (vmdir_lock(fd, F_OFD_SETLK, &fl) < 0) {
		int err = errno;
		close(fd);
		return err == EAGAIN || err == EACCES ? -EBUSY : -err;
	}
	/* Held: no run can claim the name while its files go. The lock file stays. */
	static const char *const files[] = {
		VMDIR_EXIT,    VMDIR_CONFIG, VMDIR_CONSOLE_LOG, VMDIR_CONSOLE_LOG ".1",
		VMDIR_VMM_LOG, VMDIR_PID,    VMDIR_API_SOCK,	VMDIR_CONSOLE_SOCK};
	int removed = 0;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		removed += unlink(p) == 0;
	}
	close(fd);
	return removed ? 0 : -ENOENT;
}

static int vmdir_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int vmdir_names(const char *dir, bool json, char ***names)
{
	*names = NULL;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	int n = 0, cap = 0;
	char **v = NULL;
	struct dirent *de;
	while ((de = readdir(d))) {
		char name[256];
		snprintf(name, sizeof(name), "%s", de->d_name);
		if (json) {
			size_t l = strlen(name);
			if (l < 6 || strcmp(name + l - 5, ".json") != 0)
				continue;
			name[l - 5] = '\0';
		} else if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) {
			continue;
		}
		if (!cli_name_ok(name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nv = realloc(v, sizeof(*v) * (size_t)cap);
			if (!nv)
				break;
			v = nv;
		}
		if (!(v[n] = strdup(name)))
			break;
		n++;
	}
	closedir(d);
	if (n)
		qsort(v, (size_t)n, sizeof(*v), vmdir_cmp);
	*names = v;
	return n;
}

void vmdir_free_names(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
