/* SPDX-License-Identifier: MIT */
/*
 * What the TLS tests (tests/test_tls_*.c) share: credentials made by
 * tools/mkcerts.sh in a temporary directory (run from the source tree, as
 * make check does), contexts loaded from them, loopback TCP pairs, and both
 * ends of a handshake run at once, one thread per side. Two CAs: a good one
 * (hosts src, dst) and a stranger's (host evil). Prefix tf_ (TLS fixture).
 */
#ifndef HM_TESTS_TLS_FIXTURE_H
#define HM_TESTS_TLS_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include "src/net.h"

#define HS_MS	 5000  /* deadline where the test expects the handshake to succeed */
#define SHORT_MS 400   /* deadline where it expects a timeout */
#define SLOW_MS	 1000  /* deadline against the slowloris peer */
#define IO_MS	 20000 /* per-step timeout of the data tests */

struct tls_ctx;

/* The group's state (cmocka's *state). */
struct tf_fixture {
	char dir[64]; /* temporary: good/, stranger/ and the broken credential dirs */
};

/* One end of a connection under test. */
struct tf_end {
	struct net_conn c;
	struct tls_ctx *ctx;
	int err; /* of net_tls_start */
	char why[256];
	pthread_t thread;
};

/*
 * cmocka group setup: a struct tf_fixture in *@state, its directory holding
 * good/{src,dst} and stranger/evil from tools/mkcerts.sh, then broken
 * credential dirs: mixed (evil's certificate, trusting both CAs), mismatch
 * (src's certificate, dst's key), unsigned (src's pair, the stranger's CA),
 * garbage (cert.pem is not PEM), encrypted (key.pem has a passphrase),
 * expired. Returns 0, or -1 when any of it could not be made.
 */
int tf_setup(void **state);
/* cmocka group teardown: removes the directory and frees the fixture. */
int tf_teardown(void **state);

/*
 * tls_ctx_new() on the credentials in @f's directory @rel (e.g. "good/src");
 * @peer is the name the peer's certificate must carry (NULL: any). The
 * caller owns the context; NULL with the reason in @why.
 */
struct tls_ctx *tf_ctx_new(const struct tf_fixture *f, const char *rel, bool server,
			   const char *peer, char *why, size_t whylen);
/* A context that must load: the test fails, printing why, when it does not. */
struct tls_ctx *tf_ctx_ok(const struct tf_fixture *f, const char *rel, bool server,
			  const char *peer);

/* A connected loopback TCP pair: *@a connected, *@b accepted; TCP_NODELAY as net.c sets it. */
void tf_tcp_pair(int *a, int *b);
/* Thread body: net_tls_start() on end @arg, its result in ->err and ->why. Returns NULL. */
void *tf_start_thread(void *arg);
/*
 * Connect @cl to @sv over loopback and run both handshakes at once (deadline
 * HS_MS); then each end's timeout is IO_MS. Results in ->err and ->why.
 */
void tf_handshake(struct tf_end *cl, struct tf_end *sv);
/* Close @e's connection and free its context. */
void tf_end_close(struct tf_end *e);
/* @err must be @want_err and @why contain @want; prints both when not. */
void tf_assert_why(int err, const char *why, int want_err, const char *want);

#endif
