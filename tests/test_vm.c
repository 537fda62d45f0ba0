// SPDX-License-Identifier: MIT
/*
 * End-to-end tests of the VMM in one process: real KVM guests, the device
 * window, the I/O device, pause/resume, and the guest's own verify catching
 * a corrupt and a stale page that the test plants from the VMM side.
 */
#include "tests/helpers.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "guest/page.h"
#include "src/guest.h"
#include "src/vcpu.h"
#include "src/vm.h"

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	struct devwin_verdict v;
};

static void verdict_cb(void *arg, const struct devwin_verdict *v)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->lock);
	w->v = *v;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Run a verify and wait for it (at most 30 s). */
static struct devwin_verdict verify(struct vm *vm)
{
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, { 0 } };
	struct timespec ts;

	assert_int_equal(devwin_verify_start(&vm->dw, verdict_cb, &w), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		if (pthread_cond_timedwait(&w.cond, &w.lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&w.lock);
	if (!w.done) {
		devwin_verify_cancel(&vm->dw);
		fail_msg("the guest did not answer verify within 30 s");
	}
	return w.v;
}

static struct vm *start_full(const char *guest, uint64_t mem, unsigned int vcpus, const char *kvm,
			     struct guest_spec *spec)
{
	struct vm_config cfg = { 0 };
	struct vm *vm = NULL;
	char why[256];

	assert_int_equal(guest_spec_parse(guest, spec, why, sizeof(why)), 0);
	cfg.mem_bytes = mem;
	cfg.nr_vcpus = vcpus;
	cfg.image = spec->type->image;
	cfg.image_size = (size_t)(spec->type->image_end - spec->type->image);
	cfg.io_rate = spec->io_mbps * 1000000;
	cfg.kvm_path = kvm;
	assert_int_equal(guest_layout(spec, mem, vcpus, &cfg.boot, why, sizeof(why)), 0);
	assert_int_equal(vcpu_signal_setup(), 0);
	if (vm_new(&cfg, &vm, why, sizeof(why)))
		fail_msg("vm_new: %s", why);
	assert_int_equal(vm_start(vm), 0);
	return vm;
}

static struct vm *start(const char *guest, uint64_t mem, unsigned int vcpus)
{
	struct guest_spec spec;

	hm_skip_unless("kvm", hm_have_kvm(), "/dev/kvm is not usable");
	return start_full(guest, mem, vcpus, NULL, &spec);
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Wait until the guest has reported at least @units work units. */
static void wait_units(struct vm *vm, uint64_t units)
{
	for (int i = 0; i < 1000 && devwin_units(&vm->dw) < units; i++)
		sleep_ms(10);
	assert_true(devwin_units(&vm->dw) >= units);
}

static const struct hm_bootinfo *boot(struct vm *vm)
{
	return mem_gpa_to_hva(&vm->mem, HM_BOOTINFO_GPA, sizeof(struct hm_bootinfo));
}

static uint64_t *ws_page(struct vm *vm, uint64_t idx)
{
	return mem_gpa_to_hva(&vm->mem, boot(vm)->ws_gpa + idx * HM_PAGE_SIZE, HM_PAGE_SIZE);
}

static uint64_t gen_of(struct vm *vm, uint64_t idx)
{
	const uint64_t *gen = mem_gpa_to_hva(&vm->mem, boot(vm)->gen_gpa, 8 * (idx + 1));

	return __atomic_load_n(&gen[idx], __ATOMIC_RELAXED);
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void test_vm_idle_verifies_without_spinning(void **state)
{
	struct vm *vm = start("idle", 64 << 20, 2);
	struct devwin_verdict v;
	uint64_t c0;

	(void)state;
	sleep_ms(100);
	c0 = cpu_ns();
	sleep_ms(1000);
	/* two idle vCPUs for one second: far below one core */
	assert_true(cpu_ns() - c0 < 200000000ULL);
	v = verify(vm);
	assert_int_equal(v.err, 0);
	assert_true(v.ok);
	assert_int_equal(vm_get_state(vm), VM_RUNNING);
	vm_free(vm);
}

static void test_vm_dirtier_progress_grows_and_verifies(void **state)
{
	struct vm *vm = start("dirtier:wss=8M", 256 << 20, 1);
	struct devwin_verdict v;
	uint64_t u1;

	(void)state;
	wait_units(vm, 1);
	u1 = devwin_units(&vm->dw);
	wait_units(vm, u1 + 10000);
	v = verify(vm);
	assert_int_equal(v.err, 0);
	assert_true(v.ok);
	assert_int_equal(v.bad, 0);
	assert_int_equal(v.first_bad_gfn, HM_NO_PAGE);
	assert_int_equal(v.pages, 2048);
	/* it carries on writing after verify */
	u1 = devwin_units(&vm->dw);
	wait_units(vm, u1 + 10000);
	vm_free(vm);
}

static void test_vm_two_vcpus_zipf(void **state)
{
	struct vm *vm = start("dirtier:wss=8M,pattern=zipf", 256 << 20, 2);
	struct devwin_verdict v;

	(void)state;
	wait_units(vm, 50000);
	assert_true(vm->dw.cpu[0].units > 0 && vm->dw.cpu[1].units > 0);
	v = verify(vm);
	assert_true(v.ok);
	assert_int_equal(v.pages, 2048);
	vm_free(vm);
}

/*
 * prefill=1: every page of the working set written once at full speed, then
 * pages at the rate, two vCPUs each owning half.
 */
static void test_vm_dirtier_prefill_then_rate(void **state)
{
	struct vm *vm = start("dirtier:wss=8M,rate=500,pattern=random,prefill=1", 256 << 20, 2);
	struct devwin_verdict v;
	uint64_t u1;
	uint64_t du;

	(void)state;
	wait_units(vm, 2048);
	for (uint64_t idx = 0; idx < 2048; idx++)
		if (gen_of(vm, idx) < 1)
			fail_msg("page %llu not written by the prefill", (unsigned long long)idx);
	u1 = devwin_units(&vm->dw);
	sleep_ms(2000);
	du = devwin_units(&vm->dw) - u1;
	/* 1000 in 2 s: the rate, not full speed (millions), give or take a report */
	if (du < 500 || du > 2000)
		fail_msg("%llu pages in 2 s after the prefill, want about 1000",
			 (unsigned long long)du);
	v = verify(vm);
	assert_true(v.ok);
	assert_int_equal(v.pages, 2048);
	vm_free(vm);
}

/* Slow writer: each of 1024 pages is rewritten about once a second. */
#define SLOW "dirtier:wss=4M,rate=1000"

static void test_vm_corrupt_page_is_reported(void **state)
{
	struct vm *vm = start(SLOW, 64 << 20, 1);
	uint64_t idx = 5;
	uint64_t gfn;
	uint64_t *p;
	struct devwin_verdict v;

	(void)state;
	wait_units(vm, idx + 1);
	assert_int_equal(vm_pause(vm), 0);
	assert_true(gen_of(vm, idx) > 0);
	p = ws_page(vm, idx);
	gfn = (boot(vm)->ws_gpa >> HM_PAGE_SHIFT) + idx;
	p[100] ^= 0x40; /* one bit in the body */
	assert_int_equal(vm_resume(vm), 0);
	v = verify(vm);
	assert_int_equal(v.err, 0);
	assert_false(v.ok);
	assert_int_equal(v.bad, 1);
	assert_int_equal(v.first_bad_gfn, gfn);
	vm_free(vm);
}

static void test_vm_stale_page_is_reported(void **state)
{
	struct vm *vm = start(SLOW, 64 << 20, 1);
	uint64_t old[HM_PAGE_WORDS];
	uint64_t idx = 7;
	uint64_t g;
	struct devwin_verdict v;

	(void)state;
	wait_units(vm, idx + 1);
	assert_int_equal(vm_pause(vm), 0);
	g = gen_of(vm, idx);
	assert_true(g > 0);
	memcpy(old, ws_page(vm, idx), sizeof(old));
	assert_true(hm_page_check(old, (boot(vm)->ws_gpa >> HM_PAGE_SHIFT) + idx, g));
	assert_int_equal(vm_resume(vm), 0);
	/* let the guest write a newer generation, then put the old one back */
	for (int i = 0; i < 300 && gen_of(vm, idx) == g; i++)
		sleep_ms(10);
	assert_int_equal(vm_pause(vm), 0);
	assert_true(gen_of(vm, idx) > g);
	memcpy(ws_page(vm, idx), old, sizeof(old));
	assert_int_equal(vm_resume(vm), 0);
	v = verify(vm);
	assert_false(v.ok);
	assert_int_equal(v.bad, 1);
	assert_int_equal(v.first_bad_gfn, (boot(vm)->ws_gpa >> HM_PAGE_SHIFT) + idx);
	vm_free(vm);
}

static void test_vm_io_device_writes_are_checked_and_tracked(void **state)
{
	struct vm *vm = start("dirtier:wss=4M,io=50", 64 << 20, 1);
	const struct hm_bootinfo *bi = boot(vm);
	struct iodev_stats st;
	struct devwin_verdict v;

	(void)state;
	for (int i = 0; i < 300 && devwin_io_seen(&vm->dw) < 2 * GUEST_IO_SLOTS; i++)
		sleep_ms(10);
	assert_true(devwin_io_seen(&vm->dw) >= 2 * GUEST_IO_SLOTS);
	iodev_get_stats(&vm->io, &st);
	assert_true(st.bytes >= 2 * GUEST_IO_SLOTS * HM_PAGE_SIZE);
	/* every ring page and the control page are in the device-dirty bitmap */
	assert_true(bitmap_test(&vm->dev_dirty, bi->io_ctl_gpa >> HM_PAGE_SHIFT));
	for (uint64_t s = 0; s < bi->io_slots; s++)
		assert_true(bitmap_test(&vm->dev_dirty, (bi->io_ring_gpa >> HM_PAGE_SHIFT) + s));
	assert_false(bitmap_test(&vm->dev_dirty, bi->ws_gpa >> HM_PAGE_SHIFT));
	v = verify(vm);
	assert_true(v.ok);
	vm_free(vm);
}

static void test_vm_io_stale_record_is_reported(void **state)
{
	struct vm *vm = start("dirtier:wss=4M,io=20", 64 << 20, 1);
	const struct hm_bootinfo *bi = boot(vm);
	struct hm_io_ctl *ctl = mem_gpa_to_hva(&vm->mem, bi->io_ctl_gpa, sizeof(*ctl));
	uint64_t slot;
	struct devwin_verdict v;

	(void)state;
	for (int i = 0; i < 300 && devwin_io_seen(&vm->dw) < 8; i++)
		sleep_ms(10);
	assert_int_equal(vm_pause(vm), 0);
	/* the device's next slot: roll it back as a lost DMA write would look */
	slot = ctl->prod % bi->io_slots;
	iodev_pause(&vm->io);
	hm_page_fill(mem_gpa_to_hva(&vm->mem, bi->io_ring_gpa + slot * HM_PAGE_SIZE, HM_PAGE_SIZE),
		     HM_IO_TAG | ((bi->io_ring_gpa >> HM_PAGE_SHIFT) + slot), 1);
	/* pretend the device published it */
	vm->io.seq++;
	ctl->prod = vm->io.seq;
	assert_int_equal(vm_resume(vm), 0);
	v = verify(vm);
	assert_false(v.ok);
	assert_true(v.bad >= 1);
	assert_int_equal(v.first_bad_gfn, (bi->io_ring_gpa >> HM_PAGE_SHIFT) + slot);
	vm_free(vm);
}

static void test_vm_pause_stops_everything(void **state)
{
	struct vm *vm = start("dirtier:wss=4M,io=20", 64 << 20, 2);
	struct iodev_stats a;
	struct iodev_stats b;
	uint64_t u;

	(void)state;
	wait_units(vm, 1000);
	assert_int_equal(vm_pause(vm), 0);
	assert_int_equal(vm_get_state(vm), VM_PAUSED);
	u = devwin_units(&vm->dw);
	iodev_get_stats(&vm->io, &a);
	sleep_ms(200);
	iodev_get_stats(&vm->io, &b);
	assert_int_equal(devwin_units(&vm->dw), u);
	assert_int_equal(a.records, b.records);
	assert_int_equal(vm_pause(vm), 0); /* idempotent */
	assert_int_equal(vm_resume(vm), 0);
	wait_units(vm, u + 1000);
	vm_free(vm);
}

static void expect_failure(const char *guest, const char *needle)
{
	struct vm *vm = start(guest, 64 << 20, 2);
	char msg[256];

	for (int i = 0; i < 500 && vm_get_state(vm) != VM_STOPPED; i++)
		sleep_ms(10);
	assert_int_equal(vm_get_state(vm), VM_STOPPED);
	assert_true(vm_error(vm, msg, sizeof(msg)) < 0);
	if (!strstr(msg, needle))
		fail_msg("error '%s' does not mention '%s'", msg, needle);
	vm_free(vm);
}

static void test_vm_guest_faults_are_reported(void **state)
{
	(void)state;
	expect_failure("fault:kind=ud", "triple-fault");
	expect_failure("fault:kind=pf", "triple-fault");
	expect_failure("fault:kind=mmio", "no memory or device backs");
	expect_failure("fault:kind=panic", "internal error");
}

static void test_vm_new_bad_kvm_device(void **state)
{
	struct guest_spec spec;
	struct vm_config cfg = { 0 };
	struct vm *vm = NULL;
	char why[256];

	(void)state;
	assert_int_equal(guest_spec_parse("idle", &spec, why, sizeof(why)), 0);
	cfg.mem_bytes = 64 << 20;
	cfg.nr_vcpus = 1;
	cfg.image = spec.type->image;
	cfg.image_size = (size_t)(spec.type->image_end - spec.type->image);
	assert_int_equal(guest_layout(&spec, cfg.mem_bytes, 1, &cfg.boot, why, sizeof(why)), 0);
	cfg.kvm_path = "/nonexistent/kvm";
	assert_int_equal(vm_new(&cfg, &vm, why, sizeof(why)), -ENOENT);
	assert_null(vm);
	assert_non_null(strstr(why, "does not exist"));
	cfg.kvm_path = "/dev/null";
	assert_true(vm_new(&cfg, &vm, why, sizeof(why)) < 0);
	assert_null(vm);
	assert_non_null(strstr(why, "not a usable KVM device"));
	cfg.nr_vcpus = 9;
	assert_int_equal(vm_new(&cfg, &vm, why, sizeof(why)), -EINVAL);
}

static void test_vm_large_ram_is_lazy(void **state)
{
	struct vm *vm = start("dirtier:wss=4M", 8ULL << 30, 1);

	(void)state;
	wait_units(vm, 2048);
	/* 8 GiB mapped; only page tables, image, stacks and the working set touched */
	assert_true(mem_resident_pages(&vm->mem) < 4096);
	vm_free(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_idle_verifies_without_spinning),
		cmocka_unit_test(test_vm_dirtier_progress_grows_and_verifies),
		cmocka_unit_test(test_vm_two_vcpus_zipf),
		cmocka_unit_test(test_vm_dirtier_prefill_then_rate),
		cmocka_unit_test(test_vm_corrupt_page_is_reported),
		cmocka_unit_test(test_vm_stale_page_is_reported),
		cmocka_unit_test(test_vm_io_device_writes_are_checked_and_tracked),
		cmocka_unit_test(test_vm_io_stale_record_is_reported),
		cmocka_unit_test(test_vm_pause_stops_everything),
		cmocka_unit_test(test_vm_guest_faults_are_reported),
		cmocka_unit_test(test_vm_new_bad_kvm_device),
		cmocka_unit_test(test_vm_large_ram_is_lazy),
	};

	return cmocka_run_group_tests_name("vm", tests, NULL, NULL);
}
