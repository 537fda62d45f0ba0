// SPDX-License-Identifier: MIT
/*
 * Tests for src/tls.h and the TLS path of src/net.h where the handshake
 * must fail, and say why: certificates another CA signed, a name the
 * certificate lacks, no certificate; peers that misbehave (garbage,
 * silence, trickling, bytes that are not TLS records), which are raw
 * sockets or raw OpenSSL, not tls.c; credential dirs that must not load.
 * Real handshakes over loopback TCP, one thread per side (tests/tls_fixture.h).
 */
#include "tests/helpers.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include "src/net.h"
#include "src/proto.h"
#include "src/tls.h"
#include "tests/tls_fixture.h"

/* ---- refusals ---- */

/* A server whose certificate another CA signed: we refuse it, and it hears why. */
static void test_tls_handshake_server_other_ca(void **state)
{
	struct tf_end cl = { .ctx = tf_ctx_ok(*state, "good/src", false, NULL) };
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "stranger/evil", true, NULL) };

	tf_handshake(&cl, &sv);
	tf_assert_why(cl.err, cl.why, -EACCES, "peer certificate (/CN=evil) not signed by our CA");
	tf_assert_why(sv.err, sv.why, -EACCES, "peer refused our certificate");
	tf_end_close(&cl);
	tf_end_close(&sv);
}

/* A client whose certificate another CA signed (it trusts ours): the server refuses it. */
static void test_tls_handshake_client_other_ca(void **state)
{
	struct tf_end cl = { .ctx = tf_ctx_ok(*state, "mixed", false, NULL) };
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "good/dst", true, NULL) };

	tf_handshake(&cl, &sv);
	tf_assert_why(sv.err, sv.why, -EACCES, "peer certificate (/CN=evil) not signed by our CA");
	/* no session ticket comes, the alert does: the client learns of it in its handshake */
	tf_assert_why(cl.err, cl.why, -EACCES, "peer refused our certificate");
	tf_end_close(&cl);
	tf_end_close(&sv);
}

/* Raw OpenSSL client without a certificate: handshake, then read what the server says. */
static void *certless_client(void *arg)
{
	int fd = *(int *)arg;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	char b;

	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (ssl && SSL_set_fd(ssl, fd) == 1 && SSL_connect(ssl) == 1)
		(void)!SSL_read(ssl, &b, 1);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return NULL;
}

static void test_tls_handshake_no_client_cert(void **state)
{
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "good/dst", true, NULL) };
	pthread_t t;
	int a;
	int b;

	tf_tcp_pair(&a, &b);
	net_init(&sv.c, b, HS_MS);
	assert_int_equal(pthread_create(&t, NULL, certless_client, &a), 0);
	tf_start_thread(&sv);
	assert_int_equal(pthread_join(t, NULL), 0);
	tf_assert_why(sv.err, sv.why, -EACCES, "peer sent no certificate");
	tf_end_close(&sv);
}

struct raw_server {
	int fd;
	const char *dir; /* host credentials: cert.pem, key.pem, ca.pem */
	int tickets;	 /* session tickets it sends */
};

/* Raw OpenSSL server (not tls.c): requires a client certificate, then waits for EOF. */
static void *raw_server(void *arg)
{
	struct raw_server *r = arg;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char p[PATH_MAX];
	SSL *ssl = NULL;
	char b;

	snprintf(p, sizeof(p), "%s/cert.pem", r->dir);
	SSL_CTX_use_certificate_chain_file(ctx, p);
	snprintf(p, sizeof(p), "%s/key.pem", r->dir);
	SSL_CTX_use_PrivateKey_file(ctx, p, SSL_FILETYPE_PEM);
	snprintf(p, sizeof(p), "%s/ca.pem", r->dir);
	SSL_CTX_load_verify_file(ctx, p);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_num_tickets(ctx, (size_t)r->tickets);
	ssl = SSL_new(ctx);
	if (ssl && SSL_set_fd(ssl, r->fd) == 1 && SSL_accept(ssl) == 1)
		(void)!SSL_read(ssl, &b, 1);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * Our client takes the server's session ticket as its word that it accepted
 * us: any TLS 1.3 server with tickets on will do; one without makes the
 * client wait out its deadline.
 */
static void test_tls_handshake_foreign_server(void **state)
{
	const struct tf_fixture *f = *state;
	struct tf_end cl = { .ctx = tf_ctx_ok(f, "good/src", false, "dst") };
	char dir[PATH_MAX];
	pthread_t t;

	snprintf(dir, sizeof(dir), "%s/good/dst", f->dir);
	for (int tickets = 2; tickets >= 0; tickets -= 2) {
		struct raw_server r = { .dir = dir, .tickets = tickets };
		int a;

		tf_tcp_pair(&a, &r.fd);
		assert_int_equal(pthread_create(&t, NULL, raw_server, &r), 0);
		net_init(&cl.c, a, tickets ? HS_MS : SHORT_MS);
		tf_start_thread(&cl);
		net_close(&cl.c); /* the server sees EOF and ends */
		assert_int_equal(pthread_join(t, NULL), 0);
		close(r.fd);
		if (tickets)
			assert_int_equal(cl.err, 0);
		else
			tf_assert_why(cl.err, cl.why, -ETIMEDOUT, "no word on our certificate");
	}
	tls_ctx_free(cl.ctx);
}

/* The client wants a name the server's certificate does not carry. */
static void test_tls_handshake_wrong_peer_name(void **state)
{
	struct tf_end cl = { .ctx = tf_ctx_ok(*state, "good/src", false, "nothere") };
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "good/dst", true, "src") };

	tf_handshake(&cl, &sv);
	tf_assert_why(cl.err, cl.why, -EACCES, "peer name nothere does not match");
	tf_assert_why(sv.err, sv.why, -EACCES, "peer refused our certificate");
	tf_end_close(&cl);
	tf_end_close(&sv);
}

