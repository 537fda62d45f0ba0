// SPDX-License-Identifier: MIT
/*
 * hybridmig trace: the probe's figures of a running VM once a second, via
 * its control socket (src/vmctl_trace.h has the lines). Human lines on a
 * terminal, the VM's JSON lines with --json; --record FILE keeps the vm
 * line and the samples for `hybridmig policy simulate`.
 */
#define LOG_PREFIX ""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/cmd.h"
#include "src/cmdopt.h"
#include "src/ctlclient.h"
#include "src/json.h"
#include "src/log.h"
#include "src/parse.h"
#include "src/probe.h"
#include "src/vmctl_trace.h"

#define MIB (1024.0 * 1024.0)
/* the VM sends a line every second; loading the probe takes a moment more */
#define LINE_TIMEOUT_MS 30000

struct trace_opts {
	const char *control;
	const char *record;
	uint64_t seconds;
	bool json;
	bool no_bpf;
	FILE *rec;
	uint64_t recorded; /* lines written to rec */
	int result;
};

static void trace_usage(const char *cmd)
{
	printf("usage: hybridmig trace --control PATH [--seconds N] [--record FILE] [--json]\n"
	       "                       [--no-bpf]\n\n"
	       "Measures the running VM behind the control socket PATH for N seconds and\n"
	       "prints its figures once a second: distinct pages dirtied per second, the\n"
	       "writable working set W(w) = distinct pages dirtied within w, for w = 0.1 s\n"
	       "to 30 s (it grows far from linearly: one rate misleads), the hot 2 MiB\n"
	       "regions, the device's DMA pages/s and the vCPUs' run time. The eBPF probe\n"
	       "measures where it can load (root or CAP_BPF+CAP_PERFMON, kernel BTF); else\n"
	       "the VMM's own dirty harvest does, coarser (100 ms), and the reason is shown.\n"
	       "Dirty tracking is on while it runs; not during a migration.\n\n"
	       "  --control PATH   the running VM's control socket (required)\n"
	       "  --seconds N      how long, 1 to %d (default 10); 30 or more measures\n"
	       "                   the 30 s window\n"
	       "  --record FILE    write JSON lines: the VM ({\"type\":\"vm\",...}), then one\n"
	       "                   {\"type\":\"sample\",...} per second (policy simulate --trace)\n"
	       "  --json           print the JSON lines instead of text\n"
	       "  --no-bpf         measure from the harvest only (to compare, or to measure\n"
	       "                   what the probe costs the guest)\n",
	       VMCTL_TRACE_MAX_S);
}

#define AT(f) CMDOPT_AT(struct trace_opts, f)
static const struct cmdopt trace_options[] = {
	{ "control", CMDOPT_STRING, AT(control) },
	{ "seconds", CMDOPT_COUNT, AT(seconds), .lo = 1, .hi = VMCTL_TRACE_MAX_S },
	{ "record", CMDOPT_STRING, AT(record) },
	{ "json", CMDOPT_FLAG, AT(json) },
	{ "no-bpf", CMDOPT_FLAG, AT(no_bpf) },
	{ NULL },
};
#undef AT

static int parse_trace(int argc, char **argv, struct trace_opts *o)
{
	int ret = cmdopt_parse("trace", trace_options, argc, argv, o, trace_usage);

	if (ret)
		return ret;
	if (!o->control)
		return cmd_usage_error("trace", "%s", "--control PATH is required");
	return 0;
}

static void human_vm(const char *line)
{
	struct json_field f[16];
	const char *why = NULL;
	int n = json_parse_flat(line, strlen(line), f, ARRAY_SIZE(f), &why);
	const struct json_field *ram = n > 0 ? json_find(f, (size_t)n, "ram_bytes") : NULL;
	const struct json_field *v = n > 0 ? json_find(f, (size_t)n, "vcpus") : NULL;
	const struct json_field *tr = n > 0 ? json_find(f, (size_t)n, "tracking") : NULL;
	const struct json_field *src = n > 0 ? json_find(f, (size_t)n, "source") : NULL;
	const struct json_field *fb = n > 0 ? json_find(f, (size_t)n, "fallback_reason") : NULL;

	if (!ram || !v || !tr || !src)
		return;
	printf("tracing: %.0f MiB RAM, %s vCPU(s), %s, source %s\n", ram->num / MIB, v->str,
	       tr->str, src->str);
	if (fb && fb->type == JSON_STRING)
		printf("  no eBPF: %s\n", fb->str);
	printf("  W(w): MiB dirtied within w (distinct pages); dirty/s = W(1 s) in pages\n");
	printf("  %6s %10s ", "t", "dirty/s");
	for (uint32_t k = 0; k < PROBE_NWIN; k++) {
		char w[16];

		snprintf(w, sizeof(w), "%gs", probe_windows_s[k]);
		printf(" %6s", w);
	}
	printf("  %5s\n", "vCPU");
}

