/* SPDX-License-Identifier: MIT */
/*
 * The migration wire protocol: fixed-size little-endian frames, encoded
 * and decoded without I/O or allocation. Every frame is a 16-byte header
 * (type, flags, payload length) and a payload whose layout the type fixes.
 *
 * Conversation on the bulk channel (source S, destination D), inside TLS:
 *   S: HELLO            D: HELLO           (magic, version, channel, secret)
 *   S: VMDESC           D: ACCEPT | REFUSE (pre-migration checks)
 *   S: PAGES*, ROUND*   (pre-copy rounds)
 *   S: [PAGEMAP*] PAGES*, VMSTATE, SWITCH  (stop-and-copy; map for post-copy)
 *   D: READY            (state loaded; D waits and does not run the guest)
 *   S: GO               (S has fenced itself: from here D owns the guest)
 *   D: STARTED          (vCPUs run on D)
 *   post-copy: S: PAGES* DONE   D: COMPLETE (every page is on D)
 *   D: AFTER (rate after)
 *   either side: ERROR  (then close)
 * The urgent channel (post-copy) carries REQ from D and PAGES answers,
 * and PROGRESS from D about ten times a second while pages arrive on the
 * bulk channel (for the source's timeline).
 * A reconnection (HELLO with PROTO_HELLO_RESUME and the session's secret)
 * is answered with STATUS: where D stands, so S knows whether to send GO
 * again, and, in post-copy, D's PAGEMAP of the pages it holds and ACCEPT.
 * docs/switchover.md has the state machine and the outcome of each failure.
 *
 * The decoder trusts nothing: unknown types, lengths that do not match the
 * type, page numbers out of range, counts and compressed sizes are all
 * rejected with -EBADMSG (or -EPROTO for magic/version) and a reason.
 */
#ifndef HM_PROTO_H
#define HM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "src/util.h"

#define PROTO_MAGIC 0x4749484d4d48ULL /* "HMMHIG" */
/*
 * 3: an answer on the urgent channel may carry up to PROTO_URGENT_MAX pages
 * 4: the destination reports its guest's progress (PROGRESS) during post-copy
 */
#define PROTO_VERSION	 4
#define PROTO_HDR_SIZE	 16
#define PROTO_BATCH_MAX	 64 /* pages in one PAGES frame */
#define PROTO_URGENT_MAX 16 /* pages in one answer to a post-copy fault */
#define PROTO_PAGE_SIZE	 4096
#define PROTO_ZERO_PAGE	 (1ULL << 63) /* gfn flag: all-zero page, no data */
#define PROTO_PAGES_HDR	 16
/* largest payload: a full uncompressed batch, or the largest VMSTATE */
#define PROTO_MAX_PAYLOAD (PROTO_PAGES_HDR + PROTO_BATCH_MAX * (8 + PROTO_PAGE_SIZE))
#define PROTO_VMSTATE_MAX (256 * 1024)
/* receive buffers hold any frame */
#define PROTO_FRAME_MAX                                                                            \
	(PROTO_MAX_PAYLOAD > PROTO_VMSTATE_MAX ? PROTO_MAX_PAYLOAD : PROTO_VMSTATE_MAX)
#define PROTO_MSG_MAX  240
#define PROTO_SPEC_MAX 256

enum proto_type {
	PROTO_HELLO = 1,
	PROTO_VMDESC = 2,
	PROTO_ACCEPT = 3,
	PROTO_REFUSE = 4,
	PROTO_PAGES = 5,
	PROTO_ROUND = 6,
	PROTO_VMSTATE = 7,
	PROTO_SWITCH = 8,
	PROTO_STARTED = 9,
	PROTO_AFTER = 10,
	PROTO_ERROR = 11,
	PROTO_REQ = 12,	     /* urgent channel: page request (post-copy) */
	PROTO_PAGEMAP = 13,  /* post-copy: which pages the source still holds */
	PROTO_DONE = 14,     /* post-copy: every page has been sent */
	PROTO_COMPLETE = 15, /* post-copy: every page is on the destination */
	PROTO_READY = 16,    /* destination: state loaded, waiting for GO */
	PROTO_GO = 17,	     /* source: fenced; the destination may run the guest */
	PROTO_STATUS = 18,   /* destination, on a resumed session: where it stands */
	PROTO_PROGRESS = 19, /* urgent channel, post-copy: the destination's guest and faults */
	PROTO_TYPE_MAX = 20,
};

enum proto_channel {
	PROTO_CH_BULK = 0,
	PROTO_CH_URGENT = 1,
};

#define PROTO_PAGES_LZ4	      0x1 /* PAGES flags: data is one lz4 block */
#define PROTO_SWITCH_POSTCOPY 0x1 /* SWITCH flags: run now, pages follow */

