/* test_vmconf: the JSON configuration: every key, every bad type and value, unknown keys,
 * files, relative paths, the dump and the parse of the dump, command-line overrides. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/cli.h"
#include "kvmini/vmconf.h"

static struct cli c; /* large: not on the stack */

/* Parse `json` over defaults; returns the result, the message in `e`. */
static int parse(const char *json, struct kvmini_error *e)
{
	cli_free(&c);
	cli_defaults(&c);
	memset(e, 0, sizeof(*e));
	return vmconf_parse(&c, json, strlen(json), "web.json", "/base", e);
}

static void test_every_key(void **state)
{
	(void)state;
	struct kvmini_error e;
	const char *json =
		"{\"name\": \"web\", \"kernel\": \"bzImage\", \"initrd\": \"/abs/initrd\","
		" \"cmdline\": \"-- echo hi\", \"default_cmdline\": false, \"cpus\": 4,"
		" \"memory_mib\": 512, \"log_level\": \"debug\","
		" \"disks\": [{\"path\": \"a.img\", \"readonly\": true, \"serial\": \"S1\","
		" \"cache\": \"unsafe\"}, {\"path\": \"/b.img\"}],"
		" \"nets\": [{\"tap\": \"tap0\", \"mac\": \"52:54:00:00:00:01\"}, {\"tap\": "
		"\"tap1\"}]}";
	assert_int_equal(parse(json, &e), 0);
	assert_string_equal(c.name, "web");
	assert_true(c.name_set);
	assert_string_equal(c.kernel, "/base/bzImage"); /* relative to the file's folder */
	assert_string_equal(c.initrd, "/abs/initrd");
	assert_string_equal(c.cmdline, "-- echo hi");
	assert_true(c.no_default_cmdline);
	assert_int_equal(c.cpus, 4);
	assert_int_equal(c.mem_size, 512ULL << 20);
	assert_int_equal(c.log_level, KVMINI_LOG_DEBUG);
	assert_int_equal(c.nr_disks, 2);
	assert_string_equal(c.disk[0].path, "/base/a.img");
	assert_true(c.disk[0].readonly);
	assert_string_equal(c.disk[0].serial, "S1");
	assert_true(c.disk[0].cache_unsafe);
	assert_string_equal(c.disk[1].path, "/b.img");
	assert_false(c.disk[1].readonly);
	assert_null(c.disk[1].serial);
	assert_int_equal(c.nr_nets, 2);
	assert_string_equal(c.net[0].tap, "tap0");
	assert_string_equal(c.net[0].mac, "52:54:00:00:00:01");
	assert_null(c.net[1].mac);
	assert_true(c.disks_from_file && c.nets_from_file);
	/* The sandbox keys: vsock, rootfs (relative to the file's folder), image. */
	assert_int_equal(parse("{\"vsock\": {\"cid\": 42, \"uds\": \"v.sock\"},"
			       " \"rootfs\": \"root\"}",
			       &e),
			 0);
	assert_true(c.vsock);
	assert_int_equal(c.vsock_cid, 42);
	assert_string_equal(c.vsock_uds, "/base/v.sock");
	assert_string_equal(c.rootfs, "/base/root");
	assert_int_equal(parse("{\"vsock\": {\"cid\": 0}, \"image\": \"oci:img:v1\"}", &e), 0);
	assert_true(c.vsock);
	assert_int_equal(c.vsock_cid, 0);
	assert_null(c.vsock_uds);
	assert_string_equal(c.image, "oci:/base/img:v1");
	assert_int_equal(parse("{\"image\": \"docker-archive:/a.tar\", \"vsock\": null}", &e), 0);
	assert_string_equal(c.image, "docker-archive:/a.tar");
	assert_false(c.vsock);
	/* Nulls are "not set"; an empty object changes nothing. */
	assert_int_equal(parse("{\"initrd\": null, \"cmdline\": null}", &e), 0);
	assert_null(c.initrd);
	assert_int_equal(parse("{}", &e), 0);
	assert_int_equal(c.cpus, 1);
	assert_string_equal(c.name, "kvmini");
	assert_false(c.name_set);
}

