// SPDX-License-Identifier: MIT
#define LOG_PREFIX "tls: "
#include "src/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "src/log.h"

/*
 * AES-128-GCM first. On the project's machines (AES-NI with VAES and
 * VPCLMULQDQ) `openssl speed -evp` on 16 KiB blocks gives AES-128-GCM
 * 3.36 GB/s, AES-256-GCM 3.10 GB/s, ChaCha20-Poly1305 2.96 GB/s; ChaCha20 only
 * wins on CPUs without AES instructions. Both ends run this list and the
 * server's order decides (SSL_OP_CIPHER_SERVER_PREFERENCE).
 */
#define TLS_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

struct tls_ctx {
	SSL_CTX *ssl;
	bool server;	 /* we accept: TLS server role */
	char *peer_name; /* the peer certificate must carry this name, or NULL */
};

/* State of one direction; only the thread using that direction touches it. */
struct tls_dir {
	short want;    /* POLLIN/POLLOUT wanted after -EAGAIN */
	char why[192]; /* reason for the last error */
};

struct tls_conn {
	SSL *ssl;
	/*
	 * Serialises every OpenSSL call on ssl: OpenSSL forbids two threads in
	 * one SSL at once, even a reader and a writer. Held around single
	 * non-blocking calls only, never while polling.
	 */
	pthread_mutex_t lock;
	bool dead;	   /* fatal error seen (under lock): no close_notify */
	bool accepted;	   /* client, handshake: the server spoke after our Finished */
	struct tls_dir rx; /* tls_recv's */
	struct tls_dir tx; /* tls_send's */
	const struct tls_ctx *ctx;
	char subject[256]; /* peer certificate subject, "" until seen */
	char cipher[48];   /* negotiated suite, for logs */
};

/* One handshake in progress: the connection, its socket and its deadline. */
struct hs {
	struct tls_conn *c;
	int fd;
	int timeout_ms;
	uint64_t deadline; /* hm_now_ns() limit, UINT64_MAX for none */
	char *why;
	size_t whylen;
};

/* OpenSSL's reason for the oldest queued error (the root cause); empties the queue. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "unknown OpenSSL error";
}

/* Verification results that mean "not issued by the CA we trust". */
static bool not_our_ca(long vr)
{
	switch (vr) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return true;
	default:
		return false;
	}
}

/* Verify callback: remember the peer's subject for messages, keep OpenSSL's verdict. */
static int verify_cb(int ok, X509_STORE_CTX *sc)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(sc, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
	X509 *leaf = X509_STORE_CTX_get0_cert(sc);

	if (c && leaf && !c->subject[0])
		X509_NAME_oneline(X509_get_subject_name(leaf), c->subject, sizeof(c->subject));
	return ok;
}

/* An encrypted key.pem must fail, not prompt on the terminal of a daemon; *@arg notes the ask. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	if (arg)
		*(bool *)arg = true;
	return 0;
}

/* Client: a session ticket arrived, so the server accepted our certificate (see tickets()). */
static int ticket_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_conn *c = SSL_get_app_data(ssl);

	if (c)
		c->accepted = true;
	return 0; /* not kept: we never resume */
}

/*
 * In TLS 1.3 the client's handshake ends before the server has judged the
 * client's certificate: a refused client would learn it at its first read,
 * often as a reset rather than the alert, and retry as if the link broke.
 * A server sends its session tickets only after the client's Finished,
 * which follows the client's certificate, so a ticket means "accepted"; the
 * client's handshake waits for one (or for data). The server sends one
 * ticket and keeps no session cache: with SSL_OP_NO_TICKET the ticket names a
 * cached session, and there is none, so no connection ever resumes and every
 * one is authenticated by certificate. Any TLS 1.3 server with tickets on
 * (OpenSSL's and Python's default) interoperates; no extra protocol byte.
 */
static void tickets(SSL_CTX *s, bool server)
{
	SSL_CTX_set_num_tickets(s, 1);
	if (server) {
		SSL_CTX_set_options(s, SSL_OP_NO_TICKET);
		SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
		return;
	}
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(s, ticket_cb);
}

