// SPDX-License-Identifier: MIT
/*
 * Unit tests for policy/ (the model, the rule, the curve, the limits file)
 * and src/policy_record.h (recordings that replay bit for bit), on
 * synthetic guests: a working-set curve W(t) at the probe's windows, RAM,
 * resident pages, the link's bandwidth and RTT. The guests follow issue 8's
 * workload: 2 GiB RAM, a 1 GiB working set, a 125 MB/s link.
 */
#include "tests/helpers.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "policy/policy.h"
#include "src/json.h"
#include "src/policy_record.h"
#include "src/probe.h"
#include "src/util.h"

#define AUTO	   (-1)
#define NWIN	   8
#define LINK	   125e6		     /* bytes/s */
#define LINK_PAGES (LINK / POLICY_PAGE_SIZE) /* pages/s */
#define RAM_PAGES  524288		     /* 2 GiB */
#define WS_PAGES   262144		     /* 1 GiB */
#define RESIDENT   (WS_PAGES + 4096)
#define MAX_STEPS  64

static const double windows[NWIN] = { 0.1, 0.25, 0.5, 1, 2, 5, 10, 30 };

/* A synthetic guest and its link. */
struct guest {
	double w[NWIN]; /* W(t) at the windows, pages */
	bool no_probe;	/* the curve is not measured: the rounds teach it */
	uint64_t ram_pages;
	uint64_t resident_pages;
	double bandwidth; /* bytes/s, the sample every decision sees */
	double rtt_s;
	double locality;
	double dma_pages_per_s;
};

/* What a migration went through: one decision per step. */
struct trace {
	int n;
	enum policy_action action[MAX_STEPS];
	enum policy_mode choice[MAX_STEPS];
	uint64_t remaining[MAX_STEPS];
	struct policy_decision last;
};

/* ---- synthetic guests ---------------------------------------------------- */

static struct guest guest_base(void)
{
	struct guest g;

	memset(&g, 0, sizeof(g));
	g.ram_pages = RAM_PAGES;
	g.resident_pages = RESIDENT;
	g.bandwidth = LINK;
	g.rtt_s = 100e-6;
	return g;
}

/* Timer ticks and a few stacks: next to nothing. */
static struct guest guest_idle(void)
{
	static const double w[NWIN] = { 2, 4, 6, 10, 16, 30, 50, 120 };
	struct guest g = guest_base();

	memcpy(g.w, w, sizeof(w));
	g.locality = 0.5;
	return g;
}

/* Writes @share of the link's page rate over the 1 GiB working set. */
static struct guest guest_writer(double share, double locality)
{
	struct guest g = guest_base();

	for (int i = 0; i < NWIN; i++)
		g.w[i] = fmin(share * LINK_PAGES * windows[i], WS_PAGES);
	g.locality = locality;
	return g;
}

/* Rewrites a hot set of @pages at random, fast: W saturates within 0.5 s. */
static struct guest guest_hot_set(double pages)
{
	static const double shape[NWIN] = { 0.63, 0.92, 0.99, 1, 1, 1, 1, 1 };
	struct guest g = guest_base();

	for (int i = 0; i < NWIN; i++)
		g.w[i] = shape[i] * pages;
	g.locality = 0;
	return g;
}

/* A hot set of @pages rewritten in order, just under the link's rate. */
static struct guest guest_hot_set_seq(double pages)
{
	struct guest g = guest_base();

	for (int i = 0; i < NWIN; i++)
		g.w[i] = i ? pages : pages / 2;
	g.locality = 1;
	return g;
}

static void curve_of(const struct guest *g, struct policy_curve *c)
{
	memset(c, 0, sizeof(*c));
	if (g->no_probe)
		return;
	c->n = NWIN;
	for (int i = 0; i < NWIN; i++) {
		c->t_s[i] = windows[i];
		c->pages[i] = g->w[i];
	}
}

/* The decision point before the start. */
static void input_start(const struct guest *g, struct policy_input *in)
{
	memset(in, 0, sizeof(*in));
	in->ram_pages = g->ram_pages;
	in->resident_pages = g->resident_pages;
	in->wire_ratio = 1;
	curve_of(g, &in->wss);
	in->dma_pages_per_s = g->dma_pages_per_s;
	in->locality = g->locality;
	in->bandwidth = g->bandwidth;
	in->rtt_s = g->rtt_s;
	in->vcpus = 2;
	in->state_bytes = 16384;
	in->remaining_pages = g->resident_pages;
}

/*
 * One pre-copy round as the migration runs it (cut at checkpoint_s): it
 * sends what the link carries while the guest dirties W(round) pages.
 */
static void input_round(const struct guest *g, const struct policy_limits *l,
			struct policy_input *in)
{
	double rest = (double)in->remaining_pages;
	double t = fmin(rest * POLICY_PAGE_SIZE / g->bandwidth, l->checkpoint_s);
	double sent = fmin(rest, floor(t * g->bandwidth / POLICY_PAGE_SIZE));
	struct policy_curve c;
	double dirtied;

	curve_of(g, &c);
	if (g->no_probe) {
		c.n = NWIN;
		memcpy(c.t_s, windows, sizeof(windows));
		memcpy(c.pages, g->w, sizeof(g->w));
	}
	dirtied = fmin(floor(policy_curve_at(&c, t, 0) + g->dma_pages_per_s * t),
		       (double)g->resident_pages);
	in->round++;
	in->round_s = t;
	in->round_dirtied = (uint64_t)dirtied;
	in->remaining_pages = (uint64_t)fmin(rest - sent + dirtied, (double)g->resident_pages);
	in->elapsed_s += t;
	in->t_s = in->elapsed_s;
	in->bytes_sent += (uint64_t)(sent * POLICY_PAGE_SIZE);
	in->bandwidth = g->bandwidth;
	curve_of(g, &in->wss);
}

