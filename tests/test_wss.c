// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/wss.h (the working-set curve's bookkeeping) on
 * synthetic first-write histograms, and for the probe sample's JSON round
 * trip (src/probe_json.c).
 */
#include "tests/helpers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "src/json.h"
#include "src/probe.h"
#include "src/util.h"
#include "src/wss.h"

#define TICK_NS (10 * NSEC_PER_MSEC)
#define NTICKS	4096

static uint64_t hist[NTICKS];

/* A steady writer of @rate new pages per second into a working set of @ws pages. */
static void steady(uint64_t rate, uint64_t ws)
{
	uint64_t per_tick = rate / 100;
	uint64_t left = ws;

	memset(hist, 0, sizeof(hist));
	for (uint32_t i = 0; i < NTICKS && left; i++) {
		hist[i] = per_tick < left ? per_tick : left;
		left -= hist[i];
	}
}

static void test_wss_prefix_whole_and_partial_ticks(void **state)
{
	memset(hist, 0, sizeof(hist));
	hist[0] = 10;
	hist[1] = 20;
	hist[2] = 40;
	assert_int_equal(wss_prefix(hist, NTICKS, TICK_NS, 0), 0);
	assert_int_equal(wss_prefix(hist, NTICKS, TICK_NS, TICK_NS), 10);
	assert_int_equal(wss_prefix(hist, NTICKS, TICK_NS, 2 * TICK_NS), 30);
	/* half of tick 2 */
	assert_int_equal(wss_prefix(hist, NTICKS, TICK_NS, 2 * TICK_NS + TICK_NS / 2), 50);
	/* beyond the histogram: everything */
	assert_int_equal(wss_prefix(hist, 3, TICK_NS, 100 * TICK_NS), 70);
}

static void test_wss_steady_writer_grows_then_saturates(void **state)
{
	struct wss_curve c = { 0 };

	/* 5000 pages/s into 16384 pages: linear until 3.3 s, then flat */
	steady(5000, 16384);
	assert_int_equal(wss_update(&c, hist, NTICKS, TICK_NS, 31 * NSEC_PER_SEC, 1), WSS_NWIN);
	assert_int_equal(wss_nwin(&c), WSS_NWIN);
	assert_int_equal(c.pages[0], 500);
	assert_int_equal(c.pages[1], 1250);
	assert_int_equal(c.pages[3], 5000);
	assert_int_equal(c.pages[4], 10000);
	assert_int_equal(c.pages[5], 16384);
	assert_int_equal(c.pages[7], 16384);
	for (int k = 1; k < WSS_NWIN; k++)
		assert_true(c.pages[k] >= c.pages[k - 1]);
	assert_true(wss_rate(&c) == 5000.0);
}

static void test_wss_young_epoch_measures_short_windows_only(void **state)
{
	struct wss_curve c = { 0 };

	steady(1000, 1 << 20);
	/* 0.6 s observed: 0.1, 0.25, 0.5 s */
	assert_int_equal(wss_update(&c, hist, NTICKS, TICK_NS, 600 * NSEC_PER_MSEC, 1), 3);
	assert_int_equal(wss_nwin(&c), 3);
	assert_int_equal(c.pages[2], 500);
	/* before W(1 s) exists the rate is W(0.5 s) / 0.5 s */
	assert_true(wss_rate(&c) == 1000.0);
}

static void test_wss_longer_windows_kept_across_epochs(void **state)
{
	struct wss_curve c = { 0 };

	/* a 12 s epoch at 100 pages/s measures up to 10 s */
	steady(100, 1 << 20);
	wss_update(&c, hist, NTICKS, TICK_NS, 12 * NSEC_PER_SEC, 1);
	assert_int_equal(c.pages[6], 1000);
	/* the next epoch (writer now at 300/s) is 1.5 s old: 0.1..1 s are new, 2..10 s kept */
	steady(300, 1 << 20);
	assert_int_equal(wss_update(&c, hist, NTICKS, TICK_NS, 1500 * NSEC_PER_MSEC, 2), 4);
	assert_int_equal(c.pages[3], 300);
	assert_int_equal(c.at_ns[3], 2);
	assert_int_equal(c.pages[4], 200);
	assert_int_equal(c.pages[6], 1000);
	assert_int_equal(c.at_ns[6], 1);
	assert_int_equal(wss_nwin(&c), 7);
	assert_false(c.have[7]);
}

static void test_wss_burst_then_idle(void **state)
{
	struct wss_curve c = { 0 };

	/* 3000 pages in the first 50 ms, nothing after */
	memset(hist, 0, sizeof(hist));
	for (int i = 0; i < 5; i++)
		hist[i] = 600;
	wss_update(&c, hist, NTICKS, TICK_NS, 31 * NSEC_PER_SEC, 1);
	for (int k = 0; k < WSS_NWIN; k++)
		assert_int_equal(c.pages[k], 3000);
}

