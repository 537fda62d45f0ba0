// SPDX-License-Identifier: MIT
#define LOG_PREFIX "inject: "
#include "src/inject.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "src/log.h"

/* The ACTION of @point in @spec ("P:A[:MS],P:A..."), its index, or NULL. */
static const char *find(const char *spec, const char *point, unsigned int *idx)
{
	size_t n = strlen(point);

	for (unsigned int i = 0; spec && *spec; i++) {
		if (!strncmp(spec, point, n) && spec[n] == ':') {
			*idx = i;
			return spec + n + 1;
		}
		spec = strchr(spec, ',');
		spec = spec ? spec + 1 : NULL;
	}
	return NULL;
}

enum inject_action inject_at(const char *point)
{
	/* test-only: which points have fired is the one piece of process state here */
	static unsigned int fired;
	unsigned int idx = 0;
	const char *act = find(getenv("HYBRIDMIG_INJECT"), point, &idx);
	long ms = 3000;

	if (!act || idx >= 32 ||
	    (__atomic_fetch_or(&fired, 1u << idx, __ATOMIC_ACQ_REL) & (1u << idx)))
		return INJECT_NONE;
	hm_warn("injected failure at %s: %.*s", point, (int)strcspn(act, ","), act);
	if (!strncmp(act, "exit", 4)) {
		fflush(NULL);
		_exit(9);
	}
	if (!strncmp(act, "stall", 5)) {
		struct timespec ts;

		if (act[5] == ':')
			ms = strtol(act + 6, NULL, 10);
		ts = (struct timespec){ ms / 1000, (ms % 1000) * 1000000 };
		nanosleep(&ts, NULL);
		return INJECT_NONE;
	}
	if (!strncmp(act, "cut", 3))
		return INJECT_CUT;
	return !strncmp(act, "skip", 4) ? INJECT_SKIP : INJECT_NONE;
}
