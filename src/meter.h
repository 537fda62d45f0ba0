/* SPDX-License-Identifier: MIT */
/*
 * Rate of a growing counter (guest work units, I/O bytes) from periodic
 * samples: keeps the last METER_SAMPLES (time, value) pairs. Pure; the
 * caller supplies time and serialises access.
 */
#ifndef HM_METER_H
#define HM_METER_H

#include <stdint.h>

#define METER_SAMPLES 64

struct meter {
	uint64_t t[METER_SAMPLES]; /* ns */
	uint64_t v[METER_SAMPLES];
	unsigned int head; /* next slot */
	unsigned int n;	   /* valid samples */
};

void meter_init(struct meter *m);
void meter_add(struct meter *m, uint64_t t_ns, uint64_t value);
/*
 * Per-second rate over the newest samples spanning at most @window_ns
 * (at least two samples). 0 with fewer than two samples.
 */
double meter_rate(const struct meter *m, uint64_t window_ns);

#endif
