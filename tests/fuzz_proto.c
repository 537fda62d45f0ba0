// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for every wire decoder (make fuzz): proto_hdr_decode,
 * each proto_*_decode, compress_decode (lz4 page batches) and vmstate_next.
 *
 * One table, indexed by frame type, says for each type its payload sizes,
 * the header flags it may carry and the function that decodes it and
 * checks the result. A new frame type is one line here; a type the table
 * does not know is a finding at start-up (and again if a header with it
 * ever decodes), never a silent skip.
 *
 * Input, byte 0 chooses the mode:
 *   even: a stream, read the way the destination reads its bulk channel:
 *         bytes 1-2 give the guest's page count (max_gfn), then 16-byte
 *         headers, each followed by its payload, decoded until one fails.
 *   odd:  one decoder on its own: byte 1 is the frame type (0xff: a raw
 *         lz4 block), bytes 2-3 max_gfn, the rest the payload, of any
 *         length (so decoders see lengths the header would have refused).
 * Every payload is copied into a buffer of exactly its size, so ASan sees
 * any read past it. Invariants are checked after each successful decode
 * and any violation abort()s: counts within bounds, lengths that add up,
 * page numbers below max_gfn, and a re-encoded message decoding the same.
 * The header decoder is also checked against the table in both directions.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/compress.h"
#include "src/proto.h"
#include "src/vmstate.h"

#define FUZZ_GUEST_PAGES 4096 /* 16 MiB of fake guest RAM */
#define LZ4_RAW		 0xff /* direct mode: byte 1 for a bare compress_decode */

static uint8_t guest_ram[(size_t)FUZZ_GUEST_PAGES * PROTO_PAGE_SIZE];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_at(bool ok, const char *what, int line)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_proto: invariant violated at line %d: %s\n", line, what);
	abort();
}
#define check(cond) check_at((cond), #cond, __LINE__)

typedef void (*decode_fn)(const uint8_t *in, size_t len, uint64_t max_gfn, int *err);

/* What the protocol allows for one frame type, and how to decode it. */
struct frame_kind {
	const char *name;
	uint64_t min_len; /* payload bytes */
	uint64_t max_len;
	uint32_t flags; /* header flags the type may carry */
	decode_fn decode;
};

/* ---- fixed-size messages: decode, check, re-encode, decode again ---- */

static void fz_hello(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	struct proto_hello m;
	uint8_t out[PROTO_HELLO_SIZE];
	const char *why = NULL;

	*err = proto_hello_decode(in, len, &m, &why);
	check(*err || len == PROTO_HELLO_SIZE);
	if (*err) {
		check(why && (*err == -EBADMSG || *err == -EPROTO));
		return;
	}
	check(m.magic == PROTO_MAGIC && m.version == PROTO_VERSION);
	check(m.channel <= PROTO_CH_URGENT && !(m.flags & ~(uint32_t)PROTO_HELLO_RESUME));
	/* every byte of a hello means something: it re-encodes to itself */
	proto_hello_encode(out, &m);
	check(!memcmp(out, in, PROTO_HELLO_SIZE));
}

static void fz_vmdesc(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	struct proto_vmdesc m, m2;
	uint8_t out[PROTO_VMDESC_SIZE];
	const char *why = NULL;

	*err = proto_vmdesc_decode(in, len, &m, &why);
	check(*err || len == PROTO_VMDESC_SIZE);
	if (*err) {
		check(why && *err == -EBADMSG);
		return;
	}
	check(strnlen(m.spec, PROTO_SPEC_MAX) < PROTO_SPEC_MAX);
	check(m.mem_bytes && m.mem_bytes % PROTO_PAGE_SIZE == 0 && m.nr_vcpus);
	proto_vmdesc_encode(out, &m);
	check(!proto_vmdesc_decode(out, sizeof(out), &m2, &why));
	check(m2.mem_bytes == m.mem_bytes && m2.nr_vcpus == m.nr_vcpus);
	check(m2.xsave_size == m.xsave_size && m2.tsc_khz == m.tsc_khz);
	check(m2.resident_bytes == m.resident_bytes && !strcmp(m2.spec, m.spec));
	check(!memcmp(m2.cpuid, m.cpuid, sizeof(m.cpuid)));
}

