// SPDX-License-Identifier: MIT
/*
 * A probe sample as JSON and back (src/probe.h): the trace lines, `trace
 * --record` and the policy's recordings share this one format. The reader
 * takes the nested members the writer makes (arrays of objects), which the
 * control protocol's flat reader (src/json.h) does not; doubles are written
 * with %.17g so that a replay reads back the very values the policy saw.
 */
#include "src/probe.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/json.h"

/* GPA of a 2 MiB region */
#define REGION_SHIFT (WSS_REGION_SHIFT + 12)
/* nesting the reader accepts in members it skips */
#define SKIP_DEPTH 8

/* the same windows as wss_windows_ms (src/wss.h), in seconds */
const double probe_windows_s[PROBE_NWIN] = { 0.1, 0.25, 0.5, 1, 2, 5, 10, 30 };

static void wss_json(const struct probe_sample *s, struct json_out *j)
{
	json_arr_begin(j, "wss");
	for (uint32_t k = 0; k < s->nwin && k < PROBE_NWIN; k++) {
		char w[16];

		/* %g: "0.1", which reads back as the same double, where %.17g is long */
		snprintf(w, sizeof(w), "%g", probe_windows_s[k]);
		json_obj_begin(j, NULL);
		json_raw(j, "window_s", w);
		json_u64(j, "pages", s->wss_pages[k]);
		json_obj_end(j);
	}
	json_arr_end(j);
}

static void hot_json(const struct probe_sample *s, struct json_out *j)
{
	json_arr_begin(j, "hot");
	for (uint32_t i = 0; i < s->nhot && i < PROBE_NHOT; i++) {
		json_obj_begin(j, NULL);
		json_u64(j, "gpa", s->hot[i].region << REGION_SHIFT);
		json_u64(j, "pages", s->hot[i].pages);
		json_obj_end(j);
	}
	json_arr_end(j);
}

void probe_sample_json(const struct probe_sample *s, struct json_out *j)
{
	json_num(j, "dirty_pages_per_s", s->dirty_pages_per_s);
	wss_json(s, j);
	hot_json(s, j);
	json_num(j, "locality", s->locality);
	json_num(j, "dma_pages_per_s", s->dma_pages_per_s);
	json_num(j, "vcpu_run", s->vcpu_run_frac);
	if (s->rtt_us)
		json_u64(j, "rtt_us", s->rtt_us);
	else
		json_null(j, "rtt_us");
	json_u64(j, "cwnd", s->cwnd);
	json_u64(j, "events", s->events);
	json_str(j, "source", s->source ? s->source : PROBE_SRC_HARVEST);
	json_str(j, "tracking", s->tracking ? s->tracking : "dirty-log");
	json_str_or_null(j, "fallback_reason", s->why_fallback[0] ? s->why_fallback : NULL);
	json_obj_begin(j, "check");
	json_u64(j, "bpf_pages", s->check_bpf_pages);
	json_u64(j, "harvest_pages", s->check_harvest_pages);
	json_obj_end(j);
}

/* ---- reader --------------------------------------------------------------- */

struct cur {
	const char *s;
	const char *end;
	const char *why;
};

static void ws(struct cur *c)
{
	while (c->s < c->end && (*c->s == ' ' || *c->s == '\t' || *c->s == '\n' || *c->s == '\r'))
		c->s++;
}

static bool eat(struct cur *c, char ch)
{
	ws(c);
	if (c->s < c->end && *c->s == ch) {
		c->s++;
		return true;
	}
	return false;
}

static int fail(struct cur *c, const char *why)
{
	if (!c->why)
		c->why = why;
	return -EINVAL;
}

