/* SPDX-License-Identifier: MIT */
/*
 * What the policy tests (tests/test_policy_*.c) feed policy/: synthetic
 * guests, each a working-set curve W(t) at the probe's windows, RAM,
 * resident pages, the link's bandwidth and RTT, after issue 8's workload
 * (2 GiB RAM, a 1 GiB working set, a 125 MB/s link); the inputs a
 * migration of one shows the rule at its start and after each pre-copy
 * round; checks on the decisions; and limits files' sample values.
 * Prefix pg_ (policy guests).
 */
#ifndef HM_TESTS_POLICY_GUESTS_H
#define HM_TESTS_POLICY_GUESTS_H

#include <stdbool.h>
#include <stdint.h>
#include "policy/policy.h"

#define AUTO	   (-1)
#define NWIN	   8
#define LINK	   125e6		     /* bytes/s */
#define LINK_PAGES (LINK / POLICY_PAGE_SIZE) /* pages/s */
#define RAM_PAGES  524288		     /* 2 GiB */
#define WS_PAGES   262144		     /* 1 GiB */
#define RESIDENT   (WS_PAGES + 4096)
#define MAX_STEPS  64
#define WHY_LEN	   256 /* room for a policy_config_* reason */

/* A synthetic guest and its link. */
struct pg_guest {
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
struct pg_trace {
	int n;
	enum policy_action action[MAX_STEPS];
	enum policy_mode choice[MAX_STEPS];
	uint64_t remaining[MAX_STEPS];
	struct policy_decision last;
};

/* ---- guests: each returns a guest on issue 8's link, RAM and resident set ---- */

/* No writes at all: the others start from it. */
struct pg_guest pg_guest_base(void);
/* Timer ticks and a few stacks: next to nothing. */
struct pg_guest pg_guest_idle(void);
/* Writes @share of the link's page rate over the 1 GiB working set. */
struct pg_guest pg_guest_writer(double share, double locality);
/* Rewrites a hot set of @pages at random, fast: W saturates within 0.5 s. */
struct pg_guest pg_guest_hot_set(double pages);
/* A hot set of @pages rewritten in order, just under the link's rate. */
struct pg_guest pg_guest_hot_set_seq(double pages);

/* ---- migrating one ---- */

/* Fill @in: the decision point before the start. */
void pg_input_start(const struct pg_guest *g, struct policy_input *in);
/*
 * Advance @in by one pre-copy round as the migration runs it (cut at
 * checkpoint_s): it sends what the link carries while the guest dirties
 * W(round) pages.
 */
void pg_input_round(const struct pg_guest *g, const struct policy_limits *l,
		    struct policy_input *in);
/* policy_decide(), printing the decision when HM_TEST_VERBOSE=1. */
void pg_decide(struct policy_state *st, const struct policy_input *in, int requested,
	       struct policy_decision *d);
/*
 * Migrate @g under @l into @tr: a decision at the start and after every
 * round, until one that is not CONTINUE or @max steps.
 */
void pg_migrate(const struct pg_guest *g, const struct policy_limits *l, int requested, int max,
		struct pg_trace *tr);
/* One decision from the start, from a fresh state; its figures must be finite. */
void pg_decide_start(const struct pg_guest *g, const struct policy_limits *l, int requested,
		     struct policy_decision *d);

/* ---- checks: each fails the test, printing the decision first ---- */

void pg_expect_action(const struct policy_decision *d, enum policy_action a, enum policy_mode m);
/* The reason contains @part. */
void pg_expect_reason(const struct policy_decision *d, const char *part);
/* No NaN, and slowdown and faults in range, in every mode's prediction. */
void pg_expect_finite(const struct policy_decision *d);

/* Equal within a relative 1e-9 (an absolute one below 1). */
bool pg_near(double a, double b);
#define assert_near(a, b)                                                                          \
	do {                                                                                       \
		double a_ = (a), b_ = (b);                                                         \
		if (!pg_near(a_, b_))                                                              \
			fail_msg("%s = %.17g, want %.17g", #a, a_, b_);                            \
	} while (0)

/* ---- limits ---- */

/* The defaults (policy_limits_default). */
struct policy_limits pg_limits(void);
/*
 * A value inside key @name's range, in the file's unit, different from the
 * default; NULL for a key this list lacks.
 */
const char *pg_sample_value(const char *name);
/* Set every key of @l to its sample value (and nothing else: padding stays zero). */
void pg_set_samples(struct policy_limits *l);

#endif
