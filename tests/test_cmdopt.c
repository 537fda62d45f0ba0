// SPDX-License-Identifier: MIT
/* Unit tests for src/cmdopt.h: each kind, --help, operands, unknown options. */
#include "tests/helpers.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "src/cmd.h"
#include "src/cmdopt.h"
#include "src/parse.h"

#define TRY "Try 'hybridmig test --help'.\n"

struct topts {
	const char *name;
	const char *to;
	uint64_t count;
	unsigned int small;
	uint64_t rate;
	uint64_t size;
	uint64_t sockbuf;
	bool flag;
	uint64_t wait_ms; /* --wait, through a callback */
	int verbose;	  /* -v, --verbose: an action */
};

/* --wait S: a count in the entry's range, kept in milliseconds. */
static int set_wait(const struct cmdopt *o, const char *arg, void *opts)
{
	struct topts *t = opts;
	uint64_t s;
	int err = parse_count_range(arg, o->lo, o->hi, &s);

	if (!err)
		t->wait_ms = s * 1000;
	return err;
}

static int more_verbose(const struct cmdopt *o, const char *arg, void *opts)
{
	struct topts *t = opts;

	t->verbose += arg ? 100 : 1; /* an action has no argument */
	return 0;
}

static void test_usage(const char *cmd)
{
	printf("usage: hybridmig %s [--flag]\n", cmd);
}

#define AT(f) CMDOPT_AT(struct topts, f)
static const struct cmdopt table[] = {
	{ "name", CMDOPT_STRING, AT(name) },
	{ "to", CMDOPT_ADDR, AT(to), .hint = "ADDR:PORT" },
	{ "count", CMDOPT_COUNT, AT(count), .lo = 1, .hi = 600000, .unit = "ms" },
	{ "small", CMDOPT_COUNT, AT(small), .lo = 1, .hi = 8 },
	{ "rate", CMDOPT_RATE, AT(rate), .lo = 1 },
	{ "size", CMDOPT_SIZE, AT(size) },
	{ "socket-buffer", CMDOPT_SOCKBUF, AT(sockbuf), .hint = "64K to 1G, or kernel" },
	{ "flag", CMDOPT_FLAG, AT(flag) },
	{ "wait", CMDOPT_CALL, .set = set_wait, .lo = 1, .hi = 3600, .unit = "s" },
	{ "verbose", CMDOPT_ACTION, .set = more_verbose, .short_name = 'v' },
	{ NULL },
};
#undef AT

/* One file descriptor (1 or 2) sent to a temporary file. */
struct capture {
	int fd;
	int saved; /* the original, to put back */
	FILE *tmp;
};

static void capture_start(struct capture *c, int fd)
{
	fflush(fd == 1 ? stdout : stderr);
	c->fd = fd;
	c->tmp = tmpfile();
	assert_non_null(c->tmp);
	c->saved = dup(fd);
	assert_true(c->saved >= 0);
	assert_true(dup2(fileno(c->tmp), fd) >= 0);
}

/* Put the fd back; what was written to it meanwhile goes to @buf. */
static void capture_end(struct capture *c, char *buf, size_t len)
{
	size_t n;

	fflush(c->fd == 1 ? stdout : stderr);
	assert_true(dup2(c->saved, c->fd) >= 0);
	close(c->saved);
	rewind(c->tmp);
	n = fread(buf, 1, len - 1, c->tmp);
	buf[n] = 0;
	fclose(c->tmp);
}

/* A parse: its writable argv (the options keep pointers into it), status, stdout, stderr. */
struct result {
	char words[16][64];
	char *argv[17];
	int argc;
	int ret;
	char out[512];
	char err[512];
};

/* cmdopt_parse() (or cmdopt_scan() when @scan) of "test" and @args, up to a NULL. */
static void run(struct result *r, struct topts *o, bool scan, const char *const *args)
{
	struct capture out;
	struct capture err;

	memset(r, 0, sizeof(*r));
	memset(o, 0, sizeof(*o));
	for (r->argc = 0; args[r->argc]; r->argc++) {
		assert_in_range(r->argc, 0, ARRAY_SIZE(r->words) - 1);
		snprintf(r->words[r->argc], sizeof(r->words[0]), "%s", args[r->argc]);
		r->argv[r->argc] = r->words[r->argc];
	}
	capture_start(&out, 1);
	capture_start(&err, 2);
	r->ret =
	    (scan ? cmdopt_scan : cmdopt_parse)("test", table, r->argc, r->argv, o, test_usage);
	capture_end(&err, r->err, sizeof(r->err));
	capture_end(&out, r->out, sizeof(r->out));
}

#define PARSE(r, o, ...) run((r), (o), false, (const char *const[]){ "test", __VA_ARGS__, NULL })
#define SCAN(r, o, ...)	 run((r), (o), true, (const char *const[]){ "test", __VA_ARGS__, NULL })

/* The value parsed, nothing said. */
static void assert_ok(const struct result *r)
{
	assert_int_equal(r->ret, 0);
	assert_string_equal(r->err, "");
	assert_string_equal(r->out, "");
}

/* Exit status 2 and exactly "hybridmig test: @msg" and the hint on stderr. */
static void assert_usage(const struct result *r, const char *msg)
{
	char want[256];

	snprintf(want, sizeof(want), "hybridmig test: %s\n" TRY, msg);
	assert_int_equal(r->ret, EXIT_USAGE);
	assert_string_equal(r->err, want);
}

