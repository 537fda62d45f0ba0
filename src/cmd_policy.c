// SPDX-License-Identifier: MIT
/*
 * hybridmig policy simulate | explain: the policy offline.
 *
 * simulate replays a recording. A migration's own (migrate --record) holds
 * the limits, every input the rule saw and every decision it made: the
 * replay feeds the same inputs to the same rule and says whether each
 * decision comes out the same (with --policy FILE, what other limits would
 * have decided). A trace's (trace --record) holds the probe's samples: each
 * becomes "what would auto choose if the migration started now", at the
 * bandwidth given (--bandwidth) or the link the trace saw.
 */
#define LOG_PREFIX ""
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/cmd.h"
#include "src/cmdopt.h"
#include "src/json.h"
#include "src/log.h"
#include "src/parse.h"
#include "src/policy_record.h"
#include "src/probe.h"

#define MAX_FIELDS 96

struct sim_opts {
	const char *trace;
	const char *policy;
	uint64_t bandwidth; /* bytes/s, 0 = from the recording */
	bool json;
};

struct sim {
	struct sim_opts o;
	struct policy_limits lim;
	struct policy_state st;
	int requested;
	bool have_head;	 /* a migration recording */
	bool have_input; /* an input waits for its recorded decision */
	struct policy_decision mine;
	uint32_t decisions, same, differ;
	/* trace recordings */
	struct policy_vm vm;
	uint32_t samples;
};

void cmd_policy_usage(const char *cmd)
{
	printf("usage: hybridmig policy simulate --trace FILE [--policy FILE] [--bandwidth RATE]\n"
	       "                                 [--json]\n"
	       "       hybridmig policy explain --control PATH [--bandwidth RATE] [--policy FILE]\n"
	       "                                 [--seconds N] [--json]\n"
	       "       hybridmig policy keys\n\n"
	       "simulate replays a recording: one from 'migrate --record' gives the decisions\n"
	       "again and says whether each is the same as recorded (with --policy FILE: what\n"
	       "those limits would have decided); one from 'trace --record' gives, for every\n"
	       "sample, what auto would choose if the migration started then.\n"
	       "explain measures a running VM for a few seconds and says what auto would\n"
	       "choose now, with each mode's predictions.\n"
	       "keys lists the policy file's keys, defaults and meanings.\n\n"
	       "  --bandwidth RATE   the link, e.g. 1gbit, 10gbit, 100M (bytes/s); traces\n"
	       "                     hold none (default 1gbit)\n");
}

static void print_decision(const struct sim *s, const struct policy_decision *d,
			   const char *recorded, bool same)
{
	char buf[8192];
	struct json_out j;

	if (!s->o.json) {
		printf("%7.2f s  round %-3u %-15s %-8s %s%s%s\n", d->t_s, d->round,
		       policy_action_name(d->action), policy_mode_name(d->choice), d->reason,
		       recorded && !same ? "  [recorded: " : "", recorded && !same ? recorded : "");
		if (recorded && !same)
			printf("]\n");
		return;
	}
	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_str(&j, "type", "decision");
	json_dbl(&j, "t_s", d->t_s, 3);
	json_u64(&j, "round", d->round);
	json_str(&j, "action", policy_action_name(d->action));
	json_str(&j, "choice", policy_mode_name(d->choice));
	json_str(&j, "reason", d->reason);
	if (recorded) {
		json_bool(&j, "same_as_recorded", same);
		json_str(&j, "recorded", recorded);
	}
	policy_record_predictions(&j, d);
	json_obj_end(&j);
	if (json_done(&j))
		printf("%s\n", buf);
}

/* {"type":"policy",...}: the limits and the requested mode. */
static int on_head(struct sim *s, const struct json_field *f, size_t n, char *why, size_t len)
{
	const struct json_field *mode = json_find(f, n, "requested_mode");

	s->requested = mode && mode->type == JSON_STRING ? policy_record_mode(mode->str) : -2;
	if (s->requested == -2) {
		snprintf(why, len, "the recording names no requested_mode");
		return -EINVAL;
	}
	if (!s->o.policy && policy_record_read_limits(f, n, &s->lim)) {
		snprintf(why, len, "the recording's limits are out of range");
		return -EINVAL;
	}
	if (s->o.bandwidth)
		s->lim.bandwidth_cap = (double)s->o.bandwidth;
	policy_init(&s->st, &s->lim);
	s->have_head = true;
	return 0;
}

