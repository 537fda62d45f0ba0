// SPDX-License-Identifier: MIT
/*
 * Post-copy on the destination: guest RAM registered with userfaultfd
 * before any vCPU runs; faults become requests on the urgent channel;
 * answers (urgent thread) and pushed pages (session thread) are placed
 * with UFFDIO_COPY. The urgent connection has one writer at a time (the
 * fault thread, under d->ulock, which a reconnection also takes to swap
 * the connection); counters shared by the two placing threads are atomic.
 */
#define LOG_PREFIX "dest: "
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include "guest/abi.h"
#include "src/compress.h"
#include "src/dest_priv.h"
#include "src/inject.h"
#include "src/log.h"
#include "src/vm.h"

int dest_postcopy_add_map(struct dest *d, size_t len)
{
	struct proto_pagemap pm;
	const char *why = "";
	int err;

	err = proto_pagemap_decode(d->rx, len, d->vm->mem.pages, &pm, &why);
	if (err)
		return dest_fail(d, err, "bad page map: %s", why);
	if (!d->needed.words && bitmap_init(&d->needed, d->vm->mem.pages))
		return dest_fail(d, -ENOMEM, "out of memory for the page map");
	/* word by word: a bit loop cost milliseconds of downtime on a 4 GiB guest */
	for (uint32_t w = 0; w < pm.nbits / 64; w++) {
		uint64_t first = pm.first + 64ULL * w;
		uint64_t bits = proto_get_le64(pm.bits + 8 * (size_t)w);

		if (first + 64 > d->vm->mem.pages && bits >> (d->vm->mem.pages - first))
			return dest_fail(d, -EBADMSG, "bad page map: page outside guest RAM");
		d->needed.words[first / 64] |= bits;
	}
	return 0;
}

