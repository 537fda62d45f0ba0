// SPDX-License-Identifier: MIT
/*
 * hybridmig command line: parses options, builds the objects, owns the
 * event loop and maps -errno to exit codes:
 *   0 success, 1 failure, 2 bad usage, 3 guest verify found bad pages.
 */
#define LOG_PREFIX ""
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
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
#include "src/mig.h"
#include "src/net.h"
#include "src/parse.h"
#include "src/vcpu.h"
#include "src/vm.h"
#include "src/vmctl.h"

#define EXIT_USAGE    2
#define EXIT_BADPAGES 3
#define DEFAULT_MEM   (1ULL << 30)

struct run_opts {
	uint64_t mem;
	unsigned int vcpus;
	const char *guest;
	const char *control;
	uint64_t seconds;
	bool json;
};

struct run_ctx {
	struct run_opts o;
	struct guest_spec spec;
	struct event_base *base;
	struct vm *vm;
	struct vmctl *vc;
	struct control *ctl;
	struct event *seconds_ev;
	struct event *progress_ev;
	struct event *sig_ev[2];
	int vm_err; /* the VM's own failure */
	bool interrupted;
	bool final_done;
	struct devwin_verdict final;
	bool progress_shown;
};

static int usage_error(const char *cmd, const char *fmt, ...) __printf(2, 3);
static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hybridmig%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'hybridmig %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
	return EXIT_USAGE;
}

static void print_main_help(void)
{
	printf("usage: hybridmig COMMAND [OPTIONS]\n\n"
	       "Live-migrates KVM virtual machines; runs built-in self-verifying test guests.\n\n"
	       "commands:\n"
	       "  run       start a VM running a built-in guest, optionally serving a control "
	       "socket\n"
	       "  status    show a running VM's state and progress (via its control socket)\n"
	       "  verify    ask the guest to check every page it wrote\n"
	       "  pause     stop all vCPUs and devices (the stop-and-copy barrier)\n"
	       "  resume    restart a paused VM\n"
	       "  stop      stop the VM; its hybridmig process exits\n"
	       "  abort     abort a running migration before its switch-over\n"
	       "  switch-postcopy  switch a running pre-copy to post-copy after this round\n"
	       "  incoming  wait for a migrated VM, receive it and run it\n"
	       "  migrate   move a running VM, live, to an 'incoming' hybridmig\n\n"
	       "'hybridmig COMMAND --help' describes each command's options.\n"
	       "Exit status: 0 ok, 1 failure, 2 bad usage, 3 verify found bad pages.\n");
}

static void print_run_help(void)
{
	printf("usage: hybridmig run [--mem SIZE] [--vcpus N] [--guest NAME[:k=v,...]]\n"
	       "                     [--control PATH] [--seconds N] [--json] [-v]\n\n"
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
	       "                    fill=1 to write the working set once and then idle\n"
	       "  --control PATH    serve the control socket at PATH (JSON lines; see README)\n"
	       "  --seconds N       run N seconds, verify, stop and print a summary\n"
	       "                    (default: run until 'hybridmig stop' or a signal)\n"
	       "  --json            print the summary as one JSON object on stdout\n"
	       "  -v, --verbose     more messages on stderr (repeat for debug)\n");
}

static void print_client_help(const char *cmd)
{
	printf("usage: hybridmig %s --control PATH [--json] [--timeout S] [--force]\n\n"
	       "Sends '%s' to the VM serving the control socket PATH and prints the reply.\n\n"
	       "  --control PATH    the running VM's control socket (required)\n"
	       "  --json            print the reply as received: one JSON object\n"
	       "  --timeout S       give up after S seconds (default 150)\n"
	       "  --force           resume/stop even while a migration runs or the VM is\n"
	       "                    fenced after a switch-over (the refusal says what is at\n"
	       "                    stake: two running copies, or the only copy of pages)\n",
	       cmd, cmd);
}

/* ---- run ----------------------------------------------------------------- */

