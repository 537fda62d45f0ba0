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
#include "src/tls_priv.h"

/* One handshake in progress: the connection, its socket and its deadline. */
struct hs {
	struct tls_conn *c;
	int fd;
	int timeout_ms;
	uint64_t deadline; /* hm_now_ns() limit, UINT64_MAX for none */
	char *why;
	size_t whylen;
};

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
		if (tls_not_our_ca(vr))
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
		snprintf(why, whylen, "TLS error: %s", tls_ssl_reason());
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
		snprintf(why, whylen, "out of memory for a TLS session: %s", tls_ssl_reason());
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
