// SPDX-License-Identifier: MIT
/*
 * The working-set curve W(t): distinct pages dirtied within an interval of
 * length t, from measured points. Between points it is read log-log (a
 * power law per segment, as working sets grow); below the first point it
 * is linear through the origin; past the last it keeps the last segment's
 * exponent, clamped to [0, 1] (distinct pages never grow faster than time),
 * or grows linearly when there is one point only (the cautious guess for
 * pre-copy).
 */
#include "policy/policy.h"

#include <math.h>
#include <string.h>

static double clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Exponent of the segment between points i and i + 1, clamped to [0, @hi]. */
static double slope(const struct policy_curve *c, uint32_t i, double hi)
{
	double a = c->pages[i], b = c->pages[i + 1];

	if (a <= 0 || b <= 0 || c->t_s[i + 1] <= c->t_s[i])
		return b > a ? 1.0 : 0.0;
	return clamp(log(b / a) / log(c->t_s[i + 1] / c->t_s[i]), 0.0, hi);
}

double policy_curve_at(const struct policy_curve *c, double t, double cap)
{
	double w;
	uint32_t i;

	if (!c->n || t <= 0)
		return 0;
	if (t <= c->t_s[0]) {
		w = c->pages[0] * t / c->t_s[0];
	} else if (t >= c->t_s[c->n - 1]) {
		uint32_t last = c->n - 1;
		double a = c->n > 1 ? slope(c, last - 1, 1.0) : 1.0;

		w = c->pages[last] * pow(t / c->t_s[last], a);
	} else {
		for (i = 0; i + 1 < c->n && c->t_s[i + 1] < t; i++)
			;
		if (c->pages[i] <= 0)
			w = c->pages[i + 1] * (t - c->t_s[i]) / (c->t_s[i + 1] - c->t_s[i]);
		else
			/* through both points: a steep segment (a burst) stays steep */
			w = c->pages[i] * pow(t / c->t_s[i], slope(c, i, INFINITY));
	}
	return cap > 0 ? fmin(w, cap) : w;
}

/* The point nearest @t within 10 % of it, or c->n (replacing it keeps t ascending). */
static uint32_t nearest(const struct policy_curve *c, double t)
{
	uint32_t best = c->n;

	for (uint32_t i = 0; i < c->n; i++)
		if (fabs(c->t_s[i] - t) <= 0.1 * t &&
		    (best == c->n || fabs(c->t_s[i] - t) < fabs(c->t_s[best] - t)))
			best = i;
	return best;
}

void policy_curve_add(struct policy_curve *c, double t, double pages)
{
	uint32_t i;

	if (!(t > 0) || !(pages >= 0))
		return;
	i = nearest(c, t);
	if (i < c->n) {
		c->t_s[i] = t;
		c->pages[i] = pages;
		goto order;
	}
	for (i = 0; i < c->n && c->t_s[i] < t; i++)
		;
	if (c->n == POLICY_MAX_POINTS) {
		/* full: forget the point nearest its neighbour (keeps the span) */
		uint32_t drop = 1;
		double best = INFINITY;

		for (uint32_t k = 1; k + 1 < c->n; k++) {
			double gap = log(c->t_s[k + 1] / c->t_s[k - 1]);

			if (gap < best) {
				best = gap;
				drop = k;
			}
		}
		memmove(&c->t_s[drop], &c->t_s[drop + 1], (c->n - drop - 1) * sizeof(double));
		memmove(&c->pages[drop], &c->pages[drop + 1], (c->n - drop - 1) * sizeof(double));
		c->n--;
		if (drop < i)
			i--;
	}
	memmove(&c->t_s[i + 1], &c->t_s[i], (c->n - i) * sizeof(double));
	memmove(&c->pages[i + 1], &c->pages[i], (c->n - i) * sizeof(double));
	c->t_s[i] = t;
	c->pages[i] = pages;
	c->n++;
order:
	/* distinct pages never fall with a longer window: the newest point wins */
	for (uint32_t k = 0; k < c->n; k++)
		if (c->t_s[k] < t && c->pages[k] > pages)
			c->pages[k] = pages;
	for (uint32_t k = 0; k < c->n; k++)
		if (c->t_s[k] > t && c->pages[k] < pages)
			c->pages[k] = pages;
}

void policy_curve_merge(struct policy_curve *dst, const struct policy_curve *src)
{
	for (uint32_t i = 0; i < src->n; i++)
		policy_curve_add(dst, src->t_s[i], src->pages[i]);
}
