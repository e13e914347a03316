/* mptable: write the Intel MultiProcessor Specification 1.4 tables (floating pointer + config). */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "kvmini/layout.h"
#include "kvmini/mptable.h"

/* MP spec 1.4, section 4.1: the floating pointer structure, 16 bytes, found by signature. */
struct mpf_intel {
	char signature[4]; /* "_MP_" */
	uint32_t physptr;  /* address of the configuration table */
	uint8_t length;	   /* in 16-byte units: 1 */
	uint8_t specification;
	uint8_t checksum; /* all 16 bytes sum to 0 */
	uint8_t feature1; /* 0: a configuration table is present (no default configuration) */
	uint8_t feature2; /* bit 7 IMCR present: 0, virtual wire mode */
	uint8_t feature3[3];
} __attribute__((packed));

/* Section 4.2: the configuration table header, 44 bytes, followed by the base entries. */
struct mpc_table {
	char signature[4]; /* "PCMP" */
	uint16_t length;   /* header plus base entries */
	uint8_t spec;
	uint8_t checksum; /* the base table sums to 0 */
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount; /* number of base entries */
	uint32_t lapic;	   /* address every local APIC answers at */
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

/* Section 4.3: base table entries, told apart by their first byte. */
enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4 };

struct mpc_cpu { /* 20 bytes */
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;      /* bit 0 enabled, bit 1 bootstrap processor */
	uint32_t cpufeature;  /* CPUID(1).EAX: stepping, model, family */
	uint32_t featureflag; /* CPUID(1).EDX */
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus { /* 8 bytes */
	uint8_t type;
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic { /* 8 bytes */
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags; /* bit 0 usable */
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc { /* 8 bytes; also the layout of a local interrupt entry */
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag; /* polarity and trigger; 0 = conforms to the bus */
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic; /* IOAPIC id, or for local entries a local APIC id (0xff = all) */
	uint8_t dstirq;	 /* IOAPIC pin, or LINTn */
} __attribute__((packed));

#define MP_CPU_ENABLED	 0x01
#define MP_CPU_BSP	 0x02
#define MP_IOAPIC_USABLE 0x01
#define MP_IRQ_INT	 0
#define MP_IRQ_NMI	 1
#define MP_IRQ_EXTINT	 3
#define MP_LAPIC_VERSION 0x14
#define MP_IOAPIC_VER	 0x11
#define MP_ISA_IRQS	 16
/* Family 6 signature and FPU | APIC feature bits: what Linux expects of an SMP-capable CPU. */
#define MP_CPU_SIGNATURE ((6u << 8) | (1u << 4) | 1u)
#define MP_CPU_FEATURES	 ((1u << 0) | (1u << 9))

static uint8_t mptable_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return (uint8_t)(0x100 - sum);
}

static unsigned int mptable_entries(unsigned int cpus)
{
	return cpus + 1 /* bus */ + 1 /* ioapic */ + MP_ISA_IRQS + 2 /* LINT0, LINT1 */;
}

static uint64_t mptable_config_size(unsigned int cpus)
{
	return sizeof(struct mpc_table) + cpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
	       sizeof(struct mpc_ioapic) + (MP_ISA_IRQS + 2) * sizeof(struct mpc_intsrc);
}

uint64_t mptable_size(unsigned int cpus)
{
	return sizeof(struct mpf_intel) + mptable_config_size(cpus);
}

int mptable_write(const struct gmem *gm, gpa_t at, unsigned int cpus)
{
	if (cpus < 1 || cpus > MPTABLE_MAX_CPUS)
		return -EINVAL;
	uint64_t size = mptable_size(cpus);
	if (at + size < at || at + size > LAYOUT_EBDA_END)
		return -ENOSPC;
	uint8_t *base = gmem_ptr(gm, at, size);
	if (!base)
		return -EFAULT;
	memset(base, 0, size);

	/* Build in host memory with memcpy: the guest address need not be aligned. */
	gpa_t config = at + sizeof(struct mpf_intel);
	uint8_t *p = base + sizeof(struct mpf_intel);
	struct mpc_table hdr = {
		.signature = {'P', 'C', 'M', 'P'},
		.length = (uint16_t)mptable_config_size(cpus),
		.spec = 4,
		.oem = {'K', 'V', 'M', 'I', 'N', 'I', ' ', ' '},
		.productid = {'K', 'V', 'M', 'I', 'N', 'I', ' ', 'V', 'M', ' ', ' ', ' '},
		.oemcount = (uint16_t)mptable_entries(cpus),
		.lapic = (uint32_t)LAYOUT_LAPIC,
	};
	p += sizeof(hdr);

	for (unsigned int i = 0; i < cpus; i++) {
		struct mpc_cpu c = {
			.type = MP_PROCESSOR,
			.apicid = (uint8_t)i,
			.apicver = MP_LAPIC_VERSION,
			.cpuflag = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			.cpufeature = MP_CPU_SIGNATURE,
			.featureflag = MP_CPU_FEATURES,
		};
		memcpy(p, &c, sizeof(c));
		p += sizeof(c);
	}
	struct mpc_bus bus = {
		.type = MP_BUS, .busid = 0, .bustype = {'I', 'S', 'A', ' ', ' ', ' '}};
	memcpy(p, &bus, sizeof(bus));
	p += sizeof(bus);

	uint8_t ioapic_id = (uint8_t)cpus; /* APIC ids 0..cpus-1 belong to the CPUs */
	struct mpc_ioapic io = {
		.type = MP_IOAPIC,
		.apicid = ioapic_id,
		.apicver = MP_IOAPIC_VER,
		.flags = MP_IOAPIC_USABLE,
		.apicaddr = (uint32_t)LAYOUT_IOAPIC,
	};
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);

	/* Section 4.3.4: ISA IRQ i arrives at IOAPIC pin i, as KVM's default GSI routing does. */
	for (unsigned int irq = 0; irq < MP_ISA_IRQS; irq++) {
		struct mpc_intsrc s = {
			.type = MP_INTSRC,
			.irqtype = MP_IRQ_INT,
			.srcbus = 0,
			.srcbusirq = (uint8_t)irq,
			.dstapic = ioapic_id,
			.dstirq = (uint8_t)irq,
		};
		memcpy(p, &s, sizeof(s));
		p += sizeof(s);
	}
	/* Section 4.3.5: the 8259 feeds LINT0 (ExtINT) of the BSP; NMI reaches LINT1 of all. */
	struct mpc_intsrc lint[2] = {
		{.type = MP_LINTSRC, .irqtype = MP_IRQ_EXTINT, .dstapic = 0, .dstirq = 0},
		{.type = MP_LINTSRC, .irqtype = MP_IRQ_NMI, .dstapic = 0xff, .dstirq = 1},
	};
	memcpy(p, lint, sizeof(lint));
	p += sizeof(lint);

	uint8_t *cfg = base + sizeof(struct mpf_intel);
	memcpy(cfg, &hdr, sizeof(hdr));
	cfg[offsetof(struct mpc_table, checksum)] = mptable_checksum(cfg, (size_t)(p - cfg));

	struct mpf_intel mpf = {
		.signature = {'_', 'M', 'P', '_'},
		.physptr = (uint32_t)config,
		.length = 1,
		.specification = 4,
	};
	mpf.checksum = mptable_checksum((const uint8_t *)&mpf, sizeof(mpf));
	memcpy(base, &mpf, sizeof(mpf));
	return 0;
}
