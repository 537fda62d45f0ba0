// SPDX-License-Identifier: MIT
/*
 * vCPU threads. Kicks use a signal that is blocked in the thread except
 * inside KVM_RUN (KVM_SET_SIGNAL_MASK), so a kick sent just before KVM_RUN
 * is never lost: it stays pending and makes KVM_RUN return EINTR at once.
 * A consumed kick is eaten with sigtimedwait so it does not repeat.
 */
#define LOG_PREFIX "vcpu: "
#include "src/vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "guest/abi.h"
#include "src/dirtyring.h"
#include "src/log.h"
#include "src/vm.h"

#define VCPU_KICK_SIG SIGUSR1

static void kick_handler(int sig)
{
	(void)sig;
}

int vcpu_signal_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIG, &sa, NULL))
		return -errno;
	return 0;
}

struct vcpu *vcpu_new(struct vm *vm, unsigned int id)
{
	struct vcpu *v = calloc(1, sizeof(*v));
	void *run;
	int err;

	if (!v)
		return NULL;
	v->vm = vm;
	v->id = id;
	pthread_mutex_init(&v->ring_lock, NULL);
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		hm_perror("KVM_CREATE_VCPU %u", id);
		goto out_free;
	}
	run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (run == MAP_FAILED) {
		hm_perror("mmap kvm_run of vcpu %u", id);
		goto out_close;
	}
	v->run = run;
	err = dirtyring_map(v);
	if (err) {
		hm_err("cannot map the dirty ring of vcpu %u: %s", id, strerror(-err));
		goto out_unmap_run;
	}
	return v;
out_unmap_run:
	munmap(v->run, (size_t)vm->run_size);
out_close:
	close(v->fd);
out_free:
	pthread_mutex_destroy(&v->ring_lock);
	free(v);
	return NULL;
}

void vcpu_free(struct vcpu *v)
{
	if (!v)
		return;
	dirtyring_unmap(v);
	if (v->run)
		munmap(v->run, (size_t)v->vm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	pthread_mutex_destroy(&v->ring_lock);
	free(v);
}

/* Unblock the kick signal only while the vCPU is inside KVM_RUN. */
static int set_run_sigmask(struct vcpu *v)
{
	struct {
		struct kvm_signal_mask hdr;
		uint8_t set[8]; /* the kernel's sigset_t is 64 bits on x86-64 */
	} m;
	sigset_t set;

	if (pthread_sigmask(SIG_BLOCK, NULL, &set))
		return -EINVAL;
	sigdelset(&set, VCPU_KICK_SIG);
	m.hdr.len = 8;
	memcpy(m.set, &set, 8);
	if (ioctl(v->fd, KVM_SET_SIGNAL_MASK, &m))
		return -errno;
	return 0;
}

static void eat_kick(void)
{
	struct timespec zero = { 0, 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIG);
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
}

static int handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint64_t gpa = run->mmio.phys_addr;
	const char *why = "";
	int ret;

	if (gpa < HM_DEVWIN_GPA || gpa >= HM_DEVWIN_GPA + HM_PAGE_SIZE) {
		vm_fail(v->vm, -EFAULT,
			"vcpu %u: guest %s guest-physical address 0x%llx, which no memory or "
			"device backs",
			v->id, run->mmio.is_write ? "wrote" : "read", (unsigned long long)gpa);
		return -EFAULT;
	}
	ret = devwin_mmio(&v->vm->dw, v->id, gpa - HM_DEVWIN_GPA, run->mmio.is_write,
			  run->mmio.data, run->mmio.len, &why);
	if (ret < 0)
		vm_fail(v->vm, ret, "vcpu %u: %s (offset 0x%llx)", v->id, why,
			(unsigned long long)(gpa - HM_DEVWIN_GPA));
	return ret;
}

/* The ring filled: empty it into the VM's pending set and reset before KVM_RUN again. */
static int handle_ring_full(struct vcpu *v)
{
	int err = dirtyring_full(v);

	if (err)
		vm_fail(v->vm, err, "vcpu %u: cannot empty its full dirty ring: %s", v->id,
			strerror(-err));
	return err;
}

static unsigned long long guest_rip(struct vcpu *v)
{
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_REGS, &regs))
		return ~0ULL;
	return regs.rip;
}

/* Returns 0 to keep running, DEVWIN_EXIT when the guest finished, -errno on failure. */
static int handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	v->exits++;
	switch (run->exit_reason) {
	case KVM_EXIT_MMIO:
		return handle_mmio(v);
	case KVM_EXIT_INTR:
		return 0;
	case KVM_EXIT_DIRTY_RING_FULL:
		return handle_ring_full(v);
	case KVM_EXIT_SHUTDOWN:
		vm_fail(
		    v->vm, -EFAULT,
		    "vcpu %u: guest triple-faulted (an exception it cannot handle) near rip 0x%llx",
		    v->id, guest_rip(v));
		return -EFAULT;
	case KVM_EXIT_IO:
		vm_fail(v->vm, -EFAULT, "vcpu %u: guest used port I/O (port 0x%x), not emulated",
			v->id, run->io.port);
		return -EFAULT;
	case KVM_EXIT_HLT:
		vm_fail(v->vm, -EFAULT, "vcpu %u: guest halted", v->id);
		return -EFAULT;
	case KVM_EXIT_INTERNAL_ERROR:
		vm_fail(v->vm, -EIO, "vcpu %u: KVM internal error, suberror %u, rip 0x%llx", v->id,
			run->internal.suberror, guest_rip(v));
		return -EIO;
	case KVM_EXIT_FAIL_ENTRY:
		vm_fail(v->vm, -EIO, "vcpu %u: KVM could not enter the guest, reason 0x%llx", v->id,
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return -EIO;
	default:
		vm_fail(v->vm, -EIO, "vcpu %u: unexpected KVM exit reason %u", v->id,
			run->exit_reason);
		return -EIO;
	}
}

/*
 * Complete a pending MMIO or I/O exit without running guest code, so the
 * register state is architecturally consistent before we park (and before
 * anybody saves it).
 */
static void flush_pending(struct vcpu *v)
{
	v->run->immediate_exit = 1;
	if (ioctl(v->fd, KVM_RUN, 0) == 0)
		hm_dbg("vcpu %u: flush returned an exit", v->id);
	v->run->immediate_exit = 0;
	eat_kick();
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	int err;

	err = set_run_sigmask(v);
	if (err)
		vm_fail(vm, err, "vcpu %u: KVM_SET_SIGNAL_MASK failed: %s", v->id, strerror(-err));
	for (;;) {
		if (__atomic_load_n(&vm->pause_req, __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&vm->stop_req, __ATOMIC_ACQUIRE))
			flush_pending(v);
		if (!vm_vcpu_checkpoint(vm))
			break;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				eat_kick();
				continue;
			}
			vm_fail(vm, -errno, "vcpu %u: KVM_RUN failed: %s", v->id, strerror(errno));
			break;
		}
		if (handle_exit(v))
			break;
	}
	vm_vcpu_exited(vm);
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	sigset_t set;
	sigset_t old;
	int err;

	/* the thread inherits the mask: the kick is blocked outside KVM_RUN */
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIG);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	err = pthread_create(&v->thread, NULL, vcpu_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (v->started)
		pthread_kill(v->thread, VCPU_KICK_SIG);
}

void vcpu_join(struct vcpu *v)
{
	if (v && v->started) {
		pthread_join(v->thread, NULL);
		v->started = false;
	}
}
