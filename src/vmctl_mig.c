// SPDX-License-Identifier: MIT
/* Migration out of a running VM: the control commands migrate, abort and
 * switch-postcopy, and the progress lines and report sent to the requester. */
#define LOG_PREFIX "vmctl: "
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include "src/control.h"
#include "src/guest.h"
#include "src/json.h"
#include "src/log.h"
#include "src/meter.h"
#include "src/metrics.h"
#include "src/mig.h"
#include "src/policy_record.h"
#include "src/sockbuf.h"
#include "src/vm.h"
#include "src/vmctl.h"
#include "src/vmctl_priv.h"
#include "src/vmctl_trace.h"

#define MIG_TICK_MS 500

static void mig_done_loop_cb(evutil_socket_t fd, short what, void *arg);
static void mig_tick_cb(evutil_socket_t fd, short what, void *arg);

int vmctl_mig_init(struct vmctl *vc)
{
	vc->mig_done_ev = event_new(vc->base, -1, 0, mig_done_loop_cb, vc);
	vc->mig_tick_ev = event_new(vc->base, -1, EV_PERSIST, mig_tick_cb, vc);
	return vc->mig_done_ev && vc->mig_tick_ev ? 0 : -ENOMEM;
}

void vmctl_mig_free(struct vmctl *vc)
{
	if (vc->mig) {
		if (vc->mig_active && !mig_fenced(vc->mig))
			mig_cancel(vc->mig);
		mig_free(vc->mig);
		vc->mig = NULL;
	}
	if (vc->mig_req)
		control_reply_error(vc->mig_req, "shutting down");
	if (vc->mig_done_ev)
		event_free(vc->mig_done_ev);
	if (vc->mig_tick_ev)
		event_free(vc->mig_tick_ev);
}

static void mig_done_thread_cb(void *arg)
{
	struct vmctl *vc = arg;

	event_active(vc->mig_done_ev, EV_READ, 0);
}

/* The members of a progress line and of `job` (flat). */
static void progress_json(struct vmctl *vc, struct json_out *j)
{
	struct mig_stats s;
	char ts[HM_WALL_TIME_LEN];
	double eta;

	mig_snapshot(vc->mig, &s);
	hm_wall_time(hm_now_ns(), ts, sizeof(ts));
	/* before the first round ends, the average so far */
	if (s.bandwidth <= 0 && hm_now_ns() > s.start_ns)
		s.bandwidth = (double)s.bytes_wire * 1e9 / (double)(hm_now_ns() - s.start_ns);
	eta = s.bandwidth > 0 ? (double)s.remaining * HM_PAGE_SIZE / s.bandwidth : -1;
	json_u64(j, "schema", MIG_JSON_SCHEMA);
	json_str(j, "ts", ts);
	json_str(j, "phase", s.phase);
	json_str(j, "to", vc->mp.to);
	json_str(j, "requested_mode", mig_mode_name(vc->mp.mode));
	json_u64(j, "round", s.rounds);
	json_dbl(j, "elapsed_s", (double)(hm_now_ns() - s.start_ns) / 1e9, 1);
	json_u64(j, "bytes_wire", s.bytes_wire);
	/* the whole migration, not the round: page bytes sent and still queued */
	json_u64(j, "bytes_processed", s.bytes_raw);
	json_u64(j, "bytes_remaining", s.remaining * HM_PAGE_SIZE);
	json_u64(j, "bytes_total", s.bytes_raw + s.remaining * HM_PAGE_SIZE);
	json_dbl(j, "percent",
		 s.bytes_raw ? 100.0 * (double)s.bytes_raw /
				   (double)(s.bytes_raw + s.remaining * HM_PAGE_SIZE)
			     : 0,
		 1);
	json_u64(j, "remaining_pages", s.remaining);
	json_u64(j, "pages_requested", s.pages_requested);
	json_dbl(j, "bandwidth_mbps", s.bandwidth * 8 / 1e6, 1);
	json_u64(j, "bandwidth_limit", s.bandwidth_limit);
	json_dbl(j, "downtime_limit_ms", (double)s.downtime_limit_ns / 1e6, 1);
	json_dbl(j, "dirty_rate_pages_per_s", s.dirty_rate, 0);
	json_dbl(j, "eta_s", eta, 1);
	json_bool(j, "postcopy", s.postcopy);
	json_bool(j, "fenced", mig_fenced(vc->mig));
	json_str_or_null(j, "decision", s.decisions ? s.decision : NULL);
}

