/* test_cli: option parsing, defaults, size suffixes and every refused value. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kvmini/cli.h"

#define ARGV(...)	 ((char *[]){"kvmini", __VA_ARGS__, NULL})
#define ARGC(...)	 ((int)(sizeof((char *[]){"kvmini", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(c, e, ...) cli_parse(c, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), e)

static void test_sizes(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(cli_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(cli_parse_size("512K", &v), 0);
	assert_int_equal(v, 512ULL << 10);
	assert_int_equal(cli_parse_size("512M", &v), 0);
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(cli_parse_size("2g", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(cli_parse_size("1T", &v), 0);
	assert_int_equal(v, 1ULL << 40);
	assert_int_equal(cli_parse_size("256MiB", &v), 0);
	assert_int_equal(v, 256ULL << 20);
	assert_int_equal(cli_parse_size("256MB", &v), 0);
	assert_int_equal(cli_parse_size("", &v), -EINVAL);
	assert_int_equal(cli_parse_size("M", &v), -EINVAL);
	assert_int_equal(cli_parse_size("-1M", &v), -EINVAL);
	assert_int_equal(cli_parse_size(" 1M", &v), -EINVAL);
	assert_int_equal(cli_parse_size("12Q", &v), -EINVAL);
	assert_int_equal(cli_parse_size("1MM", &v), -EINVAL);
	assert_int_equal(cli_parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(cli_parse_size("17179869184G", &v), -ERANGE); /* 2^34 GiB = 2^64 */
}

static void test_defaults(void **state)
{
	(void)state;
	struct cli c;
	struct kvmini_error e = {0};
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "bz"), 0);
	assert_int_equal(c.action, CLI_RUN);
	assert_string_equal(c.kernel, "bz");
	assert_null(c.initrd);
	assert_null(c.cmdline);
	assert_false(c.no_default_cmdline);
	assert_int_equal(c.mem_size, 256ULL << 20);
	assert_int_equal(c.cpus, 1);
	assert_int_equal(c.log_level, KVMINI_LOG_WARN);
	assert_string_equal(c.name, "kvmini");
}

static void test_all_options(void **state)
{
	(void)state;
	struct cli c;
	struct kvmini_error e = {0};
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--initrd", "i", "--cmdline",
			       "-- echo hi", "--no-default-cmdline", "--mem", "1G", "--cpus", "64",
			       "--name", "vm7", "--log-level", "debug"),
			 0);
	assert_string_equal(c.initrd, "i");
	assert_string_equal(c.cmdline, "-- echo hi");
	assert_true(c.no_default_cmdline);
	assert_int_equal(c.mem_size, 1ULL << 30);
	assert_int_equal(c.cpus, 64);
	assert_string_equal(c.name, "vm7");
	assert_int_equal(c.log_level, KVMINI_LOG_DEBUG);
	/* --opt=value works too, and an odd size is rounded up to whole pages. */
	assert_int_equal(PARSE(&c, &e, "run", "--kernel=k", "--mem=20000001"), 0);
	assert_int_equal(c.mem_size, 20000768);
}

static void test_help_and_version(void **state)
{
	(void)state;
	struct cli c;
	struct kvmini_error e = {0};
	assert_int_equal(PARSE(&c, &e, "--help"), 0);
	assert_int_equal(c.action, CLI_HELP);
	assert_int_equal(PARSE(&c, &e, "--version"), 0);
	assert_int_equal(c.action, CLI_VERSION);
	assert_int_equal(PARSE(&c, &e, "run", "--help"), 0);
	assert_int_equal(c.action, CLI_RUN_HELP);
	assert_int_equal(e.status, 0);
}

static void expect_usage_error(int ret, struct kvmini_error *e, int status, const char *keyword)
{
	assert_true(ret < 0);
	assert_int_equal(e->status, status);
	if (!strstr(e->msg, keyword))
		fail_msg("message '%s' lacks '%s'", e->msg, keyword);
	assert_null(strchr(e->msg, '\n'));
	memset(e, 0, sizeof(*e));
}