/* Print a decision (HM_TEST_VERBOSE=1, or before a failure). */
static void show(const struct policy_decision *d)
{
	print_message("round %u: %s (%s) bw %.3g: %s\n", d->round, policy_action_name(d->action),
		      policy_mode_name(d->choice), d->bandwidth, d->reason);
	for (int m = 0; m < POLICY_NMODES; m++) {
		const struct policy_prediction *p = &d->pred[m];

		print_message(
		    "  %-8s feasible %d completes %d total %.3f s down %.2f ms faults %.0f "
		    "slowdown %.3f rounds %u %s\n",
		    policy_mode_name(m), p->feasible, p->completes, p->total_s, p->downtime_s * 1e3,
		    p->remote_faults, p->slowdown, p->rounds, p->fails);
	}
}

static bool verbose(void)
{
	const char *v = getenv("HM_TEST_VERBOSE");

	return v && *v && strcmp(v, "0");
}

static void decide(struct policy_state *st, const struct policy_input *in, int requested,
		   struct policy_decision *d)
{
	policy_decide(st, in, requested, d);
	if (verbose())
		show(d);
}

/*
 * Migrate @g under @l: a decision at the start and after every round, until
 * one that is not CONTINUE or @max steps.
 */
static void migrate(const struct guest *g, const struct policy_limits *l, int requested, int max,
		    struct trace *tr)
{
	struct policy_state st;
	struct policy_input in;

	memset(tr, 0, sizeof(*tr));
	policy_init(&st, l);
	input_start(g, &in);
	for (tr->n = 0; tr->n < max && tr->n < MAX_STEPS; tr->n++) {
		if (tr->n)
			input_round(g, l, &in);
		decide(&st, &in, requested, &tr->last);
		tr->action[tr->n] = tr->last.action;
		tr->choice[tr->n] = tr->last.choice;
		tr->remaining[tr->n] = in.remaining_pages;
		if (tr->last.action != POLICY_CONTINUE) {
			tr->n++;
			break;
		}
	}
}

static void expect_action(const struct policy_decision *d, enum policy_action a, enum policy_mode m)
{
	if (d->action != a || d->choice != m) {
		show(d);
		fail_msg("round %u: got %s (%s), want %s (%s)", d->round,
			 policy_action_name(d->action), policy_mode_name(d->choice),
			 policy_action_name(a), policy_mode_name(m));
	}
}

static void expect_reason(const struct policy_decision *d, const char *part)
{
	if (!strstr(d->reason, part)) {
		show(d);
		fail_msg("reason \"%s\" does not say \"%s\"", d->reason, part);
	}
}

static void expect_finite(const struct policy_decision *d)
{
	for (int m = 0; m < POLICY_NMODES; m++) {
		const struct policy_prediction *p = &d->pred[m];

		if (isnan(p->total_s) || isnan(p->downtime_s) || isnan(p->bytes) ||
		    isnan(p->remote_faults) || isnan(p->slowdown) || p->slowdown < 0 ||
		    p->slowdown > 1 || p->remote_faults < 0) {
			show(d);
			fail_msg("%s: a NaN or out-of-range figure", policy_mode_name(m));
		}
	}
	if (isnan(d->bandwidth))
		fail_msg("bandwidth is NaN");
}

static struct policy_limits limits(void)
{
	struct policy_limits l;

	policy_limits_default(&l);
	return l;
}

/* One decision from the start, from a fresh state. */
static void decide_start(const struct guest *g, const struct policy_limits *l, int requested,
			 struct policy_decision *d)
{
	struct policy_state st;
	struct policy_input in;

	policy_init(&st, l);
	input_start(g, &in);
	decide(&st, &in, requested, d);
	expect_finite(d);
}

/* ---- the rule: issue 8's scenarios -------------------------------------- */

static void test_decide_idle_precopy_then_stop(void **state)
{
	struct guest g = guest_idle();
	struct policy_limits l = limits();
	struct trace tr;

	migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	/* the first pass takes ~8.6 s of 1 s rounds, then the rest fits: stop */
	assert_true(tr.n >= 9);
	for (int i = 0; i + 1 < tr.n; i++) {
		assert_int_equal(tr.action[i], POLICY_CONTINUE);
		assert_int_equal(tr.choice[i], POLICY_PRECOPY);
	}
	expect_action(&tr.last, POLICY_STOP_AND_COPY, POLICY_PRECOPY);
	assert_true(tr.remaining[tr.n - 1] < 1000);
	assert_true(tr.last.pred[POLICY_PRECOPY].downtime_s < 0.005);
	expect_reason(&tr.last, "rest fits");
}

static void test_decide_idle_no_stop_during_first_pass(void **state)
{
	struct guest g = guest_idle();
	struct policy_limits l = limits();
	struct trace tr;

	migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	/* every decision before the last saw a rest that does not fit 300 ms */
	for (int i = 0; i + 1 < tr.n; i++)
		assert_true((double)tr.remaining[i] * POLICY_PAGE_SIZE / LINK > 0.3);
}

/* Issue 8's middle row: the 1 GiB set written sequentially at 50 % of the link. */
static void test_decide_writer_below_link_postcopy(void **state)
{
	struct guest g = guest_writer(0.5, 1);
	struct policy_limits l = limits();
	struct policy_decision d;

	decide_start(&g, &l, AUTO, &d);
	assert_true(d.pred[POLICY_PRECOPY].feasible);
	assert_true(d.pred[POLICY_POSTCOPY].feasible);
	assert_true(d.pred[POLICY_POSTCOPY].slowdown < 0.1);
	assert_true(d.pred[POLICY_POSTCOPY].downtime_s + l.downtime_tie_s <
		    d.pred[POLICY_PRECOPY].downtime_s);
	expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
	expect_reason(&d, "cheapest safe end");
}

