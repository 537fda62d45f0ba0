/* SPDX-License-Identifier: MIT */
/* Frame headers for the proto tests (tests/test_proto*.c), built from their fields. */
#ifndef HM_TESTS_FRAME_HDR_H
#define HM_TESTS_FRAME_HDR_H

#include <stdint.h>

struct proto_hdr;

/*
 * Encode a header from @type, @flags and @len, then decode it into @h with
 * proto_hdr_decode(), *@why reset first. Returns what that returns.
 */
int frame_hdr_decode(uint32_t type, uint32_t flags, uint64_t len, struct proto_hdr *h,
		     const char **why);

#endif
