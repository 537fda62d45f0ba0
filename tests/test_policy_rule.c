// SPDX-License-Identifier: MIT
/*
 * Unit tests for policy/rule.c, the decision rule (policy_decide), on issue
 * 8's scenarios: synthetic guests (tests/policy_guests.h) migrated round by
 * round. Which end it picks for idle guests, writers below and above the
 * link, hot sets, bursts and heavy DMA; how it rides out a link blip; and
 * what each limit and each requested mode changes.
 */
#include "tests/helpers.h"

#include <math.h>
#include <string.h>
#include "policy/policy.h"
#include "src/util.h"
#include "tests/policy_guests.h"

static void test_decide_idle_precopy_then_stop(void **state)
{
	struct pg_guest g = pg_guest_idle();
	struct policy_limits l = pg_limits();
	struct pg_trace tr;

	pg_migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	/* the first pass takes ~8.6 s of 1 s rounds, then the rest fits: stop */
	assert_true(tr.n >= 9);
	for (int i = 0; i + 1 < tr.n; i++) {
		assert_int_equal(tr.action[i], POLICY_CONTINUE);
		assert_int_equal(tr.choice[i], POLICY_PRECOPY);
	}
	pg_expect_action(&tr.last, POLICY_STOP_AND_COPY, POLICY_PRECOPY);
	assert_true(tr.remaining[tr.n - 1] < 1000);
	assert_true(tr.last.pred[POLICY_PRECOPY].downtime_s < 0.005);
	pg_expect_reason(&tr.last, "rest fits");
}

static void test_decide_idle_no_stop_during_first_pass(void **state)
{
	struct pg_guest g = pg_guest_idle();
	struct policy_limits l = pg_limits();
	struct pg_trace tr;

	pg_migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	/* every decision before the last saw a rest that does not fit 300 ms */
	for (int i = 0; i + 1 < tr.n; i++)
		assert_true((double)tr.remaining[i] * POLICY_PAGE_SIZE / LINK > 0.3);
}

/* Issue 8's middle row: the 1 GiB set written sequentially at 50 % of the link. */
static void test_decide_writer_below_link_postcopy(void **state)
{
	struct pg_guest g = pg_guest_writer(0.5, 1);
	struct policy_limits l = pg_limits();
	struct policy_decision d;

	pg_decide_start(&g, &l, AUTO, &d);
	assert_true(d.pred[POLICY_PRECOPY].feasible);
	assert_true(d.pred[POLICY_POSTCOPY].feasible);
	assert_true(d.pred[POLICY_POSTCOPY].slowdown < 0.1);
	assert_true(d.pred[POLICY_POSTCOPY].downtime_s + l.downtime_tie_s <
		    d.pred[POLICY_PRECOPY].downtime_s);
	pg_expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
	pg_expect_reason(&d, "cheapest safe end");
}

/* A hot set that pre-copy can only stop-and-copy whole: a big pause. */
static void test_decide_hot_set_big_downtime_postcopy(void **state)
{
	struct pg_guest g = pg_guest_hot_set(6000);
	struct policy_limits l = pg_limits();
	struct policy_decision d;

	pg_decide_start(&g, &l, AUTO, &d);
	assert_true(d.pred[POLICY_PRECOPY].feasible);
	assert_true(d.pred[POLICY_PRECOPY].downtime_s > 0.1);
	assert_true(d.pred[POLICY_POSTCOPY].feasible);
	assert_true(d.pred[POLICY_POSTCOPY].downtime_s < 0.005);
	pg_expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
}

/* The same guest when the SRE allows almost no slowdown: pre-copy, the safe end. */
static void test_decide_slowdown_limit_keeps_precopy(void **state)
{
	struct pg_guest g = pg_guest_hot_set(6000);
	struct policy_limits l = pg_limits();
	struct policy_decision d;

	l.max_slowdown = 0.01;
	pg_decide_start(&g, &l, AUTO, &d);
	assert_false(d.pred[POLICY_POSTCOPY].feasible);
	assert_non_null(strstr(d.pred[POLICY_POSTCOPY].fails, "slowdown"));
	pg_expect_action(&d, POLICY_CONTINUE, POLICY_PRECOPY);
}

