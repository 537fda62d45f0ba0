// SPDX-License-Identifier: MIT
#define LOG_PREFIX "dirty: "
#include "src/dirty.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include "src/bitmap.h"
#include "src/log.h"
#include "src/vm.h"

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

int dirty_start(struct dirty *d, struct vm *vm)
{
	int err;

	memset(d, 0, sizeof(*d));
	d->vm = vm;
	d->words = DIV_ROUND_UP(vm->mem.pages, 64);
	d->log = calloc(d->words, sizeof(uint64_t));
	if (!d->log)
		return -ENOMEM;
	err = set_slot_flags(vm, KVM_MEM_LOG_DIRTY_PAGES);
	if (err) {
		hm_err("cannot enable dirty logging: %s", strerror(-err));
		free(d->log);
		d->log = NULL;
		return err;
	}
	d->enabled = true;
	d->last_ns = hm_now_ns();
	return 0;
}

int dirty_start_collect(struct dirty *d, struct vm *vm)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, .args = { 1 } };
	int err;

	/* manual protect is VM-wide and sticks: dirty_harvest clears explicitly from then on */
	if (!vm->dirty_manual &&
	    ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) > 0 &&
	    !ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap))
		vm->dirty_manual = true;
	err = dirty_start(d, vm);
	d->collect_only = vm->dirty_manual;
	return err;
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

int64_t dirty_harvest(struct dirty *d, struct bitmap *out)
{
	struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = d->log };
	uint64_t now = hm_now_ns();
	uint64_t n = 0;

	if (ioctl(d->vm->vm_fd, KVM_GET_DIRTY_LOG, &log))
		return -errno;

	if (d->vm->dirty_manual && !d->collect_only) {
		int err = clear_log(d);

		if (err)
			return err;
	}
	for (uint64_t i = 0; i < d->words; i++) {
		uint64_t w = d->log[i];

		if (!w)
			continue;
		n += (uint64_t)__builtin_popcountll(w & ~out->words[i]);
		__atomic_fetch_or(&out->words[i], w, __ATOMIC_RELAXED);
	}
	n += bitmap_drain_into(out, &d->vm->dev_dirty);
	if (now > d->last_ns)
		d->rate = (double)n * 1e9 / (double)(now - d->last_ns);
	d->last_ns = now;
	return (int64_t)n;
}

void dirty_stop(struct dirty *d)
{
	if (d->enabled && set_slot_flags(d->vm, 0))
		hm_warn("cannot disable dirty logging: %s", strerror(errno));
	d->enabled = false;
	free(d->log);
	d->log = NULL;
}
