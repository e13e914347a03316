/* test_api: the control socket's request handler over a fake VM: every route, every status. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kvmini/api.h"

/* A fake VM: a state, and what each operation was asked. */
struct fake {
	int state;
	int fail_errno; /* operations fail with -fail_errno and a host error */
	int pauses, resumes, shutdowns, destroys, limits;
	bool limit_net;
	struct kvmini_rate_limit limit;
	unsigned int timeout;
	bool no_vsock; /* stats: the VM has no vsock device */
};

static int fake_fail(struct fake *f, struct kvmini_error *e)
{
	snprintf(e->msg, sizeof(e->msg), "host trouble");
	e->status = KVMINI_EXIT_HOST;
	return -f->fail_errno;
}

static int fake_wrong(struct fake *f, struct kvmini_error *e)
{
	snprintf(e->msg, sizeof(e->msg), "the VM is %s", kvmini_state_name(f->state));
	e->status = KVMINI_EXIT_USAGE;
	return -EINVAL;
}

static int fake_state(void *o)
{
	return ((struct fake *)o)->state;
}

static int fake_pause(void *o, struct kvmini_error *e)
{
	struct fake *f = o;
	if (f->fail_errno)
		return fake_fail(f, e);
	if (f->state != KVMINI_STATE_RUNNING)
		return fake_wrong(f, e);
	f->pauses++;
	f->state = KVMINI_STATE_PAUSED;
	return 0;
}

static int fake_resume(void *o, struct kvmini_error *e)
{
	struct fake *f = o;
	if (f->state != KVMINI_STATE_PAUSED)
		return fake_wrong(f, e);
	f->resumes++;
	f->state = KVMINI_STATE_RUNNING;
	return 0;
}

static int fake_shutdown(void *o, unsigned int timeout, struct kvmini_error *e)
{
	struct fake *f = o;
	if (f->state != KVMINI_STATE_RUNNING)
		return fake_wrong(f, e);
	f->shutdowns++;
	f->timeout = timeout;
	return 0;
}

static int fake_destroy(void *o, struct kvmini_error *e)
{
	struct fake *f = o;
	if (f->state == KVMINI_STATE_STOPPED)
		return fake_wrong(f, e);
	f->destroys++;
	f->state = KVMINI_STATE_STOPPED;
	return 0;
}

static int fake_stats(void *o, struct kvmini_stats *s, struct kvmini_error *e)
{
	struct fake *f = o;
	if (f->fail_errno)
		return fake_fail(f, e);
	memset(s, 0, sizeof(*s));
	s->state = f->state;
	s->cpus = 2;
	s->memory = 256ULL << 20;
	s->uptime_ns = 1500000000ULL;
	s->guest_resident = 10 << 20;
	s->process_resident = 12 << 20;
	s->exits[0][KVMINI_EXIT_KIND_IO] = 5;
	s->exits[1][KVMINI_EXIT_KIND_IO] = 7;
	s->exits[1][KVMINI_EXIT_KIND_MMIO] = 3;
	s->nr_disks = 1;
	snprintf(s->disk[0].name, sizeof(s->disk[0].name), "vda");
	s->disk[0].reads = 11;
	s->disk[0].read_bytes = 4096;
	s->nr_nets = 1;
	snprintf(s->net[0].name, sizeof(s->net[0].name), "eth0");
	s->net[0].rx_drop_no_room = 2;
	s->net[0].tx_drop_offload = 4;
	s->console_dropped = 9;
	s->has_vsock = !f->no_vsock;
	s->vsock.cid = 77;
	s->vsock.bad_packets = 5;
	s->boot_init_ns = 250000000ULL;
	return 0;
}

static int fake_set_limit(void *o, bool net, unsigned int index, const struct kvmini_rate_limit *l,
			  struct kvmini_error *e)
{
	struct fake *f = o;
	if (index > 0) {
		snprintf(e->msg, sizeof(e->msg), "the VM has no %s %u",
			 net ? "network card" : "disk", index);
		e->status = KVMINI_EXIT_USAGE;
		return -ENOENT;
	}
	f->limits++;
	f->limit_net = net;
	f->limit = *l;
	return 0;
}

static const struct api_vm_ops fake_ops = {
	.state = fake_state,
	.pause = fake_pause,
	.resume = fake_resume,
	.shutdown = fake_shutdown,
	.destroy = fake_destroy,
	.stats = fake_stats,
	.set_limit = fake_set_limit,
};

static struct fake f;
static struct cli conf;
static struct api a;

