// SPDX-License-Identifier: MIT
/*
 * Dirty tracking on real KVM guests, over the dirty ring and the dirty log:
 * a dirtier writes its working set while the test pauses the VM, harvests,
 * and compares the working set with a copy taken at the previous harvest.
 * Every page whose bytes changed must be in the harvest (nothing lost), and
 * after a re-protecting harvest almost no unchanged page may be (exact: at
 * most one per vCPU, see check_ws). Also: the
 * ring is the default where KVM offers it, a full ring stops nothing and
 * loses nothing, the final harvest (no re-protection) loses nothing either,
 * collect-only harvests keep what they saw, and device writes merge in.
 */
#include "tests/helpers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "src/bitmap.h"
#include "src/dirty.h"
#include "src/dirtyring.h"
#include "src/guest.h"
#include "src/vcpu.h"
#include "src/vm.h"

/* 4096 pages, ~1000 of them rewritten per 50 ms interval: changed and unchanged ones */
#define WRITER "dirtier:wss=16M,rate=20000,pattern=random"
#define WS_MAX (64u << 20)

struct fixture {
	struct vm *vm;
	struct dirty d;
	struct bitmap bm;
	uint8_t *before; /* the working set at the previous harvest */
};

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static struct vm *make_vm(const char *guest, unsigned int vcpus, enum dirty_mode mode,
			  uint32_t entries)
{
	struct guest_spec spec;
	struct vm_config cfg = { 0 };
	struct vm *vm = NULL;
	char why[256];

	hm_skip_unless("kvm", hm_have_kvm(), "/dev/kvm is not usable");
	if (mode == DIRTY_RING)
		hm_skip_unless("dirty-ring", dirty_ring_offered(NULL),
			       "KVM does not offer the dirty ring");
	assert_int_equal(guest_spec_parse(guest, &spec, why, sizeof(why)), 0);
	cfg.mem_bytes = 128 << 20;
	cfg.nr_vcpus = vcpus;
	cfg.image = spec.type->image;
	cfg.image_size = (size_t)(spec.type->image_end - spec.type->image);
	cfg.io_rate = spec.io_mbps * 1000000;
	cfg.dirty = mode;
	cfg.ring_entries = entries;
	assert_int_equal(guest_layout(&spec, cfg.mem_bytes, vcpus, &cfg.boot, why, sizeof(why)), 0);
	assert_int_equal(vcpu_signal_setup(), 0);
	if (vm_new(&cfg, &vm, why, sizeof(why)))
		fail_msg("vm_new: %s", why);
	return vm;
}

static const struct hm_bootinfo *boot(struct vm *vm)
{
	return mem_gpa_to_hva(&vm->mem, HM_BOOTINFO_GPA, sizeof(struct hm_bootinfo));
}

static uint8_t *ws(struct vm *vm)
{
	return mem_gpa_to_hva(&vm->mem, boot(vm)->ws_gpa, boot(vm)->ws_pages * HM_PAGE_SIZE);
}

static void setup(struct fixture *f, const char *guest, unsigned int vcpus, enum dirty_mode mode,
		  uint32_t entries)
{
	memset(f, 0, sizeof(*f));
	f->vm = make_vm(guest, vcpus, mode, entries);
	assert_int_equal(bitmap_init(&f->bm, f->vm->mem.pages), 0);
	f->before = malloc(WS_MAX);
	assert_non_null(f->before);
	assert_true(boot(f->vm)->ws_pages * HM_PAGE_SIZE <= WS_MAX);
	assert_int_equal(vm_start(f->vm), 0);
	sleep_ms(100); /* the guest runs and writes */
}

static void teardown(struct fixture *f)
{
	dirty_stop(&f->d);
	vm_free(f->vm);
	bitmap_exit(&f->bm);
	free(f->before);
}

