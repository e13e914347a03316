/* test_vcpu: the CPUID topology each vCPU is given (pure function, no KVM). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "kvmini/vcpu.h"

static struct kvm_cpuid2 *table(void)
{
	static const struct kvm_cpuid_entry2 src[] = {
		{.function = 1, .ebx = 0xff0a0800, .edx = 0, .ecx = 0},
		{.function = 4,
		 .index = 0,
		 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		 .eax = (1 << 5) | 0xfc000000},
		{.function = 4,
		 .index = 3,
		 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		 .eax = (3 << 5)},
		{.function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
		{.function = 0xb, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
		{.function = 0xb, .index = 2, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
		{.function = 0x80000008, .ecx = 0xffff},
		{.function = 0x8000001e, .eax = 7, .ebx = 7, .ecx = 7},
	};
	size_t n = sizeof(src) / sizeof(src[0]);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(src[0]));
	c->nent = (uint32_t)n;
	for (size_t i = 0; i < n; i++)
		c->entries[i] = src[i];
	return c;
}

static void test_leaf1_apic_id_and_count(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = table();
	vcpu_patch_cpuid(c, 5, 8);
	assert_int_equal(c->entries[0].ebx >> 24, 5);
	assert_int_equal((c->entries[0].ebx >> 16) & 0xff, 8);
	assert_int_equal(c->entries[0].ebx & 0xffff, 0x0800); /* CLFLUSH size kept */
	assert_true(c->entries[0].ecx & (1u << 31));	      /* hypervisor present */
	assert_true(c->entries[0].edx & (1u << 28));	      /* HTT */
	free(c);
	c = table();
	vcpu_patch_cpuid(c, 0, 1);
	assert_false(c->entries[0].edx & (1u << 28));
	free(c);
}

static void test_leaf4_cores(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = table();
	vcpu_patch_cpuid(c, 0, 4);
	assert_int_equal(c->entries[1].eax >> 26, 3);		/* 4 cores */
	assert_int_equal((c->entries[1].eax >> 14) & 0xfff, 0); /* L1 not shared */
	assert_int_equal((c->entries[2].eax >> 14) & 0xfff, 3); /* L3 shared by all */
	free(c);
}

static void test_leaf_b_topology(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = table();
	vcpu_patch_cpuid(c, 3, 5);
	/* SMT level: one thread. */
	assert_int_equal(c->entries[3].eax, 0);
	assert_int_equal(c->entries[3].ebx, 1);
	assert_int_equal(c->entries[3].ecx, 0x100);
	assert_int_equal(c->entries[3].edx, 3);
	/* Core level: 5 CPUs need 3 bits of APIC ID. */
	assert_int_equal(c->entries[4].eax, 3);
	assert_int_equal(c->entries[4].ebx, 5);
	assert_int_equal(c->entries[4].ecx, 0x201);
	assert_int_equal(c->entries[4].edx, 3);
	/* Past the last level: invalid type, index echoed. */
	assert_int_equal(c->entries[5].ebx, 0);
	assert_int_equal(c->entries[5].ecx, 2);
	free(c);
}

static void test_amd_leaves(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = table();
	vcpu_patch_cpuid(c, 2, 64);
	assert_int_equal(c->entries[6].ecx & 0xff, 63);
	assert_int_equal((c->entries[6].ecx >> 12) & 0xf, 6);
	assert_int_equal(c->entries[7].eax, 2);
	free(c);
}

/* Only leaf 1 gets the TSC-deadline bit; its other bits and the other leaves are kept. */
static void test_tsc_deadline(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = table();
	c->entries[0].ecx = 0x5;
	vcpu_patch_cpuid(c, 1, 2);
	vcpu_cpuid_set_tsc_deadline(c);
	assert_int_equal(c->entries[0].ecx, 0x5 | (1u << 24) | (1u << 31));
	for (uint32_t i = 1; i < c->nent; i++)
		assert_int_equal(c->entries[i].ecx & (1u << 24), 0);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leaf1_apic_id_and_count),
		cmocka_unit_test(test_leaf4_cores),
		cmocka_unit_test(test_leaf_b_topology),
		cmocka_unit_test(test_amd_leaves),
		cmocka_unit_test(test_tsc_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
