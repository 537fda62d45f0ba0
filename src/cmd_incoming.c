// SPDX-License-Identifier: MIT
/* hybridmig incoming: receive one migrated VM and run it. */
#define LOG_PREFIX ""
#include <errno.h>
#include <math.h>
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
#include "src/link.h"
#include "src/sockbuf.h"
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

struct incoming_ctx {
	struct run_ctx rc;
	struct dest_params dp;
	struct dest *d;
	struct tls_ctx *tls;
	const char *listen;
	const char *tls_dir;
	const char *tls_peer;
	bool insecure;
	uint64_t sockbuf;	/* --socket-buffer: receive buffer of the listener, 0 = kernel */
	struct event *ready_ev; /* activated from the destination's thread */
	struct event *wait_sig[2];
	bool failed;
};

static void incoming_usage(const char *cmd)
{
	printf(
	    "usage: hybridmig incoming --listen ADDR:PORT (--tls-dir DIR [--tls-peer NAME] |\n"
	    "                          --insecure) [--control PATH] [--max-mem SIZE]\n"
	    "                          [--wait S] [--reconnect-timeout S]\n"
	    "                          [--dirty-tracking MODE] [--metrics-listen ADDR:PORT]\n"
	    "                          [--socket-buffer SIZE|kernel]\n"
	    "                          [--json] [-v]\n\n"
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
	    "  --dirty-tracking MODE  dirty tracking of the VM once here (it may migrate on):\n"
	    "                      ring, log or auto (default: KVM's dirty ring where offered;\n"
	    "                      env HYBRIDMIG_DIRTY_TRACKING)\n"
	    "  --metrics-listen ADDR:PORT  Prometheus metrics at http://ADDR:PORT/metrics from\n"
	    "                      the start: waiting, post-copy pages missing and the fault\n"
	    "                      latency histogram, then the VM's (plain HTTP, read-only)\n"
	    "  --socket-buffer SIZE|kernel  receive buffer for long links (default 64M, set\n"
	    "                      only where net.ipv4.tcp_rmem's autotuning stops short of\n"
	    "                      it); 'kernel' leaves it to autotuning\n"
	    "  --json              print the final summary as one JSON object\n");
}

/* The destination's figures for --metrics-listen (the VM's come from its vmctl). */
static void incoming_metrics(void *arg, struct metrics_out *o)
{
	struct incoming_ctx *ic = arg;
	double le[FAULT_HIST_BUCKETS];
	uint64_t count[FAULT_HIST_BUCKETS];
	struct fault_hist h = { 0 };

	metrics_gauge(o, "hybridmig_incoming_waiting", "1 while no VM has arrived.", !ic->rc.vm);
	metrics_gauge(o, "hybridmig_incoming_postcopy_missing_pages",
		      "Post-copy: pages the source still owes this side.",
		      ic->d ? (double)dest_missing(ic->d) : 0);
	if (ic->d)
		dest_latency_hist(ic->d, &h);
	/* QEMU's postcopy-latency-dist buckets: powers of two microseconds */
	for (unsigned int i = 0; i < FAULT_HIST_BUCKETS; i++) {
		le[i] = i + 1 < FAULT_HIST_BUCKETS ? (double)(1ULL << i) / 1e6 : INFINITY;
		count[i] = h.count[i];
	}
	metrics_histogram(o, "hybridmig_postcopy_fault_latency_seconds",
			  "Post-copy: a remote fault's request until its page is placed.", le,
			  count, FAULT_HIST_BUCKETS, (double)h.sum_us / 1e6);
}

