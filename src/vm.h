/* SPDX-License-Identifier: MIT */
/*
 * struct vm: one KVM virtual machine — /dev/kvm and VM fd lifecycle, guest
 * RAM, vCPUs, the device window and the I/O device, and the pause/resume
 * barrier that stops every vCPU and device (the stop-and-copy primitive).
 *
 * Threads: one per vCPU, one for the I/O device. vm_start/pause/resume/
 * stop are called from one controlling thread (the event loop).
 */
#ifndef HM_VM_H
#define HM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "guest/abi.h"
#include "src/bitmap.h"
#include "src/devwin.h"
#include "src/dirty.h"
#include "src/iodev.h"
#include "src/mem.h"
#include "src/util.h"

struct vcpu;
struct kvm_cpuid2;
struct kvm_msr_list;
struct vmstate_buf;
struct vmstate_rec;

struct vm_config {
	uint64_t mem_bytes;
	unsigned int nr_vcpus; /* 1..HM_MAX_VCPUS */
	const uint8_t *image;  /* flat guest binary, loaded at HM_IMAGE_GPA */
	size_t image_size;
	struct hm_bootinfo boot; /* layout from guest_layout(); tsc_khz filled here */
	uint64_t io_rate;	 /* I/O device bytes/s, 0 = no device */
	const char *kvm_path;	 /* default /dev/kvm */
	enum dirty_mode dirty;	 /* dirty tracking: auto (the default) = the ring where offered */
	uint32_t ring_entries;	 /* dirty ring entries per vCPU, a power of two; 0 = default */
};

enum vm_state {
	VM_CREATED,
	VM_RUNNING,
	VM_PAUSED,
	VM_STOPPED,
	VM_FENCED, /* paused for good: the guest may run elsewhere (migration switch-over) */
};

/* Called once when the VM stops on its own (guest exit or failure), from any thread. */
typedef void (*vm_stop_cb)(void *arg);

struct vm {
	int kvm_fd;
	int vm_fd;
	int run_size; /* bytes of each vCPU's kvm_run mapping */
	struct guest_mem mem;
	struct bitmap dev_dirty; /* pages written by VMM devices, by gfn */
	struct devwin dw;
	struct iodev io;
	bool has_io;
	unsigned int nr_vcpus;
	struct vcpu *vcpus[HM_MAX_VCPUS];
	struct kvm_cpuid2 *cpuid;  /* supported CPUID, as given to every vCPU */
	struct kvm_msr_list *msrs; /* MSRs KVM can save and restore */
	uint64_t tsc_khz;
	bool dirty_manual; /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled (see dirty.c) */
	/* dirty tracking: KVM's dirty ring when on, else the dirty log (dirty.h) */
	bool dirty_ring;	    /* the ring is on (enabled before the vCPUs, for good) */
	bool ring_acq_rel;	    /* enabled as KVM_CAP_DIRTY_LOG_RING_ACQ_REL */
	uint32_t ring_entries;	    /* entries per vCPU ring, a power of two */
	struct bitmap ring_pending; /* pages vCPU threads moved out of full rings, by gfn */
	uint64_t start_ns;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;
	enum vm_state state;
	bool pause_req;
	bool stop_req;
	unsigned int parked; /* vCPUs parked at the barrier */
	unsigned int exited; /* vCPU threads that left their loop */
	int err;	     /* first failure, -errno */
	char err_msg[256];
	vm_stop_cb on_stop;
	void *on_stop_arg;
	bool notified;
};

/*
 * Create the VM described by @cfg: open KVM, map RAM, create vCPUs, load
 * the guest and its entry state. On failure returns -errno and writes a
 * one-line reason to @why (may be NULL); nothing is left behind.
 */
int vm_new(const struct vm_config *cfg, struct vm **out, char *why, size_t whylen) __must_check;
/* Stop if running, release everything. Accepts NULL. */
void vm_free(struct vm *vm);
/* Register the callback for a stop the VM decides itself. Call before vm_start. */
void vm_set_stop_cb(struct vm *vm, vm_stop_cb cb, void *arg);
/* Start vCPU threads and the I/O device. */
int vm_start(struct vm *vm) __must_check;
/*
 * Stop every vCPU (each completes its pending exit first, so its state can
 * be saved) and park the I/O device. Returns 0, or -ESHUTDOWN if the VM
 * has stopped. Idempotent.
 */
int vm_pause(struct vm *vm) __must_check;
/* Resume a paused VM. -EPERM when it is fenced, -ESHUTDOWN when stopped. */
int vm_resume(struct vm *vm) __must_check;
/*
 * Fence a paused VM: it stays paused and vm_resume refuses it, because
 * from here its guest may run on a migration destination. -EINVAL unless
 * paused (or already fenced).
 */
int vm_fence(struct vm *vm) __must_check;
/* Lift the fence (operator's --force): the VM is paused again. */
void vm_unfence(struct vm *vm);
/* Stop for good and join all threads. Idempotent. */
void vm_stop(struct vm *vm);
enum vm_state vm_get_state(struct vm *vm);
const char *vm_state_name(enum vm_state s);
/* The first failure (-errno, message copied to @buf) or 0. */
int vm_error(struct vm *vm, char *buf, size_t len);
/*
 * Record a failure and stop the VM (from any thread, e.g. a vCPU that hit
 * a triple fault). Only the first failure is kept.
 */
void vm_fail(struct vm *vm, int err, const char *fmt, ...) __printf(3, 4);
/* Called by vCPU threads: park here while paused; returns false when stopping. */
bool vm_vcpu_checkpoint(struct vm *vm);
/* Called by a vCPU thread when it leaves its run loop. */
void vm_vcpu_exited(struct vm *vm);

/* x86 hooks (src/x86.c) */
int vm_arch_init(struct vm *vm, char *why, size_t whylen) __must_check;
int vm_arch_setup_memory(struct vm *vm) __must_check;
int vm_arch_vcpu_init(struct vm *vm, struct vcpu *v, char *why, size_t whylen) __must_check;
void vm_arch_exit(struct vm *vm);
/*
 * Append every vCPU's state and the VM's clock to @b. The VM must be
 * paused (vm_pause completed every pending exit). Returns 0 or -errno.
 */
int vm_arch_save(struct vm *vm, struct vmstate_buf *b, char *why, size_t whylen) __must_check;
/*
 * Apply one record to the (not yet started) VM. Sizes are checked; the
 * guest TSC is moved forward by @tsc_advance_ns. Returns 0, 1 when the
 * record is not an arch record, or -errno with a reason.
 */
int vm_arch_restore(struct vm *vm, const struct vmstate_rec *r, uint64_t tsc_advance_ns, char *why,
		    size_t whylen) __must_check;
/* CPUID feature words offered to the guest, for compatibility checks (PROTO_CPUID_WORDS). */
void vm_arch_features(struct vm *vm, uint32_t *words, unsigned int n);
/*
 * The TSC frequency (kHz) a guest of this host sees, found the way a VM finds
 * it: KVM_GET_TSC_KHZ of a throw-away vCPU on @kvm_path (NULL: /dev/kvm),
 * else measured against CLOCK_MONOTONIC over 20 ms. For tools that build
 * guests run elsewhere (tools/mbimage.c); takes ~20 ms without KVM.
 */
uint64_t vm_arch_host_tsc_khz(const char *kvm_path);
/* The TSC frequency of the vCPU @vcpu_fd (KVM_GET_TSC_KHZ), else measured (src/x86_tsc.c). */
uint64_t vm_arch_tsc_khz(int vcpu_fd);

#endif
