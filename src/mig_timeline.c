// SPDX-License-Identifier: MIT
/*
 * The migration's timeline in its recording (migrate --record): a "tick"
 * line about ten times a second, and at every change of phase, with the
 * cumulative counts a plot needs — bytes on the wire, pages sent, pushed
 * and requested, pages still queued, the pusher's position, pages still
 * owed, the guest's work units wherever it runs, the destination's faults. Rates are differences
 * between ticks; `make bench` draws them (docs/json.md has the keys).
 *
 * Written by the session thread only, beside the policy's lines: after
 * each page batch (rate-limited here), at each phase and at the end. While
 * the session thread waits for the destination (post-copy's last answers)
 * no tick is written; the next one carries the counts on.
 */
#define LOG_PREFIX "mig: "
#include "src/json.h"
#include "src/mig_priv.h"
#include "src/vm.h"

#define MIG_TICK_NS (100 * NSEC_PER_MSEC)

struct tick {
	struct mig_stats s;
	uint64_t now;
	uint64_t cursor;
	bool fenced;
	bool units_known;
	uint64_t units;
};

static void opt_u64(struct json_out *j, const char *key, bool known, uint64_t v)
{
	if (known)
		json_u64(j, key, v);
	else
		json_null(j, key);
}

static void fill_tick(struct json_out *j, const void *arg)
{
	const struct tick *t = arg;
	const struct mig_stats *s = &t->s;

	json_dbl(j, "t_s", (double)(t->now - s->start_ns) / 1e9, 3);
	json_str(j, "phase", s->phase ? s->phase : "");
	json_u64(j, "round", s->rounds);
	json_u64(j, "bytes_wire", s->bytes_wire);
	json_u64(j, "pages_sent", s->pages_sent);
	json_u64(j, "pages_pushed", s->pages_pushed);
	json_u64(j, "pages_requested", s->pages_requested);
	json_u64(j, "remaining_pages", s->remaining);
	opt_u64(j, "pusher_gfn", s->postcopy, t->cursor);
	opt_u64(j, "pages_owed", s->postcopy, s->remaining);
	opt_u64(j, "guest_units", t->units_known, t->units);
	json_str(j, "guest_on", t->fenced ? "destination" : "source");
	opt_u64(j, "remote_faults", s->postcopy, s->remote_faults);
}

void mig_timeline_tick(struct mig *m, bool force)
{
	struct tick t;

	if (!m->record)
		return;
	t.now = hm_now_ns();
	if (!force && t.now - m->tick_ns < MIG_TICK_NS)
		return;
	m->tick_ns = t.now;
	mig_snapshot(m, &t.s);
	t.cursor = __atomic_load_n(&m->cursor, __ATOMIC_ACQUIRE);
	t.fenced = m->fenced;
	/* on the source until the fence; then what the destination last reported */
	t.units_known = !t.fenced || t.s.dst_units_known;
	t.units = t.fenced ? t.s.dst_units : devwin_units(&m->vm->dw);
	mig_record_line(m, fill_tick, "tick", &t);
}