static void test_wss_coarse_ticks_interpolate(void **state)
{
	/* the fallback's 100 ms ticks: W(0.25 s) lies inside tick 2 */
	uint64_t h[10] = { 100, 100, 100, 100, 100, 100, 100, 100, 100, 100 };
	struct wss_curve c = { 0 };

	assert_int_equal(wss_update(&c, h, 10, 100 * NSEC_PER_MSEC, NSEC_PER_SEC, 1), 4);
	assert_int_equal(c.pages[0], 100);
	assert_int_equal(c.pages[1], 250);
	assert_int_equal(c.pages[3], 1000);
}

static void test_wss_tick_clamps(void **state)
{
	assert_int_equal(wss_tick(0, TICK_NS, NTICKS), 0);
	assert_int_equal(wss_tick(TICK_NS - 1, TICK_NS, NTICKS), 0);
	assert_int_equal(wss_tick(TICK_NS, TICK_NS, NTICKS), 1);
	assert_int_equal(wss_tick(UINT64_MAX, TICK_NS, NTICKS), NTICKS - 1);
}

static void test_wss_rate_empty(void **state)
{
	struct wss_curve c = { 0 };

	assert_int_equal(wss_nwin(&c), 0);
	assert_true(wss_rate(&c) == 0.0);
}

static void test_wss_hot_regions_ranked(void **state)
{
	/* 4 regions of 512 pages (8 words each) */
	uint64_t words[32] = { 0 };
	struct wss_region r[3];

	words[0] = 1;		/* region 0: 1 page */
	words[8] = ~0ULL;	/* region 1: 64 */
	words[9] = 0xff;	/* region 1: +8 */
	words[24] = 0xffff;	/* region 3: 16 */
	words[31] = 1ULL << 63; /* region 3: +1 */
	assert_int_equal(wss_hot(words, 32, r, 3), 3);
	assert_int_equal(r[0].region, 1);
	assert_int_equal(r[0].pages, 72);
	assert_int_equal(r[1].region, 3);
	assert_int_equal(r[1].pages, 17);
	assert_int_equal(r[2].region, 0);
	assert_int_equal(r[2].pages, 1);
	/* only the top 1; empty bitmaps find nothing */
	assert_int_equal(wss_hot(words, 32, r, 1), 1);
	assert_int_equal(r[0].region, 1);
	memset(words, 0, sizeof(words));
	assert_int_equal(wss_hot(words, 32, r, 3), 0);
}

static void test_wss_hot_partial_last_region(void **state)
{
	uint64_t words[10] = { 0 };
	struct wss_region r[2];

	words[9] = 3; /* region 1 has only 2 words */
	assert_int_equal(wss_hot(words, 10, r, 2), 1);
	assert_int_equal(r[0].region, 1);
	assert_int_equal(r[0].pages, 2);
}

static void set_bit(uint64_t *words, uint64_t g)
{
	words[g / 64] |= 1ULL << (g % 64);
}

/* 64 regions of 512 pages */
#define LOC_WORDS (64 * 8)

static void test_wss_locality_sequential(void **state)
{
	static uint64_t words[LOC_WORDS];

	(void)state;
	memset(words, 0, sizeof(words));
	/* one run, starting and ending inside a region */
	for (uint64_t g = 100; g < 3100; g++)
		set_bit(words, g);
	assert_true(wss_locality(words, LOC_WORDS) > 0.95);
	/* two vCPUs, each its own run far apart: still sequential */
	for (uint64_t g = 20000; g < 21000; g++)
		set_bit(words, g);
	assert_true(wss_locality(words, LOC_WORDS) > 0.95);
}

static void test_wss_locality_random(void **state)
{
	static uint64_t words[LOC_WORDS];
	uint64_t x = 88172645463325252ULL;

	(void)state;
	memset(words, 0, sizeof(words));
	/* sparse over every region */
	for (int i = 0; i < 3000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		set_bit(words, x % (LOC_WORDS * 64));
	}
	assert_true(wss_locality(words, LOC_WORDS) < 0.1);
	/* dense but scattered within 4 regions (a zipf hot set): adjacency by chance only */
	memset(words, 0, sizeof(words));
	for (int i = 0; i < 3000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		set_bit(words, 1024 + x % 2048);
	}
	assert_true(wss_locality(words, LOC_WORDS) < 0.3);
}

