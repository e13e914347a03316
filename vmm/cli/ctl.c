/* ctl: the management verbs (list, define, start, console, pause, shutdown, stats...): clients
 * of each VM's control socket and of the runtime and definition folders. */
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "kvmini.h"
#include "kvmini/ctl.h"
#include "kvmini/runner.h"
#include "kvmini/vmconf.h"
#include "kvmini/vmdir.h"

#define CTL_HTTP_TIMEOUT_MS 10000
#define CTL_RESP_MAX	    (4 << 20)
#define CTL_ESCAPE	    0x01 /* Ctrl-A */

static int ctl_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl_fail(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("kvmini: error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return status;
}

void ctl_usage(FILE *f)
{
	fputs("       kvmini list [--all] [--json]        VMs: NAME STATE CPUS MEMORY PID UPTIME "
	      "EXIT\n"
	      "       kvmini define FILE.json            store a VM definition (schema: "
	      "README)\n"
	      "       kvmini undefine NAME               remove it (and its last run's "
	      "record)\n"
	      "       kvmini start NAME [--console]      boot a defined VM (detached unless "
	      "--console)\n"
	      "       kvmini console NAME                attach to a detached VM's serial "
	      "console;\n"
	      "                                          Ctrl-A x detaches, the VM keeps "
	      "running\n"
	      "       kvmini pause NAME | resume NAME\n"
	      "       kvmini shutdown NAME [--timeout S] Ctrl-Alt-Del; destroyed after S "
	      "seconds (30)\n"
	      "       kvmini destroy NAME                force it off at once\n"
	      "       kvmini stats NAME [--json]         exits, disks, network, memory, boot "
	      "times\n"
	      "       kvmini dumpconfig NAME             its configuration as JSON (the "
	      "--config schema)\n",
	      f);
}

/* ---- HTTP over the control socket (libcurl, loaded when a verb needs it) ---- */

/*
 * libcurl is opened with dlopen() by the verbs, never linked: the VMM process (the same
 * binary) then does not map libcurl and the TLS libraries behind it, which would add MiBs to
 * every VM's resident memory.
 */
struct ctl {
	void *so;
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*init)(void);
	CURLcode (*setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*perform)(CURL *h);
	CURLcode (*getinfo)(CURL *h, CURLINFO info, ...);
	void (*cleanup)(CURL *h);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
};

static int ctl_open_curl(struct ctl *x)
{
	x->so = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!x->so)
		return ctl_fail(KVMINI_EXIT_RESOURCE,
				"the management verbs need libcurl (apt-get install libcurl4): %s",
				dlerror());
	void **fn[] = {
		(void **)&x->global_init, (void **)&x->global_cleanup, (void **)&x->init,
		(void **)&x->setopt,	  (void **)&x->perform,	       (void **)&x->getinfo,
		(void **)&x->cleanup,	  (void **)&x->slist_append,   (void **)&x->slist_free_all};
	static const char *const names[] = {
		"curl_global_init",  "curl_global_cleanup", "curl_easy_init",
		"curl_easy_setopt",  "curl_easy_perform",   "curl_easy_getinfo",
		"curl_easy_cleanup", "curl_slist_append",   "curl_slist_free_all"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		*fn[i] = dlsym(x->so, names[i]);
		if (!*fn[i]) {
			dlclose(x->so);
			x->so = NULL;
			return ctl_fail(KVMINI_EXIT_RESOURCE, "libcurl has no %s", names[i]);
		}
	}
	if (x->global_init(CURL_GLOBAL_NOTHING) != CURLE_OK) {
		dlclose(x->so);
		x->so = NULL;
		return ctl_fail(KVMINI_EXIT_HOST, "libcurl would not initialise");
	}
	return 0;
}

static void ctl_close_curl(struct ctl *x)
{
	if (x->so) {
		x->global_cleanup();
		dlclose(x->so);
		x->so = NULL;
	}
}

struct ctl_buf {
	char *data;
	size_t len;
};

static size_t ctl_collect(char *p, size_t size, size_t n, void *opaque)
{
	struct ctl_buf *b = opaque;
	size_t add = size * n;
	if (b->len + add > CTL_RESP_MAX)
		return 0;
	char *d = realloc(b->data, b->len + add + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, p, add);
	b->data = d;
	b->len += add;
	d[b->len] = '\0';
	return add;
}

