// SPDX-License-Identifier: MIT
#define LOG_PREFIX "link: "
#include "src/link.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include "src/log.h"
#include "src/sockbuf.h"

void link_init(struct link *l, struct tls_ctx *tls)
{
	memset(l, 0, sizeof(*l));
	net_init(&l->bulk, -1, LINK_HANDSHAKE_MS);
	net_init(&l->urgent, -1, LINK_HANDSHAKE_MS);
	l->tls = tls;
	l->handshake_ms = LINK_HANDSHAKE_MS;
}

void link_close(struct link *l)
{
	net_close(&l->urgent);
	net_close(&l->bulk);
}

int link_new_secret(struct link *l)
{
	ssize_t n = getrandom(l->secret, sizeof(l->secret), 0);

	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(l->secret) ? 0 : -EIO;
}

bool link_error_transient(int err)
{
	switch (err) {
	case -EPIPE:
	case -ETIMEDOUT:
	case -ECONNRESET:
	case -ECONNABORTED:
	case -ECONNREFUSED:
	case -ENETUNREACH:
	case -EHOSTUNREACH:
	case -ENETDOWN:
	case -EHOSTDOWN:
		return true;
	default:
		return false;
	}
}

const char *link_strerror(int err, const char *role)
{
	static __thread char buf[128];

	switch (err) {
	case -ETIMEDOUT:
		snprintf(buf, sizeof(buf), "the %s stopped answering (timeout)", role);
		break;
	case -EPIPE:
	case -ECONNRESET:
		snprintf(buf, sizeof(buf), "the connection to the %s was lost", role);
		break;
	case -ECONNREFUSED:
		snprintf(buf, sizeof(buf), "the %s refused the connection (nothing listens there?)",
			 role);
		break;
	default:
		snprintf(buf, sizeof(buf), "%s", strerror(-err));
	}
	return buf;
}

/* TLS on one fresh connection, bounded by the handshake deadline. */
static int secure(struct link *l, struct net_conn *c, char *why, size_t whylen)
{
	int saved = c->timeout_ms;
	int err;

	if (!l->tls)
		return 0;
	c->timeout_ms = l->handshake_ms;
	err = net_tls_start(c, l->tls, why, whylen);
	c->timeout_ms = saved;
	return err;
}

static int send_hello(struct link *l, struct net_conn *c, uint32_t channel, uint32_t flags)
{
	struct proto_hello hm = {
		.magic = PROTO_MAGIC, .version = PROTO_VERSION, .channel = channel, .flags = flags
	};
	uint8_t buf[PROTO_HELLO_SIZE];
	struct iovec v = { buf, sizeof(buf) };

	memcpy(hm.secret, l->secret, sizeof(hm.secret));
	proto_hello_encode(buf, &hm);
	return net_send(c, PROTO_HELLO, 0, &v, 1);
}

/*
 * Read one hello, or the peer's ERROR/REFUSE, which becomes its own -errno
 * (-EBUSY, -ENOENT) with its message. -EPROTO with a reason for anything else.
 */
static int recv_hello(struct net_conn *c, struct proto_hello *hm, char *why, size_t whylen)
{
	uint8_t buf[PROTO_ERROR_SIZE];
	const char *r = "malformed frame";
	struct proto_error e;
	struct proto_hdr h;
	int err = net_recv(c, &h, buf, sizeof(buf), &r);

	if (err == -EBADMSG || err == -EPROTO) {
		snprintf(why, whylen, "bad hello: %s", r);
		return -EPROTO;
	}
	if (err == -EACCES) { /* TLS: the peer refused our certificate after the handshake */
		snprintf(why, whylen, "%s", r);
		return err;
	}
	if (err)
		return err;
	if (h.type == PROTO_ERROR || h.type == PROTO_REFUSE) {
		if (proto_error_decode(buf, h.len, &e, &r)) {
			snprintf(why, whylen, "the peer refused with a malformed error");
			return -EPROTO;
		}
		snprintf(why, whylen, "the peer refused: %s", e.msg);
		return -(int)e.code; /* checked to be 1..4095 */
	}
	if (h.type != PROTO_HELLO) {
		snprintf(why, whylen, "the peer did not start with a hello (frame %u)", h.type);
		return -EPROTO;
	}
	err = proto_hello_decode(buf, h.len, hm, &r);
	if (err)
		snprintf(why, whylen, "bad hello: %s", r);
	return err;
}