static void test_wss_locality_edges(void **state)
{
	static uint64_t words[LOC_WORDS];

	(void)state;
	memset(words, 0, sizeof(words));
	/* too few pages to say */
	for (uint64_t g = 0; g < WSS_LOCALITY_MIN - 1; g++)
		set_bit(words, g);
	assert_true(wss_locality(words, LOC_WORDS) == 0);
	/* a region written in full: its adjacency */
	memset(words, 0, sizeof(words));
	for (uint64_t g = 3 * 512; g < 4 * 512; g++)
		set_bit(words, g);
	assert_true(wss_locality(words, LOC_WORDS) > 0.99);
	/* every other page: neighbours never dirty */
	memset(words, 0, sizeof(words));
	for (uint64_t g = 0; g < 4096; g += 2)
		set_bit(words, g);
	assert_true(wss_locality(words, LOC_WORDS) == 0);
	assert_true(wss_locality(words, 0) == 0);
}

static void test_probe_sample_json_round_trip(void **state)
{
	struct probe_sample a = { 0 };
	struct probe_sample b;
	char buf[4096];
	struct json_out j;
	const char *why = NULL;

	a.source = PROBE_SRC_HARVEST;
	a.tracking = "dirty-log";
	snprintf(a.why_fallback, sizeof(a.why_fallback), "no \"CAP_BPF\"");
	a.dirty_pages_per_s = 4999.123456789012;
	a.nwin = 5;
	for (int k = 0; k < 5; k++)
		a.wss_pages[k] = 100u * (uint64_t)(k + 1);
	a.nhot = 2;
	a.hot[0].region = 7;
	a.hot[0].pages = 512;
	a.hot[1].region = 1ULL << 30;
	a.hot[1].pages = 3;
	a.vcpu_run_frac = 0.1 + 0.2;
	a.locality = 0.7;
	a.dma_pages_per_s = 1e-300;
	a.check_bpf_pages = 11;
	a.check_harvest_pages = 12;
	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_str(&j, "type", "sample");
	probe_sample_json(&a, &j);
	json_obj_end(&j);
	assert_non_null(json_done(&j));
	assert_int_equal(probe_sample_parse(buf, strlen(buf), &b, &why), 0);
	assert_string_equal(b.source, a.source);
	assert_string_equal(b.tracking, a.tracking);
	assert_string_equal(b.why_fallback, a.why_fallback);
	assert_true(b.dirty_pages_per_s == a.dirty_pages_per_s);
	assert_true(b.vcpu_run_frac == a.vcpu_run_frac);
	assert_true(b.dma_pages_per_s == a.dma_pages_per_s);
	assert_true(b.locality == a.locality);
	assert_int_equal(b.nwin, 5);
	assert_memory_equal(b.wss_pages, a.wss_pages, sizeof(a.wss_pages));
	assert_int_equal(b.nhot, 2);
	assert_int_equal(b.hot[1].region, a.hot[1].region);
	assert_int_equal(b.hot[0].pages, 512);
	assert_int_equal(b.rtt_us, 0);
	assert_int_equal(b.check_harvest_pages, 12);
}

static void test_probe_sample_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"source\":\"bpf:kvm_mmu_set_spte\"}",
		"{\"source\":\"nope\",\"tracking\":\"dirty-log\"}",
		"{\"source\":\"harvest\",\"tracking\":\"dirty-log\",\"wss\":[{\"window_s\":0.3,"
		"\"pages\":1}]}",
		"{\"source\":\"harvest\",\"tracking\":\"dirty-log\"} x",
		"{\"source\":\"harvest\",\"tracking\":\"dirty-log\",\"x\":[[[[[[[[[[1]]]]]]]]]]}",
		"{\"source\":\"harvest\",\"tracking\":\"dirty-log\",\"rtt_us\":-1}",
		"{\"source\":\"harvest\",\"tracking",
	};
	struct probe_sample s;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *why = NULL;

		assert_int_equal(probe_sample_parse(bad[i], strlen(bad[i]), &s, &why), -EINVAL);
		assert_non_null(why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wss_prefix_whole_and_partial_ticks),
		cmocka_unit_test(test_wss_steady_writer_grows_then_saturates),
		cmocka_unit_test(test_wss_young_epoch_measures_short_windows_only),
		cmocka_unit_test(test_wss_longer_windows_kept_across_epochs),
		cmocka_unit_test(test_wss_burst_then_idle),
		cmocka_unit_test(test_wss_coarse_ticks_interpolate),
		cmocka_unit_test(test_wss_tick_clamps),
		cmocka_unit_test(test_wss_rate_empty),
		cmocka_unit_test(test_wss_hot_regions_ranked),
		cmocka_unit_test(test_wss_hot_partial_last_region),
		cmocka_unit_test(test_wss_locality_sequential),
		cmocka_unit_test(test_wss_locality_random),
		cmocka_unit_test(test_wss_locality_edges),
		cmocka_unit_test(test_probe_sample_json_round_trip),
		cmocka_unit_test(test_probe_sample_parse_rejects),
	};

	return cmocka_run_group_tests_name("wss", tests, NULL, NULL);
}
