// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/proto.h: page batch frames (PAGES), raw and LZ4, zero
 * pages among them: round trips and every rejection of the decoder, from a
 * truncated head to a page outside guest RAM.
 */
#include "tests/helpers.h"

#include <errno.h>
#include <string.h>
#include "src/proto.h"
#include "tests/frame_hdr.h"

#define MAX_GFN 1024

static uint8_t pbuf[PROTO_MAX_PAYLOAD + 64];

/*
 * Build a PAGES payload into pbuf: head for @gfns, then @data_len bytes of
 * data (a pattern). Returns the payload length.
 */
static size_t build_pages(const uint64_t *gfns, uint32_t count, uint32_t flags, uint32_t data_len)
{
	size_t head = proto_pages_encode_head(pbuf, gfns, count, flags, data_len);

	assert_int_equal(head, proto_pages_head_size(count));
	assert_true(head + data_len <= sizeof(pbuf));
	for (uint32_t i = 0; i < data_len; i++)
		pbuf[head + i] = (uint8_t)(i * 7 + 1);
	return head + data_len;
}

static void assert_pages_bad(size_t len, uint64_t max_gfn, const char *want)
{
	struct proto_pages p;
	const char *why = NULL;

	assert_int_equal(proto_pages_decode(pbuf, len, max_gfn, &p, &why), -EBADMSG);
	assert_non_null(why);
	assert_string_equal(why, want);
}

static void test_proto_pages_decode_round_trip(void **state)
{
	const uint64_t gfns[] = { 7, 3 | PROTO_ZERO_PAGE, MAX_GFN - 1, 0 | PROTO_ZERO_PAGE, 100 };
	const uint32_t count = ARRAY_SIZE(gfns), raw = 3 * PROTO_PAGE_SIZE;
	struct proto_pages p;
	const char *why = NULL;
	size_t len = build_pages(gfns, count, 0, raw);

	assert_int_equal(len, PROTO_PAGES_HDR + 8 * count + raw);
	assert_int_equal(proto_get_le32(pbuf + 12), raw);
	assert_int_equal(proto_pages_decode(pbuf, len, MAX_GFN, &p, &why), 0);
	assert_null(why);
	assert_int_equal(p.count, count);
	assert_int_equal(p.flags, 0);
	assert_int_equal(p.nonzero, 3);
	assert_int_equal(p.raw_len, raw);
	assert_int_equal(p.data_len, raw);
	assert_ptr_equal(p.gfns, pbuf + PROTO_PAGES_HDR);
	assert_ptr_equal(p.data, pbuf + proto_pages_head_size(count));
	for (uint32_t i = 0; i < count; i++)
		assert_int_equal(proto_pages_gfn(&p, i), gfns[i]);
}

static void test_proto_pages_decode_all_zero(void **state)
{
	uint64_t gfns[PROTO_BATCH_MAX];
	struct proto_pages p;
	const char *why = NULL;
	size_t len;

	for (uint32_t i = 0; i < PROTO_BATCH_MAX; i++)
		gfns[i] = (i * 5) | PROTO_ZERO_PAGE;
	len = build_pages(gfns, PROTO_BATCH_MAX, 0, 0);
	assert_int_equal(proto_pages_decode(pbuf, len, MAX_GFN, &p, &why), 0);
	assert_int_equal(p.count, PROTO_BATCH_MAX);
	assert_int_equal(p.nonzero, 0);
	assert_int_equal(p.raw_len, 0);
	assert_int_equal(p.data_len, 0);
}

/* The largest legal batch is exactly PROTO_MAX_PAYLOAD and fits a header. */
static void test_proto_pages_decode_full_batch(void **state)
{
	uint64_t gfns[PROTO_BATCH_MAX];
	struct proto_hdr h;
	struct proto_pages p;
	const char *why = NULL;
	size_t len;

	for (uint32_t i = 0; i < PROTO_BATCH_MAX; i++)
		gfns[i] = PROTO_BATCH_MAX - 1 - i;
	len = build_pages(gfns, PROTO_BATCH_MAX, 0, PROTO_BATCH_MAX * PROTO_PAGE_SIZE);
	assert_int_equal(len, PROTO_MAX_PAYLOAD);
	assert_int_equal(frame_hdr_decode(PROTO_PAGES, 0, len, &h, &why), 0);
	assert_int_equal(proto_pages_decode(pbuf, len, PROTO_BATCH_MAX, &p, &why), 0);
	assert_int_equal(p.nonzero, PROTO_BATCH_MAX);
}