/* PAGEMAP: a run of the source's page bitmap */
#define PROTO_PAGEMAP_HDR      16
#define PROTO_PAGEMAP_MAX_BITS (8ULL * 65536)
struct proto_pagemap {
	uint64_t first;	     /* gfn of bit 0, a multiple of 64 */
	uint32_t nbits;	     /* a multiple of 64, at most PROTO_PAGEMAP_MAX_BITS */
	const uint8_t *bits; /* nbits / 8 bytes, little-endian 64-bit words */
};

/* COMPLETE: the destination's post-copy figures */
struct proto_complete {
	uint64_t remote_faults;
	uint64_t local_zero;
	uint64_t duplicates;
	uint64_t blocked_ns;
	uint64_t last_page_ns; /* vCPUs running -> last page placed */
	uint64_t lat_p50_us;
	uint64_t lat_p90_us;
	uint64_t lat_p99_us;
	uint64_t lat_max_us;
	uint64_t units_per_s; /* guest work units/s while pages were arriving */
};
#define PROTO_COMPLETE_SIZE 80

/* PROGRESS: the destination's view during post-copy (cumulative counts). */
#define PROTO_UNITS_UNKNOWN UINT64_MAX /* the guest has not reported on every vCPU yet */
struct proto_progress {
	uint64_t units;		/* the guest's work units, or PROTO_UNITS_UNKNOWN */
	uint64_t remote_faults; /* faults sent to the source */
	uint64_t pages_placed;	/* pages received and placed, either channel */
	uint64_t blocked_ns;	/* vCPU time blocked on missing pages */
};
#define PROTO_PROGRESS_SIZE 32

struct proto_hdr {
	uint32_t type;
	uint32_t flags;
	uint64_t len; /* payload bytes */
};

#define PROTO_SECRET_SIZE  16  /* 128-bit random session secret */
#define PROTO_HELLO_RESUME 0x1 /* hello flags: reconnection of a known session */
struct proto_hello {
	uint64_t magic;
	uint32_t version;
	uint32_t channel;
	uint32_t flags;
	uint8_t secret[PROTO_SECRET_SIZE]; /* chosen by the source, checked on reconnection */
};
#define PROTO_HELLO_SIZE 40

/* READY: the destination loaded the state and waits for GO */
struct proto_ready {
	uint64_t restore_ns; /* SWITCH read -> state loaded */
};
#define PROTO_READY_SIZE 8

/* STATUS: where the destination stands when a session is resumed */
enum proto_dst_phase {
	PROTO_DST_RECEIVING = 1, /* before READY: nothing runs here */
	PROTO_DST_WAIT_GO = 2,	 /* READY sent, GO not received: the guest does not run */
	PROTO_DST_RUNNING = 3,	 /* GO received: the guest runs here */
};
struct proto_status {
	uint32_t phase;	  /* enum proto_dst_phase */
	uint64_t missing; /* post-copy: pages still owed to the destination */
};
#define PROTO_STATUS_SIZE 16

/* CPUID feature words the guest was given; the destination must offer each bit. */
#define PROTO_CPUID_WORDS 8
struct proto_vmdesc {
	uint64_t mem_bytes;
	uint32_t nr_vcpus;
	uint32_t xsave_size;
	uint64_t tsc_khz;
	uint32_t cpuid[PROTO_CPUID_WORDS];
	char spec[PROTO_SPEC_MAX]; /* guest spec, NUL-terminated */
	uint64_t resident_bytes;   /* memory the guest has touched: what the destination needs */
};
#define PROTO_VMDESC_SIZE (8 + 4 + 4 + 8 + 4 * PROTO_CPUID_WORDS + PROTO_SPEC_MAX + 8)

/* REFUSE and ERROR */
#define PROTO_ERRNO_MAX 4095 /* codes are errno values, 1..4095 */
struct proto_error {
	uint32_t code; /* errno value, checked to be 1..PROTO_ERRNO_MAX */
	char msg[PROTO_MSG_MAX];
};
#define PROTO_ERROR_SIZE (8 + PROTO_MSG_MAX)

struct proto_round {
	uint32_t round;	     /* rounds completed, this one included: 1 after the first pass */
	uint64_t pages;	     /* pages this round */
	uint64_t dirty_rate; /* pages/s seen */
};
#define PROTO_ROUND_SIZE 24

struct proto_started {
	uint64_t switch_to_run_ns; /* destination: SWITCH read -> vCPUs running */
	uint64_t restore_ns;	   /* of which restoring state */
};
#define PROTO_STARTED_SIZE 16

struct proto_after {
	uint64_t units_per_s;	  /* guest work units/s on the destination, first second */
	uint64_t first_report_ns; /* vCPUs running -> first progress report */
};
#define PROTO_AFTER_SIZE 16

