// SPDX-License-Identifier: MIT
/* Unit tests for the migration report: failure classes and the JSON round trip. */
#include "tests/helpers.h"

#include <errno.h>
#include <string.h>
#include "src/json.h"
#include "src/mig.h"

static void test_failure_class_of_each_errno(void **state)
{
	(void)state;
	assert_null(mig_failure_class(0, false));
	assert_string_equal(mig_failure_class(-ECANCELED, false), "cancelled");
	assert_string_equal(mig_failure_class(-ETIME, false), "not_converged");
	/* the destination's code is its own; what counts is that it refused */
	assert_string_equal(mig_failure_class(-ENOMEM, true), "refused");
	assert_string_equal(mig_failure_class(-EPERM, true), "refused");
	assert_string_equal(mig_failure_class(-EBUSY, false), "refused");
	assert_string_equal(mig_failure_class(-EPIPE, false), "link_lost");
	assert_string_equal(mig_failure_class(-ECONNRESET, false), "link_lost");
	assert_string_equal(mig_failure_class(-ECONNREFUSED, false), "link_lost");
	assert_string_equal(mig_failure_class(-ETIMEDOUT, false), "link_lost");
	assert_string_equal(mig_failure_class(-EPROTO, false), "error");
	assert_string_equal(mig_failure_class(-EIO, false), "error");
	/* an operator's cancel stays a cancel even if the peer had said something */
	assert_string_equal(mig_failure_class(-ECANCELED, true), "cancelled");
}

/* Write a report, parse it back as the CLI does, and compare what it prints from. */
static void roundtrip(const struct mig_stats *in, struct mig_stats *out, char *buf, size_t cap)
{
	struct json_field f[160];
	struct json_out j;
	const char *why = NULL;
	int n;

	json_init(&j, buf, cap);
	json_obj_begin(&j, NULL);
	mig_report_json(in, &j);
	json_obj_end(&j);
	assert_true(json_done(&j));
	n = json_parse_flat(buf, strlen(buf), f, 160, &why);
	if (n < 0)
		fail_msg("report does not parse: %s: %s", why ? why : "?", buf);
	memset(out, 0, sizeof(*out));
	mig_report_from_json(out, f, (size_t)n);
}

static void test_report_carries_the_failure(void **state)
{
	static char buf[16384];
	struct mig_stats in = { .phase = "failed", .rounds = 2, .err = -ETIME };
	struct mig_stats out;

	(void)state;
	snprintf(in.error, sizeof(in.error), "pre-copy did not converge within 4 s");
	snprintf(in.failure, sizeof(in.failure), "%s", mig_failure_class(in.err, false));
	roundtrip(&in, &out, buf, sizeof(buf));
	assert_string_equal(out.failure, "not_converged");
	assert_string_equal(out.error, in.error);
	assert_int_not_equal(out.err, 0);
	assert_non_null(strstr(buf, "\"failure\":\"not_converged\""));
}

static void test_report_of_success_has_null_failure(void **state)
{
	static char buf[16384];
	struct mig_stats in = { .phase = "done", .rounds = 1 };
	struct mig_stats out;

	(void)state;
	roundtrip(&in, &out, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"failure\":null"));
	assert_non_null(strstr(buf, "\"error\":null"));
	/* the same keys in every mode: post-copy's are null after a pre-copy */
	assert_non_null(strstr(buf, "\"fault_latency_p99_us\":null"));
	assert_non_null(strstr(buf, "\"pages_pushed\":null"));
	assert_non_null(strstr(buf, "\"schema\":1,"));
	assert_non_null(strstr(buf, "\"started_at\":\"20"));
	assert_string_equal(out.failure, "");
	assert_int_equal(out.err, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failure_class_of_each_errno),
		cmocka_unit_test(test_report_carries_the_failure),
		cmocka_unit_test(test_report_of_success_has_null_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
