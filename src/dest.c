// SPDX-License-Identifier: MIT
#define LOG_PREFIX "dest: "
#include "src/dest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <time.h>
#include "src/compress.h"
#include "src/log.h"
#include "src/vcpu.h"
#include "src/vm.h"
#include "src/vmstate.h"

#define IO_TIMEOUT_MS	       15000
#define AFTER_WINDOW_NS	       (1 * NSEC_PER_SEC)
#define POSTCOPY_IO_TIMEOUT_MS 15000
/* longer than the source's default reconnect window */
#define RECONNECT_WAIT_NS (60 * NSEC_PER_SEC)

static int fail(struct dest *d, int err, const char *fmt, ...) __printf(3, 4);
static int fail(struct dest *d, int err, const char *fmt, ...)
{
	va_list ap;

	if (!d->why[0]) {
		va_start(ap, fmt);
		vsnprintf(d->why, sizeof(d->why), fmt, ap);
		va_end(ap);
	}
	return err ? err : -EIO;
}

static int recv_frame(struct dest *d, struct proto_hdr *h)
{
	const char *why = "malformed frame";
	int err = net_recv(&d->c, h, d->rx, sizeof(d->rx), &why);

	if (err == -EBADMSG || err == -EPROTO)
		return fail(d, err, "bad frame from the source: %s", why);
	if (err == -EPIPE)
		return fail(d, err, "the source closed the connection");
	if (err == -ETIMEDOUT)
		return fail(d, err, "the source stopped sending (timeout)");
	if (err)
		return fail(d, err, "reading from the source: %s", strerror(-err));
	if (h->type == PROTO_ERROR) {
		struct proto_error e;

		if (proto_error_decode(d->rx, h->len, &e, &why))
			return fail(d, -EPROTO, "the source failed with a malformed error");
		return fail(d, -ECANCELED, "the source gave up: %s", e.msg);
	}
	d->st.bytes = d->c.received;
	return 0;
}