/*
 * {"type":"limits",...}: an operator changed them during the migration
 * (set-bandwidth, set-downtime); later decisions were taken under them.
 * A --policy file replaces the recording's limits, and its changes too.
 */
static int on_limits(struct sim *s, const struct json_field *f, size_t n, char *why, size_t len)
{
	if (!s->have_head) {
		snprintf(why, len, "limits before the recording's head line");
		return -EINVAL;
	}
	if (s->o.policy)
		return 0;
	if (policy_record_read_limits(f, n, &s->lim)) {
		snprintf(why, len, "the recording's new limits are out of range");
		return -EINVAL;
	}
	if (s->o.bandwidth)
		s->lim.bandwidth_cap = (double)s->o.bandwidth;
	s->st.lim = s->lim;
	return 0;
}

static int on_input(struct sim *s, const struct json_field *f, size_t n, char *why, size_t len)
{
	struct policy_input in;

	if (!s->have_head) {
		snprintf(why, len, "an input before the recording's head line");
		return -EINVAL;
	}
	if (policy_record_read_input(f, n, &in)) {
		snprintf(why, len, "a malformed input");
		return -EINVAL;
	}
	policy_decide(&s->st, &in, s->requested, &s->mine);
	s->have_input = true;
	return 0;
}

static int on_decision(struct sim *s, const struct json_field *f, size_t n, char *why, size_t len)
{
	const struct json_field *a = json_find(f, n, "action");
	const struct json_field *c = json_find(f, n, "choice");
	const struct json_field *r = json_find(f, n, "reason");
	char rec[96];
	bool same;

	if (!s->have_input || !a || !c || a->type != JSON_STRING || c->type != JSON_STRING) {
		snprintf(why, len, "a decision without its input");
		return -EINVAL;
	}
	s->have_input = false;
	snprintf(rec, sizeof(rec), "%.40s (%.40s)", a->str, c->str);
	/* the same action, aim and reason: the reason carries every predicted figure */
	same = !strcmp(a->str, policy_action_name(s->mine.action)) &&
	       !strcmp(c->str, policy_mode_name(s->mine.choice)) &&
	       (!r || r->type != JSON_STRING || !strncmp(r->str, s->mine.reason, JSON_STR_MAX - 1));
	s->decisions++;
	if (same)
		s->same++;
	else
		s->differ++;
	print_decision(s, &s->mine, rec, same);
	return 0;
}

static int on_vm(struct sim *s, const struct json_field *f, size_t n, char *why, size_t len)
{
	if (policy_vm_read(f, n, &s->vm)) {
		snprintf(why, len, "a vm line without a valid ram_bytes");
		return -EINVAL;
	}
	return 0;
}

/* A trace sample: what auto would choose if the migration started now. */
static int on_sample(struct sim *s, const char *line, const struct json_field *f, size_t n,
		     char *why, size_t len)
{
	const struct json_field *t = json_find(f, n, "t_s");
	struct policy_decision d;
	struct policy_state st;
	struct policy_input in;
	struct probe_sample ps;
	const char *perr = "?";

	if (!s->vm.ram_pages) {
		snprintf(why, len, "a sample before the trace's vm line");
		return -EINVAL;
	}
	if (probe_sample_parse(line, strlen(line), &ps, &perr)) {
		snprintf(why, len, "a malformed sample (%s)", perr);
		return -EINVAL;
	}
	policy_input_start(&in, &s->vm, s->o.bandwidth ? (double)s->o.bandwidth : 125e6, 0, &ps);
	in.t_s = t && t->type == JSON_NUMBER ? t->num : 0;
	policy_init(&st, &s->lim);
	policy_decide(&st, &in, -1, &d);
	s->samples++;
	print_decision(s, &d, NULL, false);
	return 0;
}

