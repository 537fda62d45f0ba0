// SPDX-License-Identifier: MIT
#define LOG_PREFIX "mig: "
#include "src/mig.h"

#include <errno.h>
#include <stdarg.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	bool cancel; /* atomic */
	struct net_conn c;
	struct dirty dirty;
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
		if (proto_error_decode(m->rx, h->len, &e, &why))
			return fail(m, -EPROTO, "destination failed with a malformed error");
		return fail(m, -(int)e.code ?: -EIO, "destination %s: %s",
			    h->type == PROTO_REFUSE ? "refused the VM" : "failed", e.msg);
	}
	if (h->type != type)
		return fail(m, -EPROTO, "unexpected frame %u from the destination", h->type);
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

	hm.session = t0 ^ (uint64_t)getpid() << 32;
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
	return 0;
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
	double bytes = (double)pages * HM_PAGE_SIZE * wire_ratio(m);

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

static int precopy(struct mig *m)
{
	int err;

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
		if (m->s.predicted_downtime_ns <= m->p.downtime_limit_ns)
			return 0;
		if (m->p.timeout_ns && hm_now_ns() - m->s.start_ns > m->p.timeout_ns)
			return fail(
			    m, -ETIMEDOUT,
			    "pre-copy did not converge within %llu s (dirty rate %.0f pages/s, "
			    "bandwidth %.1f MB/s); the VM keeps running here",
			    (unsigned long long)(m->p.timeout_ns / NSEC_PER_SEC), m->s.dirty_rate,
			    m->s.bandwidth / 1e6);
	}
}

static int send_state(struct mig *m)
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
		err = net_send(&m->c, PROTO_SWITCH, 0, NULL, 0);
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

static int switchover(struct mig *m)
{
	struct proto_started st;
	const char *why = "";
	struct proto_hdr h;
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
		err = send_state(m);
	if (!err)
		err = expect(m, PROTO_STARTED, &h);
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
	m->s.phase = "done";
	pthread_mutex_unlock(&m->lock);
	return 0;
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
	if (vm_get_state(m->vm) == VM_PAUSED && vm_resume(m->vm))
		hm_err("cannot resume the VM after a failed migration");
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
	if (!err)
		err = switchover(m);
	dirty_stop(&m->dirty);
	if (err)
		rollback(m, err);
	else
		after(m);
	net_close(&m->c);
	pthread_mutex_lock(&m->lock);
	m->s.end_ns = hm_now_ns();
	m->s.bytes_wire = m->c.sent;
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
	m->s.phase = "starting";
	m->s.start_ns = hm_now_ns();
	m->s.units_before = p->units_before;
	pthread_mutex_init(&m->lock, NULL);
	if (bitmap_init(&m->todo, vm->mem.pages) ||
	    pthread_create(&m->thread, NULL, mig_thread, m)) {
		bitmap_exit(&m->todo);
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
}