/* One request; the HTTP status (0: no answer) and the body (malloc'd, or NULL). */
static long ctl_http(const struct ctl *x, const char *sock, const char *method, const char *path,
		     const char *body, char **resp)
{
	struct ctl_buf b = {0};
	long status = 0;
	char url[256];
	snprintf(url, sizeof(url), "http://localhost%s", path);
	CURL *h = x->init();
	if (!h)
		return 0;
	struct curl_slist *hdr = NULL;
	x->setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
	x->setopt(h, CURLOPT_URL, url);
	x->setopt(h, CURLOPT_CUSTOMREQUEST, method);
	x->setopt(h, CURLOPT_TIMEOUT_MS, (long)CTL_HTTP_TIMEOUT_MS);
	x->setopt(h, CURLOPT_NOSIGNAL, 1L);
	x->setopt(h, CURLOPT_WRITEFUNCTION, ctl_collect);
	x->setopt(h, CURLOPT_WRITEDATA, &b);
	if (body) {
		hdr = x->slist_append(hdr, "Content-Type: application/json");
		x->setopt(h, CURLOPT_HTTPHEADER, hdr);
		x->setopt(h, CURLOPT_POSTFIELDS, body);
	}
	if (x->perform(h) == CURLE_OK)
		x->getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	x->slist_free_all(hdr);
	x->cleanup(h);
	if (!status) {
		free(b.data);
		b.data = NULL;
	}
	*resp = b.data;
	return status;
}

/* The runtime folder, or an error line. */
static int ctl_runtime(char *rt, size_t n)
{
	struct kvmini_error e = {0};
	if (vmdir_runtime(rt, n, false, &e) < 0)
		return ctl_fail(e.status, "%s", e.msg);
	return 0;
}

/* A running VM's control socket path; else an error line and CLI_EXIT_STATE. */
static int ctl_socket(const char *name, char *sock, size_t n)
{
	char rt[VMDIR_PATH_MAX];
	int ret = ctl_runtime(rt, sizeof(rt));
	if (ret)
		return ret;
	if (!cli_name_ok(name))
		return ctl_fail(KVMINI_EXIT_USAGE, "'%s' is not a VM name", name);
	struct vmdir_info in;
	vmdir_probe(rt, name, &in);
	if (in.state != VMDIR_RUNNING)
		return ctl_fail(CLI_EXIT_STATE,
				"no VM named '%s' is running (see 'kvmini list --all')", name);
	if (vmdir_path(sock, n, rt, name, VMDIR_API_SOCK) < 0)
		return ctl_fail(KVMINI_EXIT_USAGE, "runtime path too long");
	return 0;
}

/* The "error" of an error body, or a fallback. */
static void ctl_api_error(const char *name, long status, const char *body)
{
	json_t *o = body ? json_loads(body, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(o, "error"));
	if (!status)
		fprintf(stderr, "kvmini: error: %s: its control socket does not answer\n", name);
	else
		fprintf(stderr, "kvmini: error: %s: %s\n", name, msg ? msg : "unexpected answer");
	json_decref(o);
}

/* HTTP status -> exit status: 409 is the wrong state (6), anything else a failure (1). */
static int ctl_status_of(long http)
{
	return http == 409		   ? CLI_EXIT_STATE
	       : http >= 400 && http < 500 ? KVMINI_EXIT_USAGE
					   : KVMINI_EXIT_HOST;
}

/* One request to VM `name`; 0 with *out (caller frees) on 2xx, else the exit status. */
static int ctl_call(const struct ctl *x, const char *name, const char *method, const char *path,
		    const char *body, char **out)
{
	char sock[VMDIR_PATH_MAX + 32];
	int ret = ctl_socket(name, sock, sizeof(sock));
	if (ret)
		return ret;
	char *resp = NULL;
	long st = ctl_http(x, sock, method, path, body, &resp);
	if (st < 200 || st >= 300) {
		ctl_api_error(name, st, resp);
		free(resp);
		return ctl_status_of(st);
	}
	if (out)
		*out = resp;
	else
		free(resp);
	return 0;
}

/* Wait up to `ms` for VM `name` to stop; true once it has. */
static bool ctl_wait_gone(const char *name, int ms, struct vmdir_info *in)
{
	char rt[VMDIR_PATH_MAX];
	struct kvmini_error e = {0};
	if (vmdir_runtime(rt, sizeof(rt), false, &e) < 0)
		return false;
	for (int t = 0;; t += 20) {
		vmdir_probe(rt, name, in);
		if (in->state != VMDIR_RUNNING)
			return true;
		if (t >= ms)
			return false;
		usleep(20 * 1000);
	}
}

/* ---- list ---- */

struct ctl_row {
	char name[80];
	const char *state; /* running, paused, shut off */
	int cpus;
	long long mem_mib;
	int pid;
	double uptime;
	int exit_status; /* -1: none */
	char reason[256];
	bool defined;
};

