// SPDX-License-Identifier: MIT
/* Unit tests for src/bitmap.h. */
#include "tests/helpers.h"

#include <errno.h>
#include <pthread.h>
#include "src/bitmap.h"

static void init_or_fail(struct bitmap *bm, uint64_t nbits)
{
	assert_int_equal(bitmap_init(bm, nbits), 0);
	assert_non_null(bm->words);
	assert_int_equal(bm->nbits, nbits);
}

static void test_bitmap_init_cleared(void **state)
{
	struct bitmap bm;

	init_or_fail(&bm, 130);
	assert_int_equal(bitmap_count(&bm), 0);
	assert_int_equal(bitmap_find_next(&bm, 0), 130);
	for (uint64_t i = 0; i < 130; i++)
		assert_false(bitmap_test(&bm, i));
	bitmap_exit(&bm);
	assert_null(bm.words);
	assert_int_equal(bm.nbits, 0);
	bitmap_exit(&bm); /* already released: harmless */
}

static void test_bitmap_init_zero_bits(void **state)
{
	struct bitmap a, b;

	init_or_fail(&a, 0);
	init_or_fail(&b, 0);
	assert_int_equal(bitmap_count(&a), 0);
	assert_int_equal(bitmap_find_next(&a, 0), 0);
	assert_int_equal(bitmap_find_next(&a, 5), 0);
	bitmap_set_range(&a, 0, 10);
	assert_int_equal(bitmap_count(&a), 0);
	bitmap_zero(&a);
	assert_int_equal(bitmap_drain_into(&a, &b), 0);
	bitmap_exit(&a);
	bitmap_exit(&b);
}

static void test_bitmap_init_too_big(void **state)
{
	struct bitmap bm;

	assert_int_equal(bitmap_init(&bm, UINT64_MAX), -EINVAL);
	assert_null(bm.words);
	assert_int_equal(bm.nbits, 0);
	bitmap_exit(&bm);
}

static void test_bitmap_exit_zeroed(void **state)
{
	struct bitmap bm = { 0 };

	bitmap_exit(&bm);
	assert_null(bm.words);
}

static void test_bitmap_set_test_clear(void **state)
{
	static const uint64_t bits[] = { 0, 1, 62, 63, 64, 65, 127, 128, 199 };
	struct bitmap bm;

	init_or_fail(&bm, 200);
	for (size_t i = 0; i < ARRAY_SIZE(bits); i++) {
		bitmap_set(&bm, bits[i]);
		assert_true(bitmap_test(&bm, bits[i]));
		assert_int_equal(bitmap_count(&bm), i + 1);
	}
	bitmap_set(&bm, 63); /* idempotent */
	assert_int_equal(bitmap_count(&bm), ARRAY_SIZE(bits));
	assert_false(bitmap_test(&bm, 2));
	assert_false(bitmap_test(&bm, 198));
	for (size_t i = 0; i < ARRAY_SIZE(bits); i++) {
		bitmap_clear(&bm, bits[i]);
		assert_false(bitmap_test(&bm, bits[i]));
		assert_int_equal(bitmap_count(&bm), ARRAY_SIZE(bits) - i - 1);
	}
	bitmap_clear(&bm, 5); /* clearing a clear bit is harmless */
	assert_int_equal(bitmap_count(&bm), 0);
	bitmap_exit(&bm);
}

static void test_bitmap_test_and_set_returns_previous(void **state)
{
	struct bitmap bm;

	init_or_fail(&bm, 100);
	assert_false(bitmap_test_and_set(&bm, 64));
	assert_true(bitmap_test(&bm, 64));
	assert_true(bitmap_test_and_set(&bm, 64));
	assert_false(bitmap_test_and_set(&bm, 99));
	assert_true(bitmap_test_and_set(&bm, 99));
	assert_false(bitmap_test(&bm, 63));
	assert_false(bitmap_test(&bm, 65));
	assert_int_equal(bitmap_count(&bm), 2);
	bitmap_exit(&bm);
}