/* A hot set that pre-copy can only stop-and-copy whole: a big pause. */
static void test_decide_hot_set_big_downtime_postcopy(void **state)
{
	struct guest g = guest_hot_set(6000);
	struct policy_limits l = limits();
	struct policy_decision d;

	decide_start(&g, &l, AUTO, &d);
	assert_true(d.pred[POLICY_PRECOPY].feasible);
	assert_true(d.pred[POLICY_PRECOPY].downtime_s > 0.1);
	assert_true(d.pred[POLICY_POSTCOPY].feasible);
	assert_true(d.pred[POLICY_POSTCOPY].downtime_s < 0.005);
	expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
}

/* The same guest when the SRE allows almost no slowdown: pre-copy, the safe end. */
static void test_decide_slowdown_limit_keeps_precopy(void **state)
{
	struct guest g = guest_hot_set(6000);
	struct policy_limits l = limits();
	struct policy_decision d;

	l.max_slowdown = 0.01;
	decide_start(&g, &l, AUTO, &d);
	assert_false(d.pred[POLICY_POSTCOPY].feasible);
	assert_non_null(strstr(d.pred[POLICY_POSTCOPY].fails, "slowdown"));
	expect_action(&d, POLICY_CONTINUE, POLICY_PRECOPY);
}

/* Issue 8's last row: writes at 150 % of the link; pre-copy never converges. */
static void test_decide_writer_above_link(void **state)
{
	static const double locality[] = { 1, 0.5, 0 };
	struct policy_limits l = limits();

	for (size_t i = 0; i < ARRAY_SIZE(locality); i++) {
		struct guest g = guest_writer(1.5, locality[i]);
		struct policy_decision d;

		decide_start(&g, &l, AUTO, &d);
		assert_false(d.pred[POLICY_PRECOPY].completes);
		assert_false(d.pred[POLICY_PRECOPY].feasible);
		if (d.action == POLICY_SWITCH_POSTCOPY)
			expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
		else
			expect_action(&d, POLICY_CONTINUE, POLICY_HYBRID);
	}
}

