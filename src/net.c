// SPDX-License-Identifier: MIT
#define LOG_PREFIX "net: "
#include "src/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include "src/bitmap.h"
#include "src/log.h"
#include "src/tls.h"

/*
 * Under TLS a frame goes to OpenSSL in 16 KiB pieces, the most one TLS
 * record carries (RFC 8446 5.1). The small pieces (frame header, batch
 * head) are gathered with the start of the page data into one full record in
 * c->stage; the rest of a large piece goes to OpenSSL straight from the
 * caller's buffer. Measured with tools/bench_tls.c, this, copying every byte
 * into 64 KiB chunks first, and one SSL_write per iovec (a tiny record for
 * the header) all run within noise of each other: AES-GCM and the kernel's
 * send path dominate. This one copies least.
 */
#define NET_TLS_RECORD 16384
#define NET_TLS_STAGE  NET_TLS_RECORD

/* Split "HOST:PORT" (HOST maybe "[v6]") into @host and *@port. */
static int split_host_port(const char *s, char *host, size_t cap, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	const char *h = s;
	size_t hlen;
	char *end;
	long p;

	if (!colon || colon == s)
		return -EINVAL;
	hlen = (size_t)(colon - s);
	if (*s == '[') {
		/* brackets must close right before the port's colon */
		if (hlen < 3 || colon[-1] != ']')
			return -EINVAL;
		h = s + 1;
		hlen -= 2;
	}
	if (hlen >= cap)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = 0;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || colon[1] == '-' || colon[1] == '+' || p < 1 ||
	    p > 65535)
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

/* @host is an IPv6 address with an optional "%zone" (interface name or index). */
static int parse_v6(char *host, struct sockaddr_in6 *sa)
{
	char *zone = strchr(host, '%');

	if (zone) {
		*zone++ = 0;
		sa->sin6_scope_id = if_nametoindex(zone);
		if (!sa->sin6_scope_id) {
			char *end;
			unsigned long idx = strtoul(zone, &end, 10);

			if (!*zone || *end || !idx || idx > UINT32_MAX)
				return -EINVAL;
			sa->sin6_scope_id = (uint32_t)idx;
		}
	}
	return inet_pton(AF_INET6, host, &sa->sin6_addr) == 1 ? 0 : -EINVAL;
}

int net_parse_sockaddr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *sa4 = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	uint16_t port;

	memset(ss, 0, sizeof(*ss));
	if (split_host_port(s, host, sizeof(host), &port))
		return -EINVAL;
	if (*s == '[') {
		sa6->sin6_family = AF_INET6;
		sa6->sin6_port = htons(port);
		*len = sizeof(*sa6);
		return parse_v6(host, sa6);
	}
	sa4->sin_family = AF_INET;
	sa4->sin_port = htons(port);
	*len = sizeof(*sa4);
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	return inet_pton(AF_INET, host, &sa4->sin_addr) == 1 ? 0 : -EINVAL;
}

