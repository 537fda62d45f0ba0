// SPDX-License-Identifier: MIT
/*
 * bench_hostwrite: the host-side baseline of `make bench`'s vmm set. One thread
 * does exactly the dirtier guest's writes (guest/dirtier.c, pattern=seq,
 * rate=0): hm_page_fill() of each page of a working set in turn, plus the
 * 8-byte store to the generation table, over an anonymous mapping that is
 * pre-touched first so it is as warm as the guest's working set.
 *
 * usage: bench_hostwrite WSS_BYTES T1_S T2_S
 * Writes from t=0 to t=T2 and counts the pages written between T1 and T2,
 * the same window the benchmark samples in the guest. Prints one line:
 *   pages=N seconds=S pages_per_s=R
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "guest/page.h"

#define PAGE_SIZE (HM_PAGE_WORDS * sizeof(uint64_t))

struct hostwrite {
	uint64_t *ws;	 /* working set, @count pages */
	uint64_t *gen;	 /* generation table, one word per page */
	uint64_t count;	 /* pages in the working set */
	uint64_t cursor; /* seq pattern position */
	uint64_t units;	 /* pages written */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Same as the guest's write_one() with pattern=seq. */
static void write_one(struct hostwrite *h)
{
	uint64_t idx;
	uint64_t g;

	if (++h->cursor >= h->count)
		h->cursor = 0;
	idx = h->cursor;
	g = h->gen[idx] + 1;
	hm_page_fill(h->ws + idx * HM_PAGE_WORDS, idx, g);
	h->gen[idx] = g;
	h->units++;
}

/* Write until @until (monotonic seconds); checks the clock every 16 pages. */
static void write_until(struct hostwrite *h, double until)
{
	while (now_s() < until)
		for (int i = 0; i < 16; i++)
			write_one(h);
}

static void *map_warm(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, len); /* first touch now, outside the measured window */
	return p;
}

int main(int argc, char **argv)
{
	struct hostwrite h = { 0 };
	double t0;
	double t1;
	double t2;
	uint64_t u1;

	if (argc != 4) {
		fprintf(stderr, "usage: %s WSS_BYTES T1_S T2_S\n", argv[0]);
		return 2;
	}
	h.count = strtoull(argv[1], NULL, 0) / PAGE_SIZE;
	t1 = atof(argv[2]);
	t2 = atof(argv[3]);
	if (!h.count || t1 < 0 || t2 <= t1) {
		fprintf(stderr, "bench_hostwrite: bad arguments\n");
		return 2;
	}
	h.ws = map_warm(h.count * PAGE_SIZE);
	h.gen = map_warm(h.count * sizeof(uint64_t));
	if (!h.ws || !h.gen) {
		perror("bench_hostwrite: mmap");
		return 1;
	}
	h.cursor = h.count - 1;
	t0 = now_s();
	write_until(&h, t0 + t1);
	u1 = h.units;
	t1 = now_s();
	write_until(&h, t0 + t2);
	t2 = now_s();
	/* a cheap check that the compiler kept every write */
	if (!hm_page_check(h.ws + h.cursor * HM_PAGE_WORDS, h.cursor, h.gen[h.cursor])) {
		fprintf(stderr, "bench_hostwrite: page %lu fails its check\n",
			(unsigned long)h.cursor);
		return 1;
	}
	printf("pages=%lu seconds=%.6f pages_per_s=%.0f\n", (unsigned long)(h.units - u1), t2 - t1,
	       (h.units - u1) / (t2 - t1));
	return 0;
}
