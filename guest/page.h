/* SPDX-License-Identifier: MIT */
/*
 * Self-checking page format shared by the test guests, the VMM's I/O device
 * and the benchmarks (which must do exactly the writes the guest does).
 *
 * A page is 512 words: [0] id (guest page frame number, | HM_IO_TAG for I/O
 * records), [1] generation, [2] checksum of words 3..511, then the body.
 * The checksum weighs each word by an odd factor, so any change to a single
 * word changes it; a page with the right checksum but an old generation is
 * caught by the generation table, and a stale table by the vCPU's register
 * sum (see guest/dirtier.c).
 */
#ifndef HM_GUEST_PAGE_H
#define HM_GUEST_PAGE_H

#include <stdint.h>

#define HM_PAGE_WORDS 512
#define HM_PAGE_HDR   3

static inline uint64_t hm_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static inline uint64_t hm_page_body_csum(const uint64_t *w)
{
	uint64_t sum = 0;

	for (uint64_t i = HM_PAGE_HDR; i < HM_PAGE_WORDS; i++)
		sum += w[i] * (2 * i + 1);
	return sum;
}

/* Fill @page with generation @gen of page @id; header last, so a torn page fails. */
static inline void hm_page_fill(uint64_t *w, uint64_t id, uint64_t gen)
{
	uint64_t v = hm_mix64(id ^ (gen << 20));
	uint64_t sum = 0;

	for (uint64_t i = HM_PAGE_HDR; i < HM_PAGE_WORDS; i++) {
		w[i] = v;
		sum += v * (2 * i + 1);
		v += 0x9e3779b97f4a7c15ULL;
	}
	w[0] = id;
	w[1] = gen;
	w[2] = sum;
}

/* True when @page holds a consistent generation @gen of page @id (gen 0: all zero). */
static inline int hm_page_check(const uint64_t *w, uint64_t id, uint64_t gen)
{
	if (gen == 0) {
		for (uint64_t i = 0; i < HM_PAGE_WORDS; i++)
			if (w[i])
				return 0;
		return 1;
	}
	return w[0] == id && w[1] == gen && w[2] == hm_page_body_csum(w);
}

#endif
