// SPDX-License-Identifier: MIT
#include "src/parse.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

/* Digits only (no sign, no blanks, no base prefix); *end at the first non-digit. */
static int parse_digits(const char *s, uint64_t *out, const char **end)
{
	uint64_t v = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		uint64_t d = (uint64_t)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	*end = s;
	return 0;
}

static int scale(uint64_t v, uint64_t mult, uint64_t *out)
{
	if (mult && v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {
		{ "", 1 },
		{ "b", 1 },
		{ "k", 1ULL << 10 },
		{ "kb", 1ULL << 10 },
		{ "kib", 1ULL << 10 },
		{ "m", 1ULL << 20 },
		{ "mb", 1ULL << 20 },
		{ "mib", 1ULL << 20 },
		{ "g", 1ULL << 30 },
		{ "gb", 1ULL << 30 },
		{ "gib", 1ULL << 30 },
		{ "t", 1ULL << 40 },
		{ "tb", 1ULL << 40 },
		{ "tib", 1ULL << 40 },
	};
	const char *end;
	uint64_t v;
	int err;

	err = parse_digits(s, &v, &end);
	if (err)
		return err;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (!strcasecmp(end, units[i].suffix))
			return scale(v, units[i].mult, out);
	return -EINVAL;
}

int parse_count(const char *s, uint64_t *out)
{
	const char *end;
	uint64_t v;
	int err;

	err = parse_digits(s, &v, &end);
	if (err)
		return err;
	if (!*end)
		return scale(v, 1, out);
	if (end[1])
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		return scale(v, 1000, out);
	case 'm':
	case 'M':
		return scale(v, 1000000, out);
	case 'g':
	case 'G':
		return scale(v, 1000000000, out);
	default:
		return -EINVAL;
	}
}

int parse_count_range(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;
	int err = parse_count(s, &v);

	if (err)
		return err;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* "1gbit", "500mbit" (bits/s) or a byte size per second ("100M"). */
int parse_rate(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t bits;
		uint64_t max;
	} units[] = { { "gbit", 1000000000ULL, 1000 },
		      { "mbit", 1000000ULL, 1000000 },
		      { "kbit", 1000ULL, 1000000000ULL } };
	char num[32];
	size_t n = strlen(s);
	uint64_t v;

	if (n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	/* "100MiB/s" and "1Gbit/s" as written */
	if (n > 2 && !strcmp(num + n - 2, "/s"))
		num[n -= 2] = 0;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		size_t k = strlen(units[i].suffix);

		if (n <= k || strcasecmp(num + n - k, units[i].suffix))
			continue;
		num[n - k] = 0;
		if (parse_count(num, &v) || v > units[i].max)
			return -EINVAL;
		*out = v * units[i].bits / 8;
		return 0;
	}
	return parse_size(num, out);
}

int parse_socket_buffer(const char *s, uint64_t *out)
{
	uint64_t v;

	if (!strcmp(s, "kernel")) {
		*out = 0;
		return 0;
	}
	if (parse_size(s, &v))
		return -EINVAL;
	if (v < (64ULL << 10) || v > (1ULL << 30))
		return -ERANGE;
	*out = v;
	return 0;
}