static void mig_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vmctl *vc = arg;
	char buf[2048];
	struct json_out j;

	(void)fd, (void)what;
	if (!vc->mig || !vc->mig_req)
		return;
	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_str(&j, "event", "progress");
	progress_json(vc, &j);
	json_obj_end(&j);
	if (json_done(&j))
		control_notify(vc->mig_req, buf);
}

static void mig_done_loop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vmctl *vc = arg;
	struct ctl_req *req = vc->mig_req;
	static char buf[64 * 1024]; /* the loop thread's; decisions make it long */
	struct json_out j;

	(void)fd, (void)what;
	event_del(vc->mig_tick_ev);
	mig_snapshot(vc->mig, &vc->mig_final);
	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_bool(&j, "ok", !vc->mig_final.err);
	json_str(&j, "event", "done");
	mig_decisions_json(vc->mig, &j);
	json_str(&j, "to", vc->mp.to);
	mig_report_json(&vc->mig_final, &j);
	json_obj_end(&j);
	vc->mig_active = false;
	vc->mig_req = NULL;
	vc->migrated = !vc->mig_final.err;
	/* after the fence the guest may run there: this copy must not run again */
	vc->fenced = vc->mig_final.err && vc->mig_final.fenced;
	if (!vc->fenced) {
		mig_free(vc->mig);
		vc->mig = NULL;
	}
	if (vc->mig_final.err)
		hm_err("migration to %s failed: %s", vc->mp.to, vc->mig_final.error);
	if (!json_done(&j))
		snprintf(buf, sizeof(buf), "{\"ok\":false,\"error\":\"report too long\"}");
	/* moved: this side is done once the report is out */
	if (req && vc->migrated)
		control_reply_then(req, buf, vmctl_stop_after_reply, vc);
	else if (req)
		control_reply(req, buf);
	else if (vc->migrated)
		vmctl_notify_exit(vc, 0);
}

static int num_field(const struct json_field *f, size_t n, const char *key, double min, double max,
		     double *out)
{
	const struct json_field *x = json_find(f, n, key);

	if (!x)
		return 0;
	if (x->type != JSON_NUMBER || x->num < min || x->num > max)
		return -EINVAL;
	*out = x->num;
	return 0;
}

/* tls_dir + optional tls_peer, or insecure: true; one of the two is required. */
static const char *tls_params(struct mig_params *mp, const struct json_field *f, size_t n)
{
	const struct json_field *dir = json_find(f, n, "tls_dir");
	const struct json_field *peer = json_find(f, n, "tls_peer");
	const struct json_field *ins = json_find(f, n, "insecure");

	mp->insecure = ins && ins->type == JSON_BOOL && ins->b;
	if (dir && (dir->type != JSON_STRING || strlen(dir->str) >= sizeof(mp->tls_dir)))
		return "tls_dir must be a directory path";
	if (peer && (peer->type != JSON_STRING || strlen(peer->str) >= sizeof(mp->tls_peer)))
		return "tls_peer must be a name";
	if (mp->insecure && dir)
		return "choose tls_dir or insecure, not both";
	if (!mp->insecure && !dir)
		return "migrate needs tls_dir (certificates) or insecure: true (plain TCP)";
	if (dir)
		memcpy(mp->tls_dir, dir->str, strlen(dir->str) + 1);
	if (peer)
		memcpy(mp->tls_peer, peer->str, strlen(peer->str) + 1);
	return NULL;
}

