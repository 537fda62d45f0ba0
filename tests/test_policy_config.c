// SPDX-License-Identifier: MIT
/*
 * Unit tests for policy/config.c, the limits file (--policy FILE): the
 * defaults, every key in its file unit, comments and blank lines, errors
 * that name their line; setting, listing and reading back every key.
 */
#include "tests/helpers.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "policy/policy.h"
#include "src/util.h"
#include "tests/policy_guests.h"

static void test_config_defaults(void **state)
{
	struct policy_limits l, p;
	char why[WHY_LEN] = "";

	policy_limits_default(&l);
	assert_true(l.max_downtime_s == 0.3);
	assert_true(l.max_total_s == 0);
	assert_true(l.allow_postcopy);
	assert_true(l.max_slowdown == 0.5);
	assert_int_equal(l.max_rounds, 100);
	assert_true(l.shrink_margin == 0.1);
	assert_true(l.downtime_tie_s == 0.005);
	assert_true(l.bandwidth_cap == 0);
	assert_true(l.blip_drop == 0.5);
	assert_int_equal(l.blip_rounds, 2);
	assert_true(l.ewma_alpha == 0.3);
	assert_true(l.checkpoint_s == 1.0);
	assert_true(l.switch_cost_s == 0.0008);
	assert_true(l.fault_service_s == 60e-6);
	/* an empty file, or one of comments only, keeps them */
	policy_limits_default(&p);
	assert_int_equal(policy_config_parse("", &p, why, sizeof(why)), 0);
	assert_int_equal(policy_config_parse("# nothing\n\n   \n\t# still\n", &p, why, sizeof(why)),
			 0);
	for (size_t i = 0; i < policy_config_count(); i++) {
		double a, b;

		assert_string_equal(policy_config_get(&l, i, true, &a),
				    policy_config_get(&p, i, true, &b));
		assert_true(a == b);
	}
}

/* Every key parses, in its file unit. */
static void test_config_parse_every_key(void **state)
{
	assert_int_equal(policy_config_count(), 14);
	for (size_t i = 0; i < policy_config_count(); i++) {
		struct policy_limits l;
		char text[128], why[WHY_LEN] = "";
		double def, got;
		const char *k = policy_config_get(&l, i, false, &got);
		const char *v = pg_sample_value(k);

		if (!v) {
			fail_msg("key %s has no sample value in this test", k);
			return; /* fail_msg does not return; gcc -O1 cannot tell */
		}
		policy_limits_default(&l);
		policy_config_get(&l, i, false, &def);
		snprintf(text, sizeof(text), "%s = %s\n", k, v);
		if (policy_config_parse(text, &l, why, sizeof(why)))
			fail_msg("\"%s\": %s", text, why);
		policy_config_get(&l, i, false, &got);
		if (!strcmp(v, "no"))
			assert_true(got == 0);
		else
			assert_true(got == strtod(v, NULL));
		assert_true(got != def);
	}
}

static void test_config_parse_units(void **state)
{
	struct policy_limits l;
	char why[WHY_LEN];

	policy_limits_default(&l);
	assert_int_equal(policy_config_parse("max_downtime_ms = 50\nfault_service_us = 100\n"
					     "switch_cost_ms=2\nmax_total_s=60",
					     &l, why, sizeof(why)),
			 0);
	assert_true(l.max_downtime_s == 50 * 1e-3);
	assert_true(l.fault_service_s == 100 * 1e-6);
	assert_true(l.switch_cost_s == 2 * 1e-3);
	assert_true(l.max_total_s == 60);
	/* booleans in their usual spellings */
	assert_int_equal(policy_config_parse("allow_postcopy = off", &l, why, sizeof(why)), 0);
	assert_false(l.allow_postcopy);
	assert_int_equal(policy_config_parse("allow_postcopy = YES", &l, why, sizeof(why)), 0);
	assert_true(l.allow_postcopy);
	assert_int_equal(policy_config_parse("allow_postcopy = false", &l, why, sizeof(why)), 0);
	assert_false(l.allow_postcopy);
	assert_int_equal(policy_config_parse("allow_postcopy = 1", &l, why, sizeof(why)), 0);
	assert_true(l.allow_postcopy);
}

