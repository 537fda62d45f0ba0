// SPDX-License-Identifier: MIT
/*
 * Unit tests for policy/model.c, the predictions per mode (policy_predict),
 * on synthetic guests (tests/policy_guests.h): more bandwidth, hotter or
 * more local writers, no writes, more resident pages; hybrid's switch
 * point; the total-time and downtime limits; degenerate inputs.
 */
#include "tests/helpers.h"

#include <math.h>
#include <string.h>
#include "policy/policy.h"
#include "src/util.h"
#include "tests/policy_guests.h"

static void predict(const struct pg_guest *g, const struct policy_limits *l, double bw,
		    enum policy_mode m, struct policy_prediction *p)
{
	struct policy_input in;

	pg_input_start(g, &in);
	policy_predict(l, &in, &in.wss, bw, m, p);
	assert_true(p->valid);
	assert_false(isnan(p->total_s) || isnan(p->downtime_s) || isnan(p->slowdown));
}

/*
 * More bandwidth: pre-copy ends sooner with a pause no longer (up to the
 * tie margin: where it stops within that margin is the stopping rule's).
 */
static void test_predict_precopy_more_bandwidth_faster(void **state)
{
	static const double bw[] = { 100e6, 125e6, 250e6, 1.25e9, 12.5e9 };
	struct pg_guest gs[] = { pg_guest_idle(), pg_guest_writer(0.3, 1), pg_guest_writer(0.5, 0),
				 pg_guest_hot_set(6000) };
	struct policy_limits l = pg_limits();

	for (size_t i = 0; i < ARRAY_SIZE(gs); i++) {
		struct policy_prediction prev;

		predict(&gs[i], &l, bw[0], POLICY_PRECOPY, &prev);
		assert_true(prev.completes);
		for (size_t k = 1; k < ARRAY_SIZE(bw); k++) {
			struct policy_prediction p;

			predict(&gs[i], &l, bw[k], POLICY_PRECOPY, &p);
			assert_true(p.completes);
			/* pre-copy stops once a round cuts less than the tie margin */
			if (!(p.total_s < prev.total_s) ||
			    !(p.downtime_s <= prev.downtime_s + l.downtime_tie_s))
				fail_msg("guest %zu at %.3g B/s: total %.3f s down %.2f ms; at "
					 "%.3g B/s: %.3f s %.2f ms",
					 i, bw[k], p.total_s, p.downtime_s * 1e3, bw[k - 1],
					 prev.total_s, prev.downtime_s * 1e3);
			prev = p;
		}
	}
}

/* A hotter writer: more remote faults and no less slowdown in post-copy. */
static void test_predict_postcopy_hotter_more_faults(void **state)
{
	static const double share[] = { 0.05, 0.1, 0.3, 0.5, 1, 1.5, 3 };
	static const double locality[] = { 0, 0.5, 1 };
	struct policy_limits l = pg_limits();

	for (size_t k = 0; k < ARRAY_SIZE(locality); k++) {
		struct policy_prediction prev;

		predict(&(struct pg_guest){ 0 }, &l, LINK, POLICY_POSTCOPY, &prev);
		for (size_t i = 0; i < ARRAY_SIZE(share); i++) {
			struct pg_guest g = pg_guest_writer(share[i], locality[k]);
			struct policy_prediction p;

			predict(&g, &l, LINK, POLICY_POSTCOPY, &p);
			if (!(p.remote_faults > prev.remote_faults) || p.slowdown < prev.slowdown)
				fail_msg("locality %.1f, %.0f %% of the link: %.0f faults, "
					 "slowdown %.3f; the cooler writer %.0f, %.3f",
					 locality[k], share[i] * 100, p.remote_faults, p.slowdown,
					 prev.remote_faults, prev.slowdown);
			prev = p;
		}
	}
}

/* Sequential writers fault less than random ones at the same rate. */
static void test_predict_postcopy_locality_fewer_faults(void **state)
{
	struct pg_guest seq = pg_guest_writer(0.5, 1);
	struct pg_guest rnd = pg_guest_writer(0.5, 0);
	struct policy_limits l = pg_limits();
	struct policy_prediction a, b;

	predict(&seq, &l, LINK, POLICY_POSTCOPY, &a);
	predict(&rnd, &l, LINK, POLICY_POSTCOPY, &b);
	assert_true(a.remote_faults * 10 < b.remote_faults);
	assert_true(a.slowdown < b.slowdown);
}

