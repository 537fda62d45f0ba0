// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/net.h framing over a socketpair (plain TCP semantics):
 * round trip, a frame announced larger than the buffer, a peer gone, and the
 * per-frame deadline that stops a peer dripping a frame byte by byte.
 * Errors are asserted, never times.
 */
#include "tests/helpers.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "src/net.h"

struct drip {
	int fd;
	const uint8_t *buf;
	size_t len;
	long gap_ms;
};

/* Write one byte at a time with a pause between them, until done or the peer left. */
static void *drip_thread(void *arg)
{
	struct drip *d = arg;
	struct timespec ts = { 0, d->gap_ms * 1000000L };

	for (size_t i = 0; i < d->len; i++) {
		if (send(d->fd, d->buf + i, 1, MSG_NOSIGNAL) != 1)
			break;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void test_net_recv_round_trip(void **state)
{
	uint8_t payload[PROTO_READY_SIZE] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct iovec v = { payload, sizeof(payload) };
	struct net_conn a, b;
	uint8_t rx[64];
	const char *why = NULL;
	struct proto_hdr h;
	int sv[2];

	pair(sv);
	net_init(&a, sv[0], 1000);
	net_init(&b, sv[1], 1000);
	assert_int_equal(net_send(&a, PROTO_READY, 0, &v, 1), 0);
	assert_int_equal(net_recv(&b, &h, rx, sizeof(rx), &why), 0);
	assert_int_equal(h.type, PROTO_READY);
	assert_memory_equal(rx, payload, sizeof(payload));
	net_close(&a);
	assert_int_equal(net_recv(&b, &h, rx, sizeof(rx), &why), -EPIPE);
	net_close(&b);
}

static void test_net_recv_larger_than_buffer(void **state)
{
	uint8_t payload[PROTO_STATUS_SIZE] = { 0 };
	struct iovec v = { payload, sizeof(payload) };
	struct net_conn a, b;
	uint8_t rx[8];
	const char *why = NULL;
	struct proto_hdr h;
	int sv[2];

	pair(sv);
	net_init(&a, sv[0], 1000);
	net_init(&b, sv[1], 1000);
	assert_int_equal(net_send(&a, PROTO_STATUS, 0, &v, 1), 0);
	assert_int_equal(net_recv(&b, &h, rx, sizeof(rx), &why), -EBADMSG);
	assert_string_equal(why, "frame larger than this side accepts");
	net_close(&a);
	net_close(&b);
}

/* Every byte comes within the per-read timeout, but the frame as a whole does not. */
static void test_net_recv_frame_deadline(void **state)
{
	uint8_t frame[PROTO_HDR_SIZE + PROTO_STATUS_SIZE] = { 0 };
	struct drip d = { .buf = frame, .len = sizeof(frame), .gap_ms = 40 };
	struct net_conn b;
	uint8_t rx[64];
	const char *why = NULL;
	struct proto_hdr h;
	pthread_t t;
	int sv[2];

	proto_hdr_encode(frame, PROTO_STATUS, 0, PROTO_STATUS_SIZE);
	frame[PROTO_HDR_SIZE] = PROTO_DST_RUNNING;
	pair(sv);
	d.fd = sv[0];
	/* 32 bytes at 40 ms apart take ~1.3 s; each read waits at most 300 ms */
	net_init(&b, sv[1], 300);
	assert_int_equal(pthread_create(&t, NULL, drip_thread, &d), 0);
	assert_int_equal(net_recv(&b, &h, rx, sizeof(rx), &why), -ETIMEDOUT);
	net_close(&b);
	pthread_join(t, NULL);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_recv_round_trip),
		cmocka_unit_test(test_net_recv_larger_than_buffer),
		cmocka_unit_test(test_net_recv_frame_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
