// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/policy_record.h, recordings of the policy's inputs and
 * limits as JSON lines that replay bit for bit (a migration of a synthetic
 * guest, tests/policy_guests.h, recorded and replayed twice), and for what
 * feeds the policy around it: the probe's sample as the model's input
 * (policy_input_from_sample) and post-copy's run window (policy/prefetch.c).
 */
#include "tests/helpers.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "policy/policy.h"
#include "src/cmd.h"
#include "src/json.h"
#include "src/policy_record.h"
#include "src/probe.h"
#include "src/util.h"
#include "tests/policy_guests.h"

#define MAX_FIELDS 64
#define LINE_LEN   8192

static struct json_field fields[MAX_FIELDS];

/* An input with figures that are not short decimals, and a full curve. */
static void odd_input(struct policy_input *in)
{
	memset(in, 0, sizeof(*in));
	in->t_s = 12.000000000000002;
	in->ram_pages = RAM_PAGES;
	in->resident_pages = 262145;
	in->wire_ratio = 1.0 / 3;
	in->dma_pages_per_s = 0.1 + 0.2;
	in->locality = 0.7071067811865476;
	in->bandwidth = 123456789.12345679;
	in->rtt_s = 1.7e-4 / 3; /* 17 significant digits needed */
	in->vcpus = 4;
	in->state_bytes = 32768;
	in->round = 7;
	in->remaining_pages = (1ULL << 53) + 1; /* beyond a double's integers */
	in->inflight_bytes = UINT64_MAX;
	in->round_s = 0.7300000000000001;
	in->round_dirtied = 12345;
	in->elapsed_s = 11.999999999999998;
	in->bytes_sent = 9007199254740993ULL;
	in->wss.n = POLICY_MAX_POINTS;
	for (uint32_t i = 0; i < POLICY_MAX_POINTS; i++) {
		in->wss.t_s[i] = 0.1 * pow(1.7, i);
		in->wss.pages[i] = 1000 * sqrt(i + 1.0) + 1.0 / 7;
	}
}

/* Write one JSON line with @fill's members; parse it back into fields. */
/* One recording line, {"type":@type,<@fill's members>}, into @buf (LINE_LEN). */
static void build_line(char *buf, const char *type, void (*fill)(struct json_out *, const void *),
		       const void *arg)
{
	struct json_out j;

	json_init(&j, buf, LINE_LEN);
	json_obj_begin(&j, NULL);
	json_str(&j, "type", type);
	fill(&j, arg);
	json_obj_end(&j);
	assert_non_null(json_done(&j));
}

static int write_parse(char *buf, void (*fill)(struct json_out *, const void *), const void *arg)
{
	const char *why = NULL;
	int n;

	build_line(buf, "input", fill, arg);
	n = json_parse_flat(buf, strlen(buf), fields, MAX_FIELDS, &why);
	if (n < 0)
		fail_msg("%s: %s", why, buf);
	return n;
}

static void fill_input(struct json_out *j, const void *arg)
{
	policy_record_input(j, arg);
}

static void fill_limits(struct json_out *j, const void *arg)
{
	policy_record_limits(j, arg);
}

static void fill_decision(struct json_out *j, const void *arg)
{
	policy_record_decision(j, arg);
}

static void fill_head(struct json_out *j, const void *arg)
{
	json_u64(j, "version", POLICY_RECORD_VERSION);
	json_str(j, "requested_mode", "auto");
	policy_record_limits(j, arg);
}

/* One recording line to @f. */
static void put_line(FILE *f, const char *type, void (*fill)(struct json_out *, const void *),
		     const void *arg)
{
	static char buf[LINE_LEN];

	build_line(buf, type, fill, arg);
	assert_true(fprintf(f, "%s\n", buf) > 0);
}

/*
 * A migration's recording, as mig_policy.c writes it: the operator cuts the
 * downtime limit to 20 ms and the bandwidth to a quarter of the link before
 * the fourth decision; with @say_limits the recording has the
 * {"type":"limits"} line that set-downtime and set-bandwidth write.
 */
static void record_limit_change(const char *path, bool say_limits)
{
	struct pg_guest g = pg_guest_writer(0.5, 0.3);
	struct policy_limits l = pg_limits();
	struct policy_decision d;
	struct policy_state st;
	struct policy_input in;
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	policy_init(&st, &l);
	put_line(f, "policy", fill_head, &l);
	pg_input_start(&g, &in);
	for (int i = 0; i < 8; i++) {
		if (i)
			pg_input_round(&g, &st.lim, &in);
		if (i == 3) {
			st.lim.max_downtime_s = 0.02;	 /* set-downtime 20 */
			st.lim.bandwidth_cap = LINK / 4; /* set-bandwidth */
			if (say_limits)
				put_line(f, "limits", fill_limits, &st.lim);
		}
		put_line(f, "input", fill_input, &in);
		pg_decide(&st, &in, AUTO, &d);
		put_line(f, "decision", fill_decision, &d);
	}
	assert_int_equal(fclose(f), 0);
}

