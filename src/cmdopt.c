// SPDX-License-Identifier: MIT
/* Table-driven command-line options (src/cmdopt.h). */
#include "src/cmdopt.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/socket.h>
#include "src/cmd.h"
#include "src/net.h"
#include "src/parse.h"

/* The most options one table holds. */
#define CMDOPT_MAX 32
/* What getopt_long returns for --help, and for the table's first entry (the rest follow). */
#define CMDOPT_HELP  256
#define CMDOPT_FIRST 257

/* A table as getopt_long takes it. */
struct cmdopt_view {
	struct option lo[CMDOPT_MAX + 2]; /* the entries, --help, the terminator */
	char shorts[2 * CMDOPT_MAX + 2];  /* "+", each short name (':' if it takes an argument) */
};

static bool takes_arg(const struct cmdopt *o)
{
	return o->kind != CMDOPT_FLAG && o->kind != CMDOPT_ACTION;
}

/* The field's size is the kind's: a table's mistake, caught on its first use. */
static bool size_fits(const struct cmdopt *o)
{
	switch (o->kind) {
	case CMDOPT_FLAG:
		return o->size == sizeof(bool);
	case CMDOPT_STRING:
	case CMDOPT_ADDR:
		return o->size == sizeof(const char *);
	case CMDOPT_COUNT:
		return o->size == sizeof(uint64_t) ||
		       (o->size == sizeof(unsigned int) && o->hi <= UINT_MAX);
	case CMDOPT_RATE:
	case CMDOPT_SIZE:
	case CMDOPT_SOCKBUF:
		return o->size == sizeof(uint64_t);
	default:
		return o->set != NULL;
	}
}

static void view_build(struct cmdopt_view *v, const struct cmdopt *t)
{
	char *s = v->shorts;
	int n;

	*s++ = '+'; /* stop at the first operand */
	for (n = 0; t[n].name; n++) {
		int has_arg = takes_arg(&t[n]) ? required_argument : no_argument;

		assert(n < CMDOPT_MAX && size_fits(&t[n]));
		v->lo[n] = (struct option){ t[n].name, has_arg, NULL, CMDOPT_FIRST + n };
		if (!t[n].short_name)
			continue;
		*s++ = t[n].short_name;
		if (has_arg)
			*s++ = ':';
	}
	v->lo[n++] = (struct option){ "help", no_argument, NULL, CMDOPT_HELP };
	v->lo[n] = (struct option){ NULL, 0, NULL, 0 };
	*s = 0;
}

/* The entry getopt_long returned @c for, or NULL ('?': an unknown option, a missing argument). */
static const struct cmdopt *view_entry(const struct cmdopt *t, int c)
{
	if (c >= CMDOPT_FIRST)
		return &t[c - CMDOPT_FIRST];
	for (; t->name; t++)
		if (t->short_name && c == t->short_name)
			return t;
	return NULL;
}

static int store_count(const struct cmdopt *o, const char *arg, void *field)
{
	uint64_t v;
	int err = parse_count_range(arg, o->lo, o->hi, &v);

	if (err)
		return err;
	if (o->size == sizeof(uint64_t))
		*(uint64_t *)field = v;
	else
		*(unsigned int *)field = (unsigned int)v;
	return 0;
}

static int store_rate(const struct cmdopt *o, const char *arg, uint64_t *field)
{
	uint64_t v;
	int err = parse_rate(arg, &v);

	if (err)
		return err;
	if (v < o->lo)
		return -ERANGE;
	*field = v;
	return 0;
}

static int store_addr(const char *arg, const char **field)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int err = net_parse_sockaddr(arg, &ss, &len);

	if (err)
		return err;
	*field = arg;
	return 0;
}

/* Store @arg as @o says. 0 or -errno for a bad value. */
static int store(const struct cmdopt *o, const char *arg, void *opts)
{
	void *field = cmdopt_field(o, opts);

	switch (o->kind) {
	case CMDOPT_FLAG:
		*(bool *)field = true;
		return 0;
	case CMDOPT_STRING:
		*(const char **)field = arg;
		return 0;
	case CMDOPT_COUNT:
		return store_count(o, arg, field);
	case CMDOPT_RATE:
		return store_rate(o, arg, field);
	case CMDOPT_SIZE:
		return parse_size(arg, field);
	case CMDOPT_SOCKBUF:
		return parse_socket_buffer(arg, field);
	case CMDOPT_ADDR:
		return store_addr(arg, field);
	case CMDOPT_CALL:
	case CMDOPT_ACTION:
		return o->set(o, arg, opts);
	}
	return -EINVAL;
}

/* "bad --NAME 'ARG' (HINT)": the hint as given, else the range, else none. */
static int bad_value(const char *cmd, const struct cmdopt *o, const char *arg)
{
	if (o->hint)
		return cmd_usage_error(cmd, "bad --%s '%s' (%s)", o->name, arg, o->hint);
	if (o->hi)
		return cmd_usage_error(cmd, "bad --%s '%s' (%llu to %llu%s%s)", o->name, arg,
				       (unsigned long long)o->lo, (unsigned long long)o->hi,
				       o->unit ? " " : "", o->unit ? o->unit : "");
	return cmd_usage_error(cmd, "bad --%s '%s'", o->name, arg);
}

int cmdopt_scan(const char *cmd, const struct cmdopt *table, int argc, char **argv, void *opts,
		void (*usage)(const char *cmd))
{
	struct cmdopt_view v;
	const struct cmdopt *o;
	int c;

	view_build(&v, table);
	optind = 0; /* glibc and musl: start afresh, whatever parsed before */
	while ((c = getopt_long(argc, argv, v.shorts, v.lo, NULL)) != -1) {
		if (c == CMDOPT_HELP) {
			usage(cmd);
			return -1;
		}
		o = view_entry(table, c);
		if (!o)
			return cmd_usage_error(cmd, "%s", "invalid option");
		if (store(o, optarg, opts))
			return bad_value(cmd, o, optarg ? optarg : "");
	}
	return 0;
}

int cmdopt_parse(const char *cmd, const struct cmdopt *table, int argc, char **argv, void *opts,
		 void (*usage)(const char *cmd))
{
	int ret = cmdopt_scan(cmd, table, argc, argv, opts, usage);

	if (!ret && optind < argc)
		return cmd_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return ret;
}
