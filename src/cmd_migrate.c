// SPDX-License-Identifier: MIT
/* hybridmig migrate: drive a migration through the VM's control socket. */
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
#include "src/mig.h"
#include "src/net.h"
#include "src/parse.h"
#include "src/vcpu.h"
#include "src/vm.h"
#include "src/vmctl.h"
#include "src/cmd.h"
#include "src/cmdopt.h"
#include "src/policy_record.h"

struct migrate_opts {
	const char *control;
	const char *to;
	const char *mode;
	uint64_t bandwidth;
	uint64_t downtime_ms;
	uint64_t timeout_s;
	uint64_t pc_rounds;
	uint64_t reconnect_s;
	uint64_t sockbuf; /* --socket-buffer: bytes, 0 = kernel */
	bool sockbuf_given;
	const char *tls_dir;
	const char *tls_peer;
	const char *policy;
	const char *record;
	bool insecure;
	bool resume;
	bool json;
	bool tty;
	bool abort_sent; /* after Ctrl-C/SIGTERM */
	int result;
};

/* Ctrl-C or SIGTERM: the signal's number, acted on at the next progress line. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

/* One-shot: a second Ctrl-C ends this command at once (the migration goes on regardless). */
static void catch_interrupts(void)
{
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESETHAND };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
		hm_warn("cannot catch Ctrl-C: %s; it will leave the migration running",
			strerror(errno));
}

static void migrate_usage(const char *cmd)
{
	printf(
	    "usage: hybridmig migrate --control PATH --to ADDR:PORT [--mode MODE]\n"
	    "                         (--tls-dir DIR [--tls-peer NAME] | --insecure)\n"
	    "                         [--bandwidth RATE] [--downtime-limit MS] [--timeout S]\n"
	    "                         [--postcopy-after-rounds N] [--reconnect-timeout S]\n"
	    "                         [--policy FILE] [--record FILE] [--json]\n"
	    "       hybridmig migrate --resume --control PATH [--to ADDR:PORT] [--json]\n\n"
	    "Moves the running VM behind the control socket PATH, live, to a destination\n"
	    "started with 'hybridmig incoming --listen ADDR:PORT'. Until the switch-over the\n"
	    "VM keeps running here and any failure leaves it running here; after it, this\n"
	    "side keeps every page until the destination holds them all.\n\n"
	    "  --mode MODE          auto (default): the policy measures the guest and the link\n"
	    "                       and chooses pre-copy, post-copy or hybrid, and when to\n"
	    "                       switch; each decision and its reason is logged and reported\n"
	    "                       precopy: rounds of dirty pages, then stop-and-copy\n"
	    "                       postcopy: move the VM at once; pages follow on demand and\n"
	    "                       from a background pusher\n"
	    "                       hybrid: pre-copy rounds, then post-copy (the policy picks\n"
	    "                       the switch point unless --postcopy-after-rounds)\n"
	    "  --bandwidth RATE     cap, e.g. 1gbit, 500mbit, 100M (bytes/s); default unlimited\n"
	    "  --downtime-limit MS  the longest pause allowed (default 300, or max_downtime_ms)\n"
	    "  --timeout S          precopy: give up after S seconds (default: never);\n"
	    "                       auto, hybrid: the total-time limit (max_total_s): switch\n"
	    "                       to post-copy when reached\n"
	    "  --policy FILE        the policy's limits, key = value (README lists the keys)\n"
	    "  --record FILE        write what the policy saw and decided (JSON lines), for\n"
	    "                       'hybridmig policy simulate'\n"
	    "  --postcopy-after-rounds N  hybrid: switch after N pre-copy rounds\n"
	    "  --reconnect-timeout S  after the switch-over, keep reconnecting a broken link for\n"
	    "                       S seconds (default 30); the VM waits on both sides\n"
	    "  --socket-buffer SIZE|kernel  the most send buffer a long link gets (default\n"
	    "                       64M); 'kernel' leaves it to autotuning (net.ipv4.tcp_wmem)\n"
	    "  --tls-dir DIR        TLS 1.3 with mutual authentication: DIR/ca.pem, cert.pem,\n"
	    "                       key.pem (tools/mkcerts.sh makes them)\n"
	    "  --tls-peer NAME      the destination's certificate must carry NAME\n"
	    "  --insecure           plain TCP, no authentication (--tls-dir or --insecure is\n"
	    "                       required)\n"
	    "  --resume             finish a migration that stopped after the switch-over\n"
	    "                       (the VM is fenced here); --to gives a new address\n"
	    "  --json               progress as JSON lines and one final JSON record\n\n"
	    "Ctrl-C or SIGTERM aborts a migration that has not begun its switch-over (the VM\n"
	    "keeps running here); after that the migration goes on, and 'hybridmig job'\n"
	    "shows it. 'hybridmig set-bandwidth' and 'set-downtime' change the limits of a\n"
	    "running migration, 'switch-postcopy' forces post-copy.\n"
	    "Exit status: 0 moved; 4 cancelled; 5 did not converge (the VM keeps running\n"
	    "here); 6 refused by the destination; 7 link lost or destination unreachable;\n"
	    "130/143 interrupted after the switch-over began; 1 any other failure;\n"
	    "2 bad usage.\n");
}