/* `hybridmig policy simulate --trace @rec --json`: its exit status; its last line in @last. */
static int simulate(const char *rec, char *last, size_t cap)
{
	char out[] = "/tmp/hm-simulate-XXXXXX";
	char a0[] = "policy", a1[] = "simulate", a2[] = "--trace", a4[] = "--json";
	char *argv[] = { a0, a1, a2, (char *)rec, a4, NULL };
	int fd = mkstemp(out);
	int saved = dup(STDOUT_FILENO);
	FILE *f;
	int rc;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stdout);
	assert_true(dup2(fd, STDOUT_FILENO) >= 0);
	rc = cmd_policy(5, argv);
	fflush(stdout);
	assert_true(dup2(saved, STDOUT_FILENO) >= 0);
	close(saved);
	close(fd);
	f = fopen(out, "r");
	assert_non_null(f);
	last[0] = 0;
	while (fgets(last, (int)cap, f) && !strstr(last, "\"summary\""))
		;
	fclose(f);
	unlink(out);
	return rc;
}

/* A live limit change is in the recording, and the replay decides under it. */
static void test_simulate_follows_recorded_limits(void **state)
{
	char rec[] = "/tmp/hm-record-XXXXXX";
	char last[512];
	int fd = mkstemp(rec);

	assert_true(fd >= 0);
	close(fd);
	record_limit_change(rec, true);
	assert_int_equal(simulate(rec, last, sizeof(last)), 0);
	assert_non_null(strstr(last, "\"decisions\":8,"));
	assert_non_null(strstr(last, "\"same_as_recorded\":true"));
	/* the line matters: without it the replay keeps the old limit and differs */
	record_limit_change(rec, false);
	assert_int_equal(simulate(rec, last, sizeof(last)), 1);
	assert_non_null(strstr(last, "\"same_as_recorded\":false"));
	unlink(rec);
}

static void test_record_input_roundtrip(void **state)
{
	static char buf[LINE_LEN];
	struct policy_input in, back;
	int n;

	odd_input(&in);
	n = write_parse(buf, fill_input, &in);
	assert_int_equal(policy_record_read_input(fields, (size_t)n, &back), 0);
	assert_memory_equal(&in, &back, sizeof(in));
	/* an empty curve too */
	in.wss.n = 0;
	memset(in.wss.t_s, 0, sizeof(in.wss.t_s));
	memset(in.wss.pages, 0, sizeof(in.wss.pages));
	n = write_parse(buf, fill_input, &in);
	assert_int_equal(policy_record_read_input(fields, (size_t)n, &back), 0);
	assert_memory_equal(&in, &back, sizeof(in));
}

/* Post-copy answers: a run's window doubles to the limit; a jump starts again at one page. */
static void test_prefetch_run_window(void **state)
{
	struct policy_run r = { 0 };
	uint64_t g = 1000;

	(void)state;
	assert_int_equal(policy_run_window(&r, g), 1);
	g += 1;
	assert_int_equal(policy_run_window(&r, g), 2);
	g += 2;
	assert_int_equal(policy_run_window(&r, g), 4);
	g += 4;
	assert_int_equal(policy_run_window(&r, g), 8);
	g += 8;
	assert_int_equal(policy_run_window(&r, g), 16);
	g += 16;
	assert_int_equal(policy_run_window(&r, g), POLICY_RUN_MAX);
	/* the pusher filled a few pages in between: still the run */
	g += 16 + POLICY_RUN_SLACK;
	assert_int_equal(policy_run_window(&r, g), POLICY_RUN_MAX);
	/* backwards, far ahead, or inside the last answer: a new start */
	assert_int_equal(policy_run_window(&r, g - 100), 1);
	assert_int_equal(policy_run_window(&r, g + 10000), 1);
	assert_int_equal(policy_run_window(&r, g + 10000), 1);
	/* random faults never grow it */
	for (uint64_t x = 7, i = 0; i < 1000; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		assert_true(policy_run_window(&r, (x >> 20) % (1 << 20)) <= 2);
	}
}

