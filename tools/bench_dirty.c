// SPDX-License-Identifier: MIT
/*
 * bench_dirty: what a harvest costs on KVM's dirty ring and on its dirty
 * log, and what tracking costs the guest (tools/bench-dirty.sh builds and
 * runs it; figures, not a test).
 *
 * For each mechanism, one VM of MEM bytes runs the dirtier guest writing
 * a WSS working set as fast as it can (pattern seq, 1 vCPU), and:
 *
 *  1. rate: guest pages written per second untracked, then tracked with a
 *     re-protecting harvest every 100 ms (as pre-copy rounds do), with the
 *     harvest's time and pages (so ns per page while the guest runs);
 *  2. switch: REPS times, the guest runs 250 ms (long enough to dirty its
 *     whole working set after a re-protection), is paused, and either a
 *     re-protecting harvest (dirty_harvest) or the last harvest of a switch
 *     (dirty_harvest_final) is timed, alternately; the median of each;
 *  3. enabling (dirty_start) and disabling (dirty_stop) tracking.
 *
 * usage: bench_dirty [MEM_MIB [WSS_MIB [REPS]]]   (default 4096 64 7)
 * One line per figure: "<mechanism> <figure> <value> <unit> ..."
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "src/bitmap.h"
#include "src/dirty.h"
#include "src/guest.h"
#include "src/vcpu.h"
#include "src/vm.h"

#define MAX_REPS 64

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

static struct vm *make_vm(uint64_t mem, uint64_t wss, enum dirty_mode mode)
{
	struct guest_spec spec;
	struct vm_config cfg = { 0 };
	struct vm *vm = NULL;
	char g[64];
	char why[256];

	snprintf(g, sizeof(g), "dirtier:wss=%lluM", (unsigned long long)(wss >> 20));
	if (guest_spec_parse(g, &spec, why, sizeof(why)))
		goto fail;
	cfg.mem_bytes = mem;
	cfg.nr_vcpus = 1;
	cfg.image = spec.type->image;
	cfg.image_size = (size_t)(spec.type->image_end - spec.type->image);
	cfg.dirty = mode;
	if (guest_layout(&spec, mem, 1, &cfg.boot, why, sizeof(why)) || vcpu_signal_setup() ||
	    vm_new(&cfg, &vm, why, sizeof(why)))
		goto fail;
	if (vm_start(vm)) {
		snprintf(why, sizeof(why), "cannot start the VM");
		goto fail;
	}
	return vm;
fail:
	fprintf(stderr, "bench_dirty: %s\n", why);
	vm_free(vm);
	return NULL;
}

/* Guest pages written per second over @ms, harvesting every 100 ms when @d. */
static double guest_rate(struct vm *vm, struct dirty *d, struct bitmap *bm, unsigned int ms)
{
	uint64_t u0 = devwin_units(&vm->dw);
	uint64_t t0 = hm_now_ns();
	uint64_t hns = 0;
	uint64_t pages = 0;
	unsigned int n = 0;

	for (unsigned int t = 0; t < ms; t += 100, n++) {
		uint64_t h0;
		int64_t got;

		sleep_ms(100);
		if (!d)
			continue;
		bitmap_zero(bm);
		h0 = hm_now_ns();
		got = dirty_harvest(d, bm);
		hns += hm_now_ns() - h0;
		pages += got > 0 ? (uint64_t)got : 0;
	}
	if (d && pages)
		printf("%s running-harvest %.3f ms %llu pages %.1f ns/page (every 100 ms, mean)\n",
		       dirty_tracking_name(vm), (double)hns / n / 1e6,
		       (unsigned long long)(pages / n), (double)hns / (double)pages);
	return (double)(devwin_units(&vm->dw) - u0) * 1e9 / (double)(hm_now_ns() - t0);
}

