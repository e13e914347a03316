/* vmconf: a VM's configuration as JSON (--config, define, dumpconfig) to and from struct cli. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/vmconf.h"

#define VMCONF_MAX_MIB (KVMINI_MAX_MEM >> 20)
#define VMCONF_MIN_MIB (KVMINI_MIN_MEM >> 20)

/* Where a parse is: the source's label and the folder relative paths start from. */
struct vmconf_ctx {
	struct cli *c;
	const char *label;
	const char *base_dir;
	struct kvmini_error *e;
};

static int vmconf_fail(const struct vmconf_ctx *x, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int vmconf_fail(const struct vmconf_ctx *x, int status, const char *fmt, ...)
{
	if (x->e && !x->e->status) {
		int n = snprintf(x->e->msg, sizeof(x->e->msg), "%.200s: ", x->label);
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(x->e->msg + n, sizeof(x->e->msg) - (size_t)n, fmt, ap);
		va_end(ap);
		/* One line whatever the file holds: a key may contain a newline or an escape. */
		for (char *p = x->e->msg; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		x->e->status = status;
	}
	return -EINVAL;
}

/* `key`: expected `what`, got <the value as JSON, shortened>. */
static int vmconf_bad(const struct vmconf_ctx *x, const char *key, const char *what,
		      const json_t *got)
{
	char *text = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
	char shown[64];
	snprintf(shown, sizeof(shown), "%s", text ? text : "?");
	if (text && strlen(text) >= sizeof(shown))
		strcpy(shown + sizeof(shown) - 4, "...");
	free(text);
	return vmconf_fail(x, KVMINI_EXIT_INPUT, "\"%s\": expected %s, got %s", key, what, shown);
}

/* "PREFIX" + `path`, with `path` joined to folder `dir` when it is relative (dir NULL: as it
 * is), as a string the cli owns; NULL when out of memory or out of owned strings. */
static const char *vmconf_own_path(struct cli *c, const char *prefix, size_t plen, const char *path,
				   const char *dir)
{
	char *s = NULL;
	int n = path[0] != '/' && dir ? asprintf(&s, "%.*s%s/%s", (int)plen, prefix, dir, path)
				      : asprintf(&s, "%.*s%s", (int)plen, prefix, path);
	if (n < 0)
		return NULL;
	const char *owned = cli_own(c, s);
	free(s);
	return owned;
}

static int vmconf_oom(const struct vmconf_ctx *x)
{
	return vmconf_fail(x, KVMINI_EXIT_HOST, "out of memory (or more than %d strings)",
			   CLI_OWNED_MAX);
}

/* A copy owned by the cli; relative paths joined to the base folder when `is_path`. */
static int vmconf_str(const struct vmconf_ctx *x, const char *key, const json_t *v, bool is_path,
		      bool allow_empty, const char **out)
{
	if (!json_is_string(v))
		return vmconf_bad(x, key, "a string", v);
	const char *s = json_string_value(v); /* jansson refuses \u0000 in strings */
	if (!allow_empty && !*s)
		return vmconf_bad(x, key, "a non-empty string", v);
	if (strlen(s) >= CLI_ARG_MAX)
		return vmconf_bad(x, key, "a string shorter than 4096 bytes", v);
	*out = vmconf_own_path(x->c, "", 0, s, is_path ? x->base_dir : NULL);
	return *out ? 0 : vmconf_oom(x);
}

static int vmconf_int(const struct vmconf_ctx *x, const char *key, const json_t *v, long long min,
		      long long max, long long *out)
{
	char what[80];
	snprintf(what, sizeof(what), "an integer %lld..%lld", min, max);
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return vmconf_bad(x, key, what, v);
	*out = json_integer_value(v);
	return 0;
}

static int vmconf_bool(const struct vmconf_ctx *x, const char *key, const json_t *v, bool *out)
{
	if (!json_is_boolean(v))
		return vmconf_bad(x, key, "true or false", v);
	*out = json_is_true(v);
	return 0;
}

/*
 * A "limit" object of a disk (ops "iops") or a network card (ops "pps"): "bw", OPS,
 * "bw_burst", "OPS_burst", each a non-negative integer or a string with a K/M/G/T suffix;
 * null is no limit.
 */
static int vmconf_limit(const struct vmconf_ctx *x, const char *key, const json_t *v,
			const char *ops, struct kvmini_rate_limit *out)
{
	*out = (struct kvmini_rate_limit){0};
	if (json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return vmconf_bad(x, key, "an object (bw, rates) or null", v);
	const char *k;
	json_t *e;
	json_object_foreach((json_t *)v, k, e)
	{
		char sub[96], num[32];
		snprintf(sub, sizeof(sub), "%s.%s", key, k);
		const char *text = json_string_value(e);
		if (json_is_integer(e) && json_integer_value(e) >= 0) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(e));
			text = num;
		}
		struct kvmini_rate_limit probe;
		if (cli_limit_key(&probe, ops, k, "0") == 0)
			return vmconf_fail(x, KVMINI_EXIT_INPUT,
					   "\"%s\": unknown key (bw, %s, bw_burst, %s_burst)", sub,
					   ops, ops);
		if (!text || cli_limit_key(out, ops, k, text) < 0)
			return vmconf_bad(x, sub, "a non-negative integer or a string like \"50M\"",
					  e);
	}
	return 0;
}

/* A limit for the dump: null when there is none. */
static json_t *vmconf_limit_json(const struct kvmini_rate_limit *l, const char *ops)
{
	if (!l->bytes_per_s && !l->bytes_burst && !l->ops_per_s && !l->ops_burst)
		return json_null();
	char burst[32];
	snprintf(burst, sizeof(burst), "%s_burst", ops);
	return json_pack("{s:I, s:I, s:I, s:I}", "bw", (json_int_t)l->bytes_per_s, ops,
			 (json_int_t)l->ops_per_s, "bw_burst", (json_int_t)l->bytes_burst, burst,
			 (json_int_t)l->ops_burst);
}

static int vmconf_disk(const struct vmconf_ctx *x, size_t i, const json_t *o)
{
	char key[64];
	snprintf(key, sizeof(key), "disks[%zu]", i);
	if (!json_is_object(o))
		return vmconf_bad(x, key, "an object with \"path\"", o);
	struct cli_disk *d = &x->c->disk[x->c->nr_disks];
	memset(d, 0, sizeof(*d));
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)o, k, v)
	{
		snprintf(key, sizeof(key), "disks[%zu].%s", i, k);
		int ret = 0;
		if (!strcmp(k, "path")) {
			ret = vmconf_str(x, key, v, true, false, &d->path);
		} else if (!strcmp(k, "readonly")) {
			ret = vmconf_bool(x, key, v, &d->readonly);
		} else if (!strcmp(k, "serial")) {
			if (json_is_null(v))
				d->serial = NULL;
			else if (json_is_string(v) &&
				 json_string_length(v) > KVMINI_DISK_SERIAL_MAX)
				ret = vmconf_bad(x, key, "a string of at most 20 bytes", v);
			else
				ret = vmconf_str(x, key, v, false, true, &d->serial);
		} else if (!strcmp(k, "cache")) {
			const char *s = json_string_value(v);
			if (s && !strcmp(s, "writeback"))
				d->cache_unsafe = false;
			else if (s && !strcmp(s, "unsafe"))
				d->cache_unsafe = true;
			else
				ret = vmconf_bad(x, key, "\"writeback\" or \"unsafe\"", v);
		} else if (!strcmp(k, "limit")) {
			ret = vmconf_limit(x, key, v, "iops", &d->limit);
		} else {
			ret = vmconf_fail(
				x, KVMINI_EXIT_INPUT,
				"\"%s\": unknown key (path, readonly, serial, cache, limit)", key);
		}
		if (ret < 0)
			return ret;
	}
	if (!d->path)
		return vmconf_fail(x, KVMINI_EXIT_INPUT, "\"disks[%zu]\": \"path\" is missing", i);
	x->c->nr_disks++;
	return 0;
}

