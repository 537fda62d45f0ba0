// SPDX-License-Identifier: MIT
/* The migration report: JSON members and the human text. */
#include "src/mig.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/json.h"
#include "src/log.h"

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/*
 * The report's members, listed once: mig_report_json writes them and
 * mig_report_from_json reads them back (the CLI gets the report as JSON
 * over the control socket and prints it with mig_report_text). Members
 * computed from others (total, compression ratio, predicted downtime,
 * rounds) are written by hand below.
 */
enum field_kind {
	F_U64,	/* uint64_t as is */
	F_U32,	/* uint32_t as is */
	F_DBL,	/* double as is */
	F_MS,	/* uint64_t ns, shown in ms */
	F_MBPS, /* double bytes/s, shown in Mbit/s */
	F_BOOL, /* bool */
};

struct field {
	const char *key;
	size_t off;
	enum field_kind kind;
	int prec;      /* decimals for F_DBL/F_MS/F_MBPS */
	bool postcopy; /* only present after a post-copy switch */
};

#define FIELD(k, m, kind, prec, pc)                                                                \
	{                                                                                          \
		k, offsetof(struct mig_stats, m), kind, prec, pc                                   \
	}

static const struct field fields[] = {
	FIELD("bytes_wire", bytes_wire, F_U64, 0, false),
	FIELD("bytes_raw", bytes_raw, F_U64, 0, false),
	FIELD("pages_sent", pages_sent, F_U64, 0, false),
	FIELD("zero_pages", zero_pages, F_U64, 0, false),
	FIELD("remaining_pages", remaining, F_U64, 0, false),
	FIELD("bandwidth_mbps", bandwidth, F_MBPS, 1, false),
	FIELD("dirty_rate_pages_per_s", dirty_rate, F_DBL, 0, false),
	FIELD("rtt_ms", rtt_ns, F_MS, 3, false),
	FIELD("send_buffer_bytes", send_buffer, F_U64, 0, false),
	FIELD("send_buffer_capped", send_buffer_capped, F_BOOL, 0, false),
	FIELD("downtime_ms", downtime_ns, F_MS, 3, false),
	FIELD("source_pause_ms", src_pause_ns, F_MS, 3, false),
	FIELD("dest_switch_ms", dst_switch_ns, F_MS, 3, false),
	FIELD("guest_pause_ms", guest_gap_ns, F_MS, 3, false),
	FIELD("work_units_per_s_before", units_before, F_DBL, 0, false),
	FIELD("work_units_per_s_during", units_during, F_DBL, 0, false),
	FIELD("work_units_per_s_after", units_after, F_DBL, 0, false),
	FIELD("postcopy", postcopy, F_BOOL, 0, false),
	FIELD("pages_pushed", pages_pushed, F_U64, 0, true),
	FIELD("pages_requested", pages_requested, F_U64, 0, true),
	FIELD("pages_prefetched", pages_prefetched, F_U64, 0, true),
	FIELD("duplicate_pages", dup_pages, F_U64, 0, true),
	FIELD("remote_faults", remote_faults, F_U64, 0, true),
	FIELD("local_zero_faults", local_zero, F_U64, 0, true),
	FIELD("fault_latency_p50_us", lat_p50_us, F_U64, 0, true),
	FIELD("fault_latency_p90_us", lat_p90_us, F_U64, 0, true),
	FIELD("fault_latency_p99_us", lat_p99_us, F_U64, 0, true),
	FIELD("fault_latency_max_us", lat_max_us, F_U64, 0, true),
	FIELD("vcpu_blocked_ms", blocked_ns, F_MS, 3, true),
	FIELD("last_page_ms", last_page_ns, F_MS, 3, true),
	FIELD("work_units_per_s_postcopy", units_postcopy, F_DBL, 0, true),
	FIELD("reconnects", reconnects, F_U32, 0, false),
	FIELD("fenced", fenced, F_BOOL, 0, false),
};

