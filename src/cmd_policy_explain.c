// SPDX-License-Identifier: MIT
/*
 * hybridmig policy explain: what auto would choose for a running VM now,
 * and why. It measures the VM through its control socket's `trace` (the
 * eBPF probe, or the harvest where BPF cannot load) for a few seconds, then
 * asks the policy — the same rule a migration runs — at the start of a
 * migration over the link given (--bandwidth, --rtt), and prints the choice
 * with each mode's predictions.
 */
#define LOG_PREFIX ""
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "src/cmd.h"
#include "src/cmdopt.h"
#include "src/ctlclient.h"
#include "src/json.h"
#include "src/log.h"
#include "src/parse.h"
#include "src/policy_record.h"
#include "src/probe.h"

#define DEFAULT_BANDWIDTH (1000000000ULL / 8) /* 1 Gbit/s */

struct explain {
	const char *control;
	const char *policy;
	uint64_t bandwidth;
	bool bandwidth_given;
	uint64_t rtt_us;
	uint64_t seconds;
	bool json;
	/* what the trace said */
	struct policy_vm vm;
	bool have_vm;
	struct probe_sample last;
	bool have_sample;
	char error[320];
	bool done;
};

/* --bandwidth: a rate above 0; the link is then given, not assumed. */
static int set_bandwidth(const struct cmdopt *d, const char *arg, void *opts)
{
	struct explain *e = opts;

	if (parse_rate(arg, &e->bandwidth) || !e->bandwidth)
		return -EINVAL;
	e->bandwidth_given = true;
	return 0;
}

/* --rtt MS, kept in microseconds. */
static int set_rtt(const struct cmdopt *d, const char *arg, void *opts)
{
	struct explain *e = opts;
	int err = parse_count_range(arg, d->lo, d->hi, &e->rtt_us);

	if (!err)
		e->rtt_us *= 1000;
	return err;
}

#define AT(f) CMDOPT_AT(struct explain, f)
static const struct cmdopt explain_options[] = {
	{ "control", CMDOPT_STRING, AT(control) },
	{ "policy", CMDOPT_STRING, AT(policy) },
	{ "bandwidth", CMDOPT_CALL, .set = set_bandwidth },
	{ "rtt", CMDOPT_CALL, .set = set_rtt, .lo = 0, .hi = 10000, .unit = "ms" },
	{ "seconds", CMDOPT_COUNT, AT(seconds), .lo = 1, .hi = 3600 },
	{ "json", CMDOPT_FLAG, AT(json) },
	{ NULL },
};
#undef AT

static int parse_explain(int argc, char **argv, struct explain *e)
{
	int ret = cmdopt_parse("policy", explain_options, argc, argv, e, cmd_policy_usage);

	if (ret)
		return ret;
	if (!e->control)
		return cmd_usage_error("policy", "%s", "explain needs --control PATH");
	return 0;
}

/* The trace's lines: the VM, then a sample a second, then the final reply. */
static bool on_line(const char *line, void *arg)
{
	static struct json_field f[64];
	struct explain *e = arg;
	const char *why = "?";
	const struct json_field *x;
	int n = json_parse_flat(line, strlen(line), f, 64, &why);

	if (n < 0) {
		snprintf(e->error, sizeof(e->error), "malformed line from the VM: %s", why);
		return true;
	}
	x = json_find(f, (size_t)n, "ok");
	if (x) {
		const struct json_field *err = json_find(f, (size_t)n, "error");

		if (x->type != JSON_BOOL || !x->b)
			snprintf(e->error, sizeof(e->error), "%.300s",
				 err && err->type == JSON_STRING ? err->str : "the trace failed");
		e->done = true;
		return true;
	}
	x = json_find(f, (size_t)n, "type");
	if (!x || x->type != JSON_STRING)
		return false;
	if (!strcmp(x->str, "vm"))
		e->have_vm = !policy_vm_read(f, (size_t)n, &e->vm);
	else if (!strcmp(x->str, "sample"))
		e->have_sample = !probe_sample_parse(line, strlen(line), &e->last, &why);
	return false;
}

