// SPDX-License-Identifier: MIT
#include "src/bitmap.h"

#include <errno.h>
#include <stdlib.h>

#define WORD(bit) ((bit) / 64)
#define MASK(bit) (1ULL << ((bit) % 64))

static uint64_t nwords(uint64_t nbits)
{
	return DIV_ROUND_UP(nbits, 64);
}

int bitmap_init(struct bitmap *bm, uint64_t nbits)
{
	bm->words = NULL;
	bm->nbits = 0;
	if (nbits > (UINT64_MAX - 63) || nwords(nbits) > SIZE_MAX / 8)
		return -EINVAL;
	bm->words = calloc(nwords(nbits) ? nwords(nbits) : 1, sizeof(uint64_t));
	if (!bm->words)
		return -ENOMEM;
	bm->nbits = nbits;
	return 0;
}

void bitmap_exit(struct bitmap *bm)
{
	free(bm->words);
	bm->words = NULL;
	bm->nbits = 0;
}

void bitmap_set(struct bitmap *bm, uint64_t bit)
{
	assert(bit < bm->nbits);
	__atomic_fetch_or(&bm->words[WORD(bit)], MASK(bit), __ATOMIC_RELAXED);
}

void bitmap_clear(struct bitmap *bm, uint64_t bit)
{
	assert(bit < bm->nbits);
	__atomic_fetch_and(&bm->words[WORD(bit)], ~MASK(bit), __ATOMIC_RELAXED);
}

bool bitmap_test(const struct bitmap *bm, uint64_t bit)
{
	assert(bit < bm->nbits);
	return __atomic_load_n(&bm->words[WORD(bit)], __ATOMIC_RELAXED) & MASK(bit);
}

bool bitmap_test_and_set(struct bitmap *bm, uint64_t bit)
{
	assert(bit < bm->nbits);
	return __atomic_fetch_or(&bm->words[WORD(bit)], MASK(bit), __ATOMIC_ACQ_REL) & MASK(bit);
}

void bitmap_set_range(struct bitmap *bm, uint64_t first, uint64_t count)
{
	uint64_t end;

	if (first >= bm->nbits)
		return;
	end = count > bm->nbits - first ? bm->nbits : first + count;
	while (first < end && first % 64)
		bitmap_set(bm, first++);
	for (; first + 64 <= end; first += 64)
		__atomic_store_n(&bm->words[WORD(first)], ~0ULL, __ATOMIC_RELAXED);
	while (first < end)
		bitmap_set(bm, first++);
}

uint64_t bitmap_find_next(const struct bitmap *bm, uint64_t from)
{
	uint64_t w;

	if (from >= bm->nbits)
		return bm->nbits;
	w = __atomic_load_n(&bm->words[WORD(from)], __ATOMIC_RELAXED) & (~0ULL << (from % 64));
	for (uint64_t i = WORD(from);;) {
		if (w) {
			uint64_t bit = i * 64 + (uint64_t)__builtin_ctzll(w);

			return bit < bm->nbits ? bit : bm->nbits;
		}
		if (++i >= nwords(bm->nbits))
			return bm->nbits;
		w = __atomic_load_n(&bm->words[i], __ATOMIC_RELAXED);
	}
}

uint64_t bitmap_count(const struct bitmap *bm)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < nwords(bm->nbits); i++)
		n += (uint64_t)__builtin_popcountll(
		    __atomic_load_n(&bm->words[i], __ATOMIC_RELAXED));
	return n;
}

void bitmap_zero(struct bitmap *bm)
{
	for (uint64_t i = 0; i < nwords(bm->nbits); i++)
		__atomic_store_n(&bm->words[i], 0, __ATOMIC_RELAXED);
}

uint64_t bitmap_drain_into(struct bitmap *dst, struct bitmap *src)
{
	uint64_t moved = 0;

	assert(dst->nbits == src->nbits);
	for (uint64_t i = 0; i < nwords(src->nbits); i++) {
		uint64_t w;

		if (!__atomic_load_n(&src->words[i], __ATOMIC_RELAXED))
			continue;
		w = __atomic_exchange_n(&src->words[i], 0, __ATOMIC_ACQ_REL);
		moved += (uint64_t)__builtin_popcountll(w & ~dst->words[i]);
		__atomic_fetch_or(&dst->words[i], w, __ATOMIC_RELAXED);
	}
	return moved;
}

void bitmap_or(struct bitmap *dst, const struct bitmap *src)
{
	assert(dst->nbits == src->nbits);
	for (uint64_t i = 0; i < nwords(src->nbits); i++)
		dst->words[i] |= src->words[i];
}

void bitmap_copy(struct bitmap *dst, const struct bitmap *src)
{
	assert(dst->nbits == src->nbits);
	for (uint64_t i = 0; i < nwords(src->nbits); i++)
		__atomic_store_n(&dst->words[i], __atomic_load_n(&src->words[i], __ATOMIC_RELAXED),
				 __ATOMIC_RELAXED);
}
