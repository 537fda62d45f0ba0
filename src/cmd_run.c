// SPDX-License-Identifier: MIT
/* hybridmig run: a VM with a built-in guest, served on an event loop. */
#define LOG_PREFIX ""
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <limits.h>
#include <signal.h>
#include <pthread.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <unistd.h>
#include "src/control.h"
#include "src/ctlclient.h"
#include "src/guest.h"
#include "src/json.h"
#include "src/dest.h"
#include "src/tls.h"
#include "src/log.h"
#include "src/metrics.h"
#include "src/mig.h"
#include "src/net.h"
#include "src/parse.h"
#include "src/vcpu.h"
#include "src/vm.h"
#include "src/vmctl.h"
#include "src/cmd.h"
#include "src/cmdopt.h"

#define DEFAULT_MEM (1ULL << 30)

static void print_run_help(const char *cmd)
{
	printf("usage: hybridmig run [--mem SIZE] [--vcpus N] [--guest NAME[:k=v,...]]\n"
	       "                     [--control PATH] [--seconds N] [--dirty-tracking MODE]\n"
	       "                     [--metrics-listen ADDR:PORT] [--json] [-v]\n\n"
	       "Starts a VM running a built-in test guest.\n\n"
	       "  --mem SIZE        guest RAM, e.g. 512M, 4G (default 1G, at most %llu G);\n"
	       "                    untouched memory costs nothing\n"
	       "  --vcpus N         vCPUs, 1 to %d (default 1), one host thread each\n"
	       "  --guest SPEC      guest and parameters (default dirtier):\n",
	       (unsigned long long)(HM_MAX_RAM >> 30), HM_MAX_VCPUS);
	guest_print_catalogue(stdout);
	printf("                    dirtier: wss=SIZE working set (default 64M), rate=N pages/s\n"
	       "                    (0 = unlimited), pattern=seq|random|zipf, io=N MB/s written\n"
	       "                    by the DMA device into a ring the guest checks, seed=N,\n"
	       "                    fill=1 to write the working set once and then idle,\n"
	       "                    prefill=1 to write it once at full speed, then at rate\n"
	       "  --control PATH    serve the control socket at PATH (JSON lines; see README)\n"
	       "  --seconds N       run N seconds, verify, stop and print a summary\n"
	       "                    (default: run until 'hybridmig stop' or a signal)\n"
	       "  --dirty-tracking MODE  how migrations see the pages the guest writes: ring\n"
	       "                    (KVM's dirty ring), log (KVM's dirty log) or auto (default:\n"
	       "                    the ring where KVM offers it; env HYBRIDMIG_DIRTY_TRACKING)\n"
	       "  --metrics-listen ADDR:PORT  serve Prometheus metrics of the VM and its\n"
	       "                    migrations at http://ADDR:PORT/metrics (plain HTTP,\n"
	       "                    read-only; bind it where only monitoring reaches)\n"
	       "  --json            print the summary as one JSON object on stdout\n"
	       "  -v, --verbose     more messages on stderr (repeat for debug)\n");
}

/* --mem: a size from 8M to HM_MAX_RAM, in whole pages. */
static int set_mem(const struct cmdopt *d, const char *arg, void *opts)
{
	struct run_opts *o = opts;

	if (parse_size(arg, &o->mem) || o->mem < (8ULL << 20) || o->mem > HM_MAX_RAM ||
	    o->mem % HM_PAGE_SIZE)
		return -EINVAL;
	return 0;
}

