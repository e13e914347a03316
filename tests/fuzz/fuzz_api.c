/*
 * fuzz_api: the control socket's request handler (api_handle) on any method, URL and body,
 * over a fake VM whose state the requests change. Input: byte 0 picks the method (or, past
 * the known ones, the bytes up to the first NUL are the method), then the URL up to a NUL,
 * then the body. Oracles: the handler always answers one of the documented statuses, every
 * body is a JSON object, every error body has an "error" line, 405 comes with Allow.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/api.h"

struct fake {
	int state;
};

static int f_state(void *o)
{
	return ((struct fake *)o)->state;
}

static int f_move(struct fake *f, int from, int to, struct kvmini_error *e)
{
	if (f->state != from) {
		snprintf(e->msg, sizeof(e->msg), "wrong state");
		e->status = KVMINI_EXIT_USAGE;
		return -22;
	}
	f->state = to;
	return 0;
}

static int f_pause(void *o, struct kvmini_error *e)
{
	return f_move(o, KVMINI_STATE_RUNNING, KVMINI_STATE_PAUSED, e);
}

static int f_resume(void *o, struct kvmini_error *e)
{
	return f_move(o, KVMINI_STATE_PAUSED, KVMINI_STATE_RUNNING, e);
}

static int f_shutdown(void *o, unsigned int t, struct kvmini_error *e)
{
	(void)t;
	return f_move(o, KVMINI_STATE_RUNNING, KVMINI_STATE_RUNNING, e);
}

static int f_destroy(void *o, struct kvmini_error *e)
{
	struct fake *f = o;
	int ret = f->state == KVMINI_STATE_STOPPED ? f_move(f, -1, 0, e) : 0;
	f->state = KVMINI_STATE_RUNNING; /* a fresh VM for the next input */
	return ret;
}

static int f_stats(void *o, struct kvmini_stats *s, struct kvmini_error *e)
{
	(void)e;
	memset(s, 0, sizeof(*s));
	s->state = ((struct fake *)o)->state;
	s->cpus = 3;
	s->nr_disks = 2;
	s->nr_nets = 1;
	s->exits[2][KVMINI_EXIT_KIND_OTHER] = ~0ULL; /* beyond INT64_MAX: clamped */
	return 0;
}

/* A limit for disk 0 or card 0 is taken; any other index has no device. */
static int f_set_limit(void *o, bool net, unsigned int index, const struct kvmini_rate_limit *l,
		       struct kvmini_error *e)
{
	(void)o;
	(void)net;
	(void)l;
	if (index == 0)
		return 0;
	snprintf(e->msg, sizeof(e->msg), "no such device");
	e->status = KVMINI_EXIT_USAGE;
	return -ENOENT;
}

static const struct api_vm_ops ops = {f_state,	 f_pause, f_resume,   f_shutdown,
				      f_destroy, f_stats, f_set_limit};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "PUT", "POST", "DELETE", "HEAD", ""};
	static struct fake f = {KVMINI_STATE_RUNNING};
	static struct cli conf;
	static int init;
	if (!init) {
		cli_defaults(&conf);
		conf.kernel = "/k";
		init = 1;
	}
	if (!size)
		return 0;
	char method[32], url[2048];
	size_t i = 1;
	if (data[0] < 6) {
		snprintf(method, sizeof(method), "%s", methods[data[0]]);
	} else {
		size_t n = 0;
		while (i < size && data[i] && n < sizeof(method) - 1)
			method[n++] = (char)data[i++];
		method[n] = '\0';
		i++;
	}
	size_t n = 0;
	while (i < size && data[i] && n < sizeof(url) - 1)
		url[n++] = (char)data[i++];
	url[n] = '\0';
	i++;
	const char *body = i < size ? (const char *)data + i : "";
	size_t blen = i < size ? size - i : 0;

	struct api a = {.ops = &ops, .opaque = &f, .config = &conf, .pid = 1};
	struct api_response r;
	api_handle(&a, method, url, body, blen, &r);
	switch (r.status) {
	case 200:
	case 202:
	case 204:
	case 400:
	case 404:
	case 405:
	case 409:
	case 413:
	case 500:
		break;
	default:
		abort();
	}
	if ((r.status == 204) != (r.body == NULL))
		abort();
	if (r.body) {
		json_t *o = json_loads(r.body, 0, NULL);
		if (!json_is_object(o))
			abort();
		if (r.status >= 400 && !json_is_string(json_object_get(o, "error")))
			abort();
		json_decref(o);
	}
	if ((r.status == 405) != (r.allow != NULL))
		abort();
	free(r.body);
	return 0;
}