/* The server checks the client's name too. */
static void test_tls_handshake_wrong_peer_name_server(void **state)
{
	struct tf_end cl = { .ctx = tf_ctx_ok(*state, "good/src", false, "dst") };
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "good/dst", true, "nothere") };

	tf_handshake(&cl, &sv);
	tf_assert_why(sv.err, sv.why, -EACCES, "peer name nothere does not match");
	tf_assert_why(cl.err, cl.why, -EACCES, "peer refused our certificate");
	tf_end_close(&cl);
	tf_end_close(&sv);
}

/* ---- misbehaving peers ---- */

/* Run @e's handshake on @fd against a raw peer on @peer that first writes @out. */
static void against_raw(struct tf_end *e, int fd, int timeout_ms, int peer, const char *out)
{
	net_init(&e->c, fd, timeout_ms);
	if (out)
		assert_int_equal(send(peer, out, strlen(out), MSG_NOSIGNAL), (ssize_t)strlen(out));
	tf_start_thread(e);
	close(peer);
}

static void test_tls_handshake_garbage(void **state)
{
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "good/dst", true, NULL) };
	struct tf_end cl = { .ctx = tf_ctx_ok(*state, "good/src", false, NULL) };
	int a;
	int b;

	tf_tcp_pair(&a, &b);
	against_raw(&sv, b, HS_MS, a, "GET / HTTP/1.1\r\nHost: dst\r\n\r\n");
	assert_int_equal(sv.err, -EPROTO);
	tf_end_close(&sv);

	/* and a client talking to something that is not a TLS server */
	tf_tcp_pair(&a, &b);
	against_raw(&cl, a, HS_MS, b, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(cl.err, -EPROTO);
	tf_end_close(&cl);
}

static void test_tls_handshake_silent_peer(void **state)
{
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "good/dst", true, NULL) };
	struct tf_end cl = { .ctx = tf_ctx_ok(*state, "good/src", false, NULL) };
	int a;
	int b;

	tf_tcp_pair(&a, &b);
	against_raw(&sv, b, SHORT_MS, a, NULL);
	tf_assert_why(sv.err, sv.why, -ETIMEDOUT, "peer sent nothing");
	tf_end_close(&sv);

	tf_tcp_pair(&a, &b);
	against_raw(&cl, a, SHORT_MS, b, NULL);
	tf_assert_why(cl.err, cl.why, -ETIMEDOUT, "peer sent nothing");
	tf_end_close(&cl);
}

/* A real ClientHello, to trickle: garbage would be refused at its first byte. */
static int client_hello(uint8_t *buf, int cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	BIO *rb = BIO_new(BIO_s_mem());
	BIO *wb = BIO_new(BIO_s_mem());
	int n = -1;

	if (ssl && rb && wb) {
		SSL_set_bio(ssl, rb, wb);
		rb = wb = NULL;
		SSL_connect(ssl); /* wants the ServerHello: the ClientHello is out */
		n = BIO_read(SSL_get_wbio(ssl), buf, cap);
	}
	BIO_free(rb);
	BIO_free(wb);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return n;
}

struct trickle {
	int fd;
	uint8_t bytes[2048];
	int len;
	atomic_bool stop;
};

