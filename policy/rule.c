// SPDX-License-Identifier: MIT
/*
 * The decision rule of policy.h: bandwidth smoothing and the blip guard,
 * the curve learnt from rounds, and the choice among the modes' predictions.
 */
#include "policy/policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const mode_names[POLICY_NMODES] = { "precopy", "postcopy", "hybrid" };
static const char *const action_names[] = { "continue", "stop-and-copy", "switch-postcopy",
					    "give-up" };

const char *policy_mode_name(enum policy_mode m)
{
	return (unsigned int)m < POLICY_NMODES ? mode_names[m] : "?";
}

const char *policy_action_name(enum policy_action a)
{
	return (unsigned int)a < sizeof(action_names) / sizeof(action_names[0]) ? action_names[a]
										: "?";
}

void policy_init(struct policy_state *st, const struct policy_limits *l)
{
	memset(st, 0, sizeof(*st));
	st->lim = *l;
}

/* Fold the new bandwidth sample in; true when it is a blip (a sudden drop). */
static bool smooth(struct policy_state *st, const struct policy_input *in)
{
	const struct policy_limits *l = &st->lim;
	double s = in->bandwidth;
	bool blip = false;

	if (l->bandwidth_cap > 0 && s > l->bandwidth_cap)
		s = l->bandwidth_cap;
	if (s > 0) {
		if (st->bw_samples && s < l->blip_drop * st->bw_avg)
			blip = true;
		st->bw_avg =
		    st->bw_samples ? l->ewma_alpha * s + (1 - l->ewma_alpha) * st->bw_avg : s;
		st->bw_samples++;
	}
	/* no switch for blip_rounds decisions from the blip on */
	if (blip)
		st->blip_wait = l->blip_rounds;
	else if (st->blip_wait)
		st->blip_wait--;
	return blip;
}

static double effective_bw(const struct policy_state *st)
{
	double bw = st->bw_avg;

	if (st->lim.bandwidth_cap > 0 && (bw <= 0 || bw > st->lim.bandwidth_cap))
		bw = st->lim.bandwidth_cap;
	return bw;
}

/* Is @a a better end than @b? Least downtime; ties by total; then the safer mode. */
static bool better(const struct policy_limits *l, const struct policy_prediction *a,
		   enum policy_mode ma, const struct policy_prediction *b, enum policy_mode mb)
{
	static const int safety[POLICY_NMODES] = { 0, 2, 1 }; /* pre-copy keeps a whole copy */

	if (fabs(a->downtime_s - b->downtime_s) > l->downtime_tie_s)
		return a->downtime_s < b->downtime_s;
	if (fabs(a->total_s - b->total_s) > 0.1 * fmin(a->total_s, b->total_s))
		return a->total_s < b->total_s;
	return safety[ma] < safety[mb];
}

static void __attribute__((format(printf, 2, 3)))
say(struct policy_decision *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
	va_end(ap);
}

/* Describe a prediction in a few words, for reasons. */
static void brief(const struct policy_prediction *p, char *b, size_t n)
{
	if (!p->valid || !p->completes)
		snprintf(b, n, "%s", p->fails[0] ? p->fails : "does not complete");
	else
		snprintf(b, n, "%.1f ms down, %.1f s total, slowdown %.0f %%%s%s",
			 p->downtime_s * 1e3, p->total_s, p->slowdown * 100,
			 p->fails[0] ? "; " : "", p->fails);
}

/*
 * What this decision sees: the bandwidth folded in, the curve grown by the
 * round's own point (distinct pages per round time) and merged with the
 * probe's, and each mode's prediction from there.
 */
static void learn(struct policy_state *st, const struct policy_input *in, struct policy_decision *d)
{
	struct policy_curve wss;

	smooth(st, in);
	memset(d, 0, sizeof(*d));
	d->t_s = in->t_s;
	d->round = in->round;
	st->decisions++;
	if (in->round_s > 0 && in->round_dirtied)
		policy_curve_add(&st->seen, in->round_s, (double)in->round_dirtied);
	wss = st->seen;
	policy_curve_merge(&wss, &in->wss);
	st->seen = wss;
	d->bandwidth = effective_bw(st);
	for (int m = 0; m < POLICY_NMODES; m++)
		policy_predict(&st->lim, in, &wss, d->bandwidth, (enum policy_mode)m, &d->pred[m]);
}

static void set(struct policy_decision *d, enum policy_action a, enum policy_mode m)
{
	d->action = a;
	d->choice = m;
}

