// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/sockbuf.h on real TCP sockets: what a link needs, a
 * buffer left to autotuning where that suffices, set within the host's
 * limit, forced beyond it (as root) or reported capped (without
 * CAP_NET_ADMIN: SO_SNDBUFFORCE's EPERM), the message naming the sysctl,
 * TCP_NOTSENT_LOWAT, and the host's limits read from /proc/sys. The host
 * limits passed in are made up, so the outcome does not depend on this
 * machine's sysctls; the kernel's answer (getsockopt) is what is asserted.
 */
#include "tests/helpers.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "src/link.h"
#include "src/sockbuf.h"

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	return fd;
}

static uint64_t sndbuf(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &len), 0);
	return (uint64_t)v;
}

/* A host whose autotuning stops at 4 MiB and whose core limit is 4 MiB (8 doubled). */
static const struct sockbuf_host small_host = {
	.tcp_wmem_max = 4 << 20,
	.tcp_rmem_max = 6 << 20,
	.wmem_max = 4 << 20,
	.rmem_max = 4 << 20,
};

static void test_sockbuf_need(void **state)
{
	/* 1 Gbit/s at 100 ms: 12.5 MB in flight, two of them */
	assert_int_equal(sockbuf_need(125000000, 100000000, 0), 25000000);
	/* an unknown rate is taken as 10 Gbit/s, and the bound holds */
	assert_int_equal(sockbuf_need(0, 100000000, 64 << 20), 64 << 20);
	assert_int_equal(sockbuf_need(0, 1000000, 0), 2500000);
	/* a LAN needs little */
	assert_true(sockbuf_need(125000000, 100000, SOCKBUF_DEFAULT_MAX) < (64 << 10));
	(void)state;
}

static void test_sockbuf_auto_leaves_the_socket_alone(void **state)
{
	struct sockbuf_result r;
	int fd = tcp_socket();
	uint64_t before = sndbuf(fd);
	char msg[400];

	assert_int_equal(sockbuf_size(fd, true, 1 << 20, &small_host, &r), 0);
	assert_int_equal(r.how, SOCKBUF_AUTO);
	assert_int_equal(sndbuf(fd), before);
	assert_false(sockbuf_describe(&r, true, 100000000, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "autotuning"));
	close(fd);
	(void)state;
}

static void test_sockbuf_set_within_the_core_limit(void **state)
{
	struct sockbuf_result r;
	int fd = tcp_socket();
	uint64_t want = 6 << 20; /* above autotuning's 4 MiB, below 2 * wmem_max */
	char msg[400];

	/* the real limit must allow it for this case to mean anything */
	struct sockbuf_host h = small_host;
	struct sockbuf_host real;

	assert_int_equal(sockbuf_host_read(&real), 0);
	if (2 * real.wmem_max < want) {
		/* the kernel caps SO_SNDBUF at its own wmem_max: test with that */
		want = 2 * real.wmem_max;
		h.tcp_wmem_max = want / 2;
	}
	h.wmem_max = real.wmem_max;
	assert_int_equal(sockbuf_size(fd, true, want, &h, &r), 0);
	assert_int_equal(r.how, SOCKBUF_SET);
	assert_true(sndbuf(fd) >= want);
	assert_int_equal(r.got, sndbuf(fd));
	assert_false(sockbuf_describe(&r, true, 0, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "net.ipv4.tcp_wmem"));
	close(fd);
	(void)state;
}

