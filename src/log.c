// SPDX-License-Identifier: MIT
#include "src/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum hm_log_level log_level = HM_LOG_WARN;

void log_set_level(enum hm_log_level level)
{
	log_level = level;
}

enum hm_log_level log_get_level(void)
{
	return log_level;
}

void log_print(enum hm_log_level level, const char *prefix, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[1024];
	va_list ap;
	int n;

	if (level > log_level)
		return;
	n = snprintf(line, sizeof(line), "hybridmig: %s%s%s", names[level], ": ", prefix);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* one write per line so threads do not interleave */
	fprintf(stderr, "%s\n", line);
}

uint64_t hm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}
