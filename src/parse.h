/* SPDX-License-Identifier: MIT */
/* Parsing of command-line values: sizes, counts, rates. Pure functions. */
#ifndef HM_PARSE_H
#define HM_PARSE_H

#include <stdint.h>
#include "src/util.h"

/*
 * Parse a byte size: digits with an optional binary suffix K, M, G, T
 * (also KB/KiB, ...; case-insensitive). Rejects empty strings, signs,
 * junk, and values that overflow. Returns 0 or -EINVAL/-ERANGE.
 */
int parse_size(const char *s, uint64_t *out) __must_check;
/*
 * Parse a count: digits with an optional decimal suffix k (1e3), m (1e6),
 * g (1e9). Returns 0 or -EINVAL/-ERANGE.
 */
int parse_count(const char *s, uint64_t *out) __must_check;
/* parse_count() and check min <= value <= max (-ERANGE otherwise). */
/* A rate: "1gbit", "500mbit" (bits/s) or bytes per second as a size ("100M"). */
int parse_rate(const char *s, uint64_t *out) __must_check;
int parse_count_range(const char *s, uint64_t min, uint64_t max, uint64_t *out) __must_check;
/* --socket-buffer: "kernel" (0: autotuning) or a size from 64 KiB to 1 GiB. */
int parse_socket_buffer(const char *s, uint64_t *out) __must_check;

#endif
