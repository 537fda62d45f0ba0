// SPDX-License-Identifier: MIT
/* Unit tests for src/mem.h. */
#include "tests/helpers.h"

#include <errno.h>
#include <string.h>
#include "guest/abi.h"
#include "src/mem.h"

#define SMALL_PAGES 16ULL
#define SMALL_SIZE  (SMALL_PAGES * HM_PAGE_SIZE)

static int setup_small(void **state)
{
	static struct guest_mem gm;

	if (mem_init(&gm, SMALL_SIZE))
		return -1;
	*state = &gm;
	return 0;
}

static int teardown_small(void **state)
{
	mem_exit(*state);
	return 0;
}

static void assert_released(const struct guest_mem *gm)
{
	assert_null(gm->hva);
	assert_int_equal(gm->size, 0);
	assert_int_equal(gm->pages, 0);
}

static void test_mem_init_ok(void **state)
{
	struct guest_mem gm;

	assert_int_equal(mem_init(&gm, SMALL_SIZE), 0);
	assert_non_null(gm.hva);
	assert_int_equal(gm.size, SMALL_SIZE);
	assert_int_equal(gm.pages, SMALL_PAGES);
	mem_exit(&gm);
	assert_released(&gm);
	mem_exit(&gm); /* already released: harmless */
	assert_released(&gm);
}

static void test_mem_init_size_zero(void **state)
{
	struct guest_mem gm;

	memset(&gm, 0xa5, sizeof(gm));
	assert_int_equal(mem_init(&gm, 0), -EINVAL);
	assert_released(&gm);
}

static void test_mem_init_size_not_page_multiple(void **state)
{
	static const uint64_t sizes[] = { 1, HM_PAGE_SIZE - 1, HM_PAGE_SIZE + 1, (1ULL << 30) + 512,
					  UINT64_MAX };
	struct guest_mem gm;

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		memset(&gm, 0xa5, sizeof(gm));
		assert_int_equal(mem_init(&gm, sizes[i]), -EINVAL);
		assert_released(&gm);
	}
}

static void test_mem_exit_zeroed(void **state)
{
	struct guest_mem gm = { 0 };

	mem_exit(&gm);
	assert_released(&gm);
}

static void test_mem_gpa_to_hva_in_bounds(void **state)
{
	const struct guest_mem *gm = *state;

	assert_ptr_equal(mem_gpa_to_hva(gm, 0, 1), gm->hva);
	assert_ptr_equal(mem_gpa_to_hva(gm, 0, SMALL_SIZE), gm->hva);
	assert_ptr_equal(mem_gpa_to_hva(gm, HM_PAGE_SIZE, HM_PAGE_SIZE), gm->hva + HM_PAGE_SIZE);
	assert_ptr_equal(mem_gpa_to_hva(gm, SMALL_SIZE - 8, 8), gm->hva + SMALL_SIZE - 8);
}

static void test_mem_gpa_to_hva_last_byte(void **state)
{
	const struct guest_mem *gm = *state;

	assert_ptr_equal(mem_gpa_to_hva(gm, SMALL_SIZE - 1, 1), gm->hva + SMALL_SIZE - 1);
}

static void test_mem_gpa_to_hva_one_past_end(void **state)
{
	const struct guest_mem *gm = *state;

	assert_null(mem_gpa_to_hva(gm, SMALL_SIZE, 1));
	assert_null(mem_gpa_to_hva(gm, SMALL_SIZE + HM_PAGE_SIZE, 1));
	assert_null(mem_gpa_to_hva(gm, UINT64_MAX, 1));
}

static void test_mem_gpa_to_hva_len_crosses_end(void **state)
{
	const struct guest_mem *gm = *state;

	assert_null(mem_gpa_to_hva(gm, SMALL_SIZE - 8, 16));
	assert_null(mem_gpa_to_hva(gm, SMALL_SIZE - 1, 2));
	assert_null(mem_gpa_to_hva(gm, 0, SMALL_SIZE + 1));
	assert_null(mem_gpa_to_hva(gm, 8, UINT64_MAX));
}

static void test_mem_gpa_to_hva_overflow(void **state)
{
	const struct guest_mem *gm = *state;

	assert_null(mem_gpa_to_hva(gm, UINT64_MAX - 1, 16));
	assert_null(mem_gpa_to_hva(gm, UINT64_MAX - 15, 16));
	assert_null(mem_gpa_to_hva(gm, 1, UINT64_MAX));
	assert_null(mem_gpa_to_hva(gm, UINT64_MAX, UINT64_MAX));
}

static void test_mem_gpa_to_hva_len_zero(void **state)
{
	const struct guest_mem *gm = *state;

	assert_ptr_equal(mem_gpa_to_hva(gm, 0, 0), gm->hva);
	assert_ptr_equal(mem_gpa_to_hva(gm, SMALL_SIZE - 1, 0), gm->hva + SMALL_SIZE - 1);
	assert_null(mem_gpa_to_hva(gm, SMALL_SIZE, 0));
	assert_null(mem_gpa_to_hva(gm, UINT64_MAX, 0));
}

