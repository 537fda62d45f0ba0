/* SPDX-License-Identifier: MIT */
/*
 * The multiboot image of a test guest (make compare: QEMU boots it with
 * -kernel). Shared by the ring-0 stub (guest/mb_stub.S) and the tool that
 * writes the image (tools/mbimage.c); constants only, so the assembler can
 * include it.
 *
 * The image is one flat file that a multiboot loader puts at HM_MB_LOAD_GPA
 * (the a.out kludge: QEMU refuses ELF64 multiboot kernels):
 *
 *   +0                  the stub: multiboot header, descriptor, code (< 4 KiB)
 *   +HM_MB_STUB_MAX     template of guest-physical [0, tmpl_len): boot info,
 *                       GDT, TSS, page tables, mailbox page table, mailbox
 *   +HM_MB_STUB_MAX + tmpl_len   the guest's flat image (for HM_IMAGE_GPA)
 *
 * HM_MB_LOAD_GPA lies between the vCPU stacks and the data area
 * (guest/abi.h), which the guest never touches, so the copy the stub runs
 * from cannot be in the guest's way; QEMU's multiboot info follows it there.
 */
#ifndef HM_GUEST_MB_H
#define HM_GUEST_MB_H

#define HM_MB_MAGIC    0x1badb002 /* multiboot header magic */
#define HM_MB_FLAGS    0x00010000 /* the load addresses are in the header (a.out kludge) */
#define HM_MB_LOAD_GPA 0x300000
#define HM_MB_STUB_MAX 0x1000
/* the descriptor tools/mbimage.c fills, right after the 32-byte multiboot header */
#define HM_MB_DESC_OFF	 32
#define HM_MB_DESC_MAGIC 0x31626d68 /* "hmb1" */
/* the template must end below the EBDA and the VGA/ROM hole of a PC */
#define HM_MB_TMPL_MAX 0x9f000

#ifndef __ASSEMBLER__
#include <stdint.h>

/*
 * At image offset HM_MB_DESC_OFF, little-endian; what the stub copies and
 * the state it enters the guest with. Lengths in 4-byte words (rep movsl).
 */
struct hm_mb_desc {
	uint32_t magic;	      /* HM_MB_DESC_MAGIC: the stub is the one this tool knows */
	uint32_t tmpl_src;    /* address of the template once loaded */
	uint32_t tmpl_words;  /* template length; it is copied to guest-physical 0 */
	uint32_t image_src;   /* address of the guest image once loaded */
	uint32_t image_words; /* image length */
	uint32_t image_dst;   /* where the image goes (HM_IMAGE_GPA) */
	uint32_t cr3;	      /* the PML4 in the template */
	uint32_t entry;	      /* the guest's RIP */
	uint32_t stack;	      /* the guest's RSP: vCPU 0's stack top */
	uint32_t boot;	      /* the guest's RSI: the boot info */
	uint16_t pad;
	uint16_t gdt_limit; /* lgdt operand: limit, then base */
	uint32_t gdt_base;
};
#endif

#endif
