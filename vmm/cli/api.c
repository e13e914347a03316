/* api: the control socket's REST requests, handled without any HTTP (apisrv carries them). */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/api.h"
#include "kvmini/vmconf.h"

enum api_op {
	API_VERSION_GET,
	API_VM_GET,
	API_CONFIG_GET,
	API_STATS_GET,
	API_PAUSE,
	API_RESUME,
	API_SHUTDOWN,
	API_DESTROY,
	API_LIMIT,
};

/* The routes; docs/api.yaml describes exactly these (scripts/check-api-doc.sh). */
static const struct api_route api_route_table[] = {
	[API_VERSION_GET] = {"GET", "/version"},  [API_VM_GET] = {"GET", "/vm"},
	[API_CONFIG_GET] = {"GET", "/vm/config"}, [API_STATS_GET] = {"GET", "/vm/stats"},
	[API_PAUSE] = {"PUT", "/vm/pause"},	  [API_RESUME] = {"PUT", "/vm/resume"},
	[API_SHUTDOWN] = {"PUT", "/vm/shutdown"}, [API_DESTROY] = {"PUT", "/vm/destroy"},
	[API_LIMIT] = {"PUT", "/vm/limit"},
};
#define API_NR_ROUTES (sizeof(api_route_table) / sizeof(api_route_table[0]))

const struct api_route *api_routes(size_t *n)
{
	*n = API_NR_ROUTES;
	return api_route_table;
}

/* Answer with `body` (taken; NULL for none: 204). A body that could not be built (out of
 * memory) is a 500 with a fixed error body. */
static void api_reply(struct api_response *r, int status, json_t *body)
{
	r->status = status;
	r->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (status != 204 && !r->body) {
		r->status = 500;
		r->body = strdup("{\"error\":\"the answer could not be encoded\"}");
	}
}

