/*
 * Ring-0 stub of the multiboot image of a test guest (make compare; layout
 * in guest/mb.h). A multiboot loader (QEMU's -kernel) enters mb_entry in
 * 32-bit protected mode, paging off, interrupts off. The stub sets up what
 * hybridmig's VMM sets up before the first KVM_RUN and enters the same flat
 * guest image the same way: long mode, CPL 3, RSP = vCPU 0's stack top,
 * RDI = 0, RSI = boot info.
 *
 * Everything the VMM writes into guest memory (boot info, GDT, TSS, page
 * tables) was built at image time by tools/mbimage.c with the VMM's own code
 * and comes as one template: the stub copies it and the image, then loads
 * the control registers. It is a few dozen instructions on purpose: under
 * PVM, ring-0 code is emulated. Interrupts stay off in the guest (there is
 * no IDT); nothing here reads the multiboot information.
 *
 * QEMU has no device window: the template's page tables map the window's
 * page onto a RAM mailbox (tools/mbimage.c), so the guest's register stores
 * land in RAM, its POLL loads read 0 (run) and nothing exits.
 *
 * The selectors are those of src/x86.c's GDT, which the template carries.
 */
#include "guest/mb.h"

#define SEL_KERNEL_CS 0x08
#define SEL_USER_DS   0x2b
#define SEL_USER_CS   0x33
#define SEL_TSS	      0x40
/* as src/x86.c: PG AM WP NE ET MP PE; PAE OSFXSR OSXMMEXCPT; EFER.LME */
#define CR0_BITS  0x80050033
#define CR4_BITS  0x620
#define MSR_EFER  0xc0000080
#define EFER_LME  0x100
/* the guest's RFLAGS: IF off (no IDT), IOPL 0 (it does no port I/O) */
#define RFLAGS	  0x2

/* struct hm_mb_desc (guest/mb.h) and the fields after it, as offsets */
#define D_TMPL_SRC    (desc + 4)
#define D_TMPL_WORDS  (desc + 8)
#define D_IMAGE_SRC   (desc + 12)
#define D_IMAGE_WORDS (desc + 16)
#define D_IMAGE_DST   (desc + 20)
#define D_CR3	      (desc + 24)
#define D_ENTRY	      (desc + 28)
#define D_STACK	      (desc + 32)
#define D_BOOT	      (desc + 36)
#define D_GDTR	      (desc + 42) /* 16-bit limit, 32-bit base */

	.section .text.mb, "ax"
	.code32
	.globl	mb_header
mb_header:
	.long	HM_MB_MAGIC
	.long	HM_MB_FLAGS
	.long	-(HM_MB_MAGIC + HM_MB_FLAGS)
	.long	mb_header	/* header_addr */
	.long	mb_header	/* load_addr: the file from its first byte */
	.long	0		/* load_end_addr: to the end of the file */
	.long	0		/* bss_end_addr: no bss */
	.long	mb_entry	/* entry_addr */
	.org	mb_header + HM_MB_DESC_OFF
desc:	/* filled by tools/mbimage.c */
	.long	HM_MB_DESC_MAGIC
	.fill	11, 4, 0

	.globl	mb_entry
mb_entry:
	cld
	movl	D_TMPL_SRC, %esi	/* boot info, GDT, TSS, page tables to 0 */
	xorl	%edi, %edi
	movl	D_TMPL_WORDS, %ecx
	rep movsl
	movl	D_IMAGE_SRC, %esi	/* the guest to HM_IMAGE_GPA */
	movl	D_IMAGE_DST, %edi
	movl	D_IMAGE_WORDS, %ecx
	rep movsl
	lgdt	D_GDTR
	movl	$CR4_BITS, %eax
	movl	%eax, %cr4
	movl	D_CR3, %eax
	movl	%eax, %cr3
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_LME, %eax
	wrmsr
	movl	$CR0_BITS, %eax		/* paging on: compatibility mode */
	movl	%eax, %cr0
	ljmp	$SEL_KERNEL_CS, $long64

	.code64
long64:
	movw	$SEL_TSS, %ax
	ltr	%ax
	movl	D_STACK, %eax
	movq	%rax, %rsp
	pushq	$SEL_USER_DS		/* iretq frame: SS, RSP, RFLAGS, CS, RIP */
	pushq	%rax
	pushq	$RFLAGS
	pushq	$SEL_USER_CS
	movl	D_ENTRY, %eax
	pushq	%rax
	movl	D_BOOT, %esi
	xorl	%edi, %edi		/* vCPU 0 */
	iretq
	.section .note.GNU-stack, "", @progbits