/* cpus and memory from a stored configuration (a definition or the last run's). */
static void ctl_row_config(struct ctl_row *r, const char *path)
{
	json_t *o = json_load_file(path, 0, NULL);
	if (o) {
		r->cpus = (int)json_integer_value(json_object_get(o, "cpus"));
		r->mem_mib = json_integer_value(json_object_get(o, "memory_mib"));
	}
	json_decref(o);
}

static void ctl_row_fill(const struct ctl *x, struct ctl_row *r, const char *rt, const char *cfgdir)
{
	char p[VMDIR_PATH_MAX + 64];
	struct vmdir_info in;
	vmdir_probe(rt, r->name, &in);
	r->exit_status = -1;
	r->state = "shut off";
	snprintf(p, sizeof(p), "%s/%s.json", cfgdir, r->name);
	struct stat st;
	r->defined = stat(p, &st) == 0;
	if (r->defined)
		ctl_row_config(r, p);
	if (in.state == VMDIR_RUNNING) {
		r->state = "running";
		r->pid = (int)in.pid;
		char sock[VMDIR_PATH_MAX + 32], *resp = NULL;
		vmdir_path(sock, sizeof(sock), rt, r->name, VMDIR_API_SOCK);
		if (ctl_http(x, sock, "GET", "/vm", NULL, &resp) == 200) {
			json_t *o = json_loads(resp, 0, NULL);
			const char *s = json_string_value(json_object_get(o, "state"));
			if (s && !strcmp(s, "paused"))
				r->state = "paused";
			else if (s && !strcmp(s, "stopped"))
				r->state = "shutting down";
			r->cpus = (int)json_integer_value(json_object_get(o, "cpus"));
			r->mem_mib = json_integer_value(json_object_get(o, "memory_mib"));
			r->pid = (int)json_integer_value(json_object_get(o, "pid"));
			r->uptime = json_real_value(json_object_get(o, "uptime_s"));
			json_decref(o);
		} else {
			r->state = "starting";
		}
		free(resp);
		return;
	}
	if (in.state == VMDIR_NONE) {
		if (!r->defined)
			r->state = NULL; /* no VM: not listed */
		return;
	}
	if (!r->defined) {
		vmdir_path(p, sizeof(p), rt, r->name, VMDIR_CONFIG);
		ctl_row_config(r, p);
	}
	if (in.state == VMDIR_EXITED)
		r->exit_status = in.exit_status;
	snprintf(r->reason, sizeof(r->reason), "%s", in.reason);
}

static void ctl_uptime(char *out, size_t n, double s)
{
	long t = (long)s;
	if (t >= 3600)
		snprintf(out, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
	else if (t >= 60)
		snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
	else
		snprintf(out, n, "%.1fs", s);
}

/* Add `name` to the rows unless it is there. */
static void ctl_add_name(struct ctl_row *rows, int *n, int max, const char *name)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp(rows[i].name, name))
			return;
	if (*n < max) {
		memset(&rows[*n], 0, sizeof(rows[*n]));
		snprintf(rows[*n].name, sizeof(rows[*n].name), "%s", name);
		(*n)++;
	}
}

static int ctl_row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ctl_row *)a)->name, ((const struct ctl_row *)b)->name);
}

