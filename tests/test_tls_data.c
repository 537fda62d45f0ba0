// SPDX-License-Identifier: MIT
/*
 * Tests for src/tls.h and the TLS path of src/net.h once the handshake
 * succeeds: real handshakes over loopback TCP, one thread per side
 * (tests/tls_fixture.h), then page batches each way checked byte for byte,
 * readers and writers at once on both ends, records OpenSSL holds that
 * poll() cannot see, a clean close; addresses, and TLS over IPv6.
 */
#include "tests/helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "src/net.h"
#include "src/proto.h"
#include "src/tls.h"
#include "tests/tls_fixture.h"

/* A page batch frame as the source sends one: batch head and 64 pages. */
#define HEAD_LEN (PROTO_PAGES_HDR + PROTO_BATCH_MAX * 8)
#define DATA_LEN (PROTO_BATCH_MAX * PROTO_PAGE_SIZE)

/* ---- data ---- */

/* Deterministic bytes for frame @seed: xorshift64, 8 bytes at a time. */
static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t i = 0; i < len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, min_t(size_t, 8, len - i));
	}
}

struct stream {
	struct net_conn *c;
	int frames;
	int err;
};

/* Send @s->frames page batch frames, frame k filled from seeds 2k+1 and 2k+2. */
static void *send_frames(void *arg)
{
	struct stream *s = arg;
	uint8_t *head = malloc(HEAD_LEN);
	uint8_t *data = malloc(DATA_LEN);

	s->err = head && data ? 0 : -ENOMEM;
	for (int k = 0; k < s->frames && !s->err; k++) {
		struct iovec v[2] = { { head, HEAD_LEN }, { data, DATA_LEN } };

		fill(head, HEAD_LEN, 2 * (uint64_t)k + 1);
		fill(data, DATA_LEN, 2 * (uint64_t)k + 2);
		s->err = net_send(s->c, PROTO_PAGES, 0, v, 2);
	}
	free(head);
	free(data);
	return NULL;
}

/* Receive what send_frames sends and check it byte for byte. */
static void recv_frames(struct net_conn *c, int frames)
{
	uint8_t *buf = malloc(PROTO_MAX_PAYLOAD);
	uint8_t *want = malloc(PROTO_MAX_PAYLOAD);

	assert_non_null(buf);
	assert_non_null(want);
	for (int k = 0; k < frames; k++) {
		const char *why = NULL;
		struct proto_hdr h;

		assert_int_equal(net_recv(c, &h, buf, PROTO_MAX_PAYLOAD, &why), 0);
		assert_int_equal(h.type, PROTO_PAGES);
		assert_int_equal(h.len, HEAD_LEN + DATA_LEN);
		fill(want, HEAD_LEN, 2 * (uint64_t)k + 1);
		fill(want + HEAD_LEN, DATA_LEN, 2 * (uint64_t)k + 2);
		assert_int_equal(memcmp(buf, want, HEAD_LEN + DATA_LEN), 0);
	}
	free(buf);
	free(want);
}

/* @from streams @frames frames (from a thread) to @to, which checks them. */
static void stream(struct net_conn *from, struct net_conn *to, int frames)
{
	struct stream s = { .c = from, .frames = frames };
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, send_frames, &s), 0);
	recv_frames(to, frames);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(s.err, 0);
}

/* Good credentials both ways; 8 MiB of page batches each way, checked; then a clean close. */
static void test_tls_handshake_round_trip(void **state)
{
	struct tf_end cl = { .ctx = tf_ctx_ok(*state, "good/src", false, "dst") };
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "good/dst", true, "src") };
	struct proto_hdr h;
	const char *why = NULL;
	uint8_t buf[64];

	tf_handshake(&cl, &sv);
	assert_int_equal(cl.err, 0);
	assert_int_equal(sv.err, 0);
	assert_string_equal(tls_peer_subject(cl.c.tls), "/CN=dst");
	assert_string_equal(tls_peer_subject(sv.c.tls), "/CN=src");
	assert_string_equal(tls_cipher(cl.c.tls), "TLS_AES_128_GCM_SHA256");
	stream(&cl.c, &sv.c, 32);
	stream(&sv.c, &cl.c, 32);
	assert_int_equal(cl.c.sent, sv.c.received);
	assert_int_equal(sv.c.sent, cl.c.received);

	/* close_notify, then EOF: the reader sees -EPIPE */
	net_close(&cl.c);
	assert_int_equal(net_recv(&sv.c, &h, buf, sizeof(buf), &why), -EPIPE);
	assert_int_equal(net_send(&cl.c, PROTO_REQ, 0, NULL, 0), -EPIPE);
	tf_end_close(&cl);
	tf_end_close(&sv);
}