/* cli_apply on a fresh config: 0, or the status and a message naming the option. */
static void expect_apply(const struct cli *c, int status, const char *keyword)
{
	struct kvmini_config *cfg = NULL;
	struct kvmini_error e = {0};
	assert_int_equal(kvmini_config_new(&cfg), 0);
	int ret = cli_apply(c, cfg, -1, &e);
	kvmini_config_free(&cfg);
	assert_null(cfg);
	if (!status) {
		if (ret != 0)
			fail_msg("cli_apply: %s", e.msg);
		return;
	}
	assert_true(ret < 0);
	assert_int_equal(e.status, status);
	if (!strstr(e.msg, keyword))
		fail_msg("message '%s' lacks '%s'", e.msg, keyword);
}

static void test_refused_values(void **state)
{
	(void)state;
	struct cli c;
	struct kvmini_error e = {0};
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--mem", "0"), &e, 2, "--mem");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--mem", "15M"), &e, 2, "16M");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--mem", "lots"), &e, 2, "lots");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--mem", "2T"), &e, 4, "--mem");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--cpus", "0"), &e, 2, "--cpus");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--cpus", "65"), &e, 2, "65");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--cpus", "-1"), &e, 2, "--cpus");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--cpus", "2x"), &e, 2, "--cpus");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--cpus", ""), &e, 2, "--cpus");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--log-level", "x"), &e, 2,
			   "--log-level");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--log-level", "verbose"), &e, 2,
			   "--log-level");
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--log-level", "warning"), 0);
	assert_int_equal(c.log_level, KVMINI_LOG_WARN);
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--name", ""), &e, 2, "--name");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--frob"), &e, 2, "--frob");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel"), &e, 2, "--kernel");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "extra"), &e, 2, "extra");
	expect_usage_error(PARSE(&c, &e, "run"), &e, 2, "--kernel PATH is required");
	expect_usage_error(PARSE(&c, &e, "start"), &e, 2, "start");
	expect_usage_error(cli_parse(&c, 1, (char *[]){"kvmini", NULL}, &e), &e, 2, "no command");
}