/* Each bad document and the message it must give (a substring). */
static const struct {
	const char *json, *msg;
	int status;
} bad[] = {
	{"{\"cpus\": \"two\"}", "web.json: \"cpus\": expected an integer 1..64, got \"two\"", 3},
	{"{\"cpus\": 0}", "\"cpus\": expected an integer 1..64, got 0", 3},
	{"{\"cpus\": 65}", "\"cpus\": expected an integer 1..64, got 65", 3},
	{"{\"cpus\": 1.5}", "\"cpus\": expected an integer", 3},
	{"{\"memory_mib\": 8}", "\"memory_mib\": expected an integer 16..1048576, got 8", 3},
	{"{\"memory_mib\": 2000000}", "more than kvmini supports", 4},
	{"{\"memory_mib\": \"1G\"}", "\"memory_mib\": expected an integer", 3},
	{"{\"name\": \"\"}", "\"name\": expected a name", 3},
	{"{\"name\": \"a b\"}", "\"name\": expected a name", 3},
	{"{\"name\": \"-x\"}", "\"name\": expected a name", 3},
	{"{\"name\": 7}", "\"name\": expected a name", 3},
	{"{\"kernel\": 1}", "\"kernel\": expected a string, got 1", 3},
	{"{\"kernel\": \"\"}", "\"kernel\": expected a non-empty string", 3},
	{"{\"kernel\": \"a\\u0000b\"}", "not valid JSON", 3}, /* jansson refuses NUL */
	{"{\"initrd\": false}", "\"initrd\": expected a string", 3},
	{"{\"cmdline\": []}", "\"cmdline\": expected a string", 3},
	{"{\"default_cmdline\": 1}", "\"default_cmdline\": expected true or false", 3},
	{"{\"log_level\": \"loud\"}", "\"log_level\": expected \"error\"", 3},
	{"{\"log_level\": 2}", "\"log_level\": expected \"error\"", 3},
	{"{\"seccomp\": \"strict\"}", "\"seccomp\": expected \"off\", \"log\" or \"kill\"", 3},
	{"{\"seccomp\": false}", "\"seccomp\": expected \"off\"", 3},
	{"{\"disks\": {}}", "\"disks\": expected an array of at most 8 objects", 3},
	{"{\"disks\": [1]}", "\"disks[0]\": expected an object", 3},
	{"{\"disks\": [{}]}", "\"disks[0]\": \"path\" is missing", 3},
	{"{\"disks\": [{\"path\": 3}]}", "\"disks[0].path\": expected a string", 3},
	{"{\"disks\": [{\"path\": \"a\", \"readonly\": \"yes\"}]}",
	 "\"disks[0].readonly\": expected true or false", 3},
	{"{\"disks\": [{\"path\": \"a\", \"serial\": \"123456789012345678901\"}]}",
	 "\"disks[0].serial\": expected a string of at most 20 bytes", 3},
	{"{\"disks\": [{\"path\": \"a\", \"cache\": \"none\"}]}",
	 "\"disks[0].cache\": expected \"writeback\" or \"unsafe\"", 3},
	{"{\"disks\": [{\"path\": \"a\", \"size\": 1}]}", "\"disks[0].size\": unknown key", 3},
	{"{\"disks\": [{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},"
	 "{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"}]}",
	 "at most 8 objects", 3},
	{"{\"disks\": [{\"path\": \"a\", \"limit\": 5}]}",
	 "\"disks[0].limit\": expected an object (bw, rates) or null", 3},
	{"{\"disks\": [{\"path\": \"a\", \"limit\": {\"pps\": 5}}]}",
	 "\"disks[0].limit.pps\": unknown key (bw, iops, bw_burst, iops_burst)", 3},
	{"{\"disks\": [{\"path\": \"a\", \"limit\": {\"bw\": -1}}]}",
	 "\"disks[0].limit.bw\": expected a non-negative integer or a string like \"50M\"", 3},
	{"{\"disks\": [{\"path\": \"a\", \"limit\": {\"bw\": \"fast\"}}]}",
	 "\"disks[0].limit.bw\": expected a non-negative integer", 3},
	{"{\"disks\": [{\"path\": \"a\", \"limit\": {\"iops\": 1.5}}]}",
	 "\"disks[0].limit.iops\": expected a non-negative integer", 3},
	{"{\"nets\": [{\"tap\": \"t\", \"limit\": {\"iops\": 5}}]}",
	 "\"nets[0].limit.iops\": unknown key (bw, pps, bw_burst, pps_burst)", 3},
	{"{\"nets\": [{\"tap\": \"t\", \"limit\": {\"pps\": true}}]}",
	 "\"nets[0].limit.pps\": expected a non-negative integer", 3},
	{"{\"nets\": [{}]}", "\"nets[0]\": \"tap\" is missing", 3},
	{"{\"nets\": [{\"tap\": \"\"}]}", "\"nets[0].tap\": expected a non-empty string", 3},
	{"{\"nets\": [{\"tap\": \"t\", \"mac\": 5}]}", "\"nets[0].mac\": expected a string", 3},
	{"{\"nets\": [{\"tap\": \"t\", \"model\": \"e1000\"}]}", "\"nets[0].model\": unknown key",
	 3},
	{"{\"nets\": "
	 "[{\"tap\":\"a\"},{\"tap\":\"a\"},{\"tap\":\"a\"},{\"tap\":\"a\"},{\"tap\":\"a\"}]}",
	 "\"nets\": expected an array of at most 4 objects", 3},
	{"{\"nets\": [{\"tap\":\"a\"},{\"tap\":\"a\"},{\"tap\":\"a\"},{\"tap\":\"a\"}],"
	 " \"disks\": [{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},{\"path\":\"a\"},"
	 "{\"path\":\"a\"}]}",
	 "at most 8 devices together", 3},
	{"{\"vsock\": true}", "\"vsock\": expected null or an object", 3},
	{"{\"vsock\": {\"cid\": 2}}", "\"vsock.cid\": expected an integer 3..4294967294", 3},
	{"{\"vsock\": {\"cid\": 4294967295}}", "\"vsock.cid\": expected an integer", 3},
	{"{\"vsock\": {\"cid\": \"3\"}}", "\"vsock.cid\": expected an integer", 3},
	{"{\"vsock\": {\"uds\": \"\"}}", "\"vsock.uds\": expected a non-empty string", 3},
	{"{\"vsock\": {\"port\": 1}}", "\"vsock.port\": unknown key (cid, uds)", 3},
	{"{\"jail\": true}", "\"jail\": expected null or an object", 3},
	{"{\"jail\": {\"dir\": \"rel\", \"uid\": 5, \"gid\": 5}}",
	 "\"jail.dir\": expected an absolute path", 3},
	{"{\"jail\": {\"dir\": \"/j\", \"uid\": 0, \"gid\": 5}}",
	 "\"jail.uid\": expected an integer 1..", 3},
	{"{\"jail\": {\"dir\": \"/j\", \"uid\": 5}}", "give \"dir\", \"uid\" and \"gid\"", 3},
	{"{\"jail\": {\"dir\": \"/j\", \"uid\": 5, \"gid\": 5, \"chroot\": 1}}",
	 "\"jail.chroot\": unknown key (dir, uid, gid, netns, cgroup, cpu_max, memory_max)", 3},
	{"{\"jail\": {\"dir\": \"/j\", \"uid\": 5, \"gid\": 5, \"cgroup\": \"a/../b\"}}",
	 "\"jail.cgroup\": expected a path under /sys/fs/cgroup", 3},
	{"{\"jail\": {\"dir\": \"/j\", \"uid\": 5, \"gid\": 5, \"cpu_max\": \"10\"}}",
	 "\"jail.cpu_max\": expected \"QUOTA/PERIOD\"", 3},
	{"{\"jail\": {\"dir\": \"/j\", \"uid\": 5, \"gid\": 5, \"memory_max\": \"lots\"}}",
	 "\"jail.memory_max\": expected a size", 3},
	{"{\"rootfs\": 1}", "\"rootfs\": expected a string", 3},
	{"{\"image\": \"docker://debian\"}", "\"image\": expected \"oci:DIR[:TAG]\"", 3},
	{"{\"image\": \"oci:\"}", "\"image\": expected \"oci:DIR[:TAG]\"", 3},
	{"{\"image\": 5}", "\"image\": expected \"oci:DIR[:TAG]\"", 3},
	{"{\"image\": \"oci:/i\", \"rootfs\": \"/r\"}", "give one of them", 3},
	{"{\"cpu\": 2}", "\"cpu\": unknown key (name, kernel", 3},
	{"{\"\\name\\u001b[2J\": 1}", "\"?ame?[2J\": unknown key", 3}, /* one line, no escapes */
	{"{\"cpus\": 2, \"cpus\": 3}", "not valid JSON", 3},
	{"{\"cpus\": 2,}", "line 1 column", 3},
	{"[1, 2]", "expected a JSON object", 3},
	{"", "not valid JSON", 3},
	{"{\"cpus\": 2} trailing", "not valid JSON", 3},
};

