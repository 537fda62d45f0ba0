// SPDX-License-Identifier: MIT
#include "src/proto.h"

#include <errno.h>
#include <string.h>

static_assert(PROTO_VMDESC_SIZE == 320, "VMDESC layout is part of the wire format");

static int bad(const char **why, const char *msg)
{
	if (why)
		*why = msg;
	return -EBADMSG;
}

void proto_hdr_encode(uint8_t out[PROTO_HDR_SIZE], uint32_t type, uint32_t flags, uint64_t len)
{
	proto_put_le32(out, type);
	proto_put_le32(out + 4, flags);
	proto_put_le64(out + 8, len);
}

/* Exact payload size of fixed messages; 0 = variable. */
static uint64_t fixed_size(uint32_t type)
{
	switch (type) {
	case PROTO_HELLO:
		return PROTO_HELLO_SIZE;
	case PROTO_VMDESC:
		return PROTO_VMDESC_SIZE;
	case PROTO_REFUSE:
	case PROTO_ERROR:
		return PROTO_ERROR_SIZE;
	case PROTO_ROUND:
		return PROTO_ROUND_SIZE;
	case PROTO_STARTED:
		return PROTO_STARTED_SIZE;
	case PROTO_AFTER:
		return PROTO_AFTER_SIZE;
	case PROTO_REQ:
		return PROTO_REQ_SIZE;
	case PROTO_READY:
		return PROTO_READY_SIZE;
	case PROTO_STATUS:
		return PROTO_STATUS_SIZE;
	case PROTO_COMPLETE:
		return PROTO_COMPLETE_SIZE;
	case PROTO_PROGRESS:
		return PROTO_PROGRESS_SIZE;
	default:
		return 0;
	}
}

int proto_hdr_decode(const uint8_t in[PROTO_HDR_SIZE], struct proto_hdr *h, const char **why)
{
	uint64_t want;

	h->type = proto_get_le32(in);
	h->flags = proto_get_le32(in + 4);
	h->len = proto_get_le64(in + 8);
	if (!h->type || h->type >= PROTO_TYPE_MAX)
		return bad(why, "unknown frame type");
	want = fixed_size(h->type);
	if (want && h->len != want)
		return bad(why, "frame length does not match its type");
	switch (h->type) {
	case PROTO_ACCEPT:
	case PROTO_SWITCH:
	case PROTO_DONE:
	case PROTO_GO:
		if (h->len)
			return bad(why, "frame length does not match its type");
		break;
	case PROTO_PAGES:
		if (h->len < proto_pages_head_size(1) || h->len > PROTO_MAX_PAYLOAD)
			return bad(why, "page batch frame of impossible size");
		if (h->flags & ~(uint32_t)PROTO_PAGES_LZ4)
			return bad(why, "unknown page batch flags");
		break;
	case PROTO_PAGEMAP:
		if (h->len <= PROTO_PAGEMAP_HDR ||
		    h->len > PROTO_PAGEMAP_HDR + PROTO_PAGEMAP_MAX_BITS / 8)
			return bad(why, "page map frame of impossible size");
		break;
	case PROTO_VMSTATE:
		if (!h->len || h->len > PROTO_VMSTATE_MAX)
			return bad(why, "state frame of impossible size");
		break;
	default:
		break;
	}
	if (h->type == PROTO_SWITCH && !(h->flags & ~(uint32_t)PROTO_SWITCH_POSTCOPY))
		return 0;
	if (h->type != PROTO_PAGES && h->flags)
		return bad(why, "unknown frame flags");
	return 0;
}

void proto_hello_encode(uint8_t *out, const struct proto_hello *m)
{
	proto_put_le64(out, m->magic);
	proto_put_le32(out + 8, m->version);
	proto_put_le32(out + 12, m->channel);
	proto_put_le32(out + 16, m->flags);
	proto_put_le32(out + 20, 0);
	memcpy(out + 24, m->secret, PROTO_SECRET_SIZE);
}

