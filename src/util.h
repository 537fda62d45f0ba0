/* SPDX-License-Identifier: MIT */
/* Small helpers with no state: container_of, ARRAY_SIZE, min/max, attributes. */
#ifndef HM_UTIL_H
#define HM_UTIL_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a)			(sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define min_t(t, a, b)			((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define max_t(t, a, b)			((t)(a) > (t)(b) ? (t)(a) : (t)(b))
#define DIV_ROUND_UP(n, d)		(((n) + (d)-1) / (d))
#define ALIGN_UP(x, a)			(((x) + (a)-1) & ~((__typeof__(x))(a)-1))

#define __must_check   __attribute__((warn_unused_result))
#define __printf(a, b) __attribute__((format(printf, a, b)))
#define __unused       __attribute__((unused))

#define NSEC_PER_SEC  1000000000ULL
#define NSEC_PER_MSEC 1000000ULL

/* Monotonic clock in nanoseconds. */
uint64_t hm_now_ns(void);

#endif
