/* SPDX-License-Identifier: MIT */
/*
 * KVM's dirty ring (KVM_CAP_DIRTY_LOG_RING_ACQ_REL, or KVM_CAP_DIRTY_LOG_RING):
 * enabled on the VM before any vCPU exists; each vCPU fd then maps a ring
 * of struct kvm_dirty_gfn at page KVM_DIRTY_LOG_PAGE_OFFSET. While the RAM
 * slot has KVM_MEM_LOG_DIRTY_PAGES, KVM pushes the gfn of every page a
 * vCPU dirties (once until it is re-protected) and flags it DIRTY. The
 * collector reads entries in order, flags them RESET, and
 * KVM_RESET_DIRTY_RINGS re-protects the pages of every flagged entry.
 * A ring that fills stops its vCPU with KVM_EXIT_DIRTY_RING_FULL
 * (dirtyring_full). dirty.c builds harvests on these pieces.
 *
 * Locking: each ring has one collector at a time (vcpu->ring_lock): the
 * vCPU's own thread when the ring fills, or a harvest on another thread.
 * Entries are read with acquire and flagged with release ordering (what
 * _ACQ_REL asks; plain loads and stores on x86).
 */
#ifndef HM_DIRTYRING_H
#define HM_DIRTYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "src/dirty.h"
#include "src/util.h"

struct vm;
struct vcpu;
struct bitmap;

/* Entries per vCPU ring unless the VM's config asks otherwise (1 MiB per vCPU). */
#define DIRTYRING_DEFAULT_ENTRIES 65536u

/*
 * Enable the ring on @vm (no vCPU created yet) as @mode asks, with
 * @entries per vCPU (0: the default, capped to what KVM allows). Sets
 * vm->dirty_ring, ring_entries and ring_acq_rel (vm.c sizes
 * vm->ring_pending with the RAM). DIRTY_LOG, or DIRTY_AUTO where the ring
 * is not offered, leaves the ring off and returns 0. Returns -errno with a
 * reason in @why otherwise (DIRTY_RING not offered, a bad size).
 */
int dirtyring_enable(struct vm *vm, enum dirty_mode mode, uint32_t entries, char *why,
		     size_t whylen) __must_check;
/* Map vCPU @v's ring (after KVM_CREATE_VCPU); nothing without the ring. 0 or -errno. */
int dirtyring_map(struct vcpu *v) __must_check;
/* Unmap it; accepts a vCPU without a ring. */
void dirtyring_unmap(struct vcpu *v);
/*
 * Read the entries @v's ring has published since the last reset-collect
 * and set their gfns in @out (NULL: drop them). With @reset, flag them for
 * KVM_RESET_DIRTY_RINGS and move past them; without, leave the ring as it
 * was (a later collect sees them again). Returns the number of bits newly
 * set in @out, or -EIO when KVM names a page outside the RAM slot.
 */
int64_t dirtyring_collect(struct vcpu *v, struct bitmap *out, bool reset) __must_check;
/* KVM_RESET_DIRTY_RINGS: re-protect the pages of every flagged entry of every ring. 0 or -errno. */
int dirtyring_reset(struct vm *vm) __must_check;
/*
 * The vCPU thread of @v after KVM_EXIT_DIRTY_RING_FULL: move its ring into
 * vm->ring_pending (the next harvest takes it from there) and reset, so
 * KVM_RUN can go on. 0 or -errno.
 */
int dirtyring_full(struct vcpu *v) __must_check;

#endif
