// SPDX-License-Identifier: MIT
#include "src/meter.h"

#include <string.h>

void meter_init(struct meter *m)
{
	memset(m, 0, sizeof(*m));
}

void meter_add(struct meter *m, uint64_t t_ns, uint64_t value)
{
	m->t[m->head] = t_ns;
	m->v[m->head] = value;
	m->head = (m->head + 1) % METER_SAMPLES;
	if (m->n < METER_SAMPLES)
		m->n++;
}

static unsigned int idx(const struct meter *m, unsigned int back)
{
	return (m->head + METER_SAMPLES - 1 - back) % METER_SAMPLES;
}

double meter_rate(const struct meter *m, uint64_t window_ns)
{
	unsigned int newest = idx(m, 0);
	unsigned int oldest;
	unsigned int back = 1;

	if (m->n < 2)
		return 0;
	/* walk back while the span stays within the window (always take one step) */
	while (back + 1 < m->n && m->t[newest] - m->t[idx(m, back + 1)] <= window_ns)
		back++;
	oldest = idx(m, back);
	if (m->t[newest] <= m->t[oldest] || m->v[newest] < m->v[oldest])
		return 0;
	return (double)(m->v[newest] - m->v[oldest]) * 1e9 / (double)(m->t[newest] - m->t[oldest]);
}
