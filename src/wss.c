// SPDX-License-Identifier: MIT
/* The working-set curve's bookkeeping (src/wss.h): pure functions. */
#include "src/wss.h"

#include <string.h>
#include "src/util.h"

const uint32_t wss_windows_ms[WSS_NWIN] = { 100, 250, 500, 1000, 2000, 5000, 10000, 30000 };

uint64_t wss_prefix(const uint64_t *hist, uint32_t nticks, uint64_t tick_ns, uint64_t span_ns)
{
	uint64_t whole = span_ns / tick_ns;
	uint64_t part = span_ns % tick_ns;
	uint64_t sum = 0;

	if (whole >= nticks) {
		whole = nticks;
		part = 0;
	}
	for (uint64_t i = 0; i < whole; i++)
		sum += hist[i];
	/* the last tick's writes are spread evenly over it, as far as we know */
	if (part)
		sum += (uint64_t)((double)hist[whole] * (double)part / (double)tick_ns + 0.5);
	return sum;
}

uint32_t wss_update(struct wss_curve *c, const uint64_t *hist, uint32_t nticks, uint64_t tick_ns,
		    uint64_t covered_ns, uint64_t now_ns)
{
	uint32_t n = 0;

	for (uint32_t k = 0; k < WSS_NWIN; k++) {
		uint64_t w = (uint64_t)wss_windows_ms[k] * NSEC_PER_MSEC;

		if (w > covered_ns)
			break;
		c->pages[k] = wss_prefix(hist, nticks, tick_ns, w);
		c->have[k] = true;
		c->at_ns[k] = now_ns;
		n++;
	}
	return n;
}

uint32_t wss_nwin(const struct wss_curve *c)
{
	uint32_t k = 0;

	while (k < WSS_NWIN && c->have[k])
		k++;
	return k;
}

double wss_rate(const struct wss_curve *c)
{
	uint32_t n = wss_nwin(c);

	if (n > 3)
		return (double)c->pages[3];
	if (!n)
		return 0;
	return (double)c->pages[n - 1] * 1000.0 / (double)wss_windows_ms[n - 1];
}

uint32_t wss_tick(uint64_t since_ns, uint64_t tick_ns, uint32_t nticks)
{
	uint64_t t = since_ns / tick_ns;

	return t >= nticks ? nticks - 1 : (uint32_t)t;
}

/* Insert (@region, @pages) into the sorted top list @out of @n (at most @max) entries. */
static uint32_t top_insert(struct wss_region *out, uint32_t n, uint32_t max, uint64_t region,
			   uint64_t pages)
{
	uint32_t i = n < max ? n : max - 1;

	if (n == max && out[max - 1].pages >= pages)
		return n;
	while (i > 0 && out[i - 1].pages < pages) {
		out[i] = out[i - 1];
		i--;
	}
	out[i].region = region;
	out[i].pages = pages;
	return n < max ? n + 1 : n;
}

uint32_t wss_hot(const uint64_t *words, uint64_t nwords, struct wss_region *out, uint32_t max)
{
	/* one region is 512 pages: 8 words */
	const uint64_t per = (1ULL << WSS_REGION_SHIFT) / 64;
	uint32_t n = 0;

	if (!max)
		return 0;
	for (uint64_t r = 0; r * per < nwords; r++) {
		uint64_t pages = 0;

		for (uint64_t i = r * per; i < (r + 1) * per && i < nwords; i++)
			pages += (uint64_t)__builtin_popcountll(words[i]);
		if (pages)
			n = top_insert(out, n, max, r, pages);
	}
	return n;
}

double wss_locality(const uint64_t *words, uint64_t nwords)
{
	const uint64_t per = (1ULL << WSS_REGION_SHIFT) / 64;
	uint64_t pages = 0, adj = 0, regions = 0, carry = 0;
	double a, d;

	for (uint64_t r = 0; r * per < nwords; r++) {
		uint64_t in_region = 0;

		for (uint64_t i = r * per; i < (r + 1) * per && i < nwords; i++) {
			uint64_t w = words[i];

			in_region += (uint64_t)__builtin_popcountll(w);
			/* bit k and bit k-1 both set, across word boundaries */
			adj += (uint64_t)__builtin_popcountll(w & ((w << 1) | carry));
			carry = w >> 63;
		}
		pages += in_region;
		regions += in_region != 0;
	}
	if (pages < WSS_LOCALITY_MIN)
		return 0;
	a = (double)adj / (double)pages;
	d = (double)pages / (double)(regions << WSS_REGION_SHIFT);
	if (d >= 0.99)
		return a;
	a = (a - d) / (1 - d);
	return a < 0 ? 0 : a > 1 ? 1 : a;
}
