/* SPDX-License-Identifier: MIT */
/*
 * Source side of a migration: a worker thread that connects to the
 * destination, runs the pre-migration checks, pre-copy rounds and the
 * switch-over handshake, and gives the VM up only when the destination
 * says its vCPUs run (and, in post-copy, that it holds every page). A
 * failure before the fence resumes the VM here; after it, the VM stays
 * fenced here (docs/switchover.md) and mig_resume() can carry on.
 *
 * The thread touches the VM through vm_pause/vm_resume, the dirty log and
 * guest RAM reads; the owner (vmctl, on the loop) reads progress with
 * mig_snapshot() and is told of the end through @done (from the worker
 * thread: hand it to the loop).
 */
#ifndef HM_MIG_H
#define HM_MIG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "policy/policy.h"
#include "src/util.h"

struct vm;
struct json_out;

enum mig_mode {
	MIG_PRECOPY = 0,
	MIG_POSTCOPY = 1,
	MIG_HYBRID = 2,
	MIG_AUTO = 3, /* the policy chooses (policy/) */
};

struct mig_params {
	char to[64]; /* ADDR:PORT */
	enum mig_mode mode;
	uint64_t bandwidth;		/* bytes/s, 0 = unlimited */
	uint64_t downtime_limit_ns;	/* default 300 ms, as QEMU/libvirt */
	uint64_t timeout_ns;		/* give up pre-copy after this, 0 = never */
	char spec[256];			/* guest spec, for the destination */
	double units_before;		/* guest work units/s before the migration */
	uint32_t postcopy_after_rounds; /* hybrid: switch after this many rounds (0 = rule) */
	uint64_t reconnect_ns; /* after the fence: keep reconnecting this long after a link loss */
	char tls_dir[256];     /* ca.pem, cert.pem, key.pem */
	char tls_peer[128];    /* name the destination's certificate must carry, "" = any */
	bool insecure;	       /* plain TCP, no authentication (explicit choice) */
	struct policy_limits policy; /* auto and hybrid: the limits the policy keeps */
	char record[256];	     /* write what the policy saw and decided here ("" = no) */
	uint64_t socket_buffer;	     /* most bytes of send buffer (src/sockbuf.h), 0 = kernel */
};

#define MIG_MAX_ROUNDS 64
/* The version of the migration's JSON (progress lines, report, job): docs/json.md */
#define MIG_JSON_SCHEMA 1

/* Everything the report needs; a consistent copy comes from mig_snapshot(). */
struct mig_stats {
	const char *phase; /* connecting, checks, precopy, stop-and-copy, done, failed */
	uint64_t start_ns;
	uint64_t end_ns;
	uint32_t rounds;
	uint64_t round_pages[MIG_MAX_ROUNDS];
	double round_dirty_rate[MIG_MAX_ROUNDS]; /* pages/s during the round */
	uint64_t bytes_wire;
	uint64_t bytes_raw; /* page bytes before compression and zero elision */
	uint64_t pages_sent;
	uint64_t zero_pages;
	uint64_t remaining;	    /* pages still to send */
	double bandwidth;	    /* bytes/s measured */
	uint64_t bandwidth_limit;   /* bytes/s, 0 = none; set-bandwidth changes it */
	uint64_t downtime_limit_ns; /* set-downtime changes it */
	double dirty_rate;	    /* pages/s, last harvest */
	/* what harvested the dirty pages: "dirty-ring" or "dirty-log" */
	char dirty_tracking[16];
	uint64_t rtt_ns;
	uint64_t send_buffer;	 /* bytes the bulk send buffer may grow to (src/sockbuf.h) */
	bool send_buffer_capped; /* the host allows less than the link needs */
	uint64_t predicted_downtime_ns;
	uint64_t src_pause_ns;	/* source vCPUs stopped -> STARTED read */
	uint64_t dst_switch_ns; /* destination: SWITCH read -> vCPUs running */
	uint64_t downtime_ns;	/* src_pause - rtt/2 */
	uint64_t guest_gap_ns;	/* longest progress gap the guest saw */
	uint64_t dst_first_report_ns;
	double units_before;
	double units_during;
	double units_after;
	/* post-copy (mode postcopy, or hybrid once switched) */
	bool postcopy;		   /* the switch to post-copy happened */
	uint64_t pages_pushed;	   /* by the background pusher */
	uint64_t pages_requested;  /* answered on the urgent channel */
	uint64_t pages_prefetched; /* sent with an answer: the pages after a fault in a run */
	uint64_t dup_pages;	   /* requested pages the pusher had already sent */
	uint64_t remote_faults;	   /* destination: faults sent to us */
	uint64_t local_zero;	   /* destination: faults on pages we never had */
	uint64_t lat_p50_us;	   /* request latency percentiles, us */
	uint64_t lat_p90_us;
	uint64_t lat_p99_us;
	uint64_t lat_max_us;
	uint64_t blocked_ns;   /* destination vCPU time blocked on missing pages */
	uint64_t last_page_ns; /* vCPUs running on the destination -> last page there */
	double units_postcopy; /* guest work units/s during post-copy */
	uint32_t reconnects;   /* links re-established after the fence */
	/* the destination's last PROGRESS report (post-copy) */
	bool dst_units_known;
	uint64_t dst_units; /* the guest's work units there */
	/* policy (auto, hybrid) */
	uint32_t decisions;	 /* made so far */
	char decision[64];	 /* the last one: "continue (precopy)", ... */
	char policy_reason[256]; /* and why */
	bool fenced;		 /* the VM may run on the destination: never resume it here */
	int err;
	char error[256];
	/* "", or why in one word: cancelled, not_converged, refused, link_lost, error */
	char failure[16];
};

