/* SPDX-License-Identifier: MIT */
/*
 * A Prometheus endpoint: `--metrics-listen ADDR:PORT` on run and incoming
 * serves GET /metrics in the text exposition format (version 0.0.4) from
 * the event loop, with libevent's own HTTP server. Read-only, and nothing
 * in it is secret, but it is plain HTTP: bind it to an address only your
 * monitoring reaches. Names follow KubeVirt's kubevirt_vmi_migration_*
 * (hybridmig_migration_data_processed_bytes, ...) so dashboards carry over;
 * docs/metrics.md lists them.
 *
 * Each part of the process that has figures registers a source; a scrape
 * calls them in order on the loop thread. Loop thread only.
 */
#ifndef HM_METRICS_H
#define HM_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "src/util.h"

struct event_base;
struct metrics;
struct metrics_out;

typedef void (*metrics_fn)(void *arg, struct metrics_out *o);

#define METRICS_MAX_SOURCES 4

/* Listen on @addr (HOST:PORT, [IPv6]:PORT). NULL with a reason in @why. */
struct metrics *metrics_new(struct event_base *base, const char *addr, char *why, size_t whylen);
/* Accepts NULL. */
void metrics_free(struct metrics *m);
/* Add a source; -ENOSPC past METRICS_MAX_SOURCES. */
int metrics_add(struct metrics *m, metrics_fn fn, void *arg) __must_check;

/* Writers for sources: a family's # HELP and # TYPE lines, then its samples. */
void metrics_family(struct metrics_out *o, const char *name, const char *type, const char *help);
/* One sample: @labels is "" or the inside of the braces, e.g. `phase="precopy"`. */
void metrics_sample(struct metrics_out *o, const char *name, const char *labels, double v);
/* @key="@value" into @buf, the value escaped as the format wants (\\, \", \n). */
void metrics_label(char *buf, size_t len, const char *key, const char *value);
/* Family and one unlabelled sample. */
void metrics_gauge(struct metrics_out *o, const char *name, const char *help, double v);
/*
 * A histogram family @name from per-bucket counts @count[i] whose upper
 * bounds are @le[i] (the last may be INFINITY), and the sum of observations.
 */
void metrics_histogram(struct metrics_out *o, const char *name, const char *help, const double *le,
		       const uint64_t *count, size_t n, double sum);

/* The exposition of @m's sources as text, for tests: 0 or -ENOMEM; free(*text). */
int metrics_render(struct metrics *m, char **text, size_t *len) __must_check;

#endif