static int failure_exit(const char *failure)
{
	static const struct {
		const char *failure;
		int code;
	} codes[] = { { "cancelled", EXIT_CANCELLED },
		      { "not_converged", EXIT_NOT_CONVERGED },
		      { "refused", EXIT_REFUSED },
		      { "link_lost", EXIT_LINK_LOST } };

	for (size_t i = 0; i < ARRAY_SIZE(codes); i++)
		if (failure && !strcmp(failure, codes[i].failure))
			return codes[i].code;
	return 1;
}

/*
 * After Ctrl-C/SIGTERM: abort the migration, or say why it goes on. True
 * when this command should stop watching (the switch-over has begun).
 */
static bool interrupt_migration(struct migrate_opts *o)
{
	char reply[512];
	char why[256];
	struct json_field f[8];
	const struct json_field *ok;
	const struct json_field *err;
	int n;

	o->abort_sent = true;
	if (o->tty)
		fprintf(stderr, "\r\033[K");
	if (ctlclient_call(o->control, "{\"cmd\":\"abort\"}", reply, sizeof(reply), 10000, why,
			   sizeof(why))) {
		hm_err("interrupted, and cannot ask the VM to abort: %s", why);
		o->result = 128 + interrupted;
		return true;
	}
	n = json_parse_flat(reply, strlen(reply), f, ARRAY_SIZE(f), NULL);
	ok = n > 0 ? json_find(f, (size_t)n, "ok") : NULL;
	err = n > 0 ? json_find(f, (size_t)n, "error") : NULL;
	if (ok && ok->type == JSON_BOOL && ok->b) {
		hm_warn("interrupted: aborting the migration; the VM keeps running here");
		return false; /* the final report follows */
	}
	if (err && err->type == JSON_STRING && strstr(err->str, "no migration"))
		return false; /* it has just ended: its report follows */
	hm_warn("interrupted after the switch-over began: the migration goes on without this "
		"command (%s); watch it with 'hybridmig job --control %s'",
		err && err->type == JSON_STRING ? err->str : "abort refused", o->control);
	o->result = 128 + interrupted;
	return true;
}

/* The VM's process may have another working directory: give it absolute paths. */
static const char *abs_path(const char *p, char *buf, size_t len)
{
	if (p[0] == '/' || !realpath(p, buf))
		return p;
	(void)len;
	return buf;
}