static int setup(void **state)
{
	(void)state;
	memset(&f, 0, sizeof(f));
	f.state = KVMINI_STATE_RUNNING;
	cli_defaults(&conf);
	conf.name = "web";
	conf.kernel = "/k";
	conf.cpus = 2;
	a = (struct api){.ops = &fake_ops, .opaque = &f, .config = &conf, .pid = 42};
	return 0;
}

/* One request; returns the parsed body (or NULL) and checks the status. */
static json_t *req(const char *method, const char *url, const char *body, int status)
{
	struct api_response r;
	api_handle(&a, method, url, body ? body : "", body ? strlen(body) : 0, &r);
	if (r.status != status)
		fail_msg("%s %s: status %d, expected %d (%s)", method, url, r.status, status,
			 r.body ? r.body : "no body");
	json_t *o = r.body ? json_loads(r.body, 0, NULL) : NULL;
	if (r.body)
		assert_non_null(o); /* every body is JSON */
	if (status >= 400) {
		assert_non_null(o);
		assert_true(json_is_string(json_object_get(o, "error")));
		assert_null(strchr(json_string_value(json_object_get(o, "error")), '\n'));
	}
	if (status == 405)
		assert_non_null(r.allow);
	free(r.body);
	return o;
}

static void test_version(void **state)
{
	(void)state;
	json_t *o = req("GET", "/version", NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "version")), kvmini_version());
	assert_int_equal(json_integer_value(json_object_get(o, "api_version")), API_VERSION);
	json_decref(o);
}

static void test_vm_and_config(void **state)
{
	(void)state;
	json_t *o = req("GET", "/vm", NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "name")), "web");
	assert_string_equal(json_string_value(json_object_get(o, "state")), "running");
	assert_int_equal(json_integer_value(json_object_get(o, "pid")), 42);
	assert_int_equal(json_integer_value(json_object_get(o, "cpus")), 2);
	assert_int_equal(json_integer_value(json_object_get(o, "memory_mib")), 256);
	json_t *cfg = json_object_get(o, "config");
	assert_string_equal(json_string_value(json_object_get(cfg, "kernel")), "/k");
	json_decref(o);
	o = req("GET", "/vm/config", NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "name")), "web");
	assert_int_equal(json_integer_value(json_object_get(o, "cpus")), 2);
	json_decref(o);
	/* A query string and a trailing slash name the same resource. */
	json_decref(req("GET", "/vm/?x=1", NULL, 200));
}

static void test_stats(void **state)
{
	(void)state;
	json_t *o = req("GET", "/vm/stats", NULL, 200);
	json_t *ex = json_object_get(o, "exits");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ex, "total"), "io")),
			 12);
	json_t *per = json_object_get(ex, "per_vcpu");
	assert_int_equal(json_array_size(per), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(per, 1), "mmio")), 3);
	json_t *d = json_array_get(json_object_get(o, "disks"), 0);
	assert_string_equal(json_string_value(json_object_get(d, "name")), "vda");
	assert_int_equal(json_integer_value(json_object_get(d, "reads")), 11);
	assert_int_equal(json_integer_value(json_object_get(d, "read_bytes")), 4096);
	json_t *n = json_array_get(json_object_get(o, "nets"), 0);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(n, "dropped"), "rx_no_room")),
		2);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(n, "dropped"), "tx_offload")),
		4);
	assert_int_equal(json_object_size(json_object_get(n, "dropped")), 9);
	json_t *res = json_object_get(o, "resident");
	assert_int_equal(json_integer_value(json_object_get(res, "vmm_overhead_bytes")), 2 << 20);
	assert_int_equal(json_integer_value(json_object_get(o, "console_dropped_bytes")), 9);
	assert_true(json_real_value(json_object_get(json_object_get(o, "boot"), "init_ms")) ==
		    250.0);
	json_t *vs = json_object_get(o, "vsock");
	assert_int_equal(json_integer_value(json_object_get(vs, "cid")), 77);
	assert_int_equal(json_integer_value(json_object_get(vs, "bad_packets")), 5);
	json_decref(o);
	/* Without a vsock device, "vsock" is null. */
	f.no_vsock = true;
	o = req("GET", "/vm/stats", NULL, 200);
	assert_true(json_is_null(json_object_get(o, "vsock")));
	json_decref(o);
	f.no_vsock = false;
	/* A host failure is 500. */
	f.fail_errno = EIO;
	json_decref(req("GET", "/vm/stats", NULL, 500));
}