static void test_sockbuf_beyond_the_core_limit(void **state)
{
	struct sockbuf_host real;
	struct sockbuf_result r;
	int fd = tcp_socket();
	uint64_t want;
	char msg[400];

	assert_int_equal(sockbuf_host_read(&real), 0);
	want = 2 * real.wmem_max + (16 << 20);
	assert_int_equal(sockbuf_size(fd, true, want, &real, &r), 0);
	if (geteuid() == 0) {
		/* root has CAP_NET_ADMIN: forced */
		assert_int_equal(r.how, SOCKBUF_FORCED);
		assert_true(sndbuf(fd) >= want);
	} else {
		assert_int_equal(r.how, SOCKBUF_CAPPED);
		assert_true(r.got < want);
		assert_true(sockbuf_describe(&r, true, 100000000, msg, sizeof(msg)));
		assert_non_null(strstr(msg, "sysctl -w net.core.wmem_max="));
	}
	close(fd);
	(void)state;
}

/* Inside a network namespace on Linux 6.1 net.core.wmem_max cannot be read: 0. */
static void test_sockbuf_core_limit_unknown(void **state)
{
	struct sockbuf_host h = small_host;
	struct sockbuf_result r;
	int fd = tcp_socket();
	uint64_t before = sndbuf(fd);

	h.wmem_max = 0;
	assert_int_equal(sockbuf_size(fd, true, 32 << 20, &h, &r), 0);
	if (geteuid() == 0) {
		assert_int_equal(r.how, SOCKBUF_FORCED);
		assert_true(sndbuf(fd) >= (32 << 20));
	} else {
		/* autotuning left alone: a smaller fixed buffer would only lose */
		assert_int_equal(r.how, SOCKBUF_CAPPED);
		assert_int_equal(sndbuf(fd), before);
		assert_int_equal(r.got, h.tcp_wmem_max);
	}
	close(fd);
	(void)state;
}

static void test_sockbuf_capped_message(void **state)
{
	struct sockbuf_result r = { .how = SOCKBUF_CAPPED, .want = 50 << 20, .got = 8 << 20 };
	char msg[400];

	assert_true(sockbuf_describe(&r, false, 100000000, msg, sizeof(msg)));
	/* names the sysctl and its value, and what the cap costs at this RTT */
	assert_non_null(strstr(msg, "receive buffer"));
	assert_non_null(strstr(msg, "net.core.rmem_max=26214400"));
	assert_non_null(strstr(msg, "at 100.0 ms RTT one stream moves at most ~336 Mbit/s"));
	(void)state;
}

static void test_sockbuf_lowat(void **state)
{
	int fd = tcp_socket();
	int v = 0;
	socklen_t len = sizeof(v);

	assert_int_equal(sockbuf_lowat(fd, SOCKBUF_LOWAT), 0);
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, &len), 0);
	assert_int_equal(v, SOCKBUF_LOWAT);
	assert_int_equal(sockbuf_lowat(-1, 1), -EBADF);
	close(fd);
	(void)state;
}

/* The destination's listener: its receive buffer, asked for 64 MiB, is what accept passes on. */
static void test_sockbuf_listener(void **state)
{
	struct sockbuf_host real;
	int fd = tcp_socket();
	int v = 0;
	socklen_t len = sizeof(v);

	assert_int_equal(sockbuf_host_read(&real), 0);
	assert_int_equal(link_size_listener(fd, SOCKBUF_DEFAULT_MAX), 0);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len), 0);
	if (real.tcp_rmem_max < SOCKBUF_DEFAULT_MAX && geteuid() == 0)
		assert_true((uint64_t)v >= SOCKBUF_DEFAULT_MAX);
	/* 0: the kernel's autotuning, untouched */
	assert_int_equal(link_size_listener(fd, 0), 0);
	close(fd);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sockbuf_need),
		cmocka_unit_test(test_sockbuf_auto_leaves_the_socket_alone),
		cmocka_unit_test(test_sockbuf_set_within_the_core_limit),
		cmocka_unit_test(test_sockbuf_beyond_the_core_limit),
		cmocka_unit_test(test_sockbuf_core_limit_unknown),
		cmocka_unit_test(test_sockbuf_capped_message),
		cmocka_unit_test(test_sockbuf_lowat),
		cmocka_unit_test(test_sockbuf_listener),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
