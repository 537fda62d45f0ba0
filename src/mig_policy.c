// SPDX-License-Identifier: MIT
/*
 * The policy on the source: what the migration knows, turned into a
 * struct policy_input at each decision point (the start and every round),
 * the decision logged, kept for the report and written to the recording
 * (migrate --record) so that `hybridmig policy simulate` replays it.
 */
#define LOG_PREFIX "policy: "
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>
#include "src/json.h"
#include "src/log.h"
#include "src/mig_priv.h"
#include "src/policy_record.h"
#include "src/probe.h"
#include "src/vm.h"

static int requested(const struct mig *m)
{
	return m->p.mode == MIG_AUTO ? -1 : (int)m->p.mode;
}

void mig_record_line(struct mig *m, void (*fill)(struct json_out *, const void *), const char *type,
		     const void *arg)
{
	static char buf[8192]; /* the session thread is the only writer */
	struct json_out j;

	if (!m->record)
		return;
	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_str(&j, "type", type);
	fill(&j, arg);
	json_obj_end(&j);
	if (!json_done(&j) || fprintf(m->record, "%s\n", buf) < 0 || fflush(m->record)) {
		hm_warn("cannot write the recording %s: %s; recording stops", m->p.record,
			strerror(errno ? errno : EIO));
		fclose(m->record);
		m->record = NULL;
	}
}

static void fill_head(struct json_out *j, const void *arg)
{
	const struct mig *m = arg;

	json_u64(j, "version", POLICY_RECORD_VERSION);
	json_str(j, "requested_mode", policy_record_mode_name(requested(m)));
	json_str(j, "to", m->p.to);
	policy_record_limits(j, &m->p.policy);
}

static void fill_input(struct json_out *j, const void *arg)
{
	policy_record_input(j, arg);
}

static void fill_decision(struct json_out *j, const void *arg)
{
	policy_record_decision(j, arg);
}

void mig_policy_set_limits(struct mig *m)
{
	double cap = m->file_bandwidth_cap;

	/* --bandwidth (or set-bandwidth) is a known bound on the link */
	if (m->p.bandwidth && (!(cap > 0) || (double)m->p.bandwidth < cap))
		cap = (double)m->p.bandwidth;
	m->p.policy.bandwidth_cap = cap;
	m->pol.lim.bandwidth_cap = cap;
	m->pol.lim.max_downtime_s = m->p.policy.max_downtime_s;
}

static void fill_limits(struct json_out *j, const void *arg)
{
	policy_record_limits(j, arg);
}

void mig_policy_new_limits(struct mig *m)
{
	mig_policy_set_limits(m);
	/* a replay must decide under the limits this migration decided under */
	mig_record_line(m, fill_limits, "limits", &m->pol.lim);
}

int mig_policy_init(struct mig *m)
{
	m->use_policy =
	    m->p.mode == MIG_AUTO || (m->p.mode == MIG_HYBRID && !m->p.postcopy_after_rounds);
	m->file_bandwidth_cap = m->p.policy.bandwidth_cap;
	policy_init(&m->pol, &m->p.policy);
	mig_policy_set_limits(m);
	if (m->use_policy) {
		char why[160] = "";
		int err = probe_open(&m->probe, m->vm, why, sizeof(why));

		/* the policy works on the rounds' own figures without it */
		if (err)
			hm_warn("no probe (%s): the rounds' figures only", strerror(-err));
		else if (why[0])
			hm_info("probe: %s", why);
	}
	if (!m->p.record[0])
		return 0;
	m->record = fopen(m->p.record, "we");
	if (!m->record)
		return -errno;
	if (mig_timeline_init(m))
		return -ENOMEM;
	mig_record_line(m, fill_head, "policy", m);
	return 0;
}

void mig_policy_epoch(struct mig *m)
{
	if (m->probe)
		probe_epoch(m->probe);
}

void mig_policy_harvested(struct mig *m, uint64_t pages)
{
	if (m->probe)
		probe_harvested(m->probe, pages);
}

void mig_policy_link_up(struct mig *m)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	uint16_t port = 0;

	if (!m->probe || getsockname(m->link.bulk.fd, (struct sockaddr *)&sa, &len))
		return;
	if (sa.ss_family == AF_INET)
		port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
	else if (sa.ss_family == AF_INET6)
		port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
	probe_watch_port(m->probe, port);
}

void mig_policy_close(struct mig *m)
{
	probe_close(m->probe);
	m->probe = NULL;
	if (m->record && fclose(m->record))
		hm_warn("cannot close the recording %s: %s", m->p.record, strerror(errno));
	m->record = NULL;
	mig_timeline_free(m);
}

