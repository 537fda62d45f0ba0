// SPDX-License-Identifier: MIT
/*
 * The policy's limits as a key = value file (--policy FILE). One table
 * describes every key: its name, unit, bounds and meaning; parsing,
 * printing and the README's list come from it.
 */
#include "policy/policy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum kind { K_DOUBLE, K_U32, K_BOOL };

struct key {
	const char *name;
	enum kind kind;
	size_t off;
	double scale; /* file unit -> field unit (ms -> s: 1e-3) */
	double min, max;
	const char *help;
};

#define F(field) offsetof(struct policy_limits, field)

static const struct key keys[] = {
	{ "max_downtime_ms", K_DOUBLE, F(max_downtime_s), 1e-3, 0.1, 600000,
	  "longest pause the guest may see" },
	{ "max_total_s", K_DOUBLE, F(max_total_s), 1, 0, 1e7,
	  "total-time limit: reached, switch to post-copy, or give up without it (0: none)" },
	{ "allow_postcopy", K_BOOL, F(allow_postcopy), 1, 0, 1,
	  "post-copy and hybrid may be chosen (yes/no)" },
	{ "max_slowdown", K_DOUBLE, F(max_slowdown), 1, 0, 1,
	  "share of its rate the guest may lose during post-copy (0..1)" },
	{ "max_rounds", K_U32, F(max_rounds), 1, 1, 10000,
	  "pre-copy rounds at most (a round lasts checkpoint_s at most)" },
	{ "shrink_margin", K_DOUBLE, F(shrink_margin), 1, 0, 0.99,
	  "a round must shrink the rest by this share to count as progress" },
	{ "downtime_tie_ms", K_DOUBLE, F(downtime_tie_s), 1e-3, 0, 10000,
	  "downtimes closer than this are equal (then the shorter total wins)" },
	{ "bandwidth_cap", K_DOUBLE, F(bandwidth_cap), 1, 0, 1e12,
	  "the link's rate in bytes/s if known (0: measured only)" },
	{ "blip_drop", K_DOUBLE, F(blip_drop), 1, 0, 1,
	  "a bandwidth sample below this share of its average is a blip" },
	{ "blip_rounds", K_U32, F(blip_rounds), 1, 0, 1000,
	  "decisions without a switch to post-copy from a blip on (0: no guard)" },
	{ "ewma_alpha", K_DOUBLE, F(ewma_alpha), 1, 0.01, 1,
	  "weight of a new bandwidth sample in its average" },
	{ "checkpoint_s", K_DOUBLE, F(checkpoint_s), 1, 0.05, 3600,
	  "a round is cut after this long so that a decision comes (auto, hybrid)" },
	{ "switch_cost_ms", K_DOUBLE, F(switch_cost_s), 1e-3, 0, 10000,
	  "fixed cost of a post-copy switch, for predictions" },
	{ "fault_service_us", K_DOUBLE, F(fault_service_s), 1e-6, 0, 1e7,
	  "work per remote fault besides the round trip, for predictions" },
};