static int vmconf_net(const struct vmconf_ctx *x, size_t i, const json_t *o)
{
	char key[64];
	snprintf(key, sizeof(key), "nets[%zu]", i);
	if (!json_is_object(o))
		return vmconf_bad(x, key, "an object with \"tap\"", o);
	struct cli_net *n = &x->c->net[x->c->nr_nets];
	memset(n, 0, sizeof(*n));
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)o, k, v)
	{
		snprintf(key, sizeof(key), "nets[%zu].%s", i, k);
		int ret = 0;
		if (!strcmp(k, "tap"))
			ret = vmconf_str(x, key, v, false, false, &n->tap);
		else if (!strcmp(k, "mac"))
			ret = json_is_null(v) ? 0 : vmconf_str(x, key, v, false, false, &n->mac);
		else if (!strcmp(k, "limit"))
			ret = vmconf_limit(x, key, v, "pps", &n->limit);
		else
			ret = vmconf_fail(x, KVMINI_EXIT_INPUT,
					  "\"%s\": unknown key (tap, mac, limit)", key);
		if (ret < 0)
			return ret;
	}
	if (!n->tap)
		return vmconf_fail(x, KVMINI_EXIT_INPUT, "\"nets[%zu]\": \"tap\" is missing", i);
	x->c->nr_nets++;
	return 0;
}

