// SPDX-License-Identifier: MIT
#include "src/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer ------------------------------------------------------------ */

void json_init(struct json_out *j, char *buf, size_t cap)
{
	memset(j, 0, sizeof(*j));
	j->buf = buf;
	j->cap = cap;
	if (cap)
		buf[0] = 0;
	else
		j->overflow = true;
}

static void put(struct json_out *j, const char *s, size_t n)
{
	if (j->overflow || n >= j->cap - j->len) {
		j->overflow = true;
		return;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = 0;
}

static void puts_(struct json_out *j, const char *s)
{
	put(j, s, strlen(s));
}

static void put_escaped(struct json_out *j, const char *s)
{
	put(j, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(j, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(j, esc, 6);
		} else {
			put(j, s, 1);
		}
	}
	put(j, "\"", 1);
}

/* Comma and key before a member. */
static void member(struct json_out *j, const char *key)
{
	if (j->depth >= JSON_MAX_DEPTH) {
		j->overflow = true;
		return;
	}
	if (j->has_items & (1u << j->depth))
		put(j, ",", 1);
	j->has_items |= 1u << j->depth;
	if (key) {
		put_escaped(j, key);
		put(j, ":", 1);
	}
}

static void open_(struct json_out *j, const char *key, const char *c)
{
	member(j, key);
	puts_(j, c);
	if (j->depth + 1 >= JSON_MAX_DEPTH) {
		j->overflow = true;
		return;
	}
	j->depth++;
	j->has_items &= ~(1u << j->depth);
}

static void close_(struct json_out *j, const char *c)
{
	if (!j->depth) {
		j->overflow = true;
		return;
	}
	j->depth--;
	puts_(j, c);
}

void json_obj_begin(struct json_out *j, const char *key)
{
	open_(j, key, "{");
}

void json_obj_end(struct json_out *j)
{
	close_(j, "}");
}

void json_arr_begin(struct json_out *j, const char *key)
{
	open_(j, key, "[");
}

void json_arr_end(struct json_out *j)
{
	close_(j, "]");
}

void json_str(struct json_out *j, const char *key, const char *val)
{
	member(j, key);
	put_escaped(j, val ? val : "");
}

void json_u64(struct json_out *j, const char *key, uint64_t val)
{
	char b[24];

	member(j, key);
	snprintf(b, sizeof(b), "%" PRIu64, val);
	puts_(j, b);
}

void json_i64(struct json_out *j, const char *key, int64_t val)
{
	char b[24];

	member(j, key);
	snprintf(b, sizeof(b), "%" PRId64, val);
	puts_(j, b);
}

void json_dbl(struct json_out *j, const char *key, double val, int prec)
{
	char b[64];

	member(j, key);
	if (!isfinite(val)) {
		puts_(j, "null");
		return;
	}
	snprintf(b, sizeof(b), "%.*f", prec, val);
	puts_(j, b);
}

void json_num(struct json_out *j, const char *key, double val)
{
	char b[40];

	member(j, key);
	if (!isfinite(val)) {
		puts_(j, "null");
		return;
	}
	snprintf(b, sizeof(b), "%.17g", val);
	puts_(j, b);
}

void json_raw(struct json_out *j, const char *key, const char *raw)
{
	member(j, key);
	puts_(j, raw);
}

void json_bool(struct json_out *j, const char *key, bool val)
{
	member(j, key);
	puts_(j, val ? "true" : "false");
}

void json_null(struct json_out *j, const char *key)
{
	member(j, key);
	puts_(j, "null");
}

void json_str_or_null(struct json_out *j, const char *key, const char *val)
{
	if (val)
		json_str(j, key, val);
	else
		json_null(j, key);
}

const char *json_done(struct json_out *j)
{
	return j->overflow || j->depth ? NULL : j->buf;
}

/* ---- reader ------------------------------------------------------------ */

struct cursor {
	const char *p;
	const char *end;
	const char *why;
};

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
		c->p++;
}

static bool eat(struct cursor *c, char ch)
{
	skip_ws(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

static int fail(struct cursor *c, const char *why)
{
	if (!c->why)
		c->why = why;
	return -EINVAL;
}

static int hex4(struct cursor *c, unsigned int *out)
{
	*out = 0;
	if (c->end - c->p < 4)
		return fail(c, "truncated \\u escape");
	for (int i = 0; i < 4; i++, c->p++) {
		char h = *c->p;

		*out <<= 4;
		if (h >= '0' && h <= '9')
			*out |= (unsigned int)(h - '0');
		else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f')
			*out |= (unsigned int)((h | 0x20) - 'a' + 10);
		else
			return fail(c, "bad \\u escape");
	}
	return 0;
}

static int escape(struct cursor *c, char *ch)
{
	static const char from[] = "\"\\/bfnrt";
	static const char to[] = "\"\\/\b\f\n\r\t";
	const char *k;
	unsigned int u;

	if (c->p >= c->end)
		return fail(c, "truncated escape");
	k = strchr(from, *c->p);
	if (k && *c->p) {
		*ch = to[k - from];
		c->p++;
		return 0;
	}
	if (*c->p != 'u')
		return fail(c, "bad escape in string");
	c->p++;
	if (hex4(c, &u))
		return -EINVAL;
	/* the protocol is ASCII; anything else is kept visible but harmless */
	*ch = (u >= 0x20 && u < 0x7f) ? (char)u : '?';
	return 0;
}

static int string(struct cursor *c, char *out, size_t cap)
{
	size_t n = 0;

	if (!eat(c, '"'))
		return fail(c, "expected a string");
	while (c->p < c->end && *c->p != '"') {
		char ch = *c->p++;

		if ((unsigned char)ch < 0x20)
			return fail(c, "control character in string");
		if (ch == '\\' && escape(c, &ch))
			return -EINVAL;
		if (n + 1 >= cap)
			return fail(c, "string too long");
		out[n++] = ch;
	}
	if (c->p >= c->end)
		return fail(c, "unterminated string");
	c->p++;
	out[n] = 0;
	return 0;
}

static int number(struct cursor *c, struct json_field *f)
{
	size_t n = 0;
	char *end;

	while (c->p < c->end && n + 1 < sizeof(f->str) && strchr("+-0123456789.eE", *c->p) && *c->p)
		f->str[n++] = *c->p++;
	f->str[n] = 0;
	if (!n)
		return fail(c, "expected a value");
	f->num = strtod(f->str, &end);
	if (*end || !isfinite(f->num))
		return fail(c, "bad number");
	f->type = JSON_NUMBER;
	return 0;
}

static int word(struct cursor *c, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n))
		return fail(c, "expected a value");
	c->p += n;
	return 0;
}

