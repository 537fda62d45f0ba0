// SPDX-License-Identifier: MIT
#define LOG_PREFIX "vmctl: "
#include "src/vmctl.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include "src/control.h"
#include "src/guest.h"
#include "src/json.h"
#include "src/log.h"
#include "src/meter.h"
#include "src/mig.h"
#include "src/vm.h"

#define SAMPLE_MS      100
#define RATE_WINDOW_NS (1 * NSEC_PER_SEC)

struct vmctl {
	struct event_base *base;
	struct vm *vm;		       /* not owned */
	const struct guest_spec *spec; /* not owned */
	struct meter units;
	struct event *sample_ev;
	struct event *verdict_ev; /* activated from a vCPU thread */
	struct event *verify_timeout_ev;
	struct event *stopped_ev; /* activated when the VM stops by itself */
	pthread_mutex_t lock;	  /* guards verdict and verdict_ready */
	struct devwin_verdict verdict;
	bool verdict_ready;
	bool verify_busy;
	struct devwin_verdict last;
	bool have_last;
	struct ctl_req *verify_req; /* control request waiting for a verdict */
	vmctl_verify_fn verify_fn;  /* or an in-process requester */
	void *verify_arg;
	vmctl_exit_fn exit_fn;
	void *exit_arg;
	bool exited;
	/* migration out */
	struct mig *mig; /* running, or kept after it ended fenced (for migrate --resume) */
	bool mig_active; /* its thread runs */
	struct ctl_req *mig_req;
	struct event *mig_done_ev; /* activated from the migration thread */
	struct event *mig_tick_ev; /* progress lines to the requester */
	struct mig_params mp;
	struct mig_stats mig_final;
	bool migrated;
	bool fenced; /* the switch-over did not complete: the guest may run there; never resume */
};

static void verify_finish(struct vmctl *vc, const struct devwin_verdict *v);

static void verdict_vcpu_cb(void *arg, const struct devwin_verdict *v)
{
	struct vmctl *vc = arg;

	pthread_mutex_lock(&vc->lock);
	vc->verdict = *v;
	vc->verdict_ready = true;
	pthread_mutex_unlock(&vc->lock);
	event_active(vc->verdict_ev, EV_READ, 0);
}

static void verdict_loop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vmctl *vc = arg;
	struct devwin_verdict v;
	bool ready;

	(void)fd, (void)what;
	pthread_mutex_lock(&vc->lock);
	ready = vc->verdict_ready;
	v = vc->verdict;
	vc->verdict_ready = false;
	pthread_mutex_unlock(&vc->lock);
	if (ready)
		verify_finish(vc, &v);
}

static void verify_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vmctl *vc = arg;
	struct devwin_verdict v = { .err = -ETIMEDOUT, .first_bad_gfn = HM_NO_PAGE };

	(void)fd, (void)what;
	devwin_verify_cancel(&vc->vm->dw);
	verify_finish(vc, &v);
}

static void stopped_vcpu_cb(void *arg)
{
	struct vmctl *vc = arg;

	event_active(vc->stopped_ev, EV_READ, 0);
}

static void notify_exit(struct vmctl *vc, int err)
{
	struct devwin_verdict v = { .err = -ESHUTDOWN, .first_bad_gfn = HM_NO_PAGE };

	if (vc->verify_busy)
		verify_finish(vc, &v);
	if (vc->exited)
		return;
	vc->exited = true;
	if (vc->exit_fn)
		vc->exit_fn(vc->exit_arg, err);
}

static void stopped_loop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vmctl *vc = arg;
	int err = vm_error(vc->vm, NULL, 0);

	(void)fd, (void)what;
	notify_exit(vc, err ? err : -ESHUTDOWN);
}

static void sample_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vmctl *vc = arg;

	(void)fd, (void)what;
	meter_add(&vc->units, hm_now_ns(), devwin_units(&vc->vm->dw));
}

static void mig_done_loop_cb(evutil_socket_t fd, short what, void *arg);
static void mig_tick_cb(evutil_socket_t fd, short what, void *arg);

struct vmctl *vmctl_new(struct event_base *base, struct vm *vm, const struct guest_spec *spec)
{
	struct vmctl *vc = calloc(1, sizeof(*vc));