static int vmconf_list(const struct vmconf_ctx *x, const char *key, const json_t *v, size_t max,
		       int (*one)(const struct vmconf_ctx *, size_t, const json_t *))
{
	char what[64];
	snprintf(what, sizeof(what), "an array of at most %zu objects", max);
	if (!json_is_array(v) || json_array_size(v) > max)
		return vmconf_bad(x, key, what, v);
	for (size_t i = 0; i < json_array_size(v); i++) {
		int ret = one(x, i, json_array_get(v, i));
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* "image": "oci:DIR[:TAG]" or "docker-archive:FILE", a relative path from the file's folder
 * (image_prepare checks the rest when the VM starts). */
static int vmconf_image(const struct vmconf_ctx *x, const json_t *v)
{
	static const char *const kinds[] = {"oci:", "docker-archive:"};
	const char *s = json_is_string(v) ? json_string_value(v) : "";
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i]);
		if (strncmp(s, kinds[i], n) || !s[n])
			continue;
		if (strlen(s) >= CLI_ARG_MAX)
			break;
		x->c->image = vmconf_own_path(x->c, s, n, s + n, x->base_dir);
		return x->c->image ? 0 : vmconf_oom(x);
	}
	return vmconf_bad(x, "image", "\"oci:DIR[:TAG]\" or \"docker-archive:FILE\"", v);
}