#define RACE_THREADS 4
#define RACE_BITS    4096

struct race {
	struct bitmap *bm;
	uint64_t won;
};

static void *race_test_and_set(void *arg)
{
	struct race *r = arg;

	for (uint64_t i = 0; i < RACE_BITS; i++)
		if (!bitmap_test_and_set(r->bm, i))
			r->won++;
	return NULL;
}

/* Each bit is won (seen clear) by exactly one thread. */
static void test_bitmap_test_and_set_concurrent(void **state)
{
	struct race r[RACE_THREADS] = { 0 };
	pthread_t t[RACE_THREADS];
	struct bitmap bm;
	uint64_t won = 0;

	init_or_fail(&bm, RACE_BITS);
	for (int i = 0; i < RACE_THREADS; i++) {
		r[i].bm = &bm;
		assert_int_equal(pthread_create(&t[i], NULL, race_test_and_set, &r[i]), 0);
	}
	for (int i = 0; i < RACE_THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		won += r[i].won;
	}
	assert_int_equal(won, RACE_BITS);
	assert_int_equal(bitmap_count(&bm), RACE_BITS);
	bitmap_exit(&bm);
}

static void test_bitmap_find_next_across_words(void **state)
{
	struct bitmap bm;

	init_or_fail(&bm, 256);
	bitmap_set(&bm, 63);
	bitmap_set(&bm, 64);
	bitmap_set(&bm, 200);
	assert_int_equal(bitmap_find_next(&bm, 0), 63);
	assert_int_equal(bitmap_find_next(&bm, 63), 63);
	assert_int_equal(bitmap_find_next(&bm, 64), 64);
	/* skips the whole empty word 2 */
	assert_int_equal(bitmap_find_next(&bm, 65), 200);
	assert_int_equal(bitmap_find_next(&bm, 200), 200);
	assert_int_equal(bitmap_find_next(&bm, 201), 256);
	assert_int_equal(bitmap_find_next(&bm, 256), 256);
	assert_int_equal(bitmap_find_next(&bm, UINT64_MAX), 256);
	bitmap_exit(&bm);
}

static void test_bitmap_find_next_last_bit(void **state)
{
	struct bitmap bm;

	init_or_fail(&bm, 128);
	bitmap_set(&bm, 127);
	assert_int_equal(bitmap_find_next(&bm, 0), 127);
	assert_int_equal(bitmap_find_next(&bm, 127), 127);
	assert_int_equal(bitmap_find_next(&bm, 128), 128);
	bitmap_exit(&bm);

	init_or_fail(&bm, 130);
	bitmap_set(&bm, 129);
	assert_int_equal(bitmap_find_next(&bm, 0), 129);
	assert_int_equal(bitmap_find_next(&bm, 128), 129);
	assert_int_equal(bitmap_find_next(&bm, 129), 129);
	bitmap_clear(&bm, 129);
	assert_int_equal(bitmap_find_next(&bm, 0), 130);
	bitmap_exit(&bm);
}

/* Bits past nbits in the last word are never set, counted or found. */
static void test_bitmap_find_next_partial_word(void **state)
{
	struct bitmap bm;
	uint64_t n = 0;

	init_or_fail(&bm, 100);
	bitmap_set_range(&bm, 0, 1000);
	assert_int_equal(bitmap_count(&bm), 100);
	for (uint64_t b = bitmap_find_next(&bm, 0); b < bm.nbits;
	     b = bitmap_find_next(&bm, b + 1)) {
		assert_int_equal(b, n);
		n++;
	}
	assert_int_equal(n, 100);
	assert_int_equal(bitmap_find_next(&bm, 99), 99);
	assert_int_equal(bitmap_find_next(&bm, 100), 100);
	bitmap_exit(&bm);
}