/* While post-copy pages are still on their way, trace and migrate wait (vmctl_set_arriving). */
static const char *incoming_arriving(void *arg)
{
	struct incoming_ctx *ic = arg;
	static char why[160];
	uint64_t missing = ic->d ? dest_missing(ic->d) : 0;

	if (!missing)
		return NULL;
	snprintf(why, sizeof(why),
		 "post-copy: %llu pages are still arriving from the source; wait until the "
		 "migration completes",
		 (unsigned long long)missing);
	return why;
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
		if (cmd_run_setup(rc) || vmctl_start(rc->vc)) {
			ic->failed = true;
			cmd_run_stop(rc);
			return;
		}
		vmctl_set_arriving(rc->vc, incoming_arriving, ic);
		fprintf(stderr,
			"hybridmig incoming: VM running here (%llu pages received, %u rounds, "
			"switch-over %.2f ms)\n",
			(unsigned long long)d->st.pages, d->st.rounds,
			(double)d->st.switch_to_run_ns / 1e6);
	}
	if (d->done && d->err && !d->running) {
		hm_err("incoming migration failed: %s", d->why);
		ic->failed = true;
		cmd_run_stop(rc);
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
	cmd_run_stop(&ic->rc);
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

/* --wait, --reconnect-timeout S: the int milliseconds the destination takes. */
static int set_ms(const struct cmdopt *d, const char *arg, void *opts)
{
	uint64_t s;
	int err = parse_count_range(arg, d->lo, d->hi, &s);

	if (!err)
		*(int *)cmdopt_field(d, opts) = (int)min_t(uint64_t, s * 1000, INT32_MAX);
	return err;
}

#define AT(f) CMDOPT_AT(struct incoming_ctx, f)
static const struct cmdopt incoming_options[] = {
	{ "listen", CMDOPT_STRING, AT(listen) },
	{ "control", CMDOPT_STRING, AT(rc.o.control) },
	{ "max-mem", CMDOPT_SIZE, AT(dp.max_mem) },
	{ "tls-dir", CMDOPT_STRING, AT(tls_dir) },
	{ "tls-peer", CMDOPT_STRING, AT(tls_peer) },
	{ "insecure", CMDOPT_FLAG, AT(insecure) },
	{ "wait", CMDOPT_CALL, AT(dp.wait_ms), .set = set_ms, .lo = 1, .hi = 86400 * 365,
	  .hint = "seconds" },
	{ "reconnect-timeout", CMDOPT_CALL, AT(dp.reconnect_ms), .set = set_ms, .lo = 1, .hi = 3600,
	  .unit = "s" },
	{ "dirty-tracking", CMDOPT_CALL, AT(dp.dirty), .set = cmd_opt_dirty,
	  .hint = "ring, log or auto" },
	{ "json", CMDOPT_FLAG, AT(rc.o.json) },
	{ "metrics-listen", CMDOPT_ADDR, AT(rc.o.metrics_listen),
	  .hint = "ADDR:PORT, [IPv6]:PORT" },
	{ "socket-buffer", CMDOPT_SOCKBUF, AT(sockbuf), .hint = "64K to 1G, or kernel" },
	{ "verbose", CMDOPT_ACTION, .set = cmd_opt_verbose, .short_name = 'v' },
	{ NULL },
};
#undef AT

static int parse_incoming(int argc, char **argv, struct incoming_ctx *ic)
{
	const char *dt = getenv("HYBRIDMIG_DIRTY_TRACKING");
	struct sysinfo si;
	int ret;

	ic->dp.max_mem = sysinfo(&si) ? HM_MAX_RAM : (uint64_t)si.totalram * si.mem_unit;
	ic->dp.wait_ms = -1;
	ic->sockbuf = SOCKBUF_DEFAULT_MAX;
	if (dt && dirty_mode_parse(dt, &ic->dp.dirty))
		return cmd_usage_error("incoming",
				       "bad HYBRIDMIG_DIRTY_TRACKING '%s' (ring, log or auto)", dt);
	ret = cmdopt_parse("incoming", incoming_options, argc, argv, ic, incoming_usage);
	if (ret)
		return ret;
	if (!ic->listen)
		return cmd_usage_error("incoming", "%s", "--listen ADDR:PORT is required");
	if (ic->insecure && ic->tls_dir)
		return cmd_usage_error("incoming", "%s",
				       "--tls-dir and --insecure exclude each other");
	if (!ic->insecure && !ic->tls_dir)
		return cmd_usage_error(
		    "incoming", "%s",
		    "the migration link must be secured: give --tls-dir DIR (see "
		    "tools/mkcerts.sh), or --insecure for plain TCP");
	return 0;
}

/* What must hold before any source is accepted: credentials, port, control socket. */
static int incoming_prepare(struct incoming_ctx *ic)
{
	static const int sigs[2] = { SIGINT, SIGTERM };
	char why[512];
	int err;

	if (ic->dp.dirty == DIRTY_RING && !dirty_ring_offered(NULL)) {
		snprintf(why, sizeof(why),
			 "--dirty-tracking ring: KVM does not offer the dirty ring here "
			 "(KVM_CAP_DIRTY_LOG_RING), or /dev/kvm is not usable; use log or auto");
		goto out_err;
	}
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
	err = link_size_listener(ic->dp.listen_fd, ic->sockbuf);
	if (err)
		hm_warn("cannot size the receive buffer: %s", strerror(-err));
	ic->rc.base = event_base_new();
	ic->dp.stop_fd = eventfd(0, EFD_CLOEXEC);
	if (!ic->rc.base || ic->dp.stop_fd < 0)
		return -ENOMEM;
	if (ic->rc.o.control) {
		ic->rc.ctl = control_new(ic->rc.base, ic->rc.o.control, why, sizeof(why));
		if (!ic->rc.ctl)
			goto out_err;
	}
	if (ic->rc.o.metrics_listen) {
		ic->rc.metrics =
		    metrics_new(ic->rc.base, ic->rc.o.metrics_listen, why, sizeof(why));
		if (!ic->rc.metrics || metrics_add(ic->rc.metrics, incoming_metrics, ic)) {
			snprintf(why + strlen(why), sizeof(why) - strlen(why),
				 " (--metrics-listen)");
			goto out_err;
		}
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
	cmd_run_teardown(&ic->rc);
	if (ic->dp.listen_fd >= 0)
		close(ic->dp.listen_fd);
	if (ic->dp.stop_fd >= 0)
		close(ic->dp.stop_fd);
	tls_ctx_free(ic->tls);
	free(ic);
}

int cmd_incoming(int argc, char **argv)
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
	if (ic->rc.metrics)
		fprintf(stderr, "hybridmig incoming: metrics on http://%s/metrics\n",
			ic->rc.o.metrics_listen);
	event_base_dispatch(ic->rc.base);
	if (write(ic->dp.stop_fd, &one, sizeof(one)) != sizeof(one))
		hm_dbg("stop eventfd write failed");
	/* vCPUs waiting for pages that will not come must not hold the stop up */
	dest_abandon(ic->d);
	ret = ic->rc.vm ? cmd_run_finish(&ic->rc) : 1;
	if (ic->rc.vm && !ic->rc.o.json && !ic->rc.interrupted)
		cmd_run_summary(&ic->rc, mem_resident_pages(&ic->rc.vm->mem),
				(double)(hm_now_ns() - ic->rc.vm->start_ns) / 1e9);
	dest_free(ic->d);
	if (ic->failed)
		ret = 1;
	incoming_free(ic);
	return ret;
}
