// SPDX-License-Identifier: MIT
/*
 * The source's migration session: the thread that runs the phases in
 * order (link, checks, pre-copy, switch-over, post-copy), the rollback
 * that resumes the VM when the destination never took it, and the public
 * API. The phases live in mig_precopy.c, mig_switch.c, mig_postcopy.c.
 */
#define LOG_PREFIX "mig: "
#include "src/mig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "guest/abi.h"
#include "src/log.h"
#include "src/sockbuf.h"
#include "src/mig_priv.h"
#include "src/tls.h"
#include "src/vm.h"

#define AFTER_TIMEOUT_MS 3000

const char *mig_mode_name(enum mig_mode m)
{
	static const char *const names[] = { "precopy", "postcopy", "hybrid", "auto" };

	return (unsigned int)m < ARRAY_SIZE(names) ? names[m] : "?";
}

void mig_set_phase(struct mig *m, const char *phase)
{
	pthread_mutex_lock(&m->lock);
	m->s.phase = phase;
	pthread_mutex_unlock(&m->lock);
	mig_timeline_tick(m, true);
}

int mig_fail(struct mig *m, int err, const char *fmt, ...)
{
	va_list ap;

	if (!m->why[0]) {
		va_start(ap, fmt);
		vsnprintf(m->why, sizeof(m->why), fmt, ap);
		va_end(ap);
	}
	return err < 0 ? err : -EIO;
}

int mig_expect(struct mig *m, uint32_t type, struct proto_hdr *h)
{
	const char *why = "malformed frame";
	struct proto_error e;
	int err = net_recv(&m->link.bulk, h, m->rx, sizeof(m->rx), &why);

	if (err == -EBADMSG || err == -EPROTO)
		return mig_fail(m, -EPROTO, "bad frame from the destination: %s", why);
	if (err)
		return mig_fail(m, err, "%s", link_strerror(err, "destination"));
	if (h->type == PROTO_ERROR || h->type == PROTO_REFUSE) {
		m->peer_error = true;
		m->peer_refused = h->type == PROTO_REFUSE;
		/* the code was checked to be 1..4095: -code is a real -errno */
		if (proto_error_decode(m->rx, h->len, &e, &why))
			return mig_fail(m, -EPROTO,
					"destination failed with a malformed error (%s)", why);
		return mig_fail(m, -(int)e.code, "destination %s: %s",
				h->type == PROTO_REFUSE ? "refused the VM" : "failed", e.msg);
	}
	if (type && h->type != type)
		return mig_fail(m, -EPROTO, "unexpected frame %u from the destination", h->type);
	return 0;
}

static int checks(struct mig *m)
{
	struct proto_vmdesc d = { 0 };
	uint8_t buf[PROTO_VMDESC_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	struct proto_hdr h;
	int64_t resident;
	int err;

	d.mem_bytes = m->vm->mem.size;
	d.nr_vcpus = m->vm->nr_vcpus;
	d.xsave_size = 4096;
	d.tsc_khz = m->vm->tsc_khz;
	vm_arch_features(m->vm, d.cpuid, PROTO_CPUID_WORDS);
	snprintf(d.spec, sizeof(d.spec), "%s", m->p.spec);
	resident = mem_resident_pages(&m->vm->mem);
	d.resident_bytes = resident > 0 ? (uint64_t)resident * HM_PAGE_SIZE : 0;
	proto_vmdesc_encode(buf, &d);
	err = net_send(&m->link.bulk, PROTO_VMDESC, 0, &v, 1);
	if (err)
		return mig_fail(m, err, "%s", link_strerror(err, "destination"));
	m->link.bulk.timeout_ms = MIG_CHECKS_TIMEOUT_MS;
	err = mig_expect(m, PROTO_ACCEPT, &h);
	m->link.bulk.timeout_ms = MIG_IO_TIMEOUT_MS;
	return err;
}

int mig_queue_resident(struct mig *m)
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

int mig_send_batch(struct mig *m, uint64_t *gfns, uint32_t n)
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
	err = net_send(&m->link.bulk, PROTO_PAGES, lz ? PROTO_PAGES_LZ4 : 0, v, 2);
	if (err)
		return mig_fail(m, err, "%s", link_strerror(err, "destination"));
	pthread_mutex_lock(&m->lock);
	m->s.pages_sent += n;
	m->s.zero_pages += zero;
	m->s.bytes_raw += (uint64_t)n * HM_PAGE_SIZE;
	m->s.bytes_wire = m->link.bulk.sent + m->link.urgent.sent;
	if (m->s.remaining >= n)
		m->s.remaining -= n;
	pthread_mutex_unlock(&m->lock);
	mig_timeline_tick(m, false);
	return 0;
}

