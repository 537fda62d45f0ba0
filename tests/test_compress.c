// SPDX-License-Identifier: MIT
/* Unit tests for src/compress.h. */
#include "tests/helpers.h"

#include <errno.h>
#include <string.h>
#include "src/compress.h"
#include "src/proto.h"

#define NPAGES	 PROTO_BATCH_MAX
#define RAW_SIZE (NPAGES * PROTO_PAGE_SIZE)

static struct compress comp;
static _Alignas(64) uint8_t raw[RAW_SIZE];
static _Alignas(64) uint8_t out[RAW_SIZE + 64];
/* room for the worst case, so "0" never means "did not fit" by accident */
static uint8_t packed[LZ4_COMPRESSBOUND(RAW_SIZE)];

/* xorshift64: deterministic incompressible bytes */
static void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 32);
	}
}

static void fill_pattern(uint8_t *p, size_t len)
{
	static const char pat[] = "hybridmig page pattern 0123456789 ";

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)pat[i % (sizeof(pat) - 1)];
}

/* Compress raw[0, len) into packed; the result must be a real saving. */
static size_t pack(size_t len)
{
	size_t n = compress_batch(&comp, raw, len, packed, sizeof(packed));

	assert_true(n > 0);
	assert_true(n <= len - len / 16);
	return n;
}

static void test_compress_batch_round_trip(void **state)
{
	size_t n;

	fill_pattern(raw, RAW_SIZE);
	n = pack(RAW_SIZE);
	assert_true(n < RAW_SIZE / 10);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(compress_decode(packed, n, out, RAW_SIZE), 0);
	assert_memory_equal(out, raw, RAW_SIZE);
	/* nothing written past expect */
	for (size_t i = RAW_SIZE; i < sizeof(out); i++)
		assert_int_equal(out[i], 0xee);
}

/* The same state compresses batch after batch (one per sending thread). */
static void test_compress_batch_reuse_state(void **state)
{
	for (int round = 0; round < 3; round++) {
		size_t len = (size_t)(round + 1) * PROTO_PAGE_SIZE, n;

		fill_pattern(raw, len);
		raw[round] = (uint8_t)round; /* batches differ */
		n = pack(len);
		assert_int_equal(compress_decode(packed, n, out, len), 0);
		assert_memory_equal(out, raw, len);
	}
}

static void test_compress_batch_random(void **state)
{
	fill_random(raw, RAW_SIZE, 0x9e3779b97f4a7c15ULL);
	assert_int_equal(compress_batch(&comp, raw, RAW_SIZE, packed, sizeof(packed)), 0);
	fill_random(raw, PROTO_PAGE_SIZE, 42);
	assert_int_equal(compress_batch(&comp, raw, PROTO_PAGE_SIZE, packed, sizeof(packed)), 0);
}

/* Compressible, but the output does not fit in @cap: send raw. */
static void test_compress_batch_small_cap(void **state)
{
	fill_pattern(raw, RAW_SIZE);
	assert_int_equal(compress_batch(&comp, raw, RAW_SIZE, packed, 16), 0);
}

static void test_compress_batch_empty(void **state)
{
	assert_int_equal(compress_batch(&comp, raw, 0, packed, sizeof(packed)), 0);
}

static void test_compress_batch_all_zero(void **state)
{
	size_t n;

	memset(raw, 0, RAW_SIZE);
	n = pack(RAW_SIZE);
	assert_true(n < 2048);
	memset(out, 0xff, sizeof(out));
	assert_int_equal(compress_decode(packed, n, out, RAW_SIZE), 0);
	assert_memory_equal(out, raw, RAW_SIZE);
	for (uint32_t i = 0; i < NPAGES; i++)
		assert_true(compress_page_is_zero(out + (size_t)i * PROTO_PAGE_SIZE));
}

/* Mixed batch: half random pages, half patterned; still saves and round-trips. */
static void test_compress_batch_mixed(void **state)
{
	size_t n;

	for (uint32_t i = 0; i < NPAGES; i++) {
		uint8_t *pg = raw + (size_t)i * PROTO_PAGE_SIZE;

		if (i % 2)
			fill_random(pg, PROTO_PAGE_SIZE, i + 1);
		else
			fill_pattern(pg, PROTO_PAGE_SIZE);
	}
	n = pack(RAW_SIZE);
	assert_int_equal(compress_decode(packed, n, out, RAW_SIZE), 0);
	assert_memory_equal(out, raw, RAW_SIZE);
}

static size_t pack_pattern(void)
{
	fill_pattern(raw, RAW_SIZE);
	for (size_t i = 0; i < RAW_SIZE; i += 997)
		raw[i] = (uint8_t)(i >> 3); /* some literals between the matches */
	return pack(RAW_SIZE);
}

static void test_compress_decode_truncated(void **state)
{
	size_t n = pack_pattern();

	assert_int_equal(compress_decode(packed, 0, out, RAW_SIZE), -EBADMSG);
	assert_int_equal(compress_decode(packed, 1, out, RAW_SIZE), -EBADMSG);
	assert_int_equal(compress_decode(packed, n / 2, out, RAW_SIZE), -EBADMSG);
	assert_int_equal(compress_decode(packed, n - 1, out, RAW_SIZE), -EBADMSG);
}

