// SPDX-License-Identifier: MIT
/* Unit tests for src/parse.h. */
#include "tests/helpers.h"

#include <errno.h>
#include "src/parse.h"

struct ok_case {
	const char *s;
	uint64_t want;
};

struct bad_case {
	const char *s;
	int err;
};

static void check_ok(int (*fn)(const char *, uint64_t *), const struct ok_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = 0xdeadbeef;
		int err = fn(c[i].s, &v);

		if (err || v != c[i].want)
			fail_msg("\"%s\": got %d, %llu; want 0, %llu", c[i].s, err,
				 (unsigned long long)v, (unsigned long long)c[i].want);
	}
}

static void check_bad(int (*fn)(const char *, uint64_t *), const struct bad_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = 0;
		int err = fn(c[i].s, &v);

		if (err != c[i].err)
			fail_msg("\"%s\": got %d (value %llu); want %d", c[i].s, err,
				 (unsigned long long)v, c[i].err);
	}
}

static void test_parse_size_suffixes(void **state)
{
	static const struct ok_case c[] = {
		{ "0", 0 },
		{ "1024", 1024 },
		{ "7b", 7 },
		{ "1k", 1ULL << 10 },
		{ "64KiB", 64ULL << 10 },
		{ "64kb", 64ULL << 10 },
		{ "512M", 512ULL << 20 },
		{ "3mib", 3ULL << 20 },
		{ "4G", 4ULL << 30 },
		{ "1gb", 1ULL << 30 },
		{ "1Gb", 1ULL << 30 },
		{ "1GIB", 1ULL << 30 },
		{ "2t", 2ULL << 40 },
		{ "1TiB", 1ULL << 40 },
		{ "007M", 7ULL << 20 },
	};

	check_ok(parse_size, c, ARRAY_SIZE(c));
}

static void test_parse_size_limits(void **state)
{
	static const struct ok_case c[] = {
		{ "18446744073709551615", UINT64_MAX },
		{ "16777215T", UINT64_MAX - (1ULL << 40) + 1 },
		{ "17179869183G", UINT64_MAX - (1ULL << 30) + 1 },
	};

	check_ok(parse_size, c, ARRAY_SIZE(c));
}

static void test_parse_size_junk(void **state)
{
	static const struct bad_case c[] = {
		{ "", -EINVAL },    { "-1", -EINVAL },	{ "+1", -EINVAL },   { "1.5G", -EINVAL },
		{ "12X", -EINVAL }, { " 1G", -EINVAL }, { "1G ", -EINVAL },  { "1 G", -EINVAL },
		{ "G", -EINVAL },   { "KiB", -EINVAL }, { "0x10", -EINVAL }, { "1KK", -EINVAL },
		{ "1iB", -EINVAL }, { "1Gi", -EINVAL }, { "1P", -EINVAL },   { "1e3", -EINVAL },
	};

	check_bad(parse_size, c, ARRAY_SIZE(c));
}

static void test_parse_size_overflow(void **state)
{
	static const struct bad_case c[] = {
		{ "20000000000T", -ERANGE },
		{ "18446744073709551616", -ERANGE },
		{ "99999999999999999999999", -ERANGE },
		{ "16777216T", -ERANGE },
		{ "17179869184G", -ERANGE },
	};

	check_bad(parse_size, c, ARRAY_SIZE(c));
}

static void test_parse_count_suffixes(void **state)
{
	static const struct ok_case c[] = {
		{ "0", 0 },
		{ "123", 123 },
		{ "10k", 10000 },
		{ "10K", 10000 },
		{ "2m", 2000000 },
		{ "2M", 2000000 },
		{ "3g", 3000000000ULL },
		{ "3G", 3000000000ULL },
		{ "18446744073709551615", UINT64_MAX },
		{ "18446744073g", 18446744073000000000ULL },
	};

	check_ok(parse_count, c, ARRAY_SIZE(c));
}

static void test_parse_count_junk(void **state)
{
	static const struct bad_case c[] = {
		{ "", -EINVAL },    { "k", -EINVAL },	 { "-1", -EINVAL },  { "+1", -EINVAL },
		{ " 1", -EINVAL },  { "1 ", -EINVAL },	 { "1 k", -EINVAL }, { "1.5k", -EINVAL },
		{ "1kb", -EINVAL }, { "1kk", -EINVAL },	 { "1x", -EINVAL },  { "1t", -EINVAL },
		{ "1Ki", -EINVAL }, { "0x10", -EINVAL },
	};

	check_bad(parse_count, c, ARRAY_SIZE(c));
}

