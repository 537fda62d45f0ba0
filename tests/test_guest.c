// SPDX-License-Identifier: MIT
/* Unit tests for src/guest.h: guest specifications and the RAM layout. */
#include "tests/helpers.h"

#include <errno.h>
#include <string.h>
#include "guest/abi.h"
#include "src/guest.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* Parse @s, which must be rejected, with a reason that mentions @needle. */
static void assert_rejected(const char *s, const char *needle)
{
	struct guest_spec spec;
	char why[256] = "";
	int err = guest_spec_parse(s, &spec, why, sizeof(why));

	if (err != -EINVAL)
		fail_msg("\"%s\": got %d, want -EINVAL", s, err);
	if (!why[0])
		fail_msg("\"%s\": no reason given", s);
	if (needle && !strstr(why, needle))
		fail_msg("\"%s\": reason \"%s\" does not mention '%s'", s, why, needle);
}

static void parse_ok(const char *s, struct guest_spec *spec)
{
	char why[256] = "";
	int err = guest_spec_parse(s, spec, why, sizeof(why));

	if (err)
		fail_msg("\"%s\": got %d (%s), want 0", s, err, why);
	assert_non_null(spec->type);
}

static void assert_defaults(const struct guest_spec *spec, const char *name)
{
	assert_string_equal(spec->type->name, name);
	assert_ptr_equal(spec->type, guest_find(name));
	assert_int_equal(spec->wss, GUEST_DEFAULT_WSS);
	assert_int_equal(spec->rate, 0);
	assert_int_equal(spec->pattern, HM_PATTERN_SEQ);
	assert_int_equal(spec->io_mbps, 0);
	assert_int_equal(spec->seed, 1);
	assert_int_equal(spec->fault, HM_FAULT_UD);
	assert_false(spec->fill);
	assert_false(spec->prefill);
}

static void test_guest_find_known(void **state)
{
	static const char *const names[] = { "idle", "dirtier", "fault" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const struct guest_type *t = guest_find(names[i]);

		assert_non_null(t);
		assert_string_equal(t->name, names[i]);
		assert_non_null(t->image);
		assert_true(t->image_end > t->image);
		assert_true((uint64_t)(t->image_end - t->image) <= HM_IMAGE_MAX);
	}
	assert_null(guest_find("nope"));
	assert_null(guest_find(""));
	assert_null(guest_find("Idle"));
}

static void test_guest_spec_parse_idle(void **state)
{
	struct guest_spec spec;

	parse_ok("idle", &spec);
	assert_defaults(&spec, "idle");
}

static void test_guest_spec_parse_dirtier_defaults(void **state)
{
	struct guest_spec spec;

	parse_ok("dirtier", &spec);
	assert_defaults(&spec, "dirtier");
}

static void test_guest_spec_parse_dirtier_all(void **state)
{
	struct guest_spec spec;

	parse_ok("dirtier:wss=1G,rate=10k,pattern=zipf,io=100,seed=7", &spec);
	assert_string_equal(spec.type->name, "dirtier");
	assert_int_equal(spec.wss, 1 * GiB);
	assert_int_equal(spec.rate, 10000);
	assert_int_equal(spec.pattern, HM_PATTERN_ZIPF);
	assert_int_equal(spec.io_mbps, 100);
	assert_int_equal(spec.seed, 7);
	assert_int_equal(spec.fault, HM_FAULT_UD);
}

static void test_guest_spec_parse_patterns(void **state)
{
	static const struct {
		const char *s;
		enum hm_pattern p;
	} c[] = {
		{ "dirtier:pattern=seq", HM_PATTERN_SEQ },
		{ "dirtier:pattern=random", HM_PATTERN_RANDOM },
		{ "dirtier:pattern=zipf", HM_PATTERN_ZIPF },
	};
	struct guest_spec spec;

	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		parse_ok(c[i].s, &spec);
		assert_int_equal(spec.pattern, c[i].p);
	}
}