static void test_disks(void **state)
{
	(void)state;
	struct cli c;
	struct kvmini_error e = {0};
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "a.img", "--disk",
			       "/b/c.img,ro,id=SER-1,cache=unsafe", "--disk", "d,cache=writeback"),
			 0);
	assert_int_equal(c.nr_disks, 3);
	assert_string_equal(c.disk[0].path, "a.img");
	assert_false(c.disk[0].readonly);
	assert_null(c.disk[0].serial);
	assert_false(c.disk[0].cache_unsafe);
	assert_string_equal(c.disk[1].path, "/b/c.img");
	assert_true(c.disk[1].readonly);
	assert_string_equal(c.disk[1].serial, "SER-1");
	assert_true(c.disk[1].cache_unsafe);
	assert_string_equal(c.disk[2].path, "d");
	assert_false(c.disk[2].cache_unsafe);

	/* exactly 20 bytes of serial is the most GET_ID can carry */
	assert_int_equal(
		PARSE(&c, &e, "run", "--kernel", "k", "--disk", "x,id=01234567890123456789"), 0);
	assert_string_equal(c.disk[0].serial, "01234567890123456789");

	expect_usage_error(
		PARSE(&c, &e, "run", "--kernel", "k", "--disk", "x,id=012345678901234567890"), &e,
		2, "longer than 20");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "x,rw"), &e, 2, "'rw'");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "x,cache=none"), &e, 2,
			   "cache=none");

	/* Rate limits: sizes with K/M/G suffixes, every key and burst; a bad value or key named. */
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--disk",
			       "x,bw=50M,iops=2000,bw_burst=1G,iops_burst=300", "--net",
			       "tap=t0,pps=10K,bw=100M,pps_burst=5"),
			 0);
	assert_int_equal(c.disk[0].limit.bytes_per_s, 50ULL << 20);
	assert_int_equal(c.disk[0].limit.ops_per_s, 2000);
	assert_int_equal(c.disk[0].limit.bytes_burst, 1ULL << 30);
	assert_int_equal(c.disk[0].limit.ops_burst, 300);
	assert_int_equal(c.net[0].limit.ops_per_s, 10240);
	assert_int_equal(c.net[0].limit.bytes_per_s, 100ULL << 20);
	assert_int_equal(c.net[0].limit.ops_burst, 5);
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "x,bw=fast"), &e, 2,
			   "--disk bw 'fast' is not a rate");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "x,iops=-3"), &e, 2,
			   "--disk iops '-3' is not a rate");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "x,pps=3"), &e, 2,
			   "--disk option 'pps=3' is unknown");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--net", "tap=t,iops=3"), &e, 2,
			   "--net option 'iops=3' is unknown");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--net", "tap=t,pps="), &e, 2,
			   "--net pps '' is not a rate");

	/* The jail's options: ids are numbers other than 0, and go with --jail. */
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--jail", "/j", "--uid", "4242",
			       "--gid", "7", "--netns", "/run/netns/x"),
			 0);
	assert_string_equal(c.jail, "/j");
	assert_int_equal(c.jail_uid, 4242);
	assert_int_equal(c.jail_gid, 7);
	assert_string_equal(c.jail_netns, "/run/netns/x");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--jail", "/j", "--uid", "x1"), &e,
			   2, "--uid 'x1' is not a numeric id");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--jail", "/j", "--gid", "0"), &e,
			   2, "--gid '0' is not a numeric id other than 0");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--jail", "/j", "--uid", "-1"), &e,
			   2, "--uid '-1'");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--netns", "/n"), &e, 2,
			   "go with --jail DIR");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--jail", ""), &e, 2,
			   "--jail must not be empty");
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--jail", "/j", "--uid", "5",
			       "--gid", "5", "--cgroup", "kvmini/a", "--cpu-max", "50000",
			       "--memory-max", "512M"),
			 0);
	assert_string_equal(c.jail_cgroup, "kvmini/a");
	assert_int_equal(c.jail_cpu_quota, 50000);
	assert_int_equal(c.jail_cpu_period, 100000);
	assert_int_equal(c.jail_memory_max, 512ULL << 20);
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--jail", "/j", "--cgroup", "g",
			       "--cpu-max", "25000/50000"),
			 0);
	assert_int_equal(c.jail_cpu_period, 50000);
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--jail", "/j", "--cgroup", "g",
				 "--cpu-max", "10/100000"),
			   &e, 2, "--cpu-max '10/100000' is not QUOTA/PERIOD");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--jail", "/j", "--cgroup", "g",
				 "--cpu-max", "50000/2000000"),
			   &e, 2, "is not QUOTA/PERIOD");
	expect_usage_error(
		PARSE(&c, &e, "run", "--kernel", "k", "--jail", "/j", "--cgroup", "../x"), &e, 2,
		"without '..'");
	expect_usage_error(
		PARSE(&c, &e, "run", "--kernel", "k", "--jail", "/j", "--memory-max", "1G"), &e, 2,
		"go with --cgroup PATH");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--jail", "/j", "--cgroup", "g",
				 "--memory-max", "0"),
			   &e, 2, "--memory-max '0' is not a size");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--disk", ",ro"), &e, 2, "path");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--disk", ""), &e, 2, "path");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "1", "--disk", "2",
				 "--disk", "3", "--disk", "4", "--disk", "5", "--disk", "6",
				 "--disk", "7", "--disk", "8", "--disk", "9"),
			   &e, 2, "at most 8");
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "1", "--disk", "2",
			       "--disk", "3", "--disk", "4", "--disk", "5", "--disk", "6", "--disk",
			       "7", "--disk", "8"),
			 0);
	assert_int_equal(c.nr_disks, 8);
}