/* The peer name may be an address, matched against the certificate's IP entries. */
static void test_tls_handshake_peer_ip(void **state)
{
	struct tf_end cl = { .ctx = tf_ctx_ok(*state, "good/src", false, "127.0.0.1") };
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "good/dst", true, NULL) };

	tf_handshake(&cl, &sv);
	assert_int_equal(cl.err, 0);
	assert_int_equal(sv.err, 0);
	tf_end_close(&cl);
	tf_end_close(&sv);
}

/* ---- concurrency ---- */

#define CC_FRAMES 150
#define CC_BIG	  (16 * PROTO_PAGE_SIZE)

struct cc_writer {
	struct net_conn *c;
	uint32_t id;
	int err;
};

struct cc_reader {
	struct net_conn *c;
	int frames; /* to read */
	int bad;    /* frames whose bytes or order were wrong */
	int err;
	uint32_t next[3]; /* next sequence number expected per writer id */
};

/* Frames tagged (writer, seq): every fourth a small REQ, the others 64 KiB PAGES. */
static void *cc_write(void *arg)
{
	struct cc_writer *w = arg;
	uint8_t *buf = malloc(CC_BIG);

	w->err = buf ? 0 : -ENOMEM;
	for (uint32_t seq = 0; seq < CC_FRAMES && !w->err; seq++) {
		uint64_t tag = (uint64_t)w->id << 32 | seq;
		bool small = seq % 4 == 0;
		struct iovec v = { buf, small ? PROTO_REQ_SIZE : CC_BIG };

		fill(buf, v.iov_len, tag);
		memcpy(buf, &tag, sizeof(tag));
		w->err = net_send(w->c, small ? PROTO_REQ : PROTO_PAGES, 0, &v, 1);
	}
	free(buf);
	return NULL;
}

/* Check one received frame against its tag; false if it is not what its writer sent. */
static bool cc_check(struct cc_reader *r, const uint8_t *buf, size_t len, uint8_t *want)
{
	uint64_t tag;
	uint32_t id;

	if (len < sizeof(tag))
		return false;
	memcpy(&tag, buf, sizeof(tag));
	id = (uint32_t)(tag >> 32);
	if (id >= ARRAY_SIZE(r->next) || (uint32_t)tag != r->next[id]++)
		return false;
	fill(want, len, tag);
	memcpy(want, &tag, sizeof(tag));
	return len == ((uint32_t)tag % 4 == 0 ? PROTO_REQ_SIZE : CC_BIG) && !memcmp(buf, want, len);
}

static void *cc_read(void *arg)
{
	struct cc_reader *r = arg;
	uint8_t *buf = malloc(PROTO_MAX_PAYLOAD);
	uint8_t *want = malloc(PROTO_MAX_PAYLOAD);

	r->err = buf && want ? 0 : -ENOMEM;
	for (int k = 0; k < r->frames && !r->err; k++) {
		const char *why = NULL;
		struct proto_hdr h;

		r->err = net_recv(r->c, &h, buf, PROTO_MAX_PAYLOAD, &why);
		if (!r->err && !cc_check(r, buf, (size_t)h.len, want))
			r->bad++;
	}
	free(buf);
	free(want);
	return NULL;
}

/*
 * Both ends read and write at once, as the destination does (a reader
 * thread, and page requests written from another), and the client has two
 * writers: frames must arrive whole, in each writer's order.
 */
static void test_tls_concurrent_reader_writer(void **state)
{
	struct tf_end cl = { .ctx = tf_ctx_ok(*state, "good/src", false, NULL) };
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "good/dst", true, NULL) };
	struct cc_writer w[3] = { { &cl.c, 1, 0 }, { &cl.c, 2, 0 }, { &sv.c, 1, 0 } };
	struct cc_reader r[2] = { { .c = &sv.c, .frames = 2 * CC_FRAMES },
				  { .c = &cl.c, .frames = CC_FRAMES } };
	pthread_t t[5];

	tf_handshake(&cl, &sv);
	assert_int_equal(cl.err, 0);
	assert_int_equal(sv.err, 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, cc_read, &r[i]), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[2 + i], NULL, cc_write, &w[i]), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(w[i].err, 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r[i].err, 0);
		assert_int_equal(r[i].bad, 0);
	}
	tf_end_close(&cl);
	tf_end_close(&sv);
}

/* Wait until @fd has @bytes to read (each record: header, frame, type byte, GCM tag). */
static void wait_inq(int fd, int bytes)
{
	int n = 0;

	for (int i = 0; i < IO_MS && n < bytes; i++) {
		assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
		if (n < bytes)
			nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
	}
	assert_true(n >= bytes);
}

/*
 * Records OpenSSL has already read from the socket are invisible to poll():
 * net_wait_readable must count them.
 */
