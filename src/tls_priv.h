/* SPDX-License-Identifier: MIT */
/*
 * Inside the TLS layer: what tls_ctx.c (credentials, verification) and
 * tls.c (handshake, records) share. Not for use outside them.
 */
#ifndef HM_TLS_PRIV_H
#define HM_TLS_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <openssl/ssl.h>
#include "src/tls.h"

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

/* OpenSSL's reason for the oldest queued error (the root cause); empties the queue. */
const char *tls_ssl_reason(void);
/* The verification result @vr means the peer's chain does not lead to our CA. */
bool tls_not_our_ca(long vr);

#endif
