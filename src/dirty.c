// SPDX-License-Identifier: MIT
#define LOG_PREFIX "dirty: "
#include "src/dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "src/dirtyring.h"
#include "src/log.h"
#include "src/vcpu.h"
#include "src/vm.h"

#ifndef KVM_CAP_DIRTY_LOG_RING_ACQ_REL
#define KVM_CAP_DIRTY_LOG_RING_ACQ_REL 223
#endif

int dirty_mode_parse(const char *s, enum dirty_mode *out)
{
	static const char *const names[] = {
		[DIRTY_AUTO] = "auto", [DIRTY_RING] = "ring", [DIRTY_LOG] = "log"
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(names); i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum dirty_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool dirty_ring_offered(const char *kvm_path)
{
	int fd = open(kvm_path ? kvm_path : "/dev/kvm", O_RDWR | O_CLOEXEC);
	bool yes;

	if (fd < 0)
		return false;
	yes = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING_ACQ_REL) > 0 ||
	      ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING) > 0;
	close(fd);
	return yes;
}

const char *dirty_tracking_name(const struct vm *vm)
{
	return vm->dirty_ring ? "dirty-ring" : "dirty-log";
}

static int set_slot_flags(struct vm *vm, uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = 0,
		.flags = flags,
		.guest_phys_addr = 0,
		.memory_size = vm->mem.size,
		.userspace_addr = (uintptr_t)vm->mem.hva,
	};

	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) ? -errno : 0;
}

/* Empty every ring (entries from an earlier session, or after the final harvest). */
static int ring_drop(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		int64_t r = dirtyring_collect(vm->vcpus[i], NULL, true);

		if (r < 0)
			return (int)r;
	}
	bitmap_zero(&vm->ring_pending);
	return dirtyring_reset(vm);
}

/*
 * Manual-protect mode is VM-wide and sticks: from then on GET only reads
 * and CLEAR re-protects, which is what lets the final harvest skip it.
 */
static void log_manual(struct vm *vm)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, .args = { 1 } };

	if (vm->dirty_manual ||
	    ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) <= 0)
		return;
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap))
		hm_warn("cannot enable manual dirty-log protection (%s): every harvest "
			"re-protects",
			strerror(errno));
	else
		vm->dirty_manual = true;
}

static int prepare(struct dirty *d)
{
	struct vm *vm = d->vm;

	if (vm->dirty_ring)
		return ring_drop(vm);
	d->words = DIV_ROUND_UP(vm->mem.pages, 64);
	d->log = calloc(d->words, sizeof(uint64_t));
	if (!d->log)
		return -ENOMEM;
	log_manual(vm);
	return 0;
}

int dirty_start(struct dirty *d, struct vm *vm)
{
	int err;

	memset(d, 0, sizeof(*d));
	d->vm = vm;
	err = prepare(d);
	if (!err)
		err = set_slot_flags(vm, KVM_MEM_LOG_DIRTY_PAGES);
	if (err) {
		hm_err("cannot enable dirty tracking (%s): %s", dirty_tracking_name(vm),
		       strerror(-err));
		free(d->log);
		d->log = NULL;
		return err;
	}
	d->enabled = true;
	d->last_ns = hm_now_ns();
	hm_dbg("dirty tracking on: %s (%s)", dirty_tracking_name(vm),
	       vm->dirty_ring	  ? (vm->ring_acq_rel ? "acquire/release" : "plain")
	       : vm->dirty_manual ? "manual protect"
				  : "protect on read");
	return 0;
}

int dirty_start_collect(struct dirty *d, struct vm *vm)
{
	int err = dirty_start(d, vm);

	if (!err && vm->dirty_ring && bitmap_init(&d->seen, vm->mem.pages)) {
		dirty_stop(d);
		return -ENOMEM;
	}
	d->collect_only = vm->dirty_ring || vm->dirty_manual;
	return err;
}

/* out |= words; returns the bits newly set in @out. */
static int64_t merge(struct bitmap *out, const uint64_t *words, uint64_t n)
{
	int64_t newly = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t w = words[i];

		if (!w)
			continue;
		newly += __builtin_popcountll(w & ~out->words[i]);
		__atomic_fetch_or(&out->words[i], w, __ATOMIC_RELAXED);
	}
	return newly;
}

/* Manual-protect mode: re-arm the pages we just read, as GET used to. */
static int clear_log(struct dirty *d)
{
	struct kvm_clear_dirty_log c = {
		.slot = 0,
		.num_pages = (uint32_t)d->vm->mem.pages,
		.first_page = 0,
		.dirty_bitmap = d->log,
	};

	return ioctl(d->vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &c) ? -errno : 0;
}

/* Dirty log: GET, and CLEAR what it read when @protect (GET alone protects without manual mode). */
static int64_t log_collect(struct dirty *d, struct bitmap *out, bool protect)
{
	struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = d->log };

	if (ioctl(d->vm->vm_fd, KVM_GET_DIRTY_LOG, &log))
		return -errno;
	if (protect && d->vm->dirty_manual) {
		int err = clear_log(d);

		if (err)
			return err;
	}
	return merge(out, d->log, d->words);
}

/*
 * Ring: every vCPU's entries, then what vCPU threads moved out of full
 * rings, then (when @protect) KVM_RESET_DIRTY_RINGS. A page written after
 * the reset pushes a new entry; one written between its collection and the
 * reset is still writable, so reading it after this returns is enough.
 */
static int64_t ring_collect(struct dirty *d, struct bitmap *out, bool protect)
{
	struct vm *vm = d->vm;
	struct bitmap *into = d->seen.words ? &d->seen : out;
	int64_t n = 0;

	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		int64_t r = dirtyring_collect(vm->vcpus[i], into, protect);

		if (r < 0)
			return r;
		n += r;
	}
	n += (int64_t)bitmap_drain_into(into, &vm->ring_pending);
	if (protect) {
		int err = dirtyring_reset(vm);

		if (err)
			return err;
	}
	return into == out ? n : merge(out, d->seen.words, DIV_ROUND_UP(d->seen.nbits, 64));
}

static int64_t harvest(struct dirty *d, struct bitmap *out, bool final)
{
	uint64_t now = hm_now_ns();
	int64_t n;

	if (!d->enabled)
		return -EINVAL;
	if (d->vm->dirty_ring)
		n = ring_collect(d, out, !final);
	else
		n = log_collect(d, out, !final && !d->collect_only);
	if (n < 0)
		return n;
	n += (int64_t)bitmap_drain_into(out, &d->vm->dev_dirty);
	if (now > d->last_ns)
		d->rate = (double)n * 1e9 / (double)(now - d->last_ns);
	d->last_ns = now;
	return n;
}

int64_t dirty_harvest(struct dirty *d, struct bitmap *out)
{
	return harvest(d, out, false);
}

int64_t dirty_harvest_final(struct dirty *d, struct bitmap *out)
{
	return harvest(d, out, true);
}

void dirty_stop(struct dirty *d)
{
	int err;

	if (d->enabled) {
		err = set_slot_flags(d->vm, 0);
		if (err)
			hm_warn("cannot disable dirty tracking: %s", strerror(-err));
		/* after the slot update: no entry can follow the ones dropped here */
		err = d->vm->dirty_ring ? ring_drop(d->vm) : 0;
		if (err)
			hm_warn("cannot empty the dirty rings: %s", strerror(-err));
	}
	d->enabled = false;
	free(d->log);
	d->log = NULL;
	bitmap_exit(&d->seen);
}