/* One byte every 100 ms, until told to stop or the peer is gone. */
static void *trickle_thread(void *arg)
{
	struct trickle *t = arg;

	for (int i = 0; i < t->len && !atomic_load(&t->stop); i++) {
		if (send(t->fd, &t->bytes[i], 1, MSG_NOSIGNAL) != 1)
			break;
		nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
	}
	return NULL;
}

/* Each byte wakes the handshake, but the one deadline still cuts it. */
static void test_tls_handshake_slowloris(void **state)
{
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "good/dst", true, NULL) };
	struct trickle t = { .stop = false };
	pthread_t th;
	int b;

	t.len = client_hello(t.bytes, sizeof(t.bytes));
	assert_true(t.len > 100); /* longer than the deadline lets through */
	tf_tcp_pair(&t.fd, &b);
	net_init(&sv.c, b, SLOW_MS);
	assert_int_equal(pthread_create(&th, NULL, trickle_thread, &t), 0);
	tf_start_thread(&sv);
	atomic_store(&t.stop, true);
	assert_int_equal(pthread_join(th, NULL), 0);
	close(t.fd);
	tf_assert_why(sv.err, sv.why, -ETIMEDOUT, "not done within");
	tf_end_close(&sv);
}

/* Bytes that are not TLS records after a good handshake: refused, with a reason. */
static void test_tls_recv_garbage_after_handshake(void **state)
{
	struct tf_end cl = { .ctx = tf_ctx_ok(*state, "good/src", false, NULL) };
	struct tf_end sv = { .ctx = tf_ctx_ok(*state, "good/dst", true, NULL) };
	static const char junk[] = "this is not a TLS record, not even close to one";
	const char *why = NULL;
	struct proto_hdr h;
	uint8_t buf[64];

	tf_handshake(&cl, &sv);
	assert_int_equal(sv.err, 0);
	assert_int_equal(send(cl.c.fd, junk, sizeof(junk), MSG_NOSIGNAL), (ssize_t)sizeof(junk));
	/*
	 * Where the client's sends go through kernel TLS (the tls module is
	 * loaded), the kernel seals even these bytes into a good record: the
	 * server then reads them as a frame, and refuses it as one.
	 */
	assert_int_equal(net_recv(&sv.c, &h, buf, sizeof(buf), &why),
			 tls_ktls(cl.c.tls, true) ? -EBADMSG : -EPROTO);
	assert_non_null(why);
	tf_end_close(&cl);
	tf_end_close(&sv);
}

/* ---- credentials ---- */

static void assert_ctx_fails(const struct tf_fixture *f, const char *rel, const char *want)
{
	char why[512] = "";
	struct tls_ctx *ctx = tf_ctx_new(f, rel, false, NULL, why, sizeof(why));

	if (ctx || !strstr(why, want))
		print_error("%s: got '%s', want '...%s...'\n", rel, why, want);
	assert_null(ctx);
	assert_non_null(strstr(why, want));
}

static void test_tls_ctx_new_errors(void **state)
{
	assert_ctx_fails(*state, "nosuchdir", "nosuchdir/ca.pem: No such file or directory");
	assert_ctx_fails(*state, "good", "good/cert.pem: No such file or directory");
	assert_ctx_fails(*state, "mismatch", "mismatch/key.pem does not match ");
	assert_ctx_fails(*state, "unsigned", "unsigned/cert.pem is not signed by the CA");
	assert_ctx_fails(*state, "garbage", "garbage/cert.pem: ");
	assert_ctx_fails(*state, "expired", "expired/cert.pem: certificate has expired");
	assert_ctx_fails(*state, "encrypted", "encrypted/key.pem is encrypted");
	tls_ctx_free(NULL);
	tls_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_ctx_new_errors),
		cmocka_unit_test(test_tls_handshake_server_other_ca),
		cmocka_unit_test(test_tls_handshake_client_other_ca),
		cmocka_unit_test(test_tls_handshake_no_client_cert),
		cmocka_unit_test(test_tls_handshake_foreign_server),
		cmocka_unit_test(test_tls_handshake_wrong_peer_name),
		cmocka_unit_test(test_tls_handshake_wrong_peer_name_server),
		cmocka_unit_test(test_tls_handshake_garbage),
		cmocka_unit_test(test_tls_handshake_silent_peer),
		cmocka_unit_test(test_tls_handshake_slowloris),
		cmocka_unit_test(test_tls_recv_garbage_after_handshake),
	};

	/* a peer that resets mid-write must give -EPIPE, not kill us (main.c does the same) */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("tls refusals", tests, tf_setup, tf_teardown);
}
