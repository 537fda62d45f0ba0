// SPDX-License-Identifier: MIT
/*
 * Pre-copy on the source: rounds of the pages dirtied while the previous
 * round was sent. In pre-copy mode, until what is left fits the downtime
 * limit at the measured bandwidth (then stop-and-copy); in auto and hybrid
 * modes the policy (policy/, src/mig_policy.c) decides after every round,
 * and rounds are cut at its checkpoint interval so that the first decision
 * comes early in the first pass.
 */
#define LOG_PREFIX "mig: "
#include <errno.h>
#include <string.h>
#include "guest/abi.h"
#include "src/log.h"
#include "src/mig_priv.h"
#include "src/vm.h"

/* rounds shorter than this are too short to measure the bandwidth */
#define MIN_MEASURE_NS (20 * NSEC_PER_MSEC)

static int send_round_info(struct mig *m, uint64_t pages)
{
	struct proto_round r = { m->s.rounds, pages, (uint64_t)m->s.dirty_rate };
	uint8_t buf[PROTO_ROUND_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	int err;

	proto_round_encode(buf, &r);
	err = net_send(&m->link.bulk, PROTO_ROUND, 0, &v, 1);
	return err ? mig_fail(m, err, "%s", link_strerror(err, "destination")) : 0;
}

/* Bytes on the wire per raw page byte so far (compression and zero pages). */
static double wire_ratio(struct mig *m)
{
	return m->s.bytes_raw ? (double)m->s.bytes_wire / (double)m->s.bytes_raw : 1.0;
}

/*
 * The downtime a stop-and-copy now would cost (docs/switchover.md): the
 * pages left, plus those the guest dirties while what is queued drains
 * (mig_switch_stop_and_copy lets the queue reach the destination before it
 * pauses, so the queue itself is not downtime), at the measured bandwidth;
 * then the handshake: SWITCH reaches the destination, READY comes back, GO
 * goes out and the destination runs, 1.5 RTT (STARTED's way back is not
 * downtime); plus the state and half the policy's fixed switch cost. The
 * same count as policy/model.c's stop_downtime.
 */
static uint64_t predict_ns(struct mig *m, uint64_t pages)
{
	double pbytes = HM_PAGE_SIZE * wire_ratio(m);
	double fixed_s = m->p.policy.switch_cost_s * 0.5; /* pause, state save and restore */
	double drain_s, bytes;

	if (m->s.bandwidth <= 0)
		return pages ? UINT64_MAX
			     : MIG_HANDSHAKE_RTTS(m->s.rtt_ns) + (uint64_t)(fixed_s * 1e9);
	drain_s = (double)net_unacked(&m->link.bulk) / m->s.bandwidth;
	bytes = ((double)pages + m->s.dirty_rate * drain_s) * pbytes +
		(double)m->vm->nr_vcpus * MIG_STATE_BYTES_PER_VCPU;
	return (uint64_t)((bytes / m->s.bandwidth + fixed_s) * 1e9) +
	       MIG_HANDSHAKE_RTTS(m->s.rtt_ns);
}

/*
 * One pre-copy round: send what is queued (until @until_ns, when the policy
 * wants a checkpoint; the rest stays queued), then harvest what got dirty
 * meanwhile.
 */
static int round_once(struct mig *m, uint64_t until_ns)
{
	struct net_conn *c = &m->link.bulk;
	uint64_t t0 = hm_now_ns();
	/* what reached the peer, not what sits in our socket buffer */
	uint64_t w0 = c->sent - net_unacked(c);
	uint64_t w1;
	uint64_t pages = bitmap_count(&m->todo);
	int64_t dirtied;
	int err;

	err = mig_send_queued_until(m, true, until_ns);
	if (err)
		return err;
	/*
	 * Harvest apart first: the policy's curve wants every distinct page the
	 * round dirtied, also those still queued from before (dirty_harvest
	 * counts only the newly queued).
	 */
	mig_policy_epoch(m);
	dirtied = dirty_harvest(&m->dirty, &m->fresh);
	if (dirtied < 0)
		return mig_fail(m, (int)dirtied, "cannot collect dirty pages (%s): %s",
				dirty_tracking_name(m->vm), strerror((int)-dirtied));
	m->round_s = (double)(hm_now_ns() - t0) / 1e9;
	m->round_dirtied = (uint64_t)dirtied;
	mig_policy_harvested(m, (uint64_t)dirtied);
	/* what this round dirtied is what the guest writes next: post-copy pushes it first */
	bitmap_copy(&m->hot, &m->fresh);
	dirtied = (int64_t)bitmap_drain_into(&m->todo, &m->fresh);
	w1 = c->sent - net_unacked(c);
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
 * What the policy's action means here: 0 stop-and-copy, 1 post-copy, 2 go
 * on, or -errno when it gives up (the VM keeps running here).
 */
static int follow(struct mig *m, enum policy_action a)
{
	switch (a) {
	case POLICY_STOP_AND_COPY:
		return 0;
	case POLICY_SWITCH_POSTCOPY:
		return 1;
	case POLICY_GIVE_UP:
		return mig_fail(m, -ETIME, "the policy gives up: %s; the VM keeps running here",
				m->s.policy_reason);
	case POLICY_CONTINUE:
		break;
	}
	return 2;
}

/* Dirty tracking on, then every resident page queued for the first pass. */
static int first_pass_queue(struct mig *m)
{
	int err = dirty_start(&m->dirty, m->vm);

	if (err)
		return mig_fail(m, err, "cannot start dirty logging: %s", strerror(-err));
	bitmap_drain_into(&m->todo, &m->vm->dev_dirty);
	err = mig_queue_resident(m);
	if (err)
		return mig_fail(m, err, "mincore failed: %s", strerror(-err));
	m->s.remaining = m->resident = bitmap_count(&m->todo);
	return 0;
}

/*
 * When the next round must end (0: when its queue is sent): the policy
 * decides at least every checkpoint, even inside the first pass, and a
 * round ends at --timeout: giving up (or, in hybrid, switching) must not
 * wait for the end of a long pass (seen: --timeout 4 gave up after 12.8 s).
 */
static uint64_t round_deadline(const struct mig *m)
{
	uint64_t checkpoint = (uint64_t)(m->p.policy.checkpoint_s * 1e9);
	uint64_t until = m->use_policy && checkpoint ? hm_now_ns() + checkpoint : 0;

	if (m->p.timeout_ns) {
		uint64_t end = max_t(uint64_t, m->s.start_ns + m->p.timeout_ns, hm_now_ns());

		until = until ? min_t(uint64_t, until, end) : end;
	}
	return until;
}

/* After a round, without the policy: as follow() returns. */
static int fixed_rule(struct mig *m)
{
	bool late = m->p.timeout_ns && hm_now_ns() - m->s.start_ns > m->p.timeout_ns;

	if (m->s.predicted_downtime_ns <= m->p.downtime_limit_ns)
		return 0;
	/* hybrid with a forced switch point: the timeout switches early */
	if (late && m->p.mode == MIG_HYBRID)
		return 1;
	if (late)
		/* ETIME, not ETIMEDOUT: the link is fine, the guest is too busy */
		return mig_fail(m, -ETIME,
				"pre-copy did not converge within %llu s (dirty rate %.0f pages/s, "
				"bandwidth %.1f Mbit/s); the VM keeps running here",
				(unsigned long long)(m->p.timeout_ns / NSEC_PER_SEC),
				m->s.dirty_rate, m->s.bandwidth * 8 / 1e6);
	return 2;
}

/* After a round: as follow() returns. */
static int after_round(struct mig *m)
{
	/* the decision below uses what set-bandwidth / set-downtime asked for */
	mig_apply_limits(m);
	/* the operator asked for post-copy now */
	if (__atomic_load_n(&m->postcopy_now, __ATOMIC_ACQUIRE))
		return 1;
	/* a forced switch point wins over convergence */
	if (m->p.mode == MIG_HYBRID && m->p.postcopy_after_rounds &&
	    m->s.rounds >= m->p.postcopy_after_rounds)
		return 1;
	return m->use_policy ? follow(m, mig_policy_decide(m)) : fixed_rule(m);
}

int mig_precopy_run(struct mig *m)
{
	int err;

	if (m->p.mode == MIG_POSTCOPY)
		return 1;
	mig_set_phase(m, "precopy");
	err = first_pass_queue(m);
	if (err)
		return err;
	mig_policy_link_up(m);
	err = m->use_policy ? follow(m, mig_policy_decide(m)) : 2;
	while (err == 2) {
		err = round_once(m, round_deadline(m));
		if (!err)
			err = after_round(m);
	}
	return err;
}
