/* SPDX-License-Identifier: MIT */
/*
 * The probe's eBPF side as seen from user space (src/probe.c uses it): load
 * bpf/probe.bpf.c's skeleton, flip epochs, read its histogram, seen bitmap
 * and counters. Built only with HM_BPF=1; with HM_BPF=0 these are inline
 * stubs and the probe always falls back to the harvest.
 *
 * Not locked: the caller (struct probe) serialises every call.
 */
#ifndef HM_PROBE_BPF_H
#define HM_PROBE_BPF_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "src/util.h"

struct probe_bpf;

/* Which dirty tracepoint to count: the dirty ring's, or the dirty log's write faults. */
enum probe_bpf_dirty {
	PROBE_BPF_SPTE,
	PROBE_BPF_RING,
};

struct probe_bpf_counters {
	uint64_t dirty_events; /* tracepoint events that passed the filters */
	uint64_t firsts;       /* pages counted, over all epochs */
	uint64_t tcp_t_ns;     /* last tcp_probe of the watched port, 0 = none */
	uint32_t srtt_us;
	uint32_t cwnd;
};

#if HM_BPF
/*
 * Load and attach for process @tgid, guest RAM of @npages pages (slot 0 at
 * gpa 0), counting @which. Returns 0, or -errno with a one-line reason in
 * @why (no privilege, no BTF, a tracepoint missing, ...).
 */
int probe_bpf_open(struct probe_bpf **out, uint32_t tgid, uint64_t npages,
		   enum probe_bpf_dirty which, char *why, size_t whylen) __must_check;
/* Detach and free. Accepts NULL. */
void probe_bpf_close(struct probe_bpf *b);
/* Start a new epoch at @now_ns (CLOCK_MONOTONIC): the idle half is cleared and becomes current. */
void probe_bpf_epoch(struct probe_bpf *b, uint64_t now_ns);
/* Start of the current epoch (0: none yet). */
uint64_t probe_bpf_epoch_start(const struct probe_bpf *b);
/* The current epoch's first-write histogram (PROBE_BPF_NTICKS ticks of PROBE_BPF_TICK_NS). */
const uint64_t *probe_bpf_hist(const struct probe_bpf *b);
/* The current epoch's seen bitmap (bits by gfn) and its length in words. */
const uint64_t *probe_bpf_seen(const struct probe_bpf *b, uint64_t *nwords);
void probe_bpf_counters(const struct probe_bpf *b, struct probe_bpf_counters *c);
/* Count the run time of thread @tid from now on. Returns 0 or -errno. */
int probe_bpf_add_thread(struct probe_bpf *b, uint32_t tid) __must_check;
/* Run time in ns of the threads added, summed; -errno when a map read fails. */
int64_t probe_bpf_run_ns(const struct probe_bpf *b);
void probe_bpf_watch_port(struct probe_bpf *b, uint16_t port);
#else
static inline int probe_bpf_open(struct probe_bpf **out, uint32_t tgid, uint64_t npages,
				 enum probe_bpf_dirty which, char *why, size_t whylen)
{
	*out = NULL;
	snprintf(why, whylen, "built without eBPF (HM_BPF=0)");
	return -EOPNOTSUPP;
}
static inline void probe_bpf_close(struct probe_bpf *b)
{
}
static inline void probe_bpf_epoch(struct probe_bpf *b, uint64_t now_ns)
{
}
static inline uint64_t probe_bpf_epoch_start(const struct probe_bpf *b)
{
	return 0;
}
static inline const uint64_t *probe_bpf_hist(const struct probe_bpf *b)
{
	return NULL;
}
static inline const uint64_t *probe_bpf_seen(const struct probe_bpf *b, uint64_t *nwords)
{
	*nwords = 0;
	return NULL;
}
static inline void probe_bpf_counters(const struct probe_bpf *b, struct probe_bpf_counters *c)
{
}
static inline int probe_bpf_add_thread(struct probe_bpf *b, uint32_t tid)
{
	return -EOPNOTSUPP;
}
static inline int64_t probe_bpf_run_ns(const struct probe_bpf *b)
{
	return -EOPNOTSUPP;
}
static inline void probe_bpf_watch_port(struct probe_bpf *b, uint16_t port)
{
}
#endif

#endif
