/* SPDX-License-Identifier: MIT */
/*
 * Migration transport: TCP connections carrying proto frames, driven by the
 * migration threads with blocking writev/read bounded by poll() timeouts.
 * Page data goes from guest memory (or the lz4 scratch) straight into the
 * socket with writev: no intermediate copy into an event buffer, which is
 * what bounds a bulk stream at 10 Gbit/s (see docs/transport.md). The
 * event loop keeps the control sockets; migration threads report to it.
 * After connect/accept, net_tls_start puts TLS 1.3 with mutual certificate
 * authentication (src/tls.h) under every later frame; the API stays the same.
 */
#ifndef HM_NET_H
#define HM_NET_H

#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include "src/proto.h"
#include "src/util.h"

struct tls_conn;
struct tls_ctx;

/*
 * Threads: one thread may receive while another sends (the destination
 * reads the urgent channel in one thread and writes page requests from
 * another); any number of threads may send, one frame at a time (wlock).
 * net_close takes wlock, so it waits for a frame in flight (up to the send
 * timeout: shutdown(c->fd, SHUT_RDWR) first cuts that short) and a later
 * net_send gets -EPIPE. No thread may be in net_recv or net_wait_readable
 * during net_close, nor in anything during net_init/net_tls_start.
 */
struct net_conn {
	int fd;		   /* owned, -1 when closed */
	int timeout_ms;	   /* for each blocking step, and for the whole TLS handshake */
	uint64_t rate;	   /* bytes/s cap on sends, 0 = none */
	uint64_t sent;	   /* payload bytes written (plaintext under TLS); under wlock */
	uint64_t received; /* payload bytes read (plaintext under TLS); by the reader */
	uint64_t pace_t0;  /* pacing origin (ns) and bytes paced since; under wlock */
	uint64_t pace_bytes;
	struct tls_conn *tls; /* owned TLS session on fd, NULL = plain TCP */
	uint8_t *stage;	      /* owned TLS gather buffer for one record, with tls */
	/*
	 * One writer per connection: net_send holds it for a whole frame so
	 * frames from two threads never interleave. Set up by net_init; a
	 * zeroed struct also has a usable one (glibc's initializer is all
	 * zeros). Never destroyed: a default Linux mutex holds no resources.
	 */
	pthread_mutex_t wlock;
};

/*
 * Parse "HOST:PORT" into @ss and *@len: HOST is an IPv4 dotted quad,
 * "localhost" (127.0.0.1) or a bracketed IPv6 address, with an optional
 * zone ("[::1]:7000", "[fe80::1%eth0]:7000"). Returns 0 or -EINVAL.
 */
int net_parse_sockaddr(const char *s, struct sockaddr_storage *ss, socklen_t *len) __must_check;
/* Listening socket on @addr; returns the fd or -errno with a reason. */
int net_listen(const char *addr, char *why, size_t whylen) __must_check;
/* Wait up to @timeout_ms (-1 = forever) for a connection, also returning early
 * when @stop_fd becomes readable (-ECANCELED). Returns the fd or -errno. */
int net_accept(int lfd, int stop_fd, int timeout_ms) __must_check;
/* Connect within @timeout_ms. Returns 0 (c->fd set) or -errno with a reason. */
int net_connect(struct net_conn *c, const char *addr, int timeout_ms, char *why,
		size_t whylen) __must_check;
/* Set up @c (plain TCP) on @fd, which it owns from now on (-1 = none yet). */
void net_init(struct net_conn *c, int fd, int timeout_ms);
/*
 * Close the TLS session (best-effort close_notify, never waits), then the
 * fd. Safe on a closed or zeroed @c. Takes wlock (see above).
 */
void net_close(struct net_conn *c);
/*
 * Run the TLS handshake on the connected @c as @ctx's role (see
 * tls_handshake), the whole of it bounded by c->timeout_ms. From then on
 * every net_send/net_recv on @c is encrypted. Returns 0 or -errno
 * (-EACCES, -ETIMEDOUT, -EPROTO, -EPIPE, -ENOMEM) with a reason in @why;
 * on failure @c stays plain and should be closed. @ctx must outlive @c's
 * session (until net_close).
 */
int net_tls_start(struct net_conn *c, struct tls_ctx *ctx, char *why, size_t whylen) __must_check;
/*
 * Wait up to @timeout_ms (-1 = forever) until net_recv has something to
 * read. Use this, not poll() on c->fd: under TLS, records already read from
 * the socket wait in OpenSSL's buffer where poll() cannot see them.
 * Returns 0 (readable, or at EOF/error: net_recv reports which),
 * -ETIMEDOUT, -EPIPE if @c is closed, or -errno.
 */
int net_wait_readable(struct net_conn *c, int timeout_ms) __must_check;
/*
 * Send one frame: header plus @n payload pieces, under c->wlock so frames
 * from several threads never interleave. Returns 0 or -errno (-ETIMEDOUT,
 * -EPIPE when closed or reset; under TLS also -EPROTO).
 */
int net_send(struct net_conn *c, uint32_t type, uint32_t flags, const struct iovec *iov,
	     int n) __must_check;
/*
 * Receive one frame into @buf (@cap bytes). The header is decoded and
 * checked first, so an oversized frame is refused before it is read.
 * Returns 0, -EBADMSG/-EPROTO (reason in *why), -EPIPE, -ETIMEDOUT; under
 * TLS also -EACCES (the peer refused our certificate), reason in *why, valid
 * until net_close. One receiving thread at a time.
 */
int net_recv(struct net_conn *c, struct proto_hdr *h, uint8_t *buf, size_t cap,
	     const char **why) __must_check;
/*
 * Bytes handed to the socket but not yet acknowledged by the peer (SIOCOUTQ),
 * 0 if unknown. Under TLS these are record bytes, 0.14 % more than the
 * payload they carry (22 bytes per 16 KiB record): close enough to subtract
 * from c->sent.
 */
uint64_t net_unacked(struct net_conn *c);
struct bitmap;
/* Send @bm as PAGEMAP frames (runs of up to PROTO_PAGEMAP_MAX_BITS pages). */
int net_send_pagemap(struct net_conn *c, const struct bitmap *bm) __must_check;
/* Send an ERROR frame, best effort (the link may be what failed). */
void net_send_error(struct net_conn *c, int err, const char *msg);

#endif