static void test_parse_count_overflow(void **state)
{
	static const struct bad_case c[] = {
		{ "18446744073709551616", -ERANGE },
		{ "18446744073709552k", -ERANGE },
		{ "18446744073710m", -ERANGE },
		{ "18446744074g", -ERANGE },
	};

	check_bad(parse_count, c, ARRAY_SIZE(c));
}

static void test_parse_count_range_bounds(void **state)
{
	uint64_t v = 0;

	assert_int_equal(parse_count_range("5", 1, 10, &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(parse_count_range("1", 1, 10, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(parse_count_range("10", 1, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_count_range("1k", 0, 1000, &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(parse_count_range("7", 7, 7, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(parse_count_range("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, UINT64_MAX);
}

static void test_parse_count_range_out_of_range(void **state)
{
	uint64_t v = 0;

	assert_int_equal(parse_count_range("0", 1, 10, &v), -ERANGE);
	assert_int_equal(parse_count_range("11", 1, 10, &v), -ERANGE);
	assert_int_equal(parse_count_range("1001", 0, 1000, &v), -ERANGE);
	assert_int_equal(parse_count_range("2k", 0, 1999, &v), -ERANGE);
	assert_int_equal(parse_count_range("6", 7, 7, &v), -ERANGE);
	assert_int_equal(parse_count_range("8", 7, 7, &v), -ERANGE);
}

static void test_parse_count_range_junk(void **state)
{
	uint64_t v = 0;

	assert_int_equal(parse_count_range("", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_count_range("x", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_count_range("5q", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_count_range("-5", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_count_range("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
}

static void test_parse_rate_as_written(void **state)
{
	static const struct ok_case ok[] = {
		{ "0", 0 },
		{ "100M", 100ULL << 20 },
		{ "100MiB", 100ULL << 20 },
		{ "100MiB/s", 100ULL << 20 },
		{ "1gbit", 125000000 },
		{ "1Gbit/s", 125000000 },
		{ "500mbit", 62500000 },
		{ "500Mbit/s", 62500000 },
		{ "800kbit", 100000 },
		{ "1000gbit", 125000000000ULL },
	};
	static const struct bad_case bad[] = {
		{ "", -EINVAL },	 { "/s", -EINVAL },
		{ "gbit", -EINVAL },	 { "1001gbit", -EINVAL },
		{ "1gbit/ss", -EINVAL }, { "x/s", -EINVAL },
		{ "-1mbit", -EINVAL },	 { "12345678901234567890123456789012gbit", -EINVAL },
	};

	(void)state;
	check_ok(parse_rate, ok, ARRAY_SIZE(ok));
	check_bad(parse_rate, bad, ARRAY_SIZE(bad));
}

static void test_parse_socket_buffer(void **state)
{
	static const struct ok_case ok[] = {
		{ "kernel", 0 },
		{ "64K", 64ULL << 10 },
		{ "64M", 64ULL << 20 },
		{ "1G", 1ULL << 30 },
	};
	static const struct bad_case bad[] = {
		{ "", -EINVAL },  { "Kernel", -EINVAL }, { "auto", -EINVAL }, { "63K", -ERANGE },
		{ "0", -ERANGE }, { "2G", -ERANGE },	 { "-1M", -EINVAL },
	};

	(void)state;
	check_ok(parse_socket_buffer, ok, ARRAY_SIZE(ok));
	check_bad(parse_socket_buffer, bad, ARRAY_SIZE(bad));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_suffixes),
		cmocka_unit_test(test_parse_size_limits),
		cmocka_unit_test(test_parse_size_junk),
		cmocka_unit_test(test_parse_size_overflow),
		cmocka_unit_test(test_parse_count_suffixes),
		cmocka_unit_test(test_parse_count_junk),
		cmocka_unit_test(test_parse_count_overflow),
		cmocka_unit_test(test_parse_count_range_bounds),
		cmocka_unit_test(test_parse_count_range_out_of_range),
		cmocka_unit_test(test_parse_count_range_junk),
		cmocka_unit_test(test_parse_rate_as_written),
		cmocka_unit_test(test_parse_socket_buffer),
	};

	return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
