// SPDX-License-Identifier: MIT
#include "src/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

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
	static int stamped = -1; /* a race here writes the same value twice */
	char stamp[HM_WALL_TIME_LEN] = "";
	char line[1024];
	va_list ap;
	int n;

	if (level > log_level)
		return;
	if (stamped < 0)
		stamped = !isatty(STDERR_FILENO);
	if (stamped)
		hm_wall_time(hm_now_ns(), stamp, sizeof(stamp));
	n = snprintf(line, sizeof(line), "%s%shybridmig: %s: %s", stamp, stamped ? " " : "",
		     names[level], log_level >= HM_LOG_DBG ? prefix : "");
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* one write per line so threads do not interleave */
	fprintf(stderr, "%s\n", line);
}

void hm_wall_time(uint64_t mono_ns, char *buf, size_t len)
{
	struct timespec wall;
	uint64_t now = hm_now_ns();
	uint64_t w;
	struct tm tm;
	time_t sec;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &wall);
	w = (uint64_t)wall.tv_sec * NSEC_PER_SEC + (uint64_t)wall.tv_nsec;
	/* the wall clock of the monotonic instant: now, less the time since */
	w -= now > mono_ns ? now - mono_ns : 0;
	sec = (time_t)(w / NSEC_PER_SEC);
	gmtime_r(&sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03lluZ",
		 (unsigned long long)(w % NSEC_PER_SEC / NSEC_PER_MSEC));
}

uint64_t hm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}