/* The exit warning's text: the nonzero drop counters by their stats names, and their sum. */
static void test_net_drops_text(void **state)
{
	(void)state;
	struct kvmini_net_stats n = {.rx_frames = 100, .tx_errors = 7};
	char buf[128];
	assert_int_equal(api_net_drops_text(&n, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	n.tx_drop_offload = 3;
	n.rx_drop_oversize = 1;
	assert_int_equal(api_net_drops_text(&n, buf, sizeof(buf)), 4);
	assert_string_equal(buf, "rx_oversize 1, tx_offload 3");
	/* A short buffer is cut, never overrun; the count stays whole. */
	char small[8];
	assert_int_equal(api_net_drops_text(&n, small, sizeof(small)), 4);
	assert_string_equal(small, "rx_over");
}

static void test_pause_resume_conflicts(void **state)
{
	(void)state;
	assert_null(req("PUT", "/vm/pause", NULL, 204));
	assert_int_equal(f.pauses, 1);
	json_decref(req("PUT", "/vm/pause", NULL, 409)); /* already paused */
	json_decref(req("PUT", "/vm/shutdown", NULL, 409));
	json_t *o = req("GET", "/vm", NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "state")), "paused");
	json_decref(o);
	assert_null(req("PUT", "/vm/resume", "{}", 204));
	json_decref(req("PUT", "/vm/resume", NULL, 409));
	assert_int_equal(f.resumes, 1);
	f.fail_errno = EIO;
	json_decref(req("PUT", "/vm/pause", NULL, 500));
}

static void test_shutdown_and_destroy(void **state)
{
	(void)state;
	json_decref(req("PUT", "/vm/shutdown", NULL, 202));
	assert_int_equal(f.timeout, 30); /* the default */
	json_decref(req("PUT", "/vm/shutdown", " {\"timeout_s\": 5}\n", 202));
	assert_int_equal(f.timeout, 5);
	json_decref(req("PUT", "/vm/shutdown", "{\"timeout_s\": 0}", 202));
	assert_int_equal(f.timeout, 0);
	json_decref(req("PUT", "/vm/shutdown", "{\"timeout_s\": -1}", 400));
	json_decref(req("PUT", "/vm/shutdown", "{\"timeout_s\": 86401}", 400));
	json_decref(req("PUT", "/vm/shutdown", "{\"timeout_s\": \"soon\"}", 400));
	json_decref(req("PUT", "/vm/shutdown", "{\"timeout_s\": 1.5}", 400));
	json_decref(req("PUT", "/vm/shutdown", "{\"force\": true}", 400));
	assert_int_equal(f.shutdowns, 3);
	json_decref(req("PUT", "/vm/destroy", NULL, 202));
	assert_int_equal(f.destroys, 1);
	json_decref(req("PUT", "/vm/destroy", NULL, 409)); /* already stopped */
}

static void test_bad_requests(void **state)
{
	(void)state;
	json_decref(req("GET", "/nope", NULL, 404));
	/* Bytes that are not UTF-8 in the URL or method still get a JSON error body. */
	json_decref(req("GET", "/\xd1\xff\n", NULL, 404));
	json_decref(req("\xff\x01", "/vm", NULL, 405));
	json_decref(req("GET", "/", NULL, 404));
	json_decref(req("GET", "/vm/pause/x", NULL, 404));
	json_decref(req("DELETE", "/vm", NULL, 405));
	json_decref(req("GET", "/vm/pause", NULL, 405));
	json_decref(req("PUT", "/version", NULL, 405));
	json_decref(req("POST", "/vm/destroy", NULL, 405));
	json_decref(req("PUT", "/vm/pause", "{\"oops\":", 400));
	json_decref(req("PUT", "/vm/pause", "[1]", 400));
	json_decref(req("PUT", "/vm/pause", "\"x\"", 400));
	json_decref(req("PUT", "/vm/pause", "{\"a\": 1}", 400)); /* pause takes no keys */
	json_decref(req("PUT", "/vm/pause", "{\"a\": 1, \"a\": 2}", 400));
	json_decref(req("GET", "/vm", "{}", 400)); /* GET takes no body */
	assert_int_equal(f.pauses, 0);
	/* Over the cap: 413 before looking at the body. */
	struct api_response r;
	static char big[API_BODY_MAX + 2];
	memset(big, ' ', sizeof(big));
	api_handle(&a, "PUT", "/vm/pause", big, sizeof(big), &r);
	assert_int_equal(r.status, 413);
	free(r.body);
	api_handle(&a, "PUT", "/vm/pause", big, API_BODY_MAX, &r); /* at the cap: fine */
	assert_int_equal(r.status, 204);
	free(r.body);
	/* A very long URL, no method. */
	static char url[4096];
	memset(url, 'a', sizeof(url) - 1);
	url[0] = '/';
	json_decref(req("GET", url, NULL, 404));
	api_handle(&a, NULL, "/vm", "", 0, &r);
	assert_int_equal(r.status, 400);
	free(r.body);
}