/* "vsock": null (none) or {"cid": N (0: a unique default), "uds": PATH or null}. */
static int vmconf_vsock(const struct vmconf_ctx *x, const json_t *v)
{
	struct cli *c = x->c;
	c->vsock = false;
	c->vsock_cid = 0;
	c->vsock_uds = NULL;
	if (json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return vmconf_bad(x, "vsock", "null or an object with \"cid\" and \"uds\"", v);
	c->vsock = true;
	const char *k;
	json_t *f;
	json_object_foreach((json_t *)v, k, f)
	{
		int ret;
		if (!strcmp(k, "cid")) {
			if (json_is_integer(f) && json_integer_value(f) == 0)
				continue;
			long long n = 0;
			ret = vmconf_int(x, "vsock.cid", f, (long long)CLI_VSOCK_CID_MIN,
					 (long long)CLI_VSOCK_CID_MAX, &n);
			c->vsock_cid = (uint64_t)n;
		} else if (!strcmp(k, "uds")) {
			ret = json_is_null(f)
				      ? 0
				      : vmconf_str(x, "vsock.uds", f, true, false, &c->vsock_uds);
		} else {
			ret = vmconf_fail(x, KVMINI_EXIT_INPUT,
					  "\"vsock.%s\": unknown key (cid, uds)", k);
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* "jail": null (none) or {"dir": ABSOLUTE PATH, "uid": N, "gid": N, "netns": PATH or null}. */
static int vmconf_jail(const struct vmconf_ctx *x, const json_t *v)
{
	struct cli *c = x->c;
	c->jail = c->jail_netns = c->jail_cgroup = NULL;
	c->jail_uid = c->jail_gid = 0;
	c->jail_cpu_quota = c->jail_cpu_period = c->jail_memory_max = 0;
	if (json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return vmconf_bad(x, "jail", "null or an object with \"dir\", \"uid\" and \"gid\"",
				  v);
	const char *k;
	json_t *f;
	json_object_foreach((json_t *)v, k, f)
	{
		int ret;
		long long n = 0;
		if (!strcmp(k, "dir")) {
			if (json_is_string(f) && json_string_value(f)[0] != '/')
				return vmconf_bad(x, "jail.dir", "an absolute path", f);
			ret = vmconf_str(x, "jail.dir", f, false, false, &c->jail);
		} else if (!strcmp(k, "uid") || !strcmp(k, "gid")) {
			char key[16];
			snprintf(key, sizeof(key), "jail.%s", k);
			ret = vmconf_int(x, key, f, 1, 4294967294LL, &n);
			*(k[0] == 'u' ? &c->jail_uid : &c->jail_gid) = (unsigned int)n;
		} else if (!strcmp(k, "netns")) {
			ret = json_is_null(f)
				      ? 0
				      : vmconf_str(x, "jail.netns", f, true, false, &c->jail_netns);
		} else if (!strcmp(k, "cgroup")) {
			const char *g = json_string_value(f);
			if (json_is_null(f))
				ret = 0;
			else if (!g || !*g || strstr(g, ".."))
				ret = vmconf_bad(x, "jail.cgroup", "a path under /sys/fs/cgroup",
						 f);
			else
				ret = vmconf_str(x, "jail.cgroup", f, false, false,
						 &c->jail_cgroup);
		} else if (!strcmp(k, "cpu_max")) {
			const char *q = json_string_value(f);
			if (json_is_null(f))
				ret = 0;
			else if (!q ||
				 cli_parse_cpu_max(q, &c->jail_cpu_quota, &c->jail_cpu_period) < 0)
				ret = vmconf_bad(x, "jail.cpu_max",
						 "\"QUOTA/PERIOD\" in microseconds", f);
			else
				ret = 0;
		} else if (!strcmp(k, "memory_max")) {
			char num[32];
			const char *m = json_string_value(f);
			if (json_is_integer(f) && json_integer_value(f) > 0) {
				snprintf(num, sizeof(num), "%lld",
					 (long long)json_integer_value(f));
				m = num;
			}
			if (json_is_null(f))
				ret = 0;
			else if (!m || cli_parse_size(m, &c->jail_memory_max) < 0 ||
				 !c->jail_memory_max)
				ret = vmconf_bad(x, "jail.memory_max", "a size such as \"512M\"",
						 f);
			else
				ret = 0;
		} else {
			ret = vmconf_fail(x, KVMINI_EXIT_INPUT,
					  "\"jail.%s\": unknown key (dir, uid, gid, netns, cgroup, "
					  "cpu_max, memory_max)",
					  k);
		}
		if (ret < 0)
			return ret;
	}
	if (!c->jail || !c->jail_uid || !c->jail_gid)
		return vmconf_fail(
			x, KVMINI_EXIT_INPUT,
			"\"jail\": give \"dir\", \"uid\" and \"gid\" (or null: no jail)");
	return 0;
}

/* One top-level key. */
static int vmconf_key(const struct vmconf_ctx *x, const char *k, const json_t *v)
{
	struct cli *c = x->c;
	long long n = 0;
	int ret;
	if (!strcmp(k, "name")) {
		if (!json_is_string(v) || !cli_name_ok(json_string_value(v)))
			return vmconf_bad(x, k, "a name of 1..64 letters, digits, '_', '.', '-'",
					  v);
		c->name_set = true;
		return vmconf_str(x, k, v, false, false, &c->name);
	}
	if (!strcmp(k, "kernel")) {
		/* null: none, as dumpconfig writes for a sandbox VM (kvmini's own kernel). */
		c->kernel = NULL;
		return json_is_null(v) ? 0 : vmconf_str(x, k, v, true, false, &c->kernel);
	}
	if (!strcmp(k, "initrd")) {
		c->initrd = NULL;
		return json_is_null(v) ? 0 : vmconf_str(x, k, v, true, false, &c->initrd);
	}
	if (!strcmp(k, "cmdline")) {
		c->cmdline = NULL;
		return json_is_null(v) ? 0 : vmconf_str(x, k, v, false, true, &c->cmdline);
	}
	if (!strcmp(k, "default_cmdline")) {
		bool b = true;
		ret = vmconf_bool(x, k, v, &b);
		c->no_default_cmdline = !b;
		return ret;
	}
	if (!strcmp(k, "cpus")) {
		ret = vmconf_int(x, k, v, 1, KVMINI_MAX_CPUS, &n);
		c->cpus = (unsigned int)n;
		return ret;
	}
	if (!strcmp(k, "memory_mib")) {
		if (json_is_integer(v) && json_integer_value(v) > (long long)VMCONF_MAX_MIB)
			return vmconf_fail(x, KVMINI_EXIT_RESOURCE,
					   "\"memory_mib\": %lld is more than kvmini supports "
					   "(%llu, 1 TiB)",
					   (long long)json_integer_value(v),
					   (unsigned long long)VMCONF_MAX_MIB);
		ret = vmconf_int(x, k, v, VMCONF_MIN_MIB, VMCONF_MAX_MIB, &n);
		c->mem_size = (uint64_t)n << 20;
		return ret;
	}
	if (!strcmp(k, "log_level")) {
		int l = json_is_string(v) ? cli_parse_level(json_string_value(v)) : -EINVAL;
		if (l < 0)
			return vmconf_bad(x, k, "\"error\", \"warn\", \"info\" or \"debug\"", v);
		c->log_level = l;
		return 0;
	}
	if (!strcmp(k, "seccomp")) {
		int m;
		if (!json_is_string(v) || kvmini_seccomp_parse(json_string_value(v), &m, NULL) < 0)
			return vmconf_bad(x, k, "\"off\", \"log\" or \"kill\"", v);
		c->seccomp = m;
		return 0;
	}
	if (!strcmp(k, "disks")) {
		c->nr_disks = 0;
		c->disks_from_file = true;
		return vmconf_list(x, k, v, KVMINI_MAX_VIRTIO, vmconf_disk);
	}
	if (!strcmp(k, "nets")) {
		c->nr_nets = 0;
		c->nets_from_file = true;
		return vmconf_list(x, k, v, KVMINI_MAX_NETS, vmconf_net);
	}
	if (!strcmp(k, "vsock"))
		return vmconf_vsock(x, v);
	if (!strcmp(k, "jail"))
		return vmconf_jail(x, v);
	if (!strcmp(k, "rootfs")) {
		c->rootfs = NULL;
		return json_is_null(v) ? 0 : vmconf_str(x, k, v, true, false, &c->rootfs);
	}
	if (!strcmp(k, "image")) {
		c->image = NULL;
		return json_is_null(v) ? 0 : vmconf_image(x, v);
	}
	return vmconf_fail(
		x, KVMINI_EXIT_INPUT,
		"\"%s\": unknown key (name, kernel, initrd, cmdline, default_cmdline, "
		"cpus, memory_mib, disks, nets, vsock, rootfs, image, log_level, seccomp, jail)",
		k);
}

int vmconf_parse(struct cli *c, const char *text, size_t len, const char *label,
		 const char *base_dir, struct kvmini_error *e)
{
	struct vmconf_ctx x = {
		.c = c, .label = label ? label : "config", .base_dir = base_dir, .e = e};
	if (len > VMCONF_MAX_SIZE)
		return vmconf_fail(&x, KVMINI_EXIT_INPUT, "larger than %d bytes", VMCONF_MAX_SIZE);
	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return vmconf_fail(&x, KVMINI_EXIT_INPUT, "line %d column %d: not valid JSON: %s",
				   je.line, je.column, je.text);
	int ret = 0;
	if (!json_is_object(root)) {
		ret = vmconf_fail(&x, KVMINI_EXIT_INPUT, "expected a JSON object {...} at the top");
	} else {
		const char *k;
		json_t *v;
		json_object_foreach(root, k, v)
		{
			ret = vmconf_key(&x, k, v);
			if (ret < 0)
				break;
		}
	}
	if (!ret && c->rootfs && c->image)
		ret = vmconf_fail(&x, KVMINI_EXIT_INPUT,
				  "\"rootfs\" and \"image\": give one of them");
	if (!ret && c->nr_disks + c->nr_nets > KVMINI_MAX_VIRTIO)
		ret = vmconf_fail(&x, KVMINI_EXIT_INPUT,
				  "\"disks\" and \"nets\": at most %d devices together",
				  KVMINI_MAX_VIRTIO);
	json_decref(root);
	return ret;
}

int vmconf_load(struct cli *c, const char *path, struct kvmini_error *e)
{
	struct vmconf_ctx x = {.c = c, .label = path, .e = e};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		return vmconf_fail(&x, KVMINI_EXIT_INPUT, "cannot open the config file: %s",
				   strerror(err));
	}
	if (!S_ISREG(st.st_mode) || st.st_size > VMCONF_MAX_SIZE) {
		close(fd);
		return vmconf_fail(&x, KVMINI_EXIT_INPUT, "not a regular file of at most %d bytes",
				   VMCONF_MAX_SIZE);
	}
	char *buf = malloc((size_t)st.st_size + 1);
	ssize_t n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	int err = errno;
	close(fd);
	if (n < 0) {
		free(buf);
		return vmconf_fail(&x, KVMINI_EXIT_INPUT, "cannot read the config file: %s",
				   strerror(err));
	}
	/* Relative paths in the file are relative to the file's own folder. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	const char *base = ".";
	if (slash == dir)
		base = "/";
	else if (slash) {
		*slash = '\0';
		base = dir;
	}
	int ret = vmconf_parse(c, buf, (size_t)n, path, base, e);
	free(buf);
	return ret;
}

/* Make one path absolute from the current directory. */
static int vmconf_abs1(struct cli *c, const char **p)
{
	if (!*p || (*p)[0] == '/')
		return 0;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return -ENOMEM;
	*p = vmconf_own_path(c, "", 0, *p, cwd);
	return *p ? 0 : -ENOMEM;
}

/* An --image reference "TRANSPORT:PATH..." with PATH made absolute. */
static int vmconf_abs_image(struct cli *c)
{
	const char *colon = c->image ? strchr(c->image, ':') : NULL;
	if (!colon || colon[1] == '/')
		return 0;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return -ENOMEM;
	c->image = vmconf_own_path(c, c->image, (size_t)(colon + 1 - c->image), colon + 1, cwd);
	return c->image ? 0 : -ENOMEM;
}

int vmconf_absolute(struct cli *c)
{
	int ret = vmconf_abs_image(c);
	if (!ret)
		ret = vmconf_abs1(c, &c->kernel);
	if (!ret)
		ret = vmconf_abs1(c, &c->initrd);
	if (!ret)
		ret = vmconf_abs1(c, &c->rootfs);
	if (!ret)
		ret = vmconf_abs1(c, &c->vsock_uds);
	for (unsigned int i = 0; !ret && i < c->nr_disks; i++)
		ret = vmconf_abs1(c, &c->disk[i].path);
	return ret;
}

static json_t *vmconf_nullable(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *vmconf_json(const struct cli *c)
{
	json_t *disks = json_array(), *nets = json_array();
	for (unsigned int i = 0; disks && i < c->nr_disks; i++) {
		const struct cli_disk *d = &c->disk[i];
		json_array_append_new(
			disks, json_pack("{s:s, s:b, s:o, s:s, s:o}", "path", d->path, "readonly",
					 d->readonly, "serial", vmconf_nullable(d->serial), "cache",
					 d->cache_unsafe ? "unsafe" : "writeback", "limit",
					 vmconf_limit_json(&d->limit, "iops")));
	}
	for (unsigned int i = 0; nets && i < c->nr_nets; i++)
		json_array_append_new(nets,
				      json_pack("{s:s, s:o, s:o}", "tap", c->net[i].tap, "mac",
						vmconf_nullable(c->net[i].mac), "limit",
						vmconf_limit_json(&c->net[i].limit, "pps")));
	json_t *vsock = !c->vsock ? json_null()
				  : json_pack("{s:I, s:o}", "cid", (json_int_t)c->vsock_cid, "uds",
					      vmconf_nullable(c->vsock_uds));
	static const char *const seccomp[] = {"off", "log", "kill"};
	char cpu_max[48];
	snprintf(cpu_max, sizeof(cpu_max), "%llu/%llu", (unsigned long long)c->jail_cpu_quota,
		 (unsigned long long)c->jail_cpu_period);
	json_t *jail =
		!c->jail ? json_null()
			 : json_pack("{s:s, s:I, s:I, s:o, s:o, s:o, s:o}", "dir", c->jail, "uid",
				     (json_int_t)c->jail_uid, "gid", (json_int_t)c->jail_gid,
				     "netns", vmconf_nullable(c->jail_netns), "cgroup",
				     vmconf_nullable(c->jail_cgroup), "cpu_max",
				     c->jail_cpu_quota ? json_string(cpu_max) : json_null(),
				     "memory_max",
				     c->jail_memory_max
					     ? json_integer((json_int_t)c->jail_memory_max)
					     : json_null());
	return json_pack(
		"{s:s, s:s?, s:o, s:o, s:b, s:i, s:I, s:o, s:o, s:o, s:o, s:o, s:s, s:s, "
		"s:o}",
		"name", c->name, "kernel", c->kernel, "initrd", vmconf_nullable(c->initrd),
		"cmdline", vmconf_nullable(c->cmdline), "default_cmdline", !c->no_default_cmdline,
		"cpus", (int)c->cpus, "memory_mib", (json_int_t)(c->mem_size >> 20), "disks", disks,
		"nets", nets, "vsock", vsock, "rootfs", vmconf_nullable(c->rootfs), "image",
		vmconf_nullable(c->image), "log_level", cli_level_name(c->log_level), "seccomp",
		seccomp[c->seccomp >= 0 && c->seccomp <= 2 ? c->seccomp : 2], "jail", jail);
}

char *vmconf_dump(const struct cli *c, int pretty)
{
	json_t *root = vmconf_json(c);
	if (!root)
		return NULL;
	char *text = json_dumps(root, pretty ? JSON_INDENT(2) : JSON_COMPACT);
	json_decref(root);
	if (text && pretty) {
		size_t n = strlen(text);
		char *t = realloc(text, n + 2);
		if (!t) {
			free(text);
			return NULL;
		}
		t[n] = '\n';
		t[n + 1] = '\0';
		text = t;
	}
	return text;
}
