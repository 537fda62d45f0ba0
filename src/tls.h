/* SPDX-License-Identifier: MIT */
/*
 * TLS 1.3 with mutual certificate authentication for the migration
 * connections (OpenSSL 3). Both ends present a certificate signed by the
 * one CA they trust; neither side talks to a peer without one.
 *
 * The I/O calls are non-blocking and never poll: the caller (src/net.c)
 * polls the fd for what tls_want() names, with its own timeout. That keeps
 * the transport's structure (poll with a timeout, then one call) unchanged
 * and lets one thread wait for input while another writes.
 *
 * The process must ignore SIGPIPE (main.c does): OpenSSL writes to the
 * socket with write(), and a peer that reset the connection would
 * otherwise kill us from inside tls_send() or tls_close().
 */
#ifndef HM_TLS_H
#define HM_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "src/util.h"

struct tls_ctx;
struct tls_conn;

/*
 * Load DIR/ca.pem (the CA we trust for peers), DIR/cert.pem (our chain) and
 * DIR/key.pem, and check them against each other: the key matches the
 * certificate, the certificate is signed by the CA and is valid now.
 * @server selects the role in the handshake (the accepting side).
 * @peer_name, if not NULL, is a DNS name or IP address the peer's
 * certificate must carry (SAN DNS/IP, or CN when it has no DNS SAN).
 * Returns a context shareable by any number of connections and threads,
 * or NULL with the reason (file name and OpenSSL's words) in @why.
 */
struct tls_ctx *tls_ctx_new(const char *dir, bool server, const char *peer_name, char *why,
			    size_t whylen);
/* Free @ctx (NULL is fine). Connections made from it must be closed first. */
void tls_ctx_free(struct tls_ctx *ctx);

/*
 * Run the TLS handshake on @fd, a connected TCP socket that the caller
 * keeps owning; it is switched to non-blocking. The whole handshake must
 * finish within @timeout_ms (-1 = no limit): one deadline, not one per read,
 * so a peer trickling bytes cannot hold us longer. A client also waits, in
 * that time, for the server's session ticket, the sign that the server
 * accepted our certificate: a refusal is -EACCES here, not a broken link at
 * the first read.
 * Returns 0 with *@out set, or -errno with a reason in @why:
 * -EACCES the peer has no valid credentials or refused ours, -ETIMEDOUT,
 * -EPROTO the peer does not speak our TLS, -EPIPE it closed the connection,
 * -ENOMEM.
 */
int tls_handshake(struct tls_ctx *ctx, int fd, int timeout_ms, struct tls_conn **out, char *why,
		  size_t whylen) __must_check;

/*
 * Encrypt and send up to @len bytes (at most one 16 KiB record per call).
 * Returns the bytes taken, or -EAGAIN (poll for tls_want(c, true) and call
 * again with the same bytes at the same or another address), -EPIPE when the
 * peer closed or reset, -EPROTO on a TLS error (see tls_why()).
 * Thread-safe against one concurrent tls_recv(): a per-connection lock is
 * held around the OpenSSL call only, never while the caller polls.
 * At most one thread may send at a time (net.c's wlock sees to that).
 */
ssize_t tls_send(struct tls_conn *c, const void *buf, size_t len) __must_check;
/*
 * Receive up to @len decrypted bytes. Returns the count, or -EAGAIN (poll
 * for tls_want(c, false)), -EPIPE when the peer closed or reset, -EACCES
 * when the peer refused our certificate, -EPROTO on a TLS error. Same
 * locking as tls_send(); at most one thread may receive at a time.
 */
ssize_t tls_recv(struct tls_conn *c, void *buf, size_t len) __must_check;
/*
 * After -EAGAIN: POLLIN or POLLOUT, what the last tls_send (@sending) or
 * tls_recv (!@sending) waits for. Kept per direction because a reader and a
 * writer run at once; TLS 1.3 may need to write to read, and vice versa.
 */
short tls_want(struct tls_conn *c, bool sending);
/*
 * True when tls_recv() can return data without reading the socket:
 * decrypted bytes or whole records already read ahead. Check it before
 * polling the fd for input, or poll may sleep on data we already hold.
 */
bool tls_pending(struct tls_conn *c);
/* Reason for the last -EPROTO/-EACCES/-EPIPE of a direction; valid until tls_close(). */
const char *tls_why(struct tls_conn *c, bool sending);
/* The peer certificate's subject ("/CN=dst"), for logs. */
const char *tls_peer_subject(const struct tls_conn *c);
/* The negotiated cipher suite and whether kernel TLS carries each direction, for logs. */
const char *tls_cipher(const struct tls_conn *c);
bool tls_ktls(const struct tls_conn *c, bool sending);
/*
 * Send close_notify if the socket has room (best effort, never waits) and
 * free @c (NULL is fine). The fd stays open: its owner closes it. No other
 * thread may be inside tls_send/tls_recv on @c.
 */
void tls_close(struct tls_conn *c);

#endif