static void fz_error(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	struct proto_error m, m2;
	uint8_t out[PROTO_ERROR_SIZE];
	const char *why = NULL;
	size_t n;

	*err = proto_error_decode(in, len, &m, &why);
	check(*err || len == PROTO_ERROR_SIZE);
	if (*err) {
		check(why && *err == -EBADMSG);
		return;
	}
	/* the code becomes -code on the receiving side: a real errno */
	check(m.code >= 1 && m.code <= PROTO_ERRNO_MAX);
	n = strnlen(m.msg, PROTO_MSG_MAX);
	check(n < PROTO_MSG_MAX);
	for (size_t i = 0; i < n; i++)
		check(m.msg[i] >= 0x20 && m.msg[i] <= 0x7e);
	proto_error_encode(out, m.code, m.msg);
	check(!proto_error_decode(out, sizeof(out), &m2, &why));
	check(m2.code == m.code && !strcmp(m2.msg, m.msg));
}

static void fz_round(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	struct proto_round m, m2;
	uint8_t out[PROTO_ROUND_SIZE];
	const char *why = NULL;

	*err = proto_round_decode(in, len, &m, &why);
	check(*err ? why != NULL : len == PROTO_ROUND_SIZE);
	if (*err)
		return;
	proto_round_encode(out, &m);
	check(!proto_round_decode(out, sizeof(out), &m2, &why));
	check(m2.round == m.round && m2.pages == m.pages && m2.dirty_rate == m.dirty_rate);
}

static void fz_started(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	struct proto_started m, m2;
	uint8_t out[PROTO_STARTED_SIZE];
	const char *why = NULL;

	*err = proto_started_decode(in, len, &m, &why);
	check(*err ? why != NULL : len == PROTO_STARTED_SIZE);
	if (*err)
		return;
	proto_started_encode(out, &m);
	check(!memcmp(out, in, sizeof(out)));
	check(!proto_started_decode(out, sizeof(out), &m2, &why));
	check(m2.switch_to_run_ns == m.switch_to_run_ns && m2.restore_ns == m.restore_ns);
}

static void fz_after(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	struct proto_after m, m2;
	uint8_t out[PROTO_AFTER_SIZE];
	const char *why = NULL;

	*err = proto_after_decode(in, len, &m, &why);
	check(*err ? why != NULL : len == PROTO_AFTER_SIZE);
	if (*err)
		return;
	proto_after_encode(out, &m);
	check(!memcmp(out, in, sizeof(out)));
	check(!proto_after_decode(out, sizeof(out), &m2, &why));
	check(m2.units_per_s == m.units_per_s && m2.first_report_ns == m.first_report_ns);
}

static void fz_ready(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	struct proto_ready m, m2;
	uint8_t out[PROTO_READY_SIZE];
	const char *why = NULL;

	*err = proto_ready_decode(in, len, &m, &why);
	check(*err ? why != NULL : len == PROTO_READY_SIZE);
	if (*err)
		return;
	proto_ready_encode(out, &m);
	check(!memcmp(out, in, sizeof(out)));
	check(!proto_ready_decode(out, sizeof(out), &m2, &why) && m2.restore_ns == m.restore_ns);
}

static void fz_status(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	struct proto_status m, m2;
	uint8_t out[PROTO_STATUS_SIZE];
	const char *why = NULL;

	*err = proto_status_decode(in, len, &m, &why);
	check(*err ? why != NULL : len == PROTO_STATUS_SIZE);
	if (*err)
		return;
	check(m.phase >= PROTO_DST_RECEIVING && m.phase <= PROTO_DST_RUNNING);
	proto_status_encode(out, &m);
	check(!memcmp(out, in, sizeof(out)));
	check(!proto_status_decode(out, sizeof(out), &m2, &why));
	check(m2.phase == m.phase && m2.missing == m.missing);
}

static void fz_req(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	uint8_t out[PROTO_REQ_SIZE];
	const char *why = NULL;
	uint64_t gfn;

	*err = proto_req_decode(in, len, max_gfn, &gfn, &why);
	check(*err ? why != NULL : len == PROTO_REQ_SIZE);
	if (*err)
		return;
	/* the source answers it from guest RAM at gfn * 4096 */
	check(gfn < max_gfn);
	proto_req_encode(out, gfn);
	check(!memcmp(out, in, sizeof(out)));
}

