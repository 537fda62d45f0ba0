/* SPDX-License-Identifier: MIT */
/* Freestanding runtime of the test guests: device-window access, time, console. */
#ifndef HM_GUEST_RT_H
#define HM_GUEST_RT_H

#include <stdint.h>
#include "guest/abi.h"

#define barrier() __asm__ __volatile__("" ::: "memory")

static inline void hm_reg_write(enum hm_devwin_reg reg, uint64_t v)
{
	*(volatile uint64_t *)(HM_DEVWIN_GPA + reg) = v;
}

static inline uint64_t hm_reg_read(enum hm_devwin_reg reg)
{
	return *(volatile uint64_t *)(HM_DEVWIN_GPA + reg);
}

static inline uint64_t hm_rdtsc(void)
{
	uint32_t lo;
	uint32_t hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void hm_cpu_relax(void)
{
	__asm__ __volatile__("pause" ::: "memory");
}

void hm_puts(const char *s);
/* Ask the VMM to block this vCPU for up to @ns nanoseconds; returns the next command. */
uint64_t hm_block(uint64_t ns);
/* TSC ticks in @ns nanoseconds, from the frequency the VMM gave. */
uint64_t hm_ns_to_tsc(const struct hm_bootinfo *bi, uint64_t ns);

uint64_t hm_main(uint64_t cpu, const struct hm_bootinfo *bi);

#endif