void policy_limits_default(struct policy_limits *l)
{
	*l = (struct policy_limits){
		.max_downtime_s = 0.3,
		.max_total_s = 0,
		.allow_postcopy = true,
		.max_slowdown = 0.5,
		.max_rounds = 100,
		.shrink_margin = 0.1,
		.downtime_tie_s = 0.005,
		.bandwidth_cap = 0,
		.blip_drop = 0.5,
		.blip_rounds = 2,
		.ewma_alpha = 0.3,
		.checkpoint_s = 1.0,
		.switch_cost_s = 0.0008,
		.fault_service_s = 60e-6,
	};
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int policy_config_set(struct policy_limits *l, const char *name, const char *val, char *why,
		      size_t whylen)
{
	const struct key *k = find_key(name);
	char *end;
	double v;

	if (!k) {
		snprintf(why, whylen, "unknown key '%s'", name);
		return -EINVAL;
	}
	if (k->kind == K_BOOL) {
		if (parse_bool(val, (bool *)((char *)l + k->off))) {
			snprintf(why, whylen, "%s: '%s' is not yes or no", name, val);
			return -EINVAL;
		}
		return 0;
	}
	errno = 0;
	v = strtod(val, &end);
	if (end == val || *end || errno || !isfinite(v)) {
		snprintf(why, whylen, "%s: '%s' is not a number", name, val);
		return -EINVAL;
	}
	if (v < k->min || v > k->max || (k->kind == K_U32 && v != floor(v))) {
		snprintf(why, whylen, "%s: %s is out of range (%s %g to %g)", name, val,
			 k->kind == K_U32 ? "a whole number from" : "from", k->min, k->max);
		return -EINVAL;
	}
	if (k->kind == K_U32)
		*(uint32_t *)((char *)l + k->off) = (uint32_t)v;
	else
		*(double *)((char *)l + k->off) = v * k->scale;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

int policy_config_parse(const char *text, struct policy_limits *l, char *why, size_t whylen)
{
	unsigned int lineno = 0;

	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) : strlen(text);
		char line[512];
		char *s, *eq, *hash;
		char sub[200];

		lineno++;
		if (n >= sizeof(line)) {
			snprintf(why, whylen, "line %u: longer than %zu characters", lineno,
				 sizeof(line) - 1);
			return -EINVAL;
		}
		memcpy(line, text, n);
		line[n] = 0;
		text += n + (nl ? 1 : 0);
		hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		s = trim(line);
		if (!*s)
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			snprintf(why, whylen, "line %u: '%s' is not of the form key = value",
				 lineno, s);
			return -EINVAL;
		}
		*eq = 0;
		if (policy_config_set(l, trim(s), trim(eq + 1), sub, sizeof(sub))) {
			snprintf(why, whylen, "line %u: %s", lineno, sub);
			return -EINVAL;
		}
	}
	return 0;
}

size_t policy_config_count(void)
{
	return sizeof(keys) / sizeof(keys[0]);
}

const char *policy_config_get(const struct policy_limits *l, size_t i, bool internal, double *val)
{
	const struct key *k;
	const char *p;

	if (i >= policy_config_count())
		return NULL;
	k = &keys[i];
	p = (const char *)l + k->off;
	if (k->kind == K_BOOL)
		*val = *(const bool *)p ? 1 : 0;
	else if (k->kind == K_U32)
		*val = *(const uint32_t *)p;
	else
		*val = *(const double *)p / (internal ? 1 : k->scale);
	return k->name;
}

int policy_config_set_internal(struct policy_limits *l, const char *name, double v)
{
	const struct key *k = find_key(name);
	char *p = (char *)l;

	if (!k || !isfinite(v) || v / k->scale < k->min * (1 - 1e-9) - 1e-12 ||
	    v / k->scale > k->max * (1 + 1e-9))
		return -EINVAL;
	if (k->kind == K_BOOL)
		*(bool *)(p + k->off) = v != 0;
	else if (k->kind == K_U32)
		*(uint32_t *)(p + k->off) = (uint32_t)v;
	else
		*(double *)(p + k->off) = v;
	return 0;
}

size_t policy_config_format(const struct policy_limits *l, char *buf, size_t len)
{
	size_t off = 0;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];
		const char *p = (const char *)l + k->off;
		char val[32];
		int w;

		if (k->kind == K_BOOL)
			snprintf(val, sizeof(val), "%s", *(const bool *)p ? "yes" : "no");
		else if (k->kind == K_U32)
			snprintf(val, sizeof(val), "%u", *(const uint32_t *)p);
		else
			snprintf(val, sizeof(val), "%g", *(const double *)p / k->scale);
		w = snprintf(buf + off, off < len ? len - off : 0, "%-18s = %-8s # %s\n", k->name,
			     val, k->help);
		if (w > 0)
			off += (size_t)w;
	}
	return off;
}
