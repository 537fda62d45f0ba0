// SPDX-License-Identifier: MIT
/*
 * Post-copy on the source, after the switch-over: the urgent thread
 * answers the destination's page requests straight from guest RAM, ahead
 * of anything queued, with the pages after it when faults follow a
 * sequential run (policy/prefetch.c); the pusher streams every page still
 * owed, once: first those the guest wrote last before the switch (its hot
 * set) and those of the probe's hot 2 MiB regions, then from just after
 * the latest request on (spatial locality);
 * DONE then COMPLETE end it. The VM stays fenced here with every page until the
 * destination confirms it holds them all.
 */
#define LOG_PREFIX "mig: "
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include "guest/abi.h"
#include "src/log.h"
#include "src/mig_priv.h"
#include "src/vm.h"

static_assert(POLICY_RUN_MAX <= PROTO_URGENT_MAX, "an answer must fit the destination's buffer");

/*
 * The pages an answer to a fault at @gfn carries: @gfn itself (asked for,
 * so sent even if the pusher got there first), then, for a run, the owed
 * pages after it (policy_run_window) — also those the pusher has already
 * queued: after the jump to a fault they wait behind what the bulk
 * connection has in flight, a bandwidth-delay product, while the guest
 * faults on them one RTT each (measured under nested KVM at 100 ms RTT:
 * with only unsent pages in the window, nothing was ever prefetched).
 * *@fresh gets bit i set for the pages no path had sent. Returns the count.
 */
static uint32_t answer_pages(struct mig *m, uint64_t gfn, uint64_t *gfns, uint32_t *fresh)
{
	uint32_t win = policy_run_window(&m->run, gfn);
	uint32_t n = 1;

	gfns[0] = gfn;
	*fresh = !bitmap_test_and_set(&m->sent, gfn);
	for (uint64_t g = gfn + 1; n < win && g < m->owed.nbits; g++) {
		if (!bitmap_test(&m->owed, g))
			continue;
		*fresh |= (uint32_t)!bitmap_test_and_set(&m->sent, g) << n;
		gfns[n++] = g;
	}
	return n;
}

/* Answer one page request on the urgent channel, straight from guest RAM. */
static int answer(struct mig *m, uint64_t gfn)
{
	struct iovec v[1 + POLICY_RUN_MAX];
	uint64_t gfns[POLICY_RUN_MAX];
	uint32_t data = 0, zero = 0, mask;
	uint32_t n = answer_pages(m, gfn, gfns, &mask);
	uint32_t fresh = (uint32_t)__builtin_popcount(mask);
	int err;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *page = m->vm->mem.hva + gfns[i] * HM_PAGE_SIZE;

		if (compress_page_is_zero(page)) {
			gfns[i] |= PROTO_ZERO_PAGE;
			zero += (mask >> i) & 1;
			continue;
		}
		v[1 + data++] = (struct iovec){ (void *)page, HM_PAGE_SIZE };
	}
	v[0] = (struct iovec){ m->uhead,
			       proto_pages_encode_head(m->uhead, gfns, n, 0, data * HM_PAGE_SIZE) };
	err = net_send(&m->link.urgent, PROTO_PAGES, 0, v, 1 + (int)data);
	if (err)
		return err;
	/* spatial locality: the pusher carries on right after what went out */
	__atomic_store_n(&m->cursor, (gfns[n - 1] & ~PROTO_ZERO_PAGE) + 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&m->lock);
	m->s.pages_requested++;
	m->s.pages_prefetched += n - 1;
	m->s.dup_pages += !(mask & 1);
	/* sent here first: the pusher will skip them, so the whole migration's counts move now */
	m->s.pages_sent += fresh;
	m->s.bytes_raw += (uint64_t)fresh * HM_PAGE_SIZE;
	m->s.zero_pages += zero;
	m->s.remaining = m->s.remaining > fresh ? m->s.remaining - fresh : 0;
	m->s.bytes_wire = m->link.bulk.sent + m->link.urgent.sent;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* The destination's PROGRESS: its guest's work units and its faults so far. */
