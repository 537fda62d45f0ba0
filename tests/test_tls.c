// SPDX-License-Identifier: MIT
/*
 * Tests for src/tls.h and the TLS path of src/net.h: real handshakes over
 * loopback TCP, one thread per side, with credentials made by
 * tools/mkcerts.sh (run from the source tree, as make check does). Two CAs:
 * a good one (hosts src, dst) and a stranger's (host evil). Peers that
 * misbehave (no certificate, garbage, silence, trickling) are raw sockets or
 * raw OpenSSL, not tls.c.
 */
#include "tests/helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "src/net.h"
#include "src/proto.h"
#include "src/tls.h"

#define HS_MS	 5000  /* deadline where the test expects the handshake to succeed */
#define SHORT_MS 400   /* deadline where it expects a timeout */
#define SLOW_MS	 1000  /* deadline against the slowloris peer */
#define IO_MS	 20000 /* per-step timeout of the data tests */

/* A page batch frame as the source sends one: batch head and 64 pages. */
#define HEAD_LEN (PROTO_PAGES_HDR + PROTO_BATCH_MAX * 8)
#define DATA_LEN (PROTO_BATCH_MAX * PROTO_PAGE_SIZE)

struct fixture {
	char dir[64]; /* temporary: good/, stranger/ and the broken credential dirs */
};

/* One end of a connection under test. */
struct end {
	struct net_conn c;
	struct tls_ctx *ctx;
	int err; /* of net_tls_start */
	char why[256];
	pthread_t thread;
};

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void *load_pem(const char *path, bool key)
{
	FILE *fp = fopen(path, "r");
	void *obj;

	if (!fp)
		return NULL;
	obj = key ? (void *)PEM_read_PrivateKey(fp, NULL, NULL, NULL)
		  : (void *)PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	return obj;
}

static int write_pem(const char *dir, const char *name, X509 *x, EVP_PKEY *k)
{
	char p[PATH_MAX];
	FILE *fp;
	int ok;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fp = fopen(p, "w");
	if (!fp)
		return -1;
	ok = x ? PEM_write_X509(fp, x) : PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
	return fclose(fp) || !ok ? -1 : 0;
}

/* In @out: a certificate for CN=old, signed by the CA in @ca_dir, that expired yesterday. */
static int make_expired(const char *ca_dir, const char *out)
{
	char p[PATH_MAX];
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509 *ca;
	EVP_PKEY *cakey;
	int err = -1;

	snprintf(p, sizeof(p), "%s/ca.pem", ca_dir);
	ca = load_pem(p, false);
	snprintf(p, sizeof(p), "%s/ca.key", ca_dir);
	cakey = load_pem(p, true);
	if (ca && cakey && key && x && X509_set_version(x, 2) &&
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242) &&
	    X509_gmtime_adj(X509_getm_notBefore(x), -2 * 86400) &&
	    X509_gmtime_adj(X509_getm_notAfter(x), -86400) && X509_set_pubkey(x, key) &&
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				       (const unsigned char *)"old", -1, -1, 0) &&
	    X509_set_issuer_name(x, X509_get_subject_name(ca)) && X509_sign(x, cakey, EVP_sha256()))
		err = write_pem(out, "cert.pem", x, NULL) || write_pem(out, "key.pem", NULL, key) ||
		      write_pem(out, "ca.pem", ca, NULL);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	return err;
}

/*
 * good/{src,dst} and stranger/evil from tools/mkcerts.sh, then broken
 * credential dirs: mixed (evil's certificate, trusting both CAs), mismatch
 * (src's certificate, dst's key), unsigned (src's pair, the stranger's CA),
 * garbage (cert.pem is not PEM), encrypted (key.pem has a passphrase), expired.
 */