static void put_field(const struct mig_stats *s, const struct field *f, struct json_out *j)
{
	const char *p = (const char *)s + f->off;

	switch (f->kind) {
	case F_U64:
		json_u64(j, f->key, *(const uint64_t *)p);
		break;
	case F_U32:
		json_u64(j, f->key, *(const uint32_t *)p);
		break;
	case F_DBL:
		json_dbl(j, f->key, *(const double *)p, f->prec);
		break;
	case F_MS:
		json_dbl(j, f->key, ms(*(const uint64_t *)p), f->prec);
		break;
	case F_MBPS:
		json_dbl(j, f->key, *(const double *)p * 8 / 1e6, f->prec);
		break;
	case F_BOOL:
		json_bool(j, f->key, *(const bool *)p);
		break;
	}
}

static void get_field(struct mig_stats *s, const struct field *f, const struct json_field *x)
{
	char *p = (char *)s + f->off;
	double v = x->type == JSON_NUMBER ? x->num : 0;

	switch (f->kind) {
	case F_U64:
		*(uint64_t *)p = v > 0 ? (uint64_t)v : 0;
		break;
	case F_U32:
		*(uint32_t *)p = v > 0 && v < 4294967296.0 ? (uint32_t)v : 0;
		break;
	case F_DBL:
		*(double *)p = v;
		break;
	case F_MS:
		*(uint64_t *)p = v > 0 ? (uint64_t)(v * 1e6) : 0;
		break;
	case F_MBPS:
		*(double *)p = v * 1e6 / 8;
		break;
	case F_BOOL:
		*(bool *)p = x->type == JSON_BOOL && x->b;
		break;
	}
}

/* Remote faults per second of post-copy (switch to last page), 0 if unknown. */
static double faults_per_s(const struct mig_stats *s)
{
	return s->last_page_ns ? (double)s->remote_faults * 1e9 / (double)s->last_page_ns : 0;
}

/* vCPU time blocked on missing pages, in round trips of the link. */
static double blocked_rtts(const struct mig_stats *s)
{
	return s->rtt_ns ? (double)s->blocked_ns / (double)s->rtt_ns : 0;
}

static void put_rounds(const struct mig_stats *s, struct json_out *j)
{
	json_arr_begin(j, "round_pages");
	for (uint32_t i = 0; i < s->rounds && i < MIG_MAX_ROUNDS; i++)
		json_u64(j, NULL, s->round_pages[i]);
	json_arr_end(j);
	json_arr_begin(j, "round_dirty_rate");
	for (uint32_t i = 0; i < s->rounds && i < MIG_MAX_ROUNDS; i++)
		json_dbl(j, NULL, s->round_dirty_rate[i], 0);
	json_arr_end(j);
}

void mig_report_json(const struct mig_stats *s, struct json_out *j)
{
	uint64_t end = s->end_ns ? s->end_ns : hm_now_ns();
	char at[HM_WALL_TIME_LEN];

	json_u64(j, "schema", MIG_JSON_SCHEMA);
	hm_wall_time(s->start_ns, at, sizeof(at));
	json_str(j, "started_at", at);
	if (s->end_ns)
		hm_wall_time(s->end_ns, at, sizeof(at));
	json_str_or_null(j, "ended_at", s->end_ns ? at : NULL);
	json_str(j, "phase", s->phase);
	json_str(j, "dirty_tracking", s->dirty_tracking);
	json_dbl(j, "total_ms", ms(end - s->start_ns), 1);
	json_u64(j, "rounds", s->rounds);
	json_dbl(j, "compression_ratio",
		 s->bytes_wire ? (double)s->bytes_raw / (double)s->bytes_wire : 0, 2);
	json_dbl(j, "predicted_downtime_ms",
		 s->predicted_downtime_ns == UINT64_MAX ? -1 : ms(s->predicted_downtime_ns), 3);
	/* the same keys in every mode: null where they do not apply (docs/json.md) */
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (!fields[i].postcopy || s->postcopy)
			put_field(s, &fields[i], j);
		else
			json_null(j, fields[i].key);
	/* post-copy at distance: how often the guest waited on the network, in RTTs */
	if (s->postcopy) {
		json_dbl(j, "remote_faults_per_s", faults_per_s(s), 1);
		json_dbl(j, "vcpu_blocked_rtts", blocked_rtts(s), 1);
	} else {
		json_null(j, "remote_faults_per_s");
		json_null(j, "vcpu_blocked_rtts");
	}
	put_rounds(s, j);
	json_str_or_null(j, "error", s->err ? s->error : NULL);
	json_str_or_null(j, "failure", s->failure[0] ? s->failure : NULL);
	json_str_or_null(j, "policy_decision", s->decisions ? s->decision : NULL);
	json_str_or_null(j, "policy_reason", s->decisions ? s->policy_reason : NULL);
}