/* Trailing garbage after a complete block is rejected too. */
static void test_compress_decode_trailing(void **state)
{
	size_t n = pack_pattern();

	packed[n] = 0;
	assert_int_equal(compress_decode(packed, n + 1, out, RAW_SIZE), -EBADMSG);
}

static void test_compress_decode_corrupt(void **state)
{
	size_t n = pack_pattern();
	int rejected = 0;

	/* A flipped byte must never crash or write past expect; most are caught. */
	for (size_t at = 0; at < n; at += n / 64 + 1) {
		memcpy(out + RAW_SIZE, "guard", 5);
		packed[at] ^= 0xff;
		if (compress_decode(packed, n, out, RAW_SIZE))
			rejected++;
		packed[at] ^= 0xff;
		assert_memory_equal(out + RAW_SIZE, "guard", 5);
	}
	assert_true(rejected > 0);

	/* the first token: a literal run longer than the whole input */
	n = pack_pattern();
	packed[0] = 0xf0;
	memset(packed + 1, 0xff, n - 1);
	assert_int_equal(compress_decode(packed, n, out, RAW_SIZE), -EBADMSG);

	/* garbage */
	fill_random(packed, 4096, 7);
	assert_int_equal(compress_decode(packed, 4096, out, RAW_SIZE), -EBADMSG);
}

static void test_compress_decode_too_short(void **state)
{
	size_t n = pack_pattern();

	/* the data decodes to RAW_SIZE, one page more than expected */
	assert_int_equal(compress_decode(packed, n, out, RAW_SIZE - PROTO_PAGE_SIZE), -EBADMSG);
	assert_int_equal(compress_decode(packed, n, out, RAW_SIZE - 1), -EBADMSG);
	assert_int_equal(compress_decode(packed, n, out, 0), -EBADMSG);
}

static void test_compress_decode_too_long(void **state)
{
	size_t n = pack_pattern();

	/* the data decodes to RAW_SIZE, fewer bytes than expected */
	assert_int_equal(compress_decode(packed, n, out, RAW_SIZE + 1), -EBADMSG);
	assert_int_equal(compress_decode(packed, n, out, RAW_SIZE + 64), -EBADMSG);
}

static void test_compress_decode_expect_too_big(void **state)
{
	size_t n = pack_pattern();

	assert_int_equal(compress_decode(packed, n, out, (size_t)INT32_MAX + 1), -EBADMSG);
	assert_int_equal(compress_decode(packed, (size_t)INT32_MAX + 1, out, RAW_SIZE), -EBADMSG);
}

static void test_compress_page_is_zero_true(void **state)
{
	static _Alignas(8) uint8_t page[PROTO_PAGE_SIZE];

	memset(page, 0, sizeof(page));
	assert_true(compress_page_is_zero(page));
}

static void test_compress_page_is_zero_first_byte(void **state)
{
	static _Alignas(8) uint8_t page[PROTO_PAGE_SIZE];

	memset(page, 0, sizeof(page));
	page[0] = 1;
	assert_false(compress_page_is_zero(page));
}

static void test_compress_page_is_zero_last_word(void **state)
{
	static _Alignas(8) uint8_t page[PROTO_PAGE_SIZE];

	memset(page, 0, sizeof(page));
	page[PROTO_PAGE_SIZE - 8] = 1; /* first byte of the last word */
	assert_false(compress_page_is_zero(page));
	memset(page, 0, sizeof(page));
	page[PROTO_PAGE_SIZE - 1] = 0x80; /* last byte of the page */
	assert_false(compress_page_is_zero(page));
}

/* Every single non-zero byte is seen, wherever it is. */
static void test_compress_page_is_zero_any_byte(void **state)
{
	static _Alignas(8) uint8_t page[PROTO_PAGE_SIZE];

	memset(page, 0, sizeof(page));
	for (size_t i = 0; i < PROTO_PAGE_SIZE; i++) {
		page[i] = 0x10;
		assert_false(compress_page_is_zero(page));
		page[i] = 0;
	}
	assert_true(compress_page_is_zero(page));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compress_batch_round_trip),
		cmocka_unit_test(test_compress_batch_reuse_state),
		cmocka_unit_test(test_compress_batch_random),
		cmocka_unit_test(test_compress_batch_small_cap),
		cmocka_unit_test(test_compress_batch_empty),
		cmocka_unit_test(test_compress_batch_all_zero),
		cmocka_unit_test(test_compress_batch_mixed),
		cmocka_unit_test(test_compress_decode_truncated),
		cmocka_unit_test(test_compress_decode_trailing),
		cmocka_unit_test(test_compress_decode_corrupt),
		cmocka_unit_test(test_compress_decode_too_short),
		cmocka_unit_test(test_compress_decode_too_long),
		cmocka_unit_test(test_compress_decode_expect_too_big),
		cmocka_unit_test(test_compress_page_is_zero_true),
		cmocka_unit_test(test_compress_page_is_zero_first_byte),
		cmocka_unit_test(test_compress_page_is_zero_last_word),
		cmocka_unit_test(test_compress_page_is_zero_any_byte),
	};

	return cmocka_run_group_tests_name("compress", tests, NULL, NULL);
}