static void api_error(struct api_response *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void api_error(struct api_response *r, int status, const char *fmt, ...)
{
	char msg[KVMINI_ERROR_MAX + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The message may quote the client's URL or keys: printable ASCII only, so it is valid
	 * UTF-8 (JSON strings must be) and one line. */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	api_reply(r, status, json_pack("{s:s}", "error", msg));
}

/* A library failure: the wrong state is 409, anything else 500. */
static void api_failed(struct api_response *r, int ret, const struct kvmini_error *e)
{
	int wrong_state = ret == -EINVAL || ret == -EBUSY || e->status == KVMINI_EXIT_USAGE;
	api_error(r, wrong_state ? 409 : 500, "%s", e->msg[0] ? e->msg : strerror(-ret));
}

/* The PUT body: empty, or an object whose keys are all in `keys` (NULL-terminated). NULL
 * (with `r` filled) on a bad body; an empty object when there is none. */
static json_t *api_body(const char *body, size_t len, const char *const *keys,
			struct api_response *r)
{
	size_t i = 0;
	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
		i++;
	if (i == len)
		return json_object();
	json_error_t je;
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		api_error(r, 400, "the body is not valid JSON (line %d column %d: %s)", je.line,
			  je.column, je.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		api_error(r, 400, "the body must be a JSON object");
		return NULL;
	}
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		bool known = false;
		for (size_t j = 0; keys && keys[j]; j++)
			known |= !strcmp(k, keys[j]);
		if (!known) {
			api_error(r, 400, "unknown key \"%.100s\" in the body", k);
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static json_t *api_config(const struct api *a)
{
	json_t *o = a->config ? vmconf_json(a->config) : NULL;
	return o ? o : json_object();
}

/* GET /vm: cheap (no statistics), it is what `kvmini list` asks every VM. */
static void api_vm(const struct api *a, struct api_response *r)
{
	const char *state = kvmini_state_name(a->ops->state(a->opaque));
	uint64_t now_ns = cli_now_ns();
	double up = a->start_ns && now_ns > a->start_ns ? (double)(now_ns - a->start_ns) / 1e9 : 0;
	const struct cli *c = a->config;
	api_reply(r, 200,
		  json_pack("{s:s, s:s, s:i, s:i, s:I, s:f, s:o}", "name", c ? c->name : "",
			    "state", state ? state : "unknown", "pid", a->pid, "cpus",
			    c ? (int)c->cpus : 0, "memory_mib",
			    (json_int_t)(c ? c->mem_size >> 20 : 0), "uptime_s", up, "config",
			    api_config(a)));
}

#define U64(v) ((json_int_t)((v) > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(v)))

/* A network card's dropped frames, each counted in exactly one of these ("dropped" in stats). */
static const struct {
	const char *name;
	size_t off;
} api_net_drops[] = {
	{"rx_oversize", offsetof(struct kvmini_net_stats, rx_drop_oversize)},
	{"rx_short", offsetof(struct kvmini_net_stats, rx_drop_short)},
	{"rx_offload", offsetof(struct kvmini_net_stats, rx_drop_offload)},
	{"rx_no_room", offsetof(struct kvmini_net_stats, rx_drop_no_room)},
	{"rx_reset", offsetof(struct kvmini_net_stats, rx_drop_reset)},
	{"tx_short", offsetof(struct kvmini_net_stats, tx_drop_short)},
	{"tx_bad_chain", offsetof(struct kvmini_net_stats, tx_drop_bad_chain)},
	{"tx_oversize", offsetof(struct kvmini_net_stats, tx_drop_oversize)},
	{"tx_offload", offsetof(struct kvmini_net_stats, tx_drop_offload)},
};

static uint64_t api_net_drop(const struct kvmini_net_stats *n, size_t k)
{
	uint64_t v;
	memcpy(&v, (const char *)n + api_net_drops[k].off, sizeof(v));
	return v;
}

uint64_t api_net_drops_text(const struct kvmini_net_stats *n, char *buf, size_t len)
{
	uint64_t total = 0;
	size_t used = 0;
	if (len)
		buf[0] = '\0';
	for (size_t k = 0; k < sizeof(api_net_drops) / sizeof(api_net_drops[0]); k++) {
		uint64_t v = api_net_drop(n, k);
		if (!v)
			continue;
		total += v;
		if (used < len) {
			int w = snprintf(buf + used, len - used, "%s%s %llu", used ? ", " : "",
					 api_net_drops[k].name, (unsigned long long)v);
			used += w > 0 ? (size_t)w : 0;
		}
	}
	return total;
}

/* A limit as the stats show it (and PUT /vm/limit takes it): null when there is none. */
static json_t *api_limit_json(const struct kvmini_rate_limit *l, const char *ops)
{
	if (!l->bytes_per_s && !l->bytes_burst && !l->ops_per_s && !l->ops_burst)
		return json_null();
	char burst[32];
	snprintf(burst, sizeof(burst), "%s_burst", ops);
	return json_pack("{s:I, s:I, s:I, s:I}", "bw", U64(l->bytes_per_s), ops, U64(l->ops_per_s),
			 "bw_burst", U64(l->bytes_burst), burst, U64(l->ops_burst));
}

static json_t *api_exits(const struct kvmini_stats *s)
{
	json_t *per = json_array(), *total = json_object();
	uint64_t sum[KVMINI_EXIT_KINDS] = {0};
	for (unsigned int i = 0; i < s->cpus && i < KVMINI_MAX_CPUS; i++) {
		json_t *one = json_object();
		for (int k = 0; k < KVMINI_EXIT_KINDS; k++) {
			json_object_set_new(one, kvmini_exit_kind_name(k),
					    json_integer(U64(s->exits[i][k])));
			sum[k] += s->exits[i][k];
		}
		json_array_append_new(per, one);
	}
	for (int k = 0; k < KVMINI_EXIT_KINDS; k++)
		json_object_set_new(total, kvmini_exit_kind_name(k), json_integer(U64(sum[k])));
	return json_pack("{s:o, s:o}", "total", total, "per_vcpu", per);
}

static void api_stats(const struct api *a, struct api_response *r)
{
	struct kvmini_stats s;
	struct kvmini_error e = {0};
	int ret = a->ops->stats(a->opaque, &s, &e);
	if (ret < 0) {
		api_failed(r, ret, &e);
		return;
	}
	json_t *disks = json_array(), *nets = json_array();
	for (unsigned int i = 0; i < s.nr_disks; i++) {
		const struct kvmini_disk_stats *d = &s.disk[i];
		json_array_append_new(
			disks,
			json_pack(
				"{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
				"s:o}",
				"name", d->name, "reads", U64(d->reads), "writes", U64(d->writes),
				"flushes", U64(d->flushes), "discards", U64(d->discards),
				"write_zeroes", U64(d->write_zeroes), "read_bytes",
				U64(d->read_bytes), "write_bytes", U64(d->write_bytes), "errors",
				U64(d->errors), "inflight_peak", U64(d->inflight_peak),
				"needs_reset", U64(d->needs_reset), "get_ids", U64(d->get_ids),
				"throttled", U64(d->throttled), "limit",
				api_limit_json(&d->limit, "iops")));
	}
	for (unsigned int i = 0; i < s.nr_nets; i++) {
		const struct kvmini_net_stats *n = &s.net[i];
		json_t *drops = json_object();
		for (size_t k = 0; k < sizeof(api_net_drops) / sizeof(api_net_drops[0]); k++)
			json_object_set_new(drops, api_net_drops[k].name,
					    json_integer(U64(api_net_drop(n, k))));
		json_array_append_new(
			nets,
			json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I, "
				  "s:o}",
				  "name", n->name, "rx_frames", U64(n->rx_frames), "rx_bytes",
				  U64(n->rx_bytes), "tx_frames", U64(n->tx_frames), "tx_bytes",
				  U64(n->tx_bytes), "rx_errors", U64(n->rx_errors), "tx_errors",
				  U64(n->tx_errors), "tx_blocked", U64(n->tx_blocked),
				  "needs_reset", U64(n->needs_reset), "dropped", drops,
				  "rx_throttled", U64(n->rx_throttled), "tx_throttled",
				  U64(n->tx_throttled), "limit", api_limit_json(&n->limit, "pps")));
	}
	const struct kvmini_vsock_stats *vs = &s.vsock;
	json_t *vsock =
		!s.has_vsock
			? json_null()
			: json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
				    "s:I, s:I, s:I, s:I}",
				    "cid", U64(vs->cid), "host_connects", U64(vs->host_connects),
				    "guest_connects", U64(vs->guest_connects), "refused",
				    U64(vs->refused), "closed", U64(vs->closed), "rx_packets",
				    U64(vs->rx_packets), "rx_bytes", U64(vs->rx_bytes),
				    "tx_packets", U64(vs->tx_packets), "tx_bytes",
				    U64(vs->tx_bytes), "bad_packets", U64(vs->bad_packets),
				    "bad_cid", U64(vs->bad_cid), "bad_handshake",
				    U64(vs->bad_handshake), "conn_limit", U64(vs->conn_limit),
				    "timeouts", U64(vs->timeouts), "needs_reset",
				    U64(vs->needs_reset), "ready_knocks", U64(vs->ready_knocks));
	uint64_t overhead =
		s.process_resident > s.guest_resident ? s.process_resident - s.guest_resident : 0;
	const char *state = kvmini_state_name(s.state);
	json_t *boot =
		json_pack("{s:f, s:f, s:f}", "first_run_ms", (double)s.boot_first_run_ns / 1e6,
			  "init_ms", (double)s.boot_init_ns / 1e6, "init_since_run_ms",
			  (double)s.boot_init_since_run_ns / 1e6);
	api_reply(r, 200,
		  json_pack("{s:s, s:f, s:i, s:I, s:{s:I, s:I, s:I}, s:o, s:o, s:o, s:o, s:I, s:I, "
			    "s:o}",
			    "state", state ? state : "unknown", "uptime_s",
			    (double)s.uptime_ns / 1e9, "cpus", (int)s.cpus, "memory_bytes",
			    U64(s.memory), "resident", "guest_bytes", U64(s.guest_resident),
			    "process_bytes", U64(s.process_resident), "vmm_overhead_bytes",
			    U64(overhead), "exits", api_exits(&s), "disks", disks, "nets", nets,
			    "vsock", vsock, "console_dropped_bytes", U64(s.console_dropped),
			    "log_dropped_lines", U64(s.log_dropped), "boot", boot));
}

static void api_shutdown(const struct api *a, const char *body, size_t len, struct api_response *r)
{
	static const char *const keys[] = {"timeout_s", NULL};
	json_t *o = api_body(body, len, keys, r);
	if (!o)
		return;
	unsigned int timeout = 30;
	json_t *t = json_object_get(o, "timeout_s");
	if (t &&
	    (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > 86400)) {
		json_decref(o);
		api_error(r, 400, "\"timeout_s\": expected an integer 0..86400 (seconds)");
		return;
	}
	if (t)
		timeout = (unsigned int)json_integer_value(t);
	json_decref(o);
	struct kvmini_error e = {0};
	int ret = a->ops->shutdown(a->opaque, timeout, &e);
	if (ret < 0)
		api_failed(r, ret, &e);
	else
		api_reply(r, 202,
			  json_pack("{s:s, s:i}", "status", "shutting down", "timeout_s",
				    (int)timeout));
}

/*
 * PUT /vm/limit: {"disk": N} or {"net": N} and the new limit, "bw", "iops" (disk) or "pps"
 * (net) and their "_burst"s, each an integer >= 0 or a string like "50M"; a key left out is
 * 0 (no limit), so the body is the whole new limit.
 */
static void api_limit(const struct api *a, const char *body, size_t len, struct api_response *r)
{
	static const char *const keys[] = {"disk",	 "net", "bw",	     "bw_burst", "iops",
					   "iops_burst", "pps", "pps_burst", NULL};
	json_t *o = api_body(body, len, keys, r);
	if (!o)
		return;
	json_t *disk = json_object_get(o, "disk"), *net = json_object_get(o, "net");
	json_t *which = disk ? disk : net;
	if (!disk == !net || !json_is_integer(which) || json_integer_value(which) < 0 ||
	    json_integer_value(which) >= KVMINI_MAX_VIRTIO) {
		json_decref(o);
		api_error(r, 400, "give one of \"disk\" or \"net\": the device's index, 0..%d",
			  KVMINI_MAX_VIRTIO - 1);
		return;
	}
	const char *ops = disk ? "iops" : "pps";
	struct kvmini_rate_limit l = {0};
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		if (!strcmp(k, "disk") || !strcmp(k, "net"))
			continue;
		char num[32];
		const char *text = json_string_value(v);
		if (json_is_integer(v) && json_integer_value(v) >= 0) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
			text = num;
		}
		int got = text ? cli_limit_key(&l, ops, k, text) : -EINVAL;
		if (got == 0) {
			api_error(r, 400,
				  "\"%s\" is not a limit of a %s (bw, %s, bw_burst, %s_burst)", k,
				  disk ? "disk" : "network card", ops, ops);
			json_decref(o);
			return;
		}
		if (got < 0) {
			api_error(
				r, 400,
				"\"%s\": expected a non-negative integer or a string like \"50M\"",
				k);
			json_decref(o);
			return;
		}
	}
	unsigned int index = (unsigned int)json_integer_value(which);
	json_decref(o);
	struct kvmini_error e = {0};
	int ret = a->ops->set_limit(a->opaque, !disk, index, &l, &e);
	if (ret == -ENOENT)
		api_error(r, 400, "%s", e.msg[0] ? e.msg : "no such device");
	else if (ret < 0)
		api_failed(r, ret, &e);
	else
		api_reply(r, 200,
			  json_pack("{s:s, s:i, s:o}", "device", disk ? "disk" : "net", "index",
				    (int)index, "limit", api_limit_json(&l, ops)));
}