/* A string into @out (escapes decoded; \u as '?'); NULL @out skips it. */
static int str(struct cur *c, char *out, size_t cap)
{
	size_t n = 0;

	if (!eat(c, '"'))
		return fail(c, "string expected");
	while (c->s < c->end && *c->s != '"') {
		char ch = *c->s++;

		if (ch == '\\' && c->s < c->end) {
			ch = *c->s++;
			ch = ch == 'n' ? '\n' : ch == 't' ? '\t' : ch;
			if (ch == 'u') {
				c->s += c->end - c->s < 4 ? c->end - c->s : 4;
				ch = '?';
			}
		}
		if (out && n + 1 < cap)
			out[n++] = ch;
	}
	if (out && cap)
		out[n] = 0;
	return eat(c, '"') ? 0 : fail(c, "unterminated string");
}

static int num(struct cur *c, double *out)
{
	char buf[64];
	char *e;
	size_t n = 0;

	ws(c);
	while (c->s + n < c->end && n + 1 < sizeof(buf) && strchr("+-.0123456789eE", c->s[n])) {
		buf[n] = c->s[n];
		n++;
	}
	buf[n] = 0;
	*out = strtod(buf, &e);
	if (!n || *e)
		return fail(c, "number expected");
	c->s += n;
	return 0;
}

static bool literal(struct cur *c, const char *word)
{
	size_t n = strlen(word);

	ws(c);
	if ((size_t)(c->end - c->s) < n || memcmp(c->s, word, n))
		return false;
	c->s += n;
	return true;
}

static int skip(struct cur *c, int depth);

/* The members of an object, each handed to @fn with its key; @fn consumes the value. */
static int members(struct cur *c, int (*fn)(struct cur *, const char *, void *), void *arg)
{
	char key[32];
	int err;

	if (!eat(c, '{'))
		return fail(c, "object expected");
	if (eat(c, '}'))
		return 0;
	do {
		err = str(c, key, sizeof(key));
		if (!err && !eat(c, ':'))
			err = fail(c, "':' expected");
		if (!err)
			err = fn(c, key, arg);
		if (err)
			return err;
	} while (eat(c, ','));
	return eat(c, '}') ? 0 : fail(c, "'}' expected");
}

static int skip_member(struct cur *c, const char *key, void *arg)
{
	return skip(c, *(int *)arg);
}

static int skip(struct cur *c, int depth)
{
	double d;

	ws(c);
	if (depth > SKIP_DEPTH)
		return fail(c, "nested too deeply");
	if (c->s < c->end && *c->s == '"')
		return str(c, NULL, 0);
	if (c->s < c->end && *c->s == '{') {
		int next = depth + 1;

		return members(c, skip_member, &next);
	}
	if (eat(c, '[')) {
		if (eat(c, ']'))
			return 0;
		do
			if (skip(c, depth + 1))
				return -EINVAL;
		while (eat(c, ','));
		return eat(c, ']') ? 0 : fail(c, "']' expected");
	}
	if (literal(c, "null") || literal(c, "true") || literal(c, "false"))
		return 0;
	return num(c, &d);
}

/* Two numeric members of one array element ({window_s, pages} or {gpa, pages}). */
struct pair {
	const char *a;
	double va;
	double vb; /* "pages" */
};

static int pair_member(struct cur *c, const char *key, void *arg)
{
	struct pair *p = arg;

	if (!strcmp(key, p->a))
		return num(c, &p->va);
	if (!strcmp(key, "pages"))
		return num(c, &p->vb);
	return skip(c, 1);
}

static int wss_put(struct probe_sample *s, const struct pair *p)
{
	for (uint32_t k = 0; k < PROBE_NWIN; k++) {
		if (probe_windows_s[k] != p->va)
			continue;
		s->wss_pages[k] = (uint64_t)p->vb;
		s->nwin = k + 1 > s->nwin ? k + 1 : s->nwin;
		return 0;
	}
	return -EINVAL;
}

static int hot_put(struct probe_sample *s, const struct pair *p)
{
	if (s->nhot >= PROBE_NHOT)
		return -EINVAL;
	s->hot[s->nhot].region = (uint64_t)p->va >> REGION_SHIFT;
	s->hot[s->nhot].pages = (uint64_t)p->vb;
	s->nhot++;
	return 0;
}