typedef void (*mig_done_fn)(void *arg);

struct mig;

/* Start migrating @vm (running, not owned). NULL with a reason (TLS files, memory). */
struct mig *mig_start(struct vm *vm, const struct mig_params *p, mig_done_fn done, void *arg,
		      char *why, size_t whylen);
/*
 * Carry on a migration that ended fenced (@done was called with s.fenced):
 * reconnect to @to (NULL: the same address) and finish. 0 or -errno.
 */
int mig_resume(struct mig *m, const char *to) __must_check;
/* True while the VM may run on the destination (any thread). */
bool mig_fenced(struct mig *m);
/*
 * Change a running migration's bandwidth cap (bytes/s, 0 = none) or its
 * downtime limit; the worker takes them up within one batch of pages, and
 * the policy decides with them from then on (any thread).
 */
void mig_set_bandwidth(struct mig *m, uint64_t bytes_per_s);
void mig_set_downtime(struct mig *m, uint64_t ns);
/* Ask a pre-copy to switch to post-copy after the current round. */
void mig_switch_to_postcopy(struct mig *m);
/*
 * The class of a failure -errno @err, for operators and exit codes: NULL
 * (no failure), "cancelled" (-ECANCELED), "not_converged" (-ETIME: the
 * guest writes too fast for pre-copy, the policy or --timeout gave up),
 * "refused" (@refused: the destination's checks said no; -EBUSY: it is
 * receiving another migration), "link_lost"
 * (the connection failed), else "error".
 */
const char *mig_failure_class(int err, bool refused);
/* Consistent copy of the statistics (any thread). */
void mig_snapshot(struct mig *m, struct mig_stats *out);
/* Ask the worker to give up (pre-copy only); the VM keeps running here. */
void mig_cancel(struct mig *m);
/* Join and free. Accepts NULL. */
void mig_free(struct mig *m);
/* Members "requested_mode", "mode" (the one used) and "decisions" (any thread). */
void mig_decisions_json(struct mig *m, struct json_out *j);
/* Append the report members (flat, plus a round array) to the open object @j. */
void mig_report_json(const struct mig_stats *s, struct json_out *j);
struct json_field;
/* Rebuild the report from the JSON members mig_report_json wrote (flat, as parsed). */
void mig_report_from_json(struct mig_stats *s, const struct json_field *f, size_t n);
/* Human report. */
void mig_report_text(const struct mig_stats *s, const char *to, FILE *f);
const char *mig_mode_name(enum mig_mode m);

#endif
