// SPDX-License-Identifier: MIT
/*
 * The probe (design in src/probe.h): the loader's choice between eBPF and
 * the harvest fallback, the epochs, the measuring thread and the samples.
 */
#define LOG_PREFIX "probe: "
#include "src/probe.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bpf/probe.h"
#include "src/bitmap.h"
#include "src/dirty.h"
#include "src/iodev.h"
#include "src/log.h"
#include "src/probe_bpf.h"
#include "src/vcpu.h"
#include "src/vm.h"

/* the fallback's harvest interval: the resolution of its curve */
#define HARVEST_NS (100 * NSEC_PER_MSEC)
/* fallback histogram: 41 s of 100 ms ticks */
#define FB_NTICKS	 410
#define EPOCH_MS_DEFAULT 10000
#define EPOCH_MS_MIN	 1000
#define EPOCH_MS_MAX	 40000
/* rates (vCPU run, DMA) over at least this long */
#define RATE_MIN_NS (500 * NSEC_PER_MSEC)
/* the BPF count is checked against the harvest once an epoch has this many pages */
#define CHECK_MIN_PAGES 64
/* an epoch at least this old supplies the hot regions itself */
#define HOT_MIN_NS (1 * NSEC_PER_SEC)

struct probe {
	struct vm *vm;	       /* not owned */
	pthread_mutex_t lock;  /* guards everything below */
	pthread_cond_t cond;   /* wakes the measuring thread (CLOCK_MONOTONIC) */
	struct probe_bpf *bpf; /* NULL: the harvest fallback */
	bool ring;	       /* the VM tracks with the dirty ring */
	char why[128];	       /* why there is no BPF */
	uint32_t epoch_ms;
	/* own measurement (probe_measure_start) */
	pthread_t thread;
	bool measuring; /* the thread runs */
	bool stop;
	int err; /* what stopped the measurement, -errno */
	struct dirty d;
	bool tracking;		/* d is started */
	struct bitmap uni;	/* pages the epoch's harvests found */
	struct bitmap devjunk;	/* device pages, drained before a harvest: not the guest's */
	uint64_t epoch_harvest; /* pages the epoch's harvests found */
	uint64_t last_harvest_ns;
	/* the live epoch: ours, or a migration's (probe_epoch) */
	uint64_t epoch_ns;	     /* start, 0 = none live */
	uint64_t fb_hist[FB_NTICKS]; /* fallback: new pages per 100 ms tick */
	uint64_t fb_covered_ns;	     /* fallback: time the histogram covers */
	struct wss_curve curve;
	struct wss_region hot[PROBE_NHOT]; /* of the last finished epoch */
	uint32_t nhot;
	double locality; /* of the last finished epoch (wss_locality) */
	uint64_t check_bpf, check_harvest;
	/* rates */
	clockid_t clk[HM_MAX_VCPUS]; /* vCPU thread CPU clocks */
	unsigned int nclk;
	uint64_t rate_t_ns, rate_run_ns, rate_dma;
	double run_frac, dma_rate;
	uint64_t mig_t_ns; /* fallback during a migration: its harvests' rate */
	double mig_rate;
	uint16_t port;
};

int probe_open(struct probe **out, struct vm *vm, char *why, size_t whylen)
{
	return probe_open_flags(out, vm, 0, why, whylen);
}

static int open_bpf(struct probe *p, unsigned int flags)
{
	int err;

	if (flags & PROBE_NO_BPF) {
		snprintf(p->why, sizeof(p->why), "BPF not wanted (--no-bpf)");
		return 0;
	}
	err = probe_bpf_open(&p->bpf, (uint32_t)getpid(), p->vm->mem.pages,
			     p->ring ? PROBE_BPF_RING : PROBE_BPF_SPTE, p->why, sizeof(p->why));
	if (err == -ENOMEM)
		return err;
	if (err)
		hm_warn("eBPF probe not loaded (%s): measuring from the VMM's harvest", p->why);
	return 0;
}

int probe_open_flags(struct probe **out, struct vm *vm, unsigned int flags, char *why,
		     size_t whylen)
{
	struct probe *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;
	int err = -ENOMEM;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->vm = vm;
	p->ring = vm->dirty_ring;
	p->epoch_ms = EPOCH_MS_DEFAULT;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (bitmap_init(&p->uni, vm->mem.pages) || bitmap_init(&p->devjunk, vm->mem.pages))
		goto out_close;
	err = open_bpf(p, flags);
	if (err)
		goto out_close;
	if (why)
		snprintf(why, whylen, "%s", p->bpf ? "" : p->why);
	*out = p;
	return 0;
out_close:
	probe_close(p);
	return err;
}

