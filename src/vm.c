// SPDX-License-Identifier: MIT
#define LOG_PREFIX "vm: "
#include "src/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include "src/dirtyring.h"
#include "src/guest.h"
#include "src/log.h"
#include "src/vcpu.h"

#define KVM_API_VERSION_EXPECTED 12
/* how often vm_pause re-kicks vCPUs that have not parked yet */
#define PAUSE_REKICK_NS (10 * NSEC_PER_MSEC)

static int open_kvm(struct vm *vm, const char *path, char *why, size_t whylen)
{
	int ver;

	vm->kvm_fd = open(path, O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int err = -errno;

		if (err == -ENOENT)
			snprintf(why, whylen,
				 "%s does not exist: KVM is not available on this host "
				 "(load kvm_intel/kvm_amd, or enable nested virtualization)",
				 path);
		else if (err == -EACCES || err == -EPERM)
			snprintf(why, whylen,
				 "%s: permission denied (run as root or join the kvm "
				 "group)",
				 path);
		else
			snprintf(why, whylen, "cannot open %s: %s", path, strerror(-err));
		return err;
	}
	ver = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION_EXPECTED) {
		snprintf(why, whylen, "%s is not a usable KVM device (API version %d, want %d)",
			 path, ver, KVM_API_VERSION_EXPECTED);
		return -ENODEV;
	}
	return 0;
}

static int check_caps(struct vm *vm, unsigned int nr_vcpus, char *why, size_t whylen)
{
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);

	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) <= 0 ||
	    ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
		snprintf(why, whylen, "KVM lacks user memory or immediate-exit support");
		return -ENOTSUP;
	}
	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max > 0 && nr_vcpus > (unsigned int)max) {
		snprintf(why, whylen, "KVM allows at most %d vCPUs, %u asked", max, nr_vcpus);
		return -EINVAL;
	}
	return 0;
}

static int create_vm(struct vm *vm, char *why, size_t whylen)
{
	do
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0) {
		snprintf(why, whylen, "KVM_CREATE_VM failed: %s", strerror(errno));
		return -errno;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run)) {
		snprintf(why, whylen, "KVM_GET_VCPU_MMAP_SIZE failed");
		return -EIO;
	}
	return 0;
}

static int map_memory(struct vm *vm, uint64_t bytes, char *why, size_t whylen)
{
	struct kvm_userspace_memory_region r;
	int err;

	err = mem_init(&vm->mem, bytes);
	if (err) {
		snprintf(why, whylen, "cannot map %llu bytes of guest RAM: %s",
			 (unsigned long long)bytes, strerror(-err));
		return err;
	}
	memset(&r, 0, sizeof(r));
	r.slot = 0;
	r.guest_phys_addr = 0;
	r.memory_size = vm->mem.size;
	r.userspace_addr = (uintptr_t)vm->mem.hva;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r)) {
		err = -errno;
		snprintf(why, whylen, "KVM_SET_USER_MEMORY_REGION (%llu bytes) failed: %s",
			 (unsigned long long)bytes, strerror(-err));
		return err;
	}
	err = bitmap_init(&vm->dev_dirty, vm->mem.pages);
	if (!err && vm->dirty_ring)
		err = bitmap_init(&vm->ring_pending, vm->mem.pages);
	if (err)
		snprintf(why, whylen, "out of memory for the dirty bitmaps");
	return err;
}

static int load_guest(struct vm *vm, const struct vm_config *cfg, char *why, size_t whylen)
{
	struct hm_bootinfo *bi;
	void *img;

	img = mem_gpa_to_hva(&vm->mem, HM_IMAGE_GPA, cfg->image_size);
	bi = mem_gpa_to_hva(&vm->mem, HM_BOOTINFO_GPA, sizeof(*bi));
	if (!img || !bi || cfg->image_size > HM_IMAGE_MAX) {
		snprintf(why, whylen, "guest image (%zu bytes) does not fit", cfg->image_size);
		return -E2BIG;
	}
	memcpy(img, cfg->image, cfg->image_size);
	*bi = cfg->boot;
	guest_boot_finish(bi, vm->tsc_khz, vm->nr_vcpus, vm->mem.size);
	return vm_arch_setup_memory(vm);
}