static int one_line(struct sim *s, char *line, char *why, size_t len)
{
	static struct json_field f[MAX_FIELDS];
	const char *perr = NULL;
	const struct json_field *type;
	int n = json_parse_flat(line, strlen(line), f, MAX_FIELDS, &perr);

	if (n < 0) {
		snprintf(why, len, "%s", perr ? perr : "not a JSON object");
		return -EINVAL;
	}
	type = json_find(f, (size_t)n, "type");
	if (!type || type->type != JSON_STRING)
		return 0; /* progress or other lines: not the policy's */
	if (!strcmp(type->str, "policy"))
		return on_head(s, f, (size_t)n, why, len);
	if (!strcmp(type->str, "input"))
		return on_input(s, f, (size_t)n, why, len);
	if (!strcmp(type->str, "limits"))
		return on_limits(s, f, (size_t)n, why, len);
	if (!strcmp(type->str, "decision"))
		return on_decision(s, f, (size_t)n, why, len);
	if (!strcmp(type->str, "vm"))
		return on_vm(s, f, (size_t)n, why, len);
	if (!strcmp(type->str, "sample"))
		return on_sample(s, line, f, (size_t)n, why, len);
	return 0;
}

#define AT(f) CMDOPT_AT(struct sim_opts, f)
static const struct cmdopt sim_options[] = {
	{ "trace", CMDOPT_STRING, AT(trace) },
	{ "policy", CMDOPT_STRING, AT(policy) },
	{ "bandwidth", CMDOPT_RATE, AT(bandwidth), .lo = 1 },
	{ "json", CMDOPT_FLAG, AT(json) },
	{ NULL },
};
#undef AT

static int parse_sim(int argc, char **argv, struct sim_opts *o)
{
	int ret = cmdopt_parse("policy", sim_options, argc, argv, o, cmd_policy_usage);

	if (ret)
		return ret;
	if (!o->trace)
		return cmd_usage_error("policy", "%s", "simulate needs --trace FILE");
	return 0;
}

/* The replay's last line; the exit status of simulate. */
static int summary(const struct sim *s)
{
	if (!s->decisions && !s->samples) {
		hm_err("%s holds no policy inputs or probe samples (from migrate --record or "
		       "trace --record)",
		       s->o.trace);
		return 1;
	}
	if (s->o.json) {
		printf("{\"type\":\"summary\",\"decisions\":%u,\"samples\":%u", s->decisions,
		       s->samples);
		if (s->decisions)
			printf(",\"same_as_recorded\":%s,\"different\":%u",
			       s->differ ? "false" : "true", s->differ);
		printf("}\n");
	} else if (s->decisions) {
		printf("%u decisions replayed: %s\n", s->decisions,
		       s->differ ? "some differ from the recording" : "all the same as recorded");
	}
	/* a replay with the recorded limits must reproduce them: say so in the status */
	return s->differ && !s->o.policy ? 1 : 0;
}

static int simulate(int argc, char **argv)
{
	struct sim s = { .requested = -1 };
	char why[320];
	char *line = NULL;
	size_t cap = 0;
	unsigned int lineno = 0;
	int ret = parse_sim(argc, argv, &s.o);
	FILE *f;

	if (ret)
		return ret < 0 ? 0 : ret;
	policy_limits_default(&s.lim);
	if (s.o.policy && policy_file_load(s.o.policy, &s.lim, why, sizeof(why)))
		return cmd_usage_error("policy", "%s", why);
	f = fopen(s.o.trace, "re");
	if (!f) {
		hm_err("cannot read %s: %s", s.o.trace, strerror(errno));
		return 1;
	}
	ret = 0;
	while (getline(&line, &cap, f) > 0) {
		size_t n = strlen(line);

		lineno++;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		if (!n)
			continue;
		if (one_line(&s, line, why, sizeof(why))) {
			hm_err("%s: line %u: %s", s.o.trace, lineno, why);
			ret = 1;
			break;
		}
	}
	free(line);
	fclose(f);
	if (ret)
		return ret;
	return summary(&s);
}

static int keys(void)
{
	struct policy_limits l;
	char buf[4096];

	policy_limits_default(&l);
	policy_config_format(&l, buf, sizeof(buf));
	fputs(buf, stdout);
	return 0;
}

int cmd_policy(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		cmd_policy_usage("policy");
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "simulate"))
		return simulate(argc - 1, argv + 1);
	if (!strcmp(argv[1], "keys"))
		return keys();
	if (!strcmp(argv[1], "explain"))
		return cmd_policy_explain(argc - 1, argv + 1);
	return cmd_usage_error("policy", "unknown subcommand '%s' (simulate, explain, keys)",
			       argv[1]);
}
