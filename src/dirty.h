/* SPDX-License-Identifier: MIT */
/*
 * Dirty tracking for pre-copy: KVM's dirty log on the RAM slot
 * (KVM_MEM_LOG_DIRTY_PAGES, KVM_GET_DIRTY_LOG, which also re-protects)
 * merged with the VM's own device-dirty bitmap (pages the I/O device
 * wrote, invisible to KVM). The dirty ring is the faster harvest on big
 * guests (PLATFORM.md); the log is simpler and costs 0.3-8 ms per GiB here.
 */
#ifndef HM_DIRTY_H
#define HM_DIRTY_H

#include <stdbool.h>
#include <stdint.h>
#include "src/util.h"

struct vm;
struct bitmap;

struct dirty {
	struct vm *vm; /* not owned */
	uint64_t *log; /* KVM's bitmap for slot 0, owned */
	uint64_t words;
	bool enabled;
	bool collect_only; /* harvests do not re-protect: pages stay dirty once seen */
	uint64_t last_ns;  /* time of the previous harvest, for the rate */
	double rate;	   /* pages/s seen by the last harvest */
};

/* Turn dirty logging on for the RAM slot. Returns 0 or -errno. */
int dirty_start(struct dirty *d, struct vm *vm) __must_check;
/*
 * Like dirty_start, for callers that only want to know which pages were
 * ever written (post-copy's scan): with KVM's manual-protect mode a harvest
 * is a bitmap read (~9 us) instead of re-protecting every dirty page, which
 * cost 1-6 ms of downtime on a 4 GiB guest. Falls back to dirty_start.
 */
int dirty_start_collect(struct dirty *d, struct vm *vm) __must_check;
/*
 * Move every page dirtied since the previous call (or since dirty_start)
 * into @out (bits by gfn). Returns the number of pages newly set in @out
 * or -errno.
 */
int64_t dirty_harvest(struct dirty *d, struct bitmap *out) __must_check;
/* Turn logging off and free; accepts a never-started object. */
void dirty_stop(struct dirty *d);

#endif