/* The probe's figures become the model's input: the curve, DMA, RTT and locality. */
static void test_input_from_probe_sample(void **state)
{
	struct probe_sample ps = { .nwin = 2,
				   .wss_pages = { 100, 200 },
				   .dma_pages_per_s = 5,
				   .rtt_us = 100000,
				   .locality = 0.8 };
	struct policy_input in = { .rtt_s = 0.001 };

	(void)state;
	policy_input_from_sample(&in, &ps);
	assert_int_equal(in.wss.n, 2);
	assert_true(in.dma_pages_per_s == 5);
	assert_true(fabs(in.rtt_s - 0.1) < 1e-12);
	assert_true(in.locality == 0.8);
	/* out of range is clamped, not trusted */
	ps.locality = 3;
	policy_input_from_sample(&in, &ps);
	assert_true(in.locality == 1);
}

static void test_record_limits_roundtrip(void **state)
{
	static char buf[LINE_LEN];
	struct policy_limits l, back;
	int n;

	pg_set_samples(&l);
	l.max_downtime_s = 0.1 + 0.2;
	l.max_slowdown = 1.0 / 3;
	l.fault_service_s = 61e-6 / 7;
	n = write_parse(buf, fill_limits, &l);
	memset(&back, 0, sizeof(back));
	assert_int_equal(policy_record_read_limits(fields, (size_t)n, &back), 0);
	assert_memory_equal(&l, &back, sizeof(l));
	/* keys missing keep their values; a key out of range is refused */
	policy_limits_default(&back);
	n = json_parse_flat("{\"max_rounds\":7}", 16, fields, MAX_FIELDS, &(const char *){ 0 });
	assert_int_equal(n, 1);
	assert_int_equal(policy_record_read_limits(fields, (size_t)n, &back), 0);
	assert_int_equal(back.max_rounds, 7);
	assert_true(back.max_downtime_s == 0.3);
	n = json_parse_flat("{\"max_slowdown\":3}", 18, fields, MAX_FIELDS, &(const char *){ 0 });
	assert_int_equal(policy_record_read_limits(fields, (size_t)n, &back), -EINVAL);
	n = json_parse_flat("{\"max_slowdown\":\"x\"}", 20, fields, MAX_FIELDS,
			    &(const char *){ 0 });
	assert_int_equal(policy_record_read_limits(fields, (size_t)n, &back), -EINVAL);
}

static void test_record_read_input_rejects(void **state)
{
	static const char *const bad[] = {
		"{\"round\":-1}",
		"{\"bandwidth\":\"fast\"}",
		"{\"wss_t_s\":[1,2],\"wss_pages\":[1]}",
		"{\"wss_t_s\":[2,1],\"wss_pages\":[1,2]}",
		"{\"wss_t_s\":[1,1],\"wss_pages\":[1,2]}",
		"{\"wss_t_s\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17],"
		"\"wss_pages\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}",
	};
	struct policy_input in;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *why = NULL;
		int n = json_parse_flat(bad[i], strlen(bad[i]), fields, MAX_FIELDS, &why);

		if (n >= 0 && policy_record_read_input(fields, (size_t)n, &in) != -EINVAL)
			fail_msg("accepted %s", bad[i]);
	}
	/* fields absent stay zero */
	assert_int_equal(
	    json_parse_flat("{\"round\":3}", 11, fields, MAX_FIELDS, &(const char *){ 0 }), 1);
	assert_int_equal(policy_record_read_input(fields, 1, &in), 0);
	assert_int_equal(in.round, 3);
	assert_int_equal(in.wss.n, 0);
	assert_true(in.bandwidth == 0);
}

static void test_record_mode_names(void **state)
{
	assert_string_equal(policy_record_mode_name(-1), "auto");
	for (int m = 0; m < POLICY_NMODES; m++)
		assert_int_equal(policy_record_mode(policy_record_mode_name(m)), m);
	assert_int_equal(policy_record_mode("auto"), -1);
	assert_int_equal(policy_record_mode("fast"), -2);
	assert_string_equal(policy_action_name(POLICY_GIVE_UP), "give-up");
	assert_string_equal(policy_action_name((enum policy_action)99), "?");
	assert_string_equal(policy_mode_name(POLICY_NMODES), "?");
}

