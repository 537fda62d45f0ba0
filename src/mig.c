// SPDX-License-Identifier: MIT
#define LOG_PREFIX "mig: "
#include "src/mig.h"

#include <errno.h>
#include <stdarg.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include "guest/abi.h"
#include "src/bitmap.h"
#include "src/compress.h"
#include "src/dirty.h"
#include "src/json.h"
#include "src/log.h"
#include "src/net.h"
#include "src/proto.h"
#include "src/vm.h"
#include "src/vmstate.h"

#define CONNECT_TIMEOUT_MS 5000
#define IO_TIMEOUT_MS	   10000
#define CHECKS_TIMEOUT_MS  30000
#define AFTER_TIMEOUT_MS   3000
/* post-copy: the destination may wait this long for faults to drain */
#define POSTCOPY_TIMEOUT_MS 15000
/* rounds shorter than this are too short to measure the bandwidth */
#define MIN_MEASURE_NS (20 * NSEC_PER_MSEC)

struct mig {
	struct vm *vm;
	struct mig_params p;
	mig_done_fn done;
	void *done_arg;
	pthread_t thread;
	pthread_mutex_t lock; /* guards s */
	struct mig_stats s;
	bool cancel;	    /* atomic */
	struct net_conn c;  /* bulk channel */
	struct net_conn uc; /* urgent channel: page requests and answers */
	struct dirty dirty;
	/* post-copy */
	struct bitmap sent; /* pages sent after the switch, by either path */
	uint64_t cursor;    /* pusher position, moved by requests (atomic) */
	pthread_t uthread;
	bool ustarted;
	bool peer_error;	   /* the destination said it failed (ERROR/REFUSE) */
	bool ustop;		   /* tells the urgent thread to end (atomic) */
	unsigned int push_windows; /* unpaced windows measured by the pusher */
	uint64_t session;
	struct bitmap owed; /* post-copy: every page the destination was owed */
	uint8_t uhead[PROTO_PAGES_HDR + 8];
	uint8_t urx[64];
	struct bitmap todo; /* pages to send */
	struct compress lz;
	uint8_t head[PROTO_PAGES_HDR + 8 * PROTO_BATCH_MAX];
	uint8_t raw[PROTO_BATCH_MAX * PROTO_PAGE_SIZE];
	uint8_t lzbuf[PROTO_BATCH_MAX * PROTO_PAGE_SIZE];
	uint8_t rx[PROTO_FRAME_MAX];
	char why[256];
};

const char *mig_mode_name(enum mig_mode m)
{
	static const char *const names[] = { "precopy", "postcopy", "hybrid" };

	return (unsigned int)m < ARRAY_SIZE(names) ? names[m] : "?";
}

static void set_phase(struct mig *m, const char *phase)
{
	pthread_mutex_lock(&m->lock);
	m->s.phase = phase;
	pthread_mutex_unlock(&m->lock);
}

static int fail(struct mig *m, int err, const char *fmt, ...) __printf(3, 4);
static int fail(struct mig *m, int err, const char *fmt, ...)
{
	va_list ap;

	if (!m->why[0]) {
		va_start(ap, fmt);
		vsnprintf(m->why, sizeof(m->why), fmt, ap);
		va_end(ap);
	}
	return err ? err : -EIO;
}

static const char *net_error(int err)
{
	switch (err) {
	case -ETIMEDOUT:
		return "the destination stopped answering (timeout)";
	case -EPIPE:
		return "the connection to the destination was lost";
	default:
		return strerror(-err);
	}
}

/* Read one frame; an ERROR or REFUSE from the peer becomes our failure. */
static int expect(struct mig *m, uint32_t type, struct proto_hdr *h)
{
	const char *why = "malformed frame";
	struct proto_error e;
	int err = net_recv(&m->c, h, m->rx, sizeof(m->rx), &why);

	if (err == -EBADMSG || err == -EPROTO)
		return fail(m, err, "bad frame from the destination: %s", why);
	if (err)
		return fail(m, err, "%s", net_error(err));
	if (h->type == PROTO_ERROR || h->type == PROTO_REFUSE) {
		m->peer_error = true;
		if (proto_error_decode(m->rx, h->len, &e, &why))
			return fail(m, -EPROTO, "destination failed with a malformed error");
		return fail(m, -(int)e.code ?: -EIO, "destination %s: %s",
			    h->type == PROTO_REFUSE ? "refused the VM" : "failed", e.msg);
	}
	if (h->type != type)
		return fail(m, -EPROTO, "unexpected frame %u from the destination", h->type);
	return 0;
}

