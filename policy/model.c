// SPDX-License-Identifier: MIT
/*
 * Predictions per mode from one decision point (the model of policy.h).
 * Times are seconds, sizes pages or bytes; everything is from "now" plus
 * what the input says was already spent.
 */
#include "policy/policy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define FAULT_STEPS 64
/* the handshake: READY comes back and STARTED comes back within the pause */
#define HANDSHAKE_RTTS 1.5
/* a fault on a sequential run brings its neighbours: this many faults fewer */
#define RUN_PREFETCH 64.0

struct ctx {
	const struct policy_limits *l;
	const struct policy_input *in;
	const struct policy_curve *wss;
	double bw;     /* bytes/s */
	double pbytes; /* wire bytes per page */
	double cap;    /* pages the guest can dirty at most */
};

/* Distinct pages dirtied within @t, device writes included. */
static double dirtied(const struct ctx *c, double t)
{
	double w = policy_curve_at(c->wss, t, c->cap) + c->in->dma_pages_per_s * t;

	return fmin(w, c->cap);
}

static double state_s(const struct ctx *c)
{
	return (double)c->in->state_bytes / c->bw;
}

/* The pause of a stop-and-copy of @rest pages with @inflight bytes ahead. */
static double stop_downtime(const struct ctx *c, double rest, double inflight)
{
	return (rest * c->pbytes + inflight) / c->bw + state_s(c) + HANDSHAKE_RTTS * c->in->rtt_s +
	       c->l->switch_cost_s * 0.5;
}

static void fail(struct policy_prediction *p, const char *why)
{
	p->feasible = false;
	if (!p->fails[0])
		snprintf(p->fails, sizeof(p->fails), "%s", why);
}

/* Check the limits every mode shares. */
static void judge(const struct ctx *c, struct policy_prediction *p)
{
	char b[96];

	p->feasible = p->completes;
	if (!p->completes)
		return;
	if (p->downtime_s > c->l->max_downtime_s) {
		snprintf(b, sizeof(b), "downtime %.0f ms > %.0f ms", p->downtime_s * 1e3,
			 c->l->max_downtime_s * 1e3);
		fail(p, b);
	}
	if (c->l->max_total_s > 0 && p->total_s > c->l->max_total_s) {
		snprintf(b, sizeof(b), "total %.1f s > %.1f s", p->total_s, c->l->max_total_s);
		fail(p, b);
	}
	if (p->slowdown > c->l->max_slowdown) {
		snprintf(b, sizeof(b), "guest slowdown %.0f %% > %.0f %%", p->slowdown * 100,
			 c->l->max_slowdown * 100);
		fail(p, b);
	}
}

/*
 * Pre-copy rounds from @rest pages (with @inflight bytes queued) until the
 * rest fits the downtime limit and a further round would not shrink it by
 * the margin. @max_rounds bounds the rounds simulated. Fills rounds, bytes,
 * total (from now) and downtime; completes says whether it converged.
 */
struct precopy_run {
	double rest;	 /* pages left when it stops (or stalls) */
	double t;	 /* seconds from now */
	double bytes;	 /* sent from now */
	uint32_t rounds; /* simulated */
	double last_round_s;
	bool converged;
	bool stalled;
	double downtime; /* the stop at the end (or the least one seen when stalled) */
};

static void precopy_rounds(const struct ctx *c, double rest, double inflight, uint32_t max_rounds,
			   struct precopy_run *r)
{
	double margin = c->l->shrink_margin;

