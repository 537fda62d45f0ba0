// SPDX-License-Identifier: MIT
/*
 * idle: touches nothing and never spins. HLT is privileged at CPL 3, so the
 * guest asks the VMM to block it through the device window; the VMM wakes it
 * early when a command is pending. Verify has nothing to check: it reports ok.
 */
#include "guest/rt.h"

uint64_t hm_main(uint64_t cpu, const struct hm_bootinfo *bi)
{
	uint64_t cmd = HM_CMD_RUN;

	(void)bi;
	if (cpu == 0)
		hm_puts("idle: up\n");
	for (;;) {
		if (cmd == HM_CMD_STOP)
			return 0;
		if (cmd == HM_CMD_VERIFY) {
			hm_reg_write(HM_REG_V_BAD, 0);
			hm_reg_write(HM_REG_V_FIRST, HM_NO_PAGE);
			hm_reg_write(HM_REG_V_PAGES, 0);
			hm_reg_write(HM_REG_V_DONE, HM_VERIFY_OK);
		}
		cmd = hm_block(1000000000ULL);
	}
}
