/* SPDX-License-Identifier: MIT */
/*
 * The probe: what the policy needs to know about a running guest, measured
 * as it runs — distinct pages dirtied per second, the writable working set
 * as a curve (distinct pages dirtied within 0.1 s .. 30 s), hot 2 MiB
 * regions, the device's DMA writes, vCPU run time, and the migration
 * link's RTT and cwnd.
 *
 * How the curve is measured. Dirty tracking write-protects guest memory, so
 * a page faults (and KVM's tracepoints fire) once, at its first write after
 * memory was (re-)protected. An *epoch* starts at a re-protect (a harvest
 * of the dirty log or ring). Within it a CO-RE eBPF program (bpf/probe.bpf.c)
 * on kvmmmu:kvm_mmu_set_spte (dirty log: a leaf spte made writable, which
 * with logging on happens only on a write fault) or kvm:kvm_dirty_ring_push
 * (dirty ring), filtered to this process, counts each page once — a seen
 * bitmap drops repeats after later re-protects in the same epoch — into a
 * histogram of 10 ms ticks since the epoch start. W(w) for the epoch is the
 * histogram's prefix sum up to w (src/wss.h); each window keeps the latest
 * epoch that lasted at least that long.
 *
 * Who re-protects. Outside a migration (probe_measure_start) the probe runs
 * its own dirty tracking (struct dirty) from a thread: a new epoch every
 * 10 s (31 s when 30 s windows are wanted: probe_set_epoch_ms), with one
 * harvest, the re-protect, at each boundary (a dirty ring that fills before
 * is drained by its vCPU thread, src/dirty.h: its resets only cause repeats
 * the seen bitmap drops). At each boundary the BPF count of the epoch is
 * checked against the harvest's: a tracepoint that saw fewer than half of
 * the pages the harvest found (a kernel whose fault path does not reach
 * it, e.g. hardware KVM's fast path) drops the probe to the fallback.
 * During a migration the migration's own harvests re-protect: it calls
 * probe_epoch() before each one, and the probe starts an epoch there once
 * the current one is long enough.
 *
 * Fallback ("harvest"): when BPF cannot load — no CAP_BPF/CAP_SYS_ADMIN, no
 * kernel BTF, a tracepoint missing, any libbpf error; each with its reason
 * in why_fallback and one log line — the same curve comes from the VMM's
 * own harvests every 100 ms without re-protecting (dirty_start_collect;
 * with the ring, harvests re-protect and their union is kept): the pages new
 * to the epoch's union per harvest fill a histogram of 100 ms ticks. Epochs
 * restart tracking (re-protecting all). During a migration the fallback has
 * only the migration's harvests (probe_harvested): a rate, no new curve.
 * Lack of BPF is never a failure.
 *
 * Other figures: vCPU run time from sched:sched_stat_runtime summed over the
 * vCPU threads (fallback: their thread CPU clocks); the link's smoothed RTT
 * and cwnd from tcp:tcp_probe on the watched local port (softirq context:
 * filtered by port, not by process); DMA pages from the I/O device's record
 * count (one page per record, the pages it marks in vm->dev_dirty). All BPF
 * programs are tp_btf: they attach without tracefs.
 *
 * Threads: every function may be called from any thread (a migration
 * thread and the event loop both do); one lock guards the probe. The
 * measuring thread exists between probe_measure_start and _stop.
 */
#ifndef HM_PROBE_H
#define HM_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include "src/util.h"
#include "src/wss.h"

struct vm;
struct probe;
struct json_out;

#define PROBE_NWIN WSS_NWIN /* windows: 0.1 0.25 0.5 1 2 5 10 30 s */
#define PROBE_NHOT 8
extern const double probe_windows_s[PROBE_NWIN];

/* Sources and trackings (static strings; compare by value). */
#define PROBE_SRC_RING	  "bpf:kvm_dirty_ring_push"
#define PROBE_SRC_SPTE	  "bpf:kvm_mmu_set_spte"
#define PROBE_SRC_HARVEST "harvest"