static void fz_complete(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	struct proto_complete m, m2;
	uint8_t out[PROTO_COMPLETE_SIZE];
	const char *why = NULL;

	*err = proto_complete_decode(in, len, &m, &why);
	check(*err ? why != NULL : len == PROTO_COMPLETE_SIZE);
	if (*err)
		return;
	proto_complete_encode(out, &m);
	check(!memcmp(out, in, sizeof(out)));
	check(!proto_complete_decode(out, sizeof(out), &m2, &why));
	check(!memcmp(&m2, &m, sizeof(m)));
}

static void fz_progress(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	struct proto_progress m, m2;
	uint8_t out[PROTO_PROGRESS_SIZE];
	const char *why = NULL;

	*err = proto_progress_decode(in, len, &m, &why);
	check(*err ? why != NULL : len == PROTO_PROGRESS_SIZE);
	if (*err)
		return;
	proto_progress_encode(out, &m);
	check(!memcmp(out, in, sizeof(out)));
	check(!proto_progress_decode(out, sizeof(out), &m2, &why));
	check(!memcmp(&m2, &m, sizeof(m)));
}

/* No payload and no decoder: only proto_hdr_decode's length check stands for one. */
static void fz_empty(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	*err = len ? -EBADMSG : 0;
}

/* ---- page map: apply it the way both roles do ---- */

/* dest_postcopy_add_map: word by word into a bitmap of max_gfn bits. */
static void pagemap_apply_words(const struct proto_pagemap *pm, uint64_t max_gfn)
{
	size_t nwords = (size_t)(ALIGN_UP(max_gfn, 64) / 64);
	uint64_t *words = calloc(nwords, 8); /* exact size: ASan sees a bad index */

	check(words != NULL);
	for (uint32_t w = 0; w < pm->nbits / 64; w++) {
		uint64_t first = pm->first + 64ULL * w;
		uint64_t bits = proto_get_le64(pm->bits + 8 * (size_t)w);

		if (first + 64 > max_gfn && bits >> (max_gfn - first))
			continue; /* the destination refuses this map */
		check(first / 64 < nwords);
		words[first / 64] |= bits;
	}
	free(words);
}

static void fz_pagemap(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	struct proto_pagemap pm;
	const char *why = NULL;
	uint64_t set = 0;

	*err = proto_pagemap_decode(in, len, max_gfn, &pm, &why);
	if (*err) {
		check(why && *err == -EBADMSG);
		return;
	}
	check(pm.nbits && pm.nbits % 64 == 0 && pm.first % 64 == 0);
	check(pm.nbits <= PROTO_PAGEMAP_MAX_BITS && len == PROTO_PAGEMAP_HDR + pm.nbits / 8);
	check(pm.first < max_gfn && pm.first + pm.nbits <= ALIGN_UP(max_gfn, 64));
	check(pm.bits == in + PROTO_PAGEMAP_HDR);
	pagemap_apply_words(&pm, max_gfn);
	/* mig_postcopy_requeue: bit by bit, reading every byte of the run */
	for (uint32_t i = 0; i < pm.nbits; i++)
		set += (pm.bits[i / 8] >> (i % 8)) & 1;
	check(set <= pm.nbits);
}

/* ---- page batches: decode, decompress, place into the fake guest ---- */

/* The decoded batch is consistent with its payload. */
static void pages_check(const struct proto_pages *p, const uint8_t *in, size_t len,
			uint64_t max_gfn)
{
	uint32_t nonzero = 0;

	check(p->count >= 1 && p->count <= PROTO_BATCH_MAX);
	check(!(p->flags & ~(uint32_t)PROTO_PAGES_LZ4));
	check(proto_pages_head_size(p->count) + (uint64_t)p->data_len == len);
	check(p->gfns == in + PROTO_PAGES_HDR && p->data == in + proto_pages_head_size(p->count));
	for (uint32_t i = 0; i < p->count; i++) {
		uint64_t g = proto_pages_gfn(p, i);

		check((g & ~PROTO_ZERO_PAGE) < max_gfn);
		for (uint32_t k = 0; k < i; k++)
			check((proto_pages_gfn(p, k) & ~PROTO_ZERO_PAGE) != (g & ~PROTO_ZERO_PAGE));
		nonzero += !(g & PROTO_ZERO_PAGE);
	}
	check(p->nonzero == nonzero && (uint64_t)p->raw_len == (uint64_t)nonzero * PROTO_PAGE_SIZE);
	if (!(p->flags & PROTO_PAGES_LZ4))
		check(p->data_len == p->raw_len);
	else
		check(p->data_len && p->raw_len);
}