static void test_bad_documents(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kvmini_error e;
		int ret = parse(bad[i].json, &e);
		if (ret != -EINVAL || !strstr(e.msg, bad[i].msg) || e.status != bad[i].status)
			fail_msg("%s: ret %d status %d msg '%s', wanted '%s' (%d)", bad[i].json,
				 ret, e.status, e.msg, bad[i].msg, bad[i].status);
		assert_true(strncmp(e.msg, "web.json: ", 10) == 0); /* names the file */
		assert_null(strchr(e.msg, '\n'));
	}
}

static void test_long_values_shortened(void **state)
{
	(void)state;
	char json[9000];
	char big[8000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(json, sizeof(json), "{\"cpus\": \"%s\"}", big);
	struct kvmini_error e;
	assert_int_equal(parse(json, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "..."));
	assert_true(strlen(e.msg) < 200);
	snprintf(json, sizeof(json), "{\"kernel\": \"%s\"}", big); /* longer than 4096 */
	assert_int_equal(parse(json, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "shorter than 4096"));
}

/* Dump, then parse the dump: the same configuration. */
static void test_dump_roundtrip(void **state)
{
	(void)state;
	struct kvmini_error e;
	assert_int_equal(
		parse("{\"name\": \"db\", \"kernel\": \"/k\", \"cpus\": 3, \"memory_mib\": 300,"
		      " \"disks\": [{\"path\": \"/d\", \"serial\": \"x\","
		      " \"limit\": {\"bw\": \"50M\", \"iops\": 2000, \"iops_burst\": \"1K\"}}],"
		      " \"nets\": [{\"tap\": \"t0\", \"limit\": {\"pps\": 100, \"bw_burst\": 7}}],"
		      " \"cmdline\": \"quiet\","
		      " \"vsock\": {\"cid\": 9, \"uds\": \"/v\"}, \"rootfs\": \"/r\","
		      " \"jail\": {\"dir\": \"/srv/j\", \"uid\": 4242, \"gid\": 4243, \"netns\": "
		      "\"/n\", \"cgroup\": \"kvmini/db\", \"cpu_max\": \"50000/100000\","
		      " \"memory_max\": \"1G\"}}",
		      &e),
		0);
	char *text = vmconf_dump(&c, 1);
	assert_non_null(text);
	assert_non_null(strstr(text, "\"memory_mib\": 300"));
	assert_non_null(strstr(text, "\"cache\": \"writeback\""));
	assert_non_null(strstr(text, "\"log_level\": \"warn\""));
	assert_int_equal(text[strlen(text) - 1], '\n');
	static struct cli d;
	cli_defaults(&d);
	assert_int_equal(vmconf_parse(&d, text, strlen(text), "dump", NULL, &e), 0);
	assert_string_equal(d.name, "db");
	assert_string_equal(d.kernel, "/k");
	assert_int_equal(d.cpus, 3);
	assert_int_equal(d.mem_size, 300ULL << 20);
	assert_int_equal(d.nr_disks, 1);
	assert_string_equal(d.disk[0].serial, "x");
	assert_int_equal(d.disk[0].limit.bytes_per_s, 50ULL << 20);
	assert_int_equal(d.disk[0].limit.ops_per_s, 2000);
	assert_int_equal(d.disk[0].limit.ops_burst, 1024);
	assert_int_equal(d.disk[0].limit.bytes_burst, 0);
	assert_int_equal(d.nr_nets, 1);
	assert_int_equal(d.net[0].limit.ops_per_s, 100);
	assert_int_equal(d.net[0].limit.bytes_burst, 7);
	assert_int_equal(d.net[0].limit.bytes_per_s, 0);
	assert_string_equal(d.cmdline, "quiet");
	assert_true(d.vsock);
	assert_int_equal(d.vsock_cid, 9);
	assert_string_equal(d.vsock_uds, "/v");
	assert_string_equal(d.rootfs, "/r");
	assert_null(d.image);
	assert_string_equal(d.jail, "/srv/j");
	assert_int_equal(d.jail_uid, 4242);
	assert_int_equal(d.jail_gid, 4243);
	assert_string_equal(d.jail_netns, "/n");
	assert_string_equal(d.jail_cgroup, "kvmini/db");
	assert_int_equal(d.jail_cpu_quota, 50000);
	assert_int_equal(d.jail_cpu_period, 100000);
	assert_int_equal(d.jail_memory_max, 1ULL << 30);
	char *again = vmconf_dump(&d, 1);
	assert_string_equal(text, again);
	free(again);
	free(text);
	cli_free(&d);
}

/* A sandbox VM has no kernel of its own: its dump says "kernel": null, and that dump parses
 * back to the same configuration (fuzz_vmconf found it refused). The seccomp mode too. */
static void test_dump_roundtrip_no_kernel(void **state)
{
	(void)state;
	struct kvmini_error e;
	assert_int_equal(parse("{\"name\": \"box\", \"rootfs\": \"/r\", \"seccomp\": \"log\"}", &e),
			 0);
	assert_int_equal(c.seccomp, KVMINI_SECCOMP_LOG);
	char *text = vmconf_dump(&c, 0);
	assert_non_null(text);
	assert_non_null(strstr(text, "\"kernel\":null"));
	assert_non_null(strstr(text, "\"seccomp\":\"log\""));
	static struct cli d;
	cli_defaults(&d);
	assert_int_equal(vmconf_parse(&d, text, strlen(text), "dump", NULL, &e), 0);
	assert_null(d.kernel);
	assert_int_equal(d.seccomp, KVMINI_SECCOMP_LOG);
	char *again = vmconf_dump(&d, 0);
	assert_string_equal(text, again);
	free(again);
	free(text);
	cli_free(&d);
}

static void test_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/kvmini-vmconf-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/vm.json", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"kernel\": \"k/bzImage\", \"disks\": [{\"path\": \"../d.img\"}]}", f);
	fclose(f);
	struct kvmini_error e = {0};
	cli_free(&c);
	cli_defaults(&c);
	assert_int_equal(vmconf_load(&c, path, &e), 0);
	char want[300];
	snprintf(want, sizeof(want), "%s/k/bzImage", dir);
	assert_string_equal(c.kernel, want);
	snprintf(want, sizeof(want), "%s/../d.img", dir);
	assert_string_equal(c.disk[0].path, want);
	/* Missing file, a folder: one line naming the file, exit 3. */
	memset(&e, 0, sizeof(e));
	snprintf(path, sizeof(path), "%s/missing.json", dir);
	assert_int_equal(vmconf_load(&c, path, &e), -EINVAL);
	assert_int_equal(e.status, 3);
	assert_non_null(strstr(e.msg, "missing.json: cannot open the config file"));
	memset(&e, 0, sizeof(e));
	assert_int_equal(vmconf_load(&c, dir, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not a regular file"));
	snprintf(path, sizeof(path), "%s/vm.json", dir);
	unlink(path);
	rmdir(dir);
}

/* --config FILE then options: the options win; --disk replaces the file's disks. */
static void test_command_line_overrides(void **state)
{
	(void)state;
	char path[] = "/tmp/kvmini-vmconf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *json =
		"{\"name\": \"web\", \"kernel\": \"/k\", \"cpus\": 2, \"memory_mib\": 128,"
		" \"disks\": [{\"path\": \"/a\"}, {\"path\": \"/b\"}]}";
	assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
	close(fd);
	struct kvmini_error e = {0};
	cli_free(&c);
	char *argv1[] = {"kvmini", "run", "--config", path, "--cpus", "3", NULL};
	assert_int_equal(cli_parse(&c, 6, argv1, &e), 0);
	assert_int_equal(c.cpus, 3);
	assert_int_equal(c.mem_size, 128ULL << 20);
	assert_string_equal(c.name, "web");
	assert_int_equal(c.nr_disks, 2);
	cli_free(&c);
	char *argv2[] = {"kvmini", "run", "--disk", "/c", "--config=", NULL};
	memset(&e, 0, sizeof(e));
	assert_int_equal(cli_parse(&c, 5, argv2, &e), -EINVAL); /* "--config=" : empty path */
	cli_free(&c);
	char arg[300];
	snprintf(arg, sizeof(arg), "--config=%s", path);
	char *argv3[] = {"kvmini", "run", arg, "--disk", "/c", NULL};
	memset(&e, 0, sizeof(e));
	assert_int_equal(cli_parse(&c, 5, argv3, &e), 0);
	assert_int_equal(c.nr_disks, 1);
	assert_string_equal(c.disk[0].path, "/c");
	cli_free(&c);
	char *argv5[] = {"kvmini", "run", "--conf", path,
			 NULL}; /* abbreviated: not silently lost */
	memset(&e, 0, sizeof(e));
	assert_int_equal(cli_parse(&c, 4, argv5, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "write --config in full"));
	cli_free(&c);
	char *argv4[] = {"kvmini", "run", "--config", path, "--config", path, NULL};
	memset(&e, 0, sizeof(e));
	assert_int_equal(cli_parse(&c, 6, argv4, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "--config given twice"));
	cli_free(&c);
	unlink(path);
}

/* The example the README points to is a valid configuration (run from the checkout's top). */
static void test_shipped_example(void **state)
{
	(void)state;
	struct kvmini_error e = {0};
	cli_free(&c);
	cli_defaults(&c);
	if (vmconf_load(&c, "examples/web.json", &e) < 0)
		fail_msg("examples/web.json: %s", e.msg);
	assert_string_equal(c.name, "web");
	assert_int_equal(c.nr_disks, 2);
	assert_int_equal(c.nr_nets, 1);
	assert_non_null(strstr(c.kernel, "examples/../build/guest/bzImage"));
	cli_free(&c);
	cli_defaults(&c);
	if (vmconf_load(&c, "examples/sandbox-vm.json", &e) < 0)
		fail_msg("examples/sandbox-vm.json: %s", e.msg);
	assert_string_equal(c.name, "box");
	assert_non_null(strstr(c.rootfs, "examples/box-root"));
	assert_true(c.vsock);
}

/* vmconf_absolute: every relative path (the one inside an --image reference too) is made
 * absolute from the current directory; absolute ones stay as they are. */
static void test_absolute(void **state)
{
	(void)state;
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir("/tmp"), 0);
	cli_free(&c);
	cli_defaults(&c);
	c.kernel = "k/bzImage";
	c.initrd = "/abs/initrd";
	c.vsock_uds = "v.sock";
	c.image = "oci:img:v1";
	assert_int_equal(vmconf_absolute(&c), 0);
	assert_string_equal(c.kernel, "/tmp/k/bzImage");
	assert_string_equal(c.initrd, "/abs/initrd");
	assert_string_equal(c.vsock_uds, "/tmp/v.sock");
	assert_string_equal(c.image, "oci:/tmp/img:v1");
	c.image = "docker-archive:/a.tar";
	c.rootfs = "root";
	assert_int_equal(vmconf_absolute(&c), 0);
	assert_string_equal(c.image, "docker-archive:/a.tar");
	assert_string_equal(c.rootfs, "/tmp/root");
	assert_int_equal(chdir(cwd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_bad_documents),
		cmocka_unit_test(test_long_values_shortened),
		cmocka_unit_test(test_dump_roundtrip),
		cmocka_unit_test(test_dump_roundtrip_no_kernel),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_command_line_overrides),
		cmocka_unit_test(test_shipped_example),
		cmocka_unit_test(test_absolute),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	cli_free(&c);
	return r;
}