static int progress(struct mig *m, size_t len)
{
	struct proto_progress p;
	const char *why = "";

	if (proto_progress_decode(m->urx, len, &p, &why)) {
		hm_warn("bad progress report from the destination: %s", why);
		return -EBADMSG;
	}
	/*
	 * PROGRESS and COMPLETE travel on different connections: a late PROGRESS
	 * must not take back COMPLETE's final counts. They only grow.
	 */
	pthread_mutex_lock(&m->lock);
	if (p.units != PROTO_UNITS_UNKNOWN && (!m->s.dst_units_known || p.units > m->s.dst_units)) {
		m->s.dst_units_known = true;
		m->s.dst_units = p.units;
	}
	if (p.remote_faults > m->s.remote_faults)
		m->s.remote_faults = p.remote_faults;
	if (p.blocked_ns > m->s.blocked_ns)
		m->s.blocked_ns = p.blocked_ns;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* Urgent channel: requests and progress in, pages out, ahead of anything the pusher queued. */
static void *urgent_thread(void *arg)
{
	struct mig *m = arg;

	while (!__atomic_load_n(&m->ustop, __ATOMIC_ACQUIRE)) {
		const char *why = "";
		struct proto_hdr h;
		uint64_t gfn;
		int err = net_wait_readable(&m->link.urgent, 100);

		if (err == -ETIMEDOUT)
			continue;
		if (!err)
			err = net_recv(&m->link.urgent, &h, m->urx, sizeof(m->urx), &why);
		if (err)
			break; /* the destination closes it once every page is there */
		if (h.type == PROTO_PROGRESS) {
			if (progress(m, (size_t)h.len))
				break;
			continue;
		}
		if (h.type != PROTO_REQ ||
		    proto_req_decode(m->urx, (size_t)h.len, m->vm->mem.pages, &gfn, &why)) {
			hm_warn("bad page request from the destination: %s",
				h.type != PROTO_REQ ? "not a request" : why);
			break;
		}
		if (answer(m, gfn))
			break;
	}
	return NULL;
}

int mig_postcopy_serve(struct mig *m)
{
	if (m->ustarted)
		return 0;
	__atomic_store_n(&m->ustop, false, __ATOMIC_RELEASE);
	if (pthread_create(&m->uthread, NULL, urgent_thread, m))
		return mig_fail(m, -EAGAIN, "cannot start the urgent channel thread");
	m->ustarted = true;
	return 0;
}

void mig_postcopy_stop_serving(struct mig *m)
{
	if (!m->ustarted)
		return;
	__atomic_store_n(&m->ustop, true, __ATOMIC_RELEASE);
	pthread_join(m->uthread, NULL);
	m->ustarted = false;
	__atomic_store_n(&m->ustop, false, __ATOMIC_RELEASE);
}

/*
 * Next page to push: first the pages the last harvests found (the guest
 * wrote them last, so it touches them first on the destination; for a zipf
 * writer at distance each is otherwise a fault of one RTT), then from the
 * cursor on, wrapping round.
 */
static uint64_t next_push(struct mig *m)
{
	uint64_t from, g;

	while ((g = bitmap_find_next(&m->hot, m->hot_from)) < m->hot.nbits) {
		bitmap_clear(&m->hot, g);
		m->hot_from = g + 1;
		if (bitmap_test(&m->todo, g))
			return g;
	}
	from = __atomic_load_n(&m->cursor, __ATOMIC_ACQUIRE);
	g = bitmap_find_next(&m->todo, from);

	if (g >= m->todo.nbits)
		g = bitmap_find_next(&m->todo, 0);
	if (g < m->todo.nbits)
		__atomic_compare_exchange_n(&m->cursor, &from, g + 1, false, __ATOMIC_ACQ_REL,
					    __ATOMIC_RELAXED);
	return g;
}

/*
 * Keep the pusher just under the link so answers to faults do not queue
 * behind it (they share the bottleneck's queue). Measured on a 1 Gbit/s
 * tbf link with a zipf writer: unpaced, fault p50 989 us and the guest at
 * 30 % of its rate; pushing at 105 MB/s (~88 % of what the link carried),
 * p50 57 us and 60 %, total time unchanged; at 115 MB/s no gain. So: once
 * the link rate is known from acknowledged bytes, push at PUSH_SHARE of it.
 * An explicit --bandwidth is kept as given.
 */
#define PUSH_SHARE     0.88
#define PUSH_WINDOW_NS (100 * NSEC_PER_MSEC)
/* windows measured unpaced before pacing: TCP slow start must not set the cap */
#define PUSH_LEARN_WINDOWS 3

static void pace_pusher(struct mig *m, uint64_t *t0, uint64_t *b0, double *best)
{
	struct net_conn *c = &m->link.bulk;
	uint64_t now = hm_now_ns();
	uint64_t acked = c->sent - net_unacked(c);
	double rate;

	if (now - *t0 < PUSH_WINDOW_NS)
		return;
	rate = (double)(acked - *b0) * 1e9 / (double)(now - *t0);
	*t0 = now;
	*b0 = acked;
	/* what the progress lines show as the bandwidth during post-copy */
	pthread_mutex_lock(&m->lock);
	m->s.bandwidth = rate;
	pthread_mutex_unlock(&m->lock);
	if (m->p.bandwidth)
		return;
	/* a paced window measures our own cap: only unpaced ones teach the link rate */
	if (c->rate)
		return;
	if (rate > *best)
		*best = rate;
	if (*best > 0 && ++m->push_windows >= PUSH_LEARN_WINDOWS) {
		c->rate = (uint64_t)(*best * PUSH_SHARE);
		c->pace_t0 = 0;
	}
}

/*
 * Add to the pages pushed first those still owed in the hot 2 MiB regions
 * the probe reported at the last decision: the guest is writing there, so
 * it will touch their other pages soon (issue 11: at distance each such
 * first touch is otherwise a fault of one RTT). The pusher's thread, after
 * the switch-over: it costs the pause nothing.
 */
static void add_probe_regions(struct mig *m)
{
	uint64_t added = 0;

	for (uint32_t i = 0; i < m->nprobe_hot; i++) {
		uint64_t first = m->probe_hot[i] << 9;
		uint64_t end = min_t(uint64_t, first + 512, m->todo.nbits);

		for (uint64_t g = first; g < end; g++)
			if (bitmap_test(&m->todo, g) && !bitmap_test(&m->hot, g)) {
				bitmap_set(&m->hot, g);
				added++;
			}
	}
	m->hot_from = 0;
	if (added)
		hm_dbg("post-copy: %llu owed pages of %u hot regions pushed first",
		       (unsigned long long)added, m->nprobe_hot);
}

/* Background pusher: every page still queued, each sent once by either path. */
static int push_all(struct mig *m)
{
	struct net_conn *c = &m->link.bulk;
	uint64_t gfns[PROTO_BATCH_MAX];
	uint64_t t0 = hm_now_ns();
	uint64_t b0 = c->sent - net_unacked(c);
	double best = 0;
	uint32_t n = 0;
	int err;

	m->push_windows = 0;
	add_probe_regions(m);
	for (uint64_t g; (g = next_push(m)) < m->todo.nbits;) {
		bitmap_clear(&m->todo, g);
		if (bitmap_test_and_set(&m->sent, g))
			continue; /* a request got it there first */
		gfns[n++] = g;
		if (n < PROTO_BATCH_MAX)
			continue;
		err = mig_send_batch(m, gfns, n);
		if (err)
			return err;
		m->s.pages_pushed += n;
		n = 0;
		mig_apply_limits(m);
		pace_pusher(m, &t0, &b0, &best);
	}
	err = n ? mig_send_batch(m, gfns, n) : 0;
	m->s.pages_pushed += n;
	return err;
}

static int complete(struct mig *m)
{
	struct proto_complete c;
	const char *why = "";
	struct proto_hdr h;
	int err = net_send(&m->link.bulk, PROTO_DONE, 0, NULL, 0);

	if (err)
		return mig_fail(m, err, "%s", link_strerror(err, "destination"));
	err = mig_expect(m, PROTO_COMPLETE, &h);
	if (err)
		return err;
	if (proto_complete_decode(m->rx, h.len, &c, &why))
		return mig_fail(m, -EPROTO, "destination: %s", why);
	pthread_mutex_lock(&m->lock);
	m->s.remote_faults = c.remote_faults;
	m->s.local_zero = c.local_zero;
	m->s.dup_pages += c.duplicates;
	m->s.blocked_ns = c.blocked_ns;
	m->s.last_page_ns = c.last_page_ns;
	m->s.lat_p50_us = c.lat_p50_us;
	m->s.lat_p90_us = c.lat_p90_us;
	m->s.lat_p99_us = c.lat_p99_us;
	m->s.lat_max_us = c.lat_max_us;
	m->s.units_postcopy = (double)c.units_per_s;
	m->s.remaining = 0;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mig_postcopy_requeue(struct mig *m)
{
	bitmap_zero(&m->sent);
	for (;;) {
		struct proto_pagemap pm;
		const char *why = "";
		struct proto_hdr h;
		int err = mig_expect(m, 0, &h);

		if (err)
			return err;
		if (h.type == PROTO_ACCEPT)
			break;
		if (h.type != PROTO_PAGEMAP ||
		    proto_pagemap_decode(m->rx, (size_t)h.len, m->vm->mem.pages, &pm, &why))
			return mig_fail(m, -EPROTO, "bad page map from the destination: %s", why);
		for (uint32_t i = 0; i < pm.nbits; i++)
			if (((pm.bits[i / 8] >> (i % 8)) & 1) && pm.first + i < m->sent.nbits)
				bitmap_set(&m->sent, pm.first + i);
	}
	/* owed and not held: everything in flight when the link broke goes again */
	bitmap_zero(&m->todo);
	for (uint64_t g = bitmap_find_next(&m->owed, 0); g < m->owed.nbits;
	     g = bitmap_find_next(&m->owed, g + 1))
		if (!bitmap_test(&m->sent, g))
			bitmap_set(&m->todo, g);
	bitmap_copy(&m->sent, &m->owed);
	m->run = (struct policy_run){ 0 };
	for (uint64_t g = bitmap_find_next(&m->todo, 0); g < m->todo.nbits;
	     g = bitmap_find_next(&m->todo, g + 1))
		bitmap_clear(&m->sent, g);
	__atomic_store_n(&m->cursor, 0, __ATOMIC_RELEASE);
	pthread_mutex_lock(&m->lock);
	m->s.remaining = bitmap_count(&m->todo);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mig_postcopy_run(struct mig *m)
{
	int err;

	uint64_t t0 = hm_now_ns();
	uint64_t b0 = m->link.bulk.sent + m->link.urgent.sent;
	uint32_t reconnects = m->s.reconnects;

	mig_set_phase(m, "postcopy");
	dirty_stop(&m->dirty);
	m->link.bulk.timeout_ms = MIG_POSTCOPY_TIMEOUT_MS;
	for (;;) {
		err = push_all(m);
		if (!err)
			err = complete(m);
		/* the report's bandwidth: post-copy's average (a new link restarts the counts) */
		if (!err && m->s.reconnects == reconnects && hm_now_ns() > t0) {
			uint64_t b = m->link.bulk.sent + m->link.urgent.sent;

			pthread_mutex_lock(&m->lock);
			m->s.bandwidth = (double)(b - b0) * 1e9 / (double)(hm_now_ns() - t0);
			pthread_mutex_unlock(&m->lock);
		}
		if (!err || !link_error_transient(err) || m->peer_error || !m->p.reconnect_ns)
			return err;
		err = mig_switch_recover(m, err);
		if (err)
			return err;
		m->link.bulk.timeout_ms = MIG_POSTCOPY_TIMEOUT_MS;
	}
}