/* Like dest.c place_pages: lz4 into a buffer of exactly raw_len, then copy page by page. */
static void pages_place(const struct proto_pages *p)
{
	const uint8_t *src = p->data;
	uint8_t *raw = NULL;
	uint32_t k = 0;

	if (p->flags & PROTO_PAGES_LZ4) {
		raw = malloc(p->raw_len);
		check(raw != NULL);
		if (compress_decode(p->data, p->data_len, raw, p->raw_len)) {
			free(raw);
			return;
		}
		src = raw;
	}
	for (uint32_t i = 0; i < p->count; i++) {
		uint64_t g = proto_pages_gfn(p, i);
		uint8_t *dst = guest_ram + (g & ~PROTO_ZERO_PAGE) * PROTO_PAGE_SIZE;

		check((g & ~PROTO_ZERO_PAGE) < FUZZ_GUEST_PAGES);
		if (g & PROTO_ZERO_PAGE) {
			memset(dst, 0, PROTO_PAGE_SIZE);
			continue;
		}
		check(k < p->nonzero);
		memcpy(dst, src + (size_t)k++ * PROTO_PAGE_SIZE, PROTO_PAGE_SIZE);
	}
	check(k == p->nonzero);
	free(raw);
}

static void fz_pages(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	struct proto_pages p;
	const char *why = NULL;

	*err = proto_pages_decode(in, len, max_gfn, &p, &why);
	if (*err) {
		check(why && *err == -EBADMSG);
		return;
	}
	pages_check(&p, in, len, max_gfn);
	pages_place(&p);
}

/* ---- VM state: walk the records the way dest.c restore() does ---- */

static void fz_vmstate(const uint8_t *in, size_t len, uint64_t max_gfn, int *err)
{
	struct vmstate_rec r;
	const char *why = NULL;
	size_t off = 0;
	size_t prev;
	uint64_t sum = 0;
	int ret;

	for (;;) {
		prev = off;
		ret = vmstate_next(in, len, &off, &r, &why);
		if (ret <= 0)
			break;
		/* the record lies inside the payload, padding included */
		check(off > prev && off <= len);
		check(off - prev == VMSTATE_REC_HDR + ALIGN_UP((size_t)r.len, 8));
		check(r.data == in + prev + VMSTATE_REC_HDR);
		if (r.len)
			sum += r.data[0] + r.data[r.len - 1]; /* ASan: the data is readable */
	}
	if (ret == 0)
		check(off == len && prev == len);
	else
		check(ret == -EBADMSG && why && off == prev);
	*err = ret < 0 ? ret : 0;
	(void)sum;
}

/* ---- the table: one line per frame type ---- */

#define FIXED(n) (n), (n)
static const struct frame_kind kinds[PROTO_TYPE_MAX] = {
	[PROTO_HELLO] = { "hello", FIXED(PROTO_HELLO_SIZE), 0, fz_hello },
	[PROTO_VMDESC] = { "vmdesc", FIXED(PROTO_VMDESC_SIZE), 0, fz_vmdesc },
	[PROTO_ACCEPT] = { "accept", FIXED(0), 0, fz_empty },
	[PROTO_REFUSE] = { "refuse", FIXED(PROTO_ERROR_SIZE), 0, fz_error },
	[PROTO_PAGES] = { "pages", PROTO_PAGES_HDR + 8, PROTO_MAX_PAYLOAD, PROTO_PAGES_LZ4,
			  fz_pages },
	[PROTO_ROUND] = { "round", FIXED(PROTO_ROUND_SIZE), 0, fz_round },
	[PROTO_VMSTATE] = { "vmstate", 1, PROTO_VMSTATE_MAX, 0, fz_vmstate },
	[PROTO_SWITCH] = { "switch", FIXED(0), PROTO_SWITCH_POSTCOPY, fz_empty },
	[PROTO_STARTED] = { "started", FIXED(PROTO_STARTED_SIZE), 0, fz_started },
	[PROTO_AFTER] = { "after", FIXED(PROTO_AFTER_SIZE), 0, fz_after },
	[PROTO_ERROR] = { "error", FIXED(PROTO_ERROR_SIZE), 0, fz_error },
	[PROTO_REQ] = { "req", FIXED(PROTO_REQ_SIZE), 0, fz_req },
	[PROTO_PAGEMAP] = { "pagemap", PROTO_PAGEMAP_HDR + 1,
			    PROTO_PAGEMAP_HDR + PROTO_PAGEMAP_MAX_BITS / 8, 0, fz_pagemap },
	[PROTO_DONE] = { "done", FIXED(0), 0, fz_empty },
	[PROTO_COMPLETE] = { "complete", FIXED(PROTO_COMPLETE_SIZE), 0, fz_complete },
	[PROTO_READY] = { "ready", FIXED(PROTO_READY_SIZE), 0, fz_ready },
	[PROTO_GO] = { "go", FIXED(0), 0, fz_empty },
	[PROTO_STATUS] = { "status", FIXED(PROTO_STATUS_SIZE), 0, fz_status },
	[PROTO_PROGRESS] = { "progress", FIXED(PROTO_PROGRESS_SIZE), 0, fz_progress },
};

