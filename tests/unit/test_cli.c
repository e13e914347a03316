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
	struct vmerr e = {0};
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "bz"), 0);
	assert_int_equal(c.action, CLI_RUN);
	assert_string_equal(c.vm.kernel, "bz");
	assert_null(c.vm.initrd);
	assert_null(c.vm.cmdline);
	assert_false(c.vm.no_default_cmdline);
	assert_int_equal(c.vm.mem_size, 256ULL << 20);
	assert_int_equal(c.vm.cpus, 1);
	assert_int_equal(c.vm.log_level, LOG_WARN);
	assert_string_equal(c.vm.name, "kvmini");
}

static void test_all_options(void **state)
{
	(void)state;
	struct cli c;
	struct vmerr e = {0};
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--initrd", "i", "--cmdline",
			       "-- echo hi", "--no-default-cmdline", "--mem", "1G", "--cpus", "64",
			       "--name", "vm7", "--log-level", "debug"),
			 0);
	assert_string_equal(c.vm.initrd, "i");
	assert_string_equal(c.vm.cmdline, "-- echo hi");
	assert_true(c.vm.no_default_cmdline);
	assert_int_equal(c.vm.mem_size, 1ULL << 30);
	assert_int_equal(c.vm.cpus, 64);
	assert_string_equal(c.vm.name, "vm7");
	assert_int_equal(c.vm.log_level, LOG_DEBUG);
	/* --opt=value works too, and an odd size is rounded up to whole pages. */
	assert_int_equal(PARSE(&c, &e, "run", "--kernel=k", "--mem=20000001"), 0);
	assert_int_equal(c.vm.mem_size, 20000768);
}

static void test_help_and_version(void **state)
{
	(void)state;
	struct cli c;
	struct vmerr e = {0};
	assert_int_equal(PARSE(&c, &e, "--help"), 0);
	assert_int_equal(c.action, CLI_HELP);
	assert_int_equal(PARSE(&c, &e, "--version"), 0);
	assert_int_equal(c.action, CLI_VERSION);
	assert_int_equal(PARSE(&c, &e, "run", "--help"), 0);
	assert_int_equal(c.action, CLI_RUN_HELP);
	assert_int_equal(e.status, 0);
}

static void expect_usage_error(int ret, struct vmerr *e, int status, const char *keyword)
{
	assert_true(ret < 0);
	assert_int_equal(e->status, status);
	if (!strstr(e->msg, keyword))
		fail_msg("message '%s' lacks '%s'", e->msg, keyword);
	assert_null(strchr(e->msg, '\n'));
	vmerr_clear(e);
}

static void test_refused_values(void **state)
{
	(void)state;
	struct cli c;
	struct vmerr e = {0};
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
	struct vmerr e = {0};
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "a.img", "--disk",
			       "/b/c.img,ro,id=SER-1,cache=unsafe", "--disk", "d,cache=writeback"),
			 0);
	assert_int_equal(c.vm.nr_disks, 3);
	assert_string_equal(c.vm.disk[0].path, "a.img");
	assert_false(c.vm.disk[0].readonly);
	assert_null(c.vm.disk[0].serial);
	assert_int_equal(c.vm.disk[0].cache, VBLK_CACHE_WRITEBACK);
	assert_string_equal(c.vm.disk[1].path, "/b/c.img");
	assert_true(c.vm.disk[1].readonly);
	assert_string_equal(c.vm.disk[1].serial, "SER-1");
	assert_int_equal(c.vm.disk[1].cache, VBLK_CACHE_UNSAFE);
	assert_string_equal(c.vm.disk[2].path, "d");
	assert_int_equal(c.vm.disk[2].cache, VBLK_CACHE_WRITEBACK);

	/* exactly 20 bytes of serial is the most GET_ID can carry */
	assert_int_equal(
		PARSE(&c, &e, "run", "--kernel", "k", "--disk", "x,id=01234567890123456789"), 0);
	assert_string_equal(c.vm.disk[0].serial, "01234567890123456789");

	expect_usage_error(
		PARSE(&c, &e, "run", "--kernel", "k", "--disk", "x,id=012345678901234567890"), &e,
		2, "longer than 20");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "x,rw"), &e, 2, "'rw'");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--disk", "x,cache=none"), &e, 2,
			   "cache=none");
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
	assert_int_equal(c.vm.nr_disks, 8);
}