	memset(r, 0, sizeof(*r));
	r->downtime = INFINITY;
	for (;;) {
		double send = (rest * c->pbytes + inflight) / c->bw;
		double down = stop_downtime(c, rest, inflight);
		double next = dirtied(c, send);

		r->downtime = fmin(r->downtime, down);
		/* stop once it fits, unless a round still cuts the pause by a margin */
		if (down <= c->l->max_downtime_s &&
		    (next > rest * (1 - margin) || r->rounds >= max_rounds ||
		     (rest - next) * c->pbytes / c->bw < c->l->downtime_tie_s)) {
			r->converged = true;
			r->downtime = down;
			r->rest = rest;
			return;
		}
		if (r->rounds >= max_rounds || (r->rounds > 0 && next > rest * (1 - margin))) {
			r->stalled = r->rounds > 0 && next > rest * (1 - margin);
			r->rest = rest;
			return;
		}
		r->t += send;
		r->bytes += rest * c->pbytes + inflight;
		r->last_round_s = send;
		r->rounds++;
		inflight = 0;
		rest = next;
	}
}

static void predict_precopy(const struct ctx *c, struct policy_prediction *p)
{
	const struct policy_input *in = c->in;
	uint32_t left = c->l->max_rounds > in->round ? c->l->max_rounds - in->round : 0;
	struct precopy_run r;

	precopy_rounds(c, (double)in->remaining_pages, (double)in->inflight_bytes, left, &r);
	p->rounds = in->round + r.rounds;
	p->downtime_s = r.downtime;
	p->completes = r.converged;
	p->total_s = in->elapsed_s + r.t + (r.converged ? r.downtime : 0);
	p->bytes = (double)in->bytes_sent + r.bytes + r.rest * c->pbytes;
	judge(c, p);
	if (!r.converged) {
		char b[96];

		snprintf(b, sizeof(b), "does not converge: the rest stays near %.0f MiB",
			 r.rest * POLICY_PAGE_SIZE / 1048576.0);
		fail(p, b);
		p->total_s = INFINITY;
	}
}

/*
 * Post-copy of @owed pages, @hot_owed of them just dirtied (the guest's hot
 * set, touched again soon). Fills downtime, push time, faults, slowdown.
 */
static void postcopy_tail(const struct ctx *c, double owed, double hot_owed,
			  struct policy_prediction *p, double *push_s)
{
	const struct policy_input *in = c->in;
	double res = fmax(1.0, (double)in->resident_pages);
	double cold_owed = fmax(0.0, owed - hot_owed);
	double pagemap = (double)in->ram_pages / 8.0;
	double d = owed * c->pbytes / c->bw;
	double faults = 0, prev_w = 0;
	double fault_cost = in->rtt_s + POLICY_PAGE_SIZE / c->bw + c->l->fault_service_s;
	double blocked, lat_slow, link_slow = 0, first_rate;

	p->downtime_s = c->l->switch_cost_s + HANDSHAKE_RTTS * in->rtt_s +
			(pagemap + (double)in->state_bytes) / c->bw;
	for (int i = 1; i <= FAULT_STEPS && d > 0; i++) {
		double tau = d * i / FAULT_STEPS;
		double mid = d * (i - 0.5) / FAULT_STEPS;
		double w = dirtied(c, tau);
		double touched_owed;

		/* first touches in this step that find their page owed and not yet pushed */
		touched_owed = fmin(w, hot_owed) + fmax(0.0, w - hot_owed) * cold_owed / res;
		if (w > 0)
			faults += (w - prev_w) * (touched_owed / w) * (1 - mid / d);
		prev_w = w;
	}
	/* sequential runs: one fault brings the run's neighbours along */
	faults *= 1 - in->locality * (1 - 1 / RUN_PREFETCH);
	blocked = faults * fault_cost / fmax(1.0, (double)in->vcpus);
	lat_slow = d > 0 ? blocked / (d + blocked) : 0;
	/* the guest cannot take owed pages in faster than the link brings them */
	first_rate = dirtied(c, 0.1) / 0.1;
	if (owed > 0 && first_rate * POLICY_PAGE_SIZE > c->bw) {
		double owed_share = fmin(1.0, owed / fmax(1.0, dirtied(c, d)));

		link_slow = (1 - c->bw / (first_rate * POLICY_PAGE_SIZE)) * owed_share;
	}
	p->remote_faults = faults;
	p->slowdown = fmin(1.0, fmax(lat_slow, link_slow));
	*push_s = d; /* the pusher does not wait for the guest */
}