/* Pause and harvest into a cleared f->bm: re-protecting, or the final harvest. */
static int64_t pause_and_harvest(struct fixture *f, bool final)
{
	int64_t n;

	assert_int_equal(vm_pause(f->vm), 0);
	bitmap_zero(&f->bm);
	n = final ? dirty_harvest_final(&f->d, &f->bm) : dirty_harvest(&f->d, &f->bm);
	assert_true(n >= 0);
	return n;
}

static void snapshot(struct fixture *f)
{
	memcpy(f->before, ws(f->vm), boot(f->vm)->ws_pages * HM_PAGE_SIZE);
}

/*
 * Every working-set page that changed since the snapshot is in f->bm; with
 * @exact, at most one unchanged page per vCPU is. That one is no error: a
 * pause can stop a vCPU between KVM logging its write (the write-protect
 * fault, or the ring push) and the store itself, or after a store of bytes
 * the page already held; each vCPU has one such write in flight at most. A
 * harvest that kept or invented pages would show many more. Returns the
 * number that changed.
 */
static uint64_t check_ws(struct fixture *f, bool exact)
{
	uint64_t first = boot(f->vm)->ws_gpa >> HM_PAGE_SHIFT;
	uint64_t changed = 0;
	uint64_t spurious = 0;

	for (uint64_t i = 0; i < boot(f->vm)->ws_pages; i++) {
		bool diff = memcmp(f->before + i * HM_PAGE_SIZE, ws(f->vm) + i * HM_PAGE_SIZE,
				   HM_PAGE_SIZE) != 0;
		bool seen = bitmap_test(&f->bm, first + i);

		changed += diff;
		if (diff && !seen)
			fail_msg("working-set page %llu changed but no harvest saw it",
				 (unsigned long long)i);
		spurious += seen && !diff;
	}
	if (exact && spurious > f->vm->nr_vcpus)
		fail_msg("%llu working-set pages did not change but were harvested (%u vCPUs)",
			 (unsigned long long)spurious, f->vm->nr_vcpus);
	return changed;
}

/* Three intervals of writes, each harvested and checked. */
static void intervals(enum dirty_mode mode)
{
	struct fixture f;

	setup(&f, WRITER, 2, mode, 0);
	assert_int_equal(dirty_start(&f.d, f.vm), 0);
	pause_and_harvest(&f, false);
	snapshot(&f);
	for (int i = 0; i < 3; i++) {
		uint64_t changed;

		assert_int_equal(vm_resume(f.vm), 0);
		sleep_ms(50);
		pause_and_harvest(&f, false);
		changed = check_ws(&f, true);
		/* some pages changed and some did not: the check means something */
		assert_true(changed > 0 && changed < boot(f.vm)->ws_pages);
		snapshot(&f);
	}
	teardown(&f);
}

static void test_dirty_ring_intervals(void **state)
{
	(void)state;
	intervals(DIRTY_RING);
}

static void test_dirty_log_intervals(void **state)
{
	(void)state;
	intervals(DIRTY_LOG);
}

static void test_dirty_ring_is_the_default(void **state)
{
	struct vm *vm = make_vm("idle", 2, DIRTY_AUTO, 0);
	bool offered = dirty_ring_offered(NULL);

	(void)state;
	assert_int_equal(vm->dirty_ring, offered);
	assert_string_equal(dirty_tracking_name(vm), offered ? "dirty-ring" : "dirty-log");
	if (offered) {
		assert_int_equal(vm->ring_entries, DIRTYRING_DEFAULT_ENTRIES);
		for (unsigned int i = 0; i < vm->nr_vcpus; i++)
			assert_non_null(vm->vcpus[i]->ring);
	}
	vm_free(vm);
	vm = make_vm("idle", 1, DIRTY_LOG, 0);
	assert_false(vm->dirty_ring);
	assert_string_equal(dirty_tracking_name(vm), "dirty-log");
	assert_null(vm->vcpus[0]->ring);
	vm_free(vm);
}

