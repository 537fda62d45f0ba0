// SPDX-License-Identifier: MIT
/* Frame headers built from their fields (tests/frame_hdr.h). */
#include "tests/frame_hdr.h"

#include "src/proto.h"

int frame_hdr_decode(uint32_t type, uint32_t flags, uint64_t len, struct proto_hdr *h,
		     const char **why)
{
	uint8_t buf[PROTO_HDR_SIZE];

	*why = NULL;
	proto_hdr_encode(buf, type, flags, len);
	return proto_hdr_decode(buf, h, why);
}
