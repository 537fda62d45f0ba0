// SPDX-License-Identifier: MIT
#include "src/compress.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

size_t compress_batch(struct compress *c, const void *src, size_t len, void *dst, size_t cap)
{
	int n;

	if (len > INT_MAX || cap > INT_MAX)
		return 0;
	n = LZ4_compress_fast_extState(&c->state, src, dst, (int)len, (int)cap, 1);
	/* 0 = did not fit in cap, i.e. it would not have saved anything */
	if (n <= 0 || (size_t)n > len - len / 16)
		return 0;
	return (size_t)n;
}

int compress_decode(const void *src, size_t len, void *dst, size_t expect)
{
	int n;

	if (len > INT_MAX || expect > INT_MAX)
		return -EBADMSG;
	n = LZ4_decompress_safe(src, dst, (int)len, (int)expect);
	return n == (int)expect ? 0 : -EBADMSG;
}

bool compress_page_is_zero(const void *page)
{
	const uint64_t *w = page;

	/* most non-zero pages differ in the first word: cheap early exit */
	if (w[0])
		return false;
	for (size_t i = 1; i < 512; i++)
		if (w[i])
			return false;
	return true;
}
