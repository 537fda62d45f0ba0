/* SPDX-License-Identifier: MIT */
/*
 * Dirty tracking for migration and measurement, over whichever mechanism
 * the VM was made with (vm->dirty_ring, chosen by vm_new):
 *
 *  - KVM's dirty ring (src/dirtyring.c): one ring of dirtied gfns per vCPU;
 *    a harvest walks the rings and KVM_RESET_DIRTY_RINGS re-protects what
 *    it collected. With the ring on, KVM refuses KVM_GET_DIRTY_LOG, so
 *    every harvest of the program goes through here.
 *  - KVM's dirty log on the RAM slot (KVM_MEM_LOG_DIRTY_PAGES), in manual-
 *    protect mode where offered: KVM_GET_DIRTY_LOG reads the bitmap and
 *    KVM_CLEAR_DIRTY_LOG re-protects what was read.
 *
 * Either way a harvest is merged with the VM's own device-dirty bitmap
 * (pages the I/O device wrote, invisible to KVM).
 *
 * Threads: a struct dirty belongs to one thread (the migration's); vCPU
 * threads whose ring fills move it into vm->ring_pending on their own,
 * which the next harvest drains.
 */
#ifndef HM_DIRTY_H
#define HM_DIRTY_H

#include <stdbool.h>
#include <stdint.h>
#include "src/bitmap.h"
#include "src/util.h"

struct vm;

/* Which mechanism a VM tracks dirty pages with, chosen when it is made (vm_config). */
enum dirty_mode {
	DIRTY_AUTO = 0, /* the ring where KVM offers it, else the log */
	DIRTY_RING,	/* the ring; making the VM fails where KVM does not offer it */
	DIRTY_LOG,	/* the dirty log, even where the ring is offered */
};

struct dirty {
	struct vm *vm;	    /* not owned */
	uint64_t *log;	    /* dirty log: KVM's bitmap for slot 0, owned */
	uint64_t words;	    /* 64-bit words in log */
	struct bitmap seen; /* ring, collect-only: every page seen since the start, owned */
	bool enabled;
	bool collect_only; /* harvests do not re-protect: pages stay dirty once seen */
	uint64_t last_ns;  /* time of the previous harvest, for the rate */
	double rate;	   /* pages/s seen by the last harvest */
};

/* Parse "ring", "log" or "auto" into @out. Returns 0 or -EINVAL. */
int dirty_mode_parse(const char *s, enum dirty_mode *out) __must_check;
/* True when the KVM device @kvm_path (NULL: /dev/kvm) offers the dirty ring. */
bool dirty_ring_offered(const char *kvm_path);
/* "dirty-ring" or "dirty-log": the mechanism that tracks @vm's pages. */
const char *dirty_tracking_name(const struct vm *vm);

/*
 * Turn dirty tracking on for the RAM slot: from here every page the guest
 * writes is seen by the next harvest. With the log, manual-protect mode is
 * enabled where KVM offers it (so that dirty_harvest_final can skip the
 * re-protection). Returns 0 or -errno.
 */
int dirty_start(struct dirty *d, struct vm *vm) __must_check;
/*
 * Like dirty_start, for callers that only want to know which pages were
 * ever written (post-copy's scan): pages stay dirty once seen. With the
 * log in manual-protect mode a harvest is a bitmap read (~9 us) instead of
 * re-protecting every dirty page, which cost 1-6 ms of downtime on a 4 GiB
 * guest; with the ring, harvests keep what they saw in d->seen.
 */
int dirty_start_collect(struct dirty *d, struct vm *vm) __must_check;
/*
 * Move every page dirtied since the previous call (or since dirty_start)
 * into @out (bits by gfn) and re-protect them, so that later writes show
 * in the next harvest. Returns the number of pages newly set in @out or
 * -errno.
 */
int64_t dirty_harvest(struct dirty *d, struct bitmap *out) __must_check;
/*
 * The last harvest, with every vCPU stopped for good or for the switch:
 * like dirty_harvest, without re-protecting anything (log: GET without
 * CLEAR; ring: the entries are read, not reset). Only dirty_stop (or a
 * dirty_harvest, which sees the same pages again) may follow. Returns the
 * number of pages newly set in @out or -errno.
 */
int64_t dirty_harvest_final(struct dirty *d, struct bitmap *out) __must_check;
/* Turn tracking off, drop what the rings still hold, and free; accepts a never-started object. */
void dirty_stop(struct dirty *d);

#endif
