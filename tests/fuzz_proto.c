// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the wire decoder (make fuzz). The input is a stream
 * of frames, read the way the destination reads its bulk channel: a 16-byte
 * header, then hdr.len bytes of payload, then the matching decoder. Page
 * batches are decompressed and placed into a fake 16 MiB guest RAM, and
 * every placement first checks (abort()) that the page is inside it: a
 * decoder that lets a bad page number through is a finding, not a silent
 * write. Each payload is copied into a buffer of exactly its size so that
 * AddressSanitizer sees any read past the frame.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "src/compress.h"
#include "src/proto.h"

#define FUZZ_GUEST_PAGES 4096 /* 16 MiB */

static uint8_t guest_ram[(size_t)FUZZ_GUEST_PAGES * PROTO_PAGE_SIZE];
static uint8_t scratch[256 * 1024];

_Static_assert(sizeof(scratch) >= (size_t)PROTO_BATCH_MAX * PROTO_PAGE_SIZE,
	       "scratch holds a full decompressed batch");

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

/* Place one decoded batch into guest RAM, like dest.c place_pages(). */
static int place_pages(const uint8_t *payload, size_t len)
{
	struct proto_pages p;
	const char *why = NULL;
	const uint8_t *src;
	uint32_t k = 0;

	if (proto_pages_decode(payload, len, FUZZ_GUEST_PAGES, &p, &why)) {
		check(why != NULL);
		return -1;
	}
	check(p.count >= 1 && p.count <= PROTO_BATCH_MAX);
	check(p.raw_len == p.nonzero * PROTO_PAGE_SIZE);
	check(proto_pages_head_size(p.count) + p.data_len == len);
	src = p.data;
	if (p.flags & PROTO_PAGES_LZ4) {
		if (p.raw_len > sizeof(scratch))
			return -1;
		if (compress_decode(p.data, p.data_len, scratch, p.raw_len))
			return -1;
		src = scratch;
	} else {
		check(p.data_len == p.raw_len);
	}
	for (uint32_t i = 0; i < p.count; i++) {
		uint64_t g = proto_pages_gfn(&p, i);
		uint64_t gfn = g & ~PROTO_ZERO_PAGE;
		uint8_t *dst;

		/* the decoder promised this: prove no write outside guest RAM */
		if (gfn >= FUZZ_GUEST_PAGES)
			abort();
		dst = guest_ram + gfn * PROTO_PAGE_SIZE;
		if (g & PROTO_ZERO_PAGE) {
			memset(dst, 0, PROTO_PAGE_SIZE);
			continue;
		}
		/* and no read past the batch data */
		check(k < p.nonzero);
		memcpy(dst, src + (size_t)k++ * PROTO_PAGE_SIZE, PROTO_PAGE_SIZE);
	}
	check(k == p.nonzero);
	return 0;
}

/* Decode one payload of type @type; -1 ends the stream as the destination would. */
static int decode_payload(uint32_t type, const uint8_t *payload, size_t len)
{
	const char *why = NULL;
	int err = 0;

	switch (type) {
	case PROTO_HELLO: {
		struct proto_hello m;

		err = proto_hello_decode(payload, len, &m, &why);
		if (!err)
			check(m.magic == PROTO_MAGIC && m.version == PROTO_VERSION &&
			      m.channel <= PROTO_CH_URGENT);
		break;
	}
	case PROTO_VMDESC: {
		struct proto_vmdesc m;

		err = proto_vmdesc_decode(payload, len, &m, &why);
		if (!err)
			check(strnlen(m.spec, PROTO_SPEC_MAX) < PROTO_SPEC_MAX && m.mem_bytes &&
			      m.mem_bytes % PROTO_PAGE_SIZE == 0 && m.nr_vcpus);
		break;
	}
	case PROTO_REFUSE:
	case PROTO_ERROR: {
		struct proto_error m;

		err = proto_error_decode(payload, len, &m, &why);
		if (!err) {
			size_t n = strnlen(m.msg, PROTO_MSG_MAX);

			check(n < PROTO_MSG_MAX);
			for (size_t i = 0; i < n; i++)
				check(m.msg[i] >= 0x20 && m.msg[i] <= 0x7e);
		}
		break;
	}
	case PROTO_ROUND: {
		struct proto_round m;

		err = proto_round_decode(payload, len, &m, &why);
		break;
	}
	case PROTO_STARTED: {
		struct proto_started m;

		err = proto_started_decode(payload, len, &m, &why);
		break;
	}
	case PROTO_AFTER: {
		struct proto_after m;

		err = proto_after_decode(payload, len, &m, &why);
		break;
	}
	case PROTO_PAGES:
		return place_pages(payload, len);
	case PROTO_ACCEPT:
	case PROTO_SWITCH:
		check(len == 0);
		break;
	case PROTO_REQ:
		check(len == 8);
		(void)proto_get_le64(payload);
		break;
	case PROTO_VMSTATE:
		check(len >= 1 && len <= PROTO_VMSTATE_MAX);
		break;
	default:
		abort(); /* proto_hdr_decode let an unknown type through */
	}
	if (err)
		check(why != NULL);
	return err ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (size - off >= PROTO_HDR_SIZE) {
		struct proto_hdr h;
		const char *why = NULL;
		uint8_t *payload;
		int ret;

		if (proto_hdr_decode(data + off, &h, &why)) {
			check(why != NULL);
			break;
		}
		/* a receive buffer of PROTO_FRAME_MAX holds every accepted frame */
		check(h.len <= PROTO_FRAME_MAX);
		off += PROTO_HDR_SIZE;
		if (h.len > size - off)
			break;
		/* exact-size copy: any read past the frame is an ASan report */
		payload = malloc(h.len ? h.len : 1);
		if (!payload)
			abort();
		memcpy(payload, data + off, h.len);
		off += h.len;
		ret = decode_payload(h.type, payload, h.len);
		free(payload);
		if (ret)
			break;
	}
	return 0;
}