	if (!vc)
		return NULL;
	vc->base = base;
	vc->vm = vm;
	vc->spec = spec;
	meter_init(&vc->units);
	pthread_mutex_init(&vc->lock, NULL);
	vc->sample_ev = event_new(base, -1, EV_PERSIST, sample_cb, vc);
	vc->verdict_ev = event_new(base, -1, 0, verdict_loop_cb, vc);
	vc->verify_timeout_ev = event_new(base, -1, 0, verify_timeout_cb, vc);
	vc->stopped_ev = event_new(base, -1, 0, stopped_loop_cb, vc);
	vc->mig_done_ev = event_new(base, -1, 0, mig_done_loop_cb, vc);
	vc->mig_tick_ev = event_new(base, -1, EV_PERSIST, mig_tick_cb, vc);
	if (!vc->sample_ev || !vc->verdict_ev || !vc->verify_timeout_ev || !vc->stopped_ev ||
	    !vc->mig_done_ev || !vc->mig_tick_ev) {
		vmctl_free(vc);
		return NULL;
	}
	vm_set_stop_cb(vm, stopped_vcpu_cb, vc);
	return vc;
}

void vmctl_free(struct vmctl *vc)
{
	if (!vc)
		return;
	if (vc->verify_busy) {
		struct devwin_verdict v = { .err = -ESHUTDOWN, .first_bad_gfn = HM_NO_PAGE };

		devwin_verify_cancel(&vc->vm->dw);
		verify_finish(vc, &v);
	}
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
	vm_set_stop_cb(vc->vm, NULL, NULL);
	if (vc->sample_ev)
		event_free(vc->sample_ev);
	if (vc->verdict_ev)
		event_free(vc->verdict_ev);
	if (vc->verify_timeout_ev)
		event_free(vc->verify_timeout_ev);
	if (vc->stopped_ev)
		event_free(vc->stopped_ev);
	pthread_mutex_destroy(&vc->lock);
	free(vc);
}

void vmctl_set_exit_cb(struct vmctl *vc, vmctl_exit_fn fn, void *arg)
{
	vc->exit_fn = fn;
	vc->exit_arg = arg;
}

int vmctl_start(struct vmctl *vc)
{
	struct timeval tv = { 0, SAMPLE_MS * 1000 };

	meter_add(&vc->units, hm_now_ns(), 0);
	return event_add(vc->sample_ev, &tv) ? -ENOMEM : 0;
}

int vmctl_verify(struct vmctl *vc, vmctl_verify_fn fn, void *arg)
{
	struct timeval tv = { VMCTL_VERIFY_TIMEOUT_MS / 1000, 0 };
	enum vm_state st = vm_get_state(vc->vm);
	int err;

	if (vc->verify_busy)
		return -EBUSY;
	if (st == VM_PAUSED)
		return -EAGAIN;
	if (st != VM_RUNNING)
		return -ESHUTDOWN;
	err = devwin_verify_start(&vc->vm->dw, verdict_vcpu_cb, vc);
	if (err)
		return err;
	vc->verify_busy = true;
	vc->verify_fn = fn;
	vc->verify_arg = arg;
	event_add(vc->verify_timeout_ev, &tv);
	return 0;
}

static void verdict_json(struct json_out *j, const struct devwin_verdict *v)
{
	json_str(j, "verify", v->err ? "error" : v->ok ? "ok" : "bad");
	json_u64(j, "verify_bad_pages", v->bad);
	if (v->first_bad_gfn == HM_NO_PAGE)
		json_null(j, "verify_first_bad_page");
	else
		json_u64(j, "verify_first_bad_page", v->first_bad_gfn);
	json_u64(j, "verify_pages_checked", v->pages);
	json_dbl(j, "verify_ms", (double)v->ns / 1e6, 1);
}

static void reply_verdict(struct ctl_req *req, const struct devwin_verdict *v)
{
	char buf[512];
	struct json_out j;

	if (v->err == -ETIMEDOUT) {
		control_reply_error(req, "the guest did not answer verify within %d s",
				    VMCTL_VERIFY_TIMEOUT_MS / 1000);
		return;
	}
	if (v->err) {
		control_reply_error(req, "verify could not complete: the VM stopped");
		return;
	}
	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_bool(&j, "ok", true);
	verdict_json(&j, v);
	json_obj_end(&j);
	control_reply(req, json_done(&j) ? buf : "{\"ok\":false,\"error\":\"reply too long\"}");
}