static void test_nets(void **state)
{
	(void)state;
	struct cli c;
	struct kvmini_error e = {0};
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--net", "tap=tap0", "--net",
			       "mac=52:54:00:AB:cd:01,tap=kv1"),
			 0);
	assert_int_equal(c.nr_nets, 2);
	assert_string_equal(c.net[0].tap, "tap0");
	assert_null(c.net[0].mac);
	assert_string_equal(c.net[1].tap, "kv1");
	assert_string_equal(c.net[1].mac, "52:54:00:AB:cd:01");
	expect_apply(&c, 0, NULL);

	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--net", "tap="), &e, 2,
			   "needs tap=NAME");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--net", "mac=52:54:00:00:00:01"),
			   &e, 2, "needs tap=NAME");
	/* The MAC is the library's to check: cli_apply names the option. */
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--net", "tap=t,mac=52:54:00:00:01"),
			 0);
	expect_apply(&c, 2, "--net: MAC '52:54:00:00:01' is not a unicast MAC");
	assert_int_equal(
		PARSE(&c, &e, "run", "--kernel", "k", "--net", "tap=t,mac=01:00:5e:00:00:01"), 0);
	expect_apply(&c, 2, "not a unicast MAC");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--net", "tap=t,vhost=on"), &e, 2,
			   "'vhost=on'");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--net", "tap=a", "--net", "tap=b",
				 "--net", "tap=c", "--net", "tap=d", "--net", "tap=e"),
			   &e, 2, "at most 4");
	/* disks and NICs share the 8 virtio slots */
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "1", "--disk", "2",
				 "--disk", "3", "--disk", "4", "--disk", "5", "--net", "tap=a",
				 "--net", "tap=b", "--net", "tap=c", "--net", "tap=d"),
			   &e, 2, "at most 8 virtio devices");
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "1", "--disk", "2",
			       "--disk", "3", "--disk", "4", "--net", "tap=a", "--net", "tap=b",
			       "--net", "tap=c", "--net", "tap=d"),
			 0);
}

/* --vsock: CID and socket path, the defaults, refused values, the shared virtio slots. */
static void test_vsock(void **state)
{
	(void)state;
	struct cli c;
	struct kvmini_error e = {0};
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--vsock", "cid=42,uds=/tmp/v.sock"),
			 0);
	assert_true(c.vsock);
	assert_int_equal(c.vsock_cid, 42);
	assert_string_equal(c.vsock_uds, "/tmp/v.sock");
	expect_apply(&c, 0, NULL);
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--vsock", "on"), 0);
	assert_true(c.vsock);
	assert_int_equal(c.vsock_cid, 0);
	assert_null(c.vsock_uds);
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k"), 0);
	assert_false(c.vsock);
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--vsock", "cid=2"), &e, 2,
			   "from 3 to 4294967294");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--vsock", "cid=4294967295"), &e,
			   2, "from 3 to 4294967294");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--vsock", "cid=x"), &e, 2,
			   "must be a number");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--vsock", "uds="), &e, 2,
			   "'uds=' is unknown");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--vsock", "port=1"), &e, 2,
			   "'port=1' is unknown");
	/* vsock takes a virtio slot of its own: 8 disks and vsock are too many. */
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "1", "--disk", "2",
			       "--disk", "3", "--disk", "4", "--disk", "5", "--disk", "6", "--disk",
			       "7", "--disk", "8", "--vsock", "on"),
			 0);
	expect_apply(&c, 2, "--vsock: too many disks, network cards and vsock");
}

/* --trace and --trace-file. */
static void test_trace(void **state)
{
	(void)state;
	struct cli c;
	struct kvmini_error e = {0};
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k"), 0);
	assert_int_equal(c.trace, 0);
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--trace"), 0);
	assert_int_equal(c.trace, KVMINI_TRACE_ALL);
	assert_null(c.trace_file);
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--trace=exits,irq"), 0);
	assert_int_equal(c.trace, KVMINI_TRACE_EXITS | KVMINI_TRACE_IRQ);
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--trace=virtio,io", "--trace-file",
			       "/tmp/t"),
			 0);
	assert_int_equal(c.trace, KVMINI_TRACE_VIRTIO | KVMINI_TRACE_IO);
	assert_string_equal(c.trace_file, "/tmp/t");
	/* --trace-file alone traces everything */
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--trace-file", "f"), 0);
	assert_int_equal(c.trace, KVMINI_TRACE_ALL);
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--trace=exits,bogus"), &e, 2,
			   "unknown trace category 'bogus'");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--trace="), &e, 2,
			   "unknown trace category ''");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--trace=exits,"), &e, 2,
			   "unknown trace category");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--trace-file", ""), &e, 2,
			   "--trace-file");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),	       cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_options),    cmocka_unit_test(test_help_and_version),
		cmocka_unit_test(test_refused_values), cmocka_unit_test(test_disks),
		cmocka_unit_test(test_trace),	       cmocka_unit_test(test_nets),
		cmocka_unit_test(test_vsock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
