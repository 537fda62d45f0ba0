/* SPDX-License-Identifier: MIT */
/*
 * Minimal JSON for the control protocol and --json output. The writer
 * fills a caller-supplied buffer (no allocation); the reader parses one flat
 * object of string, number, boolean and null members, which is all the
 * control protocol uses. Both are pure functions of their input.
 */
#ifndef HM_JSON_H
#define HM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "src/util.h"

#define JSON_MAX_DEPTH 16

struct json_out {
	char *buf; /* caller's buffer, always NUL-terminated */
	size_t cap;
	size_t len;
	bool overflow; /* something did not fit: the output is unusable */
	unsigned int depth;
	uint32_t has_items; /* bit d: level d already has a member */
};

void json_init(struct json_out *j, char *buf, size_t cap);
/* Members: @key is NULL inside arrays and at top level. */
void json_obj_begin(struct json_out *j, const char *key);
void json_obj_end(struct json_out *j);
void json_arr_begin(struct json_out *j, const char *key);
void json_arr_end(struct json_out *j);
void json_str(struct json_out *j, const char *key, const char *val);
void json_u64(struct json_out *j, const char *key, uint64_t val);
void json_i64(struct json_out *j, const char *key, int64_t val);
/* Doubles with @prec digits after the point; NaN and infinities become null. */
void json_dbl(struct json_out *j, const char *key, double val, int prec);
/* A double that reads back exactly (%.17g): recordings replayed bit for bit. */
void json_num(struct json_out *j, const char *key, double val);
/* Append @raw (already JSON) as the value of @key. */
void json_raw(struct json_out *j, const char *key, const char *raw);
void json_bool(struct json_out *j, const char *key, bool val);
void json_null(struct json_out *j, const char *key);
/* json_str, or null when @val is NULL: the same keys in every report. */
void json_str_or_null(struct json_out *j, const char *key, const char *val);
/* The finished text, or NULL when it overflowed or nesting is unbalanced. */
const char *json_done(struct json_out *j);

enum json_type {
	JSON_STRING,
	JSON_NUMBER,
	JSON_BOOL,
	JSON_NULL,
	JSON_ARRAY,  /* flat array of scalars, raw text kept in str */
	JSON_NESTED, /* object, or array of non-numbers: skipped, its start kept in str */
};

#define JSON_KEY_MAX 32
#define JSON_STR_MAX 640

struct json_field {
	char key[JSON_KEY_MAX];
	enum json_type type;
	char str[JSON_STR_MAX]; /* JSON_STRING value, also the raw text of a number */
	double num;		/* JSON_NUMBER */
	bool b;			/* JSON_BOOL */
};

/*
 * Parse one flat JSON object from @s (@len bytes, need not be terminated)
 * into at most @max fields. Returns the number of fields, or -EINVAL with
 * a reason in *why (static string) for anything else: not an object,
 * objects or nested arrays as values, duplicate or over-long keys, trailing data, bad escapes.
 */
int json_parse_flat(const char *s, size_t len, struct json_field *f, size_t max,
		    const char **why) __must_check;
/* The field named @key, or NULL. */
const struct json_field *json_find(const struct json_field *f, size_t n, const char *key);

#endif