static void tune(int fd)
{
	int one = 1;

	/* small control frames must not wait behind Nagle */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

#define ADDR_FORMS "IPV4:PORT, [IPV6]:PORT or localhost:PORT"

int net_listen(const char *addr, char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;
	int fd;

	if (net_parse_sockaddr(addr, &ss, &len)) {
		snprintf(why, whylen, "bad address '%s' (want " ADDR_FORMS ")", addr);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 4)) {
		int err = -errno;

		snprintf(why, whylen, "cannot listen on %s: %s", addr, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

int net_accept(int lfd, int stop_fd, int timeout_ms)
{
	struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
			       { .fd = stop_fd, .events = POLLIN } };
	int r;
	int fd;

	do
		r = poll(p, stop_fd >= 0 ? 2 : 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (!r)
		return -ETIMEDOUT;
	if (stop_fd >= 0 && (p[1].revents & POLLIN))
		return -ECANCELED;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	tune(fd);
	return fd;
}

/* Poll @fd for @ev up to @timeout_ms. 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short ev, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r ? 0 : -ETIMEDOUT;
}

void net_init(struct net_conn *c, int fd, int timeout_ms)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	pthread_mutex_init(&c->wlock, NULL);
}

int net_connect(struct net_conn *c, const char *addr, int timeout_ms, char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	struct pollfd p;
	socklen_t len;
	int err = 0;
	int fd;

	net_init(c, -1, timeout_ms);
	if (net_parse_sockaddr(addr, &ss, &len)) {
		snprintf(why, whylen, "bad address '%s' (want " ADDR_FORMS ")", addr);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS)
		err = -errno;
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	len = sizeof(int);
	if (!err && poll(&p, 1, timeout_ms) != 1)
		err = -ETIMEDOUT;
	if (!err && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
		err = -err;
	if (err) {
		snprintf(why, whylen, "cannot connect to %s: %s", addr, strerror(-err));
		close(fd);
		return err;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	tune(fd);
	c->fd = fd;
	return 0;
}

void net_close(struct net_conn *c)
{
	/* under wlock: a sender in another thread finishes its frame or finds fd -1 */
	pthread_mutex_lock(&c->wlock);
	tls_close(c->tls);
	c->tls = NULL;
	free(c->stage);
	c->stage = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	pthread_mutex_unlock(&c->wlock);
}

int net_tls_start(struct net_conn *c, struct tls_ctx *ctx, char *why, size_t whylen)
{
	int err;

	if (c->fd < 0 || c->tls) {
		snprintf(why, whylen, c->tls ? "TLS already started" : "not connected");
		return c->tls ? -EALREADY : -EPIPE;
	}
	c->stage = malloc(NET_TLS_STAGE);
	if (!c->stage) {
		snprintf(why, whylen, "out of memory for the TLS buffer");
		return -ENOMEM;
	}
	err = tls_handshake(ctx, c->fd, c->timeout_ms, &c->tls, why, whylen);
	if (err) {
		free(c->stage);
		c->stage = NULL;
	}
	return err;
}

int net_wait_readable(struct net_conn *c, int timeout_ms)
{
	if (c->fd < 0)
		return -EPIPE;
	if (c->tls && tls_pending(c->tls))
		return 0;
	return wait_fd(c->fd, POLLIN, timeout_ms);
}

/* Hold sends to c->rate bytes/s (token bucket over the whole stream). */
static void pace(struct net_conn *c, size_t bytes)
{
	uint64_t now = hm_now_ns();
	uint64_t due;

	if (!c->rate)
		return;
	if (!c->pace_t0 || now - c->pace_t0 > NSEC_PER_SEC) {
		/* restart the window after idle so a pause does not buy a burst */
		c->pace_t0 = now;
		c->pace_bytes = 0;
	}
	c->pace_bytes += bytes;
	due = c->pace_t0 + c->pace_bytes * NSEC_PER_SEC / c->rate;
	if (due > now) {
		struct timespec ts = { (time_t)((due - now) / NSEC_PER_SEC),
				       (long)((due - now) % NSEC_PER_SEC) };

		nanosleep(&ts, NULL);
	}
}

/* The write paths take their timeout as an argument: c->timeout_ms belongs to the reader. */
static int write_all(struct net_conn *c, struct iovec *iov, int n, int timeout_ms)
{
	while (n > 0) {
		ssize_t w;
		int err = wait_fd(c->fd, POLLOUT, timeout_ms);

		if (err)
			return err;
		/* non-blocking: a blocking writev would wait for room for all of it,
		 * past our timeout, on a link that went dead */
		w = sendmsg(c->fd,
			    &(struct msghdr){ .msg_iov = iov,
					      .msg_iovlen = (size_t)(n > IOV_MAX ? IOV_MAX : n) },
			    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w < 0)
			return errno == ECONNRESET || errno == ECONNABORTED ? -EPIPE : -errno;
		c->sent += (uint64_t)w;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Send @len bytes at @p through TLS, polling whenever OpenSSL must wait. */
static int write_buf_tls(struct net_conn *c, const uint8_t *p, size_t len, int timeout_ms)
{
	while (len) {
		ssize_t w = tls_send(c->tls, p, len);

		if (w == -EAGAIN) {
			int err = wait_fd(c->fd, tls_want(c->tls, true), timeout_ms);

			if (err)
				return err;
			/* same bytes again, as OpenSSL requires after a retry */
			continue;
		}
		if (w < 0)
			return (int)w;
		c->sent += (uint64_t)w;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Copy up to @cap bytes from the front of *@iov (*@n pieces, advanced) into @dst. */
static size_t gather(struct iovec **iov, int *n, uint8_t *dst, size_t cap)
{
	size_t len = 0;

	while (*n > 0 && len < cap) {
		struct iovec *v = *iov;
		size_t k = min_t(size_t, v->iov_len, cap - len);

		memcpy(dst + len, v->iov_base, k);
		len += k;
		v->iov_base = (char *)v->iov_base + k;
		v->iov_len -= k;
		if (!v->iov_len) {
			(*iov)++;
			(*n)--;
		}
	}
	return len;
}

static int write_all_tls(struct net_conn *c, struct iovec *iov, int n, int timeout_ms)
{
	while (n > 0) {
		int err;

		if (iov->iov_len >= NET_TLS_RECORD) {
			err = write_buf_tls(c, iov->iov_base, iov->iov_len, timeout_ms);
			iov++;
			n--;
		} else {
			size_t len = gather(&iov, &n, c->stage, NET_TLS_STAGE);

			err = write_buf_tls(c, c->stage, len, timeout_ms);
		}
		if (err)
			return err;
	}
	return 0;
}

static int send_locked(struct net_conn *c, uint32_t type, uint32_t flags, const struct iovec *iov,
		       int n, int timeout_ms)
{
	struct iovec v[1 + PROTO_BATCH_MAX + 2];
	uint8_t hdr[PROTO_HDR_SIZE];
	size_t len = 0;

	if (c->fd < 0)
		return -EPIPE;
	if (n < 0 || n > (int)ARRAY_SIZE(v) - 1)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		v[1 + i] = iov[i];
		len += iov[i].iov_len;
	}
	proto_hdr_encode(hdr, type, flags, len);
	v[0] = (struct iovec){ hdr, sizeof(hdr) };
	pace(c, len + sizeof(hdr));
	if (c->tls)
		return write_all_tls(c, v, n + 1, timeout_ms);
	return write_all(c, v, n + 1, timeout_ms);
}

int net_send(struct net_conn *c, uint32_t type, uint32_t flags, const struct iovec *iov, int n)
{
	int err;

	pthread_mutex_lock(&c->wlock);
	err = send_locked(c, type, flags, iov, n, c->timeout_ms);
	pthread_mutex_unlock(&c->wlock);
	return err;
}

/*
 * How long the next wait may take: c->timeout_ms, cut to what is left of
 * @deadline (ns, 0 = none). -ETIMEDOUT once the deadline has passed.
 */
static int wait_ms(struct net_conn *c, uint64_t deadline)
{
	uint64_t now;

	if (!deadline)
		return c->timeout_ms;
	now = hm_now_ns();
	if (now >= deadline)
		return -ETIMEDOUT;
	return (int)min_t(uint64_t, (uint64_t)c->timeout_ms, (deadline - now) / NSEC_PER_MSEC + 1);
}

static int read_all_tls(struct net_conn *c, uint8_t *buf, size_t len, uint64_t deadline,
			const char **why)
{
	while (len) {
		/* try first: the bytes may already sit decrypted or read ahead in OpenSSL */
		ssize_t r = tls_recv(c->tls, buf, len);

		if (r == -EAGAIN) {
			int ms = wait_ms(c, deadline);
			int err = ms < 0 ? ms : wait_fd(c->fd, tls_want(c->tls, false), ms);

			if (err)
				return err;
			continue;
		}
		if (r < 0) {
			*why = tls_why(c->tls, false);
			return (int)r;
		}
		c->received += (uint64_t)r;
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

static int read_all_plain(struct net_conn *c, uint8_t *buf, size_t len, uint64_t deadline)
{
	while (len) {
		ssize_t r;
		int ms = wait_ms(c, deadline);
		int err = ms < 0 ? ms : wait_fd(c->fd, POLLIN, ms);

		if (err)
			return err;
		r = recv(c->fd, buf, len, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return errno == ECONNRESET || errno == ECONNABORTED ? -EPIPE : -errno;
		if (!r)
			return -EPIPE;
		c->received += (uint64_t)r;
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

static int read_all(struct net_conn *c, uint8_t *buf, size_t len, uint64_t deadline,
		    const char **why)
{
	return c->tls ? read_all_tls(c, buf, len, deadline, why)
		      : read_all_plain(c, buf, len, deadline);
}

int net_recv(struct net_conn *c, struct proto_hdr *h, uint8_t *buf, size_t cap, const char **why)
{
	uint8_t hdr[PROTO_HDR_SIZE];
	uint64_t deadline;
	int err;

	if (c->fd < 0)
		return -EPIPE;
	/*
	 * The wait for a frame may be long (c->timeout_ms between reads);
	 * once it has begun, the whole frame must arrive within one
	 * timeout: a peer dripping bytes cannot hold us read by read.
	 */
	err = read_all(c, hdr, 1, 0, why);
	deadline = hm_now_ns() + (uint64_t)c->timeout_ms * NSEC_PER_MSEC;
	if (!err)
		err = read_all(c, hdr + 1, sizeof(hdr) - 1, deadline, why);
	if (err)
		return err;
	err = proto_hdr_decode(hdr, h, why);
	if (err)
		return err;
	if (h->len > cap) {
		*why = "frame larger than this side accepts";
		return -EBADMSG;
	}
	return read_all(c, buf, (size_t)h->len, deadline, why);
}

void net_send_error(struct net_conn *c, int err, const char *msg)
{
	uint8_t buf[PROTO_ERROR_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	int r;

	proto_error_encode(buf, (uint32_t)(err < 0 ? -err : err), msg);
	/* a short timeout of its own: the link may be what failed */
	pthread_mutex_lock(&c->wlock);
	r = send_locked(c, PROTO_ERROR, 0, &v, 1, 1000);
	pthread_mutex_unlock(&c->wlock);
	if (r)
		hm_dbg("could not send the error frame");
}

uint64_t net_unacked(struct net_conn *c)
{
	int n = 0;

	if (c->fd < 0 || ioctl(c->fd, SIOCOUTQ, &n) || n < 0)
		return 0;
	return (uint64_t)n;
}

int net_send_pagemap(struct net_conn *c, const struct bitmap *bm)
{
	uint64_t end = ALIGN_UP(bm->nbits, 64);

	for (uint64_t first = 0; first < end; first += PROTO_PAGEMAP_MAX_BITS) {
		uint32_t nbits = (uint32_t)min_t(uint64_t, PROTO_PAGEMAP_MAX_BITS, end - first);
		uint8_t head[PROTO_PAGEMAP_HDR];
		struct iovec v[2] = { { head, sizeof(head) },
				      { (void *)&bm->words[first / 64], nbits / 8 } };
		int err;

		proto_pagemap_encode_head(head, first, nbits);
		err = net_send(c, PROTO_PAGEMAP, 0, v, 2);
		if (err)
			return err;
	}
	return 0;
}
