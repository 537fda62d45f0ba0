/* SPDX-License-Identifier: MIT */
/*
 * The policy: which migration mode, and when to switch, from measurement.
 * Pure functions: no I/O, no threads, no clocks; every input comes in a
 * struct, so a recording of the inputs replays to the same decisions
 * (`hybridmig policy simulate`).
 *
 * The model. A guest's writes are described by its working-set curve W(t):
 * the distinct pages it dirties within an interval of length t (measured
 * by the eBPF probe for windows of 0.1-30 s, or by the migration's own
 * harvests, one point per round). Distinct pages grow far from linearly
 * with t (a hot set saturates), so one rate misleads; the curve is read
 * log-log between measured points and extended past the longest with the
 * slope of its last segment. Device (DMA) writes add linearly.
 *
 *   pre-copy   round k sends R_k pages in T_k = R_k * page * wire_ratio / bw,
 *              during which the guest dirties R_{k+1} = W(T_k); it can stop
 *              when R_k fits the downtime limit and goes on while a round
 *              still shrinks the rest by the shrink margin (downtime can
 *              still fall). Downtime = last round + RTT + state.
 *   post-copy  downtime = switch cost + RTT + page map; the pusher sends the
 *              O owed pages in D = O * page * ratio / bw; a first touch at
 *              time tau of an owed page not yet pushed (probability 1 - tau/D)
 *              faults over the network and blocks its vCPU for RTT + one
 *              page time + service; slowdown = blocked / (D + blocked),
 *              bounded below by the link (the guest cannot take owed pages in
 *              faster than the link brings them).
 *   hybrid     pre-copy rounds, then post-copy of what the last round left
 *              (the hot set: the pages the guest touches next).
 *
 * The rule, before the start and after every round (rounds are cut short at
 * a checkpoint interval so that a decision comes early): among the ends that
 * meet every limit (downtime, total time, slowdown, rounds), the least
 * downtime wins; downtimes within the tie margin are equal, and then the
 * shorter total wins, and pre-copy when totals are within 10 % (it keeps a
 * whole copy on the source). Never switch into post-copy right after the
 * bandwidth dropped (a link blip). When nothing meets every limit: pre-copy
 * while it still shrinks, else the end that completes with the least
 * downtime, post-copy only if allowed; the reason says which limit failed.
 */
#ifndef HM_POLICY_H
#define HM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_PAGE_SIZE  4096.0
#define POLICY_MAX_POINTS 16

enum policy_mode {
	POLICY_PRECOPY = 0,
	POLICY_POSTCOPY = 1,
	POLICY_HYBRID = 2,
	POLICY_NMODES = 3,
};

/* What the SRE tunes (--policy FILE, key = value; policy_config_parse). */
struct policy_limits {
	double max_downtime_s;	/* max_downtime_ms = 300 */
	double max_total_s;	/* max_total_s = 0: no limit */
	bool allow_postcopy;	/* allow_postcopy = yes */
	double max_slowdown;	/* max_slowdown = 0.5: the guest keeps >= half its rate */
	uint32_t max_rounds;	/* max_rounds = 100 pre-copy rounds (of checkpoint_s at most) */
	double shrink_margin;	/* shrink_margin = 0.1: a round that shrinks the rest less stalls */
	double downtime_tie_s;	/* downtime_tie_ms = 5: downtimes closer than this are equal */
	double bandwidth_cap;	/* bandwidth_cap = 0 (bytes/s): no cap */
	double blip_drop;	/* blip_drop = 0.5: bandwidth below this share of its average */
	uint32_t blip_rounds;	/* blip_rounds = 2: decisions without a switch from a blip on */
	double ewma_alpha;	/* ewma_alpha = 0.3: weight of a new bandwidth sample */
	double checkpoint_s;	/* checkpoint_s = 1: a decision at least this often */
	double switch_cost_s;	/* switch_cost_ms = 0.8: a post-copy switch's fixed cost */
	double fault_service_s; /* fault_service_us = 60: source+destination work per fault */
};

/* The working-set curve: W(t) at measured points, t ascending. */
struct policy_curve {
	uint32_t n;
	double t_s[POLICY_MAX_POINTS];
	double pages[POLICY_MAX_POINTS];
};

/* What is known at one decision point; recorded as such for replays. */
struct policy_input {
	double t_s;		 /* since the migration started */
	uint64_t ram_pages;	 /* guest RAM */
	uint64_t resident_pages; /* pages the guest has ever touched (a full pass) */
	double wire_ratio;	 /* wire bytes per page byte (zero pages, lz4): 1 when unknown */
	struct policy_curve wss; /* from the probe; merged with the rounds' own points */
	double dma_pages_per_s;	 /* device writes into guest RAM */
	double locality;	 /* share of a short window's pages in its 8 hottest 2 MiB
				    regions: 1 sequential, ~0 random; 0 when unknown */
	double bandwidth;	 /* bytes/s measured over the last interval, 0 = unknown */
	double rtt_s;
	uint32_t vcpus;
	uint64_t state_bytes; /* vCPU and device state sent at the switch */
	/* progress, 0 before the start */
	uint32_t round;		  /* rounds done */
	uint64_t remaining_pages; /* queued for the next round */
	uint64_t inflight_bytes;  /* sent but not yet acknowledged */
	double round_s;		  /* duration of the last round */
	uint64_t round_dirtied;	  /* distinct pages the last round's harvest found */
	double elapsed_s;	  /* time spent so far (pre-copy) */
	uint64_t bytes_sent;	  /* so far */
};