static int ctl_list(const struct ctl *x, int argc, char **argv)
{
	bool all = false, as_json = false;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--all") || !strcmp(argv[i], "-a"))
			all = true;
		else if (!strcmp(argv[i], "--json"))
			as_json = true;
		else
			return ctl_fail(KVMINI_EXIT_USAGE,
					"list: unknown option '%s' (--all, --json)", argv[i]);
	}
	char rt[VMDIR_PATH_MAX], cfgdir[VMDIR_PATH_MAX];
	struct kvmini_error e = {0};
	if (vmdir_runtime(rt, sizeof(rt), false, &e) < 0 ||
	    vmdir_config(cfgdir, sizeof(cfgdir), false, &e) < 0)
		return ctl_fail(e.status, "%s", e.msg);
	enum { MAX_ROWS = 4096 };
	struct ctl_row *rows = calloc(MAX_ROWS, sizeof(*rows));
	if (!rows)
		return ctl_fail(KVMINI_EXIT_HOST, "out of memory");
	int n = 0;
	char **names = NULL;
	int k = vmdir_names(rt, false, &names);
	for (int i = 0; i < k; i++)
		ctl_add_name(rows, &n, MAX_ROWS, names[i]);
	vmdir_free_names(names, k);
	if (all) {
		k = vmdir_names(cfgdir, true, &names);
		for (int i = 0; i < k; i++)
			ctl_add_name(rows, &n, MAX_ROWS, names[i]);
		vmdir_free_names(names, k);
	}
	qsort(rows, (size_t)n, sizeof(*rows), ctl_row_cmp);
	json_t *arr = as_json ? json_array() : NULL;
	if (!as_json)
		printf("%-20s %-13s %4s %8s %8s %8s %5s\n", "NAME", "STATE", "CPUS", "MEMORY",
		       "PID", "UPTIME", "EXIT");
	for (int i = 0; i < n; i++) {
		struct ctl_row *r = &rows[i];
		ctl_row_fill(x, r, rt, cfgdir);
		if (!r->state)
			continue;
		bool up = strcmp(r->state, "shut off") != 0;
		if (!up && !all)
			continue;
		if (as_json) {
			json_array_append_new(
				arr,
				json_pack("{s:s, s:s, s:i, s:I, s:o, s:o, s:o, s:o, s:b}", "name",
					  r->name, "state", r->state, "cpus", r->cpus, "memory_mib",
					  (json_int_t)r->mem_mib, "pid",
					  up ? json_integer(r->pid) : json_null(), "uptime_s",
					  up ? json_real(r->uptime) : json_null(), "exit_status",
					  r->exit_status >= 0 ? json_integer(r->exit_status)
							      : json_null(),
					  "reason",
					  r->reason[0] ? json_string(r->reason) : json_null(),
					  "defined", r->defined));
			continue;
		}
		char mem[24] = "-", pid[16] = "-", upt[24] = "-", ex[16] = "-";
		if (r->mem_mib)
			snprintf(mem, sizeof(mem), "%lldM", r->mem_mib);
		if (up && r->pid)
			snprintf(pid, sizeof(pid), "%d", r->pid);
		if (up)
			ctl_uptime(upt, sizeof(upt), r->uptime);
		if (r->exit_status >= 0)
			snprintf(ex, sizeof(ex), "%d", r->exit_status);
		char cpus[12] = "-";
		if (r->cpus)
			snprintf(cpus, sizeof(cpus), "%d", r->cpus);
		printf("%-20s %-13s %4s %8s %8s %8s %5s\n", r->name, r->state, cpus, mem, pid, upt,
		       ex);
	}
	if (as_json) {
		char *t = json_dumps(arr, JSON_INDENT(2));
		if (t)
			printf("%s\n", t);
		free(t);
		json_decref(arr);
	}
	free(rows);
	return 0;
}

/* ---- definitions ---- */

static int ctl_def_path(const char *name, char *out, size_t n, bool create)
{
	char dir[VMDIR_PATH_MAX];
	struct kvmini_error e = {0};
	if (vmdir_config(dir, sizeof(dir), create, &e) < 0)
		return ctl_fail(e.status, "%s", e.msg);
	if (snprintf(out, n, "%s/%s.json", dir, name) >= (int)n)
		return ctl_fail(KVMINI_EXIT_USAGE, "definition path too long");
	return 0;
}

static int ctl_define(int argc, char **argv)
{
	if (argc != 3)
		return ctl_fail(KVMINI_EXIT_USAGE, "usage: kvmini define FILE.json");
	struct cli c;
	cli_defaults(&c);
	struct kvmini_error e = {0};
	int status = 0;
	if (vmconf_load(&c, argv[2], &e) < 0) {
		status = ctl_fail(e.status, "%s", e.msg);
	} else if (!c.name_set) {
		status = ctl_fail(KVMINI_EXIT_INPUT,
				  "%s: \"name\" is missing (a definition needs "
				  "one)",
				  argv[2]);
	} else if (!c.kernel && !c.rootfs && !c.image) {
		status =
			ctl_fail(KVMINI_EXIT_INPUT,
				 "%s: \"kernel\" is missing (or \"rootfs\" or \"image\")", argv[2]);
	} else if (vmconf_absolute(&c) < 0) {
		status = ctl_fail(KVMINI_EXIT_HOST, "out of memory");
	} else {
		char path[VMDIR_PATH_MAX + 64];
		char *text = vmconf_dump(&c, 1);
		status = ctl_def_path(c.name, path, sizeof(path), true);
		if (!status && !text)
			status = ctl_fail(KVMINI_EXIT_HOST, "out of memory");
		if (!status) {
			char tmp[VMDIR_PATH_MAX + 80];
			snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
			FILE *f = fopen(tmp, "wex");
			bool ok = f && fputs(text, f) >= 0;
			if (f && fclose(f) != 0)
				ok = false;
			if (!ok || rename(tmp, path) < 0) {
				unlink(tmp);
				status = ctl_fail(KVMINI_EXIT_RESOURCE, "cannot write %s: %s", path,
						  strerror(errno));
			} else {
				printf("defined %s (%s)\n", c.name, path);
			}
		}
		free(text);
	}
	cli_free(&c);
	return status;
}

