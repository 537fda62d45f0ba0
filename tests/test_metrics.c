// SPDX-License-Identifier: MIT
/* Unit tests for src/metrics.h (exposition, HTTP) and the fault latency buckets. */
#include "tests/helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "src/metrics.h"
#include "uffd/fault.h"

/* A loopback address with a port nobody listens on (bound, learnt, closed). */
static int free_addr(char *addr, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(addr, len, "127.0.0.1:%d", ntohs(sa.sin_port));
	return ntohs(sa.sin_port);
}

static void source(void *arg, struct metrics_out *o)
{
	static const double le[3] = { 0.001, 0.002, INFINITY };
	static const uint64_t count[3] = { 2, 3, 1 };
	char label[64];

	(void)arg;
	metrics_gauge(o, "hm_test_bytes", "Bytes.", 1073741824.0);
	metrics_gauge(o, "hm_test_rate", "A rate.", 0.25);
	metrics_label(label, sizeof(label), "to", "a\"b\\c\nd");
	metrics_family(o, "hm_test_info", "gauge", "Labels.");
	metrics_sample(o, "hm_test_info", label, 1);
	metrics_histogram(o, "hm_test_seconds", "A histogram.", le, count, 3, 0.0075);
}

static void test_exposition_text(void **state)
{
	struct event_base *base = event_base_new();
	char why[128];
	char addr[32];
	struct metrics *m;
	char *text;
	size_t len;

	(void)state;
	free_addr(addr, sizeof(addr));
	m = metrics_new(base, addr, why, sizeof(why));
	if (!m)
		fail_msg("metrics_new: %s", why);
	assert_int_equal(metrics_add(m, source, NULL), 0);
	assert_int_equal(metrics_render(m, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	assert_non_null(strstr(text, "# HELP hm_test_bytes Bytes.\n# TYPE hm_test_bytes gauge\n"
				     "hm_test_bytes 1073741824\n"));
	assert_non_null(strstr(text, "hm_test_rate 0.25\n"));
	/* quote, backslash and newline escaped as the format says */
	assert_non_null(strstr(text, "hm_test_info{to=\"a\\\"b\\\\c\\nd\"} 1\n"));
	/* buckets are cumulative; +Inf equals the count */
	assert_non_null(strstr(text, "hm_test_seconds_bucket{le=\"0.001\"} 2\n"
				     "hm_test_seconds_bucket{le=\"0.002\"} 5\n"
				     "hm_test_seconds_bucket{le=\"+Inf\"} 6\n"
				     "hm_test_seconds_sum 0.0075\nhm_test_seconds_count 6\n"));
	free(text);
	metrics_free(m);
	event_base_free(base);
}

static void test_sources_are_limited(void **state)
{
	struct event_base *base = event_base_new();
	char why[128];
	char addr[32];
	struct metrics *m;

	(void)state;
	free_addr(addr, sizeof(addr));
	m = metrics_new(base, addr, why, sizeof(why));
	assert_non_null(m);
	for (int i = 0; i < METRICS_MAX_SOURCES; i++)
		assert_int_equal(metrics_add(m, source, NULL), 0);
	assert_int_equal(metrics_add(m, source, NULL), -ENOSPC);
	metrics_free(m);
	event_base_free(base);
}

static void test_bad_address_is_refused(void **state)
{
	struct event_base *base = event_base_new();
	char why[128] = "";

	(void)state;
	assert_null(metrics_new(base, "nowhere", why, sizeof(why)));
	assert_true(why[0] != 0);
	event_base_free(base);
}

struct client {
	struct event_base *base;
	int port;
	const char *path;
	char reply[8192];
};

/* One HTTP/1.0 request from another thread, then stop the loop. */
static void *client_thread(void *arg)
{
	struct client *c = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port) };
	char req[128];
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", c->path);
		if (write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
			ssize_t n;

			while (got + 1 < sizeof(c->reply) &&
			       (n = read(fd, c->reply + got, sizeof(c->reply) - 1 - got)) > 0)
				got += (size_t)n;
		}
	}
	c->reply[got] = 0;
	if (fd >= 0)
		close(fd);
	event_base_loopbreak(c->base);
	return NULL;
}

static void get(const char *path, char *reply, size_t cap)
{
	struct client c = { .path = path };
	char why[128];
	struct metrics *m;
	pthread_t t;
	char addr[32];

	c.port = free_addr(addr, sizeof(addr));
	c.base = event_base_new();
	m = metrics_new(c.base, addr, why, sizeof(why));
	if (!m)
		fail_msg("metrics_new: %s", why);
	assert_int_equal(metrics_add(m, source, NULL), 0);
	assert_int_equal(pthread_create(&t, NULL, client_thread, &c), 0);
	event_base_dispatch(c.base);
	pthread_join(t, NULL);
	metrics_free(m);
	event_base_free(c.base);
	snprintf(reply, cap, "%s", c.reply);
}

static void test_http_get_metrics(void **state)
{
	static char reply[8192];

	(void)state;
	get("/metrics", reply, sizeof(reply));
	assert_non_null(strstr(reply, "HTTP/1.0 200") ? reply : strstr(reply, "HTTP/1.1 200"));
	assert_non_null(strstr(reply, "text/plain; version=0.0.4"));
	assert_non_null(strstr(reply, "hm_test_bytes 1073741824\n"));
	get("/metrics?x=1", reply, sizeof(reply));
	assert_non_null(strstr(reply, "hm_test_rate 0.25\n"));
	get("/", reply, sizeof(reply));
	assert_non_null(strstr(reply, " 404 "));
	assert_null(strstr(reply, "hm_test_bytes"));
}

static void test_latency_buckets(void **state)
{
	(void)state;
	assert_int_equal(fault_hist_bucket(0), 0);
	assert_int_equal(fault_hist_bucket(1), 1);
	assert_int_equal(fault_hist_bucket(2), 2);
	assert_int_equal(fault_hist_bucket(3), 2);
	assert_int_equal(fault_hist_bucket(4), 3);
	assert_int_equal(fault_hist_bucket(63), 6);
	assert_int_equal(fault_hist_bucket(64), 7);
	/* 2^(B-2) us and beyond share the last bucket */
	assert_int_equal(fault_hist_bucket((1ULL << (FAULT_HIST_BUCKETS - 2)) - 1),
			 FAULT_HIST_BUCKETS - 2);
	assert_int_equal(fault_hist_bucket(1ULL << (FAULT_HIST_BUCKETS - 2)),
			 FAULT_HIST_BUCKETS - 1);
	assert_int_equal(fault_hist_bucket(UINT64_MAX), FAULT_HIST_BUCKETS - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exposition_text),
		cmocka_unit_test(test_sources_are_limited),
		cmocka_unit_test(test_bad_address_is_refused),
		cmocka_unit_test(test_http_get_metrics),
		cmocka_unit_test(test_latency_buckets),
	};

	if (evthread_use_pthreads())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
