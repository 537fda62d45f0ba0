/* SPDX-License-Identifier: MIT */
/*
 * Logging: hm_err/warn/info/dbg, printf-checked, to stderr, one line each:
 * "hybridmig: LEVEL: message". Where stderr is not a terminal (a log file,
 * journald, a pipe) each line starts with its UTC wall-clock time,
 * "2026-12-02T03:45:01.123Z ". Each .c file defines LOG_PREFIX (its module,
 * "mig: ") before including this header; operators do not see it, the
 * debug level (-v -v) shows it. The level is the one piece of global state
 * outside main.c (set once at start-up).
 */
#ifndef HM_LOG_H
#define HM_LOG_H

#include <errno.h>
#include <string.h>
#include "src/util.h"

#ifndef LOG_PREFIX
#define LOG_PREFIX ""
#endif

enum hm_log_level {
	HM_LOG_ERR = 0,
	HM_LOG_WARN = 1,
	HM_LOG_INFO = 2,
	HM_LOG_DBG = 3,
};

/*
 * @mono_ns (CLOCK_MONOTONIC, hm_now_ns) as UTC wall-clock time,
 * "2026-12-02T03:45:01.123Z", into @buf (at least HM_WALL_TIME_LEN bytes).
 */
#define HM_WALL_TIME_LEN 32
void hm_wall_time(uint64_t mono_ns, char *buf, size_t len);

/* Set the most verbose level printed (default HM_LOG_WARN). Not thread-safe: call at start. */
void log_set_level(enum hm_log_level level);
enum hm_log_level log_get_level(void);
void log_print(enum hm_log_level level, const char *prefix, const char *fmt, ...) __printf(3, 4);

#define hm_err(fmt, ...)  log_print(HM_LOG_ERR, LOG_PREFIX, fmt, ##__VA_ARGS__)
#define hm_warn(fmt, ...) log_print(HM_LOG_WARN, LOG_PREFIX, fmt, ##__VA_ARGS__)
#define hm_info(fmt, ...) log_print(HM_LOG_INFO, LOG_PREFIX, fmt, ##__VA_ARGS__)
#define hm_dbg(fmt, ...)  log_print(HM_LOG_DBG, LOG_PREFIX, fmt, ##__VA_ARGS__)
/* Like hm_err, with ": strerror(errno)" appended; errno is preserved. */
#define hm_perror(fmt, ...)                                                                        \
	do {                                                                                       \
		int __e = errno;                                                                   \
		log_print(HM_LOG_ERR, LOG_PREFIX, fmt ": %s", ##__VA_ARGS__, strerror(__e));       \
		errno = __e;                                                                       \
	} while (0)

#endif
