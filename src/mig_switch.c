// SPDX-License-Identifier: MIT
/*
 * The switch-over on the source, in both modes, as a handshake in which
 * exactly one side may run the guest (docs/switchover.md):
 *
 *   pause; send what is left (pre-copy) or the page map (post-copy);
 *   send VMSTATE, SWITCH           -- a failure here resumes the VM here
 *   read READY                     -- the destination loaded it and waits
 *   fence                          -- from here the VM never resumes here
 *   send GO, read STARTED          -- the destination runs it
 *
 * A broken link after the fence is not a failure of the migration: both
 * sides wait, the source reconnects (mig_switch_recover) and asks the
 * destination where it stands — still waiting for GO, or running.
 */
#define LOG_PREFIX "mig: "
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include "guest/abi.h"
#include "src/inject.h"
#include "src/log.h"
#include "src/mig_priv.h"
#include "src/vm.h"
#include "src/vmstate.h"

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
		return mig_fail(m, -E2BIG, "VM state does not fit one frame");
	v = (struct iovec){ b.buf, b.len };
	err = net_send(&m->link.bulk, PROTO_VMSTATE, 0, &v, 1);
	if (!err)
		err = net_send(&m->link.bulk, PROTO_SWITCH, switch_flags, NULL, 0);
	return err ? mig_fail(m, err, "%s", link_strerror(err, "destination")) : 0;
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

/*
 * Let what is queued on the bulk link reach the destination while the guest
 * still runs: pages in flight at the pause used to be part of the downtime
 * (24-97 ms of a hybrid switch on a 1 Gbit/s link). What the guest dirties
 * meanwhile is caught by the last harvest. Bounded by twice the time the
 * queue should take at the measured bandwidth (and 2 s): a stalled link is
 * found by the sends that follow, not here. Steps of 0.5 ms, not a
 * deadline loop: the fuzzers scale nanosleep down.
 */
#define DRAIN_LOW (64 * 1024)

static void drain_bulk(struct mig *m)
{
	uint64_t queued = net_unacked(&m->link.bulk);
	double bw = m->s.bandwidth > 0 ? m->s.bandwidth : 12.5e6;
	uint64_t steps = (uint64_t)fmin(4000.0, 2.0 * (double)queued / bw / 0.0005);
	struct timespec ts = { 0, 500 * 1000 };

	for (uint64_t i = 0; i < steps && net_unacked(&m->link.bulk) > DRAIN_LOW; i++)
		nanosleep(&ts, NULL);
}

