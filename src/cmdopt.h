/* SPDX-License-Identifier: MIT */
/*
 * Table-driven command-line options. A command lists its options once, in a
 * static const table (long name, kind, where in its options struct the value
 * goes), and cmdopt_parse() runs getopt_long over the table: it stores each
 * value, checks it and prints the usage error of a bad one, in the form
 * every command uses: "bad --NAME 'VALUE' (HINT)". --help is always there.
 * What involves several options (required ones, exclusions) stays with the
 * command.
 */
#ifndef HM_CMDOPT_H
#define HM_CMDOPT_H

#include <stddef.h>
#include <stdint.h>
#include "src/util.h"

enum cmdopt_kind {
	CMDOPT_FLAG,	/* no argument: the bool at off becomes true */
	CMDOPT_STRING,	/* the argument itself, kept as a const char * at off */
	CMDOPT_COUNT,	/* parse_count_range(lo, hi) into an unsigned int or uint64_t */
	CMDOPT_RATE,	/* parse_rate(), at least lo (1 refuses 0), into a uint64_t */
	CMDOPT_SIZE,	/* parse_size() into a uint64_t */
	CMDOPT_SOCKBUF, /* parse_socket_buffer() into a uint64_t */
	CMDOPT_ADDR,	/* an address net_parse_sockaddr() takes, kept as the string */
	CMDOPT_CALL,	/* set() with the argument */
	CMDOPT_ACTION,	/* set() without an argument */
};

/*
 * One option of a command; a table ends with an entry whose name is NULL.
 * A bad value says "bad --NAME 'VALUE' (HINT)" when there is a hint, else
 * "bad --NAME 'VALUE' (LO to HI UNIT)" when hi is set, else "bad --NAME 'VALUE'".
 */
struct cmdopt {
	const char *name;      /* the long name, without "--" */
	enum cmdopt_kind kind; /* how the argument is read and stored */
	size_t off;	       /* offsetof() the field in the command's options struct */
	size_t size;	       /* sizeof() that field (CMDOPT_AT sets both) */
	uint64_t lo;	       /* COUNT, a CALL reading a count: the least; RATE: the least rate */
	uint64_t hi;	       /* COUNT, a CALL reading a count: the most (not 0) */
	const char *unit;      /* after the range in the message ("s", "ms"), or NULL */
	const char *hint;      /* the message's "(...)" instead of the range, or NULL */
	/*
	 * CALL, ACTION: store @arg (NULL for ACTION) in @opts, the struct given
	 * to cmdopt_parse(). 0, or -errno for a bad value (the message follows).
	 */
	int (*set)(const struct cmdopt *o, const char *arg, void *opts);
	char short_name; /* also -C for this option, or 0 */
};

/* The field F of the options struct T: .off and .size of a table entry. */
#define CMDOPT_AT(T, F) .off = offsetof(T, F), .size = sizeof(((T *)0)->F)

/* Where @o's value goes in @opts (for a set() that stores as a kind would). */
static inline void *cmdopt_field(const struct cmdopt *o, void *opts)
{
	return (char *)opts + o->off;
}

/*
 * Parse the options of command @cmd ("hybridmig CMD ...") from @argv (argv[0]
 * is the command's name), stopping at the first non-option ("+"), and store
 * them into @opts as @table says; --help calls @usage(@cmd), which prints the
 * command's help on stdout. Usage errors (a bad value, an unknown
 * option, an operand left over) go to stderr through cmd_usage_error().
 * Returns 0 when all parsed and no operand is left, -1 after --help printed
 * @usage, or EXIT_USAGE. @opts keeps the values stored before an error.
 */
int cmdopt_parse(const char *cmd, const struct cmdopt *table, int argc, char **argv, void *opts,
		 void (*usage)(const char *cmd)) __must_check;

/*
 * cmdopt_parse() that leaves the operands to the caller: they are argv[optind]
 * to argv[argc - 1].
 */
int cmdopt_scan(const char *cmd, const struct cmdopt *table, int argc, char **argv, void *opts,
		void (*usage)(const char *cmd)) __must_check;

#endif