static int group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char good[96];
	char expired[96];
	const char *d;

	if (!f)
		return -1;
	*state = f;
	snprintf(f->dir, sizeof(f->dir), "/tmp/hm-tls-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	d = f->dir;
	if (access("tools/mkcerts.sh", R_OK)) {
		print_error("run from the source tree: tools/mkcerts.sh not found\n");
		return -1;
	}
	if (sh("sh tools/mkcerts.sh --loopback %s/good src dst >/dev/null", d) ||
	    sh("sh tools/mkcerts.sh --loopback %s/stranger evil >/dev/null", d) ||
	    sh("cd %s && mkdir mixed mismatch unsigned garbage expired && "
	       "cp stranger/evil/*.pem mixed/ && cat good/ca.pem stranger/ca.pem >mixed/ca.pem && "
	       "cp good/src/*.pem mismatch/ && cp good/dst/key.pem mismatch/ && "
	       "cp good/src/*.pem unsigned/ && cp stranger/ca.pem unsigned/ && "
	       "cp good/src/*.pem garbage/ && echo not a certificate >garbage/cert.pem && "
	       "mkdir encrypted && cp good/src/*.pem encrypted/ && "
	       "openssl pkey -in good/src/key.pem -aes256 -passout pass:x -out encrypted/key.pem",
	       d))
		return -1;
	snprintf(good, sizeof(good), "%s/good", d);
	snprintf(expired, sizeof(expired), "%s/expired", d);
	return make_expired(good, expired);
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;

	if (f && f->dir[0] && strncmp(f->dir, "/tmp/hm-tls-", 12) == 0)
		sh("rm -rf %s", f->dir);
	free(f);
	return 0;
}

static struct tls_ctx *ctx_new(const struct fixture *f, const char *rel, bool server,
			       const char *peer, char *why, size_t whylen)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/%s", f->dir, rel);
	return tls_ctx_new(dir, server, peer, why, whylen);
}

/* A context that must load. */
static struct tls_ctx *ctx_ok(const struct fixture *f, const char *rel, bool server,
			      const char *peer)
{
	char why[256] = "";
	struct tls_ctx *ctx = ctx_new(f, rel, server, peer, why, sizeof(why));

	if (!ctx)
		print_error("%s: %s\n", rel, why);
	assert_non_null(ctx);
	return ctx;
}