static void expect_same_decision(const struct policy_decision *a, const struct policy_decision *b)
{
	assert_int_equal(a->action, b->action);
	assert_int_equal(a->choice, b->choice);
	assert_string_equal(a->reason, b->reason);
	assert_memory_equal(&a->bandwidth, &b->bandwidth, sizeof(double));
	for (int m = 0; m < POLICY_NMODES; m++) {
		const struct policy_prediction *p = &a->pred[m], *q = &b->pred[m];

		assert_int_equal(p->feasible, q->feasible);
		assert_int_equal(p->completes, q->completes);
		assert_int_equal(p->rounds, q->rounds);
		assert_memory_equal(&p->total_s, &q->total_s, sizeof(double));
		assert_memory_equal(&p->downtime_s, &q->downtime_s, sizeof(double));
		assert_memory_equal(&p->bytes, &q->bytes, sizeof(double));
		assert_memory_equal(&p->remote_faults, &q->remote_faults, sizeof(double));
		assert_memory_equal(&p->slowdown, &q->slowdown, sizeof(double));
		assert_string_equal(p->fails, q->fails);
	}
}

/*
 * A migration recorded (limits, then one input per decision) and replayed
 * from its JSON lines, twice: the same decisions, bit for bit.
 */
static void test_record_replay_same_decisions(void **state)
{
	enum { STEPS = 24 };
	static char lines[STEPS + 1][LINE_LEN];
	static struct policy_decision orig[STEPS];
	struct pg_guest g = pg_guest_writer(0.8, 0.3);
	struct policy_limits l = pg_limits();
	struct policy_state st;
	struct policy_input in;
	int n;

	/* odd limits and an irregular link, a blip included */
	l.max_downtime_s = 0.1 + 0.2 / 3;
	l.ewma_alpha = 1.0 / 7;
	l.max_slowdown = 0.05;
	policy_init(&st, &l);
	write_parse(lines[0], fill_limits, &l);
	pg_input_start(&g, &in);
	for (int i = 0; i < STEPS; i++) {
		if (i)
			pg_input_round(&g, &l, &in);
		in.bandwidth = LINK * (0.9 + 0.2 * sin(i * 1.3)) * (i == 11 ? 0.2 : 1);
		in.t_s += 1e-3 / 3;
		in.locality = 0.3 + 0.01 * i / 3;
		write_parse(lines[i + 1], fill_input, &in);
		pg_decide(&st, &in, AUTO, &orig[i]);
	}
	for (int pass = 0; pass < 2; pass++) {
		struct policy_limits rl;
		struct policy_decision d;

		memset(&rl, 0, sizeof(rl));
		n = json_parse_flat(lines[0], strlen(lines[0]), fields, MAX_FIELDS,
				    &(const char *){ 0 });
		assert_int_equal(policy_record_read_limits(fields, (size_t)n, &rl), 0);
		policy_init(&st, &rl);
		for (int i = 0; i < STEPS; i++) {
			n = json_parse_flat(lines[i + 1], strlen(lines[i + 1]), fields, MAX_FIELDS,
					    &(const char *){ 0 });
			assert_int_equal(policy_record_read_input(fields, (size_t)n, &in), 0);
			policy_decide(&st, &in, AUTO, &d);
			expect_same_decision(&orig[i], &d);
		}
	}
}

/* The decision's own record carries its action, choice and reason. */
static void test_record_decision_fields(void **state)
{
	static char buf[LINE_LEN];
	struct pg_guest g = pg_guest_writer(0.5, 1);
	struct policy_limits l = pg_limits();
	struct policy_decision d;
	struct json_out j;
	const struct json_field *f;
	int n;

	pg_decide_start(&g, &l, AUTO, &d);
	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	policy_record_decision(&j, &d);
	json_obj_end(&j);
	assert_non_null(json_done(&j));
	n = json_parse_flat(buf, strlen(buf), fields, MAX_FIELDS, &(const char *){ 0 });
	assert_true(n > 0);
	f = json_find(fields, (size_t)n, "action");
	assert_non_null(f);
	assert_string_equal(f->str, policy_action_name(d.action));
	f = json_find(fields, (size_t)n, "choice");
	assert_string_equal(f->str, policy_mode_name(d.choice));
	f = json_find(fields, (size_t)n, "reason");
	assert_string_equal(f->str, d.reason);
	f = json_find(fields, (size_t)n, "postcopy_downtime_s");
	assert_non_null(f);
	assert_true(f->num == d.pred[POLICY_POSTCOPY].downtime_s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_input_roundtrip),
		cmocka_unit_test(test_input_from_probe_sample),
		cmocka_unit_test(test_prefetch_run_window),
		cmocka_unit_test(test_record_limits_roundtrip),
		cmocka_unit_test(test_record_read_input_rejects),
		cmocka_unit_test(test_record_mode_names),
		cmocka_unit_test(test_record_replay_same_decisions),
		cmocka_unit_test(test_record_decision_fields),
		cmocka_unit_test(test_simulate_follows_recorded_limits),
	};

	return cmocka_run_group_tests_name("policy record", tests, NULL, NULL);
}