/* The entry for a type proto.h defines; a type without one aborts. */
static const struct frame_kind *kind_of(uint32_t type)
{
	if (!type || type >= ARRAY_SIZE(kinds) || !kinds[type].decode) {
		fprintf(stderr, "fuzz_proto: frame type %u has no entry in the harness table\n",
			type);
		abort();
	}
	return &kinds[type];
}

int LLVMFuzzerInitialize(int *argc, char **argv[])
{
	for (uint32_t t = 1; t < PROTO_TYPE_MAX; t++)
		(void)kind_of(t);
	return 0;
}

/* The header decoder agrees with the table, both ways. */
static bool hdr_decode_checked(const uint8_t *in, struct proto_hdr *h)
{
	uint32_t type = proto_get_le32(in);
	uint32_t flags = proto_get_le32(in + 4);
	uint64_t len = proto_get_le64(in + 8);
	bool known = type && type < PROTO_TYPE_MAX;
	const struct frame_kind *k = known ? kind_of(type) : NULL;
	bool allowed = k && len >= k->min_len && len <= k->max_len && !(flags & ~k->flags);
	const char *why = NULL;
	int err = proto_hdr_decode(in, h, &why);

	check(err ? why != NULL && err == -EBADMSG : h->type == type);
	check(!err == allowed);
	check(err || (h->flags == flags && h->len == len && h->len <= PROTO_FRAME_MAX));
	return !err;
}

static uint64_t max_gfn_of(const uint8_t *p)
{
	return 1 + (uint64_t)((p[0] | p[1] << 8) % FUZZ_GUEST_PAGES);
}

/* Decode one payload through an exact-size copy. 0 to go on, -1 to stop. */
static int decode_copy(const struct frame_kind *k, const uint8_t *in, size_t len, uint64_t max_gfn)
{
	uint8_t *payload = malloc(len ? len : 1);
	int err;

	check(payload != NULL);
	memcpy(payload, in, len);
	k->decode(payload, len, max_gfn, &err);
	free(payload);
	return err ? -1 : 0;
}

static void run_stream(const uint8_t *data, size_t size, uint64_t max_gfn)
{
	size_t off = 0;

	while (size - off >= PROTO_HDR_SIZE) {
		struct proto_hdr h;

		if (!hdr_decode_checked(data + off, &h))
			return;
		off += PROTO_HDR_SIZE;
		if (h.len > size - off)
			return;
		if (decode_copy(kind_of(h.type), data + off, (size_t)h.len, max_gfn))
			return;
		off += (size_t)h.len;
	}
}

/* A bare lz4 block; the first 4 bytes say how much it must decode to. */
static void run_lz4(const uint8_t *data, size_t size)
{
	size_t expect;
	uint8_t *out;

	if (size < 4)
		return;
	expect = 1 + proto_get_le32(data) % (PROTO_BATCH_MAX * PROTO_PAGE_SIZE);
	out = malloc(expect); /* exact size: ASan sees a write past it */
	check(out != NULL);
	(void)compress_decode(data + 4, size - 4, out, expect);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	if (!(data[0] & 1)) {
		run_stream(data + 3, size - 3, max_gfn_of(data + 1));
		return 0;
	}
	if (data[1] == LZ4_RAW) {
		run_lz4(data + 4, size - 4);
		return 0;
	}
	/* direct: only types proto.h defines; an unknown byte is the input's choice */
	if (data[1] && data[1] < PROTO_TYPE_MAX)
		(void)decode_copy(kind_of(data[1]), data + 4, size - 4, max_gfn_of(data + 2));
	return 0;
}