static void test_guest_spec_parse_fault_kinds(void **state)
{
	static const struct {
		const char *s;
		enum hm_fault_kind k;
	} c[] = {
		{ "fault:kind=ud", HM_FAULT_UD },
		{ "fault:kind=pf", HM_FAULT_PF },
		{ "fault:kind=mmio", HM_FAULT_MMIO },
		{ "fault:kind=panic", HM_FAULT_PANIC },
	};
	struct guest_spec spec;

	parse_ok("fault", &spec);
	assert_defaults(&spec, "fault");
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		parse_ok(c[i].s, &spec);
		assert_string_equal(spec.type->name, "fault");
		assert_int_equal(spec.fault, c[i].k);
	}
}

/* fill=1: write once, then idle; prefill=1: write once at full speed, then at rate. */
static void test_guest_spec_parse_fill_prefill(void **state)
{
	struct guest_spec spec;

	parse_ok("dirtier:fill=1", &spec);
	assert_true(spec.fill);
	assert_false(spec.prefill);
	parse_ok("dirtier:wss=8M,prefill=1,rate=500,pattern=random", &spec);
	assert_false(spec.fill);
	assert_true(spec.prefill);
	assert_int_equal(spec.rate, 500);
	parse_ok("dirtier:prefill=1,fill=1", &spec);
	assert_true(spec.fill && spec.prefill);
	parse_ok("dirtier:prefill=0,fill=0", &spec);
	assert_false(spec.fill || spec.prefill);
	assert_rejected("dirtier:prefill=2", "prefill");
	assert_rejected("dirtier:prefill=yes", "prefill");
	assert_rejected("dirtier:fill=2", "fill");
	assert_rejected("idle:prefill=1", "prefill");
	assert_rejected("dirtier:prefil=1", "prefil");
}

/* A later spec starts from the defaults, not from what the last one set. */
static void test_guest_spec_parse_resets(void **state)
{
	struct guest_spec spec;

	parse_ok("dirtier:wss=1G,rate=10k,pattern=zipf,io=100,seed=7", &spec);
	parse_ok("dirtier", &spec);
	assert_defaults(&spec, "dirtier");
}

static void test_guest_spec_parse_unknown_guest(void **state)
{
	assert_rejected("nope", "nope");
	assert_rejected("nope:wss=1M", "nope");
	assert_rejected("", NULL);
	assert_rejected(":wss=1M", NULL);
	assert_rejected("IDLE", "IDLE");
}

static void test_guest_spec_parse_unknown_param(void **state)
{
	assert_rejected("dirtier:foo=1", "foo");
	assert_rejected("dirtier:wss=1M,foo=1", "foo");
	/* keys match whole words of the accepted list, not substrings */
	assert_rejected("dirtier:ws=1M", "ws");
	assert_rejected("dirtier:ss=1M", "ss");
	assert_rejected("dirtier:wsss=1M", "wsss");
	assert_rejected("fault:kin=pf", "kin");
	assert_rejected("dirtier:WSS=1M", "WSS");
}

static void test_guest_spec_parse_param_not_accepted(void **state)
{
	assert_rejected("idle:wss=1M", "wss");
	assert_rejected("fault:wss=1M", "wss");
	assert_rejected("dirtier:kind=pf", "kind");
}

static void test_guest_spec_parse_malformed(void **state)
{
	assert_rejected("dirtier:wss", "wss");
	assert_rejected("dirtier:wss=", "wss");
	assert_rejected("dirtier:=1", "=1");
	assert_rejected("dirtier:wss=1M,rate", "rate");
}

static void test_guest_spec_parse_bad_value(void **state)
{
	assert_rejected("dirtier:pattern=nope", "nope");
	assert_rejected("dirtier:pattern=ZIPF", "ZIPF");
	assert_rejected("dirtier:wss=12Q", "12Q");
	assert_rejected("dirtier:wss=-1", "-1");
	assert_rejected("dirtier:wss=1K", "wss"); /* less than a page */
	assert_rejected("dirtier:wss=0", "wss");
	assert_rejected("dirtier:rate=fast", "fast");
	assert_rejected("dirtier:io=100001", "io");
	assert_rejected("dirtier:io=1x", "io");
	assert_rejected("dirtier:seed=-7", "seed");
	assert_rejected("fault:kind=nope", "nope");
	assert_rejected("fault:kind=", "kind");
}

static void test_guest_spec_parse_too_long(void **state)
{
	char s[1024];

	memset(s, 'a', sizeof(s) - 1);
	s[sizeof(s) - 1] = 0;
	memcpy(s, "dirtier:seed=", 13);
	assert_rejected(s, "too long");
}

