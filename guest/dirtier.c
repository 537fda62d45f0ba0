// SPDX-License-Identifier: MIT
/*
 * dirtier: writes self-checking pages of its working set at a set rate and
 * pattern, and on request proves that none of them was lost or went stale.
 *
 * Invariant (DESIGN.md): every page holds (gfn, generation, checksum); the
 * generation table holds the last generation written to each page; r15
 * holds the sum of this vCPU's table entries. A corrupt page fails its
 * checksum, a stale page (an older generation) disagrees with the table, and
 * a stale table disagrees with r15, which lives in vCPU state, not in RAM.
 * With several vCPUs each owns a contiguous share of the working set.
 * vCPU 0 also consumes the DMA device's I/O ring.
 */
#include "guest/rt.h"
#include "guest/page.h"

register uint64_t hm_sum __asm__("r15");

struct dirtier {
	const struct hm_bootinfo *bi;
	uint64_t cpu;
	uint64_t first;	 /* first working-set index of this vCPU's share */
	uint64_t count;	 /* pages in the share */
	uint64_t *gen;	 /* generation table (whole working set) */
	uint64_t ws_gfn; /* gfn of working-set index 0 */
	uint64_t rng;
	uint64_t cursor;   /* seq pattern position */
	uint64_t prime;	   /* zipf rank -> page scramble, coprime with count */
	uint64_t units;	   /* pages written */
	uint64_t filled;   /* prefill: pages of the share written in order so far */
	uint64_t io_seen;  /* I/O records consumed */
	uint64_t tick_ns;  /* TSC ticks per report interval */
	uint64_t per_page; /* TSC ticks per page, 0 = unlimited */
	uint64_t t0;	   /* rate clock origin */
	uint64_t paid;	   /* pages accounted against t0 */
	uint64_t last;	   /* TSC at the previous step */
	uint64_t gap;	   /* longest TSC jump between two steps, blocking excluded */
	int blocked;	   /* this step asked the VMM to block it */
};

