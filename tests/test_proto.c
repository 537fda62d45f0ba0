// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/proto.h: the frame header, HELLO, and the small
 * fixed-size frames (READY, STATUS, REQ, GO, ROUND, STARTED, AFTER,
 * PROGRESS): round trips and every rejection of the decoder.
 * VMDESC and ERROR/REFUSE: tests/test_proto_vmdesc.c; PAGES:
 * tests/test_proto_pages.c.
 */
#include "tests/helpers.h"

#include <errno.h>
#include <string.h>
#include "src/proto.h"
#include "tests/frame_hdr.h"

/* ---- header ---- */

static void assert_hdr_ok(uint32_t type, uint32_t flags, uint64_t len)
{
	struct proto_hdr h;
	const char *why;

	assert_int_equal(frame_hdr_decode(type, flags, len, &h, &why), 0);
	assert_int_equal(h.type, type);
	assert_int_equal(h.flags, flags);
	assert_int_equal(h.len, len);
}

static void assert_hdr_bad(uint32_t type, uint32_t flags, uint64_t len, const char *want)
{
	struct proto_hdr h;
	const char *why;

	assert_int_equal(frame_hdr_decode(type, flags, len, &h, &why), -EBADMSG);
	assert_non_null(why);
	assert_string_equal(why, want);
}

static void test_proto_hdr_encode_layout(void **state)
{
	static const uint8_t want[PROTO_HDR_SIZE] = { 5,    0,	  0, 0, 1, 0, 0, 0,
						      0x10, 0x20, 0, 0, 0, 0, 0, 0 };
	uint8_t buf[PROTO_HDR_SIZE];

	proto_hdr_encode(buf, PROTO_PAGES, PROTO_PAGES_LZ4, 0x2010);
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_proto_hdr_decode_round_trip(void **state)
{
	assert_hdr_ok(PROTO_HELLO, 0, PROTO_HELLO_SIZE);
	assert_hdr_ok(PROTO_VMDESC, 0, PROTO_VMDESC_SIZE);
	assert_hdr_ok(PROTO_ACCEPT, 0, 0);
	assert_hdr_ok(PROTO_REFUSE, 0, PROTO_ERROR_SIZE);
	assert_hdr_ok(PROTO_PAGES, 0, proto_pages_head_size(1));
	assert_hdr_ok(PROTO_PAGES, PROTO_PAGES_LZ4, PROTO_MAX_PAYLOAD);
	assert_hdr_ok(PROTO_ROUND, 0, PROTO_ROUND_SIZE);
	assert_hdr_ok(PROTO_VMSTATE, 0, 1);
	assert_hdr_ok(PROTO_VMSTATE, 0, PROTO_VMSTATE_MAX);
	assert_hdr_ok(PROTO_SWITCH, 0, 0);
	assert_hdr_ok(PROTO_STARTED, 0, PROTO_STARTED_SIZE);
	assert_hdr_ok(PROTO_AFTER, 0, PROTO_AFTER_SIZE);
	assert_hdr_ok(PROTO_ERROR, 0, PROTO_ERROR_SIZE);
	assert_hdr_ok(PROTO_REQ, 0, 8);
}

static void test_proto_hdr_decode_type_zero(void **state)
{
	assert_hdr_bad(0, 0, 0, "unknown frame type");
}

static void test_proto_hdr_decode_type_too_big(void **state)
{
	assert_hdr_bad(PROTO_TYPE_MAX, 0, 0, "unknown frame type");
	assert_hdr_bad(PROTO_TYPE_MAX + 1, 0, 8, "unknown frame type");
	assert_hdr_bad(UINT32_MAX, 0, 0, "unknown frame type");
}

static void test_proto_hdr_decode_fixed_wrong_len(void **state)
{
	static const struct {
		uint32_t type;
		uint64_t len;
	} fixed[] = {
		{ PROTO_HELLO, PROTO_HELLO_SIZE },  { PROTO_VMDESC, PROTO_VMDESC_SIZE },
		{ PROTO_REFUSE, PROTO_ERROR_SIZE }, { PROTO_ERROR, PROTO_ERROR_SIZE },
		{ PROTO_ROUND, PROTO_ROUND_SIZE },  { PROTO_STARTED, PROTO_STARTED_SIZE },
		{ PROTO_AFTER, PROTO_AFTER_SIZE },  { PROTO_REQ, PROTO_REQ_SIZE },
		{ PROTO_READY, PROTO_READY_SIZE },  { PROTO_STATUS, PROTO_STATUS_SIZE },
	};

	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++) {
		const char *want = "frame length does not match its type";

		assert_hdr_bad(fixed[i].type, 0, 0, want);
		assert_hdr_bad(fixed[i].type, 0, fixed[i].len - 1, want);
		assert_hdr_bad(fixed[i].type, 0, fixed[i].len + 1, want);
		assert_hdr_bad(fixed[i].type, 0, UINT64_MAX, want);
	}
}

