// SPDX-License-Identifier: MIT
#define LOG_PREFIX "dirtyring: "
#include "src/dirtyring.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "src/bitmap.h"
#include "src/log.h"
#include "src/vcpu.h"
#include "src/vm.h"

/* the Linux 6.1 UAPI headers have these; older ones may not */
#ifndef KVM_CAP_DIRTY_LOG_RING_ACQ_REL
#define KVM_CAP_DIRTY_LOG_RING_ACQ_REL 223
#endif
#ifndef KVM_EXIT_DIRTY_RING_FULL
#define KVM_EXIT_DIRTY_RING_FULL 31
#endif

/* Largest ring KVM allows for @cap, in bytes; 0 when it does not offer it. */
static uint32_t ring_max_bytes(int fd, unsigned int cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r > 0 ? (uint32_t)r : 0;
}

static int enable_cap(struct vm *vm, unsigned int cap, uint32_t entries, char *why, size_t whylen)
{
	struct kvm_enable_cap c = { .cap = cap };

	c.args[0] = (uint64_t)entries * sizeof(struct kvm_dirty_gfn);
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &c)) {
		int err = -errno;

		snprintf(why, whylen, "cannot enable KVM's dirty ring (%u entries per vCPU): %s",
			 entries, strerror(-err));
		return err;
	}
	return 0;
}

/* Entries per vCPU: @want (0: the default) capped to @max_bytes, a power of two. */
static int ring_size(uint32_t want, uint32_t max_bytes, uint32_t *out, char *why, size_t whylen)
{
	uint32_t max = max_bytes / (uint32_t)sizeof(struct kvm_dirty_gfn);

	if (!want)
		want = min_t(uint32_t, DIRTYRING_DEFAULT_ENTRIES, max);
	if (want & (want - 1) || want > max ||
	    (uint64_t)want * sizeof(struct kvm_dirty_gfn) < (uint64_t)getpagesize()) {
		snprintf(why, whylen,
			 "a dirty ring of %u entries is not possible (a power of two, %zu to %u)",
			 want, (size_t)getpagesize() / sizeof(struct kvm_dirty_gfn), max);
		return -EINVAL;
	}
	*out = want;
	return 0;
}

int dirtyring_enable(struct vm *vm, enum dirty_mode mode, uint32_t entries, char *why,
		     size_t whylen)
{
	uint32_t acq = ring_max_bytes(vm->vm_fd, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
	uint32_t plain = ring_max_bytes(vm->vm_fd, KVM_CAP_DIRTY_LOG_RING);
	int err;

	if (mode == DIRTY_LOG || (mode == DIRTY_AUTO && !acq && !plain))
		return 0;
	if (!acq && !plain) {
		snprintf(why, whylen,
			 "KVM does not offer the dirty ring here (KVM_CAP_DIRTY_LOG_RING); use "
			 "--dirty-tracking log or auto");
		return -ENOTSUP;
	}
	err = ring_size(entries, acq ? acq : plain, &vm->ring_entries, why, whylen);
	if (!err)
		err = enable_cap(vm, acq ? KVM_CAP_DIRTY_LOG_RING_ACQ_REL : KVM_CAP_DIRTY_LOG_RING,
				 vm->ring_entries, why, whylen);
	if (err)
		return err;
	vm->dirty_ring = true;
	vm->ring_acq_rel = acq != 0;
	return 0;
}

int dirtyring_map(struct vcpu *v)
{
	size_t len = (size_t)v->vm->ring_entries * sizeof(struct kvm_dirty_gfn);
	void *p;

	if (!v->vm->dirty_ring)
		return 0;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
		 (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * getpagesize());
	if (p == MAP_FAILED)
		return -errno;
	v->ring = p;
	v->ring_next = 0;
	return 0;
}

void dirtyring_unmap(struct vcpu *v)
{
	if (v->ring)
		munmap(v->ring, (size_t)v->vm->ring_entries * sizeof(struct kvm_dirty_gfn));
	v->ring = NULL;
}

/* One entry: its gfn into @out (slot 0 starts at gpa 0). 1 newly set, 0, or -EIO. */
static int take(struct vcpu *v, const struct kvm_dirty_gfn *e, struct bitmap *out)
{
	uint64_t gfn = e->offset;

	if (e->slot != 0 || gfn >= v->vm->mem.pages) {
		hm_err("vcpu %u: dirty ring names slot %u page %llu, outside guest RAM", v->id,
		       e->slot, (unsigned long long)gfn);
		return -EIO;
	}
	return out && !bitmap_test_and_set(out, gfn);
}

int64_t dirtyring_collect(struct vcpu *v, struct bitmap *out, bool reset)
{
	uint32_t mask = v->vm->ring_entries - 1;
	int64_t n = 0;
	uint32_t i;

	if (!v->ring)
		return 0;
	pthread_mutex_lock(&v->ring_lock);
	/* at most one lap: a full ring read without reset would otherwise go round forever */
	for (i = 0; i <= mask; i++) {
		struct kvm_dirty_gfn *e = &v->ring[(v->ring_next + i) & mask];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		int r;

		if ((flags & KVM_DIRTY_GFN_F_MASK) != KVM_DIRTY_GFN_F_DIRTY)
			break;
		r = take(v, e, out);
		if (r < 0) {
			n = r;
			break;
		}
		n += r;
		if (reset)
			__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
	}
	if (reset)
		v->ring_next += i; /* up to a bad entry, which stays unflagged */
	pthread_mutex_unlock(&v->ring_lock);
	return n;
}

int dirtyring_reset(struct vm *vm)
{
	/* newer kernels stop a long reset for a pending signal; what is left is still flagged */
	while (ioctl(vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int dirtyring_full(struct vcpu *v)
{
	int64_t n = dirtyring_collect(v, &v->vm->ring_pending, true);

	__atomic_fetch_add(&v->ring_full, 1, __ATOMIC_RELAXED);
	return n < 0 ? (int)n : dirtyring_reset(v->vm);
}