static int parse_run_opts(int argc, char **argv, struct run_opts *o)
{
	static const struct option opts[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'c' },
		{ "guest", required_argument, NULL, 'g' },
		{ "control", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	*o = (struct run_opts){ .mem = DEFAULT_MEM, .vcpus = 1, .guest = "dirtier" };
	while ((c = getopt_long(argc, argv, "+v", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (parse_size(optarg, &o->mem) || o->mem < (8ULL << 20) ||
			    o->mem > HM_MAX_RAM || o->mem % HM_PAGE_SIZE)
				return usage_error("run",
						   "bad --mem '%s' (a size from 8M to 128G, "
						   "a multiple of 4K)",
						   optarg);
			break;
		case 'c':
			if (parse_count_range(optarg, 1, HM_MAX_VCPUS, &v))
				return usage_error("run", "bad --vcpus '%s' (1 to 8)", optarg);
			o->vcpus = (unsigned int)v;
			break;
		case 'g':
			o->guest = optarg;
			break;
		case 's':
			o->control = optarg;
			break;
		case 't':
			if (parse_count_range(optarg, 1, 1000000, &o->seconds))
				return usage_error("run", "bad --seconds '%s' (1 to 1000000)",
						   optarg);
			break;
		case 'j':
			o->json = true;
			break;
		case 'v':
			log_set_level(log_get_level() + 1 > HM_LOG_DBG ? HM_LOG_DBG
								       : log_get_level() + 1);
			break;
		case 'h':
			print_run_help();
			return -1;
		default:
			return usage_error("run", "%s", "invalid option");
		}
	}
	if (optind < argc)
		return usage_error("run", "unexpected argument '%s'", argv[optind]);
	return 0;
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

static void loop_stop(struct run_ctx *rc)
{
	event_base_loopbreak(rc->base);
}

static void exit_cb(void *arg, int err)
{
	struct run_ctx *rc = arg;

	rc->vm_err = err == -ESHUTDOWN ? 0 : err;
	loop_stop(rc);
}

static void final_verdict_cb(void *arg, const struct devwin_verdict *v)
{
	struct run_ctx *rc = arg;

	rc->final = *v;
	rc->final_done = true;
	loop_stop(rc);
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
		loop_stop(rc);
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
	loop_stop(rc);
}

static int build_vm(struct run_ctx *rc)
{
	struct vm_config cfg = { 0 };
	char why[512];
	int err;

	if (guest_spec_parse(rc->o.guest, &rc->spec, why, sizeof(why)))
		return usage_error("run", "%s", why);
	cfg.mem_bytes = rc->o.mem;
	cfg.nr_vcpus = rc->o.vcpus;
	cfg.image = rc->spec.type->image;
	cfg.image_size = (size_t)(rc->spec.type->image_end - rc->spec.type->image);
	cfg.io_rate = rc->spec.io_mbps * 1000000;
	/* for tests and unusual hosts: another KVM device node */
	cfg.kvm_path = getenv("HYBRIDMIG_KVM_DEVICE");
	if (guest_layout(&rc->spec, cfg.mem_bytes, cfg.nr_vcpus, &cfg.boot, why, sizeof(why)))
		return usage_error("run", "%s", why);
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

static int setup_loop(struct run_ctx *rc)
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

static void summary_human(struct run_ctx *rc, int64_t touched, double secs)
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

static int finish_run(struct run_ctx *rc)
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
		summary_human(rc, touched, secs);
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

static void teardown(struct run_ctx *rc)
{
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

static int cmd_run(int argc, char **argv)
{
	struct run_ctx rc = { 0 };
	int ret = parse_run_opts(argc, argv, &rc.o);

	if (ret)
		return ret < 0 ? 0 : ret;
	ret = build_vm(&rc);
	if (ret)
		return ret;
	rc.base = event_base_new();
	if (!rc.base || setup_loop(&rc)) {
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
	ret = finish_run(&rc);
out:
	teardown(&rc);
	return ret;
}

static void print_reply_human(const char *cmd, const struct json_field *f, int n);

/* ---- incoming ------------------------------------------------------------ */

struct incoming_ctx {
	struct run_ctx rc;
	struct dest_params dp;
	struct dest *d;
	struct tls_ctx *tls;
	const char *listen;
	const char *tls_dir;
	const char *tls_peer;
	bool insecure;
	struct event *ready_ev; /* activated from the destination's thread */
	struct event *wait_sig[2];
	bool failed;
};

static void incoming_usage(void)
{
	printf(
	    "usage: hybridmig incoming --listen ADDR:PORT (--tls-dir DIR [--tls-peer NAME] |\n"
	    "                          --insecure) [--control PATH] [--max-mem SIZE]\n"
	    "                          [--wait S] [--reconnect-timeout S] [--json] [-v]\n\n"
	    "Waits for one VM migrated by 'hybridmig migrate', receives it, runs it and serves\n"
	    "its control socket (the same commands as 'run'). Exits when the VM stops.\n"
	    "Connections without valid credentials are refused and the wait goes on.\n\n"
	    "  --listen ADDR:PORT  where the source connects (IPv4, or [IPv6]:PORT)\n"
	    "  --tls-dir DIR       TLS 1.3, mutual authentication: DIR/ca.pem, cert.pem, key.pem\n"
	    "  --tls-peer NAME     the source's certificate must carry NAME\n"
	    "  --insecure          plain TCP, no authentication (explicit choice)\n"
	    "  --control PATH      control socket of the VM once it runs here (bound first:\n"
	    "                      a path in use refuses to start)\n"
	    "  --max-mem SIZE      refuse VMs with more RAM (default: this host's RAM); the\n"
	    "                      memory a VM has touched must also fit in MemAvailable\n"
	    "  --wait S            give up if no source comes within S seconds\n"
	    "  --reconnect-timeout S  after the switch-over began, wait S seconds (default 60)\n"
	    "                      for a broken link to come back; a guest that never ran\n"
	    "                      here is then dropped (the source keeps it)\n"
	    "  --json              print the final summary as one JSON object\n");
}

/* From the destination's thread: hand over to the loop. */
static void incoming_event(void *arg, int err)
{
	struct incoming_ctx *ic = arg;

	(void)err;
	event_active(ic->ready_ev, EV_READ, 0);
}

static void incoming_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct incoming_ctx *ic = arg;
	struct run_ctx *rc = &ic->rc;
	struct dest *d = ic->d;

	(void)fd, (void)what;
	if (!rc->vm && d->running) {
		rc->vm = d->vm;
		rc->spec = d->spec;
		for (int i = 0; i < 2; i++)
			if (ic->wait_sig[i])
				event_del(ic->wait_sig[i]);
		if (setup_loop(rc) || vmctl_start(rc->vc)) {
			ic->failed = true;
			loop_stop(rc);
			return;
		}
		fprintf(stderr,
			"hybridmig incoming: VM running here (%llu pages received, %u rounds, "
			"switch-over %.2f ms)\n",
			(unsigned long long)d->st.pages, d->st.rounds,
			(double)d->st.switch_to_run_ns / 1e6);
	}
	if (d->done && d->err && !d->running) {
		hm_err("incoming migration failed: %s", d->why);
		ic->failed = true;
		loop_stop(rc);
	} else if (d->done && d->err) {
		hm_err("the migration did not complete: %s", d->why);
	}
}

static void incoming_sig_cb(evutil_socket_t sig, short what, void *arg)
{
	struct incoming_ctx *ic = arg;
	uint64_t one = 1;

	(void)sig, (void)what;
	if (write(ic->dp.stop_fd, &one, sizeof(one)) != sizeof(one))
		hm_dbg("stop eventfd write failed");
	ic->rc.interrupted = true;
	loop_stop(&ic->rc);
}

/* MemAvailable from /proc/meminfo, in bytes; 0 when unknown. */
static uint64_t mem_available(void)
{
	unsigned long long kb = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

static int parse_incoming(int argc, char **argv, struct incoming_ctx *ic)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "control", required_argument, NULL, 's' },
		{ "max-mem", required_argument, NULL, 'm' },
		{ "tls-dir", required_argument, NULL, 'D' },
		{ "tls-peer", required_argument, NULL, 'N' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "wait", required_argument, NULL, 'W' },
		{ "reconnect-timeout", required_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sysinfo si;
	uint64_t wait_s;
	int c;

	ic->dp.max_mem = sysinfo(&si) ? HM_MAX_RAM : (uint64_t)si.totalram * si.mem_unit;
	ic->dp.wait_ms = -1;
	while ((c = getopt_long(argc, argv, "+v", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			ic->listen = optarg;
			break;
		case 's':
			ic->rc.o.control = optarg;
			break;
		case 'm':
			if (parse_size(optarg, &ic->dp.max_mem))
				return usage_error("incoming", "bad --max-mem '%s'", optarg);
			break;
		case 'D':
			ic->tls_dir = optarg;
			break;
		case 'N':
			ic->tls_peer = optarg;
			break;
		case 'I':
			ic->insecure = true;
			break;
		case 'W':
			if (parse_count_range(optarg, 1, 86400 * 365, &wait_s))
				return usage_error("incoming", "bad --wait '%s' (seconds)", optarg);
			ic->dp.wait_ms = (int)min_t(uint64_t, wait_s * 1000, INT32_MAX);
			break;
		case 'R':
			if (parse_count_range(optarg, 1, 3600, &wait_s))
				return usage_error("incoming",
						   "bad --reconnect-timeout '%s' (1 to 3600 s)",
						   optarg);
			ic->dp.reconnect_ms = (int)wait_s * 1000;
			break;
		case 'j':
			ic->rc.o.json = true;
			break;
		case 'v':
			log_set_level(log_get_level() < HM_LOG_DBG ? log_get_level() + 1
								   : HM_LOG_DBG);
			break;
		case 'h':
			incoming_usage();
			return -1;
		default:
			return usage_error("incoming", "%s", "invalid option");
		}
	}
	if (optind < argc)
		return usage_error("incoming", "unexpected argument '%s'", argv[optind]);
	if (!ic->listen)
		return usage_error("incoming", "%s", "--listen ADDR:PORT is required");
	if (ic->insecure && ic->tls_dir)
		return usage_error("incoming", "%s", "--tls-dir and --insecure exclude each other");
	if (!ic->insecure && !ic->tls_dir)
		return usage_error("incoming", "%s",
				   "the migration link must be secured: give --tls-dir DIR (see "
				   "tools/mkcerts.sh), or --insecure for plain TCP");
	return 0;
}

/* What must hold before any source is accepted: credentials, port, control socket. */
static int incoming_prepare(struct incoming_ctx *ic)
{
	static const int sigs[2] = { SIGINT, SIGTERM };
	char why[512];

	if (ic->tls_dir) {
		ic->tls = tls_ctx_new(ic->tls_dir, true, ic->tls_peer, why, sizeof(why));
		if (!ic->tls)
			goto out_err;
	}
	ic->dp.tls = ic->tls;
	ic->dp.mem_avail = mem_available();
	ic->dp.listen_fd = net_listen(ic->listen, why, sizeof(why));
	if (ic->dp.listen_fd < 0)
		goto out_err;
	ic->rc.base = event_base_new();
	ic->dp.stop_fd = eventfd(0, EFD_CLOEXEC);
	if (!ic->rc.base || ic->dp.stop_fd < 0)
		return -ENOMEM;
	if (ic->rc.o.control) {
		ic->rc.ctl = control_new(ic->rc.base, ic->rc.o.control, why, sizeof(why));
		if (!ic->rc.ctl)
			goto out_err;
	}
	ic->ready_ev = event_new(ic->rc.base, -1, 0, incoming_ready_cb, ic);
	if (!ic->ready_ev)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		ic->wait_sig[i] = evsignal_new(ic->rc.base, sigs[i], incoming_sig_cb, ic);
		if (!ic->wait_sig[i] || event_add(ic->wait_sig[i], NULL))
			return -ENOMEM;
	}
	return 0;

out_err:
	hm_err("%s", why);
	return -EINVAL;
}

static void incoming_free(struct incoming_ctx *ic)
{
	for (int i = 0; i < 2; i++)
		if (ic->wait_sig[i])
			event_free(ic->wait_sig[i]);
	if (ic->ready_ev)
		event_free(ic->ready_ev);
	teardown(&ic->rc);
	if (ic->dp.listen_fd >= 0)
		close(ic->dp.listen_fd);
	if (ic->dp.stop_fd >= 0)
		close(ic->dp.stop_fd);
	tls_ctx_free(ic->tls);
	free(ic);
}

static int cmd_incoming(int argc, char **argv)
{
	struct incoming_ctx *ic = calloc(1, sizeof(*ic));
	uint64_t one = 1;
	int ret;

	if (!ic)
		return 1;
	ic->dp.listen_fd = -1;
	ic->dp.stop_fd = -1;
	ret = parse_incoming(argc, argv, ic);
	if (ret) {
		incoming_free(ic);
		return ret < 0 ? 0 : ret;
	}
	if (incoming_prepare(ic)) {
		incoming_free(ic);
		return 1;
	}
	ic->d = dest_start(&ic->dp, incoming_event, ic);
	if (!ic->d) {
		incoming_free(ic);
		return 1;
	}
	fprintf(stderr, "hybridmig incoming: waiting for a VM on %s (%s)\n", ic->listen,
		ic->tls ? "TLS 1.3, peers authenticated"
			: "plain TCP, no authentication: --insecure");
	event_base_dispatch(ic->rc.base);
	if (write(ic->dp.stop_fd, &one, sizeof(one)) != sizeof(one))
		hm_dbg("stop eventfd write failed");
	ret = ic->rc.vm ? finish_run(&ic->rc) : 1;
	if (ic->rc.vm && !ic->rc.o.json && !ic->rc.interrupted)
		summary_human(&ic->rc, mem_resident_pages(&ic->rc.vm->mem),
			      (double)(hm_now_ns() - ic->rc.vm->start_ns) / 1e9);
	dest_free(ic->d);
	if (ic->failed)
		ret = 1;
	incoming_free(ic);
	return ret;
}

/* ---- migrate ------------------------------------------------------------- */

struct migrate_opts {
	const char *control;
	const char *to;
	const char *mode;
	uint64_t bandwidth;
	uint64_t downtime_ms;
	uint64_t timeout_s;
	uint64_t pc_rounds;
	uint64_t reconnect_s;
	const char *tls_dir;
	const char *tls_peer;
	bool insecure;
	bool resume;
	bool json;
	bool tty;
	int result;
};

static void migrate_usage(void)
{
	printf(
	    "usage: hybridmig migrate --control PATH --to ADDR:PORT [--mode MODE]\n"
	    "                         (--tls-dir DIR [--tls-peer NAME] | --insecure)\n"
	    "                         [--bandwidth RATE] [--downtime-limit MS] [--timeout S]\n"
	    "                         [--postcopy-after-rounds N] [--reconnect-timeout S]\n"
	    "                         [--json]\n"
	    "       hybridmig migrate --resume --control PATH [--to ADDR:PORT] [--json]\n\n"
	    "Moves the running VM behind the control socket PATH, live, to a destination\n"
	    "started with 'hybridmig incoming --listen ADDR:PORT'. Until the switch-over the\n"
	    "VM keeps running here and any failure leaves it running here; after it, this\n"
	    "side keeps every page until the destination holds them all.\n\n"
	    "  --mode MODE          precopy (default): rounds of dirty pages, then stop-and-copy\n"
	    "                       postcopy: move the VM at once; pages follow on demand and\n"
	    "                       from a background pusher\n"
	    "                       hybrid: pre-copy rounds while they pay, then post-copy\n"
	    "  --bandwidth RATE     cap, e.g. 1gbit, 500mbit, 100M (bytes/s); default unlimited\n"
	    "  --downtime-limit MS  stop-and-copy once the rest fits in MS (default 300)\n"
	    "  --timeout S          precopy: give up after S seconds (default: never);\n"
	    "                       hybrid: switch to post-copy after S seconds\n"
	    "  --postcopy-after-rounds N  hybrid: switch after N pre-copy rounds\n"
	    "  --reconnect-timeout S  after the switch-over, keep reconnecting a broken link for\n"
	    "                       S seconds (default 30); the VM waits on both sides\n"
	    "  --tls-dir DIR        TLS 1.3 with mutual authentication: DIR/ca.pem, cert.pem,\n"
	    "                       key.pem (tools/mkcerts.sh makes them)\n"
	    "  --tls-peer NAME      the destination's certificate must carry NAME\n"
	    "  --insecure           plain TCP, no authentication (--tls-dir or --insecure is\n"
	    "                       required)\n"
	    "  --resume             finish a migration that stopped after the switch-over\n"
	    "                       (the VM is fenced here); --to gives a new address\n"
	    "  --json               progress as JSON lines and one final JSON record\n");
}

/* The VM's process may have another working directory: give it absolute paths. */
static const char *abs_path(const char *p, char *buf, size_t len)
{
	if (p[0] == '/' || !realpath(p, buf))
		return p;
	(void)len;
	return buf;
}

/* "1gbit", "500mbit" (bits/s) or a byte size per second ("100M"). */
static int parse_rate(const char *s, uint64_t *out)
{
	size_t n = strlen(s);
	uint64_t v;

	if (n > 4 && !strcasecmp(s + n - 4, "gbit") && n < 32) {
		char num[32];

		memcpy(num, s, n - 4);
		num[n - 4] = 0;
		if (parse_count(num, &v) || v > 1000)
			return -EINVAL;
		*out = v * 1000000000ULL / 8;
		return 0;
	}
	if (n > 4 && !strcasecmp(s + n - 4, "mbit") && n < 32) {
		char num[32];

		memcpy(num, s, n - 4);
		num[n - 4] = 0;
		if (parse_count(num, &v) || v > 1000000)
			return -EINVAL;
		*out = v * 1000000ULL / 8;
		return 0;
	}
	return parse_size(s, out);
}

static int parse_migrate(int argc, char **argv, struct migrate_opts *o)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 's' },
		{ "to", required_argument, NULL, 't' },
		{ "mode", required_argument, NULL, 'm' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "downtime-limit", required_argument, NULL, 'd' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "postcopy-after-rounds", required_argument, NULL, 'P' },
		{ "reconnect-timeout", required_argument, NULL, 'R' },
		{ "tls-dir", required_argument, NULL, 'D' },
		{ "tls-peer", required_argument, NULL, 'N' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "resume", no_argument, NULL, 'U' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_in sa;
	int c;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->control = optarg;
			break;
		case 't':
			if (net_parse_addr(optarg, &sa))
				return usage_error("migrate", "bad --to '%s' (want IPV4:PORT)",
						   optarg);
			o->to = optarg;
			break;
		case 'm':
			o->mode = optarg;
			break;
		case 'b':
			if (parse_rate(optarg, &o->bandwidth))
				return usage_error("migrate", "bad --bandwidth '%s'", optarg);
			break;
		case 'd':
			if (parse_count_range(optarg, 1, 600000, &o->downtime_ms))
				return usage_error("migrate",
						   "bad --downtime-limit '%s' (1 to 600000 ms)",
						   optarg);
			break;
		case 'T':
			if (parse_count_range(optarg, 1, 86400, &o->timeout_s))
				return usage_error("migrate", "bad --timeout '%s' (1 to 86400 s)",
						   optarg);
			break;
		case 'P':
			if (parse_count_range(optarg, 1, 1000, &o->pc_rounds))
				return usage_error("migrate",
						   "bad --postcopy-after-rounds '%s' (1 to 1000)",
						   optarg);
			break;
		case 'R':
			if (parse_count_range(optarg, 0, 3600, &o->reconnect_s))
				return usage_error("migrate",
						   "bad --reconnect-timeout '%s' (0 to 3600 s)",
						   optarg);
			break;
		case 'D':
			o->tls_dir = optarg;
			break;
		case 'N':
			o->tls_peer = optarg;
			break;
		case 'I':
			o->insecure = true;
			break;
		case 'U':
			o->resume = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			migrate_usage();
			return -1;
		default:
			return usage_error("migrate", "%s", "invalid option");
		}
	}
	if (optind < argc)
		return usage_error("migrate", "unexpected argument '%s'", argv[optind]);
	if (o->resume)
		return o->control ? 0 : usage_error("migrate", "%s", "--control PATH is required");
	if (!o->control || !o->to)
		return usage_error("migrate", "%s",
				   "--control PATH and --to ADDR:PORT are required");
	if (o->insecure && o->tls_dir)
		return usage_error("migrate", "%s", "--tls-dir and --insecure exclude each other");
	if (!o->insecure && !o->tls_dir)
		return usage_error("migrate", "%s",
				   "the migration link must be secured: give --tls-dir DIR (see "
				   "tools/mkcerts.sh), or --insecure for plain TCP");
	if (strcmp(o->mode, "precopy") && strcmp(o->mode, "postcopy") && strcmp(o->mode, "hybrid"))
		return usage_error("migrate", "unknown --mode '%s' (precopy, postcopy, hybrid)",
				   o->mode);
	return 0;
}

static void migrate_progress(struct migrate_opts *o, const struct json_field *f, int n)
{
	const struct json_field *ph = json_find(f, (size_t)n, "phase");
	const struct json_field *r = json_find(f, (size_t)n, "round");
	const struct json_field *b = json_find(f, (size_t)n, "bytes_wire");
	const struct json_field *rem = json_find(f, (size_t)n, "remaining_pages");
	const struct json_field *bw = json_find(f, (size_t)n, "bandwidth_mbps");
	const struct json_field *dr = json_find(f, (size_t)n, "dirty_rate_pages_per_s");
	const struct json_field *eta = json_find(f, (size_t)n, "eta_s");

	if (!o->tty || !ph || !r || !b || !rem || !bw || !dr || !eta)
		return;
	fprintf(stderr,
		"\r\033[K  %-13s round %-3s sent %8.1f MiB  remaining %8s pages  %7s Mbit/s  dirty "
		"%8s pages/s  ETA %s s",
		ph->str, r->str, b->num / 1048576.0, rem->str, bw->str, dr->str, eta->str);
}

static double fnum(const struct json_field *f, int n, const char *key)
{
	const struct json_field *x = json_find(f, (size_t)n, key);

	return x && x->type == JSON_NUMBER ? x->num : 0;
}

/* Rebuild the report from the final JSON record, to print it as text. */
static void stats_from_fields(struct mig_stats *s, const struct json_field *f, int n)
{
	const struct json_field *e = json_find(f, (size_t)n, "error");
	const struct json_field *rp = json_find(f, (size_t)n, "round_pages");
	const struct json_field *rd = json_find(f, (size_t)n, "round_dirty_rate");
	const char *p;

	memset(s, 0, sizeof(*s));
	s->end_ns = (uint64_t)(fnum(f, n, "total_ms") * 1e6);
	s->rounds = (uint32_t)fnum(f, n, "rounds");
	s->bytes_wire = (uint64_t)fnum(f, n, "bytes_wire");
	s->bytes_raw = (uint64_t)fnum(f, n, "bytes_raw");
	s->pages_sent = (uint64_t)fnum(f, n, "pages_sent");
	s->zero_pages = (uint64_t)fnum(f, n, "zero_pages");
	s->bandwidth = fnum(f, n, "bandwidth_mbps") * 1e6 / 8;
	s->dirty_rate = fnum(f, n, "dirty_rate_pages_per_s");
	s->rtt_ns = (uint64_t)(fnum(f, n, "rtt_ms") * 1e6);
	s->predicted_downtime_ns = fnum(f, n, "predicted_downtime_ms") < 0
				       ? UINT64_MAX
				       : (uint64_t)(fnum(f, n, "predicted_downtime_ms") * 1e6);
	s->downtime_ns = (uint64_t)(fnum(f, n, "downtime_ms") * 1e6);
	s->src_pause_ns = (uint64_t)(fnum(f, n, "source_pause_ms") * 1e6);
	s->dst_switch_ns = (uint64_t)(fnum(f, n, "dest_switch_ms") * 1e6);
	s->guest_gap_ns = (uint64_t)(fnum(f, n, "guest_pause_ms") * 1e6);
	s->units_before = fnum(f, n, "work_units_per_s_before");
	s->units_during = fnum(f, n, "work_units_per_s_during");
	s->units_after = fnum(f, n, "work_units_per_s_after");
	s->postcopy = json_find(f, (size_t)n, "pages_pushed") != NULL;
	s->pages_pushed = (uint64_t)fnum(f, n, "pages_pushed");
	s->pages_requested = (uint64_t)fnum(f, n, "pages_requested");
	s->dup_pages = (uint64_t)fnum(f, n, "duplicate_pages");
	s->remote_faults = (uint64_t)fnum(f, n, "remote_faults");
	s->local_zero = (uint64_t)fnum(f, n, "local_zero_faults");
	s->lat_p50_us = (uint64_t)fnum(f, n, "fault_latency_p50_us");
	s->lat_p90_us = (uint64_t)fnum(f, n, "fault_latency_p90_us");
	s->lat_p99_us = (uint64_t)fnum(f, n, "fault_latency_p99_us");
	s->lat_max_us = (uint64_t)fnum(f, n, "fault_latency_max_us");
	s->blocked_ns = (uint64_t)(fnum(f, n, "vcpu_blocked_ms") * 1e6);
	s->last_page_ns = (uint64_t)(fnum(f, n, "last_page_ms") * 1e6);
	s->units_postcopy = fnum(f, n, "work_units_per_s_postcopy");
	s->reconnects = (uint32_t)fnum(f, n, "reconnects");
	p = rp ? rp->str : "";
	for (uint32_t i = 0; i < s->rounds && i < MIG_MAX_ROUNDS && *p; i++) {
		s->round_pages[i] = strtoull(p, (char **)&p, 10);
		p += *p == ',';
	}
	p = rd ? rd->str : "";
	for (uint32_t i = 0; i < s->rounds && i < MIG_MAX_ROUNDS && *p; i++) {
		s->round_dirty_rate[i] = strtod(p, (char **)&p);
		p += *p == ',';
	}
	if (e && e->type == JSON_STRING) {
		s->err = -EIO;
		snprintf(s->error, sizeof(s->error), "%s", e->str);
	}
}

static bool migrate_line(const char *line, void *arg)
{
	struct migrate_opts *o = arg;
	struct json_field f[48];
	const char *why = NULL;
	int n = json_parse_flat(line, strlen(line), f, ARRAY_SIZE(f), &why);
	const struct json_field *ok;
	const struct json_field *err;

	if (n < 0) {
		hm_err("malformed line from the VM: %s", why ? why : "?");
		o->result = 1;
		return true;
	}
	ok = json_find(f, (size_t)n, "ok");
	if (o->json)
		printf("%s\n", line), fflush(stdout);
	if (!ok) {
		migrate_progress(o, f, n);
		return false;
	}
	if (o->tty)
		fprintf(stderr, "\r\033[K");
	o->result = ok->type == JSON_BOOL && ok->b ? 0 : 1;
	err = json_find(f, (size_t)n, "error");
	if (!o->json && o->result)
		hm_err("migration failed: %s", err ? err->str : "unknown error");
	if (!o->json && json_find(f, (size_t)n, "event")) {
		struct mig_stats ms;

		stats_from_fields(&ms, f, n);
		mig_report_text(&ms, o->to, stdout);
	}
	return true;
}

static int cmd_migrate(int argc, char **argv)
{
	struct migrate_opts o = {
		.mode = "precopy", .downtime_ms = 300, .reconnect_s = 30, .result = 1
	};
	char req[1024];
	char why[256];
	char tlsdir[PATH_MAX];
	struct json_out j;
	int ret = parse_migrate(argc, argv, &o);

	if (ret)
		return ret < 0 ? 0 : ret;
	o.tty = isatty(STDERR_FILENO) && !o.json;
	json_init(&j, req, sizeof(req));
	json_obj_begin(&j, NULL);
	json_str(&j, "cmd", "migrate");
	if (o.resume) {
		json_bool(&j, "resume", true);
		if (o.to)
			json_str(&j, "to", o.to);
		json_obj_end(&j);
		goto send;
	}
	json_str(&j, "to", o.to);
	json_str(&j, "mode", o.mode);
	if (o.insecure)
		json_bool(&j, "insecure", true);
	if (o.tls_dir)
		json_str(&j, "tls_dir", abs_path(o.tls_dir, tlsdir, sizeof(tlsdir)));
	if (o.tls_peer)
		json_str(&j, "tls_peer", o.tls_peer);
	json_u64(&j, "bandwidth", o.bandwidth);
	json_u64(&j, "downtime_limit_ms", o.downtime_ms);
	json_u64(&j, "timeout_s", o.timeout_s);
	if (o.pc_rounds)
		json_u64(&j, "postcopy_after_rounds", o.pc_rounds);
	json_u64(&j, "reconnect_s", o.reconnect_s);
	json_obj_end(&j);
send:
	if (!json_done(&j)) {
		hm_err("request too long");
		return 1;
	}
	/* progress comes every 0.5 s; a silent minute means the VM is gone */
	if (ctlclient_stream(o.control, req, migrate_line, &o, 60000, why, sizeof(why))) {
		hm_err("%s", why);
		return 1;
	}
	return o.result;
}

/* ---- control clients ----------------------------------------------------- */

static void print_reply_human(const char *cmd, const struct json_field *f, int n)
{
	printf("%s:\n", cmd);
	for (int i = 0; i < n; i++) {
		if (!strcmp(f[i].key, "ok"))
			continue;
		if (f[i].type == JSON_STRING || f[i].type == JSON_NUMBER)
			printf("  %-24s %s\n", f[i].key, f[i].str);
		else if (f[i].type == JSON_ARRAY)
			printf("  %-24s [%s]\n", f[i].key, f[i].str);
		else if (f[i].type == JSON_BOOL)
			printf("  %-24s %s\n", f[i].key, f[i].b ? "true" : "false");
		else
			printf("  %-24s -\n", f[i].key);
	}
}

static int client_reply(const char *cmd, const char *reply, bool json)
{
	struct json_field f[48];
	const struct json_field *ok;
	const struct json_field *err;
	const struct json_field *verdict;
	const char *why = NULL;
	int n = json_parse_flat(reply, strlen(reply), f, ARRAY_SIZE(f), &why);

	if (n < 0) {
		hm_err("malformed reply from the VM: %s", why ? why : "?");
		return 1;
	}
	ok = json_find(f, (size_t)n, "ok");
	err = json_find(f, (size_t)n, "error");
	verdict = json_find(f, (size_t)n, "verify");
	if (json)
		printf("%s\n", reply);
	if (!ok || ok->type != JSON_BOOL || !ok->b) {
		if (!json)
			hm_err("%s", err && err->type == JSON_STRING ? err->str : "request failed");
		return 1;
	}
	if (!json)
		print_reply_human(cmd, f, n);
	if (!strcmp(cmd, "verify") && verdict && !strcmp(verdict->str, "bad"))
		return EXIT_BADPAGES;
	return 0;
}

static int cmd_client(const char *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 's' }, { "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' }, { "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },	     { NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	uint64_t timeout = 150;
	bool force = false;
	bool json = false;
	char req[128];
	char reply[8192];
	char why[256];
	int c;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'f':
			force = true;
			break;
		case 't':
			if (parse_count_range(optarg, 1, 86400, &timeout))
				return usage_error(cmd, "bad --timeout '%s' (1 to 86400 s)",
						   optarg);
			break;
		case 'h':
			print_client_help(cmd);
			return 0;
		default:
			return usage_error(cmd, "%s", "invalid option");
		}
	}
	if (optind < argc)
		return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (!path)
		return usage_error(cmd, "%s", "--control PATH is required");
	snprintf(req, sizeof(req), "{\"cmd\":\"%s\"%s}", cmd, force ? ",\"force\":true" : "");
	if (ctlclient_call(path, req, reply, sizeof(reply), (int)timeout * 1000, why,
			   sizeof(why))) {
		hm_err("%s", why);
		return 1;
	}
	return client_reply(cmd, reply, json);
}

int main(int argc, char **argv)
{
	static const char *const clients[] = { "status", "verify",	    "pause", "resume",
					       "stop",	 "switch-postcopy", "abort" };
	const char *cmd = argc > 1 ? argv[1] : NULL;

	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads()) {
		hm_err("libevent has no pthread support");
		return 1;
	}
	if (!cmd) {
		print_main_help();
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		print_main_help();
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "incoming"))
		return cmd_incoming(argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate"))
		return cmd_migrate(argc - 1, argv + 1);
	for (size_t i = 0; i < ARRAY_SIZE(clients); i++)
		if (!strcmp(cmd, clients[i]))
			return cmd_client(cmd, argc - 1, argv + 1);
	return usage_error(NULL, "unknown command '%s'", cmd);
}