/* A JSON array kept as its text by json_parse_flat: "1,2,3". */
static void get_rounds(const struct json_field *x, uint32_t rounds, uint64_t *u, double *d)
{
	const char *p = x && x->type == JSON_ARRAY ? x->str : "";

	for (uint32_t i = 0; i < rounds && i < MIG_MAX_ROUNDS && *p; i++) {
		char *end;

		if (u)
			u[i] = strtoull(p, &end, 10);
		else
			d[i] = strtod(p, &end);
		if (end == p)
			break;
		p = end + (*end == ',');
	}
}

/* Copy the string member @key into @buf (cut to fit); false when there is none. */
static bool get_str(const struct json_field *f, size_t n, const char *key, char *buf, size_t cap)
{
	const struct json_field *x = json_find(f, n, key);

	if (!x || x->type != JSON_STRING)
		return false;
	snprintf(buf, cap, "%.*s", (int)cap - 1, x->str);
	return true;
}

void mig_report_from_json(struct mig_stats *s, const struct json_field *f, size_t n)
{
	const struct json_field *x;

	memset(s, 0, sizeof(*s));
	s->phase = "";
	get_str(f, n, "dirty_tracking", s->dirty_tracking, sizeof(s->dirty_tracking));
	x = json_find(f, n, "total_ms");
	s->end_ns = x && x->type == JSON_NUMBER && x->num > 0 ? (uint64_t)(x->num * 1e6) : 0;
	x = json_find(f, n, "rounds");
	s->rounds =
	    x && x->type == JSON_NUMBER && x->num > 0 && x->num < 1e9 ? (uint32_t)x->num : 0;
	x = json_find(f, n, "predicted_downtime_ms");
	s->predicted_downtime_ns =
	    !x || x->type != JSON_NUMBER || x->num < 0 ? UINT64_MAX : (uint64_t)(x->num * 1e6);
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		x = json_find(f, n, fields[i].key);
		if (x)
			get_field(s, &fields[i], x);
	}
	get_rounds(json_find(f, n, "round_pages"), s->rounds, s->round_pages, NULL);
	get_rounds(json_find(f, n, "round_dirty_rate"), s->rounds, NULL, s->round_dirty_rate);
	if (get_str(f, n, "error", s->error, sizeof(s->error)))
		s->err = -EIO;
	get_str(f, n, "failure", s->failure, sizeof(s->failure));
	if (get_str(f, n, "policy_decision", s->decision, sizeof(s->decision)))
		s->decisions = 1;
	get_str(f, n, "policy_reason", s->policy_reason, sizeof(s->policy_reason));
}

/* The pause: downtime, its parts and its prediction, and what the guest saw. */
static void text_pause(const struct mig_stats *s, FILE *f)
{
	fprintf(f,
		"  downtime        %.2f ms (source pause %.2f ms, destination switch %.2f "
		"ms, rtt %.3f ms; predicted %.2f ms)\n",
		ms(s->downtime_ns), ms(s->src_pause_ns), ms(s->dst_switch_ns), ms(s->rtt_ns),
		s->predicted_downtime_ns == UINT64_MAX ? -1.0 : ms(s->predicted_downtime_ns));
	fprintf(f, "  guest pause     %.2f ms (longest gap in its progress reports)\n",
		ms(s->guest_gap_ns));
}