/* Protocol, suites, verification and buffering shared by every connection of @s. */
static int configure(SSL_CTX *s, bool server, const char *peer_name)
{
	X509_VERIFY_PARAM *param = SSL_CTX_get0_param(s);
	unsigned char ip[16];
	bool is_ip = peer_name && (inet_pton(AF_INET, peer_name, ip) == 1 ||
				   inet_pton(AF_INET6, peer_name, ip) == 1);

	if (!SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(s, TLS_SUITES))
		return -EINVAL;
	/* kernel TLS where the kernel has it (saves the copy into OpenSSL's buffer) */
	SSL_CTX_set_options(s, SSL_OP_ENABLE_KTLS | SSL_OP_CIPHER_SERVER_PREFERENCE);
	tickets(s, server);
	SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/*
	 * Read ahead: one read() per record instead of one for its 5-byte header
	 * and one for its body; the receiver's CPU per GiB drops ~10 % in
	 * tools/bench_tls.c. Read buffers of 64 KiB to 256 KiB (several records
	 * per read) measured no better than OpenSSL's default. The price: whole
	 * records can wait in OpenSSL, unseen by poll() (see tls_pending).
	 */
	SSL_CTX_set_read_ahead(s, 1);
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_default_passwd_cb(s, no_passphrase);
	if (!peer_name)
		return 0;
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (is_ip ? !X509_VERIFY_PARAM_set1_ip_asc(param, peer_name)
		  : !X509_VERIFY_PARAM_set1_host(param, peer_name, 0))
		return -EINVAL;
	return 0;
}

/* Load one PEM file with @load, naming the file and OpenSSL's reason on failure. */
static int load_file(SSL_CTX *s, const char *dir, const char *name,
		     int (*load)(SSL_CTX *, const char *), char *why, size_t whylen)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		snprintf(why, whylen, "%s/%s: path too long", dir, name);
		return -ENAMETOOLONG;
	}
	/* OpenSSL's own words for a missing file are "system lib" */
	if (access(path, R_OK)) {
		int err = -errno;

		snprintf(why, whylen, "%s: %s", path, strerror(-err));
		return err;
	}
	if (load(s, path) == 1)
		return 0;
	/* OpenSSL checks a key against the certificate already loaded */
	if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
		ERR_clear_error();
		snprintf(why, whylen, "%s/key.pem does not match %s/cert.pem", dir, dir);
	} else if (ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_PEM &&
		   ERR_GET_REASON(ERR_peek_error()) == PEM_R_BAD_PASSWORD_READ) {
		ERR_clear_error();
		snprintf(why, whylen, "%s is encrypted: use a key without passphrase (mode 0600)",
			 path);
	} else {
		snprintf(why, whylen, "%s: %s", path, ssl_reason());
	}
	return -EINVAL;
}

static int load_ca(SSL_CTX *s, const char *path)
{
	return SSL_CTX_load_verify_file(s, path);
}

static int load_key(SSL_CTX *s, const char *path)
{
	bool asked = false;
	int r;

	SSL_CTX_set_default_passwd_cb_userdata(s, &asked);
	r = SSL_CTX_use_PrivateKey_file(s, path, SSL_FILETYPE_PEM);
	SSL_CTX_set_default_passwd_cb_userdata(s, NULL);
	if (r != 1 && asked) {
		/* OpenSSL's own words would be "bad decrypt" */
		ERR_clear_error();
		ERR_raise(ERR_LIB_PEM, PEM_R_BAD_PASSWORD_READ);
	}
	return r;
}

/*
 * Check our own certificate the way the peer will: a certificate the peer
 * must refuse (other CA, expired) is better reported here, by file name, than
 * as the peer's alert in the middle of a migration.
 */
static int check_own_cert(SSL_CTX *s, const char *dir, bool server, char *why, size_t whylen)
{
	X509_STORE_CTX *sc = X509_STORE_CTX_new();
	STACK_OF(X509) *chain = NULL;
	long vr;

	SSL_CTX_get0_chain_certs(s, &chain);
	if (!sc || !X509_STORE_CTX_init(sc, SSL_CTX_get_cert_store(s), SSL_CTX_get0_certificate(s),
					chain)) {
		X509_STORE_CTX_free(sc);
		snprintf(why, whylen, "out of memory checking %s/cert.pem", dir);
		return -ENOMEM;
	}
	/* the peer checks the extended key usage for our role */
	X509_STORE_CTX_set_purpose(sc, server ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT);
	vr = X509_verify_cert(sc) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(sc);
	X509_STORE_CTX_free(sc);
	ERR_clear_error();
	if (vr == X509_V_OK)
		return 0;
	if (not_our_ca(vr))
		snprintf(why, whylen, "%s/cert.pem is not signed by the CA in %s/ca.pem (%s)", dir,
			 dir, X509_verify_cert_error_string(vr));
	else
		snprintf(why, whylen, "%s/cert.pem: %s", dir, X509_verify_cert_error_string(vr));
	return -EACCES;
}