static void test_nets(void **state)
{
	(void)state;
	struct cli c;
	struct vmerr e = {0};
	assert_int_equal(PARSE(&c, &e, "run", "--kernel", "k", "--net", "tap=tap0", "--net",
			       "mac=52:54:00:AB:cd:01,tap=kv1"),
			 0);
	assert_int_equal(c.vm.nr_nets, 2);
	assert_string_equal(c.vm.net[0].tap, "tap0");
	assert_false(c.vm.net[0].mac_set);
	assert_string_equal(c.vm.net[1].tap, "kv1");
	assert_true(c.vm.net[1].mac_set);
	static const uint8_t want[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0x01};
	assert_memory_equal(c.vm.net[1].mac, want, 6);

	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--net", "tap="), &e, 2,
			   "needs tap=NAME");
	expect_usage_error(PARSE(&c, &e, "run", "--kernel", "k", "--net", "mac=52:54:00:00:00:01"),
			   &e, 2, "needs tap=NAME");
	expect_usage_error(
		PARSE(&c, &e, "run", "--kernel", "k", "--net", "tap=t,mac=52:54:00:00:01"), &e, 2,
		"not a unicast MAC");
	expect_usage_error(
		PARSE(&c, &e, "run", "--kernel", "k", "--net", "tap=t,mac=01:00:5e:00:00:01"), &e,
		2, "not a unicast MAC");
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

/* The kernel command line: default, device announcements, then the user's part. */
static void test_kernel_cmdline(void **state)
{
	(void)state;
	struct vm_config cfg = {0};
	char *s = vm_build_cmdline(&cfg);
	assert_string_equal(s, VM_DEFAULT_CMDLINE);
	free(s);

	cfg.cmdline = "loglevel=8 -- echo hi";
	s = vm_build_cmdline(&cfg);
	assert_string_equal(s, VM_DEFAULT_CMDLINE " loglevel=8 -- echo hi");
	free(s);

	cfg.nr_disks = 2;
	s = vm_build_cmdline(&cfg);
	assert_string_equal(s, VM_DEFAULT_CMDLINE " virtio_mmio.device=4K@0xd0000000:5"
						  " virtio_mmio.device=4K@0xd0001000:6"
						  " loglevel=8 -- echo hi");
	free(s);

	cfg.no_default_cmdline = true;
	s = vm_build_cmdline(&cfg);
	assert_string_equal(s, "virtio_mmio.device=4K@0xd0000000:5"
			       " virtio_mmio.device=4K@0xd0001000:6 loglevel=8 -- echo hi");
	free(s);

	cfg.cmdline = NULL;
	cfg.nr_disks = 0;
	s = vm_build_cmdline(&cfg);
	assert_string_equal(s, "");
	free(s);

	cfg.nr_disks = 1;
	cfg.nr_nets = 1;
	s = vm_build_cmdline(&cfg);
	assert_string_equal(s, "virtio_mmio.device=4K@0xd0000000:5"
			       " virtio_mmio.device=4K@0xd0001000:6");
	free(s);

	cfg.nr_nets = 0;
	cfg.nr_disks = VM_MAX_VIRTIO;
	s = vm_build_cmdline(&cfg);
	assert_non_null(strstr(s, "virtio_mmio.device=4K@0xd0007000:12"));
	assert_int_equal(s[strlen(s) - 1], '2');
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),	       cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_options),    cmocka_unit_test(test_help_and_version),
		cmocka_unit_test(test_refused_values), cmocka_unit_test(test_disks),
		cmocka_unit_test(test_kernel_cmdline), cmocka_unit_test(test_nets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