static void test_proto_hdr_decode_accept_with_len(void **state)
{
	assert_hdr_bad(PROTO_ACCEPT, 0, 1, "frame length does not match its type");
	assert_hdr_bad(PROTO_ACCEPT, 0, UINT64_MAX, "frame length does not match its type");
}

static void test_proto_hdr_decode_switch_with_len(void **state)
{
	assert_hdr_bad(PROTO_SWITCH, 0, 8, "frame length does not match its type");
}

static void test_proto_hdr_decode_pages_too_small(void **state)
{
	assert_hdr_bad(PROTO_PAGES, 0, 0, "page batch frame of impossible size");
	assert_hdr_bad(PROTO_PAGES, 0, proto_pages_head_size(1) - 1,
		       "page batch frame of impossible size");
}

static void test_proto_hdr_decode_pages_too_big(void **state)
{
	assert_hdr_bad(PROTO_PAGES, 0, PROTO_MAX_PAYLOAD + 1,
		       "page batch frame of impossible size");
	assert_hdr_bad(PROTO_PAGES, PROTO_PAGES_LZ4, UINT64_MAX,
		       "page batch frame of impossible size");
}

static void test_proto_hdr_decode_pages_unknown_flags(void **state)
{
	assert_hdr_bad(PROTO_PAGES, 0x2, 4096, "unknown page batch flags");
	assert_hdr_bad(PROTO_PAGES, PROTO_PAGES_LZ4 | 0x80000000u, 4096,
		       "unknown page batch flags");
}

static void test_proto_hdr_decode_vmstate_empty(void **state)
{
	assert_hdr_bad(PROTO_VMSTATE, 0, 0, "state frame of impossible size");
}

static void test_proto_hdr_decode_vmstate_too_big(void **state)
{
	assert_hdr_bad(PROTO_VMSTATE, 0, PROTO_VMSTATE_MAX + 1, "state frame of impossible size");
	assert_hdr_bad(PROTO_VMSTATE, 0, UINT64_MAX, "state frame of impossible size");
}

static void test_proto_hdr_decode_flags_not_pages(void **state)
{
	assert_hdr_bad(PROTO_HELLO, PROTO_PAGES_LZ4, PROTO_HELLO_SIZE, "unknown frame flags");
	assert_hdr_bad(PROTO_ACCEPT, 0x100, 0, "unknown frame flags");
	assert_hdr_bad(PROTO_VMSTATE, PROTO_PAGES_LZ4, 100, "unknown frame flags");
	assert_hdr_bad(PROTO_ERROR, 1, PROTO_ERROR_SIZE, "unknown frame flags");
}

static void test_proto_hdr_decode_null_why(void **state)
{
	uint8_t buf[PROTO_HDR_SIZE];
	struct proto_hdr h;

	proto_hdr_encode(buf, 0, 0, 0);
	assert_int_equal(proto_hdr_decode(buf, &h, NULL), -EBADMSG);
}

/* ---- hello ---- */

static const struct proto_hello good_hello = {
	.magic = PROTO_MAGIC,
	.version = PROTO_VERSION,
	.channel = PROTO_CH_URGENT,
	.flags = PROTO_HELLO_RESUME,
	.secret = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76,
		    0x54, 0x32, 0x10 },
};

static int hello_decode(const struct proto_hello *in, struct proto_hello *out, const char **why)
{
	uint8_t buf[PROTO_HELLO_SIZE];

	*why = NULL;
	proto_hello_encode(buf, in);
	return proto_hello_decode(buf, sizeof(buf), out, why);
}