static void human_sample(const char *line)
{
	struct probe_sample s;
	const char *why = NULL;
	const char *t = strstr(line, "\"t_s\":");

	if (probe_sample_parse(line, strlen(line), &s, &why)) {
		hm_warn("unreadable sample (%s)", why);
		return;
	}
	printf("  %5.1fs %10.0f ", t ? strtod(t + 6, NULL) : 0.0, s.dirty_pages_per_s);
	for (uint32_t k = 0; k < PROBE_NWIN; k++)
		if (k < s.nwin)
			printf(" %6.1f", (double)s.wss_pages[k] * HM_PAGE_SIZE / MIB);
		else
			printf(" %6s", "-");
	printf("  %5.2f", s.vcpu_run_frac);
	if (s.dma_pages_per_s > 0)
		printf("  DMA %.0f pages/s", s.dma_pages_per_s);
	if (s.rtt_us)
		printf("  RTT %llu us", (unsigned long long)s.rtt_us);
	printf("\n");
	if (s.nhot)
		printf("         hot 2 MiB regions:");
	for (uint32_t i = 0; i < s.nhot && i < 4; i++)
		printf(" 0x%llx (%llu)", (unsigned long long)(s.hot[i].region << 21),
		       (unsigned long long)s.hot[i].pages);
	if (s.nhot)
		printf("; locality %.2f\n", s.locality);
}

static bool line_type(const char *line, const char *type)
{
	char want[32];

	snprintf(want, sizeof(want), "\"type\":\"%s\"", type);
	return strstr(line, want) != NULL;
}

static bool trace_line(const char *line, void *arg)
{
	struct trace_opts *o = arg;
	bool vm = line_type(line, "vm");
	bool sample = line_type(line, "sample");

	if (o->json)
		printf("%s\n", line), fflush(stdout);
	if ((vm || sample) && o->rec && fprintf(o->rec, "%s\n", line) < 0)
		o->result = -errno;
	else if ((vm || sample) && o->rec)
		o->recorded++;
	if (vm || sample) {
		if (!o->json)
			vm ? human_vm(line) : human_sample(line);
		if (!o->json)
			fflush(stdout);
		return false;
	}
	return true;
}

/* The final line: ok, or the VM's error. */
static int trace_done(struct trace_opts *o, const char *last)
{
	struct json_field f[8];
	const char *why = NULL;
	int n = json_parse_flat(last, strlen(last), f, ARRAY_SIZE(f), &why);
	const struct json_field *ok = n > 0 ? json_find(f, (size_t)n, "ok") : NULL;
	const struct json_field *err = n > 0 ? json_find(f, (size_t)n, "error") : NULL;

	if (ok && ok->type == JSON_BOOL && ok->b)
		return 0;
	if (!o->json)
		hm_err("trace failed: %s",
		       err && err->type == JSON_STRING ? err->str : "bad reply");
	return 1;
}

struct trace_run {
	struct trace_opts *o;
	char last[512];
};

static bool run_line(const char *line, void *arg)
{
	struct trace_run *r = arg;
	bool done = trace_line(line, r->o);

	if (done)
		snprintf(r->last, sizeof(r->last), "%s", line);
	return done;
}

int cmd_trace(int argc, char **argv)
{
	struct trace_opts o = { .seconds = 10 };
	struct trace_run r = { .o = &o };
	char req[128];
	char why[256];
	int ret = parse_trace(argc, argv, &o);

	if (ret)
		return ret < 0 ? 0 : ret;
	if (o.record) {
		o.rec = fopen(o.record, "w");
		if (!o.rec)
			return cmd_usage_error("trace", "cannot write --record '%s': %s", o.record,
					       strerror(errno));
	}
	snprintf(req, sizeof(req), "{\"cmd\":\"trace\",\"seconds\":%llu%s}",
		 (unsigned long long)o.seconds, o.no_bpf ? ",\"bpf\":false" : "");
	ret = ctlclient_stream(o.control, req, run_line, &r, LINE_TIMEOUT_MS, why, sizeof(why));
	if (ret)
		hm_err("%s", why);
	else
		ret = trace_done(&o, r.last);
	if (o.rec && (fclose(o.rec) || o.result)) {
		hm_err("cannot write %s: %s", o.record, strerror(o.result ? -o.result : errno));
		ret = 1;
	}
	/* nothing came: leave no empty recording behind */
	if (o.rec && !o.recorded)
		unlink(o.record);
	return ret ? 1 : 0;
}