int proto_hello_decode(const uint8_t *in, size_t len, struct proto_hello *m, const char **why)
{
	if (len != PROTO_HELLO_SIZE)
		return bad(why, "hello of wrong size");
	m->magic = proto_get_le64(in);
	m->version = proto_get_le32(in + 8);
	m->channel = proto_get_le32(in + 12);
	m->flags = proto_get_le32(in + 16);
	memcpy(m->secret, in + 24, PROTO_SECRET_SIZE);
	if (m->magic != PROTO_MAGIC) {
		if (why)
			*why = "peer is not hybridmig (bad magic)";
		return -EPROTO;
	}
	if (m->version != PROTO_VERSION) {
		if (why)
			*why = "peer speaks another protocol version";
		return -EPROTO;
	}
	if (m->channel > PROTO_CH_URGENT)
		return bad(why, "unknown channel in hello");
	if (m->flags & ~(uint32_t)PROTO_HELLO_RESUME || proto_get_le32(in + 20))
		return bad(why, "unknown hello flags");
	return 0;
}

void proto_vmdesc_encode(uint8_t *out, const struct proto_vmdesc *m)
{
	proto_put_le64(out, m->mem_bytes);
	proto_put_le32(out + 8, m->nr_vcpus);
	proto_put_le32(out + 12, m->xsave_size);
	proto_put_le64(out + 16, m->tsc_khz);
	for (int i = 0; i < PROTO_CPUID_WORDS; i++)
		proto_put_le32(out + 24 + 4 * i, m->cpuid[i]);
	memset(out + 24 + 4 * PROTO_CPUID_WORDS, 0, PROTO_SPEC_MAX);
	memcpy(out + 24 + 4 * PROTO_CPUID_WORDS, m->spec, strnlen(m->spec, PROTO_SPEC_MAX - 1));
	proto_put_le64(out + 24 + 4 * PROTO_CPUID_WORDS + PROTO_SPEC_MAX, m->resident_bytes);
}

int proto_vmdesc_decode(const uint8_t *in, size_t len, struct proto_vmdesc *m, const char **why)
{
	const uint8_t *spec = in + 24 + 4 * PROTO_CPUID_WORDS;

	if (len != PROTO_VMDESC_SIZE)
		return bad(why, "VM description of wrong size");
	m->mem_bytes = proto_get_le64(in);
	m->nr_vcpus = proto_get_le32(in + 8);
	m->xsave_size = proto_get_le32(in + 12);
	m->tsc_khz = proto_get_le64(in + 16);
	for (int i = 0; i < PROTO_CPUID_WORDS; i++)
		m->cpuid[i] = proto_get_le32(in + 24 + 4 * i);
	if (!memchr(spec, 0, PROTO_SPEC_MAX))
		return bad(why, "guest spec in VM description is not terminated");
	memcpy(m->spec, spec, PROTO_SPEC_MAX);
	m->resident_bytes = proto_get_le64(spec + PROTO_SPEC_MAX);
	if (!m->mem_bytes || m->mem_bytes % PROTO_PAGE_SIZE || !m->nr_vcpus)
		return bad(why, "VM description with impossible memory or vCPU count");
	return 0;
}

void proto_error_encode(uint8_t *out, uint32_t code, const char *msg)
{
	proto_put_le32(out, code);
	proto_put_le32(out + 4, 0);
	memset(out + 8, 0, PROTO_MSG_MAX);
	memcpy(out + 8, msg, strnlen(msg, PROTO_MSG_MAX - 1));
}