static void test_config_comments_and_blank_lines(void **state)
{
	static const char text[] = "# the SRE's limits\n"
				   "\n"
				   "   max_rounds   =   7   # after a value\n"
				   "\tmax_slowdown\t=\t0.2\r\n"
				   "#max_rounds = 9\n"
				   "   \n"
				   "blip_rounds = 0";
	struct policy_limits l;
	char why[WHY_LEN] = "";

	policy_limits_default(&l);
	if (policy_config_parse(text, &l, why, sizeof(why)))
		fail_msg("%s", why);
	assert_int_equal(l.max_rounds, 7);
	assert_true(l.max_slowdown == 0.2);
	assert_int_equal(l.blip_rounds, 0);
}

struct bad_config {
	const char *text;
	const char *want; /* in the message, after "line N: " */
	unsigned int line;
};

static void test_config_parse_errors_name_the_line(void **state)
{
	static const struct bad_config c[] = {
		{ "max_rounds = 5\nmax_roundz = 5\n", "unknown key 'max_roundz'", 2 },
		{ "# c\n\nmax_slowdown = half\n", "max_slowdown: 'half' is not a number", 3 },
		{ "\n\n\n\nmax_rounds = 0\n", "max_rounds: 0 is out of range", 5 },
		{ "max_rounds = 2.5\n", "max_rounds: 2.5 is out of range", 1 },
		{ "max_slowdown = 1.5", "out of range", 1 },
		{ "max_downtime_ms = 0.01", "out of range", 1 },
		{ "ewma_alpha = 0", "out of range", 1 },
		{ "max_total_s = -1", "out of range", 1 },
		{ "max_rounds = 5\n# c\nmax_rounds 6\n",
		  "'max_rounds 6' is not of the form key = "
		  "value",
		  3 },
		{ "allow_postcopy = maybe\n", "allow_postcopy: 'maybe' is not yes or no", 1 },
		{ "max_rounds =\n", "max_rounds: '' is not a number", 1 },
		{ "= 5\n", "unknown key ''", 1 },
		{ "max_rounds = 5 6\n", "not a number", 1 },
		{ "max_rounds = 5\r\nmax_slowdown = nan\r\n", "'nan' is not a number", 2 },
		{ "max_slowdown = inf\n", "not a number", 1 },
		{ "max_slowdown = 0.5x\n", "not a number", 1 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		struct policy_limits l;
		char why[WHY_LEN] = "", want[64];
		int err;

		policy_limits_default(&l);
		err = policy_config_parse(c[i].text, &l, why, sizeof(why));
		snprintf(want, sizeof(want), "line %u: ", c[i].line);
		if (err != -EINVAL || strncmp(why, want, strlen(want)) || !strstr(why, c[i].want))
			fail_msg("case %zu: got %d \"%s\"; want -EINVAL \"%s%s\"", i, err, why,
				 want, c[i].want);
	}
}

static void test_config_long_line(void **state)
{
	char text[700], why[WHY_LEN];
	struct policy_limits l;

	policy_limits_default(&l);
	memset(text, ' ', sizeof(text));
	memcpy(text, "max_rounds = 5\n# ", 17);
	text[sizeof(text) - 1] = 0;
	assert_int_equal(policy_config_parse(text, &l, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "line 2: longer than"));
}

static void test_config_set(void **state)
{
	struct policy_limits l;
	char why[WHY_LEN];

	policy_limits_default(&l);
	assert_int_equal(policy_config_set(&l, "max_rounds", "9", why, sizeof(why)), 0);
	assert_int_equal(l.max_rounds, 9);
	assert_int_equal(policy_config_set(&l, "nope", "9", why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "unknown key 'nope'"));
	assert_int_equal(policy_config_set(&l, "max_rounds", "10001", why, sizeof(why)), -EINVAL);
	assert_int_equal(l.max_rounds, 9);
}

/* The format lists every key once, in order, and reads back as a limits file. */
static void test_config_format_lists_every_key(void **state)
{
	struct policy_limits l, back;
	char buf[4096], why[WHY_LEN] = "";
	const char *line = buf;
	size_t n;

	policy_limits_default(&l);
	n = policy_config_format(&l, buf, sizeof(buf));
	assert_int_equal(n, strlen(buf));
	for (size_t i = 0; i < policy_config_count(); i++) {
		double v;
		const char *k = policy_config_get(&l, i, false, &v);

		if (strncmp(line, k, strlen(k)) || line[strlen(k)] != ' ')
			fail_msg("line %zu is not %s:\n%s", i + 1, k, buf);
		assert_non_null(strstr(line, " # "));
		line = strchr(line, '\n');
		assert_non_null(line);
		line++;
	}
	assert_string_equal(line, "");
	/* the listing is itself a valid limits file with the same values */
	pg_set_samples(&l);
	policy_config_format(&l, buf, sizeof(buf));
	policy_limits_default(&back);
	if (policy_config_parse(buf, &back, why, sizeof(why)))
		fail_msg("%s\n%s", why, buf);
	for (size_t i = 0; i < policy_config_count(); i++) {
		double a, b;

		policy_config_get(&l, i, true, &a);
		policy_config_get(&back, i, true, &b);
		assert_near(b, a);
	}
	/* too small a buffer: the length it needs, and no overrun */
	memset(buf, 'x', sizeof(buf));
	policy_limits_default(&l);
	assert_int_equal(policy_config_format(&l, buf, 10), n);
	assert_int_equal(buf[9], 0);
	assert_int_equal(buf[10], 'x');
}

/* get(internal) / set_internal: every key reads back exactly. */
static void test_config_get_set_internal_roundtrip(void **state)
{
	struct policy_limits a, b;

	pg_set_samples(&a);
	a.max_downtime_s = 0.1 + 0.2; /* not a short decimal */
	a.max_slowdown = 1.0 / 3;
	memset(&b, 0, sizeof(b));
	for (size_t i = 0; i < policy_config_count(); i++) {
		double v;
		const char *k = policy_config_get(&a, i, true, &v);

		assert_int_equal(policy_config_set_internal(&b, k, v), 0);
	}
	assert_null(policy_config_get(&a, policy_config_count(), true, &(double){ 0 }));
	assert_memory_equal(&a, &b, sizeof(a));
	/* bounds hold for the internal form too */
	assert_int_equal(policy_config_set_internal(&b, "nope", 1), -EINVAL);
	assert_int_equal(policy_config_set_internal(&b, "max_slowdown", 2), -EINVAL);
	assert_int_equal(policy_config_set_internal(&b, "max_slowdown", NAN), -EINVAL);
	assert_int_equal(policy_config_set_internal(&b, "max_downtime_s", 0.3), -EINVAL);
	assert_int_equal(policy_config_set_internal(&b, "max_downtime_ms", 601.0), -EINVAL);
	assert_int_equal(policy_config_set_internal(&b, "max_downtime_ms", 600.0), 0);
	assert_int_equal(policy_config_set_internal(&b, "max_rounds", 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_parse_every_key),
		cmocka_unit_test(test_config_parse_units),
		cmocka_unit_test(test_config_comments_and_blank_lines),
		cmocka_unit_test(test_config_parse_errors_name_the_line),
		cmocka_unit_test(test_config_long_line),
		cmocka_unit_test(test_config_set),
		cmocka_unit_test(test_config_format_lists_every_key),
		cmocka_unit_test(test_config_get_set_internal_roundtrip),
	};

	return cmocka_run_group_tests_name("policy config", tests, NULL, NULL);
}