#define AT(f) CMDOPT_AT(struct run_opts, f)
static const struct cmdopt run_options[] = {
	{ "mem", CMDOPT_CALL, .set = set_mem, .hint = "a size from 8M to 128G, a multiple of 4K" },
	{ "vcpus", CMDOPT_COUNT, AT(vcpus), .lo = 1, .hi = HM_MAX_VCPUS },
	{ "guest", CMDOPT_STRING, AT(guest) },
	{ "control", CMDOPT_STRING, AT(control) },
	{ "seconds", CMDOPT_COUNT, AT(seconds), .lo = 1, .hi = 1000000 },
	{ "dirty-tracking", CMDOPT_CALL, AT(dirty), .set = cmd_opt_dirty,
	  .hint = "ring, log or auto" },
	{ "json", CMDOPT_FLAG, AT(json) },
	{ "metrics-listen", CMDOPT_ADDR, AT(metrics_listen), .hint = "ADDR:PORT, [IPv6]:PORT" },
	{ "verbose", CMDOPT_ACTION, .set = cmd_opt_verbose, .short_name = 'v' },
	{ NULL },
};
#undef AT

static int parse_run_opts(int argc, char **argv, struct run_opts *o)
{
	const char *dt = getenv("HYBRIDMIG_DIRTY_TRACKING");

	*o = (struct run_opts){ .mem = DEFAULT_MEM, .vcpus = 1, .guest = "dirtier" };
	if (dt && dirty_mode_parse(dt, &o->dirty))
		return cmd_usage_error("run",
				       "bad HYBRIDMIG_DIRTY_TRACKING '%s' (ring, log or auto)", dt);
	return cmdopt_parse("run", run_options, argc, argv, o, print_run_help);
}

static void human_bytes(char *buf, size_t len, double b)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned int i = 0;

	while (b >= 1024 && i + 1 < ARRAY_SIZE(u)) {
		b /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

void cmd_run_stop(struct run_ctx *rc)
{
	event_base_loopbreak(rc->base);
}

static void exit_cb(void *arg, int err)
{
	struct run_ctx *rc = arg;

	rc->vm_err = err == -ESHUTDOWN ? 0 : err;
	cmd_run_stop(rc);
}

static void final_verdict_cb(void *arg, const struct devwin_verdict *v)
{
	struct run_ctx *rc = arg;

	rc->final = *v;
	rc->final_done = true;
	cmd_run_stop(rc);
}

static void seconds_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run_ctx *rc = arg;
	int err;

	(void)fd, (void)what;
	if (vm_get_state(rc->vm) == VM_PAUSED && vm_resume(rc->vm))
		hm_warn("cannot resume the VM for its final verify");
	err = vmctl_verify(rc->vc, final_verdict_cb, rc);
	if (err) {
		rc->final.err = err;
		rc->final_done = true;
		cmd_run_stop(rc);
	}
}

static void progress_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run_ctx *rc = arg;
	double up = (double)(hm_now_ns() - rc->vm->start_ns) / 1e9;
	struct iodev_stats io = { 0 };
	char iob[32];

	(void)fd, (void)what;
	if (rc->vm->has_io)
		iodev_get_stats(&rc->vm->io, &io);
	human_bytes(iob, sizeof(iob), (double)io.bytes);
	fprintf(stderr, "\r\033[K  %6.1f s  %-8s  %12llu work units  %10.0f/s  I/O %s", up,
		vm_state_name(vm_get_state(rc->vm)), (unsigned long long)devwin_units(&rc->vm->dw),
		vmctl_units_avg(rc->vc), iob);
	rc->progress_shown = true;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct run_ctx *rc = arg;

	const char *unsafe = rc->vc ? vmctl_unsafe_to_stop(rc->vc) : NULL;

	(void)what;
	if (unsafe) {
		hm_warn("signal %d ignored: %s; 'hybridmig stop --force' stops anyway", (int)sig,
			unsafe);
		return;
	}
	hm_info("signal %d: stopping", (int)sig);
	rc->interrupted = true;
	cmd_run_stop(rc);
}