/* "mode": auto (the default: the policy's choice), precopy, postcopy or hybrid. */
static const char *mode_param(const struct json_field *mode, enum mig_mode *out)
{
	static const struct {
		const char *name;
		enum mig_mode mode;
	} modes[] = {
		{ "auto", MIG_AUTO },
		{ "precopy", MIG_PRECOPY },
		{ "postcopy", MIG_POSTCOPY },
		{ "hybrid", MIG_HYBRID },
	};

	*out = MIG_AUTO;
	if (!mode)
		return NULL;
	for (size_t i = 0; mode->type == JSON_STRING && i < ARRAY_SIZE(modes); i++) {
		if (!strcmp(mode->str, modes[i].name)) {
			*out = modes[i].mode;
			return NULL;
		}
	}
	return "unknown mode (auto, precopy, postcopy, hybrid)";
}

/* "to", "policy" (a file read now) and "record": the strings of a migrate request. */
static const char *path_params(struct vmctl *vc, const struct json_field *f, size_t n)
{
	const struct json_field *to = json_find(f, n, "to");
	const struct json_field *pol = json_find(f, n, "policy");
	const struct json_field *rec = json_find(f, n, "record");

	if (!to || to->type != JSON_STRING || !*to->str)
		return "migrate needs \"to\": \"ADDR:PORT\"";
	if (strlen(to->str) >= sizeof(vc->mp.to))
		return "\"to\" is too long";
	memcpy(vc->mp.to, to->str, strlen(to->str) + 1);
	policy_limits_default(&vc->mp.policy);
	if (pol && (pol->type != JSON_STRING || !*pol->str))
		return "policy must be a file path";
	if (pol && policy_file_load(pol->str, &vc->mp.policy, vc->bad_param, sizeof(vc->bad_param)))
		return vc->bad_param;
	if (rec &&
	    (rec->type != JSON_STRING || !*rec->str || strlen(rec->str) >= sizeof(vc->mp.record)))
		return "record must be a file path";
	if (rec)
		memcpy(vc->mp.record, rec->str, strlen(rec->str) + 1);
	return NULL;
}

/* The numbers of a migrate request, given or their defaults. */
struct mig_numbers {
	double bw;   /* bandwidth, bytes/s; 0: none */
	double dl;   /* downtime_limit_ms; 0: the policy's */
	double to_s; /* timeout_s; 0: none */
	double pc;   /* postcopy_after_rounds */
	double rc;   /* reconnect_s */
	double sb;   /* socket_buffer */
};

static const char *number_params(const struct json_field *f, size_t n, struct mig_numbers *v)
{
	*v = (struct mig_numbers){ .rc = 30, .sb = SOCKBUF_DEFAULT_MAX };
	if (num_field(f, n, "postcopy_after_rounds", 0, 1000, &v->pc))
		return "postcopy_after_rounds must be 0 to 1000";
	if (num_field(f, n, "reconnect_s", 0, 3600, &v->rc))
		return "reconnect_s must be 0 to 3600";
	if (num_field(f, n, "bandwidth", 0, 1e12, &v->bw))
		return "bandwidth must be bytes/s, 0 to 1e12";
	if (num_field(f, n, "downtime_limit_ms", 1, 600000, &v->dl))
		return "downtime_limit_ms must be 1 to 600000";
	if (num_field(f, n, "timeout_s", 0, 86400, &v->to_s))
		return "timeout_s must be 0 to 86400";
	if (num_field(f, n, "socket_buffer", 0, 1 << 30, &v->sb))
		return "socket_buffer must be 0 (the kernel's autotuning) to 1 GiB";
	return NULL;
}

/* The limits in vc->mp from the numbers: explicit options win over the policy file. */
static void apply_numbers(struct mig_params *mp, const struct mig_numbers *v)
{
	mp->postcopy_after_rounds = (uint32_t)v->pc;
	mp->reconnect_ns = (uint64_t)(v->rc * 1e9);
	mp->bandwidth = (uint64_t)v->bw;
	mp->socket_buffer = (uint64_t)v->sb;
	if (v->dl > 0)
		mp->policy.max_downtime_s = v->dl / 1e3;
	mp->downtime_limit_ns = (uint64_t)(mp->policy.max_downtime_s * 1e9);
	if (v->to_s > 0 && mp->mode != MIG_PRECOPY)
		mp->policy.max_total_s = v->to_s;
	/* auto and hybrid end by the policy's total-time limit, pre-copy by the timeout */
	if (mp->mode == MIG_PRECOPY || mp->postcopy_after_rounds)
		mp->timeout_ns = (uint64_t)(v->to_s * 1e9);
}