void mig_set_bandwidth(struct mig *m, uint64_t bytes_per_s)
{
	__atomic_store_n(&m->new_bandwidth, bytes_per_s, __ATOMIC_RELEASE);
	__atomic_fetch_or(&m->new_limits, MIG_NEW_BANDWIDTH, __ATOMIC_ACQ_REL);
}

void mig_set_downtime(struct mig *m, uint64_t ns)
{
	__atomic_store_n(&m->new_downtime_ns, ns, __ATOMIC_RELEASE);
	__atomic_fetch_or(&m->new_limits, MIG_NEW_DOWNTIME, __ATOMIC_ACQ_REL);
}

/*
 * The worker is the bulk connection's only sender, so it may change the
 * pacer's rate between frames; with the cap lifted in post-copy the pusher
 * learns the link's rate again (src/mig_postcopy.c).
 */
void mig_apply_limits(struct mig *m)
{
	uint32_t what = __atomic_exchange_n(&m->new_limits, 0, __ATOMIC_ACQ_REL);

	if (!what)
		return;
	if (what & MIG_NEW_BANDWIDTH) {
		m->p.bandwidth = __atomic_load_n(&m->new_bandwidth, __ATOMIC_ACQUIRE);
		m->link.bulk.rate = m->p.bandwidth;
		m->link.bulk.pace_t0 = 0;
		m->push_windows = 0;
		if (m->p.bandwidth)
			hm_info("bandwidth limit now %.1f MiB/s (%.1f Mbit/s)",
				(double)m->p.bandwidth / 1048576.0,
				(double)m->p.bandwidth * 8 / 1e6);
		else
			hm_info("bandwidth limit lifted");
	}
	if (what & MIG_NEW_DOWNTIME) {
		m->p.downtime_limit_ns = __atomic_load_n(&m->new_downtime_ns, __ATOMIC_ACQUIRE);
		m->p.policy.max_downtime_s = (double)m->p.downtime_limit_ns / 1e9;
		hm_info("downtime limit now %.1f ms", (double)m->p.downtime_limit_ns / 1e6);
	}
	mig_policy_new_limits(m);
	pthread_mutex_lock(&m->lock);
	m->s.bandwidth_limit = m->p.bandwidth;
	m->s.downtime_limit_ns = m->p.downtime_limit_ns;
	pthread_mutex_unlock(&m->lock);
}

int mig_send_queued(struct mig *m, bool can_cancel)
{
	return mig_send_queued_until(m, can_cancel, 0);
}

int mig_send_queued_until(struct mig *m, bool can_cancel, uint64_t until_ns)
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
		err = mig_send_batch(m, gfns, n);
		if (err)
			return err;
		n = 0;
		if (can_cancel && __atomic_load_n(&m->cancel, __ATOMIC_ACQUIRE))
			return mig_fail(m, -ECANCELED, "cancelled by the operator");
		mig_apply_limits(m);
		if (until_ns && hm_now_ns() >= until_ns)
			return 0; /* the rest stays queued for the next round */
	}
	return n ? mig_send_batch(m, gfns, n) : 0;
}

/* The destination reports the guest's rate after the move; not fatal if it does not. */
static void after(struct mig *m)
{
	struct proto_after a;
	const char *why = "";
	struct proto_hdr h;

	m->link.bulk.timeout_ms = AFTER_TIMEOUT_MS;
	if (net_recv(&m->link.bulk, &h, m->rx, sizeof(m->rx), &why) || h.type != PROTO_AFTER ||
	    proto_after_decode(m->rx, h.len, &a, &why))
		return;
	pthread_mutex_lock(&m->lock);
	m->s.units_after = (double)a.units_per_s;
	m->s.dst_first_report_ns = a.first_report_ns;
	m->s.guest_gap_ns += a.first_report_ns;
	pthread_mutex_unlock(&m->lock);
}

const char *mig_failure_class(int err, bool refused)
{
	if (!err)
		return NULL;
	if (err == -ECANCELED)
		return "cancelled";
	if (err == -ETIME)
		return "not_converged";
	/* a destination busy with another migration turns us away at the hello */
	if (refused || err == -EBUSY)
		return "refused";
	if (link_error_transient(err))
		return "link_lost";
	return "error";
}

/*
 * The migration failed. Before the fence the destination never ran the
 * guest: resume it here. After it, never: the VM stays fenced (paused,
 * refusing resume) with every page, until the operator resumes the
 * migration or, knowing the destination lost it, forces a resume.
 */