/* No writes: no faults, no slowdown, in every mode. */
static void test_predict_zero_curve_no_faults(void **state)
{
	struct pg_guest g = pg_guest_base();
	struct policy_limits l = pg_limits();

	for (int m = 0; m < POLICY_NMODES; m++) {
		struct policy_prediction p;

		g.no_probe = false; /* a measured curve of zeros */
		predict(&g, &l, LINK, (enum policy_mode)m, &p);
		assert_true(p.remote_faults == 0);
		assert_true(p.slowdown == 0);
		g.no_probe = true; /* no curve at all */
		predict(&g, &l, LINK, (enum policy_mode)m, &p);
		assert_true(p.remote_faults == 0);
		assert_true(p.slowdown == 0);
	}
}

/* Post-copy moves the resident pages once; its pause does not grow with them. */
static void test_predict_postcopy_bytes_and_downtime(void **state)
{
	struct pg_guest g = pg_guest_idle();
	struct policy_limits l = pg_limits();
	struct policy_prediction a, b;

	predict(&g, &l, LINK, POLICY_POSTCOPY, &a);
	assert_true(a.bytes >= RESIDENT * POLICY_PAGE_SIZE);
	assert_true(a.downtime_s < 0.005);
	assert_true(fabs(a.total_s - RESIDENT * POLICY_PAGE_SIZE / LINK) < 0.1);
	g.resident_pages *= 2;
	predict(&g, &l, LINK, POLICY_POSTCOPY, &b);
	assert_true(b.downtime_s == a.downtime_s);
	assert_true(b.total_s > a.total_s * 1.9);
}

/*
 * Hybrid's switch point: for a hot set, after the first pass. It then owes
 * the hot set only: fewer faults than post-copy now, the same pause, and a
 * total and bytes between post-copy's and pre-copy's.
 */
static void test_predict_hybrid_switch_point(void **state)
{
	struct pg_guest g = pg_guest_hot_set_seq(6000);
	struct policy_limits l = pg_limits();
	struct policy_prediction pre, post, hyb;
	struct policy_input in;

	pg_input_start(&g, &in);
	policy_predict(&l, &in, &in.wss, LINK, POLICY_PRECOPY, &pre);
	policy_predict(&l, &in, &in.wss, LINK, POLICY_POSTCOPY, &post);
	policy_predict(&l, &in, &in.wss, LINK, POLICY_HYBRID, &hyb);
	assert_true(pre.feasible && post.feasible && hyb.feasible);
	assert_int_equal(hyb.rounds, 1);
	assert_true(hyb.downtime_s == post.downtime_s);
	assert_true(hyb.remote_faults < post.remote_faults);
	assert_true(hyb.total_s > post.total_s && hyb.total_s < pre.total_s);
	assert_true(hyb.bytes > post.bytes && hyb.bytes < pre.bytes);
	/* the post-copy part owes about the hot set */
	assert_true(fabs(hyb.bytes - post.bytes - 6000 * POLICY_PAGE_SIZE) <
		    1000 * POLICY_PAGE_SIZE);
	/* later in the migration the switch point counts from the rounds done */
	for (int i = 0; i < 4; i++)
		pg_input_round(&g, &l, &in);
	policy_predict(&l, &in, &in.wss, LINK, POLICY_HYBRID, &hyb);
	assert_int_equal(hyb.rounds, in.round + 1);
	assert_true(hyb.total_s > in.elapsed_s);
	/* and never past max_rounds */
	l.max_rounds = in.round + 1;
	policy_predict(&l, &in, &in.wss, LINK, POLICY_HYBRID, &hyb);
	assert_true(hyb.rounds <= l.max_rounds);
}

/* A writer that stays above the link: hybrid never reaches max_rounds either. */
static void test_predict_hybrid_no_rounds_left(void **state)
{
	struct pg_guest g = pg_guest_writer(1.5, 1);
	struct policy_limits l = pg_limits();
	struct policy_prediction p;
	struct policy_input in;

	l.max_rounds = 3;
	pg_input_start(&g, &in);
	for (int i = 0; i < 3; i++)
		pg_input_round(&g, &l, &in);
	policy_predict(&l, &in, &in.wss, LINK, POLICY_HYBRID, &p);
	assert_false(p.feasible);
	assert_false(p.completes);
	policy_predict(&l, &in, &in.wss, LINK, POLICY_PRECOPY, &p);
	assert_false(p.completes);
	assert_true(isinf(p.total_s));
}

