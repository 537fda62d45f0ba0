/* SPDX-License-Identifier: MIT */
/*
 * Inside the source side of a migration: the session object shared by its
 * phase files — mig.c (the session thread, rollback, the public API),
 * mig_precopy.c (rounds), mig_switch.c (stop-and-copy and the switch-over
 * handshake, recovery of a fenced source), mig_postcopy.c (the urgent
 * channel and the pusher) and mig_report.c. Not for use outside them.
 *
 * Threads: the session thread runs every phase; in post-copy the urgent
 * thread answers requests. m->lock guards m->s; m->cancel, m->cursor and
 * m->ustop are atomics; everything else belongs to the session thread.
 */
#ifndef HM_MIG_PRIV_H
#define HM_MIG_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "src/bitmap.h"
#include "src/compress.h"
#include "src/dirty.h"
#include "src/link.h"
#include "src/mig.h"
#include "src/probe.h"
#include "src/proto.h"
#include "policy/policy.h"

struct tls_ctx;

#define MIG_MAX_DECISIONS 24

struct mig {
	struct vm *vm;
	struct mig_params p;
	mig_done_fn done;
	void *done_arg;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock; /* guards s */
	struct mig_stats s;
	bool cancel;	   /* atomic: the operator asked to give up */
	bool postcopy_now; /* atomic: the operator asked to switch to post-copy */
	/* set-bandwidth / set-downtime: values, then a MIG_NEW_* bit (atomics) */
	uint64_t new_bandwidth;
	uint64_t new_downtime_ns;
	uint32_t new_limits;
	struct link link;    /* bulk and urgent connections */
	struct tls_ctx *tls; /* owned; NULL with --insecure */
	struct dirty dirty;
	bool fenced;	   /* GO may have reached the destination: never resume here */
	bool peer_error;   /* the destination said it failed (ERROR/REFUSE) */
	bool peer_refused; /* it refused the VM (REFUSE: its pre-migration checks) */
	/* post-copy */
	struct bitmap sent; /* pages sent after the switch, by either path */
	struct bitmap owed; /* every page the destination was owed at the switch */
	uint64_t cursor;    /* pusher position, moved by requests (atomic) */
	pthread_t uthread;
	bool ustarted;
	bool ustop;		   /* atomic: tells the urgent thread to end */
	unsigned int push_windows; /* unpaced windows measured by the pusher */
	struct policy_run run;	   /* the faults' run, for the answers' window (urgent thread) */
	uint8_t uhead[PROTO_PAGES_HDR + 8 * POLICY_RUN_MAX];
	uint8_t urx[64];
	struct bitmap todo;  /* pages to send */
	struct bitmap fresh; /* one harvest, before it joins todo (the policy counts it) */
	struct bitmap hot;   /* the last harvests' pages: post-copy pushes them first */
	uint64_t hot_from;   /* pusher: where its walk through hot is */
	struct compress lz;
	uint8_t head[PROTO_PAGES_HDR + 8 * PROTO_BATCH_MAX];
	uint8_t raw[PROTO_BATCH_MAX * PROTO_PAGE_SIZE];
	uint8_t lzbuf[PROTO_BATCH_MAX * PROTO_PAGE_SIZE];
	uint8_t rx[PROTO_FRAME_MAX];
	char why[256];
	/* the policy (auto and hybrid without a forced switch point) */
	bool use_policy;
	double file_bandwidth_cap; /* the policy file's bandwidth_cap, before --bandwidth */
	struct policy_state pol;
	FILE *record;	       /* migrate --record, or NULL */
	uint64_t tick_ns;      /* the timeline's last tick (mig_timeline.c) */
	struct mig_tick *held; /* phase ticks of the switch-over, written after it */
	unsigned int nheld;
	struct probe *probe; /* the eBPF probe (or its fallback), or NULL */
	/* the probe's hot 2 MiB regions (gfn >> 9) at the last decision, most dirtied first */
	uint64_t probe_hot[PROBE_NHOT];
	uint32_t nprobe_hot;
	uint64_t resident;	/* pages queued by the first pass */
	double round_s;		/* the last round: duration */
	uint64_t round_dirtied; /* and distinct pages its harvest found */
	struct policy_decision decisions[MIG_MAX_DECISIONS]; /* the first ones, then the last */
	uint32_t ndecisions;
};

/*
 * Downtime the switch-over handshake costs beyond the data: SWITCH's way
 * there, READY back, GO there (docs/switchover.md); policy/model.c's
 * HANDSHAKE_RTTS.
 */
#define MIG_HANDSHAKE_RTTS(rtt_ns) ((rtt_ns)*3 / 2)
/* vCPU and device state at the switch, for predictions: measured ~6 KiB per vCPU */
#define MIG_STATE_BYTES_PER_VCPU 8192
#define MIG_IO_TIMEOUT_MS	 10000
#define MIG_CHECKS_TIMEOUT_MS	 30000
/* post-copy: the destination may wait this long for faults to drain */
#define MIG_POSTCOPY_TIMEOUT_MS 15000