/* A connected loopback TCP pair: *@a connected, *@b accepted; TCP_NODELAY as net.c sets it. */
static void tcp_pair(int *a, int *b)
{
	int one = 1;

	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(*a >= 0);
	assert_int_equal(connect(*a, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(*b >= 0);
	close(l);
	assert_int_equal(setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
	assert_int_equal(setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
}

static void *start_thread(void *arg)
{
	struct end *e = arg;

	e->err = net_tls_start(&e->c, e->ctx, e->why, sizeof(e->why));
	return NULL;
}

/* Connect @cl to @sv over loopback and run both handshakes at once. */
static void handshake(struct end *cl, struct end *sv)
{
	int a;
	int b;

	tcp_pair(&a, &b);
	net_init(&cl->c, a, HS_MS);
	net_init(&sv->c, b, HS_MS);
	assert_int_equal(pthread_create(&sv->thread, NULL, start_thread, sv), 0);
	start_thread(cl);
	assert_int_equal(pthread_join(sv->thread, NULL), 0);
	cl->c.timeout_ms = IO_MS;
	sv->c.timeout_ms = IO_MS;
}

static void end_close(struct end *e)
{
	net_close(&e->c);
	tls_ctx_free(e->ctx);
}

static void assert_why(int err, const char *why, int want_err, const char *want)
{
	if (err != want_err || !strstr(why, want))
		print_error("got %d '%s', want %d '...%s...'\n", err, why, want_err, want);
	assert_int_equal(err, want_err);
	assert_non_null(strstr(why, want));
}

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
	struct end cl = { .ctx = ctx_ok(*state, "good/src", false, "dst") };
	struct end sv = { .ctx = ctx_ok(*state, "good/dst", true, "src") };
	struct proto_hdr h;
	const char *why = NULL;
	uint8_t buf[64];

	handshake(&cl, &sv);
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
	end_close(&cl);
	end_close(&sv);
}

/* The peer name may be an address, matched against the certificate's IP entries. */
static void test_tls_handshake_peer_ip(void **state)
{
	struct end cl = { .ctx = ctx_ok(*state, "good/src", false, "127.0.0.1") };
	struct end sv = { .ctx = ctx_ok(*state, "good/dst", true, NULL) };

	handshake(&cl, &sv);
	assert_int_equal(cl.err, 0);
	assert_int_equal(sv.err, 0);
	end_close(&cl);
	end_close(&sv);
}

/* ---- refusals ---- */

/* A server whose certificate another CA signed: we refuse it, and it hears why. */
static void test_tls_handshake_server_other_ca(void **state)
{
	struct end cl = { .ctx = ctx_ok(*state, "good/src", false, NULL) };
	struct end sv = { .ctx = ctx_ok(*state, "stranger/evil", true, NULL) };

	handshake(&cl, &sv);
	assert_why(cl.err, cl.why, -EACCES, "peer certificate (/CN=evil) not signed by our CA");
	assert_why(sv.err, sv.why, -EACCES, "peer refused our certificate");
	end_close(&cl);
	end_close(&sv);
}

/* A client whose certificate another CA signed (it trusts ours): the server refuses it. */
static void test_tls_handshake_client_other_ca(void **state)
{
	struct end cl = { .ctx = ctx_ok(*state, "mixed", false, NULL) };
	struct end sv = { .ctx = ctx_ok(*state, "good/dst", true, NULL) };

	handshake(&cl, &sv);
	assert_why(sv.err, sv.why, -EACCES, "peer certificate (/CN=evil) not signed by our CA");
	/* no session ticket comes, the alert does: the client learns of it in its handshake */
	assert_why(cl.err, cl.why, -EACCES, "peer refused our certificate");
	end_close(&cl);
	end_close(&sv);
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
	struct end sv = { .ctx = ctx_ok(*state, "good/dst", true, NULL) };
	pthread_t t;
	int a;
	int b;

	tcp_pair(&a, &b);
	net_init(&sv.c, b, HS_MS);
	assert_int_equal(pthread_create(&t, NULL, certless_client, &a), 0);
	start_thread(&sv);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_why(sv.err, sv.why, -EACCES, "peer sent no certificate");
	end_close(&sv);
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
	const struct fixture *f = *state;
	struct end cl = { .ctx = ctx_ok(f, "good/src", false, "dst") };
	char dir[PATH_MAX];
	pthread_t t;

	snprintf(dir, sizeof(dir), "%s/good/dst", f->dir);
	for (int tickets = 2; tickets >= 0; tickets -= 2) {
		struct raw_server r = { .dir = dir, .tickets = tickets };
		int a;

		tcp_pair(&a, &r.fd);
		assert_int_equal(pthread_create(&t, NULL, raw_server, &r), 0);
		net_init(&cl.c, a, tickets ? HS_MS : SHORT_MS);
		start_thread(&cl);
		net_close(&cl.c); /* the server sees EOF and ends */
		assert_int_equal(pthread_join(t, NULL), 0);
		close(r.fd);
		if (tickets)
			assert_int_equal(cl.err, 0);
		else
			assert_why(cl.err, cl.why, -ETIMEDOUT, "no word on our certificate");
	}
	tls_ctx_free(cl.ctx);
}

/* The client wants a name the server's certificate does not carry. */
static void test_tls_handshake_wrong_peer_name(void **state)
{
	struct end cl = { .ctx = ctx_ok(*state, "good/src", false, "nothere") };
	struct end sv = { .ctx = ctx_ok(*state, "good/dst", true, "src") };

	handshake(&cl, &sv);
	assert_why(cl.err, cl.why, -EACCES, "peer name nothere does not match");
	assert_why(sv.err, sv.why, -EACCES, "peer refused our certificate");
	end_close(&cl);
	end_close(&sv);
}

/* The server checks the client's name too. */
static void test_tls_handshake_wrong_peer_name_server(void **state)
{
	struct end cl = { .ctx = ctx_ok(*state, "good/src", false, "dst") };
	struct end sv = { .ctx = ctx_ok(*state, "good/dst", true, "nothere") };

	handshake(&cl, &sv);
	assert_why(sv.err, sv.why, -EACCES, "peer name nothere does not match");
	assert_why(cl.err, cl.why, -EACCES, "peer refused our certificate");
	end_close(&cl);
	end_close(&sv);
}

/* ---- misbehaving peers ---- */

/* Run @e's handshake on @fd against a raw peer on @peer that first writes @out. */
static void against_raw(struct end *e, int fd, int timeout_ms, int peer, const char *out)
{
	net_init(&e->c, fd, timeout_ms);
	if (out)
		assert_int_equal(send(peer, out, strlen(out), MSG_NOSIGNAL), (ssize_t)strlen(out));
	start_thread(e);
	close(peer);
}

static void test_tls_handshake_garbage(void **state)
{
	struct end sv = { .ctx = ctx_ok(*state, "good/dst", true, NULL) };
	struct end cl = { .ctx = ctx_ok(*state, "good/src", false, NULL) };
	int a;
	int b;

	tcp_pair(&a, &b);
	against_raw(&sv, b, HS_MS, a, "GET / HTTP/1.1\r\nHost: dst\r\n\r\n");
	assert_int_equal(sv.err, -EPROTO);
	end_close(&sv);

	/* and a client talking to something that is not a TLS server */
	tcp_pair(&a, &b);
	against_raw(&cl, a, HS_MS, b, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(cl.err, -EPROTO);
	end_close(&cl);
}

static void test_tls_handshake_silent_peer(void **state)
{
	struct end sv = { .ctx = ctx_ok(*state, "good/dst", true, NULL) };
	struct end cl = { .ctx = ctx_ok(*state, "good/src", false, NULL) };
	int a;
	int b;

	tcp_pair(&a, &b);
	against_raw(&sv, b, SHORT_MS, a, NULL);
	assert_why(sv.err, sv.why, -ETIMEDOUT, "peer sent nothing");
	end_close(&sv);

	tcp_pair(&a, &b);
	against_raw(&cl, a, SHORT_MS, b, NULL);
	assert_why(cl.err, cl.why, -ETIMEDOUT, "peer sent nothing");
	end_close(&cl);
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
	struct end sv = { .ctx = ctx_ok(*state, "good/dst", true, NULL) };
	struct trickle t = { .stop = false };
	pthread_t th;
	int b;

	t.len = client_hello(t.bytes, sizeof(t.bytes));
	assert_true(t.len > 100); /* longer than the deadline lets through */
	tcp_pair(&t.fd, &b);
	net_init(&sv.c, b, SLOW_MS);
	assert_int_equal(pthread_create(&th, NULL, trickle_thread, &t), 0);
	start_thread(&sv);
	atomic_store(&t.stop, true);
	assert_int_equal(pthread_join(th, NULL), 0);
	close(t.fd);
	assert_why(sv.err, sv.why, -ETIMEDOUT, "not done within");
	end_close(&sv);
}

/* Bytes that are not TLS records after a good handshake: refused, with a reason. */
static void test_tls_recv_garbage_after_handshake(void **state)
{
	struct end cl = { .ctx = ctx_ok(*state, "good/src", false, NULL) };
	struct end sv = { .ctx = ctx_ok(*state, "good/dst", true, NULL) };
	static const char junk[] = "this is not a TLS record, not even close to one";
	const char *why = NULL;
	struct proto_hdr h;
	uint8_t buf[64];

	handshake(&cl, &sv);
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
	end_close(&cl);
	end_close(&sv);
}

/* ---- credentials ---- */

static void assert_ctx_fails(const struct fixture *f, const char *rel, const char *want)
{
	char why[512] = "";
	struct tls_ctx *ctx = ctx_new(f, rel, false, NULL, why, sizeof(why));

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
	struct end cl = { .ctx = ctx_ok(*state, "good/src", false, NULL) };
	struct end sv = { .ctx = ctx_ok(*state, "good/dst", true, NULL) };
	struct cc_writer w[3] = { { &cl.c, 1, 0 }, { &cl.c, 2, 0 }, { &sv.c, 1, 0 } };
	struct cc_reader r[2] = { { .c = &sv.c, .frames = 2 * CC_FRAMES },
				  { .c = &cl.c, .frames = CC_FRAMES } };
	pthread_t t[5];

	handshake(&cl, &sv);
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
	end_close(&cl);
	end_close(&sv);
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
	struct end cl = { .ctx = ctx_ok(*state, "good/src", false, NULL) };
	struct end sv = { .ctx = ctx_ok(*state, "good/dst", true, NULL) };
	uint8_t req[PROTO_REQ_SIZE] = { 1 };
	struct iovec v = { req, sizeof(req) };
	const char *why = NULL;
	struct proto_hdr h;
	uint8_t buf[64];

	handshake(&cl, &sv);
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
	end_close(&cl);
	end_close(&sv);
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
	struct end cl = { .ctx = ctx_ok(*state, "good/src", false, "dst") };
	struct end sv = { .ctx = ctx_ok(*state, "good/dst", true, "src") };
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
	assert_int_equal(pthread_create(&sv.thread, NULL, start_thread, &sv), 0);
	start_thread(&cl);
	assert_int_equal(pthread_join(sv.thread, NULL), 0);
	assert_int_equal(cl.err, 0);
	assert_int_equal(sv.err, 0);
	stream(&cl.c, &sv.c, 2);
	end_close(&cl);
	end_close(&sv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_ctx_new_errors),
		cmocka_unit_test(test_tls_handshake_round_trip),
		cmocka_unit_test(test_tls_handshake_peer_ip),
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
		cmocka_unit_test(test_tls_concurrent_reader_writer),
		cmocka_unit_test(test_net_wait_readable_tls_pending),
		cmocka_unit_test(test_net_parse_sockaddr),
		cmocka_unit_test(test_net_ipv6_tls),
	};

	/* a peer that resets mid-write must give -EPIPE, not kill us (main.c does the same) */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("tls", tests, group_setup, group_teardown);
}