static void test_mem_gpa_to_hva_unmapped(void **state)
{
	struct guest_mem gm = { 0 };

	assert_null(mem_gpa_to_hva(&gm, 0, 1));
	assert_null(mem_gpa_to_hva(&gm, 0, 0));
}

static void test_mem_range_ok_bounds(void **state)
{
	const struct guest_mem *gm = *state;

	assert_true(mem_range_ok(gm, 0, SMALL_SIZE));
	assert_true(mem_range_ok(gm, SMALL_SIZE - 1, 1));
	assert_true(mem_range_ok(gm, SMALL_SIZE - 1, 0));
	assert_true(mem_range_ok(gm, 0, 0));
	assert_false(mem_range_ok(gm, 0, SMALL_SIZE + 1));
	assert_false(mem_range_ok(gm, SMALL_SIZE, 0));
	assert_false(mem_range_ok(gm, SMALL_SIZE, 1));
	assert_false(mem_range_ok(gm, SMALL_SIZE - 8, 16));
	assert_false(mem_range_ok(gm, UINT64_MAX - 1, 16));
	assert_false(mem_range_ok(gm, 16, UINT64_MAX));
}

static void test_mem_resident_pages_fresh(void **state)
{
	const struct guest_mem *gm = *state;

	assert_int_equal(mem_resident_pages(gm), 0);
}

static void test_mem_resident_pages_touched(void **state)
{
	struct guest_mem gm;
	static const uint64_t touch[] = { 0, 1, 7, 100, 255 };

	assert_int_equal(mem_init(&gm, 256 * HM_PAGE_SIZE), 0);
	for (size_t i = 0; i < ARRAY_SIZE(touch); i++) {
		uint8_t *p = mem_gpa_to_hva(&gm, touch[i] * HM_PAGE_SIZE + 17, 1);

		assert_non_null(p);
		*(volatile uint8_t *)p = 0x5a;
		assert_int_equal(mem_resident_pages(&gm), (int64_t)(i + 1));
	}
	/* touching a page again does not count it twice */
	gm.hva[HM_PAGE_SIZE * 7] = 1;
	assert_int_equal(mem_resident_pages(&gm), (int64_t)ARRAY_SIZE(touch));
	mem_exit(&gm);
}

/* Spans several mincore() chunks (1 GiB each): 8 GiB of untouched RAM is free. */
static void test_mem_init_large_noreserve(void **state)
{
	const uint64_t size = 8ULL << 30;
	struct guest_mem gm;

	assert_int_equal(mem_init(&gm, size), 0);
	assert_int_equal(gm.pages, size / HM_PAGE_SIZE);
	assert_int_equal(mem_resident_pages(&gm), 0);
	/* one page in the middle of a later chunk and the very last page */
	*(volatile uint8_t *)mem_gpa_to_hva(&gm, (5ULL << 30) + 3 * HM_PAGE_SIZE, 1) = 1;
	*(volatile uint8_t *)mem_gpa_to_hva(&gm, size - 1, 1) = 1;
	assert_int_equal(mem_resident_pages(&gm), 2);
	assert_null(mem_gpa_to_hva(&gm, size, 1));
	mem_exit(&gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mem_init_ok),
		cmocka_unit_test(test_mem_init_size_zero),
		cmocka_unit_test(test_mem_init_size_not_page_multiple),
		cmocka_unit_test(test_mem_init_large_noreserve),
		cmocka_unit_test(test_mem_exit_zeroed),
		cmocka_unit_test_setup_teardown(test_mem_gpa_to_hva_in_bounds, setup_small,
						teardown_small),
		cmocka_unit_test_setup_teardown(test_mem_gpa_to_hva_last_byte, setup_small,
						teardown_small),
		cmocka_unit_test_setup_teardown(test_mem_gpa_to_hva_one_past_end, setup_small,
						teardown_small),
		cmocka_unit_test_setup_teardown(test_mem_gpa_to_hva_len_crosses_end, setup_small,
						teardown_small),
		cmocka_unit_test_setup_teardown(test_mem_gpa_to_hva_overflow, setup_small,
						teardown_small),
		cmocka_unit_test_setup_teardown(test_mem_gpa_to_hva_len_zero, setup_small,
						teardown_small),
		cmocka_unit_test(test_mem_gpa_to_hva_unmapped),
		cmocka_unit_test_setup_teardown(test_mem_range_ok_bounds, setup_small,
						teardown_small),
		cmocka_unit_test_setup_teardown(test_mem_resident_pages_fresh, setup_small,
						teardown_small),
		cmocka_unit_test(test_mem_resident_pages_touched),
	};

	return cmocka_run_group_tests_name("mem", tests, NULL, NULL);
}
