/* test_vm: the machine builder's kernel command line, derived from the registered slots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kvmini/vm.h"

static void test_kernel_cmdline(void **state)
{
	(void)state;
	struct vm_config cfg = {0};
	struct vm_slot slot[VM_MAX_VIRTIO];
	for (unsigned int i = 0; i < VM_MAX_VIRTIO; i++)
		slot[i] = (struct vm_slot){.base = 0xd0000000ULL + i * 0x1000, .gsi = 5 + i};

	char *s = vm_build_cmdline(&cfg, slot, 0);
	assert_string_equal(s, VM_DEFAULT_CMDLINE);
	free(s);

	cfg.cmdline = "loglevel=8 -- echo hi";
	s = vm_build_cmdline(&cfg, slot, 0);
	assert_string_equal(s, VM_DEFAULT_CMDLINE " loglevel=8 -- echo hi");
	free(s);

	s = vm_build_cmdline(&cfg, slot, 2);
	assert_string_equal(s, VM_DEFAULT_CMDLINE " virtio_mmio.device=4K@0xd0000000:5"
						  " virtio_mmio.device=4K@0xd0001000:6"
						  " loglevel=8 -- echo hi");
	free(s);

	cfg.no_default_cmdline = true;
	s = vm_build_cmdline(&cfg, slot, 2);
	assert_string_equal(s, "virtio_mmio.device=4K@0xd0000000:5"
			       " virtio_mmio.device=4K@0xd0001000:6 loglevel=8 -- echo hi");
	free(s);

	cfg.cmdline = NULL;
	s = vm_build_cmdline(&cfg, slot, 0);
	assert_string_equal(s, "");
	free(s);

	/* What was registered, not what was asked for: a slot at an unusual place shows. */
	struct vm_slot odd = {.base = 0xd0042000ULL, .gsi = 9};
	s = vm_build_cmdline(&cfg, &odd, 1);
	assert_string_equal(s, "virtio_mmio.device=4K@0xd0042000:9");
	free(s);

	s = vm_build_cmdline(&cfg, slot, VM_MAX_VIRTIO);
	assert_non_null(strstr(s, "virtio_mmio.device=4K@0xd0007000:12"));
	assert_int_equal(s[strlen(s) - 1], '2');
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kernel_cmdline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