/* The total-time limit: a prediction past it fails and says so. */
static void test_predict_total_time_failure(void **state)
{
	struct pg_guest g = pg_guest_idle();
	struct policy_limits l = pg_limits();

	for (int m = 0; m < POLICY_NMODES; m++) {
		struct policy_prediction p;

		l.max_total_s = 0;
		predict(&g, &l, LINK, (enum policy_mode)m, &p);
		assert_true(p.feasible);
		assert_string_equal(p.fails, "");
		l.max_total_s = 4;
		predict(&g, &l, LINK, (enum policy_mode)m, &p);
		assert_true(p.completes);
		assert_false(p.feasible);
		assert_non_null(strstr(p.fails, "total"));
		l.max_total_s = 20;
		predict(&g, &l, LINK, (enum policy_mode)m, &p);
		assert_true(p.feasible);
	}
}

/* The downtime limit: pre-copy of a hot set bigger than the pause never converges. */
static void test_predict_downtime_limit(void **state)
{
	struct pg_guest g = pg_guest_hot_set(6000); /* ~200 ms at the link */
	struct policy_limits l = pg_limits();
	struct policy_prediction p;

	predict(&g, &l, LINK, POLICY_PRECOPY, &p);
	assert_true(p.completes);
	assert_true(p.downtime_s > 0.15 && p.downtime_s <= l.max_downtime_s);
	l.max_downtime_s = 0.05;
	predict(&g, &l, LINK, POLICY_PRECOPY, &p);
	assert_false(p.completes);
	assert_non_null(strstr(p.fails, "does not converge"));
}

/* Degenerate inputs: no NaN, no negative figure, nothing that loops forever. */
static void test_predict_degenerate_inputs_finite(void **state)
{
	struct policy_limits l = pg_limits();
	struct policy_input in;
	struct policy_decision d;
	struct policy_state st;

	memset(&in, 0, sizeof(in));
	for (int i = 0; i < 6; i++) {
		if (i == 1)
			in.bandwidth = 1;
		if (i == 2)
			in.wss = (struct policy_curve){ .n = 1, .t_s = { 1 }, .pages = { 0 } };
		if (i == 3)
			in.remaining_pages = in.ram_pages = 100;
		if (i == 4)
			in.round = 5, in.bytes_sent = 1, in.round_s = 1e-9, in.round_dirtied = 1;
		if (i == 5)
			in.bandwidth = 1e15, in.rtt_s = 10, in.dma_pages_per_s = 1e12;
		policy_init(&st, &l);
		policy_decide(&st, &in, AUTO, &d);
		pg_expect_finite(&d);
	}
	l.shrink_margin = 0;
	l.max_rounds = 10000;
	policy_init(&st, &l);
	in = (struct policy_input){ .ram_pages = 1000,
				    .resident_pages = 1000,
				    .remaining_pages = 1000,
				    .bandwidth = LINK,
				    .round = 1,
				    .bytes_sent = 1 };
	in.wss = (struct policy_curve){ .n = 1, .t_s = { 0.001 }, .pages = { 1000 } };
	policy_decide(&st, &in, AUTO, &d);
	pg_expect_finite(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_predict_precopy_more_bandwidth_faster),
		cmocka_unit_test(test_predict_postcopy_hotter_more_faults),
		cmocka_unit_test(test_predict_postcopy_locality_fewer_faults),
		cmocka_unit_test(test_predict_zero_curve_no_faults),
		cmocka_unit_test(test_predict_postcopy_bytes_and_downtime),
		cmocka_unit_test(test_predict_hybrid_switch_point),
		cmocka_unit_test(test_predict_hybrid_no_rounds_left),
		cmocka_unit_test(test_predict_total_time_failure),
		cmocka_unit_test(test_predict_downtime_limit),
		cmocka_unit_test(test_predict_degenerate_inputs_finite),
	};

	return cmocka_run_group_tests_name("policy model", tests, NULL, NULL);
}