/* Source side of one connection: TCP, TLS, hello out, the echo checked. */
static int open_one(struct link *l, struct net_conn *c, const char *to, uint32_t channel,
		    uint32_t flags, char *why, size_t whylen)
{
	struct proto_hello peer;
	uint64_t t0;
	int err;

	err = net_connect(c, to, l->handshake_ms, why, whylen);
	if (err)
		return err;
	c->timeout_ms = l->handshake_ms;
	err = secure(l, c, why, whylen);
	if (err)
		goto out_close;
	t0 = hm_now_ns();
	err = send_hello(l, c, channel, flags);
	if (!err)
		err = recv_hello(c, &peer, why, whylen);
	if (err) {
		if (!why[0] || err == -EPIPE || err == -ETIMEDOUT)
			snprintf(why, whylen, "%s", link_strerror(err, "destination"));
		goto out_close;
	}
	if (peer.channel != channel || memcmp(peer.secret, l->secret, sizeof(l->secret))) {
		snprintf(why, whylen, "the destination answered for another session");
		err = -EPROTO;
		goto out_close;
	}
	/*
	 * The lower of the two hellos' round trips: the first exchange after a
	 * TLS handshake was seen once to take 4 ms on loopback (RTT 60 us), and
	 * the downtime subtracts half the RTT from the source's pause. Not
	 * TCP_INFO: behind a split-connection proxy it sees only the first hop.
	 */
	if (channel == PROTO_CH_BULK || hm_now_ns() - t0 < l->rtt_ns)
		l->rtt_ns = hm_now_ns() - t0;
	return 0;

out_close:
	net_close(c);
	return err;
}

int link_connect(struct link *l, const char *to, bool resume, char *why, size_t whylen)
{
	uint32_t flags = resume ? PROTO_HELLO_RESUME : 0;
	int err;

	why[0] = 0;
	err = open_one(l, &l->bulk, to, PROTO_CH_BULK, flags, why, whylen);
	if (err)
		return err;
	err = open_one(l, &l->urgent, to, PROTO_CH_URGENT, flags, why, whylen);
	if (err) {
		char inner[192];

		snprintf(inner, sizeof(inner), "%s", why);
		snprintf(why, whylen, "urgent channel: %s", inner);
		net_close(&l->bulk);
	}
	return err;
}

/* Log a sizing's outcome: a cap is worth a warning, the rest is routine. */
static void log_sizing(const struct sockbuf_result *r, bool send, uint64_t rtt_ns)
{
	char msg[400];

	if (sockbuf_describe(r, send, rtt_ns, msg, sizeof(msg)))
		hm_warn("%s", msg);
	else if (r->how == SOCKBUF_AUTO)
		hm_dbg("%s", msg);
	else
		hm_info("%s", msg);
}

int link_size_send(struct link *l, uint64_t rate, uint64_t max, struct sockbuf_result *r)
{
	struct sockbuf_host h;
	int err;

	err = sockbuf_host_read(&h);
	if (err)
		return err;
	*r = (struct sockbuf_result){ .how = SOCKBUF_AUTO, .got = h.tcp_wmem_max };
	if (!max || l->bulk.fd < 0)
		return 0;
	err = sockbuf_size(l->bulk.fd, true, sockbuf_need(rate, l->rtt_ns, max), &h, r);
	if (err)
		return err;
	log_sizing(r, true, l->rtt_ns);
	return r->how == SOCKBUF_AUTO ? 0 : sockbuf_lowat(l->bulk.fd, SOCKBUF_LOWAT);
}

int link_size_listener(int lfd, uint64_t max)
{
	struct sockbuf_result r;
	struct sockbuf_host h;
	int err;

	if (!max)
		return 0;
	err = sockbuf_host_read(&h);
	if (!err)
		err = sockbuf_size(lfd, false, max, &h, &r);
	if (!err)
		log_sizing(&r, false, 0);
	return err;
}

/* Tell a source we cannot take that we are busy, best effort. */
static void send_busy(struct net_conn *c)
{
	net_send_error(c, EBUSY, "busy: this destination is already receiving another migration");
}

/* take_one failed only because the hello named another channel (an authenticated peer). */
static bool take_one_failed_on_channel(const char *why)
{
	return !strcmp(why, "hello on the wrong channel");
}

/* One accepted connection: TLS, then a well-formed hello on @channel. */
static int take_one(struct link *l, struct net_conn *c, int fd, uint32_t channel,
		    struct proto_hello *hm, char *why, size_t whylen)
{
	int err;