/* What post-copy adds to the text report. */
static void text_postcopy(const struct mig_stats *s, FILE *f)
{
	fprintf(f,
		"  post-copy       %llu pages pushed, %llu requested (%llu duplicates, %llu sent "
		"along with them); last page %.1f ms after the switch\n",
		(unsigned long long)s->pages_pushed, (unsigned long long)s->pages_requested,
		(unsigned long long)s->dup_pages, (unsigned long long)s->pages_prefetched,
		ms(s->last_page_ns));
	fprintf(
	    f,
	    "  remote faults   %llu (+%llu zero-filled locally); latency p50 %llu us, p90 %llu us, "
	    "p99 %llu us, max %llu us; %.1f faults/s; vCPUs blocked %.1f ms (%.1f RTTs)\n",
	    (unsigned long long)s->remote_faults, (unsigned long long)s->local_zero,
	    (unsigned long long)s->lat_p50_us, (unsigned long long)s->lat_p90_us,
	    (unsigned long long)s->lat_p99_us, (unsigned long long)s->lat_max_us, faults_per_s(s),
	    ms(s->blocked_ns), blocked_rtts(s));
	fprintf(f, "  guest work/s    during post-copy %.0f\n", s->units_postcopy);
}

void mig_report_text(const struct mig_stats *s, const char *to, FILE *f)
{
	uint64_t end = s->end_ns ? s->end_ns : hm_now_ns();

	/* a failure before the switch-over paused nothing: no downtime, no "after" */
	bool paused = !s->err || s->src_pause_ns;

	/* the reason itself went to stderr (one line): not repeated here */
	fprintf(f, "migration to %s: %s%s%s%s\n", to, s->err ? "FAILED" : "done",
		s->failure[0] ? " (" : "", s->failure, s->failure[0] ? ")" : "");
	fprintf(f, "  total           %.1f ms, %u pre-copy rounds\n", ms(end - s->start_ns),
		s->rounds);
	if (paused)
		text_pause(s, f);
	fprintf(f,
		"  sent            %llu pages (%llu zero), %.1f MiB on the wire for %.1f MiB raw "
		"(ratio %.2f)\n",
		(unsigned long long)s->pages_sent, (unsigned long long)s->zero_pages,
		(double)s->bytes_wire / 1048576.0, (double)s->bytes_raw / 1048576.0,
		s->bytes_wire ? (double)s->bytes_raw / (double)s->bytes_wire : 0);
	fprintf(
	    f,
	    "  bandwidth       %.1f Mbit/s; dirty rate %.0f pages/s (%s); send buffer %.1f MiB%s\n",
	    s->bandwidth * 8 / 1e6, s->dirty_rate, s->dirty_tracking,
	    (double)s->send_buffer / 1048576.0,
	    s->send_buffer_capped ? " (capped by the host: see the warning)" : "");
	fprintf(f, "  rounds (pages)  ");
	for (uint32_t i = 0; i < s->rounds && i < MIG_MAX_ROUNDS; i++)
		fprintf(f, "%s%llu", i ? " " : "", (unsigned long long)s->round_pages[i]);
	if (paused)
		fprintf(f, "\n  guest work/s    before %.0f, during %.0f, after %.0f\n",
			s->units_before, s->units_during, s->units_after);
	else
		fprintf(f, "\n  guest work/s    before %.0f, during %.0f (it runs on here)\n",
			s->units_before, s->units_during);
	if (s->decisions)
		fprintf(f, "  policy          last decision %s: %s\n", s->decision,
			s->policy_reason);
	if (s->postcopy)
		text_postcopy(s, f);
}