static void test_net_wait_readable_tls_pending(void **state)
{
	struct tf_end cl = { .ctx = tf_ctx_ok(*state, "good/src", false, NULL) };
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "good/dst", true, NULL) };
	uint8_t req[PROTO_REQ_SIZE] = { 1 };
	struct iovec v = { req, sizeof(req) };
	const char *why = NULL;
	struct proto_hdr h;
	uint8_t buf[64];

	tf_handshake(&cl, &sv);
	assert_int_equal(sv.err, 0);
	assert_int_equal(net_wait_readable(&sv.c, 0), -ETIMEDOUT);
	assert_int_equal(net_send(&cl.c, PROTO_REQ, 0, &v, 1), 0);
	assert_int_equal(net_send(&cl.c, PROTO_REQ, 0, &v, 1), 0);
	assert_int_equal(net_wait_readable(&sv.c, IO_MS), 0);
	/* both records in the socket, so the first read takes both */
	wait_inq(sv.c.fd, 2 * (5 + PROTO_HDR_SIZE + PROTO_REQ_SIZE + 1 + 16));
	assert_int_equal(net_recv(&sv.c, &h, buf, sizeof(buf), &why), 0);
	assert_int_equal(net_wait_readable(&sv.c, 0), 0);
	assert_int_equal(net_recv(&sv.c, &h, buf, sizeof(buf), &why), 0);
	assert_int_equal(net_wait_readable(&sv.c, 0), -ETIMEDOUT);
	tf_end_close(&cl);
	tf_end_close(&sv);
	assert_int_equal(net_wait_readable(&sv.c, 0), -EPIPE);
}

/* ---- addresses ---- */

static void test_net_parse_sockaddr(void **state)
{
	static const char *const bad[] = { "::1:7000",	"[::1]",      "[::1]7000",
					   "1.2.3.4:0", ":7000",      "1.2.3.4:65536",
					   "[]:1",	"1.2.3.4:-1", "1.2.3.4:+1",
					   "dst:7000",	"1.2.3:7000", "[1.2.3.4]:7",
					   "[::1%]:7",	"1.2.3.4:",   "[::1]:7x" };
	struct sockaddr_storage ss;
	struct sockaddr_in *sa4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;

	assert_int_equal(net_parse_sockaddr("127.0.0.1:7000", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(len, sizeof(*sa4));
	assert_int_equal(ntohs(sa4->sin_port), 7000);
	assert_int_equal(net_parse_sockaddr("localhost:1", &ss, &len), 0);
	assert_int_equal(ntohl(sa4->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(net_parse_sockaddr("[::1]:65535", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(len, sizeof(*sa6));
	assert_int_equal(ntohs(sa6->sin6_port), 65535);
	assert_true(IN6_IS_ADDR_LOOPBACK(&sa6->sin6_addr));
	assert_int_equal(net_parse_sockaddr("[fe80::1%lo]:7", &ss, &len), 0);
	assert_int_equal(sa6->sin6_scope_id, 1);
	assert_int_equal(net_parse_sockaddr("[fd00::2%3]:7", &ss, &len), 0);
	assert_int_equal(sa6->sin6_scope_id, 3);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (net_parse_sockaddr(bad[i], &ss, &len) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
}

/* A free port on ::1 (bound, read, released: good enough for a test). */
static int free_port6(void)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -1;

	if (fd < 0)
		return -1;
	if (!bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (struct sockaddr *)&sa, &len))
		port = ntohs(sa.sin6_port);
	close(fd);
	return port;
}

/* net_listen/net_connect over IPv6, then TLS and a frame. */
static void test_net_ipv6_tls(void **state)
{
	struct tf_end cl = { .ctx = tf_ctx_ok(*state, "good/src", false, "dst") };
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "good/dst", true, "src") };
	int port = free_port6();
	char addr[64];
	char why[256];
	int lfd;
	int fd;

	hm_skip_unless("ipv6", port > 0, "no IPv6 loopback");
	snprintf(addr, sizeof(addr), "[::1]:%d", port);
	lfd = net_listen(addr, why, sizeof(why));
	assert_true(lfd >= 0);
	assert_int_equal(net_connect(&cl.c, addr, HS_MS, why, sizeof(why)), 0);
	fd = net_accept(lfd, -1, HS_MS);
	assert_true(fd >= 0);
	close(lfd);
	net_init(&sv.c, fd, HS_MS);
	assert_int_equal(pthread_create(&sv.thread, NULL, tf_start_thread, &sv), 0);
	tf_start_thread(&cl);
	assert_int_equal(pthread_join(sv.thread, NULL), 0);
	assert_int_equal(cl.err, 0);
	assert_int_equal(sv.err, 0);
	stream(&cl.c, &sv.c, 2);
	tf_end_close(&cl);
	tf_end_close(&sv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_handshake_round_trip),
		cmocka_unit_test(test_tls_handshake_peer_ip),
		cmocka_unit_test(test_tls_concurrent_reader_writer),
		cmocka_unit_test(test_net_wait_readable_tls_pending),
		cmocka_unit_test(test_net_parse_sockaddr),
		cmocka_unit_test(test_net_ipv6_tls),
	};

	/* a peer that resets mid-write must give -EPIPE, not kill us (main.c does the same) */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("tls data", tests, tf_setup, tf_teardown);
}
