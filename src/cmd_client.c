// SPDX-License-Identifier: MIT
/* hybridmig status|verify|pause|resume|stop|abort|switch-postcopy|job|set-bandwidth|set-downtime:
 * one request to a VM's control socket. */
#define LOG_PREFIX ""
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h> /* optind */
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

static int parse_ms(const char *s, uint64_t *v)
{
	return parse_count_range(s, 1, 600000, v);
}

/* The commands that take a value: its name, how it is read, the request's member, its help. */
static const struct value_cmd {
	const char *cmd;
	const char *value;
	int (*parse)(const char *s, uint64_t *v);
	const char *range; /* for the usage error */
	const char *key;
	const char *help;
} value_cmds[] = {
	{ "set-bandwidth", "RATE", parse_rate, "e.g. 100MiB, 1gbit, 0", "bandwidth",
	  "RATE caps the running migration's sending rate from its next batch of\n"
	  "pages on: bytes/s as a size (100M, 100MiB), or bits/s (1gbit, 500mbit);\n"
	  "0 lifts the cap. The policy takes it as a bound on the link.\n" },
	{ "set-downtime", "MS", parse_ms, "1 to 600000", "downtime_limit_ms",
	  "MS is the running migration's new downtime limit in milliseconds (1 to\n"
	  "600000); pre-copy and the policy decide with it from the next round on.\n" },
};

static const struct value_cmd *value_cmd(const char *cmd)
{
	for (size_t i = 0; i < ARRAY_SIZE(value_cmds); i++)
		if (!strcmp(cmd, value_cmds[i].cmd))
			return &value_cmds[i];
	return NULL;
}

static void print_client_help(const char *cmd)
{
	const struct value_cmd *vc = value_cmd(cmd);

	printf("usage: hybridmig %s --control PATH%s%s [--json] [--timeout S] [--force]\n\n"
	       "Sends '%s' to the VM serving the control socket PATH and prints the reply.\n",
	       cmd, vc ? " " : "", vc ? vc->value : "", cmd);
	if (vc)
		printf("%s", vc->help);
	if (!strcmp(cmd, "job"))
		printf("Shows the migration that runs (phase, round, bytes, remaining, rates,\n"
		       "limits, the policy's current decision) or how the last one ended.\n");
	printf("\n"
	       "  --control PATH    the running VM's control socket (required)\n"
	       "  --json            print the reply as received: one JSON object\n"
	       "  --timeout S       give up after S seconds (default 150)\n"
	       "  --force           resume/stop even while a migration runs or the VM is\n"
	       "                    fenced after a switch-over (the refusal says what is at\n"
	       "                    stake: two running copies, or the only copy of pages)\n");
}

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

struct client_opts {
	const char *control;
	uint64_t timeout; /* seconds */
	bool force;
	bool json;
};

#define AT(f) CMDOPT_AT(struct client_opts, f)
static const struct cmdopt client_options[] = {
	{ "control", CMDOPT_STRING, AT(control) },
	{ "json", CMDOPT_FLAG, AT(json) },
	{ "timeout", CMDOPT_COUNT, AT(timeout), .lo = 1, .hi = 86400, .unit = "s" },
	{ "force", CMDOPT_FLAG, AT(force) },
	{ NULL },
};
#undef AT

/* The options, then the VALUE of a command that takes one (@vc) into *v. */
static int parse_client(const char *cmd, const struct value_cmd *vc, int argc, char **argv,
			struct client_opts *o, uint64_t *v)
{
	int ret = cmdopt_scan(cmd, client_options, argc, argv, o, print_client_help);

	if (ret)
		return ret;
	if (vc && optind == argc)
		return cmd_usage_error(cmd, "%s is required", vc->value);
	if (argc - optind > (vc ? 1 : 0))
		return cmd_usage_error(cmd, "unexpected argument '%s'", argv[argc - 1]);
	if (!o->control)
		return cmd_usage_error(cmd, "%s", "--control PATH is required");
	if (vc && vc->parse(argv[optind], v))
		return cmd_usage_error(cmd, "bad %s '%s' (%s)", vc->value, argv[optind], vc->range);
	return 0;
}

int cmd_client(const char *cmd, int argc, char **argv)
{
	struct client_opts o = { .timeout = 150 };
	const struct value_cmd *vc = value_cmd(cmd);
	uint64_t v = 0;
	char req[160];
	char reply[8192];
	char why[256];
	int ret = parse_client(cmd, vc, argc, argv, &o, &v);

	if (ret)
		return ret < 0 ? 0 : ret;
	if (vc)
		snprintf(req, sizeof(req), "{\"cmd\":\"%s\",\"%s\":%llu}", cmd, vc->key,
			 (unsigned long long)v);
	else
		snprintf(req, sizeof(req), "{\"cmd\":\"%s\"%s}", cmd,
			 o.force ? ",\"force\":true" : "");
	if (ctlclient_call(o.control, req, reply, sizeof(reply), (int)o.timeout * 1000, why,
			   sizeof(why))) {
		hm_err("%s", why);
		return 1;
	}
	return client_reply(cmd, reply, o.json);
}