/* A file to create: absolute, from the directory it goes in. */
static const char *abs_out_path(const char *p, char *buf, size_t len)
{
	char cwd[PATH_MAX];

	if (p[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return p;
	if ((size_t)snprintf(buf, len, "%s/%s", cwd, p) >= len)
		return p;
	return buf;
}

/* --socket-buffer: noted as given, for 0 ("kernel") is a value too. */
static int set_sockbuf(const struct cmdopt *d, const char *arg, void *opts)
{
	struct migrate_opts *o = opts;

	o->sockbuf_given = true;
	return parse_socket_buffer(arg, &o->sockbuf);
}

#define AT(f) CMDOPT_AT(struct migrate_opts, f)
static const struct cmdopt migrate_options[] = {
	{ "control", CMDOPT_STRING, AT(control) },
	{ "to", CMDOPT_ADDR, AT(to), .hint = "want IPV4:PORT, HOST:PORT or [IPV6]:PORT" },
	{ "mode", CMDOPT_STRING, AT(mode) },
	{ "bandwidth", CMDOPT_RATE, AT(bandwidth) },
	{ "downtime-limit", CMDOPT_COUNT, AT(downtime_ms), .lo = 1, .hi = 600000, .unit = "ms" },
	{ "timeout", CMDOPT_COUNT, AT(timeout_s), .lo = 1, .hi = 86400, .unit = "s" },
	{ "postcopy-after-rounds", CMDOPT_COUNT, AT(pc_rounds), .lo = 1, .hi = 1000 },
	{ "reconnect-timeout", CMDOPT_COUNT, AT(reconnect_s), .lo = 0, .hi = 3600, .unit = "s" },
	{ "socket-buffer", CMDOPT_CALL, .set = set_sockbuf, .hint = "64K to 1G, or kernel" },
	{ "tls-dir", CMDOPT_STRING, AT(tls_dir) },
	{ "tls-peer", CMDOPT_STRING, AT(tls_peer) },
	{ "insecure", CMDOPT_FLAG, AT(insecure) },
	{ "policy", CMDOPT_STRING, AT(policy) },
	{ "record", CMDOPT_STRING, AT(record) },
	{ "resume", CMDOPT_FLAG, AT(resume) },
	{ "json", CMDOPT_FLAG, AT(json) },
	{ NULL },
};
#undef AT

/* The options together: what is required, what excludes what, the mode, the policy file. */
static int migrate_check(const struct migrate_opts *o)
{
	if (o->resume)
		return o->control ? 0
				  : cmd_usage_error("migrate", "%s", "--control PATH is required");
	if (!o->control || !o->to)
		return cmd_usage_error("migrate", "%s",
				       "--control PATH and --to ADDR:PORT are required");
	if (o->insecure && o->tls_dir)
		return cmd_usage_error("migrate", "%s",
				       "--tls-dir and --insecure exclude each other");
	if (!o->insecure && !o->tls_dir)
		return cmd_usage_error(
		    "migrate", "%s",
		    "the migration link must be secured: give --tls-dir DIR (see "
		    "tools/mkcerts.sh), or --insecure for plain TCP");
	if (strcmp(o->mode, "precopy") && strcmp(o->mode, "postcopy") &&
	    strcmp(o->mode, "hybrid") && strcmp(o->mode, "auto"))
		return cmd_usage_error(
		    "migrate", "unknown --mode '%s' (auto, precopy, postcopy, hybrid)", o->mode);
	if (o->policy) {
		struct policy_limits l;
		char why[320];

		policy_limits_default(&l);
		if (policy_file_load(o->policy, &l, why, sizeof(why)))
			return cmd_usage_error("migrate", "%s", why);
	}
	return 0;
}

static int parse_migrate(int argc, char **argv, struct migrate_opts *o)
{
	int ret = cmdopt_parse("migrate", migrate_options, argc, argv, o, migrate_usage);

	return ret ? ret : migrate_check(o);
}

static void migrate_progress(struct migrate_opts *o, const struct json_field *f, int n)
{
	const struct json_field *ph = json_find(f, (size_t)n, "phase");
	const struct json_field *r = json_find(f, (size_t)n, "round");
	const struct json_field *pct = json_find(f, (size_t)n, "percent");
	const struct json_field *done = json_find(f, (size_t)n, "bytes_processed");
	const struct json_field *all = json_find(f, (size_t)n, "bytes_total");
	const struct json_field *bw = json_find(f, (size_t)n, "bandwidth_mbps");
	const struct json_field *dr = json_find(f, (size_t)n, "dirty_rate_pages_per_s");
	const struct json_field *eta = json_find(f, (size_t)n, "eta_s");

	if (!o->tty || !ph || !r || !pct || !done || !all || !bw || !dr || !eta)
		return;
	/* rates in bytes as --bandwidth takes them (MiB/s), and in bits as links are sold */
	fprintf(stderr,
		"\r\033[K  %-13s round %-3s %5.1f%%  %.1f of %.1f MiB  %.1f MiB/s (%s Mbit/s)  "
		"dirty %s pages/s  ETA %s s",
		ph->str, r->str, pct->num, done->num / 1048576.0, all->num / 1048576.0,
		bw->num * 1e6 / 8 / 1048576.0, bw->str, dr->str, eta->num < 0 ? "?" : eta->str);
}

static bool migrate_line(const char *line, void *arg)
{
	struct migrate_opts *o = arg;
	struct json_field f[96];
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
		return interrupted && !o->abort_sent ? interrupt_migration(o) : false;
	}
	if (o->tty)
		fprintf(stderr, "\r\033[K");
	err = json_find(f, (size_t)n, "failure");
	o->result = ok->type == JSON_BOOL && ok->b
			? 0
			: failure_exit(err && err->type == JSON_STRING ? err->str : NULL);
	err = json_find(f, (size_t)n, "error");
	/*
	 * The reason on stderr, once, also with --json (stdout holds the JSON
	 * alone, and a script that keeps it in a file still shows why); the text
	 * report on stdout does not repeat it.
	 */
	if (o->result)
		hm_err("migration failed: %s",
		       err && err->type == JSON_STRING ? err->str : "unknown error");
	if (!o->json && json_find(f, (size_t)n, "event")) {
		struct mig_stats ms;

		mig_report_from_json(&ms, f, (size_t)n);
		mig_report_text(&ms, o->to, stdout);
	}
	return true;
}

int cmd_migrate(int argc, char **argv)
{
	struct migrate_opts o = { .mode = "auto", .reconnect_s = 30, .result = 1 };
	char req[1024];
	char why[256];
	char tlsdir[PATH_MAX];
	char policy[PATH_MAX];
	char record[PATH_MAX];
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
	if (o.policy)
		json_str(&j, "policy", abs_path(o.policy, policy, sizeof(policy)));
	if (o.record)
		json_str(&j, "record", abs_out_path(o.record, record, sizeof(record)));
	json_u64(&j, "bandwidth", o.bandwidth);
	if (o.downtime_ms)
		json_u64(&j, "downtime_limit_ms", o.downtime_ms);
	if (o.timeout_s)
		json_u64(&j, "timeout_s", o.timeout_s);
	if (o.pc_rounds)
		json_u64(&j, "postcopy_after_rounds", o.pc_rounds);
	json_u64(&j, "reconnect_s", o.reconnect_s);
	if (o.sockbuf_given)
		json_u64(&j, "socket_buffer", o.sockbuf);
	json_obj_end(&j);
send:
	if (!json_done(&j)) {
		hm_err("request too long");
		return 1;
	}
	catch_interrupts();
	/* progress comes every 0.5 s; a silent minute means the VM is gone */
	if (ctlclient_stream(o.control, req, migrate_line, &o, 60000, why, sizeof(why))) {
		hm_err("%s", why);
		return 1;
	}
	return o.result;
}
