/* SPDX-License-Identifier: MIT */
/* One vCPU: its fd, its kvm_run mapping, its thread and KVM_RUN loop with exit dispatch. */
#ifndef HM_VCPU_H
#define HM_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include "src/util.h"

struct vm;
struct kvm_run;
struct kvm_dirty_gfn;

struct vcpu {
	struct vm *vm; /* owner */
	unsigned int id;
	int fd;		     /* owned */
	struct kvm_run *run; /* owned mapping of vm->run_size bytes */
	pthread_t thread;
	bool started;
	uint64_t exits; /* exits handled, for stats */
	/* KVM's dirty ring of this vCPU, when the VM has it on (src/dirtyring.h) */
	struct kvm_dirty_gfn *ring; /* owned mapping of vm->ring_entries entries, or NULL */
	uint32_t ring_next;	    /* free-running index of the next entry to collect */
	pthread_mutex_t ring_lock;  /* one collector at a time: this thread or a harvest */
	uint64_t ring_full;	    /* KVM_EXIT_DIRTY_RING_FULL exits handled (atomic) */
};

/* Create vCPU @id of @vm (KVM_CREATE_VCPU, kvm_run and dirty ring mappings). */
struct vcpu *vcpu_new(struct vm *vm, unsigned int id);
/* Join must have happened; releases fd and mapping. Accepts NULL. */
void vcpu_free(struct vcpu *v);
int vcpu_start(struct vcpu *v) __must_check;
/* Interrupt KVM_RUN so the thread looks at the VM's pause/stop flags. */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
/* Install the (empty) kick signal handler, once per process. */
int vcpu_signal_setup(void) __must_check;

#endif
