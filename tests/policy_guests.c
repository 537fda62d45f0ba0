// SPDX-License-Identifier: MIT
/* Synthetic guests and their migrations for the policy tests (tests/policy_guests.h). */
#include "tests/policy_guests.h"
#include "tests/helpers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/util.h"

static const double windows[NWIN] = { 0.1, 0.25, 0.5, 1, 2, 5, 10, 30 };

struct pg_guest pg_guest_base(void)
{
	struct pg_guest g;

	memset(&g, 0, sizeof(g));
	g.ram_pages = RAM_PAGES;
	g.resident_pages = RESIDENT;
	g.bandwidth = LINK;
	g.rtt_s = 100e-6;
	return g;
}

/* Timer ticks and a few stacks: next to nothing. */
struct pg_guest pg_guest_idle(void)
{
	static const double w[NWIN] = { 2, 4, 6, 10, 16, 30, 50, 120 };
	struct pg_guest g = pg_guest_base();

	memcpy(g.w, w, sizeof(w));
	g.locality = 0.5;
	return g;
}

/* Writes @share of the link's page rate over the 1 GiB working set. */
struct pg_guest pg_guest_writer(double share, double locality)
{
	struct pg_guest g = pg_guest_base();

	for (int i = 0; i < NWIN; i++)
		g.w[i] = fmin(share * LINK_PAGES * windows[i], WS_PAGES);
	g.locality = locality;
	return g;
}

/* Rewrites a hot set of @pages at random, fast: W saturates within 0.5 s. */
struct pg_guest pg_guest_hot_set(double pages)
{
	static const double shape[NWIN] = { 0.63, 0.92, 0.99, 1, 1, 1, 1, 1 };
	struct pg_guest g = pg_guest_base();

	for (int i = 0; i < NWIN; i++)
		g.w[i] = shape[i] * pages;
	g.locality = 0;
	return g;
}

/* A hot set of @pages rewritten in order, just under the link's rate. */
struct pg_guest pg_guest_hot_set_seq(double pages)
{
	struct pg_guest g = pg_guest_base();

	for (int i = 0; i < NWIN; i++)
		g.w[i] = i ? pages : pages / 2;
	g.locality = 1;
	return g;
}

static void curve_of(const struct pg_guest *g, struct policy_curve *c)
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
void pg_input_start(const struct pg_guest *g, struct policy_input *in)
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
void pg_input_round(const struct pg_guest *g, const struct policy_limits *l,
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

void pg_decide(struct policy_state *st, const struct policy_input *in, int requested,
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
void pg_migrate(const struct pg_guest *g, const struct policy_limits *l, int requested, int max,
		struct pg_trace *tr)
{
	struct policy_state st;
	struct policy_input in;

	memset(tr, 0, sizeof(*tr));
	policy_init(&st, l);
	pg_input_start(g, &in);
	for (tr->n = 0; tr->n < max && tr->n < MAX_STEPS; tr->n++) {
		if (tr->n)
			pg_input_round(g, l, &in);
		pg_decide(&st, &in, requested, &tr->last);
		tr->action[tr->n] = tr->last.action;
		tr->choice[tr->n] = tr->last.choice;
		tr->remaining[tr->n] = in.remaining_pages;
		if (tr->last.action != POLICY_CONTINUE) {
			tr->n++;
			break;
		}
	}
}

void pg_expect_action(const struct policy_decision *d, enum policy_action a, enum policy_mode m)
{
	if (d->action != a || d->choice != m) {
		show(d);
		fail_msg("round %u: got %s (%s), want %s (%s)", d->round,
			 policy_action_name(d->action), policy_mode_name(d->choice),
			 policy_action_name(a), policy_mode_name(m));
	}
}

void pg_expect_reason(const struct policy_decision *d, const char *part)
{
	if (!strstr(d->reason, part)) {
		show(d);
		fail_msg("reason \"%s\" does not say \"%s\"", d->reason, part);
	}
}

void pg_expect_finite(const struct policy_decision *d)
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

struct policy_limits pg_limits(void)
{
	struct policy_limits l;

	policy_limits_default(&l);
	return l;
}

/* One decision from the start, from a fresh state. */
void pg_decide_start(const struct pg_guest *g, const struct policy_limits *l, int requested,
		     struct policy_decision *d)
{
	struct policy_state st;
	struct policy_input in;

	policy_init(&st, l);
	pg_input_start(g, &in);
	pg_decide(&st, &in, requested, d);
	pg_expect_finite(d);
}

bool pg_near(double a, double b)
{
	return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b));
}

/* A value inside key @name's range, in the file's unit, different from the default. */
const char *pg_sample_value(const char *name)
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

/* Set every key of @l to its sample value (and nothing else: padding stays zero). */
void pg_set_samples(struct policy_limits *l)
{
	char why[WHY_LEN];

	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i < policy_config_count(); i++) {
		double v;
		const char *k = policy_config_get(l, i, false, &v);

		if (policy_config_set(l, k, pg_sample_value(k), why, sizeof(why)))
			fail_msg("%s", why);
	}
}
