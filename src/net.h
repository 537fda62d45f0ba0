/* SPDX-License-Identifier: MIT */
/*
 * Migration transport: TCP connections carrying proto frames, driven by the
 * migration threads with blocking writev/read bounded by poll() timeouts.
 * Page data goes from guest memory (or the lz4 scratch) straight into the
 * socket with writev: no intermediate copy into an event buffer, which is
 * what bounds a bulk stream at 10 Gbit/s (see docs/transport.md). The
 * event loop keeps the control sockets; migration threads report to it.
 */
#ifndef HM_NET_H
#define HM_NET_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include "src/proto.h"
#include "src/util.h"

struct net_conn {
	int fd;		   /* owned, -1 when closed */
	int timeout_ms;	   /* for each blocking step */
	uint64_t rate;	   /* bytes/s cap on sends, 0 = none */
	uint64_t sent;	   /* bytes written */
	uint64_t received; /* bytes read */
	uint64_t pace_t0;  /* pacing origin (ns) and bytes paced since */
	uint64_t pace_bytes;
};

/* Parse "ADDR:PORT" (IPv4 dotted quad or "localhost"). -EINVAL otherwise. */
int net_parse_addr(const char *s, struct sockaddr_in *sa) __must_check;
/* Listening socket on @addr; returns the fd or -errno with a reason. */
int net_listen(const char *addr, char *why, size_t whylen) __must_check;
/* Wait up to @timeout_ms (-1 = forever) for a connection, also returning early
 * when @stop_fd becomes readable (-ECANCELED). Returns the fd or -errno. */
int net_accept(int lfd, int stop_fd, int timeout_ms) __must_check;
/* Connect within @timeout_ms. Returns 0 (c->fd set) or -errno with a reason. */
int net_connect(struct net_conn *c, const char *addr, int timeout_ms, char *why,
		size_t whylen) __must_check;
void net_init(struct net_conn *c, int fd, int timeout_ms);
void net_close(struct net_conn *c);
/* Send one frame: header plus @n payload pieces. Returns 0 or -errno (-ETIMEDOUT). */
int net_send(struct net_conn *c, uint32_t type, uint32_t flags, const struct iovec *iov,
	     int n) __must_check;
/*
 * Receive one frame into @buf (@cap bytes). The header is decoded and
 * checked first, so an oversized frame is refused before it is read.
 * Returns 0, -EBADMSG/-EPROTO (reason in *why), -EPIPE, -ETIMEDOUT.
 */
int net_recv(struct net_conn *c, struct proto_hdr *h, uint8_t *buf, size_t cap,
	     const char **why) __must_check;
/* Bytes handed to the socket but not yet acknowledged by the peer (SIOCOUTQ), 0 if unknown. */
uint64_t net_unacked(struct net_conn *c);
struct bitmap;
/* Send @bm as PAGEMAP frames (runs of up to PROTO_PAGEMAP_MAX_BITS pages). */
int net_send_pagemap(struct net_conn *c, const struct bitmap *bm) __must_check;
/* Send an ERROR frame, best effort (the link may be what failed). */
void net_send_error(struct net_conn *c, int err, const char *msg);

#endif