static uint64_t rnd(struct dirtier *d)
{
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return d->rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t log2_floor(uint64_t v)
{
	return 63 - (uint64_t)__builtin_clzll(v);
}

/* Zipf-like (s ~ 1): a log-uniform rank, so rank r is hit ~1/r as often. */
static uint64_t pick_zipf(struct dirtier *d)
{
	uint64_t k = rnd(d) % (log2_floor(d->count) + 1);
	uint64_t rank = ((1ULL << k) - 1) + rnd(d) % (1ULL << k);

	if (rank >= d->count)
		rank %= d->count;
	return (rank * d->prime) % d->count;
}

static uint64_t pick(struct dirtier *d)
{
	switch (d->bi->pattern) {
	case HM_PATTERN_RANDOM:
		return rnd(d) % d->count;
	case HM_PATTERN_ZIPF:
		return pick_zipf(d);
	default:
		if (++d->cursor >= d->count)
			d->cursor = 0;
		return d->cursor;
	}
}

static uint64_t *ws_page(struct dirtier *d, uint64_t idx)
{
	return (uint64_t *)(d->bi->ws_gpa + idx * HM_PAGE_SIZE);
}

static void write_idx(struct dirtier *d, uint64_t idx)
{
	uint64_t g = d->gen[idx] + 1;

	hm_page_fill(ws_page(d, idx), d->ws_gfn + idx, g);
	d->gen[idx] = g;
	hm_sum++;
	d->units++;
}

static void write_one(struct dirtier *d)
{
	write_idx(d, d->first + pick(d));
}

/*
 * prefill=1: the share's pages in order at full speed, 16 per step, before
 * the pattern at `rate` (how migration comparisons set a working set up);
 * the rate clock starts once the last one is written.
 */
static void prefill(struct dirtier *d)
{
	for (uint64_t n = 0; n < 16 && d->filled < d->count; n++)
		write_idx(d, d->first + d->filled++);
	if (d->filled == d->count) {
		d->t0 = hm_rdtsc();
		d->paid = 0;
	}
}

static void note_bad(uint64_t *bad, uint64_t *first, uint64_t gfn)
{
	(*bad)++;
	if (gfn < *first)
		*first = gfn;
}

static int io_record_ok(const struct hm_bootinfo *bi, uint64_t seq)
{
	uint64_t slot = seq % bi->io_slots;
	uint64_t gpa = bi->io_ring_gpa + slot * HM_PAGE_SIZE;

	return hm_page_check((const uint64_t *)gpa, HM_IO_TAG | (gpa >> HM_PAGE_SHIFT), seq + 1);
}

static uint64_t io_slot_gfn(const struct hm_bootinfo *bi, uint64_t seq)
{
	return (bi->io_ring_gpa >> HM_PAGE_SHIFT) + seq % bi->io_slots;
}

/* Check and consume up to @max published I/O records (vCPU 0 only). */
static void io_consume(struct dirtier *d, uint64_t max)
{
	struct hm_io_ctl *ctl = (struct hm_io_ctl *)d->bi->io_ctl_gpa;
	uint64_t prod = ctl->prod;
	uint64_t cons = ctl->cons;
	uint64_t bad = ctl->bad;
	uint64_t first = bad ? ctl->first_bad_gfn : HM_NO_PAGE;

	barrier();
	while (cons < prod && max--) {
		if (!io_record_ok(d->bi, cons))
			note_bad(&bad, &first, io_slot_gfn(d->bi, cons));
		cons++;
		d->io_seen++;
	}
	ctl->bad = bad;
	ctl->first_bad_gfn = first;
	barrier();
	ctl->cons = cons;
}

static void verify_io(struct dirtier *d, uint64_t *bad, uint64_t *first, uint64_t *pages)
{
	const struct hm_io_ctl *ctl = (const struct hm_io_ctl *)d->bi->io_ctl_gpa;
	uint64_t prod = ctl->prod;

	barrier();
	/* published but not consumed: the device will not touch these now */
	for (uint64_t seq = ctl->cons; seq < prod; seq++, (*pages)++)
		if (!io_record_ok(d->bi, seq))
			note_bad(bad, first, io_slot_gfn(d->bi, seq));
	/* consumed earlier: counted when they were checked */
	*bad += ctl->bad;
	if (ctl->bad && ctl->first_bad_gfn < *first)
		*first = ctl->first_bad_gfn;
}

static void verify(struct dirtier *d)
{
	uint64_t bad = 0;
	uint64_t first = HM_NO_PAGE;
	uint64_t pages = 0;
	uint64_t sum = 0;

	for (uint64_t idx = d->first; idx < d->first + d->count; idx++, pages++) {
		sum += d->gen[idx];
		if (!hm_page_check(ws_page(d, idx), d->ws_gfn + idx, d->gen[idx]))
			note_bad(&bad, &first, d->ws_gfn + idx);
	}
	/* the table disagrees with the register: blame the share's table page */
	if (sum != hm_sum)
		note_bad(&bad, &first, (d->bi->gen_gpa >> HM_PAGE_SHIFT) + d->first / 512);
	if (d->cpu == 0 && d->bi->io_slots)
		verify_io(d, &bad, &first, &pages);
	hm_reg_write(HM_REG_V_BAD, bad);
	hm_reg_write(HM_REG_V_FIRST, first);
	hm_reg_write(HM_REG_V_PAGES, pages);
	hm_reg_write(HM_REG_V_DONE, bad ? HM_VERIFY_BAD : HM_VERIFY_OK);
}

/* Report progress and fetch the next command. */
static uint64_t report(struct dirtier *d)
{
	hm_reg_write(HM_REG_TSC_GAP, d->gap);
	hm_reg_write(HM_REG_PROGRESS, d->units);
	if (d->bi->io_slots && d->cpu == 0)
		hm_reg_write(HM_REG_IO_SEEN, d->io_seen);
	return hm_reg_read(HM_REG_POLL);
}

/* Pages allowed now by the rate; blocks or spins when ahead. Returns a command. */
static uint64_t pace(struct dirtier *d, uint64_t *budget)
{
	uint64_t now = hm_rdtsc();
	uint64_t due = (now - d->t0) / d->per_page;
	uint64_t wait;

	if (due > d->paid + 64 + d->tick_ns / d->per_page) {
		/* far behind (we were paused): do not burst to catch up */
		d->t0 = now - d->paid * d->per_page;
		due = d->paid;
	}
	if (due > d->paid) {
		*budget = due - d->paid;
		if (*budget > 64)
			*budget = 64;
		d->paid += *budget;
		return HM_CMD_RUN;
	}
	*budget = 0;
	wait = d->t0 + (d->paid + 1) * d->per_page - now;
	if (wait * 1000000 / d->bi->tsc_khz > 200000) {
		hm_reg_write(HM_REG_PROGRESS, d->units);
		d->blocked = 1;
		return hm_block(wait * 1000000 / d->bi->tsc_khz);
	}
	hm_cpu_relax();
	return HM_CMD_RUN;
}

static void setup(struct dirtier *d, uint64_t cpu, const struct hm_bootinfo *bi)
{
	uint64_t lo = cpu * bi->ws_pages / bi->nr_vcpus;
	uint64_t hi = (cpu + 1) * bi->ws_pages / bi->nr_vcpus;
	uint64_t rate = bi->rate / bi->nr_vcpus;
	uint64_t tsc_hz = bi->tsc_khz * 1000;

	d->bi = bi;
	d->cpu = cpu;
	d->first = lo;
	d->count = hi - lo;
	d->gen = (uint64_t *)bi->gen_gpa;
	d->ws_gfn = bi->ws_gpa >> HM_PAGE_SHIFT;
	d->rng = hm_mix64(bi->seed ^ (cpu + 1)) | 1;
	d->cursor = d->count ? d->count - 1 : 0;
	d->prime = 2147483647ULL;
	while (d->count && d->count % d->prime == 0)
		d->prime -= 2;
	d->tick_ns = hm_ns_to_tsc(bi, bi->report_ns);
	d->per_page = bi->rate ? tsc_hz / (rate ? rate : 1) : 0;
	if (bi->rate && !d->per_page)
		d->per_page = 1;
	d->t0 = hm_rdtsc();
}

/* The guest's own clock: how far did the TSC jump between two steps? */
static void step(struct dirtier *d, int waited)
{
	uint64_t now = hm_rdtsc();

	if (!waited && d->last && now - d->last > d->gap)
		d->gap = now - d->last;
	d->last = now;
}

static uint64_t handle(struct dirtier *d, uint64_t cmd)
{
	if (cmd == HM_CMD_VERIFY) {
		verify(d);
		d->t0 = hm_rdtsc() - d->paid * (d->per_page ? d->per_page : 1);
	}
	return cmd;
}

/* This step's writes of the pattern (@budget pages) and the command it brought. */
static uint64_t plan(struct dirtier *d, uint64_t *budget)
{
	*budget = 16;
	if (d->bi->prefill && d->filled < d->count) {
		prefill(d);
		*budget = 0;
		return HM_CMD_RUN;
	}
	if (d->bi->fill && d->units >= d->count) {
		/* filled: idle from now on, still answering commands */
		hm_reg_write(HM_REG_PROGRESS, d->units);
		d->blocked = 1;
		*budget = 0;
		return hm_block(1000000000ULL);
	}
	return d->per_page ? pace(d, budget) : HM_CMD_RUN;
}

uint64_t hm_main(uint64_t cpu, const struct hm_bootinfo *bi)
{
	struct dirtier d = { 0 };
	uint64_t next;

	hm_sum = 0;
	setup(&d, cpu, bi);
	if (!d.count) {
		/* more vCPUs than pages: nothing to own, still answer verify */
		while (handle(&d, hm_block(1000000000ULL)) != HM_CMD_STOP)
			;
		return 0;
	}
	next = d.t0 + d.tick_ns;
	for (;;) {
		uint64_t budget;
		uint64_t cmd = plan(&d, &budget);
		int waited;

		waited = d.blocked || cmd != HM_CMD_RUN;
		d.blocked = 0;
		while (budget--)
			write_one(&d);
		if (cpu == 0 && bi->io_slots)
			io_consume(&d, 16);
		if (cmd == HM_CMD_RUN && hm_rdtsc() >= next) {
			next = hm_rdtsc() + d.tick_ns;
			cmd = report(&d);
		}
		if (handle(&d, cmd) == HM_CMD_STOP)
			return 0;
		step(&d, waited || cmd != HM_CMD_RUN);
	}
}
