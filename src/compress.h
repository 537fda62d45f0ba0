/* SPDX-License-Identifier: MIT */
/*
 * lz4 for page batches and zero-page detection. No I/O, no allocation: the
 * lz4 state lives inside struct compress (one per sending thread).
 */
#ifndef HM_COMPRESS_H
#define HM_COMPRESS_H

#include <lz4.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "src/util.h"

struct compress {
	LZ4_stream_t state;
};

/*
 * Compress @len bytes into @dst (@cap bytes). Returns the compressed size
 * when it saves at least 1/16 of the input, 0 when sending raw is better.
 */
size_t compress_batch(struct compress *c, const void *src, size_t len, void *dst, size_t cap);
/*
 * Decompress @len bytes into exactly @expect bytes at @dst. -EBADMSG when
 * the data is corrupt or does not decode to exactly @expect bytes.
 */
int compress_decode(const void *src, size_t len, void *dst, size_t expect) __must_check;
bool compress_page_is_zero(const void *page);

#endif
