// SPDX-License-Identifier: MIT
/*
 * Unit tests for policy/curve.c, the working-set curve W(t): reading it at
 * and between its points, past them and capped (policy_curve_at); adding
 * points in order, replacing and forgetting them (policy_curve_add);
 * merging two curves (policy_curve_merge).
 */
#include "tests/helpers.h"

#include <math.h>
#include <string.h>
#include "policy/policy.h"
#include "src/util.h"
#include "tests/policy_guests.h"

static struct policy_curve curve(const double *t, const double *p, uint32_t n)
{
	struct policy_curve c;

	memset(&c, 0, sizeof(c));
	c.n = n;
	memcpy(c.t_s, t, n * sizeof(double));
	memcpy(c.pages, p, n * sizeof(double));
	return c;
}

static void expect_ascending(const struct policy_curve *c)
{
	for (uint32_t i = 1; i < c->n; i++)
		if (!(c->t_s[i] > c->t_s[i - 1]) || c->pages[i] < c->pages[i - 1])
			fail_msg("point %u: (%g s, %g) after (%g s, %g)", i, c->t_s[i], c->pages[i],
				 c->t_s[i - 1], c->pages[i - 1]);
}

static void test_curve_at_points_and_between(void **state)
{
	static const double t[] = { 0.1, 1, 10 };
	static const double p[] = { 100, 1000, 4000 };
	struct policy_curve c = curve(t, p, 3);

	for (int i = 0; i < 3; i++)
		assert_near(policy_curve_at(&c, t[i], 0), p[i]);
	/* log-log: a power law per segment, so the geometric midpoints */
	assert_near(policy_curve_at(&c, sqrt(0.1 * 1), 0), sqrt(100.0 * 1000));
	assert_near(policy_curve_at(&c, sqrt(1 * 10.0), 0), sqrt(1000.0 * 4000));
	/* below the first point: linear through the origin */
	assert_near(policy_curve_at(&c, 0.05, 0), 50);
	assert_near(policy_curve_at(&c, 0, 0), 0);
	assert_near(policy_curve_at(&c, -1, 0), 0);
	/* non-decreasing everywhere */
	for (double x = 0.01, prev = 0; x < 100; x *= 1.1) {
		double w = policy_curve_at(&c, x, 0);

		assert_true(w >= prev);
		prev = w;
	}
}

static void test_curve_at_extrapolation(void **state)
{
	static const double t[] = { 1, 2, 4 };
	static const double sub[] = { 100, 150, 200 };
	static const double flat[] = { 100, 200, 200 };
	static const double steep[] = { 10, 20, 1000 };
	struct policy_curve c = curve(t, sub, 3);
	double a = log(200.0 / 150) / log(2.0);

	/* the last segment's exponent */
	assert_near(policy_curve_at(&c, 16, 0), 200 * pow(4, a));
	c = curve(t, flat, 3);
	assert_near(policy_curve_at(&c, 100, 0), 200);
	/* never faster than time */
	c = curve(t, steep, 3);
	assert_near(policy_curve_at(&c, 8, 0), 2000);
	/* one point: linear */
	c = curve(t, sub, 1);
	assert_near(policy_curve_at(&c, 3, 0), 300);
	assert_near(policy_curve_at(&c, 0.5, 0), 50);
}

static void test_curve_at_cap_and_empty(void **state)
{
	static const double t[] = { 1, 2 };
	static const double p[] = { 100, 200 };
	struct policy_curve c = curve(t, p, 2);
	struct policy_curve none;

	memset(&none, 0, sizeof(none));
	assert_near(policy_curve_at(&c, 100, 0), 10000);
	assert_near(policy_curve_at(&c, 100, 500), 500);
	assert_near(policy_curve_at(&c, 1, 500), 100);
	assert_near(policy_curve_at(&none, 5, 0), 0);
	assert_near(policy_curve_at(&none, 5, 100), 0);
}

/*
 * A segment steeper than linear (a burst between two windows) still passes
 * through both points, continuously: the quiet window must not hide it.
 */
static void test_curve_at_steep_segment(void **state)
{
	static const double t[] = { 0.5, 1, 2, 5 };
	static const double p[] = { 100, 200, 100000, 100000 };
	struct policy_curve c = curve(t, p, 4);
	double w;

	assert_near(policy_curve_at(&c, 1, 0), 200);
	assert_near(policy_curve_at(&c, 2, 0), 100000);
	w = policy_curve_at(&c, 1.5, 0);
	assert_true(w > 300 && w < 100000);
	assert_true(policy_curve_at(&c, 1.999, 0) > 0.99 * 100000);
	/* past the last point the exponent stays within [0, 1] */
	assert_near(policy_curve_at(&c, 50, 0), 100000);
}

/* A zero point followed by a positive one: linear between them. */
static void test_curve_at_zero_point(void **state)
{
	static const double t[] = { 1, 3 };
	static const double p[] = { 0, 100 };
	struct policy_curve c = curve(t, p, 2);

	assert_near(policy_curve_at(&c, 0.5, 0), 0);
	assert_near(policy_curve_at(&c, 2, 0), 50);
	assert_near(policy_curve_at(&c, 3, 0), 100);
	assert_false(isnan(policy_curve_at(&c, 6, 0)));
}

