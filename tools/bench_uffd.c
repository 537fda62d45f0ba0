// SPDX-License-Identifier: MIT
/*
 * The floor for post-copy fault latency: the local userfaultfd round trip,
 * in one process, through the same fault thread and placement code the
 * destination uses (uffd/fault.c). A reader thread touches N missing pages
 * one after the other; the request callback places each page at once.
 * Prints p50/p90/p99/max of fault -> placed and the reader's per-page time.
 * Built by `make bench` against the project's objects; tools/bench runs it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/bitmap.h"
#include "src/mem.h"
#include "src/util.h"
#include "uffd/fault.h"

#define PAGES 16384

static struct fault f;
static uint8_t data[4096];

static int place_now(void *arg, uint64_t gfn)
{
	(void)arg;
	return fault_place(&f, gfn, data);
}

static void *reader(void *arg)
{
	struct guest_mem *gm = arg;
	volatile uint64_t sum = 0;

	for (uint64_t i = 0; i < gm->pages; i++)
		sum += *(volatile uint64_t *)(gm->hva + i * 4096);
	(void)sum;
	return NULL;
}

int main(void)
{
	struct guest_mem gm;
	struct bitmap needed;
	struct fault_stats st;
	pthread_t t;
	uint64_t t0;
	uint64_t t1;

	memset(data, 0x5a, sizeof(data));
	if (mem_init(&gm, PAGES * 4096ULL) || bitmap_init(&needed, PAGES))
		return 1;
	bitmap_set_range(&needed, 0, PAGES);
	if (fault_init(&f, &gm, &needed, place_now, NULL) || fault_start(&f)) {
		fprintf(stderr, "bench_uffd: userfaultfd not usable\n");
		return 1;
	}
	t0 = hm_now_ns();
	pthread_create(&t, NULL, reader, &gm);
	pthread_join(t, NULL);
	t1 = hm_now_ns();
	fault_get_stats(&f, &st);
	printf("local uffd round trip (%u pages, 4 KiB each): per page %.1f us; "
	       "fault->placed p50 %u us, p90 %u us, p99 %u us, max %u us; %llu faults\n",
	       PAGES, (double)(t1 - t0) / 1e3 / PAGES, fault_latency_us(&f, 50),
	       fault_latency_us(&f, 90), fault_latency_us(&f, 99), fault_latency_us(&f, 100),
	       (unsigned long long)st.remote);
	fault_exit(&f);
	bitmap_exit(&needed);
	mem_exit(&gm);
	return 0;
}
