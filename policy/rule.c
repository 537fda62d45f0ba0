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

void policy_decide(struct policy_state *st, const struct policy_input *in, int requested,
		   struct policy_decision *d)
{
	const struct policy_limits *l = &st->lim;
	bool start = in->round == 0 && in->bytes_sent == 0;
	/* requested pre-copy only stops or gives up (policy.h) */
	bool may_postcopy = l->allow_postcopy && requested != POLICY_PRECOPY;
	smooth(st, in);
	struct policy_curve wss;
	int best = -1;
	char b1[160], b2[160];
	double bw;

	memset(d, 0, sizeof(*d));
	d->t_s = in->t_s;
	d->round = in->round;
	st->decisions++;
	/* the curve: the probe's points and each round's own (distinct pages per round time) */
	if (in->round_s > 0 && in->round_dirtied)
		policy_curve_add(&st->seen, in->round_s, (double)in->round_dirtied);
	wss = st->seen;
	policy_curve_merge(&wss, &in->wss);
	st->seen = wss;
	bw = effective_bw(st);
	d->bandwidth = bw;
	for (int m = 0; m < POLICY_NMODES; m++)
		policy_predict(l, in, &wss, bw, (enum policy_mode)m, &d->pred[m]);

	if (requested == POLICY_POSTCOPY) {
		d->action = POLICY_SWITCH_POSTCOPY;
		d->choice = POLICY_POSTCOPY;
		say(d, "post-copy was requested%s%s", "", "");
		return;
	}
	if (!(bw > 0)) {
		d->action = POLICY_CONTINUE;
		d->choice = POLICY_PRECOPY;
		say(d, "pre-copy while the link and the guest are measured (no bandwidth yet)%s%s",
		    "", "");
		return;
	}
	if (l->max_total_s > 0 && in->elapsed_s >= l->max_total_s) {
		d->choice = POLICY_POSTCOPY;
		d->action = may_postcopy && !start ? POLICY_SWITCH_POSTCOPY : POLICY_GIVE_UP;
		snprintf(d->reason, sizeof(d->reason), "the total time limit (%.0f s) is reached%s",
			 l->max_total_s,
			 d->action == POLICY_GIVE_UP ? " and post-copy is not allowed" : "");
		return;
	}
	for (int m = 0; m < POLICY_NMODES; m++) {
		const struct policy_prediction *p = &d->pred[m];

		if (!p->feasible || (m != POLICY_PRECOPY && !may_postcopy))
			continue;
		/* explicit hybrid: pre-copy first, post-copy only after a round */
		if (m == POLICY_POSTCOPY && requested == POLICY_HYBRID && start)
			continue;
		if (m != POLICY_PRECOPY && st->blip_wait && !start)
			continue;
		if (best < 0 ||
		    better(l, p, (enum policy_mode)m, &d->pred[best], (enum policy_mode)best))
			best = m;
	}
	if (best >= 0) {
		const struct policy_prediction *p = &d->pred[best];

		d->choice = (enum policy_mode)best;
		if (best == POLICY_POSTCOPY)
			d->action = POLICY_SWITCH_POSTCOPY;
		else if (best == POLICY_PRECOPY && p->rounds == in->round && !start)
			d->action = POLICY_STOP_AND_COPY;
		else
			d->action = POLICY_CONTINUE;
		brief(p, b1, sizeof(b1));
		if (best == POLICY_PRECOPY) {
			brief(&d->pred[POLICY_POSTCOPY], b2, sizeof(b2));
			say(d,
			    d->action == POLICY_STOP_AND_COPY
				? "pre-copy's rest fits now and another round would not cut the "
				  "pause: %s (post-copy: %s)"
				: "pre-copy converges: %s (post-copy: %s)",
			    b1, b2);
		} else if (best == POLICY_POSTCOPY) {
			brief(&d->pred[POLICY_PRECOPY], b2, sizeof(b2));
			say(d, "post-copy now is the cheapest safe end: %s (pre-copy: %s)", b1, b2);
		} else {
			brief(&d->pred[POLICY_POSTCOPY], b2, sizeof(b2));
			snprintf(d->reason, sizeof(d->reason),
				 "hybrid: pre-copy for %u more round(s), then post-copy: %s "
				 "(post-copy now: %s)",
				 p->rounds - in->round, b1, b2);
		}
		return;
	}
	/* nothing meets every limit */
	brief(&d->pred[POLICY_PRECOPY], b1, sizeof(b1));
	brief(&d->pred[POLICY_POSTCOPY], b2, sizeof(b2));
	if (d->pred[POLICY_PRECOPY].completes && d->pred[POLICY_PRECOPY].rounds > in->round) {
		d->action = POLICY_CONTINUE;
		d->choice = POLICY_PRECOPY;
		say(d,
		    "no mode meets every limit; pre-copy still shrinks the rest: %s (post-copy: "
		    "%s)",
		    b1, b2);
	} else if (st->blip_wait && may_postcopy && !start) {
		d->action = POLICY_CONTINUE;
		d->choice = POLICY_POSTCOPY;
		say(d,
		    "the bandwidth just dropped: no switch into a blip; pre-copy meanwhile "
		    "(%s; post-copy: %s)",
		    b1, b2);
	} else if (may_postcopy && !(requested == POLICY_HYBRID && start)) {
		d->action = POLICY_SWITCH_POSTCOPY;
		d->choice = POLICY_POSTCOPY;
		say(d,
		    "no mode meets every limit; post-copy is the end that completes: %s "
		    "(pre-copy: %s)",
		    b2, b1);
	} else if (in->round < l->max_rounds) {
		d->action = POLICY_CONTINUE;
		d->choice = POLICY_PRECOPY;
		say(d,
		    "no mode meets every limit and post-copy is not allowed: pre-copy goes on "
		    "until max_rounds or max_total_s: %s (post-copy: %s)",
		    b1, b2);
	} else {
		d->action = POLICY_GIVE_UP;
		d->choice = POLICY_PRECOPY;
		say(d,
		    "pre-copy used its rounds without meeting the limits and post-copy is not "
		    "allowed: %s%s",
		    b1, "");
	}
}