static void verify_finish(struct vmctl *vc, const struct devwin_verdict *v)
{
	struct ctl_req *req = vc->verify_req;
	vmctl_verify_fn fn = vc->verify_fn;

	event_del(vc->verify_timeout_ev);
	vc->verify_busy = false;
	vc->verify_req = NULL;
	vc->verify_fn = NULL;
	if (!v->err) {
		vc->last = *v;
		vc->have_last = true;
	}
	if (req)
		reply_verdict(req, v);
	if (fn)
		fn(vc->verify_arg, v);
}

double vmctl_units_avg(struct vmctl *vc)
{
	uint64_t first = devwin_first_report_ns(&vc->vm->dw);
	uint64_t now = hm_now_ns();

	if (!first || now <= first)
		return 0;
	return (double)devwin_units(&vc->vm->dw) * 1e9 / (double)(now - first);
}

void vmctl_status(struct vmctl *vc, struct json_out *j)
{
	struct vm *vm = vc->vm;
	uint64_t first = devwin_first_report_ns(&vm->dw);
	struct iodev_stats io = { 0 };

	if (vm->has_io)
		iodev_get_stats(&vm->io, &io);
	json_str(j, "state", vm_state_name(vm_get_state(vm)));
	if (vc->fenced)
		json_bool(j, "fenced", true);
	if (vc->mig) {
		struct mig_stats ms;

		mig_snapshot(vc->mig, &ms);
		json_str(j, "migration", ms.phase);
		json_str(j, "migration_to", vc->mp.to);
	}
	json_str(j, "guest", vc->spec->type->name);
	json_u64(j, "vcpus", vm->nr_vcpus);
	json_u64(j, "mem_bytes", vm->mem.size);
	json_dbl(j, "uptime_s", vm->start_ns ? (double)(hm_now_ns() - vm->start_ns) / 1e9 : 0, 3);
	json_u64(j, "work_units", devwin_units(&vm->dw));
	json_dbl(j, "work_units_per_s", meter_rate(&vc->units, RATE_WINDOW_NS), 0);
	json_dbl(j, "work_units_per_s_avg", vmctl_units_avg(vc), 0);
	if (first)
		json_dbl(j, "first_progress_ms", (double)(first - vm->start_ns) / 1e6, 3);
	else
		json_null(j, "first_progress_ms");
	json_dbl(j, "guest_max_tsc_jump_ms",
		 vm->tsc_khz ? (double)devwin_tsc_gap(&vm->dw) / (double)vm->tsc_khz : 0, 3);
	json_u64(j, "io_bytes", io.bytes);
	json_u64(j, "io_records_checked", devwin_io_seen(&vm->dw));
	json_u64(j, "io_ring_full", io.stalls);
	if (vc->have_last)
		verdict_json(j, &vc->last);
	else
		json_str(j, "verify", "none");
}

/* ---- control commands ---------------------------------------------------- */

static void reply_status(struct vmctl *vc, struct ctl_req *req)
{
	char buf[2048];
	struct json_out j;

	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_bool(&j, "ok", true);
	vmctl_status(vc, &j);
	json_obj_end(&j);
	control_reply(req, json_done(&j) ? buf : "{\"ok\":false,\"error\":\"reply too long\"}");
}

static void cmd_status(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	(void)f, (void)n;
	reply_status(arg, req);
}

static void cmd_verify(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	struct vmctl *vc = arg;
	int err;

	(void)f, (void)n;
	if (vc->mig_active || vc->fenced) {
		control_reply_error(req, "%s",
				    vc->fenced ? "the VM is fenced (migrated away)"
					       : "a migration is running: verify after it");
		return;
	}
	err = vmctl_verify(vc, NULL, NULL);
	if (err == -EBUSY)
		control_reply_error(req, "a verify is already running");
	else if (err == -EAGAIN)
		control_reply_error(req, "the VM is paused: resume it before verify");
	else if (err)
		control_reply_error(req, "the VM is not running");
	else
		vc->verify_req = req;
}

static void cmd_pause(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	struct vmctl *vc = arg;
	uint64_t t0 = hm_now_ns();
	int err;

	(void)f, (void)n;
	if (vc->mig_active || vc->fenced) {
		control_reply_error(req, "%s",
				    vc->fenced ? "the VM is fenced (migrated away)"
					       : "a migration is running: abort it first");
		return;
	}
	if (vc->verify_busy) {
		control_reply_error(req, "a verify is running: pause after it");
		return;
	}
	err = vm_pause(vc->vm);
	if (err) {
		control_reply_error(req, "cannot pause: the VM is not running");
		return;
	}
	hm_info("paused in %llu us", (unsigned long long)(hm_now_ns() - t0) / 1000);
	reply_status(vc, req);
}