/* From here the destination may run the guest: this copy must never run again. */
static int fence(struct mig *m)
{
	int err = vm_fence(m->vm);

	if (err)
		return mig_fail(m, err, "cannot fence the VM: %s", strerror(-err));
	m->fenced = true;
	pthread_mutex_lock(&m->lock);
	m->s.fenced = true;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* GO, then the destination's STARTED; @t_pause 0 skips the accounting (recovery). */
static int go(struct mig *m, uint64_t t_pause, uint64_t age)
{
	struct proto_started st;
	const char *why = "";
	struct proto_hdr h;
	int err = net_send(&m->link.bulk, PROTO_GO, 0, NULL, 0);

	if (err)
		return mig_fail(m, err, "%s", link_strerror(err, "destination"));
	err = mig_expect(m, PROTO_STARTED, &h);
	if (err)
		return err;
	if (proto_started_decode(m->rx, h.len, &st, &why))
		return mig_fail(m, -EPROTO, "destination: %s", why);
	if (!t_pause)
		return 0;
	pthread_mutex_lock(&m->lock);
	m->s.src_pause_ns = hm_now_ns() - t_pause;
	m->s.dst_switch_ns = st.switch_to_run_ns;
	m->s.downtime_ns = m->s.src_pause_ns > m->s.rtt_ns / 2 ? m->s.src_pause_ns - m->s.rtt_ns / 2
							       : m->s.src_pause_ns;
	m->s.guest_gap_ns = age + m->s.downtime_ns;
	m->s.remaining = m->s.postcopy ? m->s.remaining : 0;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* Pre-copy: tell the destination we know it runs the guest; we owe it nothing more. */
static int release(struct mig *m)
{
	int err = net_send(&m->link.bulk, PROTO_DONE, 0, NULL, 0);

	if (err)
		hm_warn("the destination runs the guest; our last notice did not reach it (%s)",
			link_strerror(err, "destination"));
	return 0;
}

/* State, SWITCH, READY, fence, GO, STARTED. */
static int handover(struct mig *m, uint32_t flags, uint64_t t_pause, uint64_t age)
{
	struct proto_ready r;
	const char *why = "";
	struct proto_hdr h;
	int err = send_state(m, flags);

	hm_dbg("switch: state sent at %llu us", (unsigned long long)(hm_now_ns() - t_pause) / 1000);

	if (!err && (flags & PROTO_SWITCH_POSTCOPY))
		err = mig_postcopy_serve(m); /* its VMM threads may fault before the vCPUs run */
	if (!err)
		err = mig_expect(m, PROTO_READY, &h);
	if (!err && proto_ready_decode(m->rx, h.len, &r, &why))
		err = mig_fail(m, -EPROTO, "destination: %s", why);
	if (!err)
		err = fence(m);
	if (err)
		return err; /* not fenced: the destination never runs it */
	hm_dbg("switch: READY (restore %llu us) and fenced at %llu us",
	       (unsigned long long)r.restore_ns / 1000,
	       (unsigned long long)(hm_now_ns() - t_pause) / 1000);
	mig_set_phase(m, "switch-over");
	inject_at("src-fenced");
	err = go(m, t_pause, age);
	if (err && link_error_transient(err) && !m->peer_error && m->p.reconnect_ns)
		return mig_switch_recover(m, err);
	if (err)
		return err;
	return m->s.postcopy ? 0 : release(m);
}

int mig_switch_stop_and_copy(struct mig *m)
{
	uint64_t t_pause;
	uint64_t age;
	int64_t dirtied;
	int err;

	mig_set_phase(m, "stop-and-copy");
	drain_bulk(m);
	t_pause = hm_now_ns();
	err = vm_pause(m->vm);
	if (err)
		return mig_fail(m, err, "the VM stopped during migration");
	age = report_age(m, t_pause);
	/* the last look: nothing needs re-protecting (tracking stops after it) */
	dirtied = dirty_harvest_final(&m->dirty, &m->todo);
	if (dirtied < 0)
		return mig_fail(m, (int)dirtied, "cannot collect dirty pages (%s): %s",
				dirty_tracking_name(m->vm), strerror((int)-dirtied));
	err = mig_send_queued(m, false);
	return err ? err : handover(m, 0, t_pause, age);
}

/*
 * Before the pause: post-copy from the start scans what is resident while the
 * guest still runs, with dirty logging on to catch pages touched after the
 * scan (mincore of 4 GiB with the VM paused cost 2-6 ms of downtime); a
 * hybrid switch drains the bulk queue of pre-copy first. 0 or -errno.
 */
static int before_pause(struct mig *m)
{
	int err;

	if (m->dirty.enabled) {
		drain_bulk(m); /* hybrid: from pre-copy, with pages in flight */
		return 0;
	}
	err = dirty_start_collect(&m->dirty, m->vm);
	bitmap_drain_into(&m->todo, &m->vm->dev_dirty);
	if (!err)
		err = mig_queue_resident(m);
	if (err)
		return mig_fail(m, err, "cannot collect the pages to send: %s", strerror(-err));
	return 0;
}

/* Paused: the last harvest joins what is owed; the pages written last go first. */
static int collect_owed(struct mig *m)
{
	int64_t d = dirty_harvest_final(&m->dirty, &m->fresh);

	if (d < 0)
		return mig_fail(m, (int)d, "cannot collect the pages to send: %s",
				strerror((int)-d));
	/* written last, so touched first on the destination: the pusher starts with them */
	bitmap_or(&m->hot, &m->fresh);
	m->hot_from = 0;
	bitmap_drain_into(&m->todo, &m->fresh);
	/* dirty_stop (a memslot update, ~4 ms on 4 GiB) waits until the guest runs there */
	m->s.remaining = bitmap_count(&m->todo);
	/* what the destination is owed, kept to resume after a broken link */
	bitmap_copy(&m->owed, &m->todo);
	return 0;
}

int mig_switch_postcopy(struct mig *m)
{
	uint64_t t_pause;
	uint64_t age;
	int err;

	mig_set_phase(m, "switch-over");
	err = before_pause(m);
	if (err)
		return err;
	t_pause = hm_now_ns();
	err = vm_pause(m->vm);
	if (err)
		return mig_fail(m, err, "the VM stopped during migration");
	age = report_age(m, t_pause);
	err = collect_owed(m);
	if (err)
		return err;
	hm_dbg("switch: paused and collected at %llu us",
	       (unsigned long long)(hm_now_ns() - t_pause) / 1000);
	err = net_send_pagemap(&m->link.bulk, &m->todo);
	hm_dbg("switch: page map sent at %llu us",
	       (unsigned long long)(hm_now_ns() - t_pause) / 1000);
	if (err)
		return mig_fail(m, err, "%s", link_strerror(err, "destination"));
	pthread_mutex_lock(&m->lock);
	m->s.postcopy = true;
	pthread_mutex_unlock(&m->lock);
	return handover(m, PROTO_SWITCH_POSTCOPY, t_pause, age);
}

/* One reconnection: where does the destination stand, and finish what it lacks. */
static int resume_once(struct mig *m)
{
	struct proto_status st;
	const char *why = "";
	struct proto_hdr h;
	int err;

	err = mig_open_link(m, true);
	if (err)
		return err;
	err = mig_expect(m, PROTO_STATUS, &h);
	if (!err && proto_status_decode(m->rx, h.len, &st, &why))
		err = mig_fail(m, -EPROTO, "destination: %s", why);
	if (!err && st.phase == PROTO_DST_RECEIVING)
		err = mig_fail(m, -EPROTO, "the destination no longer holds the VM's state");
	if (!err && st.phase == PROTO_DST_WAIT_GO) {
		hm_warn("the destination still waits for GO: sending it");
		err = go(m, 0, 0);
	}
	if (!err && !m->s.postcopy)
		return release(m);
	if (!err)
		err = mig_postcopy_requeue(m);
	if (!err)
		err = mig_postcopy_serve(m);
	if (err)
		link_close(&m->link);
	return err;
}

int mig_switch_recover(struct mig *m, int cause)
{
	uint64_t deadline = hm_now_ns() + m->p.reconnect_ns;
	int err = cause;

	mig_postcopy_stop_serving(m);
	link_close(&m->link);
	mig_set_phase(m, "reconnecting");
	/* at least one attempt: migrate --resume comes here with any window */
	for (int attempt = 1; attempt == 1 || hm_now_ns() < deadline; attempt++) {
		hm_warn("link to %s lost after the switch-over (%s); the VM is fenced here and "
			"waits; reconnecting (attempt %d, %.0f s left)",
			m->p.to, m->why[0] ? m->why : link_strerror(err, "destination"), attempt,
			hm_now_ns() < deadline ? (double)(deadline - hm_now_ns()) / 1e9 : 0.0);
		m->why[0] = 0;
		m->peer_error = false;
		m->peer_refused = false;
		err = resume_once(m);
		if (!err) {
			hm_warn("reconnected to %s; %llu pages still owed", m->p.to,
				(unsigned long long)bitmap_count(&m->todo));
			pthread_mutex_lock(&m->lock);
			m->s.reconnects++;
			m->s.phase = m->s.postcopy ? "postcopy" : "done";
			pthread_mutex_unlock(&m->lock);
			return 0;
		}
		/* a definite answer from the destination: waiting longer changes nothing */
		if (err == -EPROTO || err == -ENOENT || m->peer_error)
			break;
		/* a second between attempts, but never past the window */
		if (hm_now_ns() < deadline)
			poll(NULL, 0,
			     (int)min_t(uint64_t, 1000,
					(deadline - hm_now_ns()) / NSEC_PER_MSEC + 1));
	}
	if (!link_error_transient(err))
		return err; /* the destination's own answer is the reason */
	m->why[0] = 0;
	return mig_fail(
	    m, err, "could not reach the destination %s after the switch-over within %llu s (%s)",
	    m->p.to, (unsigned long long)(m->p.reconnect_ns / NSEC_PER_SEC),
	    link_strerror(err, "destination"));
}