/* A decoded PAGES frame; pointers point into the payload buffer. */
struct proto_pages {
	uint32_t count;
	uint32_t flags;
	uint32_t nonzero;    /* pages with data */
	uint32_t raw_len;    /* nonzero * 4096 */
	uint32_t data_len;   /* bytes of data on the wire */
	const uint8_t *gfns; /* count little-endian u64, PROTO_ZERO_PAGE flag */
	const uint8_t *data;
};

/* ---- header ---- */
void proto_hdr_encode(uint8_t out[PROTO_HDR_SIZE], uint32_t type, uint32_t flags, uint64_t len);
/* Known type and a payload length that type allows. -EBADMSG otherwise. */
int proto_hdr_decode(const uint8_t in[PROTO_HDR_SIZE], struct proto_hdr *h,
		     const char **why) __must_check;

/* ---- fixed messages: encode into @out (size given by the _SIZE constant) ---- */
void proto_hello_encode(uint8_t *out, const struct proto_hello *m);
/* -EPROTO for a wrong magic or version. */
int proto_hello_decode(const uint8_t *in, size_t len, struct proto_hello *m,
		       const char **why) __must_check;
void proto_vmdesc_encode(uint8_t *out, const struct proto_vmdesc *m);
int proto_vmdesc_decode(const uint8_t *in, size_t len, struct proto_vmdesc *m,
			const char **why) __must_check;
void proto_error_encode(uint8_t *out, uint32_t code, const char *msg);
int proto_error_decode(const uint8_t *in, size_t len, struct proto_error *m,
		       const char **why) __must_check;
void proto_round_encode(uint8_t *out, const struct proto_round *m);
int proto_round_decode(const uint8_t *in, size_t len, struct proto_round *m,
		       const char **why) __must_check;
void proto_started_encode(uint8_t *out, const struct proto_started *m);
int proto_started_decode(const uint8_t *in, size_t len, struct proto_started *m,
			 const char **why) __must_check;
void proto_after_encode(uint8_t *out, const struct proto_after *m);
int proto_after_decode(const uint8_t *in, size_t len, struct proto_after *m,
		       const char **why) __must_check;

void proto_ready_encode(uint8_t *out, const struct proto_ready *m);
int proto_ready_decode(const uint8_t *in, size_t len, struct proto_ready *m,
		       const char **why) __must_check;
void proto_status_encode(uint8_t *out, const struct proto_status *m);
int proto_status_decode(const uint8_t *in, size_t len, struct proto_status *m,
			const char **why) __must_check;
/* REQ: one page number, which must be below @max_gfn. */
#define PROTO_REQ_SIZE 8
void proto_req_encode(uint8_t *out, uint64_t gfn);
int proto_req_decode(const uint8_t *in, size_t len, uint64_t max_gfn, uint64_t *gfn,
		     const char **why) __must_check;

void proto_progress_encode(uint8_t *out, const struct proto_progress *m);
int proto_progress_decode(const uint8_t *in, size_t len, struct proto_progress *m,
			  const char **why) __must_check;
void proto_complete_encode(uint8_t *out, const struct proto_complete *m);
int proto_complete_decode(const uint8_t *in, size_t len, struct proto_complete *m,
			  const char **why) __must_check;
/* Encode a PAGEMAP header; the bitmap words follow on the wire. */
void proto_pagemap_encode_head(uint8_t *out, uint64_t first, uint32_t nbits);
/* Decode a PAGEMAP payload; the run must lie below @max_gfn rounded up to 64. */
int proto_pagemap_decode(const uint8_t *in, size_t len, uint64_t max_gfn, struct proto_pagemap *m,
			 const char **why) __must_check;

/* ---- page batches ---- */
/* Size of the PAGES header plus gfn array for @count pages. */
static inline size_t proto_pages_head_size(uint32_t count)
{
	return PROTO_PAGES_HDR + 8 * (size_t)count;
}
/*
 * Encode the PAGES header and gfn array (@gfns with PROTO_ZERO_PAGE set on
 * zero pages) into @out; data follows on the wire. Returns bytes written.
 */
size_t proto_pages_encode_head(uint8_t *out, const uint64_t *gfns, uint32_t count, uint32_t flags,
			       uint32_t data_len);
/*
 * Decode a PAGES payload of @len bytes. Every gfn must be below @max_gfn
 * and appear once; sizes must add up exactly. -EBADMSG otherwise.
 */
int proto_pages_decode(const uint8_t *in, size_t len, uint64_t max_gfn, struct proto_pages *p,
		       const char **why) __must_check;
/* The i-th gfn of a decoded batch (flag included). */
uint64_t proto_pages_gfn(const struct proto_pages *p, uint32_t i);

static inline void proto_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void proto_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t proto_get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline uint32_t proto_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