static void test_dirty_mode_parse(void **state)
{
	enum dirty_mode m = DIRTY_LOG;

	(void)state;
	assert_int_equal(dirty_mode_parse("auto", &m), 0);
	assert_int_equal(m, DIRTY_AUTO);
	assert_int_equal(dirty_mode_parse("ring", &m), 0);
	assert_int_equal(m, DIRTY_RING);
	assert_int_equal(dirty_mode_parse("log", &m), 0);
	assert_int_equal(m, DIRTY_LOG);
	assert_int_equal(dirty_mode_parse("Ring", &m), -EINVAL);
	assert_int_equal(dirty_mode_parse("", &m), -EINVAL);
	assert_int_equal(m, DIRTY_LOG);
}

static void test_dirty_ring_bad_size_is_refused(void **state)
{
	struct guest_spec spec;
	struct vm_config cfg = { 0 };
	struct vm *vm = NULL;
	char why[256];

	(void)state;
	hm_skip_unless("kvm", hm_have_kvm(), "/dev/kvm is not usable");
	hm_skip_unless("dirty-ring", dirty_ring_offered(NULL), "KVM does not offer the dirty ring");
	assert_int_equal(guest_spec_parse("idle", &spec, why, sizeof(why)), 0);
	cfg.mem_bytes = 128 << 20;
	cfg.nr_vcpus = 1;
	cfg.image = spec.type->image;
	cfg.image_size = (size_t)(spec.type->image_end - spec.type->image);
	assert_int_equal(guest_layout(&spec, cfg.mem_bytes, 1, &cfg.boot, why, sizeof(why)), 0);
	cfg.dirty = DIRTY_RING;
	cfg.ring_entries = 3000; /* not a power of two */
	assert_int_equal(vm_new(&cfg, &vm, why, sizeof(why)), -EINVAL);
	assert_null(vm);
	assert_non_null(strstr(why, "power of two"));
}

/*
 * A small ring and a writer far faster than it: the vCPUs stop with
 * KVM_EXIT_DIRTY_RING_FULL, empty their rings into the pending set and run
 * on; the harvest still holds every page that changed.
 */
static void test_dirty_ring_full_loses_nothing(void **state)
{
	struct fixture f;
	uint64_t full = 0;

	(void)state;
	/* 16384 pages: each vCPU dirties far more distinct pages than its ring holds */
	setup(&f, "dirtier:wss=64M,pattern=random", 2, DIRTY_RING, 2048);
	assert_int_equal(dirty_start(&f.d, f.vm), 0);
	pause_and_harvest(&f, false);
	snapshot(&f);
	assert_int_equal(vm_resume(f.vm), 0);
	/* until a ring has filled (at once on KVM, later on a slow nested host), 10 s at most */
	for (int t = 0; t < 200 && !full; t++) {
		sleep_ms(50);
		for (unsigned int i = 0; i < f.vm->nr_vcpus; i++)
			full += __atomic_load_n(&f.vm->vcpus[i]->ring_full, __ATOMIC_RELAXED);
	}
	assert_true(full > 0);
	sleep_ms(100); /* and a few more fills, with the harvest below racing none of them */
	pause_and_harvest(&f, false);
	check_ws(&f, true);
	assert_int_equal(vm_get_state(f.vm), VM_PAUSED);
	teardown(&f);
}

/*
 * The final harvest re-protects nothing, so it is only a look: a later
 * harvest sees its pages again with the ones written since, and tracking
 * can stop and start again afterwards.
 */