	net_init(c, fd, l->handshake_ms);
	err = secure(l, c, why, whylen);
	if (!err)
		err = recv_hello(c, hm, why, whylen);
	if (!err && hm->channel != channel) {
		snprintf(why, whylen, "hello on the wrong channel");
		err = -EPROTO;
	}
	if (err && !why[0])
		snprintf(why, whylen, "%s", link_strerror(err, "peer"));
	return err;
}

int link_accept(struct link *l, int lfd, int stop_fd, int wait_ms, bool resume_only, bool *resume,
		char *why, size_t whylen)
{
	uint64_t deadline = wait_ms < 0 ? 0 : hm_now_ns() + (uint64_t)wait_ms * NSEC_PER_MSEC;

	for (;;) {
		struct proto_hello hm;
		int left = -1;
		int fd;
		int err;

		if (deadline) {
			uint64_t now = hm_now_ns();

			left = now >= deadline ? 0 : (int)((deadline - now) / NSEC_PER_MSEC) + 1;
		}
		fd = net_accept(lfd, stop_fd, left);
		if (fd == -ECANCELED || fd == -ETIMEDOUT) {
			snprintf(why, whylen, "%s",
				 fd == -ECANCELED ? "stopped while waiting for a source"
						  : "no source came within the wait");
			return fd;
		}
		if (fd < 0)
			continue; /* e.g. a connection reset before we took it */
		why[0] = 0;
		err = take_one(l, &l->bulk, fd, PROTO_CH_BULK, &hm, why, whylen);
		if (!err && resume_only &&
		    (!(hm.flags & PROTO_HELLO_RESUME) ||
		     memcmp(hm.secret, l->secret, sizeof(l->secret)))) {
			send_busy(&l->bulk);
			snprintf(why, whylen, "not the source of the migration in progress");
			err = -EBUSY;
		}
		if (!err && !resume_only && (hm.flags & PROTO_HELLO_RESUME)) {
			net_send_error(&l->bulk, ENOENT, "no such migration session here");
			snprintf(why, whylen,
				 "resumption of a session this destination does not have");
			err = -ENOENT;
		}
		if (!err) {
			if (!resume_only)
				memcpy(l->secret, hm.secret, sizeof(l->secret));
			*resume = hm.flags & PROTO_HELLO_RESUME;
			return 0;
		}
		hm_warn("refused a connection: %s; still waiting for the source", why);
		net_close(&l->bulk);
	}
}

void link_turn_away(struct link *l, int lfd, int stop_fd, int wait_ms)
{
	struct net_conn c;
	struct proto_hello hm;
	char why[256] = "";
	int fd = net_accept(lfd, stop_fd, wait_ms);
	int err;

	if (fd < 0)
		return;
	/* a stranger fails the handshake and gets nothing; a peer is told why */
	err = take_one(l, &c, fd, PROTO_CH_BULK, &hm, why, sizeof(why));
	if (!err || take_one_failed_on_channel(why)) {
		send_busy(&c);
		hm_warn("turned a source away: busy with another migration");
	} else {
		hm_warn("refused a connection: %s", why);
	}
	net_close(&c);
}

int link_answer(struct link *l, int lfd, int stop_fd, char *why, size_t whylen)
{
	struct proto_hello hm;
	int fd;
	int err;

	err = send_hello(l, &l->bulk, PROTO_CH_BULK, 0);
	if (err) {
		snprintf(why, whylen, "cannot answer the hello: %s", link_strerror(err, "source"));
		return err;
	}
	/* the urgent channel follows at once; strays in between are turned away */
	for (int tries = 0; tries < 8; tries++) {
		fd = net_accept(lfd, stop_fd, l->handshake_ms);
		if (fd < 0) {
			snprintf(why, whylen, "the source did not open its urgent channel: %s",
				 link_strerror(fd, "source"));
			return fd;
		}
		why[0] = 0;
		err = take_one(l, &l->urgent, fd, PROTO_CH_URGENT, &hm, why, whylen);
		if (!err && memcmp(hm.secret, l->secret, sizeof(l->secret))) {
			send_busy(&l->urgent);
			snprintf(why, whylen, "urgent channel of another session");
			err = -EBUSY;
		}
		if (!err)
			err = send_hello(l, &l->urgent, PROTO_CH_URGENT, 0);
		if (!err)
			return 0;
		hm_warn("refused an urgent channel: %s", why);
		net_close(&l->urgent);
	}
	snprintf(why, whylen, "no valid urgent channel from the source");
	return -EPROTO;
}