/* Decisions that need no comparison of the modes; true when one was made. */
static bool forced(const struct policy_limits *l, const struct policy_input *in, int requested,
		   bool may_postcopy, struct policy_decision *d)
{
	bool start = in->round == 0 && in->bytes_sent == 0;

	if (requested == POLICY_POSTCOPY) {
		set(d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
		say(d, "post-copy was requested");
	} else if (!(d->bandwidth > 0)) {
		set(d, POLICY_CONTINUE, POLICY_PRECOPY);
		say(d, "pre-copy while the link and the guest are measured (no bandwidth yet)");
	} else if (l->max_total_s > 0 && in->elapsed_s >= l->max_total_s) {
		set(d, may_postcopy && !start ? POLICY_SWITCH_POSTCOPY : POLICY_GIVE_UP,
		    POLICY_POSTCOPY);
		say(d, "the total time limit (%.0f s) is reached%s", l->max_total_s,
		    d->action == POLICY_GIVE_UP ? " and post-copy is not allowed" : "");
	} else {
		return false;
	}
	return true;
}

/* The best mode that meets every limit and may be chosen now, or -1. */
static int best_mode(const struct policy_state *st, const struct policy_input *in, int requested,
		     bool may_postcopy, const struct policy_decision *d)
{
	bool start = in->round == 0 && in->bytes_sent == 0;
	int best = -1;

	for (int m = 0; m < POLICY_NMODES; m++) {
		const struct policy_prediction *p = &d->pred[m];

		if (!p->feasible || (m != POLICY_PRECOPY && !may_postcopy))
			continue;
		/* explicit hybrid: pre-copy first, post-copy only after a round */
		if (m == POLICY_POSTCOPY && requested == POLICY_HYBRID && start)
			continue;
		if (m != POLICY_PRECOPY && st->blip_wait && !start)
			continue;
		if (best < 0 || better(&st->lim, p, (enum policy_mode)m, &d->pred[best],
				       (enum policy_mode)best))
			best = m;
	}
	return best;
}

/* The action for @best (which meets every limit), and why. */
static void take_best(const struct policy_input *in, int best, struct policy_decision *d)
{
	const struct policy_prediction *p = &d->pred[best];
	bool start = in->round == 0 && in->bytes_sent == 0;
	char b1[160], b2[160];

	d->choice = (enum policy_mode)best;
	if (best == POLICY_POSTCOPY)
		d->action = POLICY_SWITCH_POSTCOPY;
	else if (best == POLICY_PRECOPY && p->rounds == in->round && !start)
		d->action = POLICY_STOP_AND_COPY;
	else
		d->action = POLICY_CONTINUE;
	brief(p, b1, sizeof(b1));
	brief(&d->pred[best == POLICY_POSTCOPY ? POLICY_PRECOPY : POLICY_POSTCOPY], b2, sizeof(b2));
	if (d->action == POLICY_STOP_AND_COPY)
		say(d,
		    "pre-copy's rest fits now and another round would not cut the pause: %s "
		    "(post-copy: %s)",
		    b1, b2);
	else if (best == POLICY_PRECOPY)
		say(d, "pre-copy converges: %s (post-copy: %s)", b1, b2);
	else if (best == POLICY_POSTCOPY)
		say(d, "post-copy now is the cheapest safe end: %s (pre-copy: %s)", b1, b2);
	else
		say(d,
		    "hybrid: pre-copy for %u more round(s), then post-copy: %s (post-copy now: "
		    "%s)",
		    p->rounds - in->round, b1, b2);
}

/* No mode meets every limit: the least bad way on. */
static void no_mode_fits(const struct policy_state *st, const struct policy_input *in,
			 int requested, bool may_postcopy, struct policy_decision *d)
{
	const struct policy_prediction *pre = &d->pred[POLICY_PRECOPY];
	bool start = in->round == 0 && in->bytes_sent == 0;
	char b1[160], b2[160];

	brief(pre, b1, sizeof(b1));
	brief(&d->pred[POLICY_POSTCOPY], b2, sizeof(b2));
	if (pre->completes && pre->rounds > in->round) {
		set(d, POLICY_CONTINUE, POLICY_PRECOPY);
		say(d,
		    "no mode meets every limit; pre-copy still shrinks the rest: %s (post-copy: "
		    "%s)",
		    b1, b2);
	} else if (st->blip_wait && may_postcopy && !start) {
		set(d, POLICY_CONTINUE, POLICY_POSTCOPY);
		say(d,
		    "the bandwidth just dropped: no switch into a blip; pre-copy meanwhile "
		    "(%s; post-copy: %s)",
		    b1, b2);
	} else if (may_postcopy && !(requested == POLICY_HYBRID && start)) {
		set(d, POLICY_SWITCH_POSTCOPY, POLICY_POSTCOPY);
		say(d,
		    "no mode meets every limit; post-copy is the end that completes: %s "
		    "(pre-copy: %s)",
		    b2, b1);
	} else if (in->round < st->lim.max_rounds) {
		set(d, POLICY_CONTINUE, POLICY_PRECOPY);
		say(d,
		    "no mode meets every limit and post-copy is not allowed: pre-copy goes on "
		    "until max_rounds or max_total_s: %s (post-copy: %s)",
		    b1, b2);
	} else {
		set(d, POLICY_GIVE_UP, POLICY_PRECOPY);
		say(d,
		    "pre-copy used its rounds without meeting the limits and post-copy is not "
		    "allowed: %s",
		    b1);
	}
}

void policy_decide(struct policy_state *st, const struct policy_input *in, int requested,
		   struct policy_decision *d)
{
	/* requested pre-copy only stops or gives up (policy.h) */
	bool may_postcopy = st->lim.allow_postcopy && requested != POLICY_PRECOPY;
	int best;

	learn(st, in, d);
	if (forced(&st->lim, in, requested, may_postcopy, d))
		return;
	best = best_mode(st, in, requested, may_postcopy, d);
	if (best >= 0)
		take_best(in, best, d);
	else
		no_mode_fits(st, in, requested, may_postcopy, d);
}
