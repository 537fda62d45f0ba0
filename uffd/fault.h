/* SPDX-License-Identifier: MIT */
/*
 * Post-copy on the destination: the fault thread and page placement.
 *
 * The fault thread polls (uffd, quit eventfd), reads whole uffd_msg
 * records, rounds each address down to its page, and for a page nobody
 * asked for yet either places a zero page at once (the source said it
 * holds nothing) or hands a request to @request — once per page: a page
 * requested or received is never requested again. Pages arrive through
 * fault_place() from any receiving thread: UFFDIO_COPY (or ZEROPAGE),
 * which wakes every vCPU or VMM thread waiting on it; EEXIST is a page
 * already there. The fault thread never touches guest memory itself, so
 * it cannot block on a missing page.
 */
#ifndef HM_FAULT_H
#define HM_FAULT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "src/bitmap.h"
#include "src/util.h"
#include "uffd/uffd.h"

struct guest_mem;

/* Ask the source for page @gfn (fault thread). Non-zero return: the link is gone. */
typedef int (*fault_request_fn)(void *arg, uint64_t gfn);

#define FAULT_LAT_MAX (1u << 20) /* latencies kept for percentiles */
/*
 * Request latencies as a histogram of powers of two microseconds, as
 * QEMU's postcopy-latency-dist: bucket 0 holds [0, 1) us, bucket i
 * [2^(i-1), 2^i) us, the last everything from 2^(FAULT_HIST_BUCKETS-2) us.
 */
#define FAULT_HIST_BUCKETS 24

/* Updated with atomic adds by the fault path, read with atomic loads anywhere. */
struct fault_hist {
	uint64_t count[FAULT_HIST_BUCKETS];
	uint64_t sum_us;
};

struct fault_stats {
	uint64_t faults;       /* fault messages read */
	uint64_t remote;       /* pages requested from the source */
	uint64_t local_zero;   /* faults on pages the source does not have: zero-filled here */
	uint64_t placed;       /* pages placed (pushed, requested or zero) */
	uint64_t duplicates;   /* pages that arrived after they were already here */
	uint64_t blocked_ns;   /* sum of fault -> wake over requested pages */
	uint64_t last_page_ns; /* when the last needed page arrived */
};

struct fault {
	struct uffd u;
	struct guest_mem *gm;	     /* not owned */
	const struct bitmap *needed; /* not owned: pages the source will send */
	uint64_t nr_needed;
	uint64_t needed_placed; /* needed pages here (under lock) */
	bool inited;		/* fault_init ran: fault_exit has work */
	struct bitmap requested;
	struct bitmap received;
	uint64_t *req_ns; /* per page: when it was requested, 0 = not */
	fault_request_fn request;
	void *arg;
	int quit_fd;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock; /* guards stats and lat */
	struct fault_stats st;
	uint32_t *lat_us;	 /* request latencies (fault -> placed), us */
	struct fault_hist *hist; /* not owned, or NULL */
	uint32_t nr_lat;
	int err; /* the fault thread's failure, -errno */
};

/*
 * Register @gm's RAM with userfaultfd (MISSING) — call before any vCPU
 * runs. @needed marks the pages to expect from the source; every other
 * page faults in as zero. Returns 0 or -errno (-ENOTSUP: no usable uffd).
 */
int fault_init(struct fault *f, struct guest_mem *gm, const struct bitmap *needed,
	       fault_request_fn request, void *arg) __must_check;
int fault_start(struct fault *f) __must_check;
/* Place page @gfn from @data (NULL: zero page). Any thread. */
int fault_place(struct fault *f, uint64_t gfn, const void *data) __must_check;
/* True once every needed page is here. */
bool fault_complete(struct fault *f);
/* Stop the thread, unregister, free. Accepts a zeroed object. */
void fault_exit(struct fault *f);
void fault_get_stats(struct fault *f, struct fault_stats *st);
/* The histogram bucket of a latency of @us microseconds (FAULT_HIST_BUCKETS). */
unsigned int fault_hist_bucket(uint64_t us);
/* Percentile @p (0..100) of the request latencies in microseconds, 0 if none. */
uint32_t fault_latency_us(struct fault *f, double p);

#endif