/* Load and cross-check DIR/{ca,cert,key}.pem into @s. */
static int load_credentials(SSL_CTX *s, const char *dir, bool server, char *why, size_t whylen)
{
	int err;

	err = load_file(s, dir, "ca.pem", load_ca, why, whylen);
	if (!err)
		err =
		    load_file(s, dir, "cert.pem", SSL_CTX_use_certificate_chain_file, why, whylen);
	if (!err)
		err = load_file(s, dir, "key.pem", load_key, why, whylen);
	if (err)
		return err;
	if (SSL_CTX_check_private_key(s) != 1) {
		snprintf(why, whylen, "%s/key.pem does not match %s/cert.pem (%s)", dir, dir,
			 ssl_reason());
		return -EINVAL;
	}
	return check_own_cert(s, dir, server, why, whylen);
}

struct tls_ctx *tls_ctx_new(const char *dir, bool server, const char *peer_name, char *why,
			    size_t whylen)
{
	struct tls_ctx *ctx = calloc(1, sizeof(*ctx));

	if (ctx) {
		ctx->server = server;
		ctx->peer_name = peer_name ? strdup(peer_name) : NULL;
		ctx->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	}
	if (!ctx || !ctx->ssl || (peer_name && !ctx->peer_name)) {
		snprintf(why, whylen, "out of memory for the TLS context");
		goto out_free_ctx;
	}
	if (configure(ctx->ssl, server, peer_name)) {
		snprintf(why, whylen, "cannot set up TLS 1.3%s%s: %s",
			 peer_name ? " for peer " : "", peer_name ? peer_name : "", ssl_reason());
		goto out_free_ctx;
	}
	if (load_credentials(ctx->ssl, dir, server, why, whylen))
		goto out_free_ctx;
	return ctx;

out_free_ctx:
	tls_ctx_free(ctx);
	return NULL;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx->peer_name);
	free(ctx);
}

/* ---- error classification ------------------------------------------------ */

/* The peer's certificate failed verification (@vr): -EACCES and why. */
static int peer_cert_error(struct tls_conn *c, long vr, char *why, size_t whylen)
{
	const char *who = c->subject[0] ? c->subject : "?";

	switch (vr) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(why, whylen, "peer name %s does not match the peer certificate (%s)",
			 c->ctx->peer_name ? c->ctx->peer_name : "?", who);
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		snprintf(why, whylen, "peer certificate (%s) has expired", who);
		break;
	default:
		if (not_our_ca(vr))
			snprintf(why, whylen, "peer certificate (%s) not signed by our CA", who);
		else
			snprintf(why, whylen, "peer certificate (%s) refused: %s", who,
				 X509_verify_cert_error_string(vr));
	}
	return -EACCES;
}

/* A TLS alert from the peer: about our certificate it is -EACCES, else -EPROTO. */
static int alert_error(int alert, char *why, size_t whylen)
{
	const char *desc = alert == SSL_AD_CERTIFICATE_REQUIRED ? "certificate required"
								: SSL_alert_desc_string_long(alert);

	switch (alert) {
	case SSL_AD_BAD_CERTIFICATE:
	case SSL_AD_UNSUPPORTED_CERTIFICATE:
	case SSL_AD_CERTIFICATE_REVOKED:
	case SSL_AD_CERTIFICATE_EXPIRED:
	case SSL_AD_CERTIFICATE_UNKNOWN:
	case SSL_AD_UNKNOWN_CA:
	case SSL_AD_ACCESS_DENIED:
	case SSL_AD_CERTIFICATE_REQUIRED:
		snprintf(why, whylen, "peer refused our certificate (%s)", desc);
		return -EACCES;
	default:
		snprintf(why, whylen, "peer sent TLS alert: %s", desc);
		return -EPROTO;
	}
}

/* A socket-level failure inside OpenSSL (SSL_ERROR_SYSCALL) with @sys = errno. */
static int syscall_error(int sys, char *why, size_t whylen)
{
	switch (sys) {
	case 0:
		snprintf(why, whylen, "peer closed the connection");
		return -EPIPE;
	case EPIPE:
	case ECONNRESET:
	case ECONNABORTED:
		snprintf(why, whylen, "connection reset by peer");
		return -EPIPE;
	case EBADMSG:
	case EMSGSIZE:
		/*
		 * Where the kernel's TLS module is loaded, OpenSSL hands records to
		 * it, and a record that is not TLS or fails to decrypt comes back
		 * as a socket error: the same protocol error as in user space.
		 */
		snprintf(why, whylen, "bad TLS record (kernel TLS: %s)", strerror(sys));
		return -EPROTO;
	default:
		snprintf(why, whylen, "TLS socket error: %s", strerror(sys));
		return -sys;
	}
}