static bool forced(const struct json_field *f, size_t n)
{
	const struct json_field *x = json_find(f, n, "force");

	return x && x->type == JSON_BOOL && x->b;
}

static void cmd_resume(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	struct vmctl *vc = arg;

	if (vc->mig_active) {
		control_reply_error(req, "a migration is running: 'hybridmig abort' first");
		return;
	}
	if (vc->fenced && !forced(f, n)) {
		control_reply_error(
		    req, "refusing to resume: the VM is fenced because it may run on the "
			 "migration destination; resuming it here too would run the guest "
			 "twice. Use 'migrate --resume' to finish the migration, or "
			 "'resume --force' once the destination is known not to run it");
		return;
	}
	if (vc->fenced) {
		hm_warn("resume --force: lifting the fence; if the destination ran the guest, its "
			"work there since the switch-over is lost and must not continue there");
		vm_unfence(vc->vm);
		vc->fenced = false;
		mig_free(vc->mig);
		vc->mig = NULL;
	}
	if (vm_resume(vc->vm)) {
		control_reply_error(req, "cannot resume: the VM is not paused or running");
		return;
	}
	reply_status(vc, req);
}

static void stop_after_reply(void *arg)
{
	notify_exit(arg, 0);
}

/* Why stopping now would lose or fork the guest, or NULL when it is safe. */
const char *vmctl_unsafe_to_stop(struct vmctl *vc)
{
	if (vc->mig_active && vc->mig && mig_fenced(vc->mig))
		return "the switch-over is in progress and this side still holds pages the "
		       "destination needs";
	if (vc->mig_active)
		return "a migration is running ('hybridmig abort' first)";
	if (vc->fenced)
		return "the VM is fenced after an unfinished switch-over: it holds the only "
		       "complete copy ('migrate --resume' to finish)";
	return NULL;
}

static void cmd_stop(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	const char *unsafe = vmctl_unsafe_to_stop(arg);

	if (unsafe && !forced(f, n)) {
		control_reply_error(req, "refusing to stop: %s; --force stops anyway", unsafe);
		return;
	}
	if (unsafe)
		hm_warn("stop --force: %s", unsafe);
	control_reply_then(req, "{\"ok\":true,\"state\":\"stopping\"}", stop_after_reply, arg);
}

/* ---- migration out --------------------------------------------------------- */

#define MIG_TICK_MS 500

static void mig_done_thread_cb(void *arg)
{
	struct vmctl *vc = arg;

	event_active(vc->mig_done_ev, EV_READ, 0);
}

static void mig_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vmctl *vc = arg;
	struct mig_stats s;
	char buf[1024];
	struct json_out j;
	double eta;

	(void)fd, (void)what;
	if (!vc->mig || !vc->mig_req)
		return;
	mig_snapshot(vc->mig, &s);
	/* before the first round ends, the average so far */
	if (s.bandwidth <= 0 && hm_now_ns() > s.start_ns)
		s.bandwidth = (double)s.bytes_wire * 1e9 / (double)(hm_now_ns() - s.start_ns);
	eta = s.bandwidth > 0 ? (double)s.remaining * HM_PAGE_SIZE / s.bandwidth : -1;
	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_str(&j, "event", "progress");
	json_str(&j, "phase", s.phase);
	json_u64(&j, "round", s.rounds);
	json_dbl(&j, "elapsed_s", (double)(hm_now_ns() - s.start_ns) / 1e9, 1);
	json_u64(&j, "bytes_wire", s.bytes_wire);
	json_u64(&j, "remaining_pages", s.remaining);
	json_dbl(&j, "bandwidth_mbps", s.bandwidth * 8 / 1e6, 1);
	json_dbl(&j, "dirty_rate_pages_per_s", s.dirty_rate, 0);
	json_dbl(&j, "eta_s", eta, 1);
	json_obj_end(&j);
	if (json_done(&j))
		control_notify(vc->mig_req, buf);
}

static void mig_done_loop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vmctl *vc = arg;
	struct ctl_req *req = vc->mig_req;
	char buf[4096];
	struct json_out j;

	(void)fd, (void)what;
	event_del(vc->mig_tick_ev);
	mig_snapshot(vc->mig, &vc->mig_final);
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
	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_bool(&j, "ok", vc->migrated);
	json_str(&j, "event", "done");
	json_str(&j, "mode", mig_mode_name(vc->mp.mode));
	json_str(&j, "to", vc->mp.to);
	mig_report_json(&vc->mig_final, &j);
	json_obj_end(&j);
	if (!json_done(&j))
		snprintf(buf, sizeof(buf), "{\"ok\":false,\"error\":\"report too long\"}");
	/* moved: this side is done once the report is out */
	if (req && vc->migrated)
		control_reply_then(req, buf, stop_after_reply, vc);
	else if (req)
		control_reply(req, buf);
	else if (vc->migrated)
		notify_exit(vc, 0);
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

