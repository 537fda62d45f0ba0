// SPDX-License-Identifier: MIT
/*
 * Post-copy prefetch on the urgent channel (policy.h, "prefetch.c"). At
 * distance every remote fault costs one round trip, and the pusher's jump to
 * the page after a fault reaches the destination only behind what the bulk
 * connection already has in flight (a bandwidth-delay product). So a fault
 * that continues a run is answered with the pages after it too, on the
 * urgent channel, in a window that doubles while the run goes on: a
 * sequential writer faults once per window, 1 + 2 + 4 + 8 + 16 pages in
 * five round trips, then 16 per round trip while the pusher catches up. A
 * fault out of sequence gets its page alone: a random or zipf writer's
 * neighbours are not what it touches next, and they would only delay the
 * next answer.
 */
#include "policy/policy.h"

uint32_t policy_run_window(struct policy_run *r, uint64_t gfn)
{
	bool in_run = r->win && gfn >= r->next && gfn - r->next <= POLICY_RUN_SLACK;

	if (in_run)
		r->win = r->win * 2 > POLICY_RUN_MAX ? POLICY_RUN_MAX : r->win * 2;
	else
		r->win = 1;
	r->next = gfn + r->win;
	return r->win;
}