static void rollback(struct mig *m, int err)
{
	if (m->link.bulk.fd >= 0 && !link_error_transient(err) && !m->peer_error)
		net_send_error(&m->link.bulk, err, m->why);
	if (m->fenced) {
		hm_err(
		    "the switch-over did not complete: %s; the VM stays fenced here (paused, "
		    "with every page) because it may run on %s; continue with 'hybridmig migrate "
		    "--resume', or 'hybridmig resume --force' once the destination is known "
		    "not to run it",
		    m->why[0] ? m->why : strerror(-err), m->p.to);
	} else if (vm_get_state(m->vm) == VM_PAUSED && vm_resume(m->vm)) {
		hm_err("cannot resume the VM after a failed migration");
	}
	pthread_mutex_lock(&m->lock);
	m->s.err = err;
	snprintf(m->s.failure, sizeof(m->s.failure), "%s", mig_failure_class(err, m->peer_refused));
	m->s.fenced = m->fenced;
	snprintf(m->s.error, sizeof(m->s.error), "%s", m->why[0] ? m->why : strerror(-err));
	m->s.phase = m->fenced ? "fenced" : "failed";
	pthread_mutex_unlock(&m->lock);
}

int mig_open_link(struct mig *m, bool resume)
{
	struct sockbuf_result sb;
	char why[256];
	int err = link_connect(&m->link, m->p.to, resume, why, sizeof(why));

	if (err)
		return mig_fail(m, err, "%s", why);
	m->link.bulk.timeout_ms = MIG_IO_TIMEOUT_MS;
	m->link.bulk.rate = m->p.bandwidth;
	m->link.urgent.timeout_ms = MIG_IO_TIMEOUT_MS;
	if (!resume)
		m->s.rtt_ns = m->link.rtt_ns;
	/* a buffer too small only slows the stream down: worth a warning, not a failure */
	err = link_size_send(&m->link, m->p.bandwidth, m->p.socket_buffer, &sb);
	if (err) {
		hm_warn("cannot size the send buffer: %s", strerror(-err));
		return 0;
	}
	pthread_mutex_lock(&m->lock);
	m->s.send_buffer = sb.got;
	m->s.send_buffer_capped = sb.how == SOCKBUF_CAPPED;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* Everything up to the destination running the guest. */
static int move(struct mig *m)
{
	uint64_t units0 = devwin_units(&m->vm->dw);
	int err;

	mig_set_phase(m, "connecting");
	err = mig_open_link(m, false);
	if (!err) {
		mig_set_phase(m, "checks");
		err = checks(m);
	}
	if (!err)
		err = mig_precopy_run(m);
	m->s.units_during = (double)(devwin_units(&m->vm->dw) - units0) * 1e9 /
			    (double)(hm_now_ns() - m->s.start_ns);
	if (err == 1)
		return mig_switch_postcopy(m);
	return err ? err : mig_switch_stop_and_copy(m);
}

static void finish(struct mig *m, int err)
{
	dirty_stop(&m->dirty);
	if (err) {
		rollback(m, err);
	} else {
		/* the move is over; the rate report after it is not part of it */
		m->s.end_ns = hm_now_ns();
		mig_set_phase(m, "completing");
		after(m);
	}
	mig_postcopy_stop_serving(m);
	pthread_mutex_lock(&m->lock);
	m->s.bytes_wire = m->link.bulk.sent + m->link.urgent.sent;
	link_close(&m->link);
	if (!m->s.end_ns)
		m->s.end_ns = hm_now_ns();
	m->s.phase = err ? m->s.phase : "done";
	pthread_mutex_unlock(&m->lock);
	mig_timeline_end(m);
	m->done(m->done_arg);
}

static void *mig_thread(void *arg)
{
	struct mig *m = arg;
	int err = move(m);

	if (!err && m->s.postcopy)
		err = mig_postcopy_run(m);
	finish(m, err);
	return NULL;
}

/* A fenced source takes the migration up again: reconnect, then carry on. */
static void *resume_thread(void *arg)
{
	struct mig *m = arg;
	int err;

	m->why[0] = 0;
	err = mig_switch_recover(m, -EPIPE);
	if (!err && m->s.postcopy)
		err = mig_postcopy_run(m);
	finish(m, err);
	return NULL;
}

static int load_tls(struct mig *m)
{
	char why[256];

	if (m->p.insecure)
		return 0;
	m->tls = tls_ctx_new(m->p.tls_dir, false, m->p.tls_peer[0] ? m->p.tls_peer : NULL, why,
			     sizeof(why));
	if (!m->tls) {
		snprintf(m->s.error, sizeof(m->s.error), "%s", why);
		return -EINVAL;
	}
	return 0;
}

/* A migration of @vm with @p, not started yet; NULL when out of memory. */
static struct mig *mig_alloc(struct vm *vm, const struct mig_params *p, mig_done_fn done, void *arg)
{
	struct mig *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->vm = vm;
	m->p = *p;
	m->s.bandwidth_limit = p->bandwidth;
	m->s.downtime_limit_ns = p->downtime_limit_ns;
	m->done = done;
	m->done_arg = arg;
	m->s.phase = "starting";
	m->s.start_ns = hm_now_ns();
	m->s.units_before = p->units_before;
	snprintf(m->s.dirty_tracking, sizeof(m->s.dirty_tracking), "%s", dirty_tracking_name(vm));
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

/* The page maps, one bit per guest page each. 0 or -ENOMEM. */
static int alloc_maps(struct mig *m)
{
	uint64_t n = m->vm->mem.pages;

	if (bitmap_init(&m->todo, n) || bitmap_init(&m->sent, n) || bitmap_init(&m->owed, n) ||
	    bitmap_init(&m->fresh, n) || bitmap_init(&m->hot, n))
		return -ENOMEM;
	return 0;
}

struct mig *mig_start(struct vm *vm, const struct mig_params *p, mig_done_fn done, void *arg,
		      char *why, size_t whylen)
{
	struct mig *m = mig_alloc(vm, p, done, arg);
	int err;

	if (!m) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	err = load_tls(m);
	if (err) {
		snprintf(why, whylen, "%s", m->s.error);
		goto out_free;
	}
	err = mig_policy_init(m);
	if (err) {
		snprintf(why, whylen, "cannot write the recording %s: %s", p->record,
			 strerror(-err));
		goto out_free;
	}
	link_init(&m->link, m->tls);
	err = link_new_secret(&m->link);
	if (!err)
		err = alloc_maps(m);
	if (!err && pthread_create(&m->thread, NULL, mig_thread, m))
		err = -EAGAIN;
	if (err) {
		snprintf(why, whylen, "cannot start the migration: %s", strerror(-err));
		goto out_free;
	}
	m->thread_started = true;
	hm_info("migrating to %s (%s), dirty tracking: %s", p->to, mig_mode_name(p->mode),
		m->s.dirty_tracking);
	return m;

out_free:
	mig_policy_close(m);
	bitmap_exit(&m->fresh);
	bitmap_exit(&m->hot);
	bitmap_exit(&m->todo);
	bitmap_exit(&m->sent);
	bitmap_exit(&m->owed);
	tls_ctx_free(m->tls);
	pthread_mutex_destroy(&m->lock);
	free(m);
	return NULL;
}

int mig_resume(struct mig *m, const char *to)
{
	if (!m->fenced || m->s.err == 0)
		return -EINVAL;
	if (m->thread_started)
		pthread_join(m->thread, NULL);
	m->thread_started = false;
	if (to && *to)
		snprintf(m->p.to, sizeof(m->p.to), "%s", to);
	pthread_mutex_lock(&m->lock);
	m->s.err = 0;
	m->s.error[0] = 0;
	m->s.failure[0] = 0;
	m->s.end_ns = 0;
	m->s.phase = "resuming";
	pthread_mutex_unlock(&m->lock);
	if (pthread_create(&m->thread, NULL, resume_thread, m))
		return -EAGAIN;
	m->thread_started = true;
	return 0;
}

void mig_snapshot(struct mig *m, struct mig_stats *out)
{
	pthread_mutex_lock(&m->lock);
	*out = m->s;
	if (!out->end_ns)
		out->bytes_wire = m->link.bulk.sent + m->link.urgent.sent;
	pthread_mutex_unlock(&m->lock);
}

void mig_cancel(struct mig *m)
{
	__atomic_store_n(&m->cancel, true, __ATOMIC_RELEASE);
}

void mig_switch_to_postcopy(struct mig *m)
{
	__atomic_store_n(&m->postcopy_now, true, __ATOMIC_RELEASE);
}

bool mig_fenced(struct mig *m)
{
	bool f;

	pthread_mutex_lock(&m->lock);
	f = m->s.fenced;
	pthread_mutex_unlock(&m->lock);
	return f;
}

void mig_free(struct mig *m)
{
	if (!m)
		return;
	if (m->thread_started)
		pthread_join(m->thread, NULL);
	bitmap_exit(&m->todo);
	bitmap_exit(&m->sent);
	bitmap_exit(&m->owed);
	bitmap_exit(&m->fresh);
	bitmap_exit(&m->hot);
	mig_policy_close(m);
	tls_ctx_free(m->tls);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