/* Issue 8's last row: writes at 150 % of the link; pre-copy never converges. */
static void test_decide_writer_above_link(void **state)
{
	static const double locality[] = { 1, 0.5, 0 };
	struct policy_limits l = pg_limits();

	for (size_t i = 0; i < ARRAY_SIZE(locality); i++) {
		struct pg_guest g = pg_guest_writer(1.5, locality[i]);
		struct policy_decision d;

		pg_decide_start(&g, &l, AUTO, &d);
		assert_false(d.pred[POLICY_PRECOPY].completes);
		assert_false(d.pred[POLICY_PRECOPY].feasible);
		if (d.action == POLICY_SWITCH_POSTCOPY)
			pg_expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
		else
			pg_expect_action(&d, POLICY_CONTINUE, POLICY_HYBRID);
	}
}

/* Through its rounds, a writer above the link never ends in a stop-and-copy. */
static void test_decide_writer_above_link_rounds(void **state)
{
	struct pg_guest g = pg_guest_writer(1.5, 1);
	struct policy_limits l = pg_limits();
	struct pg_trace tr;

	/* explicit hybrid: pre-copy first, then the switch */
	pg_migrate(&g, &l, POLICY_HYBRID, MAX_STEPS, &tr);
	assert_true(tr.n >= 2);
	assert_int_equal(tr.action[0], POLICY_CONTINUE);
	pg_expect_action(&tr.last, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
	assert_true(tr.n <= 10);
}

/*
 * A hot set that post-copy fetches cheaply, but that the first pass may as
 * well send: hybrid (its first pass keeps the whole copy on the source and
 * ends no later than 10 % after post-copy now), then the switch.
 */
static void test_decide_hot_set_hybrid_then_switch(void **state)
{
	struct pg_guest g = pg_guest_hot_set_seq(6000);
	struct policy_limits l = pg_limits();
	struct pg_trace tr;

	pg_migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	assert_int_equal(tr.action[0], POLICY_CONTINUE);
	assert_int_equal(tr.choice[0], POLICY_HYBRID);
	for (int i = 0; i + 1 < tr.n; i++)
		assert_int_equal(tr.action[i], POLICY_CONTINUE);
	pg_expect_action(&tr.last, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
	/* after the first pass, with the hot set left: not before, not much later */
	assert_true(tr.remaining[tr.n - 1] <= 2 * 6000);
	assert_true(tr.n <= 16);
}

/*
 * A burst: a guest quiet over short windows that rewrites 400 MiB every few
 * seconds (W jumps between 1 s and 2 s). Pre-copy cannot outrun it; the
 * quiet short windows must not make it look convergent.
 */
static void test_decide_burst(void **state)
{
	static const double w[NWIN] = { 20, 50, 100, 200, 100000, 100000, 100000, 120000 };
	struct pg_guest g = pg_guest_base();
	struct policy_limits l = pg_limits();
	struct policy_decision d;

	memcpy(g.w, w, sizeof(w));
	g.locality = 1;
	pg_decide_start(&g, &l, AUTO, &d);
	assert_false(d.pred[POLICY_PRECOPY].completes);
	assert_true(d.action == POLICY_SWITCH_POSTCOPY ||
		    (d.action == POLICY_CONTINUE && d.choice == POLICY_HYBRID));
}

/* A burst seen only by a round: the rule stops trusting the quiet curve. */
static void test_decide_burst_seen_by_round(void **state)
{
	struct pg_guest g = pg_guest_idle();
	struct policy_limits l = pg_limits();
	struct policy_state st;
	struct policy_input in;
	struct policy_decision d;

	policy_init(&st, &l);
	pg_input_start(&g, &in);
	pg_decide(&st, &in, AUTO, &d);
	pg_expect_action(&d, POLICY_CONTINUE, POLICY_PRECOPY);
	/* late in the first pass, one round finds 200000 pages dirtied in 1 s */
	for (int i = 0; i < 8; i++)
		pg_input_round(&g, &l, &in);
	in.round_dirtied = 200000;
	in.remaining_pages += 200000;
	in.wss.n = 0;
	pg_decide(&st, &in, AUTO, &d);
	pg_expect_finite(&d);
	assert_int_not_equal(d.action, POLICY_STOP_AND_COPY);
	assert_false(d.pred[POLICY_PRECOPY].completes);
}

/*
 * A shrinking rest: a random writer at 30 % of the link, post-copy too slow
 * for the SRE. Rounds shrink the rest by 70 %: pre-copy goes on, even after
 * the rest first fits the pause, while a round still cuts it, then stops.
 */
static void test_decide_shrinking_keeps_going(void **state)
{
	struct pg_guest g = pg_guest_writer(0.3, 0);
	struct policy_limits l = pg_limits();
	struct pg_trace tr;
	bool went_on_fitting = false;

	l.max_slowdown = 0.02;
	pg_migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	pg_expect_action(&tr.last, POLICY_STOP_AND_COPY, POLICY_PRECOPY);
	for (int i = 0; i + 1 < tr.n; i++) {
		assert_int_equal(tr.action[i], POLICY_CONTINUE);
		assert_int_equal(tr.choice[i], POLICY_PRECOPY);
		if (i && (double)tr.remaining[i] * POLICY_PAGE_SIZE / LINK < l.max_downtime_s)
			went_on_fitting = true;
	}
	assert_true(went_on_fitting);
	/* after the first pass, each round shrank the rest */
	for (int i = 10; i < tr.n; i++)
		assert_true(tr.remaining[i] < tr.remaining[i - 1]);
	assert_true(tr.last.pred[POLICY_PRECOPY].downtime_s < 0.02);
}

/*
 * A working set that shrinks as the guest winds down, with no probe: only
 * the rounds' own points tell the rule. It keeps going while they shrink.
 */
static void test_decide_shrinking_working_set(void **state)
{
	struct pg_guest g = pg_guest_writer(0.9, 0);
	struct policy_limits l = pg_limits();
	struct policy_state st;
	struct policy_input in;
	struct policy_decision d;
	int i;

	g.no_probe = true;
	l.allow_postcopy = false;
	policy_init(&st, &l);
	pg_input_start(&g, &in);
	for (i = 0; i < 40; i++) {
		if (i)
			pg_input_round(&g, &l, &in);
		pg_decide(&st, &in, AUTO, &d);
		pg_expect_finite(&d);
		if (d.action != POLICY_CONTINUE)
			break;
		/* the guest's writes halve every round after the first pass */
		if (in.round >= 9)
			for (int k = 0; k < NWIN; k++)
				g.w[k] *= 0.5;
	}
	pg_expect_action(&d, POLICY_STOP_AND_COPY, POLICY_PRECOPY);
	assert_true(d.pred[POLICY_PRECOPY].downtime_s <= l.max_downtime_s);
}

/* Heavy DMA: an idle CPU, but the device writes faster than the link. */
static void test_decide_heavy_dma(void **state)
{
	struct pg_guest g = pg_guest_idle();
	struct policy_limits l = pg_limits();
	struct policy_decision d;

	pg_decide_start(&g, &l, AUTO, &d);
	assert_true(d.pred[POLICY_PRECOPY].completes);
	g.dma_pages_per_s = 1.2 * LINK_PAGES;
	pg_decide_start(&g, &l, AUTO, &d);
	assert_false(d.pred[POLICY_PRECOPY].completes);
	assert_non_null(strstr(d.pred[POLICY_PRECOPY].fails, "does not converge"));
	assert_true(d.choice == POLICY_POSTCOPY || d.choice == POLICY_HYBRID);
	assert_int_not_equal(d.action, POLICY_STOP_AND_COPY);
	assert_int_not_equal(d.action, POLICY_GIVE_UP);
}

/* Heavy DMA below the link: pre-copy converges, more slowly than without. */
static void test_predict_dma_slows_precopy(void **state)
{
	struct pg_guest g = pg_guest_idle();
	struct policy_limits l = pg_limits();
	struct policy_prediction a, b;
	struct policy_input in;

	pg_input_start(&g, &in);
	policy_predict(&l, &in, &in.wss, LINK, POLICY_PRECOPY, &a);
	in.dma_pages_per_s = 0.5 * LINK_PAGES;
	policy_predict(&l, &in, &in.wss, LINK, POLICY_PRECOPY, &b);
	assert_true(a.completes && b.completes);
	assert_true(b.total_s > a.total_s);
	assert_true(b.bytes > a.bytes);
	assert_true(b.rounds > a.rounds);
}

/*
 * A link blip: mid first pass, the guest starts writing above the link just
 * as one bandwidth sample drops to a sixth. Returns how many decisions, the
 * blip's own included, keep pre-copy before the switch.
 */
static int blocked_by_blip(uint32_t blip_rounds, bool blip)
{
	struct pg_guest g = pg_guest_idle();
	struct policy_limits l = pg_limits();
	struct policy_state st;
	struct policy_input in;
	struct policy_decision d;

	l.blip_rounds = blip_rounds;
	policy_init(&st, &l);
	pg_input_start(&g, &in);
	for (int i = 0; i < 4; i++) {
		if (i)
			pg_input_round(&g, &l, &in);
		pg_decide(&st, &in, AUTO, &d);
		pg_expect_action(&d, POLICY_CONTINUE, POLICY_PRECOPY);
	}
	g = pg_guest_writer(1.5, 1);
	for (int i = 0; i < 20; i++) {
		pg_input_round(&g, &l, &in);
		if (i == 0 && blip)
			in.bandwidth = LINK / 6;
		pg_decide(&st, &in, AUTO, &d);
		pg_expect_finite(&d);
		if (d.action == POLICY_SWITCH_POSTCOPY)
			return i;
		pg_expect_action(&d, POLICY_CONTINUE, d.choice);
		if (i == 0)
			pg_expect_reason(&d, "bandwidth just dropped");
	}
	fail_msg("no switch after the blip");
	return -1;
}

static void test_decide_link_blip(void **state)
{
	assert_int_equal(blocked_by_blip(2, false), 0);
	assert_int_equal(blocked_by_blip(2, true), 2);
	assert_int_equal(blocked_by_blip(1, true), 1);
	assert_int_equal(blocked_by_blip(4, true), 4);
}

/* A sample far below the average is a blip; one a little below is not. */
static void test_decide_blip_threshold(void **state)
{
	struct pg_guest g = pg_guest_writer(1.5, 1);
	struct policy_limits l = pg_limits();
	struct policy_state st;
	struct policy_input in;
	struct policy_decision d;

	policy_init(&st, &l);
	pg_input_start(&g, &in);
	pg_decide(&st, &in, POLICY_HYBRID, &d);
	pg_input_round(&g, &l, &in);
	in.bandwidth = LINK * 0.6; /* above blip_drop = 0.5 of the average */
	pg_decide(&st, &in, POLICY_HYBRID, &d);
	pg_expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
	/* the smoothed bandwidth moved by ewma_alpha toward the sample */
	assert_true(fabs(d.bandwidth - (0.3 * 0.6 + 0.7) * LINK) < 1);
}

/* allow_postcopy = no: never a switch; give up only once max_rounds are spent. */
static void test_decide_no_postcopy_gives_up_after_max_rounds(void **state)
{
	struct pg_guest g = pg_guest_writer(1.5, 1);
	struct policy_limits l = pg_limits();
	struct pg_trace tr;

	l.allow_postcopy = false;
	l.max_rounds = 12;
	pg_migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	for (int i = 0; i + 1 < tr.n; i++)
		assert_int_equal(tr.action[i], POLICY_CONTINUE);
	pg_expect_action(&tr.last, POLICY_GIVE_UP, POLICY_PRECOPY);
	assert_int_equal(tr.last.round, l.max_rounds);
	assert_false(tr.last.pred[POLICY_POSTCOPY].feasible);
	assert_false(tr.last.pred[POLICY_HYBRID].feasible);
	assert_non_null(strstr(tr.last.pred[POLICY_POSTCOPY].fails, "allow_postcopy = no"));
}

/* allow_postcopy = no with a guest pre-copy handles: it simply stops. */
static void test_decide_no_postcopy_idle_stops(void **state)
{
	struct pg_guest g = pg_guest_idle();
	struct policy_limits l = pg_limits();
	struct pg_trace tr;

	l.allow_postcopy = false;
	pg_migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	pg_expect_action(&tr.last, POLICY_STOP_AND_COPY, POLICY_PRECOPY);
}

/* max_total_s reached: switch to post-copy, or give up when it is not allowed. */
static void test_decide_max_total_reached(void **state)
{
	struct pg_guest g = pg_guest_idle();
	struct policy_limits l = pg_limits();
	struct pg_trace tr;

	l.max_total_s = 5;
	pg_migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	pg_expect_action(&tr.last, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
	pg_expect_reason(&tr.last, "total time limit");
	assert_int_equal(tr.last.round, 5); /* 5 rounds of 1 s */
	for (int i = 0; i + 1 < tr.n; i++)
		assert_int_equal(tr.action[i], POLICY_CONTINUE);

	l.allow_postcopy = false;
	pg_migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	pg_expect_action(&tr.last, POLICY_GIVE_UP, POLICY_POSTCOPY);
	pg_expect_reason(&tr.last, "post-copy is not allowed");
	assert_int_equal(tr.last.round, 5);
}

/* A total limit pre-copy is predicted to miss makes post-copy the end, early. */
static void test_decide_total_limit_predicted(void **state)
{
	struct pg_guest g = pg_guest_writer(0.5, 0);
	struct policy_limits l = pg_limits();
	struct policy_decision d;

	l.max_total_s = 12;
	l.max_slowdown = 0.9;
	pg_decide_start(&g, &l, AUTO, &d);
	assert_true(d.pred[POLICY_PRECOPY].completes);
	assert_false(d.pred[POLICY_PRECOPY].feasible);
	assert_non_null(strstr(d.pred[POLICY_PRECOPY].fails, "total"));
	pg_expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
}

/* Requested post-copy: always a switch, whatever the guest and the link. */
static void test_decide_requested_postcopy_switches(void **state)
{
	struct pg_guest gs[] = { pg_guest_idle(), pg_guest_writer(0.5, 1),
				 pg_guest_writer(1.5, 0) };
	struct policy_limits l = pg_limits();

	for (size_t i = 0; i < ARRAY_SIZE(gs); i++) {
		struct policy_decision d;

		pg_decide_start(&gs[i], &l, POLICY_POSTCOPY, &d);
		pg_expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
		gs[i].bandwidth = 0;
		pg_decide_start(&gs[i], &l, POLICY_POSTCOPY, &d);
		pg_expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
	}
}

/* Explicit hybrid: pre-copy first even where auto would switch at once; then the switch. */
static void test_decide_requested_hybrid_not_postcopy_at_start(void **state)
{
	struct pg_guest gs[] = { pg_guest_writer(0.5, 1), pg_guest_writer(1.5, 1),
				 pg_guest_writer(1.5, 0) };
	struct policy_limits l = pg_limits();

	for (size_t i = 0; i < ARRAY_SIZE(gs); i++) {
		struct policy_decision d;
		struct pg_trace tr;

		pg_decide_start(&gs[i], &l, AUTO, &d);
		assert_int_equal(d.action, POLICY_SWITCH_POSTCOPY);
		pg_decide_start(&gs[i], &l, POLICY_HYBRID, &d);
		assert_int_equal(d.action, POLICY_CONTINUE);
		assert_int_not_equal(d.choice, POLICY_POSTCOPY);
		pg_migrate(&gs[i], &l, POLICY_HYBRID, MAX_STEPS, &tr);
		pg_expect_action(&tr.last, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
		assert_true(tr.last.round >= 1);
	}
}

/* Requested pre-copy (policy.h: it only stops or gives up): never a switch. */
static void test_decide_requested_precopy_never_switches(void **state)
{
	struct pg_guest gs[] = { pg_guest_writer(0.5, 1), pg_guest_writer(1.5, 1),
				 pg_guest_hot_set(6000) };
	struct policy_limits l = pg_limits();

	l.max_rounds = 12;
	l.max_total_s = 10;
	for (size_t i = 0; i < ARRAY_SIZE(gs); i++) {
		struct pg_trace tr;

		pg_migrate(&gs[i], &l, POLICY_PRECOPY, MAX_STEPS, &tr);
		for (int k = 0; k < tr.n; k++)
			assert_int_not_equal(tr.action[k], POLICY_SWITCH_POSTCOPY);
		assert_true(tr.last.action == POLICY_STOP_AND_COPY ||
			    tr.last.action == POLICY_GIVE_UP);
	}
}

/* No bandwidth measured yet: pre-copy while the link is measured. */
static void test_decide_no_bandwidth_continues_precopy(void **state)
{
	struct pg_guest gs[] = { pg_guest_idle(), pg_guest_writer(1.5, 1) };
	struct policy_limits l = pg_limits();

	for (size_t i = 0; i < ARRAY_SIZE(gs); i++) {
		struct policy_decision d;

		gs[i].bandwidth = 0;
		pg_decide_start(&gs[i], &l, AUTO, &d);
		pg_expect_action(&d, POLICY_CONTINUE, POLICY_PRECOPY);
		pg_expect_reason(&d, "no bandwidth");
		for (int m = 0; m < POLICY_NMODES; m++)
			assert_false(d.pred[m].valid || d.pred[m].feasible);
		/* a known cap stands in for the measurement */
		l.bandwidth_cap = LINK;
		pg_decide_start(&gs[i], &l, AUTO, &d);
		assert_true(d.pred[POLICY_PRECOPY].valid);
		assert_true(d.bandwidth == LINK);
		l.bandwidth_cap = 0;
	}
}

/* bandwidth_cap bounds the samples too. */
static void test_decide_bandwidth_cap(void **state)
{
	struct pg_guest g = pg_guest_idle();
	struct policy_limits l = pg_limits();
	struct policy_decision d;

	l.bandwidth_cap = LINK / 2;
	pg_decide_start(&g, &l, AUTO, &d);
	assert_true(d.bandwidth == LINK / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide_idle_precopy_then_stop),
		cmocka_unit_test(test_decide_idle_no_stop_during_first_pass),
		cmocka_unit_test(test_decide_writer_below_link_postcopy),
		cmocka_unit_test(test_decide_hot_set_big_downtime_postcopy),
		cmocka_unit_test(test_decide_slowdown_limit_keeps_precopy),
		cmocka_unit_test(test_decide_writer_above_link),
		cmocka_unit_test(test_decide_writer_above_link_rounds),
		cmocka_unit_test(test_decide_hot_set_hybrid_then_switch),
		cmocka_unit_test(test_decide_burst),
		cmocka_unit_test(test_decide_burst_seen_by_round),
		cmocka_unit_test(test_decide_shrinking_keeps_going),
		cmocka_unit_test(test_decide_shrinking_working_set),
		cmocka_unit_test(test_decide_heavy_dma),
		cmocka_unit_test(test_predict_dma_slows_precopy),
		cmocka_unit_test(test_decide_link_blip),
		cmocka_unit_test(test_decide_blip_threshold),
		cmocka_unit_test(test_decide_no_postcopy_gives_up_after_max_rounds),
		cmocka_unit_test(test_decide_no_postcopy_idle_stops),
		cmocka_unit_test(test_decide_max_total_reached),
		cmocka_unit_test(test_decide_total_limit_predicted),
		cmocka_unit_test(test_decide_requested_postcopy_switches),
		cmocka_unit_test(test_decide_requested_hybrid_not_postcopy_at_start),
		cmocka_unit_test(test_decide_requested_precopy_never_switches),
		cmocka_unit_test(test_decide_no_bandwidth_continues_precopy),
		cmocka_unit_test(test_decide_bandwidth_cap),
	};

	return cmocka_run_group_tests_name("policy rule", tests, NULL, NULL);
}