static const char *migrate_params(struct vmctl *vc, const struct json_field *f, size_t n)
{
	const struct json_field *to = json_find(f, n, "to");
	const struct json_field *mode = json_find(f, n, "mode");
	double bw = 0;
	double dl = 300;
	double to_s = 0;
	double pc = 0;
	double rc = 30;
	const char *bad;

	memset(&vc->mp, 0, sizeof(vc->mp));
	if (!to || to->type != JSON_STRING || !*to->str)
		return "migrate needs \"to\": \"ADDR:PORT\"";
	if (strlen(to->str) >= sizeof(vc->mp.to))
		return "\"to\" is too long";
	memcpy(vc->mp.to, to->str, strlen(to->str) + 1);
	vc->mp.mode = MIG_PRECOPY;
	if (mode && mode->type == JSON_STRING && !strcmp(mode->str, "postcopy"))
		vc->mp.mode = MIG_POSTCOPY;
	else if (mode && mode->type == JSON_STRING && !strcmp(mode->str, "hybrid"))
		vc->mp.mode = MIG_HYBRID;
	else if (mode && (mode->type != JSON_STRING || strcmp(mode->str, "precopy")))
		return "unknown mode (precopy, postcopy, hybrid)";
	if (num_field(f, n, "postcopy_after_rounds", 0, 1000, &pc))
		return "postcopy_after_rounds must be 0 to 1000";
	if (num_field(f, n, "reconnect_s", 0, 3600, &rc))
		return "reconnect_s must be 0 to 3600";
	if (num_field(f, n, "bandwidth", 0, 1e12, &bw))
		return "bandwidth must be bytes/s, 0 to 1e12";
	if (num_field(f, n, "downtime_limit_ms", 1, 600000, &dl))
		return "downtime_limit_ms must be 1 to 600000";
	if (num_field(f, n, "timeout_s", 0, 86400, &to_s))
		return "timeout_s must be 0 to 86400";
	bad = tls_params(&vc->mp, f, n);
	if (bad)
		return bad;
	vc->mp.postcopy_after_rounds = (uint32_t)pc;
	vc->mp.reconnect_ns = (uint64_t)(rc * 1e9);
	vc->mp.bandwidth = (uint64_t)bw;
	vc->mp.downtime_limit_ns = (uint64_t)(dl * 1e6);
	vc->mp.timeout_ns = (uint64_t)(to_s * 1e9);
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
	if (vm_get_state(vc->vm) != VM_RUNNING || vc->verify_busy) {
		control_reply_error(req, "the VM must be running, with no verify in flight");
		return;
	}
	bad = migrate_params(vc, f, n);
	if (bad) {
		control_reply_error(req, "%s", bad);
		return;
	}
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

bool vmctl_migrated(struct vmctl *vc, struct mig_stats *s, const char **to)
{
	if (vc->migrated) {
		*s = vc->mig_final;
		*to = vc->mp.to;
	}
	return vc->migrated;
}

int vmctl_attach(struct vmctl *vc, struct control *ctl)
{
	int err = control_add(ctl, "status", cmd_status, vc);

	if (!err)
		err = control_add(ctl, "migrate", cmd_migrate, vc);
	if (!err)
		err = control_add(ctl, "migrate_cancel", cmd_cancel, vc);
	if (!err)
		err = control_add(ctl, "abort", cmd_cancel, vc);
	if (!err)
		err = control_add(ctl, "switch-postcopy", cmd_switch_postcopy, vc);

	if (!err)
		err = control_add(ctl, "verify", cmd_verify, vc);
	if (!err)
		err = control_add(ctl, "pause", cmd_pause, vc);
	if (!err)
		err = control_add(ctl, "resume", cmd_resume, vc);
	if (!err)
		err = control_add(ctl, "stop", cmd_stop, vc);
	return err;
}

bool vmctl_last_verdict(struct vmctl *vc, struct devwin_verdict *v)
{
	if (vc->have_last)
		*v = vc->last;
	return vc->have_last;
}
