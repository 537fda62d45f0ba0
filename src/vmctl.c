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
#include "src/metrics.h"
#include "src/mig.h"
#include "src/policy_record.h"
#include "src/vm.h"
#include "src/vmctl_priv.h"
#include "src/vmctl_trace.h"

#define SAMPLE_MS 100

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

void vmctl_notify_exit(struct vmctl *vc, int err)
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
	vmctl_notify_exit(vc, err ? err : -ESHUTDOWN);
}

static void sample_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vmctl *vc = arg;

	(void)fd, (void)what;
	meter_add(&vc->units, hm_now_ns(), devwin_units(&vc->vm->dw));
}

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
	if (!vc->sample_ev || !vc->verdict_ev || !vc->verify_timeout_ev || !vc->stopped_ev ||
	    vmctl_mig_init(vc)) {
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
	vmctl_trace_free(vc->trace);
	if (vc->verify_busy) {
		struct devwin_verdict v = { .err = -ESHUTDOWN, .first_bad_gfn = HM_NO_PAGE };

		devwin_verify_cancel(&vc->vm->dw);
		verify_finish(vc, &v);
	}
	vmctl_mig_free(vc);
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

void vmctl_set_arriving(struct vmctl *vc, vmctl_arriving_fn fn, void *arg)
{
	vc->arriving = fn;
	vc->arriving_arg = arg;
}

const char *vmctl_arriving(struct vmctl *vc)
{
	return vc->arriving ? vc->arriving(vc->arriving_arg) : NULL;
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
	json_str(j, "dirty_tracking", dirty_tracking_name(vm));
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

void vmctl_metrics(void *arg, struct metrics_out *o)
{
	struct vmctl *vc = arg;
	struct vm *vm = vc->vm;
	char guest[96];
	char track[64];
	char state[64];
	char labels[256];

	metrics_label(guest, sizeof(guest), "guest", vc->spec->type->name);
	metrics_label(track, sizeof(track), "dirty_tracking", dirty_tracking_name(vm));
	metrics_label(state, sizeof(state), "state", vm_state_name(vm_get_state(vm)));
	snprintf(labels, sizeof(labels), "%s,%s,%s", guest, track, state);
	metrics_family(o, "hybridmig_vm_info", "gauge", "The VM in this process (always 1).");
	metrics_sample(o, "hybridmig_vm_info", labels, 1);
	metrics_gauge(o, "hybridmig_vm_memory_bytes", "Guest-physical RAM.", (double)vm->mem.size);
	metrics_gauge(o, "hybridmig_vm_vcpus", "vCPUs.", vm->nr_vcpus);
	metrics_gauge(o, "hybridmig_vm_uptime_seconds", "Since the VM started in this process.",
		      vm->start_ns ? (double)(hm_now_ns() - vm->start_ns) / 1e9 : 0);
	metrics_family(o, "hybridmig_vm_work_units_total", "counter",
		       "Work units the guest reported (its progress).");
	metrics_sample(o, "hybridmig_vm_work_units_total", "", (double)devwin_units(&vm->dw));
	metrics_gauge(o, "hybridmig_vm_work_units_per_second", "The guest's rate, last second.",
		      meter_rate(&vc->units, RATE_WINDOW_NS));
	metrics_gauge(o, "hybridmig_vm_fenced",
		      "1 while the VM is fenced here after an unfinished switch-over.", vc->fenced);
	vmctl_mig_metrics(vc, o);
}

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

void vmctl_stop_after_reply(void *arg)
{
	vmctl_notify_exit(arg, 0);
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
	control_reply_then(req, "{\"ok\":true,\"state\":\"stopping\"}", vmctl_stop_after_reply,
			   arg);
}

int vmctl_attach(struct vmctl *vc, struct control *ctl)
{
	int err = control_add(ctl, "status", cmd_status, vc);

	if (!err)
		err = vmctl_mig_attach(vc, ctl);
	if (!err)
		err = control_add(ctl, "verify", cmd_verify, vc);
	if (!err)
		err = control_add(ctl, "pause", cmd_pause, vc);
	if (!err)
		err = control_add(ctl, "resume", cmd_resume, vc);
	if (!err)
		err = control_add(ctl, "stop", cmd_stop, vc);
	if (!err && !vc->trace) {
		vc->trace = vmctl_trace_new(vc->base, vc->vm, vc);
		err = vc->trace ? vmctl_trace_attach(vc->trace, ctl) : -ENOMEM;
	}
	return err;
}

bool vmctl_last_verdict(struct vmctl *vc, struct devwin_verdict *v)
{
	if (vc->have_last)
		*v = vc->last;
	return vc->have_last;
}