void probe_set_epoch_ms(struct probe *p, uint32_t ms)
{
	pthread_mutex_lock(&p->lock);
	p->epoch_ms = ms < EPOCH_MS_MIN ? EPOCH_MS_MIN : ms > EPOCH_MS_MAX ? EPOCH_MS_MAX : ms;
	pthread_mutex_unlock(&p->lock);
}

/* ---- vCPU run time and DMA ------------------------------------------------ */

/*
 * The vCPU threads' CPU clocks, once they run. A thread CPU clock id encodes
 * the thread id (~tid << 3 | flags, the kernel's posix-cpu-timers ABI), so
 * the same call names the threads for the BPF run-time map; a clock of a
 * thread that has exited just fails, where a pthread_t would dangle.
 */
static void find_vcpus(struct probe *p)
{
	struct vm *vm = p->vm;
	enum vm_state st = vm_get_state(vm);

	if (p->nclk || (st != VM_RUNNING && st != VM_PAUSED))
		return;
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		clockid_t c;
		int err;

		if (!vm->vcpus[i] || !vm->vcpus[i]->started)
			continue;
		err = pthread_getcpuclockid(vm->vcpus[i]->thread, &c);
		if (err) {
			hm_warn("vCPU %u: no thread CPU clock: %s", i, strerror(err));
			continue;
		}
		p->clk[p->nclk++] = c;
		if (p->bpf && probe_bpf_add_thread(p->bpf, (uint32_t) ~(c >> 3)))
			hm_dbg("vCPU %u: run time from its thread clock", i);
	}
}