/*
 * Turn a failed OpenSSL call (SSL_get_error() @e, errno @sys) into -errno and
 * a reason. Called with the lock held (or before the connection is shared).
 */
static int classify(struct tls_conn *c, int e, int sys, char *why, size_t whylen)
{
	int reason = ERR_GET_REASON(ERR_peek_error());
	long vr = SSL_get_verify_result(c->ssl);
	int err;

	c->dead = true;
	if (e == SSL_ERROR_ZERO_RETURN) {
		c->dead = false; /* an orderly close_notify: we may answer with ours */
		snprintf(why, whylen, "peer closed the TLS session");
		err = -EPIPE;
	} else if (e == SSL_ERROR_SYSCALL) {
		err = syscall_error(sys, why, whylen);
	} else if (vr != X509_V_OK) {
		err = peer_cert_error(c, vr, why, whylen);
	} else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
		snprintf(why, whylen, "peer sent no certificate");
		err = -EACCES;
	} else if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		err = syscall_error(0, why, whylen);
	} else if (reason > SSL_AD_REASON_OFFSET) {
		err = alert_error(reason - SSL_AD_REASON_OFFSET, why, whylen);
	} else {
		snprintf(why, whylen, "TLS error: %s", ssl_reason());
		err = -EPROTO;
	}
	ERR_clear_error();
	return err;
}

/* ---- handshake ----------------------------------------------------------- */

/* Poll @fd for @ev until @deadline. 0, -ETIMEDOUT or -errno. */
static int wait_until(int fd, short ev, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };

	for (;;) {
		uint64_t now = hm_now_ns();
		int ms = -1;
		int r;

		if (deadline != UINT64_MAX) {
			if (now >= deadline)
				return -ETIMEDOUT;
			ms = (int)min_t(uint64_t, DIV_ROUND_UP(deadline - now, NSEC_PER_MSEC),
					INT_MAX);
		}
		r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

enum hs_step {
	HS_HANDSHAKE,
	HS_WAIT_ACCEPTED, /* client: for a ticket or data, see tickets() */
};

/*
 * One non-blocking attempt at @step: SSL_ERROR_NONE when done, else
 * SSL_get_error()'s code with errno in *sys.
 */
static int hs_try(struct tls_conn *c, enum hs_step step, int *sys)
{
	uint8_t byte;
	size_t n = 0;
	int r;

	ERR_clear_error();
	errno = 0;
	if (step == HS_HANDSHAKE)
		r = SSL_do_handshake(c->ssl);
	else /* peek: data that arrives with the ticket stays for the caller */
		r = SSL_peek_ex(c->ssl, &byte, 1, &n);
	*sys = errno;
	if (r == 1 || (step == HS_WAIT_ACCEPTED && c->accepted))
		return SSL_ERROR_NONE;
	return SSL_get_error(c->ssl, r);
}

/* Run @step to completion or until the handshake's deadline. */
static int hs_run(struct hs *h, enum hs_step step)
{
	for (;;) {
		int sys;
		int e = hs_try(h->c, step, &sys);
		int err;

		if (e == SSL_ERROR_NONE)
			return 0;
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return classify(h->c, e, sys, h->why, h->whylen);
		err = wait_until(h->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, h->deadline);
		if (err == -ETIMEDOUT)
			snprintf(h->why, h->whylen, "TLS handshake not done within %d ms (%s)",
				 h->timeout_ms,
				 !BIO_number_read(SSL_get_rbio(h->c->ssl)) ? "peer sent nothing"
				 : step == HS_WAIT_ACCEPTED ? "no word on our certificate"
							    : "peer too slow");
		else if (err)
			snprintf(h->why, h->whylen, "poll: %s", strerror(-err));
		if (err)
			return err;
	}
}

/* The handshake, and on the client the server's word that it accepted us. */
static int hs_all(struct hs *h)
{
	int err = hs_run(h, HS_HANDSHAKE);

	if (err || h->c->ctx->server)
		return err;
	return hs_run(h, HS_WAIT_ACCEPTED);
}

static struct tls_conn *conn_new(const struct tls_ctx *ctx, int fd)
{
	struct tls_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ctx = ctx;
	pthread_mutex_init(&c->lock, NULL);
	c->ssl = SSL_new(ctx->ssl);
	if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1 || SSL_set_app_data(c->ssl, c) != 1) {
		SSL_free(c->ssl);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return NULL;
	}
	if (ctx->server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	return c;
}

int tls_handshake(struct tls_ctx *ctx, int fd, int timeout_ms, struct tls_conn **out, char *why,
		  size_t whylen)
{
	struct hs h = { .fd = fd, .timeout_ms = timeout_ms, .why = why, .whylen = whylen };
	int flags = fcntl(fd, F_GETFL);
	int err;

	*out = NULL;
	h.deadline =
	    timeout_ms < 0 ? UINT64_MAX : hm_now_ns() + (uint64_t)timeout_ms * NSEC_PER_MSEC;
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		err = -errno;
		snprintf(why, whylen, "cannot make the socket non-blocking: %s", strerror(-err));
		return err;
	}
	h.c = conn_new(ctx, fd);
	if (!h.c) {
		snprintf(why, whylen, "out of memory for a TLS session: %s", ssl_reason());
		return -ENOMEM;
	}
	err = hs_all(&h);
	if (err) {
		tls_close(h.c);
		return err;
	}
	snprintf(h.c->cipher, sizeof(h.c->cipher), "%s", SSL_get_cipher_name(h.c->ssl));
	hm_dbg("fd %d: %s %s with %s, kernel TLS tx %d rx %d", fd, SSL_get_version(h.c->ssl),
	       h.c->cipher, h.c->subject, tls_ktls(h.c, true), tls_ktls(h.c, false));
	*out = h.c;
	return 0;
}

