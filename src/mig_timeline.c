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
 *
 * The switch-over (stop-and-copy, switch-over: the guest paused here, not
 * yet running there) is downtime: no file I/O then. Its phase ticks are
 * kept in memory and written with the first tick after it; the ones in
 * between are dropped.
 */
#define LOG_PREFIX "mig: "
#include "src/json.h"
#include "src/mig_priv.h"
#include "src/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIG_TICK_NS (100 * NSEC_PER_MSEC)

struct mig_tick {
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
	const struct mig_tick *t = arg;
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

int mig_timeline_init(struct mig *m)
{
	m->held = calloc(MIG_TICKS_HELD, sizeof(*m->held));
	return m->held ? 0 : -ENOMEM;
}

void mig_timeline_free(struct mig *m)
{
	free(m->held);
	m->held = NULL;
	m->nheld = 0;
}

/* The guest is paused here and does not run there yet: downtime. */
static bool in_switch(const struct mig_stats *s)
{
	return s->phase && (!strcmp(s->phase, "stop-and-copy") || !strcmp(s->phase, "switch-over"));
}

static void take(struct mig *m, struct mig_tick *t, uint64_t now)
{
	t->now = now;
	mig_snapshot(m, &t->s);
	t->cursor = __atomic_load_n(&m->cursor, __ATOMIC_ACQUIRE);
	t->fenced = m->fenced;
	/* on the source until the fence; then what the destination last reported */
	t->units_known = !t->fenced || t->s.dst_units_known;
	t->units = t->fenced ? t->s.dst_units : devwin_units(&m->vm->dw);
}

static void flush(struct mig *m)
{
	for (unsigned int i = 0; i < m->nheld; i++)
		mig_record_line(m, fill_tick, "tick", &m->held[i]);
	m->nheld = 0;
}

void mig_timeline_tick(struct mig *m, bool force)
{
	struct mig_tick t;
	uint64_t now;

	if (!m->record)
		return;
	now = hm_now_ns();
	if (!force && now - m->tick_ns < MIG_TICK_NS)
		return;
	m->tick_ns = now;
	take(m, &t, now);
	if (in_switch(&t.s) && m->held) {
		if (force && m->nheld < MIG_TICKS_HELD)
			m->held[m->nheld++] = t;
		return;
	}
	flush(m);
	mig_record_line(m, fill_tick, "tick", &t);
}

void mig_timeline_end(struct mig *m)
{
	struct mig_tick t;

	if (!m->record)
		return;
	take(m, &t, hm_now_ns());
	flush(m);
	mig_record_line(m, fill_tick, "tick", &t);
}