static void predict_postcopy(const struct ctx *c, struct policy_prediction *p)
{
	const struct policy_input *in = c->in;
	double owed =
	    in->round || in->bytes_sent ? (double)in->remaining_pages : (double)in->resident_pages;
	double hot = in->round ? fmin(owed, dirtied(c, fmax(in->round_s, 0.1))) : 0;
	double push;

	/* what is in flight arrives before the pause (the switch drains it first) */
	postcopy_tail(c, owed, hot, p, &push);
	p->completes = true;
	p->rounds = in->round;
	p->total_s = in->elapsed_s + (double)in->inflight_bytes / c->bw + p->downtime_s + push;
	p->bytes = (double)in->bytes_sent + (double)in->inflight_bytes + owed * c->pbytes +
		   (double)in->ram_pages / 8.0;
	judge(c, p);
}

/* Hybrid: k more pre-copy rounds (k >= 1), then post-copy of their rest; the best k. */
static void predict_hybrid(const struct ctx *c, struct policy_prediction *p)
{
	const struct policy_input *in = c->in;
	uint32_t left = c->l->max_rounds > in->round ? c->l->max_rounds - in->round : 0;
	uint32_t kmax = left < 8 ? left : 8;
	bool have = false;

	for (uint32_t k = 1; k <= kmax; k++) {
		struct policy_prediction q = { .valid = true };
		struct precopy_run r;
		double push;

		precopy_rounds(c, (double)in->remaining_pages, (double)in->inflight_bytes, k, &r);
		if (r.rounds < k)
			break; /* pre-copy converged or stalled first: more rounds change nothing */
		postcopy_tail(c, r.rest, fmin(r.rest, dirtied(c, r.last_round_s)), &q, &push);
		q.completes = true;
		q.rounds = in->round + k;
		q.total_s = in->elapsed_s + r.t + q.downtime_s + push;
		q.bytes = (double)in->bytes_sent + r.bytes + r.rest * c->pbytes +
			  (double)in->ram_pages / 8.0;
		judge(c, &q);
		/* the first feasible switch point is the soonest; else the least slowdown */
		if (!have || (q.feasible && !p->feasible) ||
		    (!q.feasible && !p->feasible && q.slowdown < p->slowdown)) {
			*p = q;
			have = true;
		}
		if (p->feasible)
			break;
	}
	if (!have) {
		p->completes = false;
		p->total_s = INFINITY;
		p->downtime_s = INFINITY;
		fail(p, "no pre-copy round left before a switch");
	}
}

void policy_predict(const struct policy_limits *l, const struct policy_input *in,
		    const struct policy_curve *wss, double bw, enum policy_mode mode,
		    struct policy_prediction *out)
{
	struct ctx c = {
		.l = l,
		.in = in,
		.wss = wss,
		.bw = bw,
		.pbytes = POLICY_PAGE_SIZE * (in->wire_ratio > 0 ? in->wire_ratio : 1.0),
		.cap = (double)(in->resident_pages > in->ram_pages ? in->resident_pages
								   : in->ram_pages),
	};

	memset(out, 0, sizeof(*out));
	out->valid = true;
	if (!(bw > 0)) {
		out->valid = false;
		out->total_s = out->downtime_s = INFINITY;
		fail(out, "bandwidth not measured yet");
		return;
	}
	if (mode == POLICY_PRECOPY)
		predict_precopy(&c, out);
	else if (mode == POLICY_POSTCOPY)
		predict_postcopy(&c, out);
	else
		predict_hybrid(&c, out);
	if (mode != POLICY_PRECOPY && !l->allow_postcopy) {
		out->fails[0] = 0;
		fail(out, "post-copy not allowed (allow_postcopy = no)");
	}
}