static void assert_only_range(const struct bitmap *bm, uint64_t first, uint64_t end)
{
	for (uint64_t i = 0; i < bm->nbits; i++)
		if (bitmap_test(bm, i) != (i >= first && i < end))
			fail_msg("bit %llu is %s, expected only [%llu, %llu) set",
				 (unsigned long long)i, bitmap_test(bm, i) ? "set" : "clear",
				 (unsigned long long)first, (unsigned long long)end);
	assert_int_equal(bitmap_count(bm), end - first);
}

static void test_bitmap_set_range_mid_word(void **state)
{
	struct bitmap bm;

	init_or_fail(&bm, 300);
	bitmap_set_range(&bm, 5, 200); /* partial, two full words, partial */
	assert_only_range(&bm, 5, 205);
	bitmap_zero(&bm);
	bitmap_set_range(&bm, 10, 20); /* within one word */
	assert_only_range(&bm, 10, 30);
	bitmap_zero(&bm);
	bitmap_set_range(&bm, 64, 128); /* exactly two whole words */
	assert_only_range(&bm, 64, 192);
	bitmap_zero(&bm);
	bitmap_set_range(&bm, 63, 2); /* straddles a boundary */
	assert_only_range(&bm, 63, 65);
	bitmap_exit(&bm);
}

static void test_bitmap_set_range_clipped(void **state)
{
	struct bitmap bm;

	init_or_fail(&bm, 130);
	bitmap_set_range(&bm, 120, 100);
	assert_only_range(&bm, 120, 130);
	bitmap_zero(&bm);
	/* first + count overflows: still clipped, not wrapped */
	bitmap_set_range(&bm, 1, UINT64_MAX);
	assert_only_range(&bm, 1, 130);
	bitmap_zero(&bm);
	bitmap_set_range(&bm, 0, 130);
	assert_only_range(&bm, 0, 130);
	bitmap_exit(&bm);
}

static void test_bitmap_set_range_empty(void **state)
{
	struct bitmap bm;

	init_or_fail(&bm, 130);
	bitmap_set_range(&bm, 10, 0);
	bitmap_set_range(&bm, 64, 0);
	bitmap_set_range(&bm, 130, 5); /* starts at the end */
	bitmap_set_range(&bm, UINT64_MAX, UINT64_MAX);
	assert_int_equal(bitmap_count(&bm), 0);
	bitmap_exit(&bm);
}

static void test_bitmap_count_and_zero(void **state)
{
	struct bitmap bm;

	init_or_fail(&bm, 1000);
	for (uint64_t i = 0; i < 1000; i += 3)
		bitmap_set(&bm, i);
	assert_int_equal(bitmap_count(&bm), 334);
	bitmap_zero(&bm);
	assert_int_equal(bitmap_count(&bm), 0);
	assert_int_equal(bitmap_find_next(&bm, 0), 1000);
	bitmap_exit(&bm);
}

static void test_bitmap_or_keeps_both(void **state)
{
	struct bitmap dst, src;

	init_or_fail(&dst, 130);
	init_or_fail(&src, 130);
	bitmap_set(&dst, 1);
	bitmap_set(&src, 1);
	bitmap_set(&src, 64);
	bitmap_set(&src, 129);
	bitmap_or(&dst, &src);
	assert_int_equal(bitmap_count(&dst), 3);
	assert_true(bitmap_test(&dst, 64) && bitmap_test(&dst, 129));
	/* the source is left as it was */
	assert_int_equal(bitmap_count(&src), 3);
	bitmap_exit(&dst);
	bitmap_exit(&src);
}

