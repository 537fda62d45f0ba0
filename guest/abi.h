/* SPDX-License-Identifier: MIT */
/*
 * The contract between the VMM and the built-in test guests.
 *
 * Included by freestanding guest code and by the VMM alike, so it holds only
 * fixed-width types and constants. Everything here is guest ABI: changing a
 * value breaks migration between hybridmig builds, so bump HM_BOOT_MAGIC.
 *
 * Guest-physical layout (all set up by the VMM before the first KVM_RUN):
 *
 *   0x000000  boot info page (struct hm_bootinfo), read-only by convention
 *   0x001000  GDT, then TSS
 *   0x003000  page tables: PML4, PDPT, PDs (2 MiB user pages, identity map)
 *   0x100000  guest image (flat binary, entry at its first byte)
 *   0x200000  vCPU stacks, HM_STACK_SIZE each
 *   0x400000  data area: I/O ring control page and ring, generation table,
 *             working set (addresses in struct hm_bootinfo)
 *   HM_DEVWIN_GPA  device window: an unbacked page; loads and stores exit to
 *             the VMM as KVM_EXIT_MMIO (in the multiboot image QEMU boots,
 *             a RAM mailbox instead: guest/mb.h)
 */
#ifndef HM_GUEST_ABI_H
#define HM_GUEST_ABI_H

#include <stdint.h>

#define HM_PAGE_SIZE	4096ULL
#define HM_PAGE_SHIFT	12
#define HM_BOOT_MAGIC	0x31746f6f426d4868ULL /* "hHmBoot1" */
#define HM_BOOTINFO_GPA 0x0ULL
#define HM_GDT_GPA	0x1000ULL
#define HM_TSS_GPA	0x2000ULL
#define HM_PGTABLE_GPA	0x3000ULL
#define HM_PGTABLE_END	0x100000ULL
#define HM_IMAGE_GPA	0x100000ULL
#define HM_IMAGE_MAX	0x100000ULL
#define HM_STACK_GPA	0x200000ULL
#define HM_STACK_SIZE	0x10000ULL
#define HM_DATA_GPA	0x400000ULL
#define HM_MAX_VCPUS	8
/* 512 GiB - 2 MiB: above any RAM size we accept, in the last PD of PML4[0] */
#define HM_DEVWIN_GPA 0x7fffe00000ULL
/* page tables between HM_PGTABLE_GPA and _END hold PDs for this much */
#define HM_MAX_RAM (128ULL << 30)

/* Device window registers: 8-byte accesses at HM_DEVWIN_GPA + offset. */
enum hm_devwin_reg {
	HM_REG_CONSOLE = 0x00,	/* store: one byte of console output */
	HM_REG_PROGRESS = 0x08, /* store: this vCPU's cumulative work units */
	HM_REG_POLL = 0x10,	/* load: next command for this vCPU (enum hm_cmd) */
	HM_REG_BLOCK = 0x18,	/* store: block this vCPU up to N ns; a later POLL answers */
	HM_REG_V_BAD = 0x20,	/* store: verify, number of bad pages found */
	HM_REG_V_FIRST = 0x28,	/* store: verify, first bad guest page frame number */
	HM_REG_V_PAGES = 0x30,	/* store: verify, pages checked */
	HM_REG_V_DONE = 0x38,	/* store: verify finished; value = HM_VERIFY_OK or _BAD */
	HM_REG_IO_SEEN = 0x40,	/* store: I/O records the guest consumed and checked */
	HM_REG_PANIC = 0x48,	/* store: guest detected an internal error; value = code */
	HM_REG_EXIT = 0x50,	/* store: guest main returned; vCPU is done */
	HM_REG_TSC_GAP = 0x58,	/* store: longest TSC jump the guest saw between two steps */
	HM_DEVWIN_REGS = 0x60,
};

/* Commands answered to HM_REG_POLL loads. */
enum hm_cmd {
	HM_CMD_RUN = 0,	   /* carry on */
	HM_CMD_VERIFY = 1, /* stop writing, verify, report, carry on */
	HM_CMD_STOP = 2,   /* return from main */
};

#define HM_VERIFY_OK  1
#define HM_VERIFY_BAD 2
#define HM_NO_PAGE    (~0ULL)

enum hm_pattern {
	HM_PATTERN_SEQ = 0,
	HM_PATTERN_RANDOM = 1,
	HM_PATTERN_ZIPF = 2,
};

/*
 * I/O ring: the DMA device fills slots with self-checking records (the same
 * page format as working-set pages, tagged HM_IO_TAG) and publishes `prod`;
 * vCPU 0 checks records up to `prod` and publishes `cons`. The device never
 * writes a slot the guest has not consumed, so records are never torn.
 */
#define HM_IO_TAG (1ULL << 63)
struct hm_io_ctl {
	volatile uint64_t prod; /* written by the device: records published */
	volatile uint64_t cons; /* written by the guest: records consumed */
	volatile uint64_t bad;	/* written by the guest: bad records seen */
	volatile uint64_t first_bad_gfn;
};

/* One per VM at HM_BOOTINFO_GPA, little-endian, filled by the VMM. */
struct hm_bootinfo {
	uint64_t magic;
	uint64_t tsc_khz; /* TSC frequency the guest times itself with */
	uint64_t nr_vcpus;
	uint64_t ram_bytes;
	uint64_t devwin_gpa;
	/* dirtier parameters */
	uint64_t ws_gpa;   /* first working-set page */
	uint64_t ws_pages; /* working-set size in pages */
	uint64_t gen_gpa;  /* uint64_t generation per working-set page */
	uint64_t rate;	   /* pages/s over all vCPUs, 0 = unlimited */
	uint64_t pattern;  /* enum hm_pattern */
	uint64_t seed;
	/* I/O ring, io_slots == 0 when the device is off */
	uint64_t io_ctl_gpa;
	uint64_t io_ring_gpa;
	uint64_t io_slots;
	/* fault guest */
	uint64_t fault_kind;
	uint64_t report_ns; /* interval between progress reports */
	uint64_t fill;	    /* dirtier: write each page once, then idle */
	uint64_t prefill;   /* dirtier: write each page once at full speed, then at `rate` */
};

enum hm_fault_kind {
	HM_FAULT_UD = 0,   /* undefined opcode */
	HM_FAULT_PF = 1,   /* write to an unmapped virtual address */
	HM_FAULT_MMIO = 2, /* store to guest-physical memory nobody backs */
	HM_FAULT_PANIC = 3 /* the guest reports its own failure */
};

#endif