/* The second connection: page requests must never queue behind bulk data. */
static int open_urgent(struct mig *m, uint64_t session)
{
	struct proto_hello hm = { PROTO_MAGIC, PROTO_VERSION, PROTO_CH_URGENT, session };
	uint8_t buf[PROTO_HELLO_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	const char *why = "";
	struct proto_hdr h;
	char reason[256];
	int err;

	err = net_connect(&m->uc, m->p.to, CONNECT_TIMEOUT_MS, reason, sizeof(reason));
	if (err)
		return fail(m, err, "urgent channel: %s", reason);
	m->uc.timeout_ms = IO_TIMEOUT_MS;
	proto_hello_encode(buf, &hm);
	err = net_send(&m->uc, PROTO_HELLO, 0, &v, 1);
	if (!err)
		err = net_recv(&m->uc, &h, m->urx, sizeof(m->urx), &why);
	if (err)
		return fail(m, err, "urgent channel: %s", net_error(err));
	if (h.type != PROTO_HELLO || proto_hello_decode(m->urx, h.len, &hm, &why) ||
	    hm.channel != PROTO_CH_URGENT)
		return fail(m, -EPROTO, "urgent channel: bad hello from the destination");
	return 0;
}

static int hello(struct mig *m)
{
	struct proto_hello hm = { PROTO_MAGIC, PROTO_VERSION, PROTO_CH_BULK, 0 };
	uint8_t buf[PROTO_HELLO_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	const char *why = "";
	struct proto_hdr h;
	uint64_t t0 = hm_now_ns();
	int err;

	if (!m->session)
		m->session = t0 ^ (uint64_t)getpid() << 32;
	hm.session = m->session;
	proto_hello_encode(buf, &hm);
	err = net_send(&m->c, PROTO_HELLO, 0, &v, 1);
	if (err)
		return fail(m, err, "%s", net_error(err));
	err = expect(m, PROTO_HELLO, &h);
	if (err)
		return err;
	if (proto_hello_decode(m->rx, h.len, &hm, &why))
		return fail(m, -EPROTO, "destination: %s", why);
	m->s.rtt_ns = hm_now_ns() - t0;
	return open_urgent(m, hm.session);
}

static int checks(struct mig *m)
{
	struct proto_vmdesc d = { 0 };
	uint8_t buf[PROTO_VMDESC_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	struct proto_hdr h;
	int err;

	d.mem_bytes = m->vm->mem.size;
	d.nr_vcpus = m->vm->nr_vcpus;
	d.xsave_size = 4096;
	d.tsc_khz = m->vm->tsc_khz;
	vm_arch_features(m->vm, d.cpuid, PROTO_CPUID_WORDS);
	snprintf(d.spec, sizeof(d.spec), "%s", m->p.spec);
	proto_vmdesc_encode(buf, &d);
	err = net_send(&m->c, PROTO_VMDESC, 0, &v, 1);
	if (err)
		return fail(m, err, "%s", net_error(err));
	m->c.timeout_ms = CHECKS_TIMEOUT_MS;
	err = expect(m, PROTO_ACCEPT, &h);
	m->c.timeout_ms = IO_TIMEOUT_MS;
	return err;
}

/* Pages the host has backed are the only ones that can hold data: queue those. */
static int queue_resident(struct mig *m)
{
	const uint64_t chunk = 1ULL << 18;
	unsigned char *vec = malloc(chunk);

	if (!vec)
		return -ENOMEM;
	for (uint64_t first = 0; first < m->vm->mem.pages; first += chunk) {
		uint64_t n = min_t(uint64_t, chunk, m->vm->mem.pages - first);

		if (mincore(m->vm->mem.hva + first * HM_PAGE_SIZE, n * HM_PAGE_SIZE, vec)) {
			free(vec);
			return -errno;
		}
		for (uint64_t i = 0; i < n; i++)
			if (vec[i] & 1)
				bitmap_set(&m->todo, first + i);
	}
	free(vec);
	return 0;
}

/* Send one batch of @n pages; zero pages go as flags, the rest raw or lz4. */
static int send_batch(struct mig *m, uint64_t *gfns, uint32_t n)
{
	struct iovec v[3];
	uint32_t data = 0;
	uint32_t zero = 0;
	size_t lz;
	int err;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *page = m->vm->mem.hva + gfns[i] * HM_PAGE_SIZE;

		if (compress_page_is_zero(page)) {
			gfns[i] |= PROTO_ZERO_PAGE;
			zero++;
			continue;
		}
		memcpy(m->raw + data, page, HM_PAGE_SIZE);
		data += HM_PAGE_SIZE;
	}
	lz = data ? compress_batch(&m->lz, m->raw, data, m->lzbuf, sizeof(m->lzbuf)) : 0;
	v[0] = (struct iovec){ m->head,
			       proto_pages_encode_head(m->head, gfns, n, lz ? PROTO_PAGES_LZ4 : 0,
						       lz ? (uint32_t)lz : data) };
	v[1] = (struct iovec){ lz ? m->lzbuf : m->raw, lz ? lz : data };
	err = net_send(&m->c, PROTO_PAGES, lz ? PROTO_PAGES_LZ4 : 0, v, 2);
	if (err)
		return fail(m, err, "%s", net_error(err));
	pthread_mutex_lock(&m->lock);
	m->s.pages_sent += n;
	m->s.zero_pages += zero;
	m->s.bytes_raw += (uint64_t)n * HM_PAGE_SIZE;
	m->s.bytes_wire = m->c.sent;
	if (m->s.remaining >= n)
		m->s.remaining -= n;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* Send every page queued in m->todo, clearing it as it goes. */
static int send_queued(struct mig *m, bool can_cancel)
{
	uint64_t gfns[PROTO_BATCH_MAX];
	uint32_t n = 0;
	int err;

	for (uint64_t g = bitmap_find_next(&m->todo, 0); g < m->todo.nbits;
	     g = bitmap_find_next(&m->todo, g + 1)) {
		bitmap_clear(&m->todo, g);
		gfns[n++] = g;
		if (n < PROTO_BATCH_MAX)
			continue;
		err = send_batch(m, gfns, n);
		if (err)
			return err;
		n = 0;
		if (can_cancel && __atomic_load_n(&m->cancel, __ATOMIC_ACQUIRE))
			return fail(m, -ECANCELED, "cancelled");
	}
	return n ? send_batch(m, gfns, n) : 0;
}

static int send_round_info(struct mig *m, uint64_t pages)
{
	struct proto_round r = { m->s.rounds, pages, (uint64_t)m->s.dirty_rate };
	uint8_t buf[PROTO_ROUND_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	int err;

	proto_round_encode(buf, &r);
	err = net_send(&m->c, PROTO_ROUND, 0, &v, 1);
	return err ? fail(m, err, "%s", net_error(err)) : 0;
}

/* Bytes on the wire per raw page byte so far (compression and zero pages). */
static double wire_ratio(struct mig *m)
{
	return m->s.bytes_raw ? (double)m->s.bytes_wire / (double)m->s.bytes_raw : 1.0;
}

static uint64_t predict_ns(struct mig *m, uint64_t pages)
{
	/* what still sits in our socket buffer goes first */
	double bytes = (double)pages * HM_PAGE_SIZE * wire_ratio(m) + (double)net_unacked(&m->c);

	if (!pages)
		return m->s.rtt_ns;
	if (m->s.bandwidth <= 0)
		return UINT64_MAX;
	return (uint64_t)(bytes / m->s.bandwidth * 1e9) + m->s.rtt_ns;
}

/* One pre-copy round: send what is queued, then harvest what got dirty meanwhile. */
static int precopy_round(struct mig *m)
{
	uint64_t t0 = hm_now_ns();
	/* what reached the peer, not what sits in our socket buffer */
	uint64_t w0 = m->c.sent - net_unacked(&m->c);
	uint64_t w1;
	uint64_t pages = bitmap_count(&m->todo);
	int64_t dirtied;
	int err;

	err = send_queued(m, true);
	if (err)
		return err;
	dirtied = dirty_harvest(&m->dirty, &m->todo);
	if (dirtied < 0)
		return fail(m, (int)dirtied, "KVM_GET_DIRTY_LOG failed: %s",
			    strerror((int)-dirtied));
	w1 = m->c.sent - net_unacked(&m->c);
	pthread_mutex_lock(&m->lock);
	/* short rounds say little about the link: keep the previous figure unless none */
	if (w1 > w0 && (hm_now_ns() - t0 >= MIN_MEASURE_NS || m->s.bandwidth <= 0))
		m->s.bandwidth = (double)(w1 - w0) * 1e9 / (double)(hm_now_ns() - t0);
	m->s.dirty_rate = (double)dirtied * 1e9 / (double)(hm_now_ns() - t0);
	if (m->s.rounds < MIG_MAX_ROUNDS) {
		m->s.round_pages[m->s.rounds] = pages;
		m->s.round_dirty_rate[m->s.rounds] = m->s.dirty_rate;
	}
	m->s.rounds++;
	m->s.remaining = bitmap_count(&m->todo);
	m->s.predicted_downtime_ns = predict_ns(m, m->s.remaining);
	pthread_mutex_unlock(&m->lock);
	return send_round_info(m, pages);
}

/*
 * Hybrid: give pre-copy up for post-copy when it stops paying. Forced by
 * --postcopy-after-rounds, else when a round shrank the rest by less than
 * 10 %, or at the timeout. (The tunable policy of DESIGN.md replaces this
 * rule in policy/.)
 */
static bool hybrid_switch(struct mig *m, uint64_t prev)
{
	if (m->p.postcopy_after_rounds)
		return m->s.rounds >= m->p.postcopy_after_rounds;
	if (m->p.timeout_ns && hm_now_ns() - m->s.start_ns > m->p.timeout_ns)
		return true;
	/* dirtying as fast as the link carries: pre-copy is projected never to converge */
	if (m->s.bandwidth > 0 && m->s.dirty_rate * HM_PAGE_SIZE >= 0.9 * m->s.bandwidth)
		return true;
	return m->s.rounds >= 2 && m->s.remaining * 10 > prev * 9;
}

/* Returns 0 to stop-and-copy, 1 to switch to post-copy, or -errno. */
static int precopy(struct mig *m)
{
	uint64_t prev = UINT64_MAX;
	int err;

	if (m->p.mode == MIG_POSTCOPY)
		return 1;
	set_phase(m, "precopy");
	err = dirty_start(&m->dirty, m->vm);
	if (err)
		return fail(m, err, "cannot start dirty logging: %s", strerror(-err));
	bitmap_drain_into(&m->todo, &m->vm->dev_dirty);
	err = queue_resident(m);
	if (err)
		return fail(m, err, "mincore failed: %s", strerror(-err));
	m->s.remaining = bitmap_count(&m->todo);
	for (;;) {
		err = precopy_round(m);
		if (err)
			return err;
		/* a forced switch point wins over convergence */
		if (m->p.mode == MIG_HYBRID && m->p.postcopy_after_rounds &&
		    m->s.rounds >= m->p.postcopy_after_rounds)
			return 1;
		if (m->s.predicted_downtime_ns <= m->p.downtime_limit_ns)
			return 0;
		if (m->p.mode == MIG_HYBRID && hybrid_switch(m, prev))
			return 1;
		prev = m->s.remaining;
		if (m->p.mode == MIG_PRECOPY && m->p.timeout_ns &&
		    hm_now_ns() - m->s.start_ns > m->p.timeout_ns)
			return fail(
			    m, -ETIMEDOUT,
			    "pre-copy did not converge within %llu s (dirty rate %.0f pages/s, "
			    "bandwidth %.1f MB/s); the VM keeps running here",
			    (unsigned long long)(m->p.timeout_ns / NSEC_PER_SEC), m->s.dirty_rate,
			    m->s.bandwidth / 1e6);
	}
}

static int send_state(struct mig *m, uint32_t switch_flags)
{
	struct vmstate_devices dev = { 0 };
	struct vmstate_buf b;
	struct iovec v;
	int err;

	vmstate_init(&b, m->rx, sizeof(m->rx));
	err = vm_arch_save(m->vm, &b, m->why, sizeof(m->why));
	if (err)
		return err;
	if (m->vm->has_io) {
		dev.io_seq = m->vm->io.seq;
		dev.io_rate = m->vm->io.rate;
	}
	for (unsigned int i = 0; i < m->vm->nr_vcpus && i < ARRAY_SIZE(dev.units); i++)
		dev.units[i] = m->vm->dw.cpu[i].units;
	vmstate_put(&b, VS_DEVICES, VMSTATE_VM_CPU, &dev, sizeof(dev));
	vmstate_put(&b, VS_END, VMSTATE_VM_CPU, NULL, 0);
	if (b.overflow)
		return fail(m, -E2BIG, "VM state does not fit one frame");
	v = (struct iovec){ b.buf, b.len };
	err = net_send(&m->c, PROTO_VMSTATE, 0, &v, 1);
	if (!err)
		err = net_send(&m->c, PROTO_SWITCH, switch_flags, NULL, 0);
	return err ? fail(m, err, "%s", net_error(err)) : 0;
}

/* Longest time any vCPU had gone without a progress report when we paused. */
static uint64_t report_age(struct mig *m, uint64_t at)
{
	uint64_t age = 0;

	pthread_mutex_lock(&m->vm->dw.lock);
	for (unsigned int i = 0; i < m->vm->nr_vcpus; i++)
		if (m->vm->dw.cpu[i].last_report_ns && at > m->vm->dw.cpu[i].last_report_ns)
			age = max_t(uint64_t, age, at - m->vm->dw.cpu[i].last_report_ns);
	pthread_mutex_unlock(&m->vm->dw.lock);
	return age;
}

static int started(struct mig *m, uint64_t t_pause, uint64_t age);

static int switchover(struct mig *m)
{
	uint64_t t_pause;
	uint64_t age;
	int64_t dirtied;
	int err;

	set_phase(m, "stop-and-copy");
	t_pause = hm_now_ns();
	err = vm_pause(m->vm);
	if (err)
		return fail(m, err, "the VM stopped during migration");
	age = report_age(m, t_pause);
	dirtied = dirty_harvest(&m->dirty, &m->todo);
	if (dirtied < 0)
		return fail(m, (int)dirtied, "KVM_GET_DIRTY_LOG failed");
	err = send_queued(m, false);
	if (!err)
		err = send_state(m, 0);
	if (!err)
		err = started(m, t_pause, age);
	if (!err)
		set_phase(m, "done");
	return err;
}

/* Wait for the destination's STARTED and account the switch-over. */
static int started(struct mig *m, uint64_t t_pause, uint64_t age)
{
	struct proto_started st;
	const char *why = "";
	struct proto_hdr h;
	int err = expect(m, PROTO_STARTED, &h);

	if (err)
		return err;
	if (proto_started_decode(m->rx, h.len, &st, &why))
		return fail(m, -EPROTO, "destination: %s", why);
	pthread_mutex_lock(&m->lock);
	m->s.src_pause_ns = hm_now_ns() - t_pause;
	m->s.dst_switch_ns = st.switch_to_run_ns;
	m->s.downtime_ns = m->s.src_pause_ns > m->s.rtt_ns / 2 ? m->s.src_pause_ns - m->s.rtt_ns / 2
							       : m->s.src_pause_ns;
	m->s.guest_gap_ns = age + m->s.downtime_ns;
	m->s.remaining = 0;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* ---- post-copy ------------------------------------------------------------- */

/* Answer one page request on the urgent channel, straight from guest RAM. */
static int answer(struct mig *m, uint64_t gfn)
{
	const uint8_t *page = m->vm->mem.hva + gfn * HM_PAGE_SIZE;
	bool zero = compress_page_is_zero(page);
	uint64_t g = gfn | (zero ? PROTO_ZERO_PAGE : 0);
	bool dup = bitmap_test_and_set(&m->sent, gfn);
	struct iovec v[2];
	int err;

	v[0] = (struct iovec){ m->uhead, proto_pages_encode_head(m->uhead, &g, 1, 0,
								 zero ? 0 : HM_PAGE_SIZE) };
	v[1] = (struct iovec){ (void *)page, zero ? 0 : HM_PAGE_SIZE };
	err = net_send(&m->uc, PROTO_PAGES, 0, v, 2);
	if (err)
		return err;
	/* spatial locality: the pusher carries on right after the fault */
	__atomic_store_n(&m->cursor, gfn + 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&m->lock);
	m->s.pages_requested++;
	m->s.dup_pages += dup;
	m->s.bytes_wire = m->c.sent + m->uc.sent;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* Urgent channel: requests in, pages out, ahead of anything the pusher queued. */
static void *urgent_thread(void *arg)
{
	struct mig *m = arg;

	while (!__atomic_load_n(&m->ustop, __ATOMIC_ACQUIRE)) {
		struct pollfd p = { .fd = m->uc.fd, .events = POLLIN };
		const char *why = "";
		struct proto_hdr h;
		uint64_t gfn;
		int err;

		if (poll(&p, 1, 100) <= 0)
			continue;
		err = net_recv(&m->uc, &h, m->urx, sizeof(m->urx), &why);
		if (err)
			break; /* the destination closes it once every page is there */
		if (h.type != PROTO_REQ)
			break;
		gfn = proto_get_le64(m->urx);
		if (gfn >= m->vm->mem.pages || answer(m, gfn))
			break;
	}
	return NULL;
}

/* Next page to push: from the cursor on, then wrapping round. */
static uint64_t next_push(struct mig *m)
{
	uint64_t from = __atomic_load_n(&m->cursor, __ATOMIC_ACQUIRE);
	uint64_t g = bitmap_find_next(&m->todo, from);

	if (g >= m->todo.nbits)
		g = bitmap_find_next(&m->todo, 0);
	if (g < m->todo.nbits)
		__atomic_compare_exchange_n(&m->cursor, &from, g + 1, false, __ATOMIC_ACQ_REL,
					    __ATOMIC_RELAXED);
	return g;
}

/* Background pusher: every page still queued, each sent once by either path. */
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
	uint64_t now = hm_now_ns();
	uint64_t acked = m->c.sent - net_unacked(&m->c);
	double rate;

	if (m->p.bandwidth || now - *t0 < PUSH_WINDOW_NS)
		return;
	rate = (double)(acked - *b0) * 1e9 / (double)(now - *t0);
	*t0 = now;
	*b0 = acked;
	/* a paced window measures our own cap: only unpaced ones teach the link rate */
	if (m->c.rate)
		return;
	if (rate > *best)
		*best = rate;
	if (*best > 0 && ++m->push_windows >= PUSH_LEARN_WINDOWS) {
		m->c.rate = (uint64_t)(*best * PUSH_SHARE);
		m->c.pace_t0 = 0;
	}
}

static int push_all(struct mig *m)
{
	uint64_t gfns[PROTO_BATCH_MAX];
	uint64_t t0 = hm_now_ns();
	uint64_t b0 = m->c.sent - net_unacked(&m->c);
	double best = 0;
	uint32_t n = 0;
	int err;

	m->push_windows = 0;
	for (uint64_t g; (g = next_push(m)) < m->todo.nbits;) {
		bitmap_clear(&m->todo, g);
		if (bitmap_test_and_set(&m->sent, g))
			continue; /* a request got it there first */
		gfns[n++] = g;
		if (n < PROTO_BATCH_MAX)
			continue;
		err = send_batch(m, gfns, n);
		if (err)
			return err;
		m->s.pages_pushed += n;
		n = 0;
		pace_pusher(m, &t0, &b0, &best);
	}
	err = n ? send_batch(m, gfns, n) : 0;
	m->s.pages_pushed += n;
	return err;
}

static int complete(struct mig *m)
{
	struct proto_complete c;
	const char *why = "";
	struct proto_hdr h;
	int err = net_send(&m->c, PROTO_DONE, 0, NULL, 0);

	if (err)
		return fail(m, err, "%s", net_error(err));
	err = expect(m, PROTO_COMPLETE, &h);
	if (err)
		return err;
	if (proto_complete_decode(m->rx, h.len, &c, &why))
		return fail(m, -EPROTO, "destination: %s", why);
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
	m->s.phase = "done";
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void stop_urgent(struct mig *m)
{
	if (!m->ustarted)
		return;
	__atomic_store_n(&m->ustop, true, __ATOMIC_RELEASE);
	pthread_join(m->uthread, NULL);
	m->ustarted = false;
	__atomic_store_n(&m->ustop, false, __ATOMIC_RELEASE);
}

static bool link_error(int err)
{
	return err == -EPIPE || err == -ETIMEDOUT || err == -ECONNRESET || err == -ECONNABORTED ||
	       err == -ENETUNREACH || err == -EHOSTUNREACH || err == -ECONNREFUSED;
}

/* Read the destination's map of the pages it holds, up to its ACCEPT. */
static int read_held(struct mig *m)
{
	for (;;) {
		struct proto_pagemap pm;
		const char *why = "";
		struct proto_hdr h;
		int err = net_recv(&m->c, &h, m->rx, sizeof(m->rx), &why);

		if (err)
			return err;
		if (h.type == PROTO_ACCEPT)
			return 0;
		if (h.type != PROTO_PAGEMAP ||
		    proto_pagemap_decode(m->rx, (size_t)h.len, m->vm->mem.pages, &pm, &why))
			return fail(m, -EPROTO, "bad page map from the destination on resume");
		for (uint32_t i = 0; i < pm.nbits; i++)
			if (((pm.bits[i / 8] >> (i % 8)) & 1) && pm.first + i < m->sent.nbits)
				bitmap_set(&m->sent, pm.first + i);
	}
}

/* One attempt: both channels up again, and what is still owed queued. */
static int resume_once(struct mig *m)
{
	char why[256];
	int err = net_connect(&m->c, m->p.to, 2000, why, sizeof(why));

	if (err)
		return err;
	m->c.timeout_ms = IO_TIMEOUT_MS;
	m->c.rate = m->p.bandwidth;
	err = hello(m);
	if (!err) {
		bitmap_zero(&m->sent);
		err = read_held(m);
	}
	if (err) {
		net_close(&m->uc);
		net_close(&m->c);
		return err;
	}
	/* owed and not held: everything in flight when the link broke goes again */
	bitmap_zero(&m->todo);
	for (uint64_t g = bitmap_find_next(&m->owed, 0); g < m->owed.nbits;
	     g = bitmap_find_next(&m->owed, g + 1))
		if (!bitmap_test(&m->sent, g))
			bitmap_set(&m->todo, g);
	bitmap_copy(&m->sent, &m->owed);
	for (uint64_t g = bitmap_find_next(&m->todo, 0); g < m->todo.nbits;
	     g = bitmap_find_next(&m->todo, g + 1))
		bitmap_clear(&m->sent, g);
	__atomic_store_n(&m->cursor, 0, __ATOMIC_RELEASE);
	m->c.timeout_ms = POSTCOPY_TIMEOUT_MS;
	if (pthread_create(&m->uthread, NULL, urgent_thread, m))
		return -EAGAIN;
	m->ustarted = true;
	return 0;
}

/*
 * The link broke after the switch: the guest waits on the destination for
 * pages only we hold. Keep trying to reconnect for the window given, and
 * say so; the VM stays paused here either way.
 */
static int reconnect(struct mig *m, int cause)
{
	uint64_t deadline = hm_now_ns() + m->p.reconnect_ns;
	int err = cause;

	stop_urgent(m);
	net_close(&m->uc);
	net_close(&m->c);
	set_phase(m, "postcopy-reconnecting");
	for (int attempt = 1; hm_now_ns() < deadline; attempt++) {
		hm_warn("post-copy: link to %s lost (%s); the VM waits on both sides; reconnecting "
			"(attempt %d, %.0f s left)",
			m->p.to, net_error(err), attempt, (double)(deadline - hm_now_ns()) / 1e9);
		err = resume_once(m);
		if (!err) {
			hm_warn("post-copy: reconnected to %s, %llu pages still owed", m->p.to,
				(unsigned long long)bitmap_count(&m->todo));
			m->why[0] = 0;
			set_phase(m, "postcopy");
			return 0;
		}
		poll(NULL, 0, 1000);
	}
	return fail(m, err, "post-copy: could not reconnect to %s within %llu s (%s)", m->p.to,
		    (unsigned long long)(m->p.reconnect_ns / NSEC_PER_SEC), net_error(err));
}

/*
 * Stop, send the page map, state and switch; once the destination runs,
 * serve requests and push the rest. From STARTED on the destination owns
 * the VM: a failure no longer resumes it here, but this side keeps every
 * page until COMPLETE.
 */
static int postcopy(struct mig *m)
{
	uint64_t t_pause = hm_now_ns();
	uint64_t age;
	int err;

	set_phase(m, "switch");
	if (m->p.mode == MIG_POSTCOPY) {
		/*
		 * Scan what is resident while the guest still runs, with dirty
		 * logging on to catch pages touched after the scan: mincore of
		 * 4 GiB with the VM paused cost 2-6 ms of downtime.
		 */
		err = dirty_start_collect(&m->dirty, m->vm);
		bitmap_drain_into(&m->todo, &m->vm->dev_dirty);
		if (!err)
			err = queue_resident(m);
		if (err)
			return fail(m, err, "cannot collect the pages to send: %s", strerror(-err));
		t_pause = hm_now_ns();
	}
	err = vm_pause(m->vm);
	if (err)
		return fail(m, err, "the VM stopped during migration");
	age = report_age(m, t_pause);
	hm_dbg("post-copy switch: vCPUs stopped in %llu us",
	       (unsigned long long)(hm_now_ns() - t_pause) / 1000);
	{
		int64_t d = dirty_harvest(&m->dirty, &m->todo);

		err = d < 0 ? (int)d : 0;
	}
	if (err)
		return fail(m, err, "cannot collect the pages to send: %s", strerror(-err));
	/* dirty_stop (a memslot update, ~4 ms on 4 GiB) waits until the guest runs there */
	hm_dbg("post-copy switch: paused and collected in %llu us",
	       (unsigned long long)(hm_now_ns() - t_pause) / 1000);
	m->s.remaining = bitmap_count(&m->todo);
	/* what the destination is owed, kept to resume after a broken link */
	bitmap_copy(&m->owed, &m->todo);
	err = net_send_pagemap(&m->c, &m->todo);
	if (!err)
		err = send_state(m, PROTO_SWITCH_POSTCOPY);
	if (err)
		return err;
	hm_dbg("post-copy switch: map and state sent at %llu us",
	       (unsigned long long)(hm_now_ns() - t_pause) / 1000);
	/*
	 * From here the destination may run the guest: never resume it here
	 * unless the destination says it failed. Requests can come before
	 * STARTED (its VMM threads fault too), so serve them now.
	 */
	pthread_mutex_lock(&m->lock);
	m->s.postcopy = true;
	pthread_mutex_unlock(&m->lock);
	if (pthread_create(&m->uthread, NULL, urgent_thread, m))
		return fail(m, -EAGAIN, "cannot start the urgent channel thread");
	m->ustarted = true;
	err = started(m, t_pause, age);
	if (err) {
		if (m->peer_error)
			m->s.postcopy = false;
		return err;
	}
	set_phase(m, "postcopy");
	dirty_stop(&m->dirty);
	m->c.timeout_ms = POSTCOPY_TIMEOUT_MS;
	for (;;) {
		err = push_all(m);
		if (!err)
			err = complete(m);
		if (!err || !link_error(err) || m->peer_error || !m->p.reconnect_ns)
			return err;
		m->why[0] = 0;
		err = reconnect(m, err);
		if (err)
			return err;
		m->s.reconnects++;
	}
}

/* The destination reports the guest's rate after the move; not fatal if it does not. */
static void after(struct mig *m)
{
	struct proto_after a;
	const char *why = "";
	struct proto_hdr h;

	m->c.timeout_ms = AFTER_TIMEOUT_MS;
	if (net_recv(&m->c, &h, m->rx, sizeof(m->rx), &why) || h.type != PROTO_AFTER ||
	    proto_after_decode(m->rx, h.len, &a, &why))
		return;
	pthread_mutex_lock(&m->lock);
	m->s.units_after = (double)a.units_per_s;
	m->s.dst_first_report_ns = a.first_report_ns;
	m->s.guest_gap_ns += a.first_report_ns;
	pthread_mutex_unlock(&m->lock);
}

static void rollback(struct mig *m, int err)
{
	if (m->c.fd >= 0 && err != -EPIPE)
		net_send_error(&m->c, err, m->why);
	if (m->s.postcopy) {
		/* the destination has run the guest: resuming here would fork it */
		hm_err("post-copy failed after the switch-over: the VM stays paused here with "
		       "every page the destination has not confirmed; recovery is not implemented "
		       "yet (migrate --resume)");
	} else if (vm_get_state(m->vm) == VM_PAUSED && vm_resume(m->vm)) {
		hm_err("cannot resume the VM after a failed migration");
	}
	pthread_mutex_lock(&m->lock);
	m->s.err = err;
	snprintf(m->s.error, sizeof(m->s.error), "%s", m->why[0] ? m->why : strerror(-err));
	m->s.phase = "failed";
	pthread_mutex_unlock(&m->lock);
}

static void *mig_thread(void *arg)
{
	struct mig *m = arg;
	char why[256] = "";
	uint64_t units0 = devwin_units(&m->vm->dw);
	int err;

	set_phase(m, "connecting");
	err = net_connect(&m->c, m->p.to, CONNECT_TIMEOUT_MS, why, sizeof(why));
	if (err)
		fail(m, err, "%s", why);
	m->c.timeout_ms = IO_TIMEOUT_MS;
	m->c.rate = m->p.bandwidth;
	if (!err)
		set_phase(m, "checks"), err = hello(m);
	if (!err)
		err = checks(m);
	if (!err)
		err = precopy(m);
	m->s.units_during = (double)(devwin_units(&m->vm->dw) - units0) * 1e9 /
			    (double)(hm_now_ns() - m->s.start_ns);
	if (err == 1)
		err = postcopy(m);
	else if (!err)
		err = switchover(m);
	dirty_stop(&m->dirty);
	if (err) {
		rollback(m, err);
	} else {
		/* the move is over; the rate report after it is not part of it */
		m->s.end_ns = hm_now_ns();
		after(m);
	}
	stop_urgent(m);
	net_close(&m->uc);
	net_close(&m->c);
	pthread_mutex_lock(&m->lock);
	if (!m->s.end_ns)
		m->s.end_ns = hm_now_ns();
	m->s.bytes_wire = m->c.sent + m->uc.sent;
	pthread_mutex_unlock(&m->lock);
	m->done(m->done_arg);
	return NULL;
}

struct mig *mig_start(struct vm *vm, const struct mig_params *p, mig_done_fn done, void *arg)
{
	struct mig *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->vm = vm;
	m->p = *p;
	m->done = done;
	m->done_arg = arg;
	m->c.fd = -1;
	m->uc.fd = -1;
	m->s.phase = "starting";
	m->s.start_ns = hm_now_ns();
	m->s.units_before = p->units_before;
	pthread_mutex_init(&m->lock, NULL);
	if (bitmap_init(&m->todo, vm->mem.pages) || bitmap_init(&m->sent, vm->mem.pages) ||
	    bitmap_init(&m->owed, vm->mem.pages) ||
	    pthread_create(&m->thread, NULL, mig_thread, m)) {
		bitmap_exit(&m->todo);
		bitmap_exit(&m->sent);
		bitmap_exit(&m->owed);
		pthread_mutex_destroy(&m->lock);
		free(m);
		return NULL;
	}
	return m;
}

void mig_snapshot(struct mig *m, struct mig_stats *out)
{
	pthread_mutex_lock(&m->lock);
	*out = m->s;
	if (!out->end_ns)
		out->bytes_wire = m->c.sent;
	pthread_mutex_unlock(&m->lock);
}

void mig_cancel(struct mig *m)
{
	__atomic_store_n(&m->cancel, true, __ATOMIC_RELEASE);
}

void mig_free(struct mig *m)
{
	if (!m)
		return;
	pthread_join(m->thread, NULL);
	bitmap_exit(&m->todo);
	bitmap_exit(&m->sent);
	bitmap_exit(&m->owed);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

void mig_report_json(const struct mig_stats *s, struct json_out *j)
{
	uint64_t end = s->end_ns ? s->end_ns : hm_now_ns();

	json_str(j, "phase", s->phase);
	json_dbl(j, "total_ms", ms(end - s->start_ns), 1);
	json_u64(j, "rounds", s->rounds);
	json_u64(j, "bytes_wire", s->bytes_wire);
	json_u64(j, "bytes_raw", s->bytes_raw);
	json_u64(j, "pages_sent", s->pages_sent);
	json_u64(j, "zero_pages", s->zero_pages);
	json_u64(j, "remaining_pages", s->remaining);
	json_dbl(j, "compression_ratio",
		 s->bytes_wire ? (double)s->bytes_raw / (double)s->bytes_wire : 0, 2);
	json_dbl(j, "bandwidth_mbps", s->bandwidth * 8 / 1e6, 1);
	json_dbl(j, "dirty_rate_pages_per_s", s->dirty_rate, 0);
	json_dbl(j, "rtt_ms", ms(s->rtt_ns), 3);
	json_dbl(j, "predicted_downtime_ms",
		 s->predicted_downtime_ns == UINT64_MAX ? -1 : ms(s->predicted_downtime_ns), 3);
	json_dbl(j, "downtime_ms", ms(s->downtime_ns), 3);
	json_dbl(j, "source_pause_ms", ms(s->src_pause_ns), 3);
	json_dbl(j, "dest_switch_ms", ms(s->dst_switch_ns), 3);
	json_dbl(j, "guest_pause_ms", ms(s->guest_gap_ns), 3);
	json_dbl(j, "work_units_per_s_before", s->units_before, 0);
	json_dbl(j, "work_units_per_s_during", s->units_during, 0);
	json_dbl(j, "work_units_per_s_after", s->units_after, 0);
	json_bool(j, "postcopy", s->postcopy);
	if (s->postcopy) {
		json_u64(j, "pages_pushed", s->pages_pushed);
		json_u64(j, "pages_requested", s->pages_requested);
		json_u64(j, "duplicate_pages", s->dup_pages);
		json_u64(j, "remote_faults", s->remote_faults);
		json_u64(j, "local_zero_faults", s->local_zero);
		json_u64(j, "fault_latency_p50_us", s->lat_p50_us);
		json_u64(j, "fault_latency_p90_us", s->lat_p90_us);
		json_u64(j, "fault_latency_p99_us", s->lat_p99_us);
		json_u64(j, "fault_latency_max_us", s->lat_max_us);
		json_dbl(j, "vcpu_blocked_ms", ms(s->blocked_ns), 3);
		json_dbl(j, "last_page_ms", ms(s->last_page_ns), 3);
		json_dbl(j, "work_units_per_s_postcopy", s->units_postcopy, 0);
		json_u64(j, "reconnects", s->reconnects);
	}
	json_arr_begin(j, "round_pages");
	for (uint32_t i = 0; i < s->rounds && i < MIG_MAX_ROUNDS; i++)
		json_u64(j, NULL, s->round_pages[i]);
	json_arr_end(j);
	json_arr_begin(j, "round_dirty_rate");
	for (uint32_t i = 0; i < s->rounds && i < MIG_MAX_ROUNDS; i++)
		json_dbl(j, NULL, s->round_dirty_rate[i], 0);
	json_arr_end(j);
	if (s->err)
		json_str(j, "error", s->error);
}

void mig_report_text(const struct mig_stats *s, const char *to, FILE *f)
{
	uint64_t end = s->end_ns ? s->end_ns : hm_now_ns();

	fprintf(f, "migration to %s: %s\n", to, s->err ? "FAILED" : "done");
	if (s->err)
		fprintf(f, "  error           %s\n", s->error);
	fprintf(f, "  total           %.1f ms, %u pre-copy rounds\n", ms(end - s->start_ns),
		s->rounds);
	fprintf(f,
		"  downtime        %.2f ms (source pause %.2f ms, destination switch %.2f ms, "
		"rtt %.3f ms; predicted %.2f ms)\n",
		ms(s->downtime_ns), ms(s->src_pause_ns), ms(s->dst_switch_ns), ms(s->rtt_ns),
		s->predicted_downtime_ns == UINT64_MAX ? -1.0 : ms(s->predicted_downtime_ns));
	fprintf(f, "  guest pause     %.2f ms (longest gap in its progress reports)\n",
		ms(s->guest_gap_ns));
	fprintf(f,
		"  sent            %llu pages (%llu zero), %.1f MiB on the wire for %.1f MiB raw "
		"(ratio %.2f)\n",
		(unsigned long long)s->pages_sent, (unsigned long long)s->zero_pages,
		(double)s->bytes_wire / 1048576.0, (double)s->bytes_raw / 1048576.0,
		s->bytes_wire ? (double)s->bytes_raw / (double)s->bytes_wire : 0);
	fprintf(f, "  bandwidth       %.1f Mbit/s; dirty rate %.0f pages/s\n",
		s->bandwidth * 8 / 1e6, s->dirty_rate);
	fprintf(f, "  rounds (pages)  ");
	for (uint32_t i = 0; i < s->rounds && i < MIG_MAX_ROUNDS; i++)
		fprintf(f, "%s%llu", i ? " " : "", (unsigned long long)s->round_pages[i]);
	fprintf(f, "\n  guest work/s    before %.0f, during %.0f, after %.0f\n", s->units_before,
		s->units_during, s->units_after);
	if (!s->postcopy)
		return;
	fprintf(f,
		"  post-copy       %llu pages pushed, %llu requested (%llu duplicates); last page "
		"%.1f ms after the switch\n",
		(unsigned long long)s->pages_pushed, (unsigned long long)s->pages_requested,
		(unsigned long long)s->dup_pages, ms(s->last_page_ns));
	fprintf(
	    f,
	    "  remote faults   %llu (+%llu zero-filled locally); latency p50 %llu us, p90 %llu us, "
	    "p99 %llu us, max %llu us; vCPUs blocked %.1f ms\n",
	    (unsigned long long)s->remote_faults, (unsigned long long)s->local_zero,
	    (unsigned long long)s->lat_p50_us, (unsigned long long)s->lat_p90_us,
	    (unsigned long long)s->lat_p99_us, (unsigned long long)s->lat_max_us,
	    ms(s->blocked_ns));
	fprintf(f, "  guest work/s    during post-copy %.0f\n", s->units_postcopy);
}