static int build_vm(struct run_ctx *rc)
{
	struct vm_config cfg = { 0 };
	char why[512];
	int err;

	if (guest_spec_parse(rc->o.guest, &rc->spec, why, sizeof(why)))
		return cmd_usage_error("run", "%s", why);
	cfg.mem_bytes = rc->o.mem;
	cfg.nr_vcpus = rc->o.vcpus;
	cfg.image = rc->spec.type->image;
	cfg.image_size = (size_t)(rc->spec.type->image_end - rc->spec.type->image);
	cfg.io_rate = rc->spec.io_mbps * 1000000;
	/* for tests and unusual hosts: another KVM device node */
	cfg.kvm_path = getenv("HYBRIDMIG_KVM_DEVICE");
	cfg.dirty = rc->o.dirty;
	if (guest_layout(&rc->spec, cfg.mem_bytes, cfg.nr_vcpus, &cfg.boot, why, sizeof(why)))
		return cmd_usage_error("run", "%s", why);
	err = vcpu_signal_setup();
	if (!err)
		err = vm_new(&cfg, &rc->vm, why, sizeof(why));
	if (err) {
		hm_err("%s", why);
		return 1;
	}
	return 0;
}

static int add_timer(struct event_base *base, struct event **ev, bool persist, uint64_t ms,
		     event_callback_fn fn, void *arg)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	*ev = event_new(base, -1, persist ? EV_PERSIST : 0, fn, arg);
	if (!*ev || event_add(*ev, &tv))
		return -ENOMEM;
	return 0;
}

int cmd_run_setup(struct run_ctx *rc)
{
	static const int sigs[2] = { SIGINT, SIGTERM };
	char why[256];
	int err = 0;

	rc->vc = vmctl_new(rc->base, rc->vm, &rc->spec);
	if (!rc->vc)
		return -ENOMEM;
	vmctl_set_exit_cb(rc->vc, exit_cb, rc);
	if (rc->o.control && !rc->ctl) {
		rc->ctl = control_new(rc->base, rc->o.control, why, sizeof(why));
		if (!rc->ctl) {
			hm_err("%s", why);
			return -EINVAL;
		}
	}
	if (rc->ctl)
		err = vmctl_attach(rc->vc, rc->ctl);
	if (!err && rc->o.metrics_listen && !rc->metrics) {
		rc->metrics = metrics_new(rc->base, rc->o.metrics_listen, why, sizeof(why));
		if (!rc->metrics) {
			hm_err("--metrics-listen: %s", why);
			return -EINVAL;
		}
	}
	if (!err && rc->metrics)
		err = metrics_add(rc->metrics, vmctl_metrics, rc->vc);
	for (int i = 0; i < 2 && !err; i++) {
		rc->sig_ev[i] = evsignal_new(rc->base, sigs[i], signal_cb, rc);
		if (!rc->sig_ev[i] || event_add(rc->sig_ev[i], NULL))
			err = -ENOMEM;
	}
	if (!err && rc->o.seconds)
		err = add_timer(rc->base, &rc->seconds_ev, false, rc->o.seconds * 1000, seconds_cb,
				rc);
	if (!err && isatty(STDERR_FILENO) && !rc->o.json)
		err = add_timer(rc->base, &rc->progress_ev, true, 1000, progress_cb, rc);
	return err;
}

static void summary_json(struct run_ctx *rc, int64_t touched, double secs)
{
	char buf[2048];
	struct json_out j;

	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_bool(&j, "ok", !rc->vm_err && (!rc->final_done || (!rc->final.err && rc->final.ok)));
	vmctl_status(rc->vc, &j);
	json_dbl(&j, "run_s", secs, 3);
	json_i64(&j, "pages_touched", touched);
	if (rc->vm_err) {
		char msg[256];

		vm_error(rc->vm, msg, sizeof(msg));
		json_str(&j, "error", msg);
	}
	json_obj_end(&j);
	printf("%s\n", json_done(&j) ? buf : "{\"ok\":false,\"error\":\"summary too long\"}");
}