/* Field by field: the struct has padding that memcmp would compare. */
static void assert_hello_equal(const struct proto_hello *a, const struct proto_hello *b)
{
	assert_int_equal(a->magic, b->magic);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->channel, b->channel);
	assert_int_equal(a->flags, b->flags);
	assert_memory_equal(a->secret, b->secret, sizeof(a->secret));
}

static void test_proto_hello_decode_round_trip(void **state)
{
	struct proto_hello in = good_hello, out;
	const char *why;

	assert_int_equal(hello_decode(&in, &out, &why), 0);
	assert_hello_equal(&in, &out);
	in.channel = PROTO_CH_BULK;
	in.flags = 0;
	memset(in.secret, 0, sizeof(in.secret));
	assert_int_equal(hello_decode(&in, &out, &why), 0);
	assert_hello_equal(&in, &out);
}

static void test_proto_hello_decode_wrong_size(void **state)
{
	uint8_t buf[PROTO_HELLO_SIZE + 1] = { 0 };
	struct proto_hello out;
	const char *why = NULL;

	proto_hello_encode(buf, &good_hello);
	assert_int_equal(proto_hello_decode(buf, PROTO_HELLO_SIZE - 1, &out, &why), -EBADMSG);
	assert_string_equal(why, "hello of wrong size");
	why = NULL;
	assert_int_equal(proto_hello_decode(buf, PROTO_HELLO_SIZE + 1, &out, &why), -EBADMSG);
	assert_string_equal(why, "hello of wrong size");
}

static void test_proto_hello_decode_bad_magic(void **state)
{
	struct proto_hello in = good_hello, out;
	const char *why;

	in.magic ^= 1;
	assert_int_equal(hello_decode(&in, &out, &why), -EPROTO);
	assert_string_equal(why, "peer is not hybridmig (bad magic)");
	in.magic = 0;
	assert_int_equal(hello_decode(&in, &out, &why), -EPROTO);
	assert_non_null(why);
}

static void test_proto_hello_decode_bad_version(void **state)
{
	struct proto_hello in = good_hello, out;
	const char *why;

	in.version = PROTO_VERSION + 1;
	assert_int_equal(hello_decode(&in, &out, &why), -EPROTO);
	assert_string_equal(why, "peer speaks another protocol version");
	in.version = 0;
	assert_int_equal(hello_decode(&in, &out, &why), -EPROTO);
	assert_string_equal(why, "peer speaks another protocol version");
}

static void test_proto_hello_decode_bad_channel(void **state)
{
	struct proto_hello in = good_hello, out;
	const char *why;

	in.channel = PROTO_CH_URGENT + 1;
	assert_int_equal(hello_decode(&in, &out, &why), -EBADMSG);
	assert_string_equal(why, "unknown channel in hello");
	in.channel = UINT32_MAX;
	assert_int_equal(hello_decode(&in, &out, &why), -EBADMSG);
	assert_string_equal(why, "unknown channel in hello");
}

/* ---- round, started, after ---- */

/* 0 and codes past the errno range once crashed the source (-(int)code became >= 0) */
static void test_proto_error_decode_impossible_code(void **state)
{
	static const uint32_t codes[] = { 0, PROTO_ERRNO_MAX + 1, 0x7fffffff, 0x80000000,
					  0xffffffff };
	uint8_t buf[PROTO_ERROR_SIZE];
	struct proto_error out;
	const char *why;

	for (size_t i = 0; i < ARRAY_SIZE(codes); i++) {
		why = NULL;
		proto_error_encode(buf, codes[i], "x");
		assert_int_equal(proto_error_decode(buf, sizeof(buf), &out, &why), -EBADMSG);
		assert_string_equal(why, "error frame with an impossible code");
	}
}

static void test_proto_hello_decode_unknown_flags(void **state)
{
	struct proto_hello in = good_hello, out;
	const char *why;

	in.flags = 0x2;
	assert_int_equal(hello_decode(&in, &out, &why), -EBADMSG);
	assert_string_equal(why, "unknown hello flags");
}