static const char *migrate_params(struct vmctl *vc, const struct json_field *f, size_t n)
{
	struct mig_numbers v;
	const char *bad;

	memset(&vc->mp, 0, sizeof(vc->mp));
	bad = path_params(vc, f, n);
	if (!bad)
		bad = mode_param(json_find(f, n, "mode"), &vc->mp.mode);
	if (!bad)
		bad = number_params(f, n, &v);
	if (!bad)
		bad = tls_params(&vc->mp, f, n);
	if (bad)
		return bad;
	apply_numbers(&vc->mp, &v);
	snprintf(vc->mp.spec, sizeof(vc->mp.spec), "%s", vc->spec->text);
	vc->mp.units_before = meter_rate(&vc->units, RATE_WINDOW_NS);
	return NULL;
}

/* migrate --resume: carry on a migration that ended fenced, maybe to a new address. */
static void resume_migration(struct vmctl *vc, struct ctl_req *req, const struct json_field *f,
			     size_t n)
{
	const struct json_field *to = json_find(f, n, "to");
	struct timeval tv = { 0, MIG_TICK_MS * 1000 };

	if (!vc->fenced || !vc->mig) {
		control_reply_error(req, "no unfinished migration to resume");
		return;
	}
	if (to && (to->type != JSON_STRING || strlen(to->str) >= sizeof(vc->mp.to))) {
		control_reply_error(req, "\"to\" must be ADDR:PORT");
		return;
	}
	if (to && *to->str)
		memcpy(vc->mp.to, to->str, strlen(to->str) + 1);
	if (mig_resume(vc->mig, vc->mp.to)) {
		control_reply_error(req, "cannot resume the migration");
		return;
	}
	vc->fenced = false;
	vc->mig_active = true;
	vc->mig_req = req;
	event_add(vc->mig_tick_ev, &tv);
}

static void cmd_migrate(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	struct vmctl *vc = arg;
	const struct json_field *resume = json_find(f, n, "resume");
	struct timeval tv = { 0, MIG_TICK_MS * 1000 };
	const char *bad;
	char why[256];

	if (vc->mig_active) {
		control_reply_error(req, "a migration is already running");
		return;
	}
	if (resume && resume->type == JSON_BOOL && resume->b) {
		resume_migration(vc, req, f, n);
		return;
	}
	if (vc->fenced) {
		control_reply_error(req, "the VM is fenced after an unfinished switch-over: "
					 "'migrate --resume' finishes it");
		return;
	}
	bad = vmctl_arriving(vc);
	if (bad) {
		control_reply_error(req, "%s", bad);
		return;
	}
	if (vm_get_state(vc->vm) != VM_RUNNING || vc->verify_busy) {
		control_reply_error(req, "the VM must be running, with no verify in flight");
		return;
	}
	bad = migrate_params(vc, f, n);
	if (bad) {
		control_reply_error(req, "%s", bad);
		return;
	}
	/* its own dirty tracking would steal pages from the migration's */
	vmctl_trace_stop(vc->trace, "a migration started");
	vc->mig = mig_start(vc->vm, &vc->mp, mig_done_thread_cb, vc, why, sizeof(why));
	if (!vc->mig) {
		control_reply_error(req, "%s", why);
		return;
	}
	vc->mig_active = true;
	vc->mig_req = req;
	event_add(vc->mig_tick_ev, &tv);
}

static void cmd_cancel(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	struct vmctl *vc = arg;

	(void)f, (void)n;
	if (!vc->mig_active) {
		control_reply_error(req, "no migration is running");
		return;
	}
	if (mig_fenced(vc->mig)) {
		control_reply_error(req, "too late to abort: the switch-over has begun and the "
					 "guest may run on the destination");
		return;
	}
	mig_cancel(vc->mig);
	control_reply(req, "{\"ok\":true,\"state\":\"cancelling\"}");
}