/* A short reason buffer is truncated and terminated, never overrun. */
static void test_guest_spec_parse_short_why(void **state)
{
	struct {
		char why[16];
		char guard[16];
	} b;
	struct guest_spec spec;

	memset(&b, 'x', sizeof(b));
	assert_int_equal(guest_spec_parse("dirtier:foo=1", &spec, b.why, sizeof(b.why)), -EINVAL);
	assert_true(strlen(b.why) < sizeof(b.why));
	for (size_t i = 0; i < sizeof(b.guard); i++)
		assert_int_equal(b.guard[i], 'x');
}

static struct guest_spec spec_of(const char *s)
{
	struct guest_spec spec;

	parse_ok(s, &spec);
	return spec;
}

static void layout_ok(const struct guest_spec *spec, uint64_t mem, unsigned int nr_vcpus,
		      struct hm_bootinfo *bi)
{
	char why[256] = "";
	int err = guest_layout(spec, mem, nr_vcpus, bi, why, sizeof(why));

	if (err)
		fail_msg("layout in %llu bytes: got %d (%s), want 0", (unsigned long long)mem, err,
			 why);
}

/* The invariants every successful layout keeps. */
static void assert_sane_layout(const struct hm_bootinfo *bi, uint64_t mem)
{
	uint64_t gen_bytes = bi->ws_pages * sizeof(uint64_t);

	assert_true(bi->gen_gpa >= HM_DATA_GPA);
	assert_int_equal(bi->gen_gpa % HM_PAGE_SIZE, 0);
	assert_int_equal(bi->ws_gpa % HM_PAGE_SIZE, 0);
	/* the generation table: 8 bytes per page, rounded up to whole pages */
	assert_int_equal(bi->ws_gpa - bi->gen_gpa, ALIGN_UP(gen_bytes, HM_PAGE_SIZE));
	assert_true(bi->ws_gpa + bi->ws_pages * HM_PAGE_SIZE <= mem);
	if (bi->io_slots) {
		assert_int_equal(bi->io_ctl_gpa % HM_PAGE_SIZE, 0);
		assert_true(bi->io_ctl_gpa >= HM_DATA_GPA);
		assert_true(bi->io_ring_gpa >= bi->io_ctl_gpa + HM_PAGE_SIZE);
		assert_true(bi->io_ring_gpa + bi->io_slots * HM_PAGE_SIZE <= bi->gen_gpa);
	} else {
		assert_int_equal(bi->io_ctl_gpa, 0);
		assert_int_equal(bi->io_ring_gpa, 0);
	}
}

static void test_guest_layout_fits(void **state)
{
	struct guest_spec spec = spec_of("dirtier:wss=64M,rate=5k,pattern=random,seed=9");
	struct hm_bootinfo bi;

	memset(&bi, 0xa5, sizeof(bi));
	layout_ok(&spec, 256 * MiB, 2, &bi);
	assert_sane_layout(&bi, 256 * MiB);
	assert_int_equal(bi.nr_vcpus, 2);
	assert_int_equal(bi.ws_pages, (64 * MiB) / HM_PAGE_SIZE);
	assert_int_equal(bi.gen_gpa, HM_DATA_GPA);
	assert_int_equal(bi.rate, 5000);
	assert_int_equal(bi.pattern, HM_PATTERN_RANDOM);
	assert_int_equal(bi.seed, 9);
	assert_int_equal(bi.io_slots, 0);
	assert_int_equal(bi.report_ns, GUEST_REPORT_NS);
	assert_int_equal(bi.fill, 0);
	assert_int_equal(bi.prefill, 0);
}

/* The boot info carries fill and prefill to the guest. */
static void test_guest_layout_fill_prefill(void **state)
{
	struct guest_spec spec = spec_of("dirtier:wss=4M,rate=100,prefill=1");
	struct hm_bootinfo bi;

	layout_ok(&spec, 64 * MiB, 1, &bi);
	assert_int_equal(bi.prefill, 1);
	assert_int_equal(bi.fill, 0);
	assert_int_equal(bi.rate, 100);
	spec = spec_of("dirtier:wss=4M,fill=1");
	layout_ok(&spec, 64 * MiB, 1, &bi);
	assert_int_equal(bi.prefill, 0);
	assert_int_equal(bi.fill, 1);
}

