// SPDX-License-Identifier: MIT
/* fault: misbehaves on purpose, so tests can check the VMM reports it cleanly. */
#include "guest/rt.h"

uint64_t hm_main(uint64_t cpu, const struct hm_bootinfo *bi)
{
	if (cpu != 0)
		for (;;)
			if (hm_block(1000000000ULL) == HM_CMD_STOP)
				return 0;
	hm_puts("fault: about to misbehave\n");
	switch (bi->fault_kind) {
	case HM_FAULT_UD:
		__asm__ __volatile__("ud2");
		break;
	case HM_FAULT_PF:
		*(volatile uint64_t *)0x8000000000ULL = 1; /* PML4[1] is not present */
		break;
	case HM_FAULT_MMIO:
		*(volatile uint64_t *)(HM_DEVWIN_GPA + 0x2000) = 1;
		break;
	default:
		hm_reg_write(HM_REG_PANIC, 0xdead);
		break;
	}
	for (;;)
		hm_block(1000000000ULL);
}