/* A flat array of numbers, kept as raw text (reports carry per-round figures). */
static int array(struct cursor *c, struct json_field *f)
{
	size_t n = 0;

	f->type = JSON_ARRAY;
	c->p++;
	while (c->p < c->end && *c->p != ']') {
		if (!*c->p || !strchr("+-0123456789.eE, \t", *c->p))
			return fail(c, "arrays may hold only numbers");
		if (n + 2 >= sizeof(f->str))
			return fail(c, "array too long");
		f->str[n++] = *c->p++;
	}
	if (c->p >= c->end)
		return fail(c, "unterminated array");
	c->p++;
	f->str[n] = 0;
	return 0;
}

/*
 * A nested object or array (of objects): skipped with brackets matched,
 * its first characters kept; readers that need it parse the raw line.
 */
static int nested(struct cursor *c, struct json_field *f)
{
	const char *start = c->p;
	unsigned int depth = 0;
	bool in_str = false;

	c->why = NULL;
	for (; c->p < c->end; c->p++) {
		char ch = *c->p;

		if (!ch)
			return fail(c, "NUL in a nested value");
		if (in_str) {
			if (ch == '\\' && c->p + 1 < c->end)
				c->p++;
			else if (ch == '"')
				in_str = false;
			continue;
		}
		if (ch == '"') {
			in_str = true;
		} else if (ch == '{' || ch == '[') {
			if (++depth > 16)
				return fail(c, "nested too deep");
		} else if (ch == '}' || ch == ']') {
			if (!--depth) {
				size_t n = (size_t)(c->p + 1 - start);

				c->p++;
				if (n >= sizeof(f->str))
					n = sizeof(f->str) - 1;
				memcpy(f->str, start, n);
				f->str[n] = 0;
				f->type = JSON_NESTED;
				return 0;
			}
		}
	}
	return fail(c, "unterminated nested value");
}

static int value(struct cursor *c, struct json_field *f)
{
	skip_ws(c);
	if (c->p >= c->end)
		return fail(c, "truncated object");
	switch (*c->p) {
	case '"':
		f->type = JSON_STRING;
		return string(c, f->str, sizeof(f->str));
	case '{':
		return nested(c, f);
	case '[': {
		const char *start = c->p;

		if (!array(c, f))
			return 0;
		if (strcmp(c->why, "arrays may hold only numbers"))
			return -EINVAL;
		c->p = start; /* an array of objects or strings */
		return nested(c, f);
	}
	case 't':
		f->type = JSON_BOOL;
		f->b = true;
		return word(c, "true");
	case 'f':
		f->type = JSON_BOOL;
		f->b = false;
		return word(c, "false");
	case 'n':
		f->type = JSON_NULL;
		return word(c, "null");
	default:
		return number(c, f);
	}
}

static int members(struct cursor *c, struct json_field *f, size_t max)
{
	size_t n = 0;

	if (eat(c, '}'))
		return 0;
	do {
		if (n >= max)
			return fail(c, "too many members");
		if (string(c, f[n].key, sizeof(f[n].key)))
			return -EINVAL;
		if (json_find(f, n, f[n].key))
			return fail(c, "duplicate key");
		if (!eat(c, ':'))
			return fail(c, "expected ':'");
		if (value(c, &f[n]))
			return -EINVAL;
		n++;
	} while (eat(c, ','));
	if (!eat(c, '}'))
		return fail(c, "expected ',' or '}'");
	return (int)n;
}

int json_parse_flat(const char *s, size_t len, struct json_field *f, size_t max, const char **why)
{
	struct cursor c = { s, s + len, NULL };
	int n;

	memset(f, 0, max * sizeof(*f));
	if (!eat(&c, '{')) {
		n = fail(&c, "not a JSON object");
		goto out;
	}
	n = members(&c, f, max);
	skip_ws(&c);
	if (n >= 0 && c.p != c.end)
		n = fail(&c, "trailing data after the object");
out:
	if (n < 0 && why)
		*why = c.why;
	return n;
}

const struct json_field *json_find(const struct json_field *f, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(f[i].key, key))
			return &f[i];
	return NULL;
}