static void human(const struct explain *e, const struct policy_decision *d)
{
	const struct probe_sample *s = &e->last;

	printf("VM: %.1f GiB RAM, %.1f MiB touched, %u vCPU%s; dirtying %.0f pages/s "
	       "(distinct in 1 s), measured by %s over %llu s\n",
	       (double)e->vm.ram_pages * 4096 / 1073741824.0,
	       (double)e->vm.resident_pages * 4096 / 1048576.0, e->vm.vcpus,
	       e->vm.vcpus == 1 ? "" : "s", s->dirty_pages_per_s, s->source,
	       (unsigned long long)e->seconds);
	printf("working set:");
	for (uint32_t i = 0; i < s->nwin && i < PROBE_NWIN; i++)
		printf(" W(%gs)=%.1fMiB", probe_windows_s[i],
		       (double)s->wss_pages[i] * 4096 / 1048576.0);
	printf("\nlink: %.0f Mbit/s (%s), RTT %.3f ms\n", d->bandwidth * 8 / 1e6,
	       e->bandwidth_given ? "given" : "assumed: pass --bandwidth",
	       (double)e->rtt_us / 1000.0);
	printf("auto would choose: %s (%s)\n  %s\n\n", policy_mode_name(d->choice),
	       policy_action_name(d->action), d->reason);
	printf("  %-9s %-8s %9s %12s %10s %13s %9s  %s\n", "mode", "meets", "total s",
	       "downtime ms", "sent MiB", "remote faults", "slowdown", "misses");
	for (int m = 0; m < POLICY_NMODES; m++) {
		const struct policy_prediction *p = &d->pred[m];

		if (!p->valid)
			continue;
		printf("  %-9s %-8s %9.2f %12.2f %10.1f %13.0f %8.0f%%  %s\n", policy_mode_name(m),
		       p->feasible ? "yes" : "no", p->total_s, p->downtime_s * 1e3,
		       p->bytes / 1048576.0, p->remote_faults, p->slowdown * 100,
		       p->fails[0] ? p->fails : "-");
	}
}

static void as_json(const struct explain *e, const struct policy_decision *d)
{
	static char buf[16384];
	struct json_out j;

	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_str(&j, "type", "explain");
	json_str(&j, "choice", policy_mode_name(d->choice));
	json_str(&j, "action", policy_action_name(d->action));
	json_str(&j, "reason", d->reason);
	json_dbl(&j, "bandwidth_mbps", d->bandwidth * 8 / 1e6, 1);
	json_bool(&j, "bandwidth_assumed", !e->bandwidth_given);
	json_dbl(&j, "rtt_ms", (double)e->rtt_us / 1000.0, 3);
	json_u64(&j, "ram_bytes", e->vm.ram_pages * 4096);
	json_u64(&j, "resident_pages", e->vm.resident_pages);
	json_u64(&j, "vcpus", e->vm.vcpus);
	json_obj_begin(&j, "measured");
	probe_sample_json(&e->last, &j);
	json_obj_end(&j);
	policy_record_predictions(&j, d);
	json_obj_end(&j);
	if (json_done(&j))
		printf("%s\n", buf);
}

int cmd_policy_explain(int argc, char **argv)
{
	struct explain e = { .bandwidth = DEFAULT_BANDWIDTH, .rtt_us = 100, .seconds = 5 };
	struct policy_limits lim;
	struct policy_decision d;
	struct policy_state st;
	struct policy_input in;
	char req[128];
	char why[320];
	int ret = parse_explain(argc, argv, &e);

	if (ret)
		return ret < 0 ? 0 : ret;
	policy_limits_default(&lim);
	if (e.policy && policy_file_load(e.policy, &lim, why, sizeof(why)))
		return cmd_usage_error("policy", "%s", why);
	snprintf(req, sizeof(req), "{\"cmd\":\"trace\",\"seconds\":%llu}",
		 (unsigned long long)e.seconds);
	if (!e.json)
		fprintf(stderr, "measuring the VM for %llu s...\n", (unsigned long long)e.seconds);
	if (ctlclient_stream(e.control, req, on_line, &e, 15000, why, sizeof(why))) {
		hm_err("%s", why);
		return 1;
	}
	if (e.error[0] || !e.have_vm || !e.have_sample) {
		hm_err("cannot explain: %s",
		       e.error[0] ? e.error : "the VM sent no measurement (is it a hybridmig VM?)");
		return 1;
	}
	policy_input_start(&in, &e.vm, (double)e.bandwidth, (double)e.rtt_us / 1e6, &e.last);
	policy_init(&st, &lim);
	policy_decide(&st, &in, -1, &d);
	if (e.json)
		as_json(&e, &d);
	else
		human(&e, &d);
	return 0;
}