/* PUT /vm/pause, /vm/resume, /vm/destroy: no body keys. */
static void api_action(const struct api *a, enum api_op op, const char *body, size_t len,
		       struct api_response *r)
{
	json_t *o = api_body(body, len, NULL, r);
	if (!o)
		return;
	json_decref(o);
	struct kvmini_error e = {0};
	int ret = op == API_PAUSE    ? a->ops->pause(a->opaque, &e)
		  : op == API_RESUME ? a->ops->resume(a->opaque, &e)
				     : a->ops->destroy(a->opaque, &e);
	if (ret < 0)
		api_failed(r, ret, &e);
	else if (op == API_DESTROY)
		api_reply(r, 202, json_pack("{s:s}", "status", "destroying"));
	else
		api_reply(r, 204, NULL);
}

void api_handle(const struct api *a, const char *method, const char *url, const char *body,
		size_t len, struct api_response *r)
{
	memset(r, 0, sizeof(*r));
	if (!method || !url) {
		api_error(r, 400, "no method or URL");
		return;
	}
	/* The path without a query; a trailing slash is not a different resource. */
	char path[128];
	size_t n = strcspn(url, "?#");
	if (n >= sizeof(path)) {
		api_error(r, 404, "no such resource (see docs/api.yaml)");
		return;
	}
	memcpy(path, url, n);
	path[n] = '\0';
	if (n > 1 && path[n - 1] == '/')
		path[n - 1] = '\0';
	int found = -1;
	const char *allow = NULL; /* every path has one method */
	for (size_t i = 0; i < API_NR_ROUTES; i++) {
		if (strcmp(path, api_route_table[i].path) != 0)
			continue;
		allow = api_route_table[i].method;
		if (!strcmp(method, allow))
			found = (int)i;
	}
	if (!allow) {
		api_error(r, 404, "no such resource '%.100s' (see docs/api.yaml)", path);
		return;
	}
	if (found < 0) {
		api_error(r, 405, "%.20s is not allowed on %s (use %s)", method, path, allow);
		r->allow = allow;
		return;
	}
	if (len > API_BODY_MAX) {
		api_error(r, 413, "the body is larger than %d bytes", API_BODY_MAX);
		return;
	}
	if (!strcmp(method, "GET") && len) {
		api_error(r, 400, "GET takes no body");
		return;
	}
	switch ((enum api_op)found) {
	case API_VERSION_GET:
		api_reply(r, 200,
			  json_pack("{s:s, s:i}", "version", kvmini_version(), "api_version",
				    API_VERSION));
		return;
	case API_VM_GET:
		api_vm(a, r);
		return;
	case API_CONFIG_GET:
		api_reply(r, 200, api_config(a));
		return;
	case API_STATS_GET:
		api_stats(a, r);
		return;
	case API_SHUTDOWN:
		api_shutdown(a, body, len, r);
		return;
	case API_LIMIT:
		api_limit(a, body, len, r);
		return;
	case API_PAUSE:
	case API_RESUME:
	case API_DESTROY:
		api_action(a, (enum api_op)found, body, len, r);
		return;
	}
	api_error(r, 500, "route without a handler");
}