/* Through its rounds, a writer above the link never ends in a stop-and-copy. */
static void test_decide_writer_above_link_rounds(void **state)
{
	struct guest g = guest_writer(1.5, 1);
	struct policy_limits l = limits();
	struct trace tr;

	/* explicit hybrid: pre-copy first, then the switch */
	migrate(&g, &l, POLICY_HYBRID, MAX_STEPS, &tr);
	assert_true(tr.n >= 2);
	assert_int_equal(tr.action[0], POLICY_CONTINUE);
	expect_action(&tr.last, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
	assert_true(tr.n <= 10);
}

/*
 * A hot set that post-copy fetches cheaply, but that the first pass may as
 * well send: hybrid (its first pass keeps the whole copy on the source and
 * ends no later than 10 % after post-copy now), then the switch.
 */
static void test_decide_hot_set_hybrid_then_switch(void **state)
{
	struct guest g = guest_hot_set_seq(6000);
	struct policy_limits l = limits();
	struct trace tr;

	migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	assert_int_equal(tr.action[0], POLICY_CONTINUE);
	assert_int_equal(tr.choice[0], POLICY_HYBRID);
	for (int i = 0; i + 1 < tr.n; i++)
		assert_int_equal(tr.action[i], POLICY_CONTINUE);
	expect_action(&tr.last, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
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
	struct guest g = guest_base();
	struct policy_limits l = limits();
	struct policy_decision d;

	memcpy(g.w, w, sizeof(w));
	g.locality = 1;
	decide_start(&g, &l, AUTO, &d);
	assert_false(d.pred[POLICY_PRECOPY].completes);
	assert_true(d.action == POLICY_SWITCH_POSTCOPY ||
		    (d.action == POLICY_CONTINUE && d.choice == POLICY_HYBRID));
}

/* A burst seen only by a round: the rule stops trusting the quiet curve. */
static void test_decide_burst_seen_by_round(void **state)
{
	struct guest g = guest_idle();
	struct policy_limits l = limits();
	struct policy_state st;
	struct policy_input in;
	struct policy_decision d;

	policy_init(&st, &l);
	input_start(&g, &in);
	decide(&st, &in, AUTO, &d);
	expect_action(&d, POLICY_CONTINUE, POLICY_PRECOPY);
	/* late in the first pass, one round finds 200000 pages dirtied in 1 s */
	for (int i = 0; i < 8; i++)
		input_round(&g, &l, &in);
	in.round_dirtied = 200000;
	in.remaining_pages += 200000;
	in.wss.n = 0;
	decide(&st, &in, AUTO, &d);
	expect_finite(&d);
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
	struct guest g = guest_writer(0.3, 0);
	struct policy_limits l = limits();
	struct trace tr;
	bool went_on_fitting = false;

	l.max_slowdown = 0.02;
	migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	expect_action(&tr.last, POLICY_STOP_AND_COPY, POLICY_PRECOPY);
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
	struct guest g = guest_writer(0.9, 0);
	struct policy_limits l = limits();
	struct policy_state st;
	struct policy_input in;
	struct policy_decision d;
	int i;

	g.no_probe = true;
	l.allow_postcopy = false;
	policy_init(&st, &l);
	input_start(&g, &in);
	for (i = 0; i < 40; i++) {
		if (i)
			input_round(&g, &l, &in);
		decide(&st, &in, AUTO, &d);
		expect_finite(&d);
		if (d.action != POLICY_CONTINUE)
			break;
		/* the guest's writes halve every round after the first pass */
		if (in.round >= 9)
			for (int k = 0; k < NWIN; k++)
				g.w[k] *= 0.5;
	}
	expect_action(&d, POLICY_STOP_AND_COPY, POLICY_PRECOPY);
	assert_true(d.pred[POLICY_PRECOPY].downtime_s <= l.max_downtime_s);
}

/* Heavy DMA: an idle CPU, but the device writes faster than the link. */
static void test_decide_heavy_dma(void **state)
{
	struct guest g = guest_idle();
	struct policy_limits l = limits();
	struct policy_decision d;

	decide_start(&g, &l, AUTO, &d);
	assert_true(d.pred[POLICY_PRECOPY].completes);
	g.dma_pages_per_s = 1.2 * LINK_PAGES;
	decide_start(&g, &l, AUTO, &d);
	assert_false(d.pred[POLICY_PRECOPY].completes);
	assert_non_null(strstr(d.pred[POLICY_PRECOPY].fails, "does not converge"));
	assert_true(d.choice == POLICY_POSTCOPY || d.choice == POLICY_HYBRID);
	assert_int_not_equal(d.action, POLICY_STOP_AND_COPY);
	assert_int_not_equal(d.action, POLICY_GIVE_UP);
}

/* Heavy DMA below the link: pre-copy converges, more slowly than without. */
static void test_predict_dma_slows_precopy(void **state)
{
	struct guest g = guest_idle();
	struct policy_limits l = limits();
	struct policy_prediction a, b;
	struct policy_input in;

	input_start(&g, &in);
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
	struct guest g = guest_idle();
	struct policy_limits l = limits();
	struct policy_state st;
	struct policy_input in;
	struct policy_decision d;

	l.blip_rounds = blip_rounds;
	policy_init(&st, &l);
	input_start(&g, &in);
	for (int i = 0; i < 4; i++) {
		if (i)
			input_round(&g, &l, &in);
		decide(&st, &in, AUTO, &d);
		expect_action(&d, POLICY_CONTINUE, POLICY_PRECOPY);
	}
	g = guest_writer(1.5, 1);
	for (int i = 0; i < 20; i++) {
		input_round(&g, &l, &in);
		if (i == 0 && blip)
			in.bandwidth = LINK / 6;
		decide(&st, &in, AUTO, &d);
		expect_finite(&d);
		if (d.action == POLICY_SWITCH_POSTCOPY)
			return i;
		expect_action(&d, POLICY_CONTINUE, d.choice);
		if (i == 0)
			expect_reason(&d, "bandwidth just dropped");
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
	struct guest g = guest_writer(1.5, 1);
	struct policy_limits l = limits();
	struct policy_state st;
	struct policy_input in;
	struct policy_decision d;

	policy_init(&st, &l);
	input_start(&g, &in);
	decide(&st, &in, POLICY_HYBRID, &d);
	input_round(&g, &l, &in);
	in.bandwidth = LINK * 0.6; /* above blip_drop = 0.5 of the average */
	decide(&st, &in, POLICY_HYBRID, &d);
	expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
	/* the smoothed bandwidth moved by ewma_alpha toward the sample */
	assert_true(fabs(d.bandwidth - (0.3 * 0.6 + 0.7) * LINK) < 1);
}

/* allow_postcopy = no: never a switch; give up only once max_rounds are spent. */
static void test_decide_no_postcopy_gives_up_after_max_rounds(void **state)
{
	struct guest g = guest_writer(1.5, 1);
	struct policy_limits l = limits();
	struct trace tr;

	l.allow_postcopy = false;
	l.max_rounds = 12;
	migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	for (int i = 0; i + 1 < tr.n; i++)
		assert_int_equal(tr.action[i], POLICY_CONTINUE);
	expect_action(&tr.last, POLICY_GIVE_UP, POLICY_PRECOPY);
	assert_int_equal(tr.last.round, l.max_rounds);
	assert_false(tr.last.pred[POLICY_POSTCOPY].feasible);
	assert_false(tr.last.pred[POLICY_HYBRID].feasible);
	assert_non_null(strstr(tr.last.pred[POLICY_POSTCOPY].fails, "allow_postcopy = no"));
}

/* allow_postcopy = no with a guest pre-copy handles: it simply stops. */
static void test_decide_no_postcopy_idle_stops(void **state)
{
	struct guest g = guest_idle();
	struct policy_limits l = limits();
	struct trace tr;

	l.allow_postcopy = false;
	migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	expect_action(&tr.last, POLICY_STOP_AND_COPY, POLICY_PRECOPY);
}

/* max_total_s reached: switch to post-copy, or give up when it is not allowed. */
static void test_decide_max_total_reached(void **state)
{
	struct guest g = guest_idle();
	struct policy_limits l = limits();
	struct trace tr;

	l.max_total_s = 5;
	migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	expect_action(&tr.last, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
	expect_reason(&tr.last, "total time limit");
	assert_int_equal(tr.last.round, 5); /* 5 rounds of 1 s */
	for (int i = 0; i + 1 < tr.n; i++)
		assert_int_equal(tr.action[i], POLICY_CONTINUE);

	l.allow_postcopy = false;
	migrate(&g, &l, AUTO, MAX_STEPS, &tr);
	expect_action(&tr.last, POLICY_GIVE_UP, POLICY_POSTCOPY);
	expect_reason(&tr.last, "post-copy is not allowed");
	assert_int_equal(tr.last.round, 5);
}

/* A total limit pre-copy is predicted to miss makes post-copy the end, early. */
static void test_decide_total_limit_predicted(void **state)
{
	struct guest g = guest_writer(0.5, 0);
	struct policy_limits l = limits();
	struct policy_decision d;

	l.max_total_s = 12;
	l.max_slowdown = 0.9;
	decide_start(&g, &l, AUTO, &d);
	assert_true(d.pred[POLICY_PRECOPY].completes);
	assert_false(d.pred[POLICY_PRECOPY].feasible);
	assert_non_null(strstr(d.pred[POLICY_PRECOPY].fails, "total"));
	expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
}

/* Requested post-copy: always a switch, whatever the guest and the link. */
static void test_decide_requested_postcopy_switches(void **state)
{
	struct guest gs[] = { guest_idle(), guest_writer(0.5, 1), guest_writer(1.5, 0) };
	struct policy_limits l = limits();

	for (size_t i = 0; i < ARRAY_SIZE(gs); i++) {
		struct policy_decision d;

		decide_start(&gs[i], &l, POLICY_POSTCOPY, &d);
		expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
		gs[i].bandwidth = 0;
		decide_start(&gs[i], &l, POLICY_POSTCOPY, &d);
		expect_action(&d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
	}
}

/* Explicit hybrid: pre-copy first even where auto would switch at once; then the switch. */
static void test_decide_requested_hybrid_not_postcopy_at_start(void **state)
{
	struct guest gs[] = { guest_writer(0.5, 1), guest_writer(1.5, 1), guest_writer(1.5, 0) };
	struct policy_limits l = limits();

	for (size_t i = 0; i < ARRAY_SIZE(gs); i++) {
		struct policy_decision d;
		struct trace tr;

		decide_start(&gs[i], &l, AUTO, &d);
		assert_int_equal(d.action, POLICY_SWITCH_POSTCOPY);
		decide_start(&gs[i], &l, POLICY_HYBRID, &d);
		assert_int_equal(d.action, POLICY_CONTINUE);
		assert_int_not_equal(d.choice, POLICY_POSTCOPY);
		migrate(&gs[i], &l, POLICY_HYBRID, MAX_STEPS, &tr);
		expect_action(&tr.last, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
		assert_true(tr.last.round >= 1);
	}
}

/* Requested pre-copy (policy.h: it only stops or gives up): never a switch. */
static void test_decide_requested_precopy_never_switches(void **state)
{
	struct guest gs[] = { guest_writer(0.5, 1), guest_writer(1.5, 1), guest_hot_set(6000) };
	struct policy_limits l = limits();

	l.max_rounds = 12;
	l.max_total_s = 10;
	for (size_t i = 0; i < ARRAY_SIZE(gs); i++) {
		struct trace tr;

		migrate(&gs[i], &l, POLICY_PRECOPY, MAX_STEPS, &tr);
		for (int k = 0; k < tr.n; k++)
			assert_int_not_equal(tr.action[k], POLICY_SWITCH_POSTCOPY);
		assert_true(tr.last.action == POLICY_STOP_AND_COPY ||
			    tr.last.action == POLICY_GIVE_UP);
	}
}

/* No bandwidth measured yet: pre-copy while the link is measured. */
static void test_decide_no_bandwidth_continues_precopy(void **state)
{
	struct guest gs[] = { guest_idle(), guest_writer(1.5, 1) };
	struct policy_limits l = limits();

	for (size_t i = 0; i < ARRAY_SIZE(gs); i++) {
		struct policy_decision d;

		gs[i].bandwidth = 0;
		decide_start(&gs[i], &l, AUTO, &d);
		expect_action(&d, POLICY_CONTINUE, POLICY_PRECOPY);
		expect_reason(&d, "no bandwidth");
		for (int m = 0; m < POLICY_NMODES; m++)
			assert_false(d.pred[m].valid || d.pred[m].feasible);
		/* a known cap stands in for the measurement */
		l.bandwidth_cap = LINK;
		decide_start(&gs[i], &l, AUTO, &d);
		assert_true(d.pred[POLICY_PRECOPY].valid);
		assert_true(d.bandwidth == LINK);
		l.bandwidth_cap = 0;
	}
}

/* bandwidth_cap bounds the samples too. */
static void test_decide_bandwidth_cap(void **state)
{
	struct guest g = guest_idle();
	struct policy_limits l = limits();
	struct policy_decision d;

	l.bandwidth_cap = LINK / 2;
	decide_start(&g, &l, AUTO, &d);
	assert_true(d.bandwidth == LINK / 2);
}

/* ---- the model ------------------------------------------------------------ */

static void predict(const struct guest *g, const struct policy_limits *l, double bw,
		    enum policy_mode m, struct policy_prediction *p)
{
	struct policy_input in;

	input_start(g, &in);
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
	struct guest gs[] = { guest_idle(), guest_writer(0.3, 1), guest_writer(0.5, 0),
			      guest_hot_set(6000) };
	struct policy_limits l = limits();

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
	struct policy_limits l = limits();

	for (size_t k = 0; k < ARRAY_SIZE(locality); k++) {
		struct policy_prediction prev;

		predict(&(struct guest){ 0 }, &l, LINK, POLICY_POSTCOPY, &prev);
		for (size_t i = 0; i < ARRAY_SIZE(share); i++) {
			struct guest g = guest_writer(share[i], locality[k]);
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
	struct guest seq = guest_writer(0.5, 1);
	struct guest rnd = guest_writer(0.5, 0);
	struct policy_limits l = limits();
	struct policy_prediction a, b;

	predict(&seq, &l, LINK, POLICY_POSTCOPY, &a);
	predict(&rnd, &l, LINK, POLICY_POSTCOPY, &b);
	assert_true(a.remote_faults * 10 < b.remote_faults);
	assert_true(a.slowdown < b.slowdown);
}

/* No writes: no faults, no slowdown, in every mode. */
static void test_predict_zero_curve_no_faults(void **state)
{
	struct guest g = guest_base();
	struct policy_limits l = limits();

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
	struct guest g = guest_idle();
	struct policy_limits l = limits();
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
	struct guest g = guest_hot_set_seq(6000);
	struct policy_limits l = limits();
	struct policy_prediction pre, post, hyb;
	struct policy_input in;

	input_start(&g, &in);
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
		input_round(&g, &l, &in);
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
	struct guest g = guest_writer(1.5, 1);
	struct policy_limits l = limits();
	struct policy_prediction p;
	struct policy_input in;

	l.max_rounds = 3;
	input_start(&g, &in);
	for (int i = 0; i < 3; i++)
		input_round(&g, &l, &in);
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
	struct guest g = guest_idle();
	struct policy_limits l = limits();

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
	struct guest g = guest_hot_set(6000); /* ~200 ms at the link */
	struct policy_limits l = limits();
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
	struct policy_limits l = limits();
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
		expect_finite(&d);
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
	expect_finite(&d);
}

/* ---- the curve ------------------------------------------------------------ */

static bool near(double a, double b)
{
	return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b));
}

#define assert_near(a, b)                                                                          \
	do {                                                                                       \
		double a_ = (a), b_ = (b);                                                         \
		if (!near(a_, b_))                                                                 \
			fail_msg("%s = %.17g, want %.17g", #a, a_, b_);                            \
	} while (0)

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

/* ---- the limits file -------------------------------------------------------- */

#define WHY_LEN 256

/* A value inside key @name's range, in the file's unit, different from the default. */
static const char *sample_value(const char *name)
{
	static const char *const v[][2] = {
		{ "max_downtime_ms", "125.5" }, { "max_total_s", "90" },
		{ "allow_postcopy", "no" },	{ "max_slowdown", "0.25" },
		{ "max_rounds", "42" },		{ "shrink_margin", "0.2" },
		{ "downtime_tie_ms", "2.5" },	{ "bandwidth_cap", "1.25e9" },
		{ "blip_drop", "0.4" },		{ "blip_rounds", "3" },
		{ "ewma_alpha", "0.5" },	{ "checkpoint_s", "0.5" },
		{ "switch_cost_ms", "1.5" },	{ "fault_service_us", "80" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(v); i++)
		if (!strcmp(v[i][0], name))
			return v[i][1];
	return NULL;
}

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
		const char *v = sample_value(k);

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

/* Set every key of @l to its sample value (and nothing else: padding stays zero). */
static void set_samples(struct policy_limits *l)
{
	char why[WHY_LEN];

	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i < policy_config_count(); i++) {
		double v;
		const char *k = policy_config_get(l, i, false, &v);

		if (policy_config_set(l, k, sample_value(k), why, sizeof(why)))
			fail_msg("%s", why);
	}
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
	set_samples(&l);
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

	set_samples(&a);
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

/* ---- the recording ---------------------------------------------------------- */

#define MAX_FIELDS 64
#define LINE_LEN   8192

static struct json_field fields[MAX_FIELDS];

/* An input with figures that are not short decimals, and a full curve. */
static void odd_input(struct policy_input *in)
{
	memset(in, 0, sizeof(*in));
	in->t_s = 12.000000000000002;
	in->ram_pages = RAM_PAGES;
	in->resident_pages = 262145;
	in->wire_ratio = 1.0 / 3;
	in->dma_pages_per_s = 0.1 + 0.2;
	in->locality = 0.7071067811865476;
	in->bandwidth = 123456789.12345679;
	in->rtt_s = 1.7e-4 / 3; /* 17 significant digits needed */
	in->vcpus = 4;
	in->state_bytes = 32768;
	in->round = 7;
	in->remaining_pages = (1ULL << 53) + 1; /* beyond a double's integers */
	in->inflight_bytes = UINT64_MAX;
	in->round_s = 0.7300000000000001;
	in->round_dirtied = 12345;
	in->elapsed_s = 11.999999999999998;
	in->bytes_sent = 9007199254740993ULL;
	in->wss.n = POLICY_MAX_POINTS;
	for (uint32_t i = 0; i < POLICY_MAX_POINTS; i++) {
		in->wss.t_s[i] = 0.1 * pow(1.7, i);
		in->wss.pages[i] = 1000 * sqrt(i + 1.0) + 1.0 / 7;
	}
}

/* Write one JSON line with @fill's members; parse it back into fields. */
static int write_parse(char *buf, void (*fill)(struct json_out *, const void *), const void *arg)
{
	struct json_out j;
	const char *why = NULL;
	int n;

	json_init(&j, buf, LINE_LEN);
	json_obj_begin(&j, NULL);
	json_str(&j, "type", "input");
	fill(&j, arg);
	json_obj_end(&j);
	assert_non_null(json_done(&j));
	n = json_parse_flat(buf, strlen(buf), fields, MAX_FIELDS, &why);
	if (n < 0)
		fail_msg("%s: %s", why, buf);
	return n;
}

static void fill_input(struct json_out *j, const void *arg)
{
	policy_record_input(j, arg);
}

static void fill_limits(struct json_out *j, const void *arg)
{
	policy_record_limits(j, arg);
}

static void test_record_input_roundtrip(void **state)
{
	static char buf[LINE_LEN];
	struct policy_input in, back;
	int n;

	odd_input(&in);
	n = write_parse(buf, fill_input, &in);
	assert_int_equal(policy_record_read_input(fields, (size_t)n, &back), 0);
	assert_memory_equal(&in, &back, sizeof(in));
	/* an empty curve too */
	in.wss.n = 0;
	memset(in.wss.t_s, 0, sizeof(in.wss.t_s));
	memset(in.wss.pages, 0, sizeof(in.wss.pages));
	n = write_parse(buf, fill_input, &in);
	assert_int_equal(policy_record_read_input(fields, (size_t)n, &back), 0);
	assert_memory_equal(&in, &back, sizeof(in));
}

/* Post-copy answers: a run's window doubles to the limit; a jump starts again at one page. */
static void test_prefetch_run_window(void **state)
{
	struct policy_run r = { 0 };
	uint64_t g = 1000;

	(void)state;
	assert_int_equal(policy_run_window(&r, g), 1);
	g += 1;
	assert_int_equal(policy_run_window(&r, g), 2);
	g += 2;
	assert_int_equal(policy_run_window(&r, g), 4);
	g += 4;
	assert_int_equal(policy_run_window(&r, g), 8);
	g += 8;
	assert_int_equal(policy_run_window(&r, g), 16);
	g += 16;
	assert_int_equal(policy_run_window(&r, g), POLICY_RUN_MAX);
	/* the pusher filled a few pages in between: still the run */
	g += 16 + POLICY_RUN_SLACK;
	assert_int_equal(policy_run_window(&r, g), POLICY_RUN_MAX);
	/* backwards, far ahead, or inside the last answer: a new start */
	assert_int_equal(policy_run_window(&r, g - 100), 1);
	assert_int_equal(policy_run_window(&r, g + 10000), 1);
	assert_int_equal(policy_run_window(&r, g + 10000), 1);
	/* random faults never grow it */
	for (uint64_t x = 7, i = 0; i < 1000; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		assert_true(policy_run_window(&r, (x >> 20) % (1 << 20)) <= 2);
	}
}

/* The probe's figures become the model's input: the curve, DMA, RTT and locality. */
static void test_input_from_probe_sample(void **state)
{
	struct probe_sample ps = { .nwin = 2,
				   .wss_pages = { 100, 200 },
				   .dma_pages_per_s = 5,
				   .rtt_us = 100000,
				   .locality = 0.8 };
	struct policy_input in = { .rtt_s = 0.001 };

	(void)state;
	policy_input_from_sample(&in, &ps);
	assert_int_equal(in.wss.n, 2);
	assert_true(in.dma_pages_per_s == 5);
	assert_true(fabs(in.rtt_s - 0.1) < 1e-12);
	assert_true(in.locality == 0.8);
	/* out of range is clamped, not trusted */
	ps.locality = 3;
	policy_input_from_sample(&in, &ps);
	assert_true(in.locality == 1);
}

static void test_record_limits_roundtrip(void **state)
{
	static char buf[LINE_LEN];
	struct policy_limits l, back;
	int n;

	set_samples(&l);
	l.max_downtime_s = 0.1 + 0.2;
	l.max_slowdown = 1.0 / 3;
	l.fault_service_s = 61e-6 / 7;
	n = write_parse(buf, fill_limits, &l);
	memset(&back, 0, sizeof(back));
	assert_int_equal(policy_record_read_limits(fields, (size_t)n, &back), 0);
	assert_memory_equal(&l, &back, sizeof(l));
	/* keys missing keep their values; a key out of range is refused */
	policy_limits_default(&back);
	n = json_parse_flat("{\"max_rounds\":7}", 16, fields, MAX_FIELDS, &(const char *){ 0 });
	assert_int_equal(n, 1);
	assert_int_equal(policy_record_read_limits(fields, (size_t)n, &back), 0);
	assert_int_equal(back.max_rounds, 7);
	assert_true(back.max_downtime_s == 0.3);
	n = json_parse_flat("{\"max_slowdown\":3}", 18, fields, MAX_FIELDS, &(const char *){ 0 });
	assert_int_equal(policy_record_read_limits(fields, (size_t)n, &back), -EINVAL);
	n = json_parse_flat("{\"max_slowdown\":\"x\"}", 20, fields, MAX_FIELDS,
			    &(const char *){ 0 });
	assert_int_equal(policy_record_read_limits(fields, (size_t)n, &back), -EINVAL);
}

static void test_record_read_input_rejects(void **state)
{
	static const char *const bad[] = {
		"{\"round\":-1}",
		"{\"bandwidth\":\"fast\"}",
		"{\"wss_t_s\":[1,2],\"wss_pages\":[1]}",
		"{\"wss_t_s\":[2,1],\"wss_pages\":[1,2]}",
		"{\"wss_t_s\":[1,1],\"wss_pages\":[1,2]}",
		"{\"wss_t_s\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17],"
		"\"wss_pages\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}",
	};
	struct policy_input in;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *why = NULL;
		int n = json_parse_flat(bad[i], strlen(bad[i]), fields, MAX_FIELDS, &why);

		if (n >= 0 && policy_record_read_input(fields, (size_t)n, &in) != -EINVAL)
			fail_msg("accepted %s", bad[i]);
	}
	/* fields absent stay zero */
	assert_int_equal(
	    json_parse_flat("{\"round\":3}", 11, fields, MAX_FIELDS, &(const char *){ 0 }), 1);
	assert_int_equal(policy_record_read_input(fields, 1, &in), 0);
	assert_int_equal(in.round, 3);
	assert_int_equal(in.wss.n, 0);
	assert_true(in.bandwidth == 0);
}

static void test_record_mode_names(void **state)
{
	assert_string_equal(policy_record_mode_name(-1), "auto");
	for (int m = 0; m < POLICY_NMODES; m++)
		assert_int_equal(policy_record_mode(policy_record_mode_name(m)), m);
	assert_int_equal(policy_record_mode("auto"), -1);
	assert_int_equal(policy_record_mode("fast"), -2);
	assert_string_equal(policy_action_name(POLICY_GIVE_UP), "give-up");
	assert_string_equal(policy_action_name((enum policy_action)99), "?");
	assert_string_equal(policy_mode_name(POLICY_NMODES), "?");
}

static void expect_same_decision(const struct policy_decision *a, const struct policy_decision *b)
{
	assert_int_equal(a->action, b->action);
	assert_int_equal(a->choice, b->choice);
	assert_string_equal(a->reason, b->reason);
	assert_memory_equal(&a->bandwidth, &b->bandwidth, sizeof(double));
	for (int m = 0; m < POLICY_NMODES; m++) {
		const struct policy_prediction *p = &a->pred[m], *q = &b->pred[m];

		assert_int_equal(p->feasible, q->feasible);
		assert_int_equal(p->completes, q->completes);
		assert_int_equal(p->rounds, q->rounds);
		assert_memory_equal(&p->total_s, &q->total_s, sizeof(double));
		assert_memory_equal(&p->downtime_s, &q->downtime_s, sizeof(double));
		assert_memory_equal(&p->bytes, &q->bytes, sizeof(double));
		assert_memory_equal(&p->remote_faults, &q->remote_faults, sizeof(double));
		assert_memory_equal(&p->slowdown, &q->slowdown, sizeof(double));
		assert_string_equal(p->fails, q->fails);
	}
}

/*
 * A migration recorded (limits, then one input per decision) and replayed
 * from its JSON lines, twice: the same decisions, bit for bit.
 */
static void test_record_replay_same_decisions(void **state)
{
	enum { STEPS = 24 };
	static char lines[STEPS + 1][LINE_LEN];
	static struct policy_decision orig[STEPS];
	struct guest g = guest_writer(0.8, 0.3);
	struct policy_limits l = limits();
	struct policy_state st;
	struct policy_input in;
	int n;

	/* odd limits and an irregular link, a blip included */
	l.max_downtime_s = 0.1 + 0.2 / 3;
	l.ewma_alpha = 1.0 / 7;
	l.max_slowdown = 0.05;
	policy_init(&st, &l);
	write_parse(lines[0], fill_limits, &l);
	input_start(&g, &in);
	for (int i = 0; i < STEPS; i++) {
		if (i)
			input_round(&g, &l, &in);
		in.bandwidth = LINK * (0.9 + 0.2 * sin(i * 1.3)) * (i == 11 ? 0.2 : 1);
		in.t_s += 1e-3 / 3;
		in.locality = 0.3 + 0.01 * i / 3;
		write_parse(lines[i + 1], fill_input, &in);
		decide(&st, &in, AUTO, &orig[i]);
	}
	for (int pass = 0; pass < 2; pass++) {
		struct policy_limits rl;
		struct policy_decision d;

		memset(&rl, 0, sizeof(rl));
		n = json_parse_flat(lines[0], strlen(lines[0]), fields, MAX_FIELDS,
				    &(const char *){ 0 });
		assert_int_equal(policy_record_read_limits(fields, (size_t)n, &rl), 0);
		policy_init(&st, &rl);
		for (int i = 0; i < STEPS; i++) {
			n = json_parse_flat(lines[i + 1], strlen(lines[i + 1]), fields, MAX_FIELDS,
					    &(const char *){ 0 });
			assert_int_equal(policy_record_read_input(fields, (size_t)n, &in), 0);
			policy_decide(&st, &in, AUTO, &d);
			expect_same_decision(&orig[i], &d);
		}
	}
}

/* The decision's own record carries its action, choice and reason. */
static void test_record_decision_fields(void **state)
{
	static char buf[LINE_LEN];
	struct guest g = guest_writer(0.5, 1);
	struct policy_limits l = limits();
	struct policy_decision d;
	struct json_out j;
	const struct json_field *f;
	int n;

	decide_start(&g, &l, AUTO, &d);
	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	policy_record_decision(&j, &d);
	json_obj_end(&j);
	assert_non_null(json_done(&j));
	n = json_parse_flat(buf, strlen(buf), fields, MAX_FIELDS, &(const char *){ 0 });
	assert_true(n > 0);
	f = json_find(fields, (size_t)n, "action");
	assert_non_null(f);
	assert_string_equal(f->str, policy_action_name(d.action));
	f = json_find(fields, (size_t)n, "choice");
	assert_string_equal(f->str, policy_mode_name(d.choice));
	f = json_find(fields, (size_t)n, "reason");
	assert_string_equal(f->str, d.reason);
	f = json_find(fields, (size_t)n, "postcopy_downtime_s");
	assert_non_null(f);
	assert_true(f->num == d.pred[POLICY_POSTCOPY].downtime_s);
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
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_parse_every_key),
		cmocka_unit_test(test_config_parse_units),
		cmocka_unit_test(test_config_comments_and_blank_lines),
		cmocka_unit_test(test_config_parse_errors_name_the_line),
		cmocka_unit_test(test_config_long_line),
		cmocka_unit_test(test_config_set),
		cmocka_unit_test(test_config_format_lists_every_key),
		cmocka_unit_test(test_config_get_set_internal_roundtrip),
		cmocka_unit_test(test_record_input_roundtrip),
		cmocka_unit_test(test_input_from_probe_sample),
		cmocka_unit_test(test_prefetch_run_window),
		cmocka_unit_test(test_record_limits_roundtrip),
		cmocka_unit_test(test_record_read_input_rejects),
		cmocka_unit_test(test_record_mode_names),
		cmocka_unit_test(test_record_replay_same_decisions),
		cmocka_unit_test(test_record_decision_fields),
	};

	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