static void cmd_switch_postcopy(struct ctl_req *req, const struct json_field *f, size_t n,
				void *arg)
{
	struct vmctl *vc = arg;

	(void)f, (void)n;
	if (!vc->mig_active) {
		control_reply_error(req, "no migration is running");
		return;
	}
	mig_switch_to_postcopy(vc->mig);
	control_reply(req, "{\"ok\":true,\"state\":\"switching to post-copy after this round\"}");
}

/* What runs: the migration's progress, or the last one's outcome. */
static void cmd_job(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	struct vmctl *vc = arg;
	char buf[2048];
	struct json_out j;

	(void)f, (void)n;
	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_bool(&j, "ok", true);
	if (vc->mig_active) {
		json_str(&j, "job", "migration");
		progress_json(vc, &j);
	} else if (vc->fenced || vc->migrated || vc->mig_final.start_ns) {
		/* ended: its outcome, and what the operator can do about a fenced one */
		json_str(&j, "job", "none");
		json_str(&j, "last", vc->migrated ? "done" : vc->fenced ? "fenced" : "failed");
		json_str(&j, "to", vc->mp.to);
		if (vc->mig_final.err)
			json_str(&j, "error", vc->mig_final.error);
		if (vc->mig_final.failure[0])
			json_str(&j, "failure", vc->mig_final.failure);
	} else {
		json_str(&j, "job", "none");
	}
	json_obj_end(&j);
	if (json_done(&j))
		control_reply(req, buf);
	else
		control_reply_error(req, "job report too long");
}

/*
 * set-bandwidth {"bandwidth": bytes/s, 0 = none} and set-downtime
 * {"downtime_limit_ms": ms}: a running migration's limits, as QEMU's
 * max-bandwidth and downtime-limit parameters. Refused once the switch-over
 * has begun: there is nothing left that they bound.
 */
static bool can_set(struct vmctl *vc, struct ctl_req *req)
{
	if (!vc->mig_active) {
		control_reply_error(req, "no migration is running");
		return false;
	}
	if (mig_fenced(vc->mig)) {
		control_reply_error(req, "the switch-over has begun: the limits no longer apply");
		return false;
	}
	return true;
}

static void cmd_set_bandwidth(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	struct vmctl *vc = arg;
	double bw = -1;

	if (num_field(f, n, "bandwidth", 0, 1e12, &bw) || bw < 0) {
		control_reply_error(req, "set-bandwidth needs \"bandwidth\": bytes/s, 0 to 1e12 "
					 "(0 = no limit)");
		return;
	}
	if (!can_set(vc, req))
		return;
	vc->mp.bandwidth = (uint64_t)bw;
	mig_set_bandwidth(vc->mig, vc->mp.bandwidth);
	control_reply(req, "{\"ok\":true,\"state\":\"bandwidth limit set\"}");
}

static void cmd_set_downtime(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	struct vmctl *vc = arg;
	double dl = -1;

	if (num_field(f, n, "downtime_limit_ms", 1, 600000, &dl) || dl < 0) {
		control_reply_error(req, "set-downtime needs \"downtime_limit_ms\": 1 to 600000");
		return;
	}
	if (!can_set(vc, req))
		return;
	vc->mp.downtime_limit_ns = (uint64_t)(dl * 1e6);
	mig_set_downtime(vc->mig, vc->mp.downtime_limit_ns);
	control_reply(req, "{\"ok\":true,\"state\":\"downtime limit set\"}");
}

/* Names after KubeVirt's kubevirt_vmi_migration_* (docs/metrics.md). */
/* hybridmig_migration_info: where to, in which phase, in which requested mode. */
static void metrics_info(struct vmctl *vc, const struct mig_stats *s, struct metrics_out *o)
{
	char labels[320];
	char a[96];
	char b[160];
	char c[48];

	metrics_label(a, sizeof(a), "phase", s->phase);
	metrics_label(b, sizeof(b), "to", vc->mp.to);
	metrics_label(c, sizeof(c), "requested_mode", mig_mode_name(vc->mp.mode));
	snprintf(labels, sizeof(labels), "%s,%s,%s", a, b, c);
	metrics_family(o, "hybridmig_migration_info", "gauge",
		       "The running or last migration out of this process (always 1).");
	metrics_sample(o, "hybridmig_migration_info", labels, 1);
}