/* Remove a VM's runtime record (when it is not running). */
static bool ctl_forget_runtime(const char *name)
{
	char rt[VMDIR_PATH_MAX];
	struct kvmini_error e = {0};
	return vmdir_runtime(rt, sizeof(rt), false, &e) == 0 && vmdir_forget(rt, name) == 0;
}

static int ctl_undefine(int argc, char **argv)
{
	if (argc != 3 || !cli_name_ok(argv[2]))
		return ctl_fail(KVMINI_EXIT_USAGE, "usage: kvmini undefine NAME");
	const char *name = argv[2];
	char rt[VMDIR_PATH_MAX], path[VMDIR_PATH_MAX + 64];
	int ret = ctl_runtime(rt, sizeof(rt));
	if (ret)
		return ret;
	struct vmdir_info in;
	vmdir_probe(rt, name, &in);
	if (in.state == VMDIR_RUNNING)
		return ctl_fail(CLI_EXIT_STATE, "%s is running; shut it down or destroy it first",
				name);
	ret = ctl_def_path(name, path, sizeof(path), false);
	if (ret)
		return ret;
	bool had_def = unlink(path) == 0;
	bool had_run = ctl_forget_runtime(name);
	if (!had_def && !had_run)
		return ctl_fail(CLI_EXIT_STATE, "no VM named '%s' (see 'kvmini list --all')", name);
	printf("undefined %s\n", name);
	return 0;
}

static int ctl_start(int argc, char **argv, unsigned long long t0_ns)
{
	bool console = false;
	const char *name = NULL;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--console"))
			console = true;
		else if (!name && argv[i][0] != '-')
			name = argv[i];
		else
			return ctl_fail(KVMINI_EXIT_USAGE, "usage: kvmini start NAME [--console]");
	}
	if (!name || !cli_name_ok(name))
		return ctl_fail(KVMINI_EXIT_USAGE, "usage: kvmini start NAME [--console]");
	char path[VMDIR_PATH_MAX + 64];
	int ret = ctl_def_path(name, path, sizeof(path), false);
	if (ret)
		return ret;
	struct stat st;
	if (stat(path, &st) < 0)
		return ctl_fail(CLI_EXIT_STATE,
				"no VM named '%s' is defined (kvmini define FILE.json)", name);
	static struct cli c; /* large (argument buffers): not on the stack */
	cli_defaults(&c);
	struct kvmini_error e = {0};
	if (vmconf_load(&c, path, &e) < 0) {
		cli_free(&c);
		return ctl_fail(e.status, "%s", e.msg);
	}
	if (strcmp(c.name, name) != 0) {
		cli_free(&c);
		return ctl_fail(KVMINI_EXIT_INPUT, "%s: its \"name\" is not '%s'", path, name);
	}
	c.name_set = true;
	c.detach = !console;
	ret = runner_run(&c, t0_ns);
	cli_free(&c);
	return ret;
}

/* ---- lifecycle verbs ---- */

static int ctl_name_arg(int argc, char **argv, const char *usage)
{
	if (argc != 3 || !cli_name_ok(argv[2]))
		return ctl_fail(KVMINI_EXIT_USAGE, "usage: kvmini %s", usage);
	return 0;
}

static int ctl_simple(const struct ctl *x, int argc, char **argv, const char *path,
		      const char *done)
{
	char usage[64];
	snprintf(usage, sizeof(usage), "%s NAME", argv[1]);
	int ret = ctl_name_arg(argc, argv, usage);
	if (!ret)
		ret = ctl_call(x, argv[2], "PUT", path, NULL, NULL);
	if (!ret)
		printf("%s %s\n", argv[2], done);
	return ret;
}