static void test_curve_add_inserts_in_order(void **state)
{
	static const double t[] = { 5, 0.5, 30, 0.1, 2 };
	struct policy_curve c;

	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		policy_curve_add(&c, t[i], t[i] * 100);
	assert_int_equal(c.n, 5);
	expect_ascending(&c);
	assert_near(c.t_s[0], 0.1);
	assert_near(c.t_s[4], 30);
	assert_near(c.pages[2], 200);
	/* nonsense is ignored */
	policy_curve_add(&c, 0, 5);
	policy_curve_add(&c, -1, 5);
	policy_curve_add(&c, NAN, 5);
	policy_curve_add(&c, 1, -5);
	policy_curve_add(&c, 1, NAN);
	assert_int_equal(c.n, 5);
}

static void test_curve_add_replaces_within_10pct(void **state)
{
	struct policy_curve c;

	memset(&c, 0, sizeof(c));
	policy_curve_add(&c, 1, 100);
	policy_curve_add(&c, 2, 200);
	policy_curve_add(&c, 1.05, 120);
	assert_int_equal(c.n, 2);
	assert_near(c.t_s[0], 1.05);
	assert_near(c.pages[0], 120);
	policy_curve_add(&c, 1.2, 150);
	assert_int_equal(c.n, 3);
	expect_ascending(&c);
}

/* Replacing within 10 % must keep t ascending, even between close points. */
static void test_curve_add_replace_keeps_order(void **state)
{
	static const double seq[] = { 1.0, 1.2, 1.1, 1.21, 1.3, 1.15, 1.25 };
	struct policy_curve c;

	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < ARRAY_SIZE(seq); i++) {
		policy_curve_add(&c, seq[i], 100 * seq[i]);
		expect_ascending(&c);
	}
	/* the point just added is on the curve */
	assert_near(policy_curve_at(&c, 1.25, 0), 125);
}

/* The newest point wins: W stays non-decreasing in t. */
static void test_curve_add_keeps_non_decreasing(void **state)
{
	static const double t[] = { 0.1, 1, 10 };
	static const double p[] = { 100, 1000, 5000 };
	struct policy_curve c = curve(t, p, 3);

	policy_curve_add(&c, 0.5, 2000); /* above the later 1 s point: raises it */
	expect_ascending(&c);
	assert_near(c.pages[2], 2000);
	assert_near(c.pages[3], 5000);
	policy_curve_add(&c, 5, 50); /* below the earlier points: lowers them */
	expect_ascending(&c);
	for (uint32_t i = 0; i < c.n; i++)
		if (c.t_s[i] <= 5)
			assert_true(c.pages[i] <= 50);
	assert_near(c.pages[c.n - 1], 5000);
}

/* A full curve forgets an inner point and keeps its span. */
static void test_curve_add_full_keeps_span(void **state)
{
	struct policy_curve c;

	memset(&c, 0, sizeof(c));
	for (int i = 0; i < POLICY_MAX_POINTS; i++)
		policy_curve_add(&c, 0.1 * pow(1.5, i), 10.0 * (i + 1));
	assert_int_equal(c.n, POLICY_MAX_POINTS);
	policy_curve_add(&c, 1000, 1000);
	assert_int_equal(c.n, POLICY_MAX_POINTS);
	assert_near(c.t_s[0], 0.1);
	assert_near(c.t_s[c.n - 1], 1000);
	expect_ascending(&c);
	policy_curve_add(&c, 0.01, 1);
	assert_int_equal(c.n, POLICY_MAX_POINTS);
	assert_near(c.t_s[0], 0.01);
	assert_near(c.t_s[c.n - 1], 1000);
	expect_ascending(&c);
}

/* Merge: the union of the points, @src's where both have one. */
static void test_curve_merge_src_wins(void **state)
{
	static const double ta[] = { 0.1, 1, 10 };
	static const double pa[] = { 10, 100, 1000 };
	static const double tb[] = { 0.5, 1.02, 30 };
	static const double pb[] = { 50, 150, 2000 };
	struct policy_curve a = curve(ta, pa, 3);
	struct policy_curve b = curve(tb, pb, 3);

	policy_curve_merge(&a, &b);
	assert_int_equal(a.n, 5);
	expect_ascending(&a);
	assert_near(policy_curve_at(&a, 1.02, 0), 150);
	assert_near(policy_curve_at(&a, 30, 0), 2000);
	assert_near(policy_curve_at(&a, 0.1, 0), 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_curve_at_points_and_between),
		cmocka_unit_test(test_curve_at_extrapolation),
		cmocka_unit_test(test_curve_at_cap_and_empty),
		cmocka_unit_test(test_curve_at_steep_segment),
		cmocka_unit_test(test_curve_at_zero_point),
		cmocka_unit_test(test_curve_add_inserts_in_order),
		cmocka_unit_test(test_curve_add_replaces_within_10pct),
		cmocka_unit_test(test_curve_add_replace_keeps_order),
		cmocka_unit_test(test_curve_add_keeps_non_decreasing),
		cmocka_unit_test(test_curve_add_full_keeps_span),
		cmocka_unit_test(test_curve_merge_src_wins),
	};

	return cmocka_run_group_tests_name("policy curve", tests, NULL, NULL);
}