/* What moved and at what rates, against the limits. */
static void metrics_data(const struct mig_stats *s, struct metrics_out *o)
{
	metrics_gauge(o, "hybridmig_migration_data_processed_bytes", "Page bytes sent so far.",
		      (double)s->bytes_raw);
	metrics_gauge(o, "hybridmig_migration_data_remaining_bytes", "Page bytes still queued.",
		      (double)(s->remaining * HM_PAGE_SIZE));
	metrics_gauge(o, "hybridmig_migration_data_total_bytes",
		      "Processed plus remaining: what it sends if nothing more is dirtied.",
		      (double)(s->bytes_raw + s->remaining * HM_PAGE_SIZE));
	metrics_gauge(o, "hybridmig_migration_wire_bytes", "Bytes sent on the wire.",
		      (double)s->bytes_wire);
	metrics_gauge(o, "hybridmig_migration_dirty_memory_rate_bytes",
		      "Bytes/s the guest dirtied, last harvest.", s->dirty_rate * HM_PAGE_SIZE);
	metrics_gauge(o, "hybridmig_migration_memory_transfer_rate_bytes",
		      "Bytes/s acknowledged by the destination, measured.", s->bandwidth);
	metrics_gauge(o, "hybridmig_migration_bandwidth_limit_bytes",
		      "The bandwidth cap, bytes/s (0: none).", (double)s->bandwidth_limit);
	metrics_gauge(o, "hybridmig_migration_downtime_limit_seconds", "The downtime limit.",
		      (double)s->downtime_limit_ns / 1e9);
}

void vmctl_mig_metrics(struct vmctl *vc, struct metrics_out *o)
{
	const struct mig_stats *s = &vc->mig_final;
	struct mig_stats live;
	char a[96];
	bool running = vc->mig_active && vc->mig;

	if (!running && !vc->mig_final.start_ns)
		return; /* none ran */
	if (running) {
		mig_snapshot(vc->mig, &live);
		s = &live;
	}
	metrics_info(vc, s, o);
	metrics_gauge(o, "hybridmig_migration_running", "1 while a migration out runs.", running);
	metrics_data(s, o);
	metrics_gauge(o, "hybridmig_migration_rounds", "Pre-copy rounds.", s->rounds);
	metrics_gauge(o, "hybridmig_migration_postcopy", "1 once it switched to post-copy.",
		      s->postcopy);
	metrics_gauge(o, "hybridmig_migration_postcopy_requested_pages",
		      "Pages the destination asked for during post-copy.",
		      (double)s->pages_requested);
	metrics_gauge(o, "hybridmig_migration_downtime_seconds",
		      "The guest's downtime at the switch-over (0 before it).",
		      (double)s->downtime_ns / 1e9);
	metrics_gauge(o, "hybridmig_migration_succeeded", "1 when the last migration moved the VM.",
		      !running && vc->migrated);
	metrics_label(a, sizeof(a), "failure", s->failure[0] ? s->failure : "none");
	metrics_family(o, "hybridmig_migration_failed", "gauge",
		       "1 when the last migration failed, labelled with why.");
	metrics_sample(o, "hybridmig_migration_failed", a, !running && s->err);
}

bool vmctl_migrated(struct vmctl *vc, struct mig_stats *s, const char **to)
{
	if (vc->migrated) {
		*s = vc->mig_final;
		*to = vc->mp.to;
	}
	return vc->migrated;
}

int vmctl_mig_attach(struct vmctl *vc, struct control *ctl)
{
	int err = control_add(ctl, "migrate", cmd_migrate, vc);

	if (!err)
		err = control_add(ctl, "migrate_cancel", cmd_cancel, vc);
	if (!err)
		err = control_add(ctl, "abort", cmd_cancel, vc);
	if (!err)
		err = control_add(ctl, "switch-postcopy", cmd_switch_postcopy, vc);
	if (!err)
		err = control_add(ctl, "job", cmd_job, vc);
	if (!err)
		err = control_add(ctl, "set-bandwidth", cmd_set_bandwidth, vc);
	if (!err)
		err = control_add(ctl, "set-downtime", cmd_set_downtime, vc);
	return err;
}