/* PUT /vm/limit: one device, the whole new limit (keys left out are 0), values as numbers or
 * sizes; the wrong keys for the device, bad values and a missing device are 400. */
static void test_limit(void **state)
{
	(void)state;
	json_t *o = req("PUT", "/vm/limit", "{\"disk\": 0, \"bw\": \"50M\", \"iops\": 2000}", 200);
	assert_int_equal(f.limits, 1);
	assert_false(f.limit_net);
	assert_int_equal(f.limit.bytes_per_s, 50ULL << 20);
	assert_int_equal(f.limit.ops_per_s, 2000);
	assert_int_equal(f.limit.bytes_burst, 0);
	assert_string_equal(json_string_value(json_object_get(o, "device")), "disk");
	json_t *l = json_object_get(o, "limit");
	assert_int_equal(json_integer_value(json_object_get(l, "bw")), 50LL << 20);
	assert_int_equal(json_integer_value(json_object_get(l, "iops")), 2000);
	json_decref(o);
	o = req("PUT", "/vm/limit", "{\"net\": 0, \"pps\": 100, \"pps_burst\": 10}", 200);
	assert_true(f.limit_net);
	assert_int_equal(f.limit.ops_per_s, 100);
	assert_int_equal(f.limit.ops_burst, 10);
	json_decref(o);
	/* No limit keys: the limit is lifted; the answer's limit is null. */
	o = req("PUT", "/vm/limit", "{\"disk\": 0}", 200);
	assert_true(json_is_null(json_object_get(o, "limit")));
	assert_int_equal(f.limit.ops_per_s, 0);
	json_decref(o);
	int before = f.limits;
	json_decref(req("PUT", "/vm/limit", "{\"disk\": 1, \"bw\": 5}", 400)); /* no disk 1 */
	json_decref(req("PUT", "/vm/limit", "{\"disk\": 0, \"pps\": 5}", 400));
	json_decref(req("PUT", "/vm/limit", "{\"net\": 0, \"iops\": 5}", 400));
	json_decref(req("PUT", "/vm/limit", "{\"disk\": 0, \"net\": 0}", 400));
	json_decref(req("PUT", "/vm/limit", "{\"bw\": 5}", 400));
	json_decref(req("PUT", "/vm/limit", "", 400));
	json_decref(req("PUT", "/vm/limit", "{\"disk\": -1}", 400));
	json_decref(req("PUT", "/vm/limit", "{\"disk\": \"0\"}", 400));
	json_decref(req("PUT", "/vm/limit", "{\"disk\": 99}", 400));
	json_decref(req("PUT", "/vm/limit", "{\"disk\": 0, \"bw\": -5}", 400));
	json_decref(req("PUT", "/vm/limit", "{\"disk\": 0, \"bw\": \"fast\"}", 400));
	json_decref(req("PUT", "/vm/limit", "{\"disk\": 0, \"bw\": 1.5}", 400));
	json_decref(req("PUT", "/vm/limit", "{\"disk\": 0, \"mbps\": 1}", 400));
	json_decref(req("GET", "/vm/limit", NULL, 405));
	assert_int_equal(f.limits, before);
}

/* The route table is what the handler serves: each route answers something but 404/405. */
static void test_routes_table(void **state)
{
	(void)state;
	size_t n;
	const struct api_route *rt = api_routes(&n);
	assert_int_equal(n, 9);
	for (size_t i = 0; i < n; i++) {
		setup(NULL);
		struct api_response r;
		/* The limit names its device; every other route takes an empty body. */
		const char *body = strcmp(rt[i].path, "/vm/limit") ? "" : "{\"disk\": 0}";
		api_handle(&a, rt[i].method, rt[i].path, body, strlen(body), &r);
		assert_true(r.status != 404 && r.status != 405 && r.status != 400);
		free(r.body);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_version, setup),
		cmocka_unit_test_setup(test_vm_and_config, setup),
		cmocka_unit_test_setup(test_stats, setup),
		cmocka_unit_test(test_net_drops_text),
		cmocka_unit_test_setup(test_pause_resume_conflicts, setup),
		cmocka_unit_test_setup(test_shutdown_and_destroy, setup),
		cmocka_unit_test_setup(test_bad_requests, setup),
		cmocka_unit_test_setup(test_limit, setup),
		cmocka_unit_test_setup(test_routes_table, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