static void test_proto_pages_decode_lz4(void **state)
{
	const uint64_t gfns[] = { 1, 2 | PROTO_ZERO_PAGE, 3 };
	struct proto_pages p;
	const char *why = NULL;
	size_t len = build_pages(gfns, 3, PROTO_PAGES_LZ4, 100);

	/* encode_head derives raw_len from the gfns, data_len is what was given */
	assert_int_equal(proto_pages_decode(pbuf, len, MAX_GFN, &p, &why), 0);
	assert_int_equal(p.flags, PROTO_PAGES_LZ4);
	assert_int_equal(p.data_len, 100);
	assert_int_equal(p.raw_len, 2 * PROTO_PAGE_SIZE);
	assert_int_equal(p.nonzero, 2);
}

static void test_proto_pages_decode_truncated(void **state)
{
	const uint64_t gfn = 1 | PROTO_ZERO_PAGE;

	build_pages(&gfn, 1, 0, 0);
	for (size_t len = 0; len < PROTO_PAGES_HDR; len++)
		assert_pages_bad(len, MAX_GFN, "truncated page batch");
}

static void test_proto_pages_decode_count_zero(void **state)
{
	const uint64_t gfn = 1 | PROTO_ZERO_PAGE;
	size_t len = build_pages(&gfn, 1, 0, 0);

	proto_put_le32(pbuf, 0);
	assert_pages_bad(len, MAX_GFN, "page batch with an impossible page count");
	assert_pages_bad(PROTO_PAGES_HDR, MAX_GFN, "page batch with an impossible page count");
}

static void test_proto_pages_decode_count_too_big(void **state)
{
	uint64_t gfns[PROTO_BATCH_MAX + 1];
	size_t len;

	for (uint32_t i = 0; i <= PROTO_BATCH_MAX; i++)
		gfns[i] = i | PROTO_ZERO_PAGE;
	len = build_pages(gfns, PROTO_BATCH_MAX + 1, 0, 0);
	assert_pages_bad(len, MAX_GFN, "page batch with an impossible page count");
	proto_put_le32(pbuf, UINT32_MAX);
	assert_pages_bad(len, MAX_GFN, "page batch with an impossible page count");
}

static void test_proto_pages_decode_unknown_flags(void **state)
{
	const uint64_t gfn = 1;
	size_t len = build_pages(&gfn, 1, 0x2, PROTO_PAGE_SIZE);

	assert_pages_bad(len, MAX_GFN, "unknown page batch flags");
	proto_put_le32(pbuf + 4, PROTO_PAGES_LZ4 | 0x100);
	assert_pages_bad(len, MAX_GFN, "unknown page batch flags");
}

static void test_proto_pages_decode_len_short(void **state)
{
	const uint64_t gfns[] = { 1, 2 | PROTO_ZERO_PAGE };
	size_t len = build_pages(gfns, 2, 0, PROTO_PAGE_SIZE);

	assert_pages_bad(len - 1, MAX_GFN, "page batch length does not add up");
	/* shorter than the gfn array itself */
	assert_pages_bad(PROTO_PAGES_HDR + 8, MAX_GFN, "page batch length does not add up");
}

static void test_proto_pages_decode_len_long(void **state)
{
	const uint64_t gfns[] = { 1, 2 | PROTO_ZERO_PAGE };
	size_t len = build_pages(gfns, 2, 0, PROTO_PAGE_SIZE);

	assert_pages_bad(len + 1, MAX_GFN, "page batch length does not add up");
}

/* data_len near UINT32_MAX must not wrap the length sum */
static void test_proto_pages_decode_len_huge_data(void **state)
{
	const uint64_t gfn = 1;
	size_t len = build_pages(&gfn, 1, PROTO_PAGES_LZ4, 10);

	proto_put_le32(pbuf + 8, UINT32_MAX);
	assert_pages_bad(len, MAX_GFN, "page batch length does not add up");
}

static void test_proto_pages_decode_gfn_out_of_range(void **state)
{
	const uint64_t gfns[] = { 0, MAX_GFN };
	size_t len = build_pages(gfns, 2, 0, 2 * PROTO_PAGE_SIZE);
	struct proto_pages p;
	const char *why = NULL;

	assert_pages_bad(len, MAX_GFN, "page number outside guest RAM");
	/* one more page of RAM and it fits */
	assert_int_equal(proto_pages_decode(pbuf, len, MAX_GFN + 1, &p, &why), 0);
	/* a stray high bit other than the zero flag is not ignored */
	proto_put_le64(pbuf + PROTO_PAGES_HDR + 8, 5 | (1ULL << 62));
	assert_pages_bad(len, MAX_GFN, "page number outside guest RAM");
	/* nothing is in range of an empty guest */
	proto_put_le64(pbuf + PROTO_PAGES_HDR + 8, 5);
	assert_pages_bad(len, 0, "page number outside guest RAM");
}