static uint64_t run_ns(struct probe *p)
{
	int64_t bpf = p->bpf ? probe_bpf_run_ns(p->bpf) : -1;
	uint64_t sum = 0;

	if (bpf >= 0)
		return (uint64_t)bpf;
	for (unsigned int i = 0; i < p->nclk; i++) {
		struct timespec ts;

		/* fails once the thread has exited: it runs no more */
		if (!clock_gettime(p->clk[i], &ts))
			sum += (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
	}
	return sum;
}

static uint64_t dma_pages(struct probe *p)
{
	struct iodev_stats st = { 0 };

	/* one record is one page, marked in vm->dev_dirty */
	if (p->vm->has_io)
		iodev_get_stats(&p->vm->io, &st);
	return st.records;
}

static void rates(struct probe *p, uint64_t now)
{
	uint64_t run;
	uint64_t dma;

	if (p->rate_t_ns && now - p->rate_t_ns < RATE_MIN_NS)
		return;
	find_vcpus(p);
	run = run_ns(p);
	dma = dma_pages(p);
	if (p->rate_t_ns && run >= p->rate_run_ns) {
		double dt = (double)(now - p->rate_t_ns);

		p->run_frac = (double)(run - p->rate_run_ns) / dt;
		p->dma_rate = (double)(dma - p->rate_dma) * 1e9 / dt;
	}
	p->rate_t_ns = now;
	p->rate_run_ns = run;
	p->rate_dma = dma;
}

/* ---- epochs ------------------------------------------------------------- */

/* The live BPF epoch into the curve (windows it already covers). Returns its page count. */
static uint64_t bpf_to_curve(struct probe *p, uint64_t now)
{
	const uint64_t *h = probe_bpf_hist(p->bpf);

	wss_update(&p->curve, h, PROBE_BPF_NTICKS, PROBE_BPF_TICK_NS, now - p->epoch_ns, now);
	return wss_prefix(h, PROBE_BPF_NTICKS, PROBE_BPF_TICK_NS,
			  PROBE_BPF_NTICKS * PROBE_BPF_TICK_NS);
}

/* The epoch's hot regions and spatial locality, from the pages it has seen so far. */
static void hot_now(struct probe *p, struct wss_region *out, uint32_t *n, double *locality)
{
	const uint64_t *words = p->uni.words;
	uint64_t nwords = DIV_ROUND_UP(p->uni.nbits, 64);

	if (p->bpf)
		words = probe_bpf_seen(p->bpf, &nwords);
	*n = wss_hot(words, nwords, out, PROBE_NHOT);
	*locality = wss_locality(words, nwords);
}

/* Device pages are not the guest's writes: drain them first (the migration counts them). */
static int64_t harvest(struct probe *p)
{
	int64_t n;

	bitmap_drain_into(&p->devjunk, &p->vm->dev_dirty);
	bitmap_zero(&p->devjunk);
	n = dirty_harvest(&p->d, &p->uni);
	if (n < 0) {
		hm_err("harvest failed: %s", strerror((int)-n));
		return n;
	}
	p->epoch_harvest += (uint64_t)n;
	return n;
}

/* A harvest: the fallback's histogram tick, or the end of an epoch. */
static int harvest_tick(struct probe *p, uint64_t now)
{
	int64_t n = harvest(p);

	if (n < 0)
		return (int)n;
	if (!p->bpf) {
		p->fb_hist[wss_tick(p->last_harvest_ns - p->epoch_ns, HARVEST_NS, FB_NTICKS)] +=
		    (uint64_t)n;
		p->fb_covered_ns = now - p->epoch_ns;
	}
	p->last_harvest_ns = now;
	return 0;
}

/* The tracepoint saw too few of the pages the harvest found: measure from the harvest. */
static void check_epoch(struct probe *p, uint64_t bpf_pages)
{
	p->check_bpf = bpf_pages;
	p->check_harvest = p->epoch_harvest;
	if (!p->bpf || p->epoch_harvest < CHECK_MIN_PAGES || bpf_pages * 2 >= p->epoch_harvest)
		return;
	snprintf(p->why, sizeof(p->why), "the tracepoint saw %llu of %llu dirtied pages",
		 (unsigned long long)bpf_pages, (unsigned long long)p->epoch_harvest);
	hm_warn("%s: measuring from the VMM's harvest", p->why);
	probe_bpf_close(p->bpf);
	p->bpf = NULL;
	/* run time comes from the thread clocks now: a new baseline */
	p->rate_t_ns = 0;
}

/* A new epoch from @now; @flip: start the BPF one too (not yet done by the caller). */
static void epoch_reset(struct probe *p, uint64_t now, bool flip)
{
	bitmap_zero(&p->uni);
	memset(p->fb_hist, 0, sizeof(p->fb_hist));
	p->fb_covered_ns = 0;
	p->epoch_harvest = 0;
	p->last_harvest_ns = now;
	p->epoch_ns = now;
	if (p->bpf && flip)
		probe_bpf_epoch(p->bpf, now);
}

/* (Re)start our dirty tracking at the epoch start: enabling it protects all of RAM. */
static int track(struct probe *p)
{
	int err;

	if (p->tracking)
		dirty_stop(&p->d);
	p->tracking = false;
	err = p->bpf ? dirty_start(&p->d, p->vm) : dirty_start_collect(&p->d, p->vm);
	if (err)
		return err;
	p->tracking = true;
	return 0;
}

/*
 * Our epoch boundary: the BPF epoch is read and flipped first, then the
 * harvest re-protects (so writes after the flip fault into the new epoch)
 * and closes the old epoch's count; the fallback restarts tracking.
 */
static int own_epoch(struct probe *p, uint64_t now)
{
	uint64_t bpf_pages = 0;
	int err;

	if (p->bpf) {
		bpf_pages = bpf_to_curve(p, now);
		hot_now(p, p->hot, &p->nhot, &p->locality);
		probe_bpf_epoch(p->bpf, now);
	}
	err = harvest_tick(p, now);
	if (err)
		return err;
	if (!p->bpf) {
		wss_update(&p->curve, p->fb_hist, FB_NTICKS, HARVEST_NS, p->fb_covered_ns, now);
		hot_now(p, p->hot, &p->nhot, &p->locality);
	}
	check_epoch(p, bpf_pages);
	epoch_reset(p, now, false);
	return p->bpf ? 0 : track(p);
}

static void deadline(struct probe *p, uint64_t now, struct timespec *ts)
{
	uint64_t since = now - p->epoch_ns;
	uint64_t next = p->epoch_ns + (since / HARVEST_NS + 1) * HARVEST_NS;

	ts->tv_sec = (time_t)(next / NSEC_PER_SEC);
	ts->tv_nsec = (long)(next % NSEC_PER_SEC);
}

static void *measure_main(void *arg)
{
	struct probe *p = arg;
	struct timespec ts;

	pthread_mutex_lock(&p->lock);
	while (!p->stop && !p->err) {
		uint64_t now = hm_now_ns();

		if (now - p->epoch_ns >= (uint64_t)p->epoch_ms * NSEC_PER_MSEC)
			p->err = own_epoch(p, now);
		else if (!p->bpf)
			p->err = harvest_tick(p, now);
		deadline(p, hm_now_ns(), &ts);
		if (!p->stop && !p->err)
			pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	}
	if (p->err)
		hm_err("measurement stopped: %s", strerror(-p->err));
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int probe_measure_start(struct probe *p)
{
	int err = -EALREADY;

	pthread_mutex_lock(&p->lock);
	if (p->measuring)
		goto out_unlock;
	p->stop = false;
	p->err = 0;
	epoch_reset(p, hm_now_ns(), true);
	err = track(p);
	if (err)
		goto out_unlock;
	p->rate_t_ns = 0;
	rates(p, hm_now_ns());
	err = -pthread_create(&p->thread, NULL, measure_main, p);
	if (err)
		goto out_untrack;
	p->measuring = true;
	pthread_mutex_unlock(&p->lock);
	return 0;
out_untrack:
	dirty_stop(&p->d);
	p->tracking = false;
out_unlock:
	if (err != -EALREADY)
		p->epoch_ns = 0;
	pthread_mutex_unlock(&p->lock);
	return err;
}

void probe_measure_stop(struct probe *p)
{
	pthread_mutex_lock(&p->lock);
	if (!p->measuring) {
		/* a migration's epochs end with its tracking */
		p->epoch_ns = 0;
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	pthread_mutex_lock(&p->lock);
	p->measuring = false;
	if (p->tracking)
		dirty_stop(&p->d);
	p->tracking = false;
	/* tracking is off: nothing more can be measured in this epoch */
	p->epoch_ns = 0;
	pthread_mutex_unlock(&p->lock);
}

void probe_epoch(struct probe *p)
{
	uint64_t now = hm_now_ns();

	pthread_mutex_lock(&p->lock);
	if (p->bpf && !p->measuring &&
	    (!p->epoch_ns || now - p->epoch_ns >= (uint64_t)p->epoch_ms * NSEC_PER_MSEC)) {
		if (p->epoch_ns) {
			bpf_to_curve(p, now);
			hot_now(p, p->hot, &p->nhot, &p->locality);
		}
		epoch_reset(p, now, true);
	}
	pthread_mutex_unlock(&p->lock);
}

void probe_harvested(struct probe *p, uint64_t pages)
{
	uint64_t now = hm_now_ns();

	pthread_mutex_lock(&p->lock);
	if (p->mig_t_ns && now > p->mig_t_ns)
		p->mig_rate = (double)pages * 1e9 / (double)(now - p->mig_t_ns);
	p->mig_t_ns = now;
	pthread_mutex_unlock(&p->lock);
}

void probe_watch_port(struct probe *p, uint16_t local_port)
{
	pthread_mutex_lock(&p->lock);
	p->port = local_port;
	if (p->bpf)
		probe_bpf_watch_port(p->bpf, local_port);
	pthread_mutex_unlock(&p->lock);
}

/* ---- samples ------------------------------------------------------------ */

static void sample_curve(struct probe *p, uint64_t now, struct probe_sample *s)
{
	struct wss_region hot[PROBE_NHOT];
	uint32_t n = p->nhot;
	double locality = p->locality;

	if (p->epoch_ns && p->bpf)
		bpf_to_curve(p, now);
	else if (p->epoch_ns && p->measuring)
		wss_update(&p->curve, p->fb_hist, FB_NTICKS, HARVEST_NS, p->fb_covered_ns, now);
	memcpy(hot, p->hot, sizeof(hot));
	if (p->epoch_ns && now - p->epoch_ns >= HOT_MIN_NS && (p->bpf || p->measuring))
		hot_now(p, hot, &n, &locality);
	for (uint32_t i = 0; i < n; i++) {
		s->hot[i].region = hot[i].region;
		s->hot[i].pages = hot[i].pages;
	}
	s->nhot = n;
	s->locality = locality;
	s->nwin = wss_nwin(&p->curve);
	memcpy(s->wss_pages, p->curve.pages, sizeof(s->wss_pages));
	s->dirty_pages_per_s = wss_rate(&p->curve);
	if (!p->bpf && !p->measuring && p->mig_t_ns)
		s->dirty_pages_per_s = p->mig_rate;
}

static void sample_bpf(struct probe *p, struct probe_sample *s)
{
	struct probe_bpf_counters c = { 0 };

	if (!p->bpf) {
		s->source = PROBE_SRC_HARVEST;
		snprintf(s->why_fallback, sizeof(s->why_fallback), "%s", p->why);
		return;
	}
	probe_bpf_counters(p->bpf, &c);
	s->source = p->ring ? PROBE_SRC_RING : PROBE_SRC_SPTE;
	s->events = c.dirty_events;
	if (p->port && c.tcp_t_ns) {
		s->rtt_us = c.srtt_us;
		s->cwnd = c.cwnd;
	}
}

int probe_sample(struct probe *p, struct probe_sample *out)
{
	uint64_t now = hm_now_ns();
	int err;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	out->t_ns = now;
	out->tracking = dirty_tracking_name(p->vm);
	sample_curve(p, now, out);
	sample_bpf(p, out);
	rates(p, now);
	out->vcpu_run_frac = p->run_frac;
	out->dma_pages_per_s = p->dma_rate;
	out->check_bpf_pages = p->check_bpf;
	out->check_harvest_pages = p->check_harvest;
	err = p->err;
	pthread_mutex_unlock(&p->lock);
	return err;
}

void probe_close(struct probe *p)
{
	if (!p)
		return;
	probe_measure_stop(p);
	probe_bpf_close(p->bpf);
	bitmap_exit(&p->uni);
	bitmap_exit(&p->devjunk);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