/* Exit status 2: getopt_long's line about @opt, then ours. */
static void assert_invalid(const struct result *r, const char *getopt_says)
{
	const char *ours = "hybridmig test: invalid option\n" TRY;
	size_t n = strlen(r->err);

	assert_int_equal(r->ret, EXIT_USAGE);
	assert_non_null(strstr(r->err, getopt_says));
	assert_true(n > strlen(ours));
	assert_string_equal(r->err + n - strlen(ours), ours);
}

/* One good value of each kind, stored in its field; the options keep pointers into argv. */
static void test_cmdopt_parse_values(void **state)
{
	struct result r;
	struct topts o;

	(void)state;
	PARSE(&r, &o, "--name", "vm1", "--to", "127.0.0.1:4444", "--count", "600k", "--small", "8",
	      "--rate", "1gbit");
	assert_ok(&r);
	assert_ptr_equal(o.name, r.argv[2]);
	assert_string_equal(o.to, "127.0.0.1:4444");
	assert_int_equal(o.count, 600000);
	assert_int_equal(o.small, 8);
	assert_int_equal(o.rate, 125000000);
	PARSE(&r, &o, "--size", "4G", "--socket-buffer=kernel", "--wait", "90", "--to", "[::1]:1");
	assert_ok(&r);
	assert_int_equal(o.size, 4ULL << 30);
	assert_int_equal(o.sockbuf, 0);
	assert_int_equal(o.wait_ms, 90000);
	assert_string_equal(o.to, "[::1]:1");
	PARSE(&r, &o, "--socket-buffer", "64M", "--name=vm2", "--rate", "100M");
	assert_int_equal(o.sockbuf, 64ULL << 20);
	assert_string_equal(o.name, "vm2");
	assert_int_equal(o.rate, 100ULL << 20);
}

/* A bad value of each kind: exit 2 and exactly its message, the field untouched. */
static void test_cmdopt_parse_bad_values(void **state)
{
	static const struct {
		const char *opt;
		const char *arg;
		const char *msg;
	} c[] = {
		{ "--to", "nowhere", "bad --to 'nowhere' (ADDR:PORT)" },
		{ "--count", "0", "bad --count '0' (1 to 600000 ms)" },
		{ "--count", "1.5", "bad --count '1.5' (1 to 600000 ms)" },
		{ "--small", "9", "bad --small '9' (1 to 8)" },
		{ "--rate", "0", "bad --rate '0'" },
		{ "--rate", "fast", "bad --rate 'fast'" },
		{ "--size", "lots", "bad --size 'lots'" },
		{ "--socket-buffer", "1K", "bad --socket-buffer '1K' (64K to 1G, or kernel)" },
		{ "--wait", "3601", "bad --wait '3601' (1 to 3600 s)" },
	};
	struct result r;
	struct topts o;
	struct topts zero = { 0 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		PARSE(&r, &o, c[i].opt, c[i].arg);
		assert_usage(&r, c[i].msg);
		assert_memory_equal(&o, &zero, sizeof(o));
	}
}

/* The options without an argument: a flag set, an action run per mention (short too). */
static void test_cmdopt_parse_flag_action(void **state)
{
	struct result r;
	struct topts o;

	(void)state;
	PARSE(&r, &o, "--name", "x");
	assert_false(o.flag);
	PARSE(&r, &o, "-v", "--flag", "-vv", "--verbose");
	assert_ok(&r);
	assert_true(o.flag);
	assert_int_equal(o.verbose, 4);
}

static void test_cmdopt_parse_help(void **state)
{
	struct result r;
	struct topts o;

	(void)state;
	PARSE(&r, &o, "--flag", "--help", "--name", "x");
	assert_int_equal(r.ret, -1);
	assert_string_equal(r.out, "usage: hybridmig test [--flag]\n");
	assert_string_equal(r.err, "");
	assert_true(o.flag);
	assert_null(o.name); /* nothing after --help */
}

static void test_cmdopt_parse_unexpected_argument(void **state)
{
	struct result r;
	struct topts o;

	(void)state;
	PARSE(&r, &o, "--flag", "extra");
	assert_usage(&r, "unexpected argument 'extra'");
	/* "+": the first operand ends the options */
	PARSE(&r, &o, "extra", "--flag");
	assert_usage(&r, "unexpected argument 'extra'");
	assert_false(o.flag);
}

/* What getopt_long refuses: its own line, then "invalid option" and exit 2. */
static void test_cmdopt_parse_unknown_option(void **state)
{
	static const struct {
		const char *arg;
		const char *getopt_says;
	} c[] = {
		{ "--nope", "test: unrecognized option '--nope'\n" },
		{ "--count", "test: option '--count' requires an argument\n" },
		{ "--flag=yes", "test: option '--flag' doesn't allow an argument\n" },
		{ "-x", "test: invalid option -- 'x'\n" },
	};
	struct result r;
	struct topts o;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		PARSE(&r, &o, c[i].arg);
		assert_invalid(&r, c[i].getopt_says);
	}
}

static void test_cmdopt_scan_operands(void **state)
{
	struct result r;
	struct topts o;

	(void)state;
	SCAN(&r, &o, "--flag", "100M", "more");
	assert_ok(&r);
	assert_true(o.flag);
	assert_int_equal(optind, 2);
	assert_string_equal(r.argv[optind], "100M");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmdopt_parse_values),
		cmocka_unit_test(test_cmdopt_parse_bad_values),
		cmocka_unit_test(test_cmdopt_parse_flag_action),
		cmocka_unit_test(test_cmdopt_parse_help),
		cmocka_unit_test(test_cmdopt_parse_unexpected_argument),
		cmocka_unit_test(test_cmdopt_parse_unknown_option),
		cmocka_unit_test(test_cmdopt_scan_operands),
	};

	return cmocka_run_group_tests_name("cmdopt", tests, NULL, NULL);
}