/* One paused harvest after 250 ms of writes: its time in ns, its pages in *pages. */
static uint64_t paused_harvest(struct vm *vm, struct dirty *d, struct bitmap *bm, bool final,
			       uint64_t *pages)
{
	uint64_t t0;
	uint64_t ns;
	int64_t got;

	if (vm_resume(vm))
		return 0;
	sleep_ms(250);
	if (vm_pause(vm))
		return 0;
	bitmap_zero(bm);
	t0 = hm_now_ns();
	got = final ? dirty_harvest_final(d, bm) : dirty_harvest(d, bm);
	ns = hm_now_ns() - t0;
	*pages = got > 0 ? (uint64_t)got : 0;
	return got < 0 ? 0 : ns;
}

static void switch_costs(struct vm *vm, struct dirty *d, struct bitmap *bm, unsigned int reps)
{
	uint64_t full[MAX_REPS];
	uint64_t fin[MAX_REPS];
	uint64_t pf = 0;
	uint64_t pl = 0;

	for (unsigned int i = 0; i < reps; i++) {
		full[i] = paused_harvest(vm, d, bm, false, &pf);
		fin[i] = paused_harvest(vm, d, bm, true, &pl);
	}
	printf("%s paused-harvest %.3f ms %llu pages (re-protecting, median of %u)\n",
	       dirty_tracking_name(vm), (double)median(full, reps) / 1e6, (unsigned long long)pf,
	       reps);
	printf("%s paused-final %.3f ms %llu pages (no re-protection, median of %u)\n",
	       dirty_tracking_name(vm), (double)median(fin, reps) / 1e6, (unsigned long long)pl,
	       reps);
	if (vm_resume(vm))
		fprintf(stderr, "bench_dirty: cannot resume\n");
}

static int bench(enum dirty_mode mode, uint64_t mem, uint64_t wss, unsigned int reps)
{
	struct vm *vm = make_vm(mem, wss, mode);
	struct dirty d = { 0 };
	struct bitmap bm = { 0 };
	int rc = 1;
	uint64_t t0;

	if (!vm || bitmap_init(&bm, vm->mem.pages))
		goto out;
	/* first touch of the working set is slow (nested): leave it out */
	while (devwin_units(&vm->dw) < 4 * (wss >> 12))
		sleep_ms(50);
	printf("%s untracked-rate %.0f pages/s\n", dirty_tracking_name(vm),
	       guest_rate(vm, NULL, &bm, 1000));
	t0 = hm_now_ns();
	if (dirty_start(&d, vm))
		goto out;
	printf("%s start %.3f ms\n", dirty_tracking_name(vm), (double)(hm_now_ns() - t0) / 1e6);
	printf("%s tracked-rate %.0f pages/s\n", dirty_tracking_name(vm),
	       guest_rate(vm, &d, &bm, 2000));
	switch_costs(vm, &d, &bm, reps);
	t0 = hm_now_ns();
	dirty_stop(&d);
	printf("%s stop %.3f ms\n", dirty_tracking_name(vm), (double)(hm_now_ns() - t0) / 1e6);
	rc = 0;
out:
	dirty_stop(&d);
	bitmap_exit(&bm);
	vm_free(vm);
	return rc;
}

int main(int argc, char **argv)
{
	uint64_t mem = (argc > 1 ? strtoull(argv[1], NULL, 10) : 4096) << 20;
	uint64_t wss = (argc > 2 ? strtoull(argv[2], NULL, 10) : 64) << 20;
	unsigned int reps = argc > 3 ? (unsigned int)strtoul(argv[3], NULL, 10) : 7;
	int rc = 0;

	if (!reps || reps > MAX_REPS || !wss || wss > mem / 2) {
		fprintf(stderr, "usage: bench_dirty [MEM_MIB [WSS_MIB [REPS (1-%d)]]]\n", MAX_REPS);
		return 2;
	}
	if (dirty_ring_offered(NULL))
		rc |= bench(DIRTY_RING, mem, wss, reps);
	else
		printf("dirty-ring not offered by KVM here\n");
	rc |= bench(DIRTY_LOG, mem, wss, reps);
	return rc;
}