static void final_then_more(enum dirty_mode mode)
{
	struct fixture f;

	setup(&f, WRITER, 2, mode, 0);
	assert_int_equal(dirty_start(&f.d, f.vm), 0);
	pause_and_harvest(&f, false);
	snapshot(&f);
	assert_int_equal(vm_resume(f.vm), 0);
	sleep_ms(50);
	pause_and_harvest(&f, true);
	check_ws(&f, true);
	assert_int_equal(vm_resume(f.vm), 0);
	sleep_ms(50);
	/* everything since the last re-protecting harvest: both intervals */
	pause_and_harvest(&f, false);
	check_ws(&f, false);
	dirty_stop(&f.d);
	assert_int_equal(vm_resume(f.vm), 0);
	sleep_ms(50);
	assert_int_equal(dirty_start(&f.d, f.vm), 0);
	pause_and_harvest(&f, false);
	snapshot(&f);
	assert_int_equal(vm_resume(f.vm), 0);
	sleep_ms(50);
	pause_and_harvest(&f, false);
	check_ws(&f, true);
	teardown(&f);
}

static void test_dirty_ring_final_harvest(void **state)
{
	(void)state;
	final_then_more(DIRTY_RING);
}

static void test_dirty_log_final_harvest(void **state)
{
	(void)state;
	final_then_more(DIRTY_LOG);
}

/* Post-copy's scan: pages stay dirty once seen, even when the caller cleared its copy. */
static void collect_only(enum dirty_mode mode)
{
	struct fixture f;

	setup(&f, WRITER, 1, mode, 0);
	assert_int_equal(vm_pause(f.vm), 0);
	snapshot(&f);
	assert_int_equal(dirty_start_collect(&f.d, f.vm), 0);
	if (!f.d.collect_only) {
		teardown(&f);
		hm_skip_unless("manual-protect", false,
			       "KVM lacks KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2");
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vm_resume(f.vm), 0);
		sleep_ms(30);
		pause_and_harvest(&f, false);
	}
	assert_int_equal(vm_resume(f.vm), 0);
	sleep_ms(30);
	pause_and_harvest(&f, true);
	check_ws(&f, false);
	teardown(&f);
}

static void test_dirty_ring_collect_only(void **state)
{
	(void)state;
	collect_only(DIRTY_RING);
}

static void test_dirty_log_collect_only(void **state)
{
	(void)state;
	collect_only(DIRTY_LOG);
}

/* Pages the VMM's devices wrote (invisible to KVM) come with the harvest. */
static void device_writes(enum dirty_mode mode)
{
	struct fixture f;
	uint64_t gfn =
	    (64u << 20) / HM_PAGE_SIZE - 1; /* the last page: the guest never writes it */

	setup(&f, "idle", 1, mode, 0);
	assert_int_equal(dirty_start(&f.d, f.vm), 0);
	pause_and_harvest(&f, false);
	assert_false(bitmap_test(&f.bm, gfn));
	bitmap_set(&f.vm->dev_dirty, gfn);
	assert_int_equal(pause_and_harvest(&f, false) >= 1, 1);
	assert_true(bitmap_test(&f.bm, gfn));
	bitmap_set(&f.vm->dev_dirty, gfn);
	pause_and_harvest(&f, true);
	assert_true(bitmap_test(&f.bm, gfn));
	teardown(&f);
}

static void test_dirty_ring_device_writes(void **state)
{
	(void)state;
	device_writes(DIRTY_RING);
}

static void test_dirty_log_device_writes(void **state)
{
	(void)state;
	device_writes(DIRTY_LOG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dirty_mode_parse),
		cmocka_unit_test(test_dirty_ring_is_the_default),
		cmocka_unit_test(test_dirty_ring_bad_size_is_refused),
		cmocka_unit_test(test_dirty_ring_intervals),
		cmocka_unit_test(test_dirty_log_intervals),
		cmocka_unit_test(test_dirty_ring_full_loses_nothing),
		cmocka_unit_test(test_dirty_ring_final_harvest),
		cmocka_unit_test(test_dirty_log_final_harvest),
		cmocka_unit_test(test_dirty_ring_collect_only),
		cmocka_unit_test(test_dirty_log_collect_only),
		cmocka_unit_test(test_dirty_ring_device_writes),
		cmocka_unit_test(test_dirty_log_device_writes),
	};

	return cmocka_run_group_tests_name("dirty", tests, NULL, NULL);
}