static int ctl_shutdown(const struct ctl *x, int argc, char **argv)
{
	const char *name = NULL;
	long timeout = 30;
	for (int i = 2; i < argc; i++) {
		char *end;
		if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			timeout = strtol(argv[++i], &end, 10);
			if (*end || end == argv[i] || timeout < 0 || timeout > 86400)
				return ctl_fail(KVMINI_EXIT_USAGE,
						"--timeout '%s' must be 0..86400 seconds", argv[i]);
		} else if (!name && argv[i][0] != '-') {
			name = argv[i];
		} else {
			return ctl_fail(KVMINI_EXIT_USAGE,
					"usage: kvmini shutdown NAME [--timeout SECONDS]");
		}
	}
	if (!name || !cli_name_ok(name))
		return ctl_fail(KVMINI_EXIT_USAGE,
				"usage: kvmini shutdown NAME [--timeout SECONDS]");
	char body[64];
	snprintf(body, sizeof(body), "{\"timeout_s\":%ld}", timeout);
	int ret = ctl_call(x, name, "PUT", "/vm/shutdown", body, NULL);
	if (ret)
		return ret;
	struct vmdir_info in;
	/* timeout 0: never destroyed; wait as long as a day, the VMM's own bound. */
	int wait_ms = (int)((timeout ? timeout : 86400) * 1000 + 10000);
	if (!ctl_wait_gone(name, wait_ms, &in))
		return ctl_fail(KVMINI_EXIT_HOST, "%s: still running after %d s", name,
				wait_ms / 1000);
	if (in.state == VMDIR_EXITED && in.exit_status == RUNNER_KILLED)
		return ctl_fail(KVMINI_EXIT_GUEST,
				"%s did not shut down within %ld s and was destroyed (does its "
				"init handle Ctrl-Alt-Del? see the README)",
				name, timeout);
	if (in.state != VMDIR_EXITED)
		return ctl_fail(KVMINI_EXIT_HOST, "%s: the VMM ended without recording how (%s)",
				name, in.reason[0] ? in.reason : "killed?");
	if (in.exit_status != 0)
		return ctl_fail(in.exit_status, "%s stopped with status %d while shutting down: %s",
				name, in.exit_status, in.reason);
	printf("%s shut down%s%s\n", name, in.reason[0] ? ": " : "", in.reason);
	return 0;
}

static int ctl_destroy(const struct ctl *x, int argc, char **argv)
{
	int ret = ctl_name_arg(argc, argv, "destroy NAME");
	if (!ret)
		ret = ctl_call(x, argv[2], "PUT", "/vm/destroy", NULL, NULL);
	if (ret)
		return ret;
	struct vmdir_info in;
	if (!ctl_wait_gone(argv[2], 10000, &in))
		return ctl_fail(KVMINI_EXIT_HOST, "%s: still running 10 s after destroy", argv[2]);
	printf("%s destroyed\n", argv[2]);
	return 0;
}

/* " key value" for each integer member of object `o`, in its order. */
static void ctl_print_counts(json_t *o)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		if (json_is_integer(v))
			printf(" %s %lld", k, json_integer_value(v));
	}
}

/* A device's rate limit in force, when it has one. */
static void ctl_print_limit(json_t *l)
{
	if (!json_is_object(l))
		return;
	printf(" limit:");
	ctl_print_counts(l);
}

static void ctl_print_stats(const char *name, json_t *o)
{
	printf("%s: %s, up %.1f s, %d vCPU(s), %lld MiB\n", name,
	       json_string_value(json_object_get(o, "state")),
	       json_real_value(json_object_get(o, "uptime_s")),
	       (int)json_integer_value(json_object_get(o, "cpus")),
	       json_integer_value(json_object_get(o, "memory_bytes")) >> 20);
	json_t *res = json_object_get(o, "resident");
	printf("memory: guest resident %.1f MiB, VMM overhead %.1f MiB\n",
	       (double)json_integer_value(json_object_get(res, "guest_bytes")) / 1048576.0,
	       (double)json_integer_value(json_object_get(res, "vmm_overhead_bytes")) / 1048576.0);
	json_t *exits = json_object_get(o, "exits"), *v;
	printf("exits:");
	ctl_print_counts(json_object_get(exits, "total"));
	printf("\n");
	size_t i;
	json_array_foreach(json_object_get(exits, "per_vcpu"), i, v)
	{
		printf("  vcpu%zu:", i);
		ctl_print_counts(v);
		printf("\n");
	}
	json_array_foreach(json_object_get(o, "disks"), i, v)
	{
		printf("disk %s:", json_string_value(json_object_get(v, "name")));
		ctl_print_counts(v);
		ctl_print_limit(json_object_get(v, "limit"));
		printf("\n");
	}
	json_array_foreach(json_object_get(o, "nets"), i, v)
	{
		printf("net %s:", json_string_value(json_object_get(v, "name")));
		ctl_print_counts(v);
		printf(" dropped:");
		ctl_print_counts(json_object_get(v, "dropped"));
		ctl_print_limit(json_object_get(v, "limit"));
		printf("\n");
	}
	json_t *vsock = json_object_get(o, "vsock");
	if (json_is_object(vsock)) {
		printf("vsock:");
		ctl_print_counts(vsock);
		printf("\n");
	}
	json_t *boot = json_object_get(o, "boot");
	printf("console dropped %lld bytes; boot: first KVM_RUN %.1f ms, init %.1f ms\n",
	       json_integer_value(json_object_get(o, "console_dropped_bytes")),
	       json_real_value(json_object_get(boot, "first_run_ms")),
	       json_real_value(json_object_get(boot, "init_ms")));
}