int proto_error_decode(const uint8_t *in, size_t len, struct proto_error *m, const char **why)
{
	if (len != PROTO_ERROR_SIZE)
		return bad(why, "error frame of wrong size");
	m->code = proto_get_le32(in);
	/* the code becomes -errno on our side: 0 or a huge value would not be an error */
	if (!m->code || m->code > PROTO_ERRNO_MAX || proto_get_le32(in + 4))
		return bad(why, "error frame with an impossible code");
	if (!memchr(in + 8, 0, PROTO_MSG_MAX))
		return bad(why, "error message is not terminated");
	memcpy(m->msg, in + 8, PROTO_MSG_MAX);
	for (char *c = m->msg; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	return 0;
}

void proto_round_encode(uint8_t *out, const struct proto_round *m)
{
	proto_put_le32(out, m->round);
	proto_put_le32(out + 4, 0);
	proto_put_le64(out + 8, m->pages);
	proto_put_le64(out + 16, m->dirty_rate);
}

int proto_round_decode(const uint8_t *in, size_t len, struct proto_round *m, const char **why)
{
	if (len != PROTO_ROUND_SIZE)
		return bad(why, "round frame of wrong size");
	m->round = proto_get_le32(in);
	m->pages = proto_get_le64(in + 8);
	m->dirty_rate = proto_get_le64(in + 16);
	if (proto_get_le32(in + 4))
		return bad(why, "round frame with non-zero reserved bytes");
	return 0;
}

void proto_started_encode(uint8_t *out, const struct proto_started *m)
{
	proto_put_le64(out, m->switch_to_run_ns);
	proto_put_le64(out + 8, m->restore_ns);
}

int proto_started_decode(const uint8_t *in, size_t len, struct proto_started *m, const char **why)
{
	if (len != PROTO_STARTED_SIZE)
		return bad(why, "started frame of wrong size");
	m->switch_to_run_ns = proto_get_le64(in);
	m->restore_ns = proto_get_le64(in + 8);
	return 0;
}

void proto_after_encode(uint8_t *out, const struct proto_after *m)
{
	proto_put_le64(out, m->units_per_s);
	proto_put_le64(out + 8, m->first_report_ns);
}

int proto_after_decode(const uint8_t *in, size_t len, struct proto_after *m, const char **why)
{
	if (len != PROTO_AFTER_SIZE)
		return bad(why, "after frame of wrong size");
	m->units_per_s = proto_get_le64(in);
	m->first_report_ns = proto_get_le64(in + 8);
	return 0;
}

void proto_ready_encode(uint8_t *out, const struct proto_ready *m)
{
	proto_put_le64(out, m->restore_ns);
}

int proto_ready_decode(const uint8_t *in, size_t len, struct proto_ready *m, const char **why)
{
	if (len != PROTO_READY_SIZE)
		return bad(why, "ready frame of wrong size");
	m->restore_ns = proto_get_le64(in);
	return 0;
}

void proto_status_encode(uint8_t *out, const struct proto_status *m)
{
	proto_put_le32(out, m->phase);
	proto_put_le32(out + 4, 0);
	proto_put_le64(out + 8, m->missing);
}

int proto_status_decode(const uint8_t *in, size_t len, struct proto_status *m, const char **why)
{
	if (len != PROTO_STATUS_SIZE)
		return bad(why, "status frame of wrong size");
	m->phase = proto_get_le32(in);
	m->missing = proto_get_le64(in + 8);
	if (m->phase < PROTO_DST_RECEIVING || m->phase > PROTO_DST_RUNNING ||
	    proto_get_le32(in + 4))
		return bad(why, "status frame with an unknown phase");
	return 0;
}

void proto_req_encode(uint8_t *out, uint64_t gfn)
{
	proto_put_le64(out, gfn);
}

int proto_req_decode(const uint8_t *in, size_t len, uint64_t max_gfn, uint64_t *gfn,
		     const char **why)
{
	if (len != PROTO_REQ_SIZE)
		return bad(why, "page request of wrong size");
	*gfn = proto_get_le64(in);
	if (*gfn >= max_gfn)
		return bad(why, "page request outside guest RAM");
	return 0;
}

size_t proto_pages_encode_head(uint8_t *out, const uint64_t *gfns, uint32_t count, uint32_t flags,
			       uint32_t data_len)
{
	uint32_t nonzero = 0;

	for (uint32_t i = 0; i < count; i++) {
		proto_put_le64(out + PROTO_PAGES_HDR + 8 * i, gfns[i]);
		nonzero += !(gfns[i] & PROTO_ZERO_PAGE);
	}
	proto_put_le32(out, count);
	proto_put_le32(out + 4, flags);
	proto_put_le32(out + 8, data_len);
	proto_put_le32(out + 12, nonzero * PROTO_PAGE_SIZE);
	return proto_pages_head_size(count);
}

uint64_t proto_pages_gfn(const struct proto_pages *p, uint32_t i)
{
	return proto_get_le64(p->gfns + 8 * (size_t)i);
}

/* Every gfn in range and unique within the batch (count <= 64: quadratic is fine). */
static int check_gfns(const struct proto_pages *p, uint64_t max_gfn, const char **why)
{
	uint32_t nonzero = 0;

	for (uint32_t i = 0; i < p->count; i++) {
		uint64_t g = proto_pages_gfn(p, i);
		uint64_t pfn = g & ~PROTO_ZERO_PAGE;

		if (pfn >= max_gfn)
			return bad(why, "page number outside guest RAM");
		for (uint32_t k = 0; k < i; k++)
			if ((proto_pages_gfn(p, k) & ~PROTO_ZERO_PAGE) == pfn)
				return bad(why, "page appears twice in one batch");
		nonzero += !(g & PROTO_ZERO_PAGE);
	}
	if ((uint64_t)nonzero * PROTO_PAGE_SIZE != p->raw_len)
		return bad(why, "batch data size does not match its pages");
	return 0;
}

int proto_pages_decode(const uint8_t *in, size_t len, uint64_t max_gfn, struct proto_pages *p,
		       const char **why)
{
	if (len < PROTO_PAGES_HDR)
		return bad(why, "truncated page batch");
	p->count = proto_get_le32(in);
	p->flags = proto_get_le32(in + 4);
	p->data_len = proto_get_le32(in + 8);
	p->raw_len = proto_get_le32(in + 12);
	if (!p->count || p->count > PROTO_BATCH_MAX)
		return bad(why, "page batch with an impossible page count");
	if (p->flags & ~(uint32_t)PROTO_PAGES_LZ4)
		return bad(why, "unknown page batch flags");
	if (len != proto_pages_head_size(p->count) + (uint64_t)p->data_len)
		return bad(why, "page batch length does not add up");
	p->gfns = in + PROTO_PAGES_HDR;
	p->data = in + proto_pages_head_size(p->count);
	p->nonzero = p->raw_len / PROTO_PAGE_SIZE;
	if (check_gfns(p, max_gfn, why))
		return -EBADMSG;
	if (!(p->flags & PROTO_PAGES_LZ4) && p->data_len != p->raw_len)
		return bad(why, "uncompressed batch data size does not match its pages");
	if ((p->flags & PROTO_PAGES_LZ4) && (!p->data_len || !p->raw_len))
		return bad(why, "compressed batch without data");
	return 0;
}

void proto_complete_encode(uint8_t *out, const struct proto_complete *m)
{
	const uint64_t v[10] = { m->remote_faults, m->local_zero, m->duplicates, m->blocked_ns,
				 m->last_page_ns,  m->lat_p50_us, m->lat_p90_us, m->lat_p99_us,
				 m->lat_max_us,	   m->units_per_s };

	for (int i = 0; i < 10; i++)
		proto_put_le64(out + 8 * i, v[i]);
}

int proto_complete_decode(const uint8_t *in, size_t len, struct proto_complete *m, const char **why)
{
	uint64_t *v[10] = { &m->remote_faults, &m->local_zero, &m->duplicates, &m->blocked_ns,
			    &m->last_page_ns,  &m->lat_p50_us, &m->lat_p90_us, &m->lat_p99_us,
			    &m->lat_max_us,    &m->units_per_s };

	if (len != PROTO_COMPLETE_SIZE)
		return bad(why, "complete frame of wrong size");
	for (int i = 0; i < 10; i++)
		*v[i] = proto_get_le64(in + 8 * i);
	return 0;
}

void proto_progress_encode(uint8_t *out, const struct proto_progress *m)
{
	proto_put_le64(out, m->units);
	proto_put_le64(out + 8, m->remote_faults);
	proto_put_le64(out + 16, m->pages_placed);
	proto_put_le64(out + 24, m->blocked_ns);
}

int proto_progress_decode(const uint8_t *in, size_t len, struct proto_progress *m, const char **why)
{
	if (len != PROTO_PROGRESS_SIZE)
		return bad(why, "progress frame of wrong size");
	m->units = proto_get_le64(in);
	m->remote_faults = proto_get_le64(in + 8);
	m->pages_placed = proto_get_le64(in + 16);
	m->blocked_ns = proto_get_le64(in + 24);
	return 0;
}

void proto_pagemap_encode_head(uint8_t *out, uint64_t first, uint32_t nbits)
{
	proto_put_le64(out, first);
	proto_put_le32(out + 8, nbits);
	proto_put_le32(out + 12, 0);
}

int proto_pagemap_decode(const uint8_t *in, size_t len, uint64_t max_gfn, struct proto_pagemap *m,
			 const char **why)
{
	if (len < PROTO_PAGEMAP_HDR)
		return bad(why, "truncated page map");
	m->first = proto_get_le64(in);
	m->nbits = proto_get_le32(in + 8);
	m->bits = in + PROTO_PAGEMAP_HDR;
	if (!m->nbits || m->nbits % 64 || m->first % 64 || m->nbits > PROTO_PAGEMAP_MAX_BITS)
		return bad(why, "page map run of impossible size");
	if (len != PROTO_PAGEMAP_HDR + (size_t)m->nbits / 8)
		return bad(why, "page map length does not add up");
	if (m->first >= max_gfn || m->nbits > ALIGN_UP(max_gfn, 64) - m->first)
		return bad(why, "page map outside guest RAM");
	return 0;
}
