// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/proto.h: the VM description (VMDESC) and the
 * ERROR/REFUSE frames that carry a reason, with the strings in both
 * (guest spec, message) cut to their fields, checked for termination and
 * sanitized: round trips and every rejection of the decoder.
 */
#include "tests/helpers.h"

#include <errno.h>
#include <string.h>
#include "src/proto.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
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
	};

	return cmocka_run_group_tests_name("proto vmdesc", tests, NULL, NULL);
}