/* The machine's fields, as the VMM and tools/mbimage.c set them after the layout. */
static void test_guest_boot_finish(void **state)
{
	struct guest_spec spec = spec_of("dirtier:wss=4M,seed=3");
	struct hm_bootinfo bi;

	layout_ok(&spec, 64 * MiB, 2, &bi);
	guest_boot_finish(&bi, 2100000, 2, 64 * MiB);
	assert_int_equal(bi.magic, HM_BOOT_MAGIC);
	assert_int_equal(bi.tsc_khz, 2100000);
	assert_int_equal(bi.nr_vcpus, 2);
	assert_int_equal(bi.ram_bytes, 64 * MiB);
	assert_int_equal(bi.devwin_gpa, HM_DEVWIN_GPA);
	/* the layout is left alone */
	assert_int_equal(bi.seed, 3);
	assert_int_equal(bi.ws_pages, 1024);
}

static void test_guest_layout_idle(void **state)
{
	struct guest_spec spec = spec_of("idle");
	struct hm_bootinfo bi;

	/* idle has no working set: the data area alone is enough */
	layout_ok(&spec, HM_DATA_GPA, 1, &bi);
	assert_sane_layout(&bi, HM_DATA_GPA);
	assert_int_equal(bi.ws_pages, 0);
	assert_int_equal(bi.io_slots, 0);
}

static void test_guest_layout_fault_kind(void **state)
{
	struct guest_spec spec = spec_of("fault:kind=mmio");
	struct hm_bootinfo bi;

	layout_ok(&spec, 64 * MiB, 1, &bi);
	assert_int_equal(bi.fault_kind, HM_FAULT_MMIO);
	assert_int_equal(bi.ws_pages, 0);
}

static void test_guest_layout_io_ring_before_gen(void **state)
{
	struct guest_spec spec = spec_of("dirtier:wss=1M,io=100");
	struct hm_bootinfo bi;

	layout_ok(&spec, 64 * MiB, 1, &bi);
	assert_sane_layout(&bi, 64 * MiB);
	assert_int_equal(bi.io_slots, GUEST_IO_SLOTS);
	assert_int_equal(bi.io_ctl_gpa, HM_DATA_GPA);
	assert_int_equal(bi.io_ring_gpa, HM_DATA_GPA + HM_PAGE_SIZE);
	assert_true(bi.io_ring_gpa < bi.gen_gpa);
	assert_true(bi.gen_gpa < bi.ws_gpa);
	assert_int_equal(bi.ws_pages, 256);
}

static void test_guest_layout_ws_pages_round_up(void **state)
{
	static const struct {
		uint64_t wss, pages;
	} c[] = {
		{ 4096, 1 }, { 4097, 2 }, { 8191, 2 },
		{ 8192, 2 }, { 5000, 2 }, { 1 * MiB + 1, 257 },
	};
	struct guest_spec spec = spec_of("dirtier");
	struct hm_bootinfo bi;

	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		spec.wss = c[i].wss;
		layout_ok(&spec, 64 * MiB, 1, &bi);
		assert_sane_layout(&bi, 64 * MiB);
		assert_int_equal(bi.ws_pages, c[i].pages);
	}
}

static void test_guest_layout_gen_table_size(void **state)
{
	static const uint64_t wss[] = { 4096, 512 * 4096, 513 * 4096, 64 * MiB, 1 * GiB };
	struct guest_spec spec = spec_of("dirtier");
	struct hm_bootinfo bi;

	for (size_t i = 0; i < ARRAY_SIZE(wss); i++) {
		uint64_t pages = wss[i] / HM_PAGE_SIZE;

		spec.wss = wss[i];
		layout_ok(&spec, 2 * GiB, 1, &bi);
		assert_int_equal(bi.ws_pages, pages);
		assert_int_equal(bi.ws_gpa - bi.gen_gpa, ALIGN_UP(pages * 8, HM_PAGE_SIZE));
	}
}