static void test_proto_ready_decode_round_trip(void **state)
{
	struct proto_ready in = { .restore_ns = 123456789 }, out;
	uint8_t buf[PROTO_READY_SIZE];
	const char *why = NULL;

	proto_ready_encode(buf, &in);
	assert_int_equal(proto_ready_decode(buf, sizeof(buf), &out, &why), 0);
	assert_int_equal(out.restore_ns, in.restore_ns);
	assert_int_equal(proto_ready_decode(buf, sizeof(buf) - 1, &out, &why), -EBADMSG);
}

static void test_proto_status_decode_round_trip(void **state)
{
	struct proto_status in = { .phase = PROTO_DST_WAIT_GO, .missing = 77 }, out;
	uint8_t buf[PROTO_STATUS_SIZE];
	const char *why = NULL;

	proto_status_encode(buf, &in);
	assert_int_equal(proto_status_decode(buf, sizeof(buf), &out, &why), 0);
	assert_int_equal(out.phase, in.phase);
	assert_int_equal(out.missing, in.missing);
}

static void test_proto_status_decode_unknown_phase(void **state)
{
	struct proto_status in = { .phase = PROTO_DST_RUNNING + 1 }, out;
	uint8_t buf[PROTO_STATUS_SIZE];
	const char *why = NULL;

	proto_status_encode(buf, &in);
	assert_int_equal(proto_status_decode(buf, sizeof(buf), &out, &why), -EBADMSG);
	assert_string_equal(why, "status frame with an unknown phase");
	in.phase = 0;
	proto_status_encode(buf, &in);
	assert_int_equal(proto_status_decode(buf, sizeof(buf), &out, &why), -EBADMSG);
}

static void test_proto_req_decode_range(void **state)
{
	uint8_t buf[PROTO_REQ_SIZE];
	const char *why = NULL;
	uint64_t gfn = 0;

	proto_req_encode(buf, 99);
	assert_int_equal(proto_req_decode(buf, sizeof(buf), 100, &gfn, &why), 0);
	assert_int_equal(gfn, 99);
	assert_int_equal(proto_req_decode(buf, sizeof(buf), 99, &gfn, &why), -EBADMSG);
	assert_string_equal(why, "page request outside guest RAM");
	assert_int_equal(proto_req_decode(buf, sizeof(buf) - 1, 100, &gfn, &why), -EBADMSG);
}

static void test_proto_hdr_decode_go_with_len(void **state)
{
	assert_hdr_bad(PROTO_GO, 0, 1, "frame length does not match its type");
	assert_hdr_ok(PROTO_GO, 0, 0);
}

static void test_proto_round_decode_round_trip(void **state)
{
	const struct proto_round in = { .round = 0xfedcba98u,
					.pages = 0x1122334455667788ULL,
					.dirty_rate = UINT64_MAX };
	uint8_t buf[PROTO_ROUND_SIZE + 1];
	struct proto_round out = { 0 };
	const char *why = NULL;

	proto_round_encode(buf, &in);
	assert_int_equal(proto_round_decode(buf, PROTO_ROUND_SIZE, &out, &why), 0);
	assert_int_equal(out.round, in.round);
	assert_int_equal(out.pages, in.pages);
	assert_int_equal(out.dirty_rate, in.dirty_rate);
	assert_int_equal(proto_round_decode(buf, PROTO_ROUND_SIZE + 1, &out, &why), -EBADMSG);
	assert_string_equal(why, "round frame of wrong size");
}

static void test_proto_started_decode_round_trip(void **state)
{
	const struct proto_started in = { .switch_to_run_ns = 123456789,
					  .restore_ns = 0x8000000000000001ULL };
	uint8_t buf[PROTO_STARTED_SIZE];
	struct proto_started out = { 0 };
	const char *why = NULL;

	proto_started_encode(buf, &in);
	assert_int_equal(proto_started_decode(buf, sizeof(buf), &out, &why), 0);
	assert_int_equal(out.switch_to_run_ns, in.switch_to_run_ns);
	assert_int_equal(out.restore_ns, in.restore_ns);
	assert_int_equal(proto_started_decode(buf, sizeof(buf) - 1, &out, &why), -EBADMSG);
	assert_string_equal(why, "started frame of wrong size");
}