/* ---- data ---------------------------------------------------------------- */

/* Result of one SSL_read_ex/SSL_write_ex (@r, @n bytes, errno @sys) for direction @d. */
static ssize_t io_result(struct tls_conn *c, struct tls_dir *d, int r, size_t n, int sys)
{
	int e;

	if (r == 1)
		return (ssize_t)n;
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		d->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return -EAGAIN;
	}
	return classify(c, e, sys, d->why, sizeof(d->why));
}

ssize_t tls_send(struct tls_conn *c, const void *buf, size_t len)
{
	size_t n = 0;
	ssize_t ret;
	int r;

	if (!len)
		return 0;
	pthread_mutex_lock(&c->lock);
	ERR_clear_error();
	errno = 0;
	r = SSL_write_ex(c->ssl, buf, len, &n);
	ret = io_result(c, &c->tx, r, n, errno);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

ssize_t tls_recv(struct tls_conn *c, void *buf, size_t len)
{
	size_t n = 0;
	ssize_t ret;
	int r;

	if (!len)
		return 0;
	pthread_mutex_lock(&c->lock);
	ERR_clear_error();
	errno = 0;
	r = SSL_read_ex(c->ssl, buf, len, &n);
	ret = io_result(c, &c->rx, r, n, errno);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

short tls_want(struct tls_conn *c, bool sending)
{
	return sending ? c->tx.want : c->rx.want;
}

bool tls_pending(struct tls_conn *c)
{
	bool pending;

	/* SSL_has_pending, not SSL_pending: read-ahead records count too */
	pthread_mutex_lock(&c->lock);
	pending = SSL_has_pending(c->ssl);
	pthread_mutex_unlock(&c->lock);
	return pending;
}

const char *tls_why(struct tls_conn *c, bool sending)
{
	return sending ? c->tx.why : c->rx.why;
}

const char *tls_peer_subject(const struct tls_conn *c)
{
	return c->subject;
}

const char *tls_cipher(const struct tls_conn *c)
{
	return c->cipher;
}

bool tls_ktls(const struct tls_conn *c, bool sending)
{
	BIO *b = sending ? SSL_get_wbio(c->ssl) : SSL_get_rbio(c->ssl);

	return b &&
	       BIO_ctrl(b, sending ? BIO_CTRL_GET_KTLS_SEND : BIO_CTRL_GET_KTLS_RECV, 0, NULL) > 0;
}

void tls_close(struct tls_conn *c)
{
	if (!c)
		return;
	/* one non-blocking attempt: close_notify goes if the socket has room */
	if (!c->dead && SSL_is_init_finished(c->ssl)) {
		ERR_clear_error();
		SSL_shutdown(c->ssl);
	}
	ERR_clear_error();
	SSL_free(c->ssl);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
