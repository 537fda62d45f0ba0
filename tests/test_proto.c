// SPDX-License-Identifier: MIT
/* Unit tests for src/proto.h: round trips and every rejection of the decoder. */
#include "tests/helpers.h"

#include <errno.h>
#include <string.h>
#include "src/proto.h"

#define MAX_GFN 1024

/* ---- header ---- */

/* Decode a header built from the given fields; *why is reset first. */
static int hdr_decode(uint32_t type, uint32_t flags, uint64_t len, struct proto_hdr *h,
		      const char **why)
{
	uint8_t buf[PROTO_HDR_SIZE];

	*why = NULL;
	proto_hdr_encode(buf, type, flags, len);
	return proto_hdr_decode(buf, h, why);
}

static void assert_hdr_ok(uint32_t type, uint32_t flags, uint64_t len)
{
	struct proto_hdr h;
	const char *why;

	assert_int_equal(hdr_decode(type, flags, len, &h, &why), 0);
	assert_int_equal(h.type, type);
	assert_int_equal(h.flags, flags);
	assert_int_equal(h.len, len);
}

static void assert_hdr_bad(uint32_t type, uint32_t flags, uint64_t len, const char *want)
{
	struct proto_hdr h;
	const char *why;

	assert_int_equal(hdr_decode(type, flags, len, &h, &why), -EBADMSG);
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

/* ---- vmdesc ---- */

static void fill_vmdesc(struct proto_vmdesc *m)
{
	memset(m, 0, sizeof(*m));
	m->mem_bytes = 64ULL << 20;
	m->nr_vcpus = 4;
	m->xsave_size = 4096;
	m->tsc_khz = 2995200;
	m->resident_bytes = 12ULL << 20;
	for (int i = 0; i < PROTO_CPUID_WORDS; i++)
		m->cpuid[i] = 0x01010101u * (uint32_t)(i + 1) | 0x80000000u;
	strcpy(m->spec, "idle:mem=64M,vcpus=4");
}

static void test_proto_vmdesc_decode_round_trip(void **state)
{
	uint8_t buf[PROTO_VMDESC_SIZE];
	struct proto_vmdesc in, out;
	const char *why = NULL;

	fill_vmdesc(&in);
	memset(&out, 0xa5, sizeof(out));
	proto_vmdesc_encode(buf, &in);
	assert_int_equal(proto_vmdesc_decode(buf, sizeof(buf), &out, &why), 0);
	assert_memory_equal(&in, &out, sizeof(in));
	assert_null(why);
}

/* A spec filling the whole field is cut to PROTO_SPEC_MAX - 1 characters. */
static void test_proto_vmdesc_encode_long_spec(void **state)
{
	uint8_t buf[PROTO_VMDESC_SIZE];
	struct proto_vmdesc in, out;
	const char *why = NULL;

	fill_vmdesc(&in);
	memset(in.spec, 'x', sizeof(in.spec)); /* not terminated */
	proto_vmdesc_encode(buf, &in);
	assert_int_equal(proto_vmdesc_decode(buf, sizeof(buf), &out, &why), 0);
	assert_int_equal(strlen(out.spec), PROTO_SPEC_MAX - 1);
}

static void test_proto_vmdesc_decode_wrong_size(void **state)
{
	uint8_t buf[PROTO_VMDESC_SIZE + 1] = { 0 };
	struct proto_vmdesc in, out;
	const char *why = NULL;

	fill_vmdesc(&in);
	proto_vmdesc_encode(buf, &in);
	assert_int_equal(proto_vmdesc_decode(buf, PROTO_VMDESC_SIZE - 1, &out, &why), -EBADMSG);
	assert_string_equal(why, "VM description of wrong size");
	why = NULL;
	assert_int_equal(proto_vmdesc_decode(buf, PROTO_VMDESC_SIZE + 1, &out, &why), -EBADMSG);
	assert_string_equal(why, "VM description of wrong size");
}

static void test_proto_vmdesc_decode_unterminated_spec(void **state)
{
	uint8_t buf[PROTO_VMDESC_SIZE];
	struct proto_vmdesc in, out;
	const char *why = NULL;

	fill_vmdesc(&in);
	proto_vmdesc_encode(buf, &in);
	memset(buf + PROTO_VMDESC_SIZE - PROTO_SPEC_MAX, 'a', PROTO_SPEC_MAX);
	assert_int_equal(proto_vmdesc_decode(buf, sizeof(buf), &out, &why), -EBADMSG);
	assert_string_equal(why, "guest spec in VM description is not terminated");
}

static void assert_vmdesc_bad(const struct proto_vmdesc *in)
{
	uint8_t buf[PROTO_VMDESC_SIZE];
	struct proto_vmdesc out;
	const char *why = NULL;

	proto_vmdesc_encode(buf, in);
	assert_int_equal(proto_vmdesc_decode(buf, sizeof(buf), &out, &why), -EBADMSG);
	assert_non_null(why);
	assert_string_equal(why, "VM description with impossible memory or vCPU count");
}

static void test_proto_vmdesc_decode_zero_memory(void **state)
{
	struct proto_vmdesc in;

	fill_vmdesc(&in);
	in.mem_bytes = 0;
	assert_vmdesc_bad(&in);
}

static void test_proto_vmdesc_decode_memory_not_page_multiple(void **state)
{
	struct proto_vmdesc in;

	fill_vmdesc(&in);
	in.mem_bytes = (64ULL << 20) + 1;
	assert_vmdesc_bad(&in);
	in.mem_bytes = PROTO_PAGE_SIZE - 1;
	assert_vmdesc_bad(&in);
	in.mem_bytes = (64ULL << 20) + PROTO_PAGE_SIZE / 2;
	assert_vmdesc_bad(&in);
}

static void test_proto_vmdesc_decode_zero_vcpus(void **state)
{
	struct proto_vmdesc in;

	fill_vmdesc(&in);
	in.nr_vcpus = 0;
	assert_vmdesc_bad(&in);
}

/* ---- error / refuse ---- */

static void test_proto_error_decode_round_trip(void **state)
{
	uint8_t buf[PROTO_ERROR_SIZE];
	struct proto_error out;
	const char *why = NULL;

	proto_error_encode(buf, ENOSPC, "not enough memory on the destination: 64 MiB");
	assert_int_equal(proto_error_decode(buf, sizeof(buf), &out, &why), 0);
	assert_int_equal(out.code, ENOSPC);
	assert_string_equal(out.msg, "not enough memory on the destination: 64 MiB");

	proto_error_encode(buf, PROTO_ERRNO_MAX, "");
	assert_int_equal(proto_error_decode(buf, sizeof(buf), &out, &why), 0);
	assert_int_equal(out.code, PROTO_ERRNO_MAX);
	assert_string_equal(out.msg, "");
	assert_null(why);
}

/* A message longer than the field is cut to PROTO_MSG_MAX - 1 characters. */
static void test_proto_error_encode_long_message(void **state)
{
	char msg[PROTO_MSG_MAX + 20];
	uint8_t buf[PROTO_ERROR_SIZE];
	struct proto_error out;
	const char *why = NULL;

	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = 0;
	proto_error_encode(buf, EIO, msg);
	assert_int_equal(proto_error_decode(buf, sizeof(buf), &out, &why), 0);
	assert_int_equal(strlen(out.msg), PROTO_MSG_MAX - 1);
	assert_memory_equal(out.msg, msg, PROTO_MSG_MAX - 1);
}

static void test_proto_error_decode_wrong_size(void **state)
{
	uint8_t buf[PROTO_ERROR_SIZE + 1] = { 0 };
	struct proto_error out;
	const char *why = NULL;

	proto_error_encode(buf, EIO, "x");
	assert_int_equal(proto_error_decode(buf, PROTO_ERROR_SIZE - 1, &out, &why), -EBADMSG);
	assert_string_equal(why, "error frame of wrong size");
	why = NULL;
	assert_int_equal(proto_error_decode(buf, PROTO_ERROR_SIZE + 1, &out, &why), -EBADMSG);
	assert_string_equal(why, "error frame of wrong size");
}

static void test_proto_error_decode_unterminated(void **state)
{
	uint8_t buf[PROTO_ERROR_SIZE];
	struct proto_error out;
	const char *why = NULL;

	proto_error_encode(buf, EIO, "x");
	memset(buf + 8, 'A', PROTO_MSG_MAX);
	assert_int_equal(proto_error_decode(buf, sizeof(buf), &out, &why), -EBADMSG);
	assert_string_equal(why, "error message is not terminated");
}

static void test_proto_error_decode_sanitizes(void **state)
{
	uint8_t buf[PROTO_ERROR_SIZE];
	struct proto_error out;
	const char *why = NULL;

	proto_error_encode(buf, EPERM,
			   "a\x1b[2Jb\nc\td\x7f"
			   "e\x80\xff~ ");
	assert_int_equal(proto_error_decode(buf, sizeof(buf), &out, &why), 0);
	assert_int_equal(out.code, EPERM);
	assert_string_equal(out.msg, "a?[2Jb?c?d?e??~ ");
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

/* ---- pages ---- */

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
	assert_int_equal(hdr_decode(PROTO_PAGES, 0, len, &h, &why), 0);
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
		cmocka_unit_test(test_proto_vmdesc_decode_round_trip),
		cmocka_unit_test(test_proto_vmdesc_encode_long_spec),
		cmocka_unit_test(test_proto_vmdesc_decode_wrong_size),
		cmocka_unit_test(test_proto_vmdesc_decode_unterminated_spec),
		cmocka_unit_test(test_proto_vmdesc_decode_zero_memory),
		cmocka_unit_test(test_proto_vmdesc_decode_memory_not_page_multiple),
		cmocka_unit_test(test_proto_vmdesc_decode_zero_vcpus),
		cmocka_unit_test(test_proto_error_decode_round_trip),
		cmocka_unit_test(test_proto_error_encode_long_message),
		cmocka_unit_test(test_proto_error_decode_wrong_size),
		cmocka_unit_test(test_proto_error_decode_unterminated),
		cmocka_unit_test(test_proto_error_decode_sanitizes),
		cmocka_unit_test(test_proto_round_decode_round_trip),
		cmocka_unit_test(test_proto_started_decode_round_trip),
		cmocka_unit_test(test_proto_after_decode_round_trip),
		cmocka_unit_test(test_proto_progress_decode_round_trip),
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

	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