static int ctl_stats(const struct ctl *x, int argc, char **argv)
{
	bool as_json = false;
	const char *name = NULL;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			as_json = true;
		else if (!name && cli_name_ok(argv[i]))
			name = argv[i];
		else
			name = "";
	}
	if (!name || !*name)
		return ctl_fail(KVMINI_EXIT_USAGE, "usage: kvmini stats NAME [--json]");
	char *resp = NULL;
	int ret = ctl_call(x, name, "GET", "/vm/stats", NULL, &resp);
	if (ret)
		return ret;
	json_t *o = json_loads(resp, 0, NULL);
	if (!o) {
		free(resp);
		return ctl_fail(KVMINI_EXIT_HOST, "%s: the stats are not JSON", name);
	}
	if (as_json) {
		char *t = json_dumps(o, JSON_INDENT(2));
		printf("%s\n", t ? t : "{}");
		free(t);
	} else {
		ctl_print_stats(name, o);
	}
	json_decref(o);
	free(resp);
	return 0;
}

static int ctl_dumpconfig(const struct ctl *x, int argc, char **argv)
{
	int ret = ctl_name_arg(argc, argv, "dumpconfig NAME");
	if (ret)
		return ret;
	const char *name = argv[2];
	char rt[VMDIR_PATH_MAX], path[VMDIR_PATH_MAX + 64];
	if ((ret = ctl_runtime(rt, sizeof(rt))))
		return ret;
	struct vmdir_info in;
	vmdir_probe(rt, name, &in);
	json_t *o = NULL;
	if (in.state == VMDIR_RUNNING) {
		char *resp = NULL;
		if ((ret = ctl_call(x, name, "GET", "/vm/config", NULL, &resp)))
			return ret;
		o = json_loads(resp, 0, NULL);
		free(resp);
	} else {
		/* Not running: its definition, else its last run's configuration. */
		if ((ret = ctl_def_path(name, path, sizeof(path), false)))
			return ret;
		o = json_load_file(path, 0, NULL);
		if (!o && vmdir_path(path, sizeof(path), rt, name, VMDIR_CONFIG) == 0)
			o = json_load_file(path, 0, NULL);
	}
	if (!o)
		return ctl_fail(CLI_EXIT_STATE, "no VM named '%s' (see 'kvmini list --all')", name);
	char *t = json_dumps(o, JSON_INDENT(2));
	printf("%s\n", t ? t : "{}");
	free(t);
	json_decref(o);
	return 0;
}

/* ---- console ---- */

