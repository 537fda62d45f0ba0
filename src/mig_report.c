// SPDX-License-Identifier: MIT
/* The migration report: JSON members and the human text. */
#include "src/mig.h"

#include <stdio.h>
#include "src/json.h"
#include "src/log.h"

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

void mig_report_json(const struct mig_stats *s, struct json_out *j)
{
	uint64_t end = s->end_ns ? s->end_ns : hm_now_ns();

	json_str(j, "phase", s->phase);
	json_dbl(j, "total_ms", ms(end - s->start_ns), 1);
	json_u64(j, "rounds", s->rounds);
	json_u64(j, "bytes_wire", s->bytes_wire);
	json_u64(j, "bytes_raw", s->bytes_raw);
	json_u64(j, "pages_sent", s->pages_sent);
	json_u64(j, "zero_pages", s->zero_pages);
	json_u64(j, "remaining_pages", s->remaining);
	json_dbl(j, "compression_ratio",
		 s->bytes_wire ? (double)s->bytes_raw / (double)s->bytes_wire : 0, 2);
	json_dbl(j, "bandwidth_mbps", s->bandwidth * 8 / 1e6, 1);
	json_dbl(j, "dirty_rate_pages_per_s", s->dirty_rate, 0);
	json_dbl(j, "rtt_ms", ms(s->rtt_ns), 3);
	json_dbl(j, "predicted_downtime_ms",
		 s->predicted_downtime_ns == UINT64_MAX ? -1 : ms(s->predicted_downtime_ns), 3);
	json_dbl(j, "downtime_ms", ms(s->downtime_ns), 3);
	json_dbl(j, "source_pause_ms", ms(s->src_pause_ns), 3);
	json_dbl(j, "dest_switch_ms", ms(s->dst_switch_ns), 3);
	json_dbl(j, "guest_pause_ms", ms(s->guest_gap_ns), 3);
	json_dbl(j, "work_units_per_s_before", s->units_before, 0);
	json_dbl(j, "work_units_per_s_during", s->units_during, 0);
	json_dbl(j, "work_units_per_s_after", s->units_after, 0);
	json_bool(j, "postcopy", s->postcopy);
	if (s->postcopy) {
		json_u64(j, "pages_pushed", s->pages_pushed);
		json_u64(j, "pages_requested", s->pages_requested);
		json_u64(j, "duplicate_pages", s->dup_pages);
		json_u64(j, "remote_faults", s->remote_faults);
		json_u64(j, "local_zero_faults", s->local_zero);
		json_u64(j, "fault_latency_p50_us", s->lat_p50_us);
		json_u64(j, "fault_latency_p90_us", s->lat_p90_us);
		json_u64(j, "fault_latency_p99_us", s->lat_p99_us);
		json_u64(j, "fault_latency_max_us", s->lat_max_us);
		json_dbl(j, "vcpu_blocked_ms", ms(s->blocked_ns), 3);
		json_dbl(j, "last_page_ms", ms(s->last_page_ns), 3);
		json_dbl(j, "work_units_per_s_postcopy", s->units_postcopy, 0);
	}
	json_u64(j, "reconnects", s->reconnects);
	json_bool(j, "fenced", s->fenced);
	json_arr_begin(j, "round_pages");
	for (uint32_t i = 0; i < s->rounds && i < MIG_MAX_ROUNDS; i++)
		json_u64(j, NULL, s->round_pages[i]);
	json_arr_end(j);
	json_arr_begin(j, "round_dirty_rate");
	for (uint32_t i = 0; i < s->rounds && i < MIG_MAX_ROUNDS; i++)
		json_dbl(j, NULL, s->round_dirty_rate[i], 0);
	json_arr_end(j);
	if (s->err)
		json_str(j, "error", s->error);
}

void mig_report_text(const struct mig_stats *s, const char *to, FILE *f)
{
	uint64_t end = s->end_ns ? s->end_ns : hm_now_ns();

	fprintf(f, "migration to %s: %s\n", to, s->err ? "FAILED" : "done");
	if (s->err)
		fprintf(f, "  error           %s\n", s->error);
	fprintf(f, "  total           %.1f ms, %u pre-copy rounds\n", ms(end - s->start_ns),
		s->rounds);
	fprintf(f,
		"  downtime        %.2f ms (source pause %.2f ms, destination switch %.2f ms, "
		"rtt %.3f ms; predicted %.2f ms)\n",
		ms(s->downtime_ns), ms(s->src_pause_ns), ms(s->dst_switch_ns), ms(s->rtt_ns),
		s->predicted_downtime_ns == UINT64_MAX ? -1.0 : ms(s->predicted_downtime_ns));
	fprintf(f, "  guest pause     %.2f ms (longest gap in its progress reports)\n",
		ms(s->guest_gap_ns));
	fprintf(f,
		"  sent            %llu pages (%llu zero), %.1f MiB on the wire for %.1f MiB raw "
		"(ratio %.2f)\n",
		(unsigned long long)s->pages_sent, (unsigned long long)s->zero_pages,
		(double)s->bytes_wire / 1048576.0, (double)s->bytes_raw / 1048576.0,
		s->bytes_wire ? (double)s->bytes_raw / (double)s->bytes_wire : 0);
	fprintf(f, "  bandwidth       %.1f Mbit/s; dirty rate %.0f pages/s\n",
		s->bandwidth * 8 / 1e6, s->dirty_rate);
	fprintf(f, "  rounds (pages)  ");
	for (uint32_t i = 0; i < s->rounds && i < MIG_MAX_ROUNDS; i++)
		fprintf(f, "%s%llu", i ? " " : "", (unsigned long long)s->round_pages[i]);
	fprintf(f, "\n  guest work/s    before %.0f, during %.0f, after %.0f\n", s->units_before,
		s->units_during, s->units_after);
	if (!s->postcopy)
		return;
	fprintf(f,
		"  post-copy       %llu pages pushed, %llu requested (%llu duplicates); last page "
		"%.1f ms after the switch\n",
		(unsigned long long)s->pages_pushed, (unsigned long long)s->pages_requested,
		(unsigned long long)s->dup_pages, ms(s->last_page_ns));
	fprintf(
	    f,
	    "  remote faults   %llu (+%llu zero-filled locally); latency p50 %llu us, p90 %llu us, "
	    "p99 %llu us, max %llu us; vCPUs blocked %.1f ms\n",
	    (unsigned long long)s->remote_faults, (unsigned long long)s->local_zero,
	    (unsigned long long)s->lat_p50_us, (unsigned long long)s->lat_p90_us,
	    (unsigned long long)s->lat_p99_us, (unsigned long long)s->lat_max_us,
	    ms(s->blocked_ns));
	fprintf(f, "  guest work/s    during post-copy %.0f\n", s->units_postcopy);
}