static void test_proto_after_decode_round_trip(void **state)
{
	const struct proto_after in = { .units_per_s = 42, .first_report_ns = 999999999999ULL };
	uint8_t buf[PROTO_AFTER_SIZE];
	struct proto_after out = { 0 };
	const char *why = NULL;

	proto_after_encode(buf, &in);
	assert_int_equal(proto_after_decode(buf, sizeof(buf), &out, &why), 0);
	assert_int_equal(out.units_per_s, in.units_per_s);
	assert_int_equal(out.first_report_ns, in.first_report_ns);
	assert_int_equal(proto_after_decode(buf, sizeof(buf) - 1, &out, &why), -EBADMSG);
	assert_string_equal(why, "after frame of wrong size");
}

static void test_proto_progress_decode_round_trip(void **state)
{
	const struct proto_progress in = { .units = PROTO_UNITS_UNKNOWN,
					   .remote_faults = 7,
					   .pages_placed = 1ULL << 40,
					   .blocked_ns = 123456789 };
	uint8_t buf[PROTO_PROGRESS_SIZE + 1];
	struct proto_progress out = { 0 };
	struct proto_hdr h;
	const char *why = NULL;

	proto_progress_encode(buf, &in);
	assert_int_equal(proto_progress_decode(buf, PROTO_PROGRESS_SIZE, &out, &why), 0);
	assert_true(out.units == PROTO_UNITS_UNKNOWN);
	assert_int_equal(out.remote_faults, 7);
	assert_true(out.pages_placed == 1ULL << 40);
	assert_int_equal(out.blocked_ns, 123456789);
	assert_int_equal(proto_progress_decode(buf, PROTO_PROGRESS_SIZE + 1, &out, &why), -EBADMSG);
	assert_string_equal(why, "progress frame of wrong size");
	/* the header decoder holds the type to its size */
	proto_hdr_encode(buf, PROTO_PROGRESS, 0, PROTO_PROGRESS_SIZE - 8);
	assert_int_equal(proto_hdr_decode(buf, &h, &why), -EBADMSG);
	proto_hdr_encode(buf, PROTO_PROGRESS, 0, PROTO_PROGRESS_SIZE);
	assert_int_equal(proto_hdr_decode(buf, &h, &why), 0);
	assert_int_equal(h.type, PROTO_PROGRESS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proto_hdr_encode_layout),
		cmocka_unit_test(test_proto_error_decode_impossible_code),
		cmocka_unit_test(test_proto_hello_decode_unknown_flags),
		cmocka_unit_test(test_proto_ready_decode_round_trip),
		cmocka_unit_test(test_proto_status_decode_round_trip),
		cmocka_unit_test(test_proto_status_decode_unknown_phase),
		cmocka_unit_test(test_proto_req_decode_range),
		cmocka_unit_test(test_proto_hdr_decode_go_with_len),
		cmocka_unit_test(test_proto_hdr_decode_round_trip),
		cmocka_unit_test(test_proto_hdr_decode_type_zero),
		cmocka_unit_test(test_proto_hdr_decode_type_too_big),
		cmocka_unit_test(test_proto_hdr_decode_fixed_wrong_len),
		cmocka_unit_test(test_proto_hdr_decode_accept_with_len),
		cmocka_unit_test(test_proto_hdr_decode_switch_with_len),
		cmocka_unit_test(test_proto_hdr_decode_pages_too_small),
		cmocka_unit_test(test_proto_hdr_decode_pages_too_big),
		cmocka_unit_test(test_proto_hdr_decode_pages_unknown_flags),
		cmocka_unit_test(test_proto_hdr_decode_vmstate_empty),
		cmocka_unit_test(test_proto_hdr_decode_vmstate_too_big),
		cmocka_unit_test(test_proto_hdr_decode_flags_not_pages),
		cmocka_unit_test(test_proto_hdr_decode_null_why),
		cmocka_unit_test(test_proto_hello_decode_round_trip),
		cmocka_unit_test(test_proto_hello_decode_wrong_size),
		cmocka_unit_test(test_proto_hello_decode_bad_magic),
		cmocka_unit_test(test_proto_hello_decode_bad_version),
		cmocka_unit_test(test_proto_hello_decode_bad_channel),
		cmocka_unit_test(test_proto_round_decode_round_trip),
		cmocka_unit_test(test_proto_started_decode_round_trip),
		cmocka_unit_test(test_proto_after_decode_round_trip),
		cmocka_unit_test(test_proto_progress_decode_round_trip),
	};

	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