#define MIG_NEW_BANDWIDTH 1u
#define MIG_NEW_DOWNTIME  2u

/* ---- mig.c: shared helpers ---- */
/* Worker thread: take up the limits an operator changed since the last call. */
void mig_apply_limits(struct mig *m);
void mig_set_phase(struct mig *m, const char *phase);
/* Record the first failure's reason; returns @err (or -EIO for 0). */
int mig_fail(struct mig *m, int err, const char *fmt, ...) __printf(3, 4);
/* Read one frame of @type (0: any) on the bulk channel; ERROR/REFUSE become failures. */
int mig_expect(struct mig *m, uint32_t type, struct proto_hdr *h) __must_check;
/* Connect both channels to p.to (@resume: a known session) with the session's limits. */
int mig_open_link(struct mig *m, bool resume) __must_check;
/* Queue every page the host has backed into m->todo. */
int mig_queue_resident(struct mig *m) __must_check;
/* Send one batch of @n pages on the bulk channel (zero pages as flags, lz4 when it pays). */
int mig_send_batch(struct mig *m, uint64_t *gfns, uint32_t n) __must_check;
/* Send every page queued in m->todo, clearing it; @can_cancel checks m->cancel. */
int mig_send_queued(struct mig *m, bool can_cancel) __must_check;

/* Send queued pages until the queue is empty or CLOCK_MONOTONIC passes @until_ns (0: no limit). */
int mig_send_queued_until(struct mig *m, bool can_cancel, uint64_t until_ns) __must_check;

/* ---- mig_policy.c ---- */
/* Set the policy up (limits, recording); 0 or -errno with the reason recorded. */
int mig_policy_init(struct mig *m) __must_check;
/* The policy's limits again from m->p (mig_policy_init). */
void mig_policy_set_limits(struct mig *m);
/*
 * The same after an operator changed them (set-bandwidth, set-downtime),
 * and a {"type":"limits",...} line in the recording. Session thread.
 */
void mig_policy_new_limits(struct mig *m);
/* One decision from what the migration knows now; logs and records it. */
enum policy_action mig_policy_decide(struct mig *m);
/* One line of the recording: {"type":@type, what @fill writes}; stops recording on failure. */
void mig_record_line(struct mig *m, void (*fill)(struct json_out *, const void *), const char *type,
		     const void *arg);
/* Close the recording and the probe. */
void mig_policy_close(struct mig *m);
/* Around each re-protecting harvest: tell the probe (a new epoch; what it found). */
void mig_policy_epoch(struct mig *m);
void mig_policy_harvested(struct mig *m, uint64_t pages);
/* The bulk link is up: the probe watches its RTT. */
void mig_policy_link_up(struct mig *m);

/* ---- mig_timeline.c ---- */
#define MIG_TICKS_HELD 4
struct mig_tick;
/* Room for the ticks held through the switch-over; 0 or -ENOMEM. */
int mig_timeline_init(struct mig *m) __must_check;
void mig_timeline_free(struct mig *m);
/* A "tick" line in the recording: at most every 100 ms, or now when @force. */
void mig_timeline_tick(struct mig *m, bool force);
/* At the end, whatever the phase: the ticks held, then one more. */
void mig_timeline_end(struct mig *m);

/* ---- mig_precopy.c ---- */
/* Pre-copy rounds. Returns 0 to stop-and-copy, 1 to switch to post-copy, or -errno. */
int mig_precopy_run(struct mig *m) __must_check;

/* ---- mig_switch.c ---- */
/* Pause, send what is left and the state, and hand the guest over (pre-copy). */
int mig_switch_stop_and_copy(struct mig *m) __must_check;
/* Pause, send the page map and the state, and hand the guest over (post-copy). */
int mig_switch_postcopy(struct mig *m) __must_check;
/*
 * The link broke while fenced: reconnect (within p.reconnect_ns), learn
 * where the destination stands and finish the handshake if it waits for
 * GO. In post-copy, also re-read what it holds and queue what it lacks.
 */
int mig_switch_recover(struct mig *m, int cause) __must_check;

/* ---- mig_postcopy.c ---- */
/* Start the urgent thread (answers requests from the destination). */
int mig_postcopy_serve(struct mig *m) __must_check;
void mig_postcopy_stop_serving(struct mig *m);
/* Push every page still owed, then DONE and wait for COMPLETE; recovers broken links. */
int mig_postcopy_run(struct mig *m) __must_check;
/* Read the destination's map of the pages it holds (up to ACCEPT) and requeue the rest. */
int mig_postcopy_requeue(struct mig *m) __must_check;

#endif
