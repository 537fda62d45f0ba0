// SPDX-License-Identifier: MIT
/*
 * TLS contexts: the CA, our certificate and key from --tls-dir, the peer
 * name to require, TLS 1.3 only with our suites, mutual authentication,
 * no session tickets. The connections built on them are in tls.c.
 */
#define LOG_PREFIX "tls: "
#include "src/tls_priv.h"

#include <errno.h>
#include <limits.h>
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

/* OpenSSL's reason for the oldest queued error (the root cause); empties the queue. */
const char *tls_ssl_reason(void)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "unknown OpenSSL error";
}

/* Verification results that mean "not issued by the CA we trust". */
bool tls_not_our_ca(long vr)
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
		snprintf(why, whylen, "%s: %s", path, tls_ssl_reason());
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
	if (tls_not_our_ca(vr))
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
			 tls_ssl_reason());
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
			 peer_name ? " for peer " : "", peer_name ? peer_name : "",
			 tls_ssl_reason());
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
