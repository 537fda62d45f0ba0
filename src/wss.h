/* SPDX-License-Identifier: MIT */
/*
 * The writable working set as a curve: W(w), the distinct pages the guest
 * dirtied within an interval of length w, for eight windows from 0.1 s to
 * 30 s. Pure bookkeeping, shared by the eBPF probe and its harvest
 * fallback (src/probe.h): no I/O, no locking, no allocation.
 *
 * Input is an epoch's first-write histogram: hist[i] = pages first written
 * in tick i (ticks of tick_ns since the epoch start, the moment guest memory
 * was re-protected). Each page counts once, at its first write, so the
 * prefix sum up to t is W(t) for the interval [start, start + t).
 */
#ifndef HM_WSS_H
#define HM_WSS_H

#include <stdbool.h>
#include <stdint.h>

#define WSS_NWIN 8
/* The windows, in ms: 0.1 0.25 0.5 1 2 5 10 30 s. */
extern const uint32_t wss_windows_ms[WSS_NWIN];

/* Latest measured value of each window, kept across epochs. */
struct wss_curve {
	uint64_t pages[WSS_NWIN]; /* W(w) */
	bool have[WSS_NWIN];	  /* measured at least once */
	uint64_t at_ns[WSS_NWIN]; /* end of the epoch span that measured it */
};

/* 2 MiB guest-physical region (gfn >> 9) and pages dirtied in it. */
struct wss_region {
	uint64_t region;
	uint64_t pages;
};

#define WSS_REGION_SHIFT 9

/*
 * Pages first written in [0, @span_ns) of an epoch of @nticks ticks of
 * @tick_ns: the prefix sum, interpolated linearly inside the tick that
 * @span_ns ends in (when the window is not a whole number of ticks).
 * A span beyond the histogram counts every tick.
 */
uint64_t wss_prefix(const uint64_t *hist, uint32_t nticks, uint64_t tick_ns, uint64_t span_ns);
/*
 * Update @c from an epoch that has been observed for @covered_ns since its
 * start (@now_ns is when): every window not longer than @covered_ns gets
 * the epoch's value; longer ones keep what an earlier epoch measured.
 * Returns how many windows were updated.
 */
uint32_t wss_update(struct wss_curve *c, const uint64_t *hist, uint32_t nticks, uint64_t tick_ns,
		    uint64_t covered_ns, uint64_t now_ns);
/* Leading windows that have a value (0..WSS_NWIN). */
uint32_t wss_nwin(const struct wss_curve *c);
/*
 * Distinct pages per second: W(1 s) when measured, else W(w)/w of the
 * longest window measured (an upper bound early on), else 0.
 */
double wss_rate(const struct wss_curve *c);
/* Tick index of @since_ns after the epoch start, clamped to the last tick. */
uint32_t wss_tick(uint64_t since_ns, uint64_t tick_ns, uint32_t nticks);
/*
 * The @max regions with most pages set in the page bitmap @words (@nwords
 * 64-bit words, bit = gfn), most first; ties by lower region. Returns how
 * many were found (regions with no page are left out).
 */
uint32_t wss_hot(const uint64_t *words, uint64_t nwords, struct wss_region *out, uint32_t max);
/*
 * Spatial locality of the pages set in @words (@nwords 64-bit words, bit =
 * gfn), 0..1: how much more often a dirtied page's lower neighbour is dirty
 * too than the density of the 2 MiB regions written would give by chance,
 * (adj - d) / (1 - d). A sequential writer gives ~1, a random or zipf one
 * ~0, whatever the epoch's length (the share in the hottest regions falls
 * as a fast sequential writer crosses more regions per epoch). Regions
 * written in full give adj. Fewer than WSS_LOCALITY_MIN pages: 0, unknown.
 */
#define WSS_LOCALITY_MIN 64
double wss_locality(const uint64_t *words, uint64_t nwords);

#endif