struct policy_prediction {
	bool valid;	/* the mode was evaluated */
	bool feasible;	/* meets every limit */
	bool completes; /* ends at all (pre-copy: converges within max_rounds) */
	double total_s; /* from now to the end, plus elapsed */
	double downtime_s;
	double bytes; /* on the wire, from the start */
	double remote_faults;
	double slowdown; /* share of the guest's rate lost during post-copy (0..1) */
	uint32_t rounds; /* pre-copy rounds (hybrid: before the switch) */
	char fails[96];	 /* which limit it misses, "" when feasible */
};

enum policy_action {
	POLICY_CONTINUE = 0,	/* go on with pre-copy */
	POLICY_STOP_AND_COPY,	/* pre-copy's end: pause and send the rest */
	POLICY_SWITCH_POSTCOPY, /* switch to post-copy now (at the start: post-copy mode) */
	POLICY_GIVE_UP,		/* no safe end within the limits: the VM stays here */
};

struct policy_decision {
	enum policy_action action;
	enum policy_mode choice; /* the end it aims at */
	double t_s;
	uint32_t round;
	double bandwidth; /* smoothed, the one predictions used */
	struct policy_prediction pred[POLICY_NMODES];
	char reason[512];
};

/* Carried between decisions of one migration (smoothing, blip guard). */
struct policy_state {
	struct policy_limits lim;
	double bw_avg; /* EWMA of the bandwidth samples */
	uint32_t bw_samples;
	uint32_t blip_wait;	  /* decisions left before a switch is allowed again */
	struct policy_curve seen; /* curve points learnt from rounds and the probe */
	uint64_t prev_remaining;
	uint32_t decisions;
};

/* ---- config.c ---- */
void policy_limits_default(struct policy_limits *l);
/*
 * Parse a key = value text (# comments, blank lines) over @l (defaults
 * first). Returns 0, or -EINVAL with "line N: ..." in @why.
 */
int policy_config_parse(const char *text, struct policy_limits *l, char *why, size_t whylen);
/* Every key with its current value and meaning, one per line (for --help, README). */
size_t policy_config_format(const struct policy_limits *l, char *buf, size_t len);
/* One key = value (also for the control socket's set commands); 0 or -EINVAL. */
int policy_config_set(struct policy_limits *l, const char *key, const char *val, char *why,
		      size_t whylen);

/*
 * Key @i (0 .. count-1) and its value, in the file's unit or (@internal) as
 * stored (seconds, bytes/s; bools 0/1), which reads back exactly with
 * policy_config_set_internal (recordings). NULL past the end.
 */
size_t policy_config_count(void);
const char *policy_config_get(const struct policy_limits *l, size_t i, bool internal, double *val);
int policy_config_set_internal(struct policy_limits *l, const char *name, double val);

/* ---- curve.c ---- */
/* W(t) from the curve (0 when empty), capped at @cap pages. */
double policy_curve_at(const struct policy_curve *c, double t_s, double cap);
/* Add or replace the point at @t_s (within 10 %); keeps t ascending. */
void policy_curve_add(struct policy_curve *c, double t_s, double pages);
/* Merge @src's points into @dst (src wins where both have a point). */
void policy_curve_merge(struct policy_curve *dst, const struct policy_curve *src);

/* ---- model.c ---- */
/*
 * Predict @mode from now, with bandwidth @bw (bytes/s). Hybrid predicts the
 * best switch point within the next rounds and stores its round count.
 */
void policy_predict(const struct policy_limits *l, const struct policy_input *in,
		    const struct policy_curve *wss, double bw, enum policy_mode mode,
		    struct policy_prediction *out);

/* ---- rule.c ---- */
void policy_init(struct policy_state *st, const struct policy_limits *l);
/*
 * One decision. @requested: the mode the operator asked for (auto = -1):
 * precopy only stops or gives up, postcopy always switches, hybrid and
 * auto choose. Updates @st (call once per decision point, in order).
 */
void policy_decide(struct policy_state *st, const struct policy_input *in, int requested,
		   struct policy_decision *d);
const char *policy_mode_name(enum policy_mode m);
const char *policy_action_name(enum policy_action a);

/* ---- prefetch.c: what an answer to a post-copy fault carries ---- */
/* Pages at most in one answer on the urgent channel (the protocol's limit too). */
#define POLICY_RUN_MAX 16
/* A fault this far beyond the last answer's end still continues its run. */
#define POLICY_RUN_SLACK 8

/* The faults of one destination, in the order they came. */
struct policy_run {
	uint64_t next; /* first page after the last answer's window */
	uint32_t win;  /* that answer's window, 0 before the first fault */
};

/*
 * How many pages, from @gfn on, to answer the fault at @gfn with: 1 for a
 * fault out of sequence, doubling (to POLICY_RUN_MAX) while faults follow
 * each other upwards, so a sequential writer at distance waits one RTT per
 * window instead of one per page. Updates @r.
 */
uint32_t policy_run_window(struct policy_run *r, uint64_t gfn);

#endif