/* Exactly enough RAM fits; one page less does not. */
static void test_guest_layout_exact_fit(void **state)
{
	struct guest_spec spec = spec_of("dirtier:wss=8M,io=10");
	struct hm_bootinfo bi;
	char why[256] = "";
	uint64_t need;

	layout_ok(&spec, 1 * GiB, 1, &bi);
	need = bi.ws_gpa + bi.ws_pages * HM_PAGE_SIZE;
	layout_ok(&spec, need, 1, &bi);
	assert_int_equal(guest_layout(&spec, need - HM_PAGE_SIZE, 1, &bi, why, sizeof(why)),
			 -E2BIG);
}

static void test_guest_layout_too_big(void **state)
{
	struct guest_spec spec = spec_of("dirtier:wss=1G");
	struct hm_bootinfo bi;
	char why[256] = "";

	assert_int_equal(guest_layout(&spec, 256 * MiB, 1, &bi, why, sizeof(why)), -E2BIG);
	if (!strstr(why, "MiB"))
		fail_msg("reason \"%s\" does not mention MiB", why);
	if (!strstr(why, "256"))
		fail_msg("reason \"%s\" does not mention the 256 MiB given", why);
}

/* wss close to 2^64: the page count must not wrap to 0 and "fit". */
static void test_guest_layout_wss_overflow_pages(void **state)
{
	struct guest_spec spec = spec_of("dirtier:wss=18446744073709551615");
	struct hm_bootinfo bi;
	char why[256] = "";
	int err = guest_layout(&spec, 256 * MiB, 1, &bi, why, sizeof(why));

	if (err != -E2BIG)
		fail_msg("wss=2^64-1 in 256 MiB: got %d with ws_pages %llu, want -E2BIG", err,
			 (unsigned long long)bi.ws_pages);
}

/* A huge wss whose end address wraps past 2^64 must not "fit" either. */
static void test_guest_layout_wss_overflow_end(void **state)
{
	/* 4494820680727428 pages: 0x400000 + gen table + working set = 2^64 + 8 KiB */
	struct guest_spec spec = spec_of("dirtier:wss=18410785508259545088");
	struct hm_bootinfo bi;
	char why[256] = "";
	int err = guest_layout(&spec, 256 * MiB, 1, &bi, why, sizeof(why));

	if (err != -E2BIG)
		fail_msg(
		    "wss=%llu in 256 MiB: got %d with ws_gpa 0x%llx ws_pages %llu, want -E2BIG",
		    (unsigned long long)spec.wss, err, (unsigned long long)bi.ws_gpa,
		    (unsigned long long)bi.ws_pages);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guest_find_known),
		cmocka_unit_test(test_guest_spec_parse_idle),
		cmocka_unit_test(test_guest_spec_parse_dirtier_defaults),
		cmocka_unit_test(test_guest_spec_parse_dirtier_all),
		cmocka_unit_test(test_guest_spec_parse_patterns),
		cmocka_unit_test(test_guest_spec_parse_fault_kinds),
		cmocka_unit_test(test_guest_spec_parse_fill_prefill),
		cmocka_unit_test(test_guest_spec_parse_resets),
		cmocka_unit_test(test_guest_spec_parse_unknown_guest),
		cmocka_unit_test(test_guest_spec_parse_unknown_param),
		cmocka_unit_test(test_guest_spec_parse_param_not_accepted),
		cmocka_unit_test(test_guest_spec_parse_malformed),
		cmocka_unit_test(test_guest_spec_parse_bad_value),
		cmocka_unit_test(test_guest_spec_parse_too_long),
		cmocka_unit_test(test_guest_spec_parse_short_why),
		cmocka_unit_test(test_guest_layout_fits),
		cmocka_unit_test(test_guest_layout_fill_prefill),
		cmocka_unit_test(test_guest_boot_finish),
		cmocka_unit_test(test_guest_layout_idle),
		cmocka_unit_test(test_guest_layout_fault_kind),
		cmocka_unit_test(test_guest_layout_io_ring_before_gen),
		cmocka_unit_test(test_guest_layout_ws_pages_round_up),
		cmocka_unit_test(test_guest_layout_gen_table_size),
		cmocka_unit_test(test_guest_layout_exact_fit),
		cmocka_unit_test(test_guest_layout_too_big),
		cmocka_unit_test(test_guest_layout_wss_overflow_pages),
		cmocka_unit_test(test_guest_layout_wss_overflow_end),
	};

	return cmocka_run_group_tests_name("guest", tests, NULL, NULL);
}