static void test_proto_pages_decode_zero_gfn_out_of_range(void **state)
{
	const uint64_t gfns[] = { 1, MAX_GFN | PROTO_ZERO_PAGE };
	size_t len = build_pages(gfns, 2, 0, PROTO_PAGE_SIZE);

	assert_pages_bad(len, MAX_GFN, "page number outside guest RAM");
	proto_put_le64(pbuf + PROTO_PAGES_HDR + 8, UINT64_MAX);
	assert_pages_bad(len, MAX_GFN, "page number outside guest RAM");
}

static void test_proto_pages_decode_duplicate(void **state)
{
	const uint64_t gfns[] = { 1, 9, 4, 9 };
	size_t len = build_pages(gfns, 4, 0, 4 * PROTO_PAGE_SIZE);

	assert_pages_bad(len, MAX_GFN, "page appears twice in one batch");
}

/* The same page once as data and once as zero is still a duplicate. */
static void test_proto_pages_decode_duplicate_zero(void **state)
{
	const uint64_t gfns[] = { 9 | PROTO_ZERO_PAGE, 4, 9 };
	size_t len = build_pages(gfns, 3, 0, 2 * PROTO_PAGE_SIZE);

	assert_pages_bad(len, MAX_GFN, "page appears twice in one batch");
}

static void test_proto_pages_decode_raw_len_mismatch(void **state)
{
	const uint64_t gfns[] = { 1, 2 | PROTO_ZERO_PAGE, 3 };
	size_t len = build_pages(gfns, 3, PROTO_PAGES_LZ4, 64);

	proto_put_le32(pbuf + 12, 3 * PROTO_PAGE_SIZE); /* claims the zero page too */
	assert_pages_bad(len, MAX_GFN, "batch data size does not match its pages");
	proto_put_le32(pbuf + 12, PROTO_PAGE_SIZE);
	assert_pages_bad(len, MAX_GFN, "batch data size does not match its pages");
	proto_put_le32(pbuf + 12, 2 * PROTO_PAGE_SIZE + 1);
	assert_pages_bad(len, MAX_GFN, "batch data size does not match its pages");
	proto_put_le32(pbuf + 12, 0);
	assert_pages_bad(len, MAX_GFN, "batch data size does not match its pages");
}

static void test_proto_pages_decode_raw_data_len_mismatch(void **state)
{
	const uint64_t gfns[] = { 1, 2 };
	size_t len = build_pages(gfns, 2, 0, PROTO_PAGE_SIZE); /* one page of data for two */

	assert_pages_bad(len, MAX_GFN, "uncompressed batch data size does not match its pages");
	len = build_pages(gfns, 2, 0, 3 * PROTO_PAGE_SIZE);
	assert_pages_bad(len, MAX_GFN, "uncompressed batch data size does not match its pages");
}

static void test_proto_pages_decode_lz4_no_data(void **state)
{
	const uint64_t gfns[] = { 1, 2 | PROTO_ZERO_PAGE };
	size_t len = build_pages(gfns, 2, PROTO_PAGES_LZ4, 0);

	assert_pages_bad(len, MAX_GFN, "compressed batch without data");
}

/* lz4 batch of only zero pages: raw_len 0, nothing to decompress into */
static void test_proto_pages_decode_lz4_no_raw(void **state)
{
	const uint64_t gfns[] = { 1 | PROTO_ZERO_PAGE, 2 | PROTO_ZERO_PAGE };
	size_t len = build_pages(gfns, 2, PROTO_PAGES_LZ4, 8);

	assert_pages_bad(len, MAX_GFN, "compressed batch without data");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proto_pages_decode_round_trip),
		cmocka_unit_test(test_proto_pages_decode_all_zero),
		cmocka_unit_test(test_proto_pages_decode_full_batch),
		cmocka_unit_test(test_proto_pages_decode_lz4),
		cmocka_unit_test(test_proto_pages_decode_truncated),
		cmocka_unit_test(test_proto_pages_decode_count_zero),
		cmocka_unit_test(test_proto_pages_decode_count_too_big),
		cmocka_unit_test(test_proto_pages_decode_unknown_flags),
		cmocka_unit_test(test_proto_pages_decode_len_short),
		cmocka_unit_test(test_proto_pages_decode_len_long),
		cmocka_unit_test(test_proto_pages_decode_len_huge_data),
		cmocka_unit_test(test_proto_pages_decode_gfn_out_of_range),
		cmocka_unit_test(test_proto_pages_decode_zero_gfn_out_of_range),
		cmocka_unit_test(test_proto_pages_decode_duplicate),
		cmocka_unit_test(test_proto_pages_decode_duplicate_zero),
		cmocka_unit_test(test_proto_pages_decode_raw_len_mismatch),
		cmocka_unit_test(test_proto_pages_decode_raw_data_len_mismatch),
		cmocka_unit_test(test_proto_pages_decode_lz4_no_data),
		cmocka_unit_test(test_proto_pages_decode_lz4_no_raw),
	};

	return cmocka_run_group_tests_name("proto pages", tests, NULL, NULL);
}