static int pairs(struct cur *c, struct probe_sample *s, bool wss)
{
	if (!eat(c, '['))
		return fail(c, "array expected");
	if (eat(c, ']'))
		return 0;
	do {
		struct pair p = { .a = wss ? "window_s" : "gpa", .va = -1, .vb = 0 };

		if (members(c, pair_member, &p))
			return -EINVAL;
		if (wss ? wss_put(s, &p) : hot_put(s, &p))
			return fail(c, wss ? "unknown window" : "too many hot regions");
	} while (eat(c, ','));
	return eat(c, ']') ? 0 : fail(c, "']' expected");
}

static int check_member(struct cur *c, const char *key, void *arg)
{
	struct probe_sample *s = arg;
	double v;
	int err;

	if (strcmp(key, "bpf_pages") && strcmp(key, "harvest_pages"))
		return skip(c, 1);
	err = num(c, &v);
	if (!strcmp(key, "bpf_pages"))
		s->check_bpf_pages = (uint64_t)v;
	else
		s->check_harvest_pages = (uint64_t)v;
	return err;
}

/* Map a name read back to the writer's static string. */
static int name(struct cur *c, const char **out, const char *const *names, size_t n)
{
	char buf[64];

	if (str(c, buf, sizeof(buf)))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(buf, names[i])) {
			*out = names[i];
			return 0;
		}
	return fail(c, "unknown source or tracking");
}

static int u64_or_null(struct cur *c, uint64_t *out)
{
	double v = 0;

	if (literal(c, "null")) {
		*out = 0;
		return 0;
	}
	if (num(c, &v) || v < 0)
		return fail(c, "count expected");
	*out = (uint64_t)v;
	return 0;
}

static int sample_member(struct cur *c, const char *key, void *arg)
{
	static const char *const sources[] = { PROBE_SRC_RING, PROBE_SRC_SPTE, PROBE_SRC_HARVEST };
	static const char *const trackings[] = { "dirty-ring", "dirty-log" };
	struct probe_sample *s = arg;

	if (!strcmp(key, "dirty_pages_per_s"))
		return num(c, &s->dirty_pages_per_s);
	if (!strcmp(key, "dma_pages_per_s"))
		return num(c, &s->dma_pages_per_s);
	if (!strcmp(key, "locality"))
		return num(c, &s->locality);
	if (!strcmp(key, "vcpu_run"))
		return num(c, &s->vcpu_run_frac);
	if (!strcmp(key, "wss") || !strcmp(key, "hot"))
		return pairs(c, s, key[0] == 'w');
	if (!strcmp(key, "rtt_us"))
		return u64_or_null(c, &s->rtt_us);
	if (!strcmp(key, "cwnd"))
		return u64_or_null(c, &s->cwnd);
	if (!strcmp(key, "events"))
		return u64_or_null(c, &s->events);
	if (!strcmp(key, "source"))
		return name(c, &s->source, sources, 3);
	if (!strcmp(key, "tracking"))
		return name(c, &s->tracking, trackings, 2);
	if (!strcmp(key, "fallback_reason"))
		return literal(c, "null") ? 0 : str(c, s->why_fallback, sizeof(s->why_fallback));
	if (!strcmp(key, "check"))
		return members(c, check_member, s);
	return skip(c, 1);
}

int probe_sample_parse(const char *text, size_t len, struct probe_sample *s, const char **why)
{
	struct cur c = { .s = text, .end = text + len, .why = NULL };
	int err;

	memset(s, 0, sizeof(*s));
	err = members(&c, sample_member, s);
	ws(&c);
	if (!err && c.s != c.end)
		err = fail(&c, "trailing data");
	if (!err && (!s->source || !s->tracking))
		err = fail(&c, "source or tracking missing");
	if (err && why)
		*why = c.why ? c.why : "malformed sample";
	return err;
}
