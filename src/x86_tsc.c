// SPDX-License-Identifier: MIT
/*
 * The TSC frequency the test guests time themselves with (struct
 * hm_bootinfo's tsc_khz): KVM's for a vCPU, else measured here.
 */
#define LOG_PREFIX "x86: "
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include "src/vm.h"

/* TSC ticks per millisecond, against CLOCK_MONOTONIC over 20 ms. */
static uint64_t measure_tsc_khz(void)
{
	struct timespec a;
	struct timespec b;
	uint64_t t0;
	uint64_t t1;

	clock_gettime(CLOCK_MONOTONIC, &a);
	t0 = __builtin_ia32_rdtsc();
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec) < 20000000LL);
	t1 = __builtin_ia32_rdtsc();
	return (t1 - t0) / 20; /* ticks in 20 ms */
}

uint64_t vm_arch_tsc_khz(int vcpu_fd)
{
	int khz = vcpu_fd >= 0 ? ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0) : -1;

	return khz > 0 ? (uint64_t)khz : measure_tsc_khz();
}

uint64_t vm_arch_host_tsc_khz(const char *kvm_path)
{
	int kvm = open(kvm_path ? kvm_path : "/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm = kvm >= 0 ? ioctl(kvm, KVM_CREATE_VM, 0) : -1;
	int cpu = vm >= 0 ? ioctl(vm, KVM_CREATE_VCPU, 0) : -1;
	uint64_t khz = vm_arch_tsc_khz(cpu);

	if (cpu >= 0)
		close(cpu);
	if (vm >= 0)
		close(vm);
	if (kvm >= 0)
		close(kvm);
	return khz;
}