struct probe_sample {
	uint64_t t_ns;		/* CLOCK_MONOTONIC of the sample */
	const char *source;	/* PROBE_SRC_* */
	const char *tracking;	/* "dirty-ring" or "dirty-log" */
	char why_fallback[128]; /* why BPF is not used ("" when it is) */
	double
	    dirty_pages_per_s; /* distinct pages dirtied in 1 s (W(1 s)), the common definition */
	uint64_t wss_pages[PROBE_NWIN]; /* W(w): distinct pages dirtied within an interval of w */
	uint32_t nwin;		/* how many leading windows are measured (longer ones: not yet) */
	double dma_pages_per_s; /* pages the VMM's I/O device wrote */
	double vcpu_run_frac;	/* vCPU run time / wall time, summed over the vCPU threads */
	uint64_t rtt_us, cwnd;	/* of the watched migration link, 0 when none */
	struct {
		uint64_t region; /* 2 MiB region: gfn >> 9 */
		uint64_t pages;	 /* pages dirtied in it in the current (or last) epoch */
	} hot[PROBE_NHOT];	 /* most dirtied first */
	uint32_t nhot;
	double locality; /* 0..1: 1 sequential, ~0 random (wss_locality), 0 unknown */
	uint64_t events; /* tracepoint events counted (BPF), 0 with the fallback */
	/* the last epoch the probe re-protected itself, counted both ways (0: none yet) */
	uint64_t check_bpf_pages;     /* pages the tracepoint saw */
	uint64_t check_harvest_pages; /* pages the harvests found */
};

/* Open flags. */
#define PROBE_NO_BPF                                                                               \
	0x1 /* measure from the harvest only (to compare, or to measure BPF's cost)                \
	     */

/*
 * Make a probe for @vm (not owned; must outlive the probe), loading the BPF
 * programs when it can. Where it cannot, the probe falls back, @why (may
 * be NULL) says why, and 0 is returned. -errno (-ENOMEM) only for real
 * errors. @out is owned by the caller: probe_close.
 */
int probe_open(struct probe **out, struct vm *vm, char *why, size_t whylen) __must_check;
int probe_open_flags(struct probe **out, struct vm *vm, unsigned int flags, char *why,
		     size_t whylen) __must_check;
/*
 * Epoch length for probe_measure_start, in ms (1000..40000, default 10000);
 * 31000 gives the 30 s window. Takes effect at the next epoch.
 */
void probe_set_epoch_ms(struct probe *p, uint32_t ms);
/*
 * Outside a migration: turn dirty tracking on (the probe's own struct
 * dirty) and keep epochs running from a thread. Never while a migration
 * tracks dirty pages: two harvesters would steal each other's pages.
 * Returns 0, -EALREADY, or -errno from dirty tracking or the thread.
 */
int probe_measure_start(struct probe *p) __must_check;
/*
 * Stop the thread and dirty tracking; the figures measured stay. A
 * migration calls it when its own tracking stops (no more epochs from
 * probe_epoch). Idempotent.
 */
void probe_measure_stop(struct probe *p);
/*
 * A migration is about to re-protect guest memory (a dirty_harvest that
 * re-protects; not dirty_start_collect's): a new epoch may start now.
 */
void probe_epoch(struct probe *p);
/* A migration's harvest found @pages guest pages dirtied since its previous one. */
void probe_harvested(struct probe *p, uint64_t pages);
/* tcp_probe: the local port of the migration's bulk link (0: none). */
void probe_watch_port(struct probe *p, uint16_t local_port);
/*
 * The figures now, into @out. Returns 0, or the -errno that stopped the
 * measurement (its reason was logged).
 */
int probe_sample(struct probe *p, struct probe_sample *out) __must_check;
/* Stop measuring and release everything. Accepts NULL. */
void probe_close(struct probe *p);

/*
 * The sample's members into the open object @j (the JSON contract, README):
 * dirty_pages_per_s, wss [{window_s, pages}], hot [{gpa, pages}], locality,
 * dma_pages_per_s, vcpu_run, rtt_us (null when none), cwnd, events,
 * source, tracking, fallback_reason (null when BPF is used), check.
 */
void probe_sample_json(const struct probe_sample *s, struct json_out *j);
/*
 * Read the members probe_sample_json wrote back from the JSON object @text
 * (@len bytes; other members are skipped). Doubles read back exactly.
 * Returns 0 or -EINVAL with a reason in *why (static string).
 */
int probe_sample_parse(const char *text, size_t len, struct probe_sample *s,
		       const char **why) __must_check;

#endif