/* The source opens its urgent channel right after the bulk hello. */
static int accept_urgent(struct dest *d, uint64_t session)
{
	struct proto_hello hm;
	uint8_t buf[PROTO_HELLO_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	const char *why = "";
	struct proto_hdr h;
	int fd = net_accept(d->listen_fd, d->stop_fd, IO_TIMEOUT_MS);
	int err;

	if (fd < 0)
		return fail(d, fd, "the source did not open its urgent channel: %s", strerror(-fd));
	net_init(&d->uc, fd, IO_TIMEOUT_MS);
	err = net_recv(&d->uc, &h, d->urx, sizeof(d->urx), &why);
	if (err || h.type != PROTO_HELLO || proto_hello_decode(d->urx, h.len, &hm, &why) ||
	    hm.channel != PROTO_CH_URGENT || hm.session != session)
		return fail(d, -EPROTO, "bad urgent channel hello");
	proto_hello_encode(buf, &hm);
	err = net_send(&d->uc, PROTO_HELLO, 0, &v, 1);
	return err ? fail(d, err, "cannot answer the urgent hello") : 0;
}

static int hello(struct dest *d)
{
	struct proto_hello hm = { PROTO_MAGIC, PROTO_VERSION, PROTO_CH_BULK, 0 };
	uint8_t buf[PROTO_HELLO_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	const char *why = "";
	struct proto_hdr h;
	struct proto_hello peer;
	int err = recv_frame(d, &h);

	if (err)
		return err;
	if (h.type != PROTO_HELLO)
		return fail(d, -EPROTO, "the peer did not start with a hello");
	err = proto_hello_decode(d->rx, h.len, &peer, &why);
	if (err)
		return fail(d, err, "%s", why);
	if (peer.channel != PROTO_CH_BULK)
		return fail(d, -EPROTO, "urgent channel before a bulk channel");
	if (d->postcopy && peer.session != d->session)
		return fail(d, -EPROTO,
			    "another migration connected while this one waits for pages");
	d->session = peer.session;
	hm.session = peer.session;
	proto_hello_encode(buf, &hm);
	err = net_send(&d->c, PROTO_HELLO, 0, &v, 1);
	if (err)
		return fail(d, err, "cannot answer hello: %s", strerror(-err));
	return accept_urgent(d, peer.session);
}

/* Every CPUID feature bit the guest was given must be offered here. */
static int check_cpuid(struct dest *d, const struct proto_vmdesc *m)
{
	static const char *const names[PROTO_CPUID_WORDS] = {
		"1.ecx", "1.edx",     "7.ebx",		"7.ecx",
		"7.edx", "0xd.1.eax", "0x80000001.ecx", "0x80000001.edx",
	};
	uint32_t ours[PROTO_CPUID_WORDS];

	vm_arch_features(d->vm, ours, PROTO_CPUID_WORDS);
	for (int i = 0; i < PROTO_CPUID_WORDS; i++)
		if (m->cpuid[i] & ~ours[i])
			return fail(
			    d, -ENOTSUP,
			    "this host lacks CPUID features the guest uses (leaf %s bits 0x%x)",
			    names[i], m->cpuid[i] & ~ours[i]);
	return 0;
}

static int build_vm(struct dest *d, const struct proto_vmdesc *m)
{
	struct vm_config cfg = { 0 };
	char why[256];
	int err;

	if (m->mem_bytes > d->max_mem)
		return fail(d, -ENOMEM,
			    "the VM needs %llu MiB of RAM; this host accepts at most %llu MiB",
			    (unsigned long long)(m->mem_bytes >> 20),
			    (unsigned long long)(d->max_mem >> 20));
	if (m->mem_bytes > HM_MAX_RAM || m->nr_vcpus > HM_MAX_VCPUS)
		return fail(d, -E2BIG, "the VM is larger than hybridmig supports");
	if (guest_spec_parse(m->spec, &d->spec, why, sizeof(why)) ||
	    guest_layout(&d->spec, m->mem_bytes, m->nr_vcpus, &cfg.boot, why, sizeof(why)))
		return fail(d, -EINVAL, "cannot host this guest: %s", why);
	cfg.mem_bytes = m->mem_bytes;
	cfg.nr_vcpus = m->nr_vcpus;
	cfg.image = d->spec.type->image;
	cfg.image_size = (size_t)(d->spec.type->image_end - d->spec.type->image);
	cfg.io_rate = d->spec.io_mbps * 1000000;
	err = vcpu_signal_setup();
	if (!err)
		err = vm_new(&cfg, &d->vm, why, sizeof(why));
	if (err)
		return fail(d, err, "cannot create the VM here: %s", why);
	if (m->tsc_khz &&
	    (m->tsc_khz > d->vm->tsc_khz * 101 / 100 || m->tsc_khz < d->vm->tsc_khz * 99 / 100))
		hm_warn("TSC frequency differs (source %llu kHz, here %llu kHz)",
			(unsigned long long)m->tsc_khz, (unsigned long long)d->vm->tsc_khz);
	return check_cpuid(d, m);
}

static int checks(struct dest *d)
{
	struct proto_vmdesc m;
	const char *why = "";
	struct proto_hdr h;
	int err = recv_frame(d, &h);

	if (err)
		return err;
	if (h.type != PROTO_VMDESC)
		return fail(d, -EPROTO, "expected a VM description, got frame %u", h.type);
	err = proto_vmdesc_decode(d->rx, h.len, &m, &why);
	if (err)
		return fail(d, err, "%s", why);
	err = build_vm(d, &m);
	if (err) {
		uint8_t buf[PROTO_ERROR_SIZE];
		struct iovec v = { buf, sizeof(buf) };

		proto_error_encode(buf, (uint32_t)-err, d->why);
		if (net_send(&d->c, PROTO_REFUSE, 0, &v, 1))
			hm_dbg("could not send the refusal");
		d->refused = true;
		return err;
	}
	if (bitmap_init(&d->written, d->vm->mem.pages))
		return fail(d, -ENOMEM, "out of memory for the page bitmap");
	err = net_send(&d->c, PROTO_ACCEPT, 0, NULL, 0);
	return err ? fail(d, err, "cannot accept: %s", strerror(-err)) : 0;
}

static int place_pages(struct dest *d, size_t len)
{
	const char *why = "";
	struct proto_pages p;
	const uint8_t *data;
	uint32_t k = 0;
	int err;

	err = proto_pages_decode(d->rx, len, d->vm->mem.pages, &p, &why);
	if (err)
		return fail(d, err, "bad page batch: %s", why);
	data = p.data;
	if (p.flags & PROTO_PAGES_LZ4) {
		if (p.raw_len > sizeof(d->scratch) ||
		    compress_decode(p.data, p.data_len, d->scratch, p.raw_len))
			return fail(d, -EBADMSG,
				    "bad page batch: lz4 data does not decode to the batch");
		data = d->scratch;
	}
	for (uint32_t i = 0; i < p.count; i++) {
		uint64_t g = proto_pages_gfn(&p, i);
		uint8_t *dst = mem_gpa_to_hva(&d->vm->mem, (g & ~PROTO_ZERO_PAGE) * HM_PAGE_SIZE,
					      HM_PAGE_SIZE);

		if (!dst)
			return fail(d, -EBADMSG, "bad page batch: page outside guest RAM");
		if (g & PROTO_ZERO_PAGE) {
			memset(dst, 0, HM_PAGE_SIZE);
			bitmap_set(&d->written, g & ~PROTO_ZERO_PAGE);
			d->st.zero_pages++;
			continue;
		}
		memcpy(dst, data + (size_t)k++ * HM_PAGE_SIZE, HM_PAGE_SIZE);
		bitmap_set(&d->written, g & ~PROTO_ZERO_PAGE);
	}
	d->st.pages += p.count;
	return 0;
}

/* Apply the VMSTATE records; the VM has not run yet. */
static int restore(struct dest *d, size_t len, uint64_t advance_ns)
{
	struct vmstate_rec r;
	const char *why = "";
	size_t off = 0;
	bool end = false;
	int ret;

	while ((ret = vmstate_next(d->rx, len, &off, &r, &why)) > 0) {
		if (end)
			return fail(d, -EBADMSG, "state records after the end record");
		if (r.type == VS_END) {
			end = true;
			continue;
		}
		if (r.type == VS_DEVICES) {
			if (r.len != sizeof(struct vmstate_devices))
				return fail(d, -EBADMSG, "device state of wrong size");
			continue; /* the I/O device resumes from the ring in guest RAM */
		}
		ret = vm_arch_restore(d->vm, &r, advance_ns, d->why, sizeof(d->why));
		if (ret < 0)
			return ret;
		if (ret > 0)
			return fail(d, -EBADMSG, "unknown state record %u", r.type);
	}
	if (ret < 0)
		return fail(d, ret, "bad VM state: %s", why);
	return end ? 0 : fail(d, -EBADMSG, "VM state without its end record");
}

static int start_vm(struct dest *d, size_t state_len, uint64_t state_at)
{
	struct proto_started st = { 0 };
	uint8_t buf[PROTO_STARTED_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	uint64_t t_switch = hm_now_ns();
	int err;

	err = restore(d, state_len, t_switch - state_at);
	if (err)
		return err;
	st.restore_ns = hm_now_ns() - t_switch;
	err = vm_start(d->vm);
	if (err)
		return fail(d, err, "cannot start the VM");
	d->run_ns = hm_now_ns();
	st.switch_to_run_ns = d->run_ns - t_switch;
	d->st.switch_to_run_ns = st.switch_to_run_ns;
	proto_started_encode(buf, &st);
	err = net_send(&d->c, PROTO_STARTED, 0, &v, 1);
	if (err)
		hm_warn("the source did not get our start notice: %s", strerror(-err));
	return 0;
}

/* ---- post-copy ------------------------------------------------------------- */

static int add_pagemap(struct dest *d, size_t len)
{
	struct proto_pagemap pm;
	const char *why = "";
	int err;

	err = proto_pagemap_decode(d->rx, len, d->vm->mem.pages, &pm, &why);
	if (err)
		return fail(d, err, "bad page map: %s", why);
	if (!d->needed.words && bitmap_init(&d->needed, d->vm->mem.pages))
		return fail(d, -ENOMEM, "out of memory for the page map");
	/* word by word: a bit loop cost milliseconds of downtime on a 4 GiB guest */
	for (uint32_t w = 0; w < pm.nbits / 64; w++) {
		uint64_t first = pm.first + 64ULL * w;
		uint64_t bits = proto_get_le64(pm.bits + 8 * (size_t)w);

		if (first + 64 > d->vm->mem.pages && bits >> (d->vm->mem.pages - first))
			return fail(d, -EBADMSG, "bad page map: page outside guest RAM");
		d->needed.words[first / 64] |= bits;
	}
	return 0;
}

/* Fault thread: ask the source for one page on the urgent channel. */
static int request_page(void *arg, uint64_t gfn)
{
	struct dest *d = arg;
	uint8_t buf[8];
	struct iovec v = { buf, sizeof(buf) };

	proto_put_le64(buf, gfn);
	/* a lost request is asked again when the link comes back: keep faulting */
	if (net_send(&d->uc, PROTO_REQ, 0, &v, 1))
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
		return fail(d, err, "bad page batch: %s", why);
	data = p.data;
	if (p.flags & PROTO_PAGES_LZ4) {
		if (p.raw_len > cap || compress_decode(p.data, p.data_len, scratch, p.raw_len))
			return fail(d, -EBADMSG,
				    "bad page batch: lz4 data does not decode to the batch");
		data = scratch;
	}
	for (uint32_t i = 0; i < p.count && !err; i++) {
		uint64_t g = proto_pages_gfn(&p, i);

		err = fault_place(&d->fault, g & ~PROTO_ZERO_PAGE,
				  g & PROTO_ZERO_PAGE ? NULL : data + (size_t)k++ * HM_PAGE_SIZE);
	}
	d->st.pages += p.count;
	return err ? fail(d, err, "cannot place a page: %s", strerror(-err)) : 0;
}

/* Urgent channel: answers to our requests, placed as they come. */
static void *urgent_thread(void *arg)
{
	struct dest *d = arg;

	for (;;) {
		const char *why = "";
		struct proto_hdr h;
		int err = net_recv(&d->uc, &h, d->urx, sizeof(d->urx), &why);

		if (err == -ETIMEDOUT)
			continue;
		if (err || h.type != PROTO_PAGES)
			break;
		if (place_batch(d, d->urx, (size_t)h.len, NULL, 0))
			break;
	}
	return NULL;
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

static int start_postcopy(struct dest *d, size_t state_len, uint64_t state_at)
{
	int err;

	if (!d->needed.words && bitmap_init(&d->needed, d->vm->mem.pages))
		return fail(d, -ENOMEM, "out of memory for the page map");
	discard_needed(d);
	err = fault_init(&d->fault, &d->vm->mem, &d->needed, request_page, d);
	if (err)
		return fail(d, err, "cannot register guest RAM with userfaultfd: %s",
			    strerror(-err));
	err = fault_start(&d->fault);
	if (!err)
		err = pthread_create(&d->uthread, NULL, urgent_thread, d) ? -EAGAIN : 0;
	if (err) {
		fault_exit(&d->fault);
		return fail(d, err, "cannot start the post-copy threads");
	}
	d->ustarted = true;
	d->postcopy = true;
	err = start_vm(d, state_len, state_at);
	return err;
}

static void stop_urgent(struct dest *d)
{
	if (d->ustarted) {
		shutdown(d->uc.fd, SHUT_RDWR);
		pthread_join(d->uthread, NULL);
		d->ustarted = false;
	}
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
	if (now > d->run_ns)
		c.units_per_s =
		    (devwin_units(&d->vm->dw) - units0) * NSEC_PER_SEC / (now - d->run_ns);
	proto_complete_encode(buf, &c);
	return net_send(&d->c, PROTO_COMPLETE, 0, &v, 1);
}

static bool link_error(int err)
{
	return err == -EPIPE || err == -ETIMEDOUT || err == -ECONNRESET || err == -ECONNABORTED ||
	       err == -ENETUNREACH || err == -EHOSTUNREACH;
}

/* The source is back: tell it what we hold, restart the urgent channel, ask again. */
static int resume(struct dest *d)
{
	int err = hello(d);

	if (!err)
		err = net_send_pagemap(&d->c, &d->fault.received);
	if (!err)
		err = net_send(&d->c, PROTO_ACCEPT, 0, NULL, 0);
	if (!err)
		err = pthread_create(&d->uthread, NULL, urgent_thread, d) ? -EAGAIN : 0;
	if (err)
		return err;
	d->ustarted = true;
	for (uint64_t g = bitmap_find_next(&d->fault.requested, 0); g < d->fault.requested.nbits;
	     g = bitmap_find_next(&d->fault.requested, g + 1))
		if (!bitmap_test(&d->fault.received, g))
			request_page(d, g);
	d->c.timeout_ms = POSTCOPY_IO_TIMEOUT_MS;
	return 0;
}

/*
 * The link broke during post-copy: the guest waits on its missing pages.
 * Wait for the source to reconnect (bounded), and say so.
 */
static int reconnect(struct dest *d, int cause)
{
	uint64_t deadline = hm_now_ns() + RECONNECT_WAIT_NS;

	stop_urgent(d);
	net_close(&d->uc);
	net_close(&d->c);
	hm_warn("post-copy: link to the source lost (%s); the guest waits for its pages; waiting "
		"up to %llu s for the source to reconnect",
		strerror(-cause), (unsigned long long)(RECONNECT_WAIT_NS / NSEC_PER_SEC));
	while (hm_now_ns() < deadline) {
		int fd = net_accept(d->listen_fd, d->stop_fd,
				    (int)((deadline - hm_now_ns()) / NSEC_PER_MSEC) + 1);
		int err;

		if (fd == -ECANCELED || fd == -ETIMEDOUT)
			break;
		if (fd < 0)
			continue;
		net_init(&d->c, fd, IO_TIMEOUT_MS);
		d->why[0] = 0;
		err = resume(d);
		if (!err) {
			hm_warn("post-copy: the source reconnected; %llu pages still to come",
				(unsigned long long)(d->fault.nr_needed - d->fault.needed_placed));
			return 0;
		}
		stop_urgent(d);
		net_close(&d->uc);
		net_close(&d->c);
	}
	return fail(d, cause, "post-copy: the link to the source broke and it did not come back");
}

int dest_postcopy(struct dest *d)
{
	uint64_t units0 = 0;
	uint64_t t0 = 0;
	struct proto_hdr h;
	int err = 0;

	d->c.timeout_ms = POSTCOPY_IO_TIMEOUT_MS;
	while (!err) {
		if (!t0 && all_reported(d)) {
			units0 = devwin_units(&d->vm->dw);
			t0 = hm_now_ns();
		}
		err = recv_frame(d, &h);
		if (err && link_error(err)) {
			err = reconnect(d, err);
			continue;
		}
		if (err)
			break;
		if (h.type == PROTO_DONE)
			break;
		if (h.type != PROTO_PAGES)
			err = fail(d, -EPROTO, "unexpected frame %u during post-copy", h.type);
		else
			err = place_batch(d, d->rx, (size_t)h.len, d->scratch, sizeof(d->scratch));
	}
	/* the last answers may still be on the urgent channel */
	for (int i = 0; !err && i < 6000 && !fault_complete(&d->fault); i++)
		poll(NULL, 0, 10);
	if (!err && !fault_complete(&d->fault))
		err =
		    fail(d, -ETIMEDOUT, "post-copy: pages still missing after the source finished");
	if (!err)
		err = send_complete(d, units0, t0);
	stop_urgent(d);
	if (err) {
		hm_err("post-copy failed: %s; the guest waits for pages that may not come", d->why);
		return err;
	}
	fault_exit(&d->fault);
	bitmap_exit(&d->needed);
	bitmap_exit(&d->written);
	d->postcopy = false;
	return 0;
}

/* Pages, rounds, then state and switch, in that order; anything else is an error. */
static int receive(struct dest *d)
{
	struct proto_round r;
	const char *why = "";
	struct proto_hdr h;
	size_t state_len = 0;
	uint64_t state_at = 0;
	int err;

	for (;;) {
		err = recv_frame(d, &h);
		if (err)
			return err;
		switch (h.type) {
		case PROTO_PAGES:
			if (state_len)
				return fail(d, -EPROTO, "pages after the VM state");
			err = place_pages(d, (size_t)h.len);
			break;
		case PROTO_ROUND:
			err = proto_round_decode(d->rx, (size_t)h.len, &r, &why);
			d->st.rounds = r.round + 1;
			break;
		case PROTO_VMSTATE:
			if (state_len)
				return fail(d, -EPROTO, "VM state sent twice");
			state_len = (size_t)h.len;
			state_at = hm_now_ns();
			/* keep it where the next frames will not overwrite it */
			memcpy(d->scratch, d->rx, min_t(size_t, state_len, sizeof(d->scratch)));
			if (state_len > sizeof(d->scratch))
				return fail(d, -EBADMSG, "VM state too large");
			break;
		case PROTO_PAGEMAP:
			err = add_pagemap(d, (size_t)h.len);
			break;
		case PROTO_SWITCH:
			if (!state_len)
				return fail(d, -EPROTO, "switch-over before the VM state");
			memcpy(d->rx, d->scratch, state_len);
			if (h.flags & PROTO_SWITCH_POSTCOPY)
				return start_postcopy(d, state_len, state_at);
			if (d->needed.words)
				return fail(d, -EPROTO, "page map without a post-copy switch");
			return start_vm(d, state_len, state_at);
		default:
			return fail(d, -EPROTO, "unexpected frame %u during pre-copy", h.type);
		}
		if (err)
			return fail(d, err, "%s", why);
	}
}

int dest_receive(struct dest *d)
{
	int fd;
	int err;

	d->vm = NULL;
	d->why[0] = 0;
	d->refused = false;
	d->postcopy = false;
	d->c.fd = -1;
	d->uc.fd = -1;
	memset(&d->st, 0, sizeof(d->st));
	fd = net_accept(d->listen_fd, d->stop_fd, -1);
	if (fd < 0)
		return fail(d, fd, "%s",
			    fd == -ECANCELED ? "stopped while waiting for a VM" : strerror(-fd));
	net_init(&d->c, fd, IO_TIMEOUT_MS);
	err = hello(d);
	if (!err)
		err = checks(d);
	if (!err)
		err = receive(d);
	if (err) {
		if (err != -EPIPE && err != -ECANCELED && !d->refused)
			net_send_error(&d->c, err, d->why);
		stop_urgent(d);
		if (d->postcopy)
			fault_exit(&d->fault);
		d->postcopy = false;
		bitmap_exit(&d->needed);
		bitmap_exit(&d->written);
		net_close(&d->uc);
		net_close(&d->c);
		vm_free(d->vm);
		d->vm = NULL;
	}
	return err;
}

void dest_finish(struct dest *d)
{
	struct proto_after a = { 0 };
	uint8_t buf[PROTO_AFTER_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	struct timespec ts = { 0, 0 };
	uint64_t u0 = 0;
	uint64_t t0 = 0;
	uint64_t first;

	/* the rate over the second after the guest's first report here */
	for (int i = 0; i < 200 && !(first = devwin_first_report_ns(&d->vm->dw)); i++) {
		ts.tv_nsec = 5000000;
		nanosleep(&ts, NULL);
	}
	if (first) {
		u0 = devwin_units(&d->vm->dw);
		t0 = hm_now_ns();
		ts.tv_sec = AFTER_WINDOW_NS / NSEC_PER_SEC;
		ts.tv_nsec = 0;
		nanosleep(&ts, NULL);
		a.units_per_s = (devwin_units(&d->vm->dw) - u0) * NSEC_PER_SEC / (hm_now_ns() - t0);
		a.first_report_ns = first - d->run_ns;
	}
	proto_after_encode(buf, &a);
	if (net_send(&d->c, PROTO_AFTER, 0, &v, 1))
		hm_dbg("the source left before our report");
	net_close(&d->uc);
	net_close(&d->c);
	bitmap_exit(&d->written);
}