void cmd_run_summary(struct run_ctx *rc, int64_t touched, double secs)
{
	struct iodev_stats io = { 0 };
	char b1[32];
	char b2[32];

	if (rc->vm->has_io)
		iodev_get_stats(&rc->vm->io, &io);
	human_bytes(b1, sizeof(b1), (double)touched * HM_PAGE_SIZE);
	human_bytes(b2, sizeof(b2), (double)io.bytes);
	printf("hybridmig run: guest %s, %u vCPU%s, %llu MiB RAM, %.1f s\n", rc->spec.type->name,
	       rc->vm->nr_vcpus, rc->vm->nr_vcpus > 1 ? "s" : "",
	       (unsigned long long)(rc->vm->mem.size >> 20), secs);
	printf("  work units      %llu (%.0f/s)\n", (unsigned long long)devwin_units(&rc->vm->dw),
	       vmctl_units_avg(rc->vc));
	printf("  pages touched   %lld (%s)\n", (long long)touched, b1);
	printf("  I/O written     %s (%llu records checked by the guest)\n", b2,
	       (unsigned long long)devwin_io_seen(&rc->vm->dw));
	if (!rc->final_done)
		printf("  verify          not run\n");
	else if (rc->final.err)
		printf("  verify          could not run (%s)\n", strerror(-rc->final.err));
	else if (rc->final.ok)
		printf("  verify          ok (%llu pages checked in %.1f ms)\n",
		       (unsigned long long)rc->final.pages, (double)rc->final.ns / 1e6);
	else
		printf("  verify          BAD: %llu bad pages, first at page 0x%llx\n",
		       (unsigned long long)rc->final.bad,
		       (unsigned long long)rc->final.first_bad_gfn);
}

int cmd_run_finish(struct run_ctx *rc)
{
	double secs = (double)(hm_now_ns() - rc->vm->start_ns) / 1e9;
	struct mig_stats ms;
	const char *to;
	int64_t touched;
	char msg[256];

	if (rc->progress_shown)
		fprintf(stderr, "\r\033[K");
	vm_stop(rc->vm);
	touched = mem_resident_pages(&rc->vm->mem);
	if (rc->vm_err) {
		vm_error(rc->vm, msg, sizeof(msg));
		hm_err("%s", msg);
	}
	if (rc->o.json)
		summary_json(rc, touched, secs);
	else if ((rc->o.seconds || rc->interrupted || rc->vm_err) &&
		 !vmctl_migrated(rc->vc, &ms, &to))
		cmd_run_summary(rc, touched, secs);
	if (rc->vm_err)
		return 1;
	if (vmctl_migrated(rc->vc, &ms, &to)) {
		if (!rc->o.json)
			mig_report_text(&ms, to, stdout);
		return 0;
	}
	if (rc->final_done && rc->final.err)
		return 1;
	return rc->final_done && !rc->final.ok ? EXIT_BADPAGES : 0;
}

void cmd_run_teardown(struct run_ctx *rc)
{
	/* its sources are the vmctl and the caller's: first */
	metrics_free(rc->metrics);
	vmctl_free(rc->vc);
	control_free(rc->ctl);
	for (int i = 0; i < 2; i++)
		if (rc->sig_ev[i])
			event_free(rc->sig_ev[i]);
	if (rc->seconds_ev)
		event_free(rc->seconds_ev);
	if (rc->progress_ev)
		event_free(rc->progress_ev);
	vm_free(rc->vm);
	if (rc->base)
		event_base_free(rc->base);
}

int cmd_run(int argc, char **argv)
{
	struct run_ctx rc = { 0 };
	int ret = parse_run_opts(argc, argv, &rc.o);

	if (ret)
		return ret < 0 ? 0 : ret;
	ret = build_vm(&rc);
	if (ret)
		return ret;
	rc.base = event_base_new();
	if (!rc.base || cmd_run_setup(&rc)) {
		ret = 1;
		goto out;
	}
	if (vm_start(rc.vm) || vmctl_start(rc.vc)) {
		vm_error(rc.vm, NULL, 0);
		hm_err("cannot start the VM");
		ret = 1;
		goto out;
	}
	hm_info("running guest %s", rc.spec.type->name);
	event_base_dispatch(rc.base);
	ret = cmd_run_finish(&rc);
out:
	cmd_run_teardown(&rc);
	return ret;
}