static void input(struct mig *m, struct policy_input *in)
{
	uint64_t now = hm_now_ns();

	memset(in, 0, sizeof(*in));
	in->t_s = (double)(now - m->s.start_ns) / 1e9;
	in->ram_pages = m->vm->mem.pages;
	in->resident_pages = m->resident;
	in->wire_ratio = m->s.bytes_raw ? (double)m->s.bytes_wire / (double)m->s.bytes_raw : 1.0;
	in->bandwidth = m->s.bandwidth;
	in->rtt_s = (double)m->s.rtt_ns / 1e9;
	in->vcpus = m->vm->nr_vcpus;
	in->state_bytes = (uint64_t)m->vm->nr_vcpus * MIG_STATE_BYTES_PER_VCPU;
	in->round = m->s.rounds;
	in->remaining_pages = bitmap_count(&m->todo);
	in->inflight_bytes = m->link.bulk.fd >= 0 ? net_unacked(&m->link.bulk) : 0;
	in->round_s = m->round_s;
	in->round_dirtied = m->round_dirtied;
	in->elapsed_s = in->t_s;
	in->bytes_sent = m->link.bulk.sent;
	if (m->probe) {
		struct probe_sample ps;

		if (!probe_sample(m->probe, &ps)) {
			policy_input_from_sample(in, &ps);
			/* post-copy pushes these early (mig_postcopy.c) */
			m->nprobe_hot = min_t(uint32_t, ps.nhot, PROBE_NHOT);
			for (uint32_t i = 0; i < m->nprobe_hot; i++)
				m->probe_hot[i] = ps.hot[i].region;
			/* the link's own RTT is the handshake's; tcp_probe's smoothed one when
			 * known */
			if (!ps.rtt_us)
				in->rtt_s = (double)m->s.rtt_ns / 1e9;
		}
	}
}

/* Keep the first decisions and the latest ones: the start and the end tell most. */
static void keep(struct mig *m, const struct policy_decision *d)
{
	uint32_t slot = m->ndecisions;

	pthread_mutex_lock(&m->lock);
	if (slot >= MIG_MAX_DECISIONS) {
		memmove(&m->decisions[4], &m->decisions[5],
			(MIG_MAX_DECISIONS - 5) * sizeof(m->decisions[0]));
		slot = MIG_MAX_DECISIONS - 1;
	}
	m->decisions[slot] = *d;
	if (m->ndecisions < MIG_MAX_DECISIONS)
		m->ndecisions++;
	m->s.decisions++;
	snprintf(m->s.decision, sizeof(m->s.decision), "%s (%s)", policy_action_name(d->action),
		 policy_mode_name(d->choice));
	/* the report keeps the first part; the recording and the decisions keep it whole */
	memcpy(m->s.policy_reason, d->reason, sizeof(m->s.policy_reason) - 1);
	m->s.policy_reason[sizeof(m->s.policy_reason) - 1] = 0;
	pthread_mutex_unlock(&m->lock);
}

enum policy_action mig_policy_decide(struct mig *m)
{
	struct policy_decision d;
	struct policy_input in;

	input(m, &in);
	mig_record_line(m, fill_input, "input", &in);
	policy_decide(&m->pol, &in, requested(m), &d);
	mig_record_line(m, fill_decision, "decision", &d);
	keep(m, &d);
	/* a decision that keeps the course is worth a line only in the debug log */
	if (d.action == POLICY_CONTINUE && m->s.decisions > 1 &&
	    !strcmp(policy_mode_name(d.choice), "precopy"))
		hm_dbg("round %u: %s", d.round, d.reason);
	else
		hm_info("round %u: %s (%s): %s", d.round, policy_action_name(d.action),
			policy_mode_name(d.choice), d.reason);
	return d.action;
}

void mig_decisions_json(struct mig *m, struct json_out *j)
{
	const char *used;

	pthread_mutex_lock(&m->lock);
	used = !m->s.postcopy ? "precopy" : m->s.rounds ? "hybrid" : "postcopy";
	json_str(j, "requested_mode", mig_mode_name(m->p.mode));
	json_str(j, "mode", used);
	json_u64(j, "decisions_total", m->s.decisions);
	json_arr_begin(j, "decisions");
	for (uint32_t i = 0; i < m->ndecisions; i++)
		policy_record_decision_obj(j, &m->decisions[i]);
	json_arr_end(j);
	pthread_mutex_unlock(&m->lock);
}
