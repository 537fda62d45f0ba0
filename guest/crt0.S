/*
 * Guest entry. The VMM enters at CPL 3 in long mode with RSP at this vCPU's
 * stack top, RDI = vCPU index and RSI = boot info address. r15 belongs to
 * the dirtier's running sum (-ffixed-r15): nothing here touches it.
 */
	.section .text.entry, "ax"
	.globl _start
_start:
	andq	$-16, %rsp
	call	hm_main
	movq	$0x7fffe00050, %rcx	/* HM_DEVWIN_GPA + HM_REG_EXIT */
	movq	%rax, (%rcx)
1:	jmp	1b
	.section .note.GNU-stack, "", @progbits