static int create_vcpus(struct vm *vm, char *why, size_t whylen)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		int err;

		vm->vcpus[i] = vcpu_new(vm, i);
		if (!vm->vcpus[i]) {
			snprintf(why, whylen, "cannot create vCPU %u", i);
			return -EIO;
		}
		err = vm_arch_vcpu_init(vm, vm->vcpus[i], why, whylen);
		if (err)
			return err;
	}
	return 0;
}

static struct vm *vm_alloc(void)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->kvm_fd = -1;
	vm->vm_fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	return vm;
}

int vm_new(const struct vm_config *cfg, struct vm **out, char *why, size_t whylen)
{
	char dummy[8];
	struct vm *vm;
	int err;

	if (!why)
		why = dummy, whylen = sizeof(dummy);
	*out = NULL;
	if (!cfg->nr_vcpus || cfg->nr_vcpus > HM_MAX_VCPUS) {
		snprintf(why, whylen, "vCPU count must be 1 to %d", HM_MAX_VCPUS);
		return -EINVAL;
	}
	vm = vm_alloc();
	if (!vm)
		return -ENOMEM;
	vm->nr_vcpus = cfg->nr_vcpus;
	err = open_kvm(vm, cfg->kvm_path ? cfg->kvm_path : "/dev/kvm", why, whylen);
	if (!err)
		err = check_caps(vm, cfg->nr_vcpus, why, whylen);
	if (!err)
		err = create_vm(vm, why, whylen);
	/* the ring must be on before the memslot and the vCPUs exist */
	if (!err)
		err = dirtyring_enable(vm, cfg->dirty, cfg->ring_entries, why, whylen);
	if (!err)
		err = vm_arch_init(vm, why, whylen);
	if (!err)
		err = map_memory(vm, cfg->mem_bytes, why, whylen);
	if (!err)
		err = devwin_init(&vm->dw, vm->nr_vcpus);
	if (!err)
		err = create_vcpus(vm, why, whylen);
	if (!err)
		err = load_guest(vm, cfg, why, whylen);
	if (!err && cfg->io_rate) {
		err = iodev_init(&vm->io, &vm->mem, &vm->dev_dirty, cfg->boot.io_ctl_gpa,
				 cfg->boot.io_ring_gpa, cfg->boot.io_slots, cfg->io_rate);
		vm->has_io = !err;
		if (err)
			snprintf(why, whylen, "cannot set up the I/O device: %s", strerror(-err));
	}
	if (err) {
		vm_free(vm);
		return err;
	}
	*out = vm;
	return 0;
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	vm_stop(vm);
	if (vm->has_io)
		iodev_exit(&vm->io);
	for (unsigned int i = 0; i < HM_MAX_VCPUS; i++)
		vcpu_free(vm->vcpus[i]);
	devwin_exit(&vm->dw);
	bitmap_exit(&vm->dev_dirty);
	bitmap_exit(&vm->ring_pending);
	mem_exit(&vm->mem);
	vm_arch_exit(vm);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

void vm_set_stop_cb(struct vm *vm, vm_stop_cb cb, void *arg)
{
	vm->on_stop = cb;
	vm->on_stop_arg = arg;
}

int vm_start(struct vm *vm)
{
	int err = 0;

	if (vm->state != VM_CREATED)
		return -EALREADY;
	vm->start_ns = hm_now_ns();
	vm->state = VM_RUNNING;
	for (unsigned int i = 0; i < vm->nr_vcpus && !err; i++)
		err = vcpu_start(vm->vcpus[i]);
	if (!err && vm->has_io)
		err = iodev_start(&vm->io);
	if (err) {
		vm_fail(vm, err, "cannot start VM threads: %s", strerror(-err));
		vm_stop(vm);
	}
	return err;
}

static void kick_all(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(vm->vcpus[i]);
	devwin_wake(&vm->dw);
}

static void wait_parked(struct vm *vm)
{
	while (vm->parked + vm->exited < vm->nr_vcpus && !vm->stop_req) {
		uint64_t deadline = hm_now_ns() + PAUSE_REKICK_NS;
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)PAUSE_REKICK_NS;
		if (ts.tv_nsec >= (long)NSEC_PER_SEC) {
			ts.tv_sec++;
			ts.tv_nsec -= (long)NSEC_PER_SEC;
		}
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) == ETIMEDOUT ||
		    hm_now_ns() >= deadline) {
			pthread_mutex_unlock(&vm->lock);
			kick_all(vm);
			pthread_mutex_lock(&vm->lock);
		}
	}
}

int vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_STOPPED || vm->stop_req || vm->state == VM_CREATED) {
		pthread_mutex_unlock(&vm->lock);
		return -ESHUTDOWN;
	}
	if (vm->state == VM_PAUSED || vm->state == VM_FENCED) {
		pthread_mutex_unlock(&vm->lock);
		return 0;
	}
	__atomic_store_n(&vm->pause_req, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&vm->lock);
	kick_all(vm);
	pthread_mutex_lock(&vm->lock);
	wait_parked(vm);
	if (vm->stop_req) {
		pthread_mutex_unlock(&vm->lock);
		return -ESHUTDOWN;
	}
	vm->state = VM_PAUSED;
	pthread_mutex_unlock(&vm->lock);
	if (vm->has_io)
		iodev_pause(&vm->io);
	return 0;
}

int vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->state != VM_PAUSED) {
		int err = vm->state == VM_RUNNING  ? 0
			  : vm->state == VM_FENCED ? -EPERM
						   : -ESHUTDOWN;

		pthread_mutex_unlock(&vm->lock);
		return err;
	}
	if (vm->has_io)
		iodev_resume(&vm->io);
	__atomic_store_n(&vm->pause_req, false, __ATOMIC_RELEASE);
	vm->state = VM_RUNNING;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

void vm_stop(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_STOPPED || vm->state == VM_CREATED) {
		vm->state = VM_STOPPED;
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	__atomic_store_n(&vm->stop_req, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	kick_all(vm);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(vm->vcpus[i]);
	if (vm->has_io)
		iodev_stop(&vm->io);
	pthread_mutex_lock(&vm->lock);
	vm->state = VM_STOPPED;
	pthread_mutex_unlock(&vm->lock);
}

enum vm_state vm_get_state(struct vm *vm)
{
	enum vm_state s;

	pthread_mutex_lock(&vm->lock);
	s = vm->state;
	if (s != VM_STOPPED && (vm->stop_req || vm->exited == vm->nr_vcpus))
		s = VM_STOPPED;
	pthread_mutex_unlock(&vm->lock);
	return s;
}

int vm_fence(struct vm *vm)
{
	int err = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_PAUSED)
		vm->state = VM_FENCED;
	else if (vm->state != VM_FENCED)
		err = -EINVAL;
	pthread_mutex_unlock(&vm->lock);
	return err;
}

void vm_unfence(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_FENCED)
		vm->state = VM_PAUSED;
	pthread_mutex_unlock(&vm->lock);
}

const char *vm_state_name(enum vm_state s)
{
	static const char *const names[] = { "created", "running", "paused", "stopped", "fenced" };

	return s < ARRAY_SIZE(names) ? names[s] : "unknown";
}

int vm_error(struct vm *vm, char *buf, size_t len)
{
	int err;

	pthread_mutex_lock(&vm->lock);
	err = vm->err;
	if (buf && len)
		snprintf(buf, len, "%s", vm->err_msg);
	pthread_mutex_unlock(&vm->lock);
	return err;
}

void vm_fail(struct vm *vm, int err, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&vm->lock);
	if (!vm->err) {
		vm->err = err ? err : -EIO;
		va_start(ap, fmt);
		vsnprintf(vm->err_msg, sizeof(vm->err_msg), fmt, ap);
		va_end(ap);
	}
	__atomic_store_n(&vm->stop_req, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	kick_all(vm);
}

bool vm_vcpu_checkpoint(struct vm *vm)
{
	bool run;

	if (!__atomic_load_n(&vm->pause_req, __ATOMIC_ACQUIRE) &&
	    !__atomic_load_n(&vm->stop_req, __ATOMIC_ACQUIRE))
		return true;
	pthread_mutex_lock(&vm->lock);
	while (vm->pause_req && !vm->stop_req) {
		vm->parked++;
		pthread_cond_broadcast(&vm->cond);
		pthread_cond_wait(&vm->cond, &vm->lock);
		vm->parked--;
	}
	run = !vm->stop_req;
	pthread_mutex_unlock(&vm->lock);
	return run;
}

void vm_vcpu_exited(struct vm *vm)
{
	vm_stop_cb cb = NULL;

	pthread_mutex_lock(&vm->lock);
	vm->exited++;
	if (vm->exited == vm->nr_vcpus && !vm->notified) {
		vm->notified = true;
		cb = vm->on_stop;
	}
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	if (cb)
		cb(vm->on_stop_arg);
}