/* Fault thread: ask the source for one page on the urgent channel. */
static int request_page(void *arg, uint64_t gfn)
{
	struct dest *d = arg;
	uint8_t buf[PROTO_REQ_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	int err;

	proto_req_encode(buf, gfn);
	pthread_mutex_lock(&d->ulock);
	err = net_send(&d->link.urgent, PROTO_REQ, 0, &v, 1);
	pthread_mutex_unlock(&d->ulock);
	/* a lost request is asked again when the link comes back: keep faulting */
	if (err)
		hm_dbg("request for page %llu not sent", (unsigned long long)gfn);
	return 0;
}

/* Place the pages of one decoded batch through userfaultfd. */
static int place_batch(struct dest *d, const uint8_t *in, size_t len, uint8_t *scratch, size_t cap)
{
	const char *why = "";
	struct proto_pages p;
	const uint8_t *data;
	uint32_t k = 0;
	int err;

	err = proto_pages_decode(in, len, d->vm->mem.pages, &p, &why);
	if (err)
		return dest_fail(d, err, "bad page batch: %s", why);
	data = p.data;
	if (p.flags & PROTO_PAGES_LZ4) {
		if (p.raw_len > cap || compress_decode(p.data, p.data_len, scratch, p.raw_len))
			return dest_fail(d, -EBADMSG,
					 "bad page batch: lz4 data does not decode to the batch");
		data = scratch;
	}
	for (uint32_t i = 0; i < p.count && !err; i++) {
		uint64_t g = proto_pages_gfn(&p, i);

		err = fault_place(&d->fault, g & ~PROTO_ZERO_PAGE,
				  g & PROTO_ZERO_PAGE ? NULL : data + (size_t)k++ * HM_PAGE_SIZE);
	}
	__atomic_add_fetch(&d->st.pages, p.count, __ATOMIC_RELAXED);
	return err ? dest_fail(d, err, "cannot place a page: %s", strerror(-err)) : 0;
}

/* Once every vCPU has reported here, the guest's count is a valid baseline. */
static bool all_reported(struct dest *d)
{
	bool all = true;

	pthread_mutex_lock(&d->vm->dw.lock);
	for (unsigned int i = 0; i < d->vm->nr_vcpus; i++)
		all &= d->vm->dw.cpu[i].last_report_ns > d->run_ns;
	pthread_mutex_unlock(&d->vm->dw.lock);
	return all;
}

/*
 * Urgent thread, every DEST_PROGRESS_MS while the guest runs here: where
 * the guest and the faults stand, for the source's timeline (migrate
 * --record). Timed here, not between bulk frames, so a slow or stalled
 * bulk connection leaves no gap. A send that fails is not retried: the
 * next report goes on the new connection. A report is skipped while the
 * connection holds more than DEST_PROGRESS_MAX_QUEUED unsent: it would
 * only queue, and a blocked send would stop this thread reading answers.
 */
#define DEST_PROGRESS_MS	 100
#define DEST_PROGRESS_MAX_QUEUED (64 * 1024)

static void send_progress(struct dest *d)
{
	struct proto_progress p = { 0 };
	struct fault_stats st;
	uint8_t buf[PROTO_PROGRESS_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	uint64_t now = hm_now_ns();
	int err;

	if (__atomic_load_n(&d->phase, __ATOMIC_ACQUIRE) != PROTO_DST_RUNNING ||
	    now - d->progress_ns < (uint64_t)DEST_PROGRESS_MS * NSEC_PER_MSEC ||
	    net_unacked(&d->link.urgent) > DEST_PROGRESS_MAX_QUEUED)
		return;
	d->progress_ns = now;
	if (!d->units_known)
		d->units_known = all_reported(d);
	fault_get_stats(&d->fault, &st);
	p.units = d->units_known ? devwin_units(&d->vm->dw) : PROTO_UNITS_UNKNOWN;
	p.remote_faults = st.remote;
	p.pages_placed = st.placed;
	p.blocked_ns = st.blocked_ns;
	proto_progress_encode(buf, &p);
	pthread_mutex_lock(&d->ulock);
	err = net_send(&d->link.urgent, PROTO_PROGRESS, 0, &v, 1);
	pthread_mutex_unlock(&d->ulock);
	if (err)
		hm_dbg("progress report not sent: %s", strerror(-err));
}

/* Urgent channel: answers to our requests, placed as they come. */
static void *urgent_thread(void *arg)
{
	struct dest *d = arg;

	for (;;) {
		const char *why = "";
		struct proto_hdr h;
		int err = net_wait_readable(&d->link.urgent, DEST_PROGRESS_MS);

		send_progress(d);
		if (err == -ETIMEDOUT)
			continue;
		/* a frame begun must end within the connection's timeout */
		if (!err)
			err = net_recv(&d->link.urgent, &h, d->urx, sizeof(d->urx), &why);
		if (!err && h.type != PROTO_PAGES)
			err = dest_fail(d, -EPROTO, "unexpected frame %u on the urgent channel",
					h.type);
		if (!err)
			err = place_batch(d, d->urx, (size_t)h.len, NULL, 0);
		if (err) {
			/* the session thread must not wait for answers that cannot come */
			__atomic_store_n(&d->urgent_err, err, __ATOMIC_RELEASE);
			/* before READY the guest can never run here: free what restore waits on */
			if (__atomic_load_n(&d->phase, __ATOMIC_ACQUIRE) == PROTO_DST_RECEIVING)
				dest_postcopy_unblock(d);
			break;
		}
	}
	return NULL;
}

static int start_urgent(struct dest *d)
{
	__atomic_store_n(&d->urgent_err, 0, __ATOMIC_RELEASE);
	if (pthread_create(&d->uthread, NULL, urgent_thread, d))
		return -EAGAIN;
	d->ustarted = true;
	return 0;
}

void dest_postcopy_stop_urgent(struct dest *d)
{
	if (d->ustarted) {
		if (d->link.urgent.fd >= 0)
			shutdown(d->link.urgent.fd, SHUT_RDWR);
		pthread_join(d->uthread, NULL);
		d->ustarted = false;
	}
}

/*
 * Pages we are owed must fault, even where vm_new or pre-copy left
 * something: discard those, and only those — a madvise per owed run over
 * the whole RAM cost ~80 ms on a scattered 4 GiB working set.
 */
static void discard_needed(struct dest *d)
{
	bitmap_set_range(&d->written, 0, HM_DATA_GPA / HM_PAGE_SIZE); /* vm_new's pages */
	for (uint64_t g = bitmap_find_next(&d->written, 0); g < d->written.nbits;) {
		uint64_t end = g;

		while (end < d->written.nbits && bitmap_test(&d->written, end) &&
		       bitmap_test(&d->needed, end))
			end++;
		if (end > g && madvise(d->vm->mem.hva + g * HM_PAGE_SIZE, (end - g) * HM_PAGE_SIZE,
				       MADV_DONTNEED))
			hm_warn("MADV_DONTNEED failed: %s", strerror(errno));
		g = bitmap_find_next(&d->written, end + 1);
	}
}

int dest_postcopy_arm(struct dest *d)
{
	int err;

	if (!d->needed.words && bitmap_init(&d->needed, d->vm->mem.pages))
		return dest_fail(d, -ENOMEM, "out of memory for the page map");
	discard_needed(d);
	err = fault_init(&d->fault, &d->vm->mem, &d->needed, request_page, d);
	if (err)
		return dest_fail(d, err, "cannot register guest RAM with userfaultfd: %s",
				 strerror(-err));
	d->fault.hist = &d->lat_hist;
	err = fault_start(&d->fault);
	if (!err)
		err = start_urgent(d);
	if (err) {
		fault_exit(&d->fault);
		return dest_fail(d, err, "cannot start the post-copy threads");
	}
	d->postcopy = true;
	return 0;
}

static int send_complete(struct dest *d, uint64_t units0, uint64_t t0)
{
	struct proto_complete c = { 0 };
	struct fault_stats st;
	uint8_t buf[PROTO_COMPLETE_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	uint64_t now = hm_now_ns();

	fault_get_stats(&d->fault, &st);
	c.remote_faults = st.remote;
	c.local_zero = st.local_zero;
	c.duplicates = st.duplicates;
	c.blocked_ns = st.blocked_ns;
	c.last_page_ns = st.last_page_ns > d->run_ns ? st.last_page_ns - d->run_ns : 0;
	c.lat_p50_us = fault_latency_us(&d->fault, 50);
	c.lat_p90_us = fault_latency_us(&d->fault, 90);
	c.lat_p99_us = fault_latency_us(&d->fault, 99);
	c.lat_max_us = fault_latency_us(&d->fault, 100);
	if (t0 && now > t0)
		c.units_per_s = (devwin_units(&d->vm->dw) - units0) * NSEC_PER_SEC / (now - t0);
	proto_complete_encode(buf, &c);
	return net_send(&d->link.bulk, PROTO_COMPLETE, 0, &v, 1);
}

int dest_postcopy_resume(struct dest *d)
{
	int err = net_send_pagemap(&d->link.bulk, &d->fault.received);

	if (!err)
		err = net_send(&d->link.bulk, PROTO_ACCEPT, 0, NULL, 0);
	if (!err)
		err = start_urgent(d);
	if (err)
		return err;
	for (uint64_t g = bitmap_find_next(&d->fault.requested, 0); g < d->fault.requested.nbits;
	     g = bitmap_find_next(&d->fault.requested, g + 1))
		if (!bitmap_test(&d->fault.received, g))
			request_page(d, g);
	return 0;
}

/*
 * After DONE: the last answers may still be on the urgent channel. 0 once
 * every page is here; the urgent channel's failure (a broken link is worth
 * a reconnection); -ECANCELED when the destination is shutting down.
 */
static int wait_last_pages(struct dest *d)
{
	uint64_t deadline = hm_now_ns() + (uint64_t)DEST_POSTCOPY_IO_TIMEOUT_MS * NSEC_PER_MSEC;

	while (!fault_complete(&d->fault)) {
		int uerr = __atomic_load_n(&d->urgent_err, __ATOMIC_ACQUIRE);

		if (__atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE))
			return dest_fail(d, -ECANCELED, "shutting down");
		if (uerr)
			return dest_fail(d, uerr, "the urgent channel failed");
		if (hm_now_ns() >= deadline)
			return dest_fail(
			    d, -ETIMEDOUT,
			    "post-copy: pages still missing after the source finished");
		poll(NULL, 0, 2);
	}
	return 0;
}

int dest_postcopy_run(struct dest *d)
{
	uint64_t units0 = 0;
	uint64_t t0 = 0;
	struct proto_hdr h;
	int err = 0;

	d->link.bulk.timeout_ms = DEST_POSTCOPY_IO_TIMEOUT_MS;
	for (;;) {
		if (!t0 && all_reported(d)) {
			units0 = devwin_units(&d->vm->dw);
			t0 = hm_now_ns();
		}
		err = dest_recv(d, &h);
		if (!err && h.type == PROTO_DONE)
			err = wait_last_pages(d);
		if (!err && h.type == PROTO_DONE)
			break;
		if (err && link_error_transient(err)) {
			d->why[0] = 0;
			err = dest_reconnect(d, err);
			d->link.bulk.timeout_ms = DEST_POSTCOPY_IO_TIMEOUT_MS;
		} else if (!err && h.type != PROTO_PAGES) {
			err = dest_fail(d, -EPROTO, "unexpected frame %u during post-copy", h.type);
		} else if (!err) {
			err = place_batch(d, d->rx, (size_t)h.len, d->scratch, sizeof(d->scratch));
		}
		if (!err && inject_at("dst-postcopy") == INJECT_CUT)
			dest_cut(d);
		if (err)
			break;
	}
	if (!err)
		err = send_complete(d, units0, t0);
	dest_postcopy_stop_urgent(d);
	if (err) {
		hm_err("post-copy failed: %s; the guest waits for %llu pages that may not come",
		       d->why, (unsigned long long)dest_missing(d));
		return err;
	}
	dest_postcopy_exit(d);
	return 0;
}

/* Poison the VM and zero-fill every page a fault waits for; later faults get zeros too. */
static void zero_fill_waiting(struct dest *d)
{
	__atomic_store_n(&d->poisoned, true, __ATOMIC_RELEASE);
	/* new faults are zero-filled by the fault thread, waiting ones here */
	bitmap_zero(&d->needed);
	for (uint64_t g = bitmap_find_next(&d->fault.requested, 0); g < d->fault.requested.nbits;
	     g = bitmap_find_next(&d->fault.requested, g + 1))
		if (!bitmap_test(&d->fault.received, g) && fault_place(&d->fault, g, NULL))
			hm_dbg("could not zero-fill page %llu", (unsigned long long)g);
}

void dest_postcopy_unblock(struct dest *d)
{
	if (!d->postcopy || __atomic_load_n(&d->phase, __ATOMIC_ACQUIRE) == PROTO_DST_RUNNING)
		return;
	zero_fill_waiting(d);
}

void dest_postcopy_release(struct dest *d)
{
	if (d->postcopy)
		zero_fill_waiting(d);
}

void dest_postcopy_missing(struct dest *d, char *buf, size_t len)
{
	size_t off = 0;
	int runs = 0;

	buf[0] = 0;
	if (!d->postcopy)
		return;
	for (uint64_t g = bitmap_find_next(&d->needed, 0); g < d->needed.nbits && runs < 8;
	     g = bitmap_find_next(&d->needed, g + 1)) {
		uint64_t end = g;
		int n;

		if (bitmap_test(&d->fault.received, g))
			continue;
		while (end + 1 < d->needed.nbits && bitmap_test(&d->needed, end + 1) &&
		       !bitmap_test(&d->fault.received, end + 1))
			end++;
		n = end > g ? snprintf(buf + off, len - off, "%s0x%llx-0x%llx", runs ? ", " : "",
				       (unsigned long long)g, (unsigned long long)end)
			    : snprintf(buf + off, len - off, "%s0x%llx", runs ? ", " : "",
				       (unsigned long long)g);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
		runs++;
		g = end;
	}
}

void dest_latency_hist(struct dest *d, struct fault_hist *out)
{
	for (unsigned int i = 0; i < FAULT_HIST_BUCKETS; i++)
		out->count[i] = __atomic_load_n(&d->lat_hist.count[i], __ATOMIC_RELAXED);
	out->sum_us = __atomic_load_n(&d->lat_hist.sum_us, __ATOMIC_RELAXED);
}

void dest_postcopy_exit(struct dest *d)
{
	dest_postcopy_stop_urgent(d);
	if (d->postcopy)
		fault_exit(&d->fault);
	d->postcopy = false;
	bitmap_exit(&d->needed);
}