static void test_bitmap_drain_into_moves(void **state)
{
	struct bitmap dst, src;

	init_or_fail(&dst, 130);
	init_or_fail(&src, 130);
	bitmap_set(&dst, 1);
	bitmap_set(&dst, 70);
	bitmap_set(&src, 1);
	bitmap_set(&src, 2);
	bitmap_set(&src, 70);
	bitmap_set(&src, 129);
	/* 1 and 70 were already in dst: only 2 and 129 are new */
	assert_int_equal(bitmap_drain_into(&dst, &src), 2);
	assert_int_equal(bitmap_count(&src), 0);
	assert_int_equal(bitmap_count(&dst), 4);
	assert_true(bitmap_test(&dst, 1));
	assert_true(bitmap_test(&dst, 2));
	assert_true(bitmap_test(&dst, 70));
	assert_true(bitmap_test(&dst, 129));
	/* draining an empty source changes nothing */
	assert_int_equal(bitmap_drain_into(&dst, &src), 0);
	assert_int_equal(bitmap_count(&dst), 4);
	bitmap_exit(&dst);
	bitmap_exit(&src);
}

static void test_bitmap_drain_into_full(void **state)
{
	struct bitmap dst, src;

	init_or_fail(&dst, 200);
	init_or_fail(&src, 200);
	bitmap_set_range(&src, 0, 200);
	assert_int_equal(bitmap_drain_into(&dst, &src), 200);
	assert_int_equal(bitmap_count(&dst), 200);
	assert_int_equal(bitmap_count(&src), 0);
	assert_int_equal(bitmap_find_next(&src, 0), 200);
	bitmap_exit(&dst);
	bitmap_exit(&src);
}

struct setter {
	struct bitmap *bm;
	uint64_t first, step;
};

static void *set_bits(void *arg)
{
	struct setter *s = arg;

	for (uint64_t i = s->first; i < s->bm->nbits; i += s->step)
		bitmap_set(s->bm, i);
	return NULL;
}

/* Bits set while draining end up in dst or are still in src; none is lost. */
static void test_bitmap_drain_into_concurrent(void **state)
{
	struct setter s[RACE_THREADS];
	pthread_t t[RACE_THREADS];
	struct bitmap dst, src;
	uint64_t moved = 0;

	init_or_fail(&dst, 1 << 16);
	init_or_fail(&src, 1 << 16);
	for (int i = 0; i < RACE_THREADS; i++) {
		s[i] = (struct setter){ .bm = &src, .first = (uint64_t)i, .step = RACE_THREADS };
		assert_int_equal(pthread_create(&t[i], NULL, set_bits, &s[i]), 0);
	}
	for (int round = 0; round < 1000; round++)
		moved += bitmap_drain_into(&dst, &src);
	for (int i = 0; i < RACE_THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	moved += bitmap_drain_into(&dst, &src);
	assert_int_equal(moved, 1 << 16);
	assert_int_equal(bitmap_count(&dst), 1 << 16);
	assert_int_equal(bitmap_count(&src), 0);
	bitmap_exit(&dst);
	bitmap_exit(&src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bitmap_init_cleared),
		cmocka_unit_test(test_bitmap_init_zero_bits),
		cmocka_unit_test(test_bitmap_init_too_big),
		cmocka_unit_test(test_bitmap_exit_zeroed),
		cmocka_unit_test(test_bitmap_set_test_clear),
		cmocka_unit_test(test_bitmap_test_and_set_returns_previous),
		cmocka_unit_test(test_bitmap_test_and_set_concurrent),
		cmocka_unit_test(test_bitmap_find_next_across_words),
		cmocka_unit_test(test_bitmap_find_next_last_bit),
		cmocka_unit_test(test_bitmap_find_next_partial_word),
		cmocka_unit_test(test_bitmap_set_range_mid_word),
		cmocka_unit_test(test_bitmap_set_range_clipped),
		cmocka_unit_test(test_bitmap_set_range_empty),
		cmocka_unit_test(test_bitmap_or_keeps_both),
		cmocka_unit_test(test_bitmap_count_and_zero),
		cmocka_unit_test(test_bitmap_drain_into_moves),
		cmocka_unit_test(test_bitmap_drain_into_full),
		cmocka_unit_test(test_bitmap_drain_into_concurrent),
	};

	return cmocka_run_group_tests_name("bitmap", tests, NULL, NULL);
}
