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
#include "src/bitmap.h"
#include "src/log.h"

int net_parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

static void tune(int fd)
{
	int one = 1;

	/* small control frames must not wait behind Nagle */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int net_listen(const char *addr, char *why, size_t whylen)
{
	struct sockaddr_in sa;
	int one = 1;
	int fd;

	if (net_parse_addr(addr, &sa)) {
		snprintf(why, whylen, "bad address '%s' (want IPV4:PORT)", addr);
		return -EINVAL;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4)) {
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

void net_init(struct net_conn *c, int fd, int timeout_ms)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->timeout_ms = timeout_ms;
}

int net_connect(struct net_conn *c, const char *addr, int timeout_ms, char *why, size_t whylen)
{
	struct sockaddr_in sa;
	struct pollfd p;
	socklen_t len = sizeof(int);
	int err = 0;
	int fd;

	net_init(c, -1, timeout_ms);
	if (net_parse_addr(addr, &sa)) {
		snprintf(why, whylen, "bad address '%s' (want IPV4:PORT)", addr);
		return -EINVAL;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS)
		err = -errno;
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
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
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int wait_fd(struct net_conn *c, short ev)
{
	struct pollfd p = { .fd = c->fd, .events = ev };
	int r;

	do
		r = poll(&p, 1, c->timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r ? 0 : -ETIMEDOUT;
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

static int write_all(struct net_conn *c, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w;
		int err = wait_fd(c, POLLOUT);

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

int net_send(struct net_conn *c, uint32_t type, uint32_t flags, const struct iovec *iov, int n)
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
	return write_all(c, v, n + 1);
}

static int read_all(struct net_conn *c, uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t r;
		int err = wait_fd(c, POLLIN);

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

int net_recv(struct net_conn *c, struct proto_hdr *h, uint8_t *buf, size_t cap, const char **why)
{
	uint8_t hdr[PROTO_HDR_SIZE];
	int err;

	if (c->fd < 0)
		return -EPIPE;
	err = read_all(c, hdr, sizeof(hdr));
	if (err)
		return err;
	err = proto_hdr_decode(hdr, h, why);
	if (err)
		return err;
	if (h->len > cap) {
		*why = "frame larger than this side accepts";
		return -EBADMSG;
	}
	return read_all(c, buf, (size_t)h->len);
}

void net_send_error(struct net_conn *c, int err, const char *msg)
{
	uint8_t buf[PROTO_ERROR_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	int saved = c->timeout_ms;

	proto_error_encode(buf, (uint32_t)(err < 0 ? -err : err), msg);
	c->timeout_ms = 1000;
	if (net_send(c, PROTO_ERROR, 0, &v, 1))
		hm_dbg("could not send the error frame");
	c->timeout_ms = saved;
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
