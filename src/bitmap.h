/* SPDX-License-Identifier: MIT */
/*
 * Page bitmaps (dirty, sent, requested, received). Set/test-and-set/clear
 * are atomic, so a device thread may mark pages while the migration thread
 * harvests them; the scans are not atomic as a whole.
 */
#ifndef HM_BITMAP_H
#define HM_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "src/util.h"

struct bitmap {
	uint64_t *words; /* owned, nbits rounded up to 64 */
	uint64_t nbits;
};

/* Allocate a cleared bitmap of @nbits bits. Returns 0 or -ENOMEM/-EINVAL. */
int bitmap_init(struct bitmap *bm, uint64_t nbits) __must_check;
/* Free; accepts a zeroed or already released object. */
void bitmap_exit(struct bitmap *bm);
void bitmap_set(struct bitmap *bm, uint64_t bit);
void bitmap_clear(struct bitmap *bm, uint64_t bit);
bool bitmap_test(const struct bitmap *bm, uint64_t bit);
/* Set @bit and return its previous value, atomically. */
bool bitmap_test_and_set(struct bitmap *bm, uint64_t bit);
/* Set bits [first, first + count), clipped to the bitmap. */
void bitmap_set_range(struct bitmap *bm, uint64_t first, uint64_t count);
/* First set bit at or after @from, or bm->nbits when there is none. */
uint64_t bitmap_find_next(const struct bitmap *bm, uint64_t from);
uint64_t bitmap_count(const struct bitmap *bm);
void bitmap_zero(struct bitmap *bm);
/* dst = src; sizes must match. Not atomic as a whole. */
void bitmap_copy(struct bitmap *dst, const struct bitmap *src);
/* dst |= src (not atomic: no one may change either meanwhile). Sizes must match. */
void bitmap_or(struct bitmap *dst, const struct bitmap *src);
/*
 * Move every set bit of @src into @dst (dst |= src; src = 0), word by word
 * with atomic exchange so concurrent setters lose nothing. Sizes must match.
 * Returns the number of bits that were newly set in @dst.
 */
uint64_t bitmap_drain_into(struct bitmap *dst, struct bitmap *src);

#endif