static int ctl_console(int argc, char **argv)
{
	int ret = ctl_name_arg(argc, argv, "console NAME");
	if (ret)
		return ret;
	const char *name = argv[2];
	char rt[VMDIR_PATH_MAX], path[VMDIR_PATH_MAX + 32];
	if ((ret = ctl_runtime(rt, sizeof(rt))))
		return ret;
	struct vmdir_info in;
	vmdir_probe(rt, name, &in);
	if (in.state != VMDIR_RUNNING)
		return ctl_fail(CLI_EXIT_STATE, "no VM named '%s' is running", name);
	vmdir_path(path, sizeof(path), rt, name, VMDIR_CONSOLE_SOCK);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return ctl_fail(KVMINI_EXIT_USAGE, "%s: path too long", path);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return ctl_fail(CLI_EXIT_STATE,
				"%s has no console to attach to (it runs in the foreground, where "
				"its console is that terminal)",
				name);
	}
	/* The greeting: OK, or BUSY when another console is attached; 10 s at most. */
	char hello[32] = "";
	size_t got = 0;
	while (got < sizeof(hello) - 1 && !strchr(hello, '\n')) {
		struct pollfd gp = {.fd = fd, .events = POLLIN};
		if (poll(&gp, 1, CTL_HTTP_TIMEOUT_MS) != 1)
			break;
		ssize_t n = read(fd, hello + got, 1);
		if (n <= 0)
			break;
		got += (size_t)n;
		hello[got] = '\0';
	}
	if (strncmp(hello, "KVMINI-CONSOLE OK", 17) != 0) {
		close(fd);
		if (!strncmp(hello, "KVMINI-CONSOLE BUSY", 19))
			return ctl_fail(CLI_EXIT_STATE,
					"%s already has a console attached; detach that one first "
					"(Ctrl-A x)",
					name);
		return ctl_fail(KVMINI_EXIT_HOST, "%s: the console did not answer", name);
	}
	/* A vanished reader of our stdout is an error to see, not a death with the terminal
	 * left raw; so are SIGINT, SIGTERM, SIGHUP, SIGQUIT: they end the client cleanly. */
	signal(SIGPIPE, SIG_IGN);
	int sfd = cli_stop_signalfd();
	struct termios saved, raw;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	if (tty) {
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
		fprintf(stderr, "kvmini: attached to %s (Ctrl-A x detaches)\r\n", name);
	}
	bool escape = false, detached = false, in_eof = false;
	uint8_t buf[4096], out[8192];
	for (;;) {
		struct pollfd p[3] = {{.fd = fd, .events = POLLIN},
				      {.fd = in_eof ? -1 : STDIN_FILENO, .events = POLLIN},
				      {.fd = sfd, .events = POLLIN}};
		if (poll(p, 3, -1) < 0 || p[2].revents) {
			detached = true; /* a signal: leave the VM running */
			break;
		}
		if (p[0].revents) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				break; /* the VM stopped */
			if (write(STDOUT_FILENO, buf, (size_t)n) < 0)
				break;
		}
		if (p[1].revents) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0) {
				in_eof = true; /* keep showing output until the VM stops */
				continue;
			}
			size_t m = 0;
			for (ssize_t i = 0; i < n && !detached; i++) {
				if (escape) {
					escape = false;
					if (buf[i] == 'x' || buf[i] == 'X') {
						detached = true;
						break;
					}
					out[m++] =
						CTL_ESCAPE; /* the VMM's console sees Ctrl-A ... */
					out[m++] = buf[i];
				} else if (buf[i] == CTL_ESCAPE) {
					escape = true;
				} else {
					out[m++] = buf[i];
				}
			}
			if (m && send(fd, out, m, MSG_NOSIGNAL) < 0)
				break;
			if (detached)
				break;
		}
	}
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	if (sfd >= 0)
		close(sfd);
	close(fd);
	if (detached)
		fprintf(stderr, "\r\nkvmini: detached from %s (it keeps running)\n", name);
	else
		fprintf(stderr, "\r\nkvmini: %s stopped\n", name);
	return 0;
}

/* ---- dispatch ---- */

static const char *const ctl_verbs[] = {"list",	   "define", "undefine",   "start",
					"console", "pause",  "resume",	   "shutdown",
					"destroy", "stats",  "dumpconfig", NULL};

bool ctl_is_verb(const char *word)
{
	for (int i = 0; ctl_verbs[i]; i++)
		if (!strcmp(word, ctl_verbs[i]))
			return true;
	return false;
}

int ctl_main(int argc, char **argv, unsigned long long t0_ns)
{
	const char *v = argv[1];
	if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
		ctl_usage(stdout);
		return 0;
	}
	/* The verbs that talk to a control socket load libcurl; the others do not need it. */
	struct ctl x = {0};
	bool http = strcmp(v, "define") && strcmp(v, "undefine") && strcmp(v, "start") &&
		    strcmp(v, "console");
	if (http && ctl_open_curl(&x))
		return KVMINI_EXIT_RESOURCE;
	int ret;
	if (!strcmp(v, "list"))
		ret = ctl_list(&x, argc, argv);
	else if (!strcmp(v, "define"))
		ret = ctl_define(argc, argv);
	else if (!strcmp(v, "undefine"))
		ret = ctl_undefine(argc, argv);
	else if (!strcmp(v, "start"))
		ret = ctl_start(argc, argv, t0_ns);
	else if (!strcmp(v, "console"))
		ret = ctl_console(argc, argv);
	else if (!strcmp(v, "pause"))
		ret = ctl_simple(&x, argc, argv, "/vm/pause", "paused");
	else if (!strcmp(v, "resume"))
		ret = ctl_simple(&x, argc, argv, "/vm/resume", "resumed");
	else if (!strcmp(v, "shutdown"))
		ret = ctl_shutdown(&x, argc, argv);
	else if (!strcmp(v, "destroy"))
		ret = ctl_destroy(&x, argc, argv);
	else if (!strcmp(v, "stats"))
		ret = ctl_stats(&x, argc, argv);
	else
		ret = ctl_dumpconfig(&x, argc, argv);
	ctl_close_curl(&x);
	return ret;
}
