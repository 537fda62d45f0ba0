// SPDX-License-Identifier: MIT
/* Freestanding runtime of the test guests. */
#include "guest/rt.h"

void hm_puts(const char *s)
{
	while (*s)
		hm_reg_write(HM_REG_CONSOLE, (uint8_t)*s++);
}

uint64_t hm_block(uint64_t ns)
{
	hm_reg_write(HM_REG_BLOCK, ns);
	return hm_reg_read(HM_REG_POLL);
}

uint64_t hm_ns_to_tsc(const struct hm_bootinfo *bi, uint64_t ns)
{
	/* ns * kHz / 1e6, split to avoid overflow for long waits */
	return (ns / 1000000) * bi->tsc_khz + (ns % 1000000) * bi->tsc_khz / 1000000;
}

/* gcc may emit calls to these even with -ffreestanding */
void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);

void *memset(void *d, int c, unsigned long n)
{
	unsigned char *p = d;

	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
	unsigned char *p = d;
	const unsigned char *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}
