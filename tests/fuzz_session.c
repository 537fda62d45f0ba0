// SPDX-License-Identifier: MIT
/*
 * Shared by the session fuzzers: input splitting, the write-and-read loop
 * of the fake peer, checks on every frame the real side sends, socket
 * helpers, and the clock of fixed sleeps (see __wrap_nanosleep below).
 */
#include "tests/fuzz_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sanitizer/common_interface_defs.h>
#include "src/compress.h"
#include "src/log.h"
#include "src/vcpu.h"
#include "src/vmstate.h"

#define RX_CAP (PROTO_HDR_SIZE + PROTO_FRAME_MAX)

static bool trace; /* HM_FUZZ_LOG set: project logs at debug level, frames received traced */

void fz_fail(const char *what, const char *file, int line)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "fuzz invariant violated at %s:%d: %s", file, line, what);
	/* stderr may be closed (-close_fd_mask=2): the sanitizer's report fd is not */
	__sanitizer_report_error_summary(msg);
	fprintf(stderr, "%s\n", msg);
	abort();
}

/*
 * Fixed sleeps in src/ would hold one input for seconds: dest.c
 * report_after sleeps up to 2 s after every pre-copy that ran the guest,
 * mig_switch.c sleeps 1 s between reconnection attempts, dest_postcopy.c
 * polls 6000 x 10 ms for pages still missing after DONE. The session
 * fuzzers link with --wrap=nanosleep,--wrap=poll, and every sleep of 5 ms
 * or more (a poll on no descriptor is a sleep) runs SLEEP_SCALE times
 * faster; what that leaves under SLEEP_NONE is not slept at all (on 2
 * busy cores each wake-up costs far more than the sleep). Shorter sleeps
 * (pacing, the I/O device's tick) and polls on descriptors are untouched.
 */
#define SLEEP_SCALE 1000
#define SLEEP_MIN   (5 * NSEC_PER_MSEC)
#define SLEEP_NONE  (100 * 1000)

int __real_nanosleep(const struct timespec *req, struct timespec *rem);
int __wrap_nanosleep(const struct timespec *req, struct timespec *rem);
int __real_poll(struct pollfd *fds, nfds_t n, int timeout);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout);

static int sleep_ns(uint64_t ns, struct timespec *rem)
{
	struct timespec t;

	if (ns >= SLEEP_MIN) {
		ns /= SLEEP_SCALE;
		if (ns < SLEEP_NONE)
			return 0;
	}
	t = (struct timespec){ (time_t)(ns / NSEC_PER_SEC), (long)(ns % NSEC_PER_SEC) };
	return __real_nanosleep(&t, rem);
}

int __wrap_nanosleep(const struct timespec *req, struct timespec *rem)
{
	return sleep_ns((uint64_t)req->tv_sec * NSEC_PER_SEC + (uint64_t)req->tv_nsec, rem);
}

int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (!n && timeout > 0)
		return sleep_ns((uint64_t)timeout * NSEC_PER_MSEC, NULL);
	return __real_poll(fds, n, timeout);
}

/* ---- input ---- */

static void out_add(struct fz_out *o, uint32_t type, uint32_t flags, const uint8_t *p, size_t len)
{
	o->type[o->nframes] = type;
	o->start[o->nframes] = o->len;
	o->end[o->nframes] = o->len + PROTO_HDR_SIZE + len;
	o->nframes++;
	proto_hdr_encode(o->buf + o->len, type, flags, len);
	memcpy(o->buf + o->len + PROTO_HDR_SIZE, p, len);
	o->len += PROTO_HDR_SIZE + len;
}

/* Take one piece off *@data; false when fewer than 16 bytes are left. */
static bool next_piece(const uint8_t **data, size_t *size, struct proto_hdr *h,
		       const uint8_t **payload)
{
	if (*size < PROTO_HDR_SIZE)
		return false;
	h->type = proto_get_le32(*data);
	h->flags = proto_get_le32(*data + 4);
	h->len = min_t(uint64_t, proto_get_le64(*data + 8), *size - PROTO_HDR_SIZE);
	*payload = *data + PROTO_HDR_SIZE;
	*data += PROTO_HDR_SIZE + h->len;
	*size -= PROTO_HDR_SIZE + (size_t)h->len;
	return true;
}

void fz_input_parse(struct fz_input *in, const uint8_t *data, size_t size, uint8_t first_mask)
{
	struct proto_hdr h;
	const uint8_t *p;
	unsigned int seg = 0;

	memset(in, 0, sizeof(*in));
	for (int i = 0; i < 2 && size; i++, size--)
		in->opt[i] = *data++;
	for (unsigned int k = 0; k < FZ_MAX_SEGMENTS; k++)
		for (int ch = 0; ch < 2; ch++) {
			in->out[k][ch].buf = malloc(size + 1);
			fz_check(in->out[k][ch].buf != NULL);
		}
	while (next_piece(&data, &size, &h, &p)) {
		if (!in->has_first) {
			in->first = h;
			in->first_payload = p;
			in->has_first = true;
			if (in->opt[0] & first_mask)
				continue;
		}
		if (h.type == FZ_MARKER) {
			seg += seg + 1 < FZ_MAX_SEGMENTS;
			continue;
		}
		/* every frame is remembered, or the rest of the input is dropped */
		if (in->out[seg][!!(h.type & FZ_URGENT_BIT)].nframes == FZ_MAX_FRAMES) {
			size = 0;
			break;
		}
		out_add(&in->out[seg][!!(h.type & FZ_URGENT_BIT)], h.type & ~FZ_URGENT_BIT, h.flags,
			p, (size_t)h.len);
	}
	/* a tail shorter than a header still goes out: a truncated header */
	memcpy(in->out[seg][0].buf + in->out[seg][0].len, data, size);
	in->out[seg][0].len += size;
	in->nseg = seg + 1;
}

void fz_input_free(struct fz_input *in)
{
	for (unsigned int k = 0; k < FZ_MAX_SEGMENTS; k++)
		for (int ch = 0; ch < 2; ch++)
			free(in->out[k][ch].buf);
}

bool fz_input_sent(const struct fz_input *in, int ch, uint32_t type)
{
	for (unsigned int k = 0; k < in->nseg; k++) {
		const struct fz_out *o = &in->out[k][ch];

		for (unsigned int i = 0; i < o->nframes; i++)
			if (o->type[i] == type && o->end[i] <= o->off)
				return true;
	}
	return false;
}

long fz_out_find(const struct fz_out *o, uint32_t type, size_t from, size_t to)
{
	for (unsigned int i = 0; i < o->nframes; i++)
		if (o->type[i] == type && o->start[i] >= from && o->start[i] < to)
			return (long)o->start[i];
	return -1;
}

/* ---- checks on what the real side sends ---- */

static void check_pages(const uint8_t *p, size_t len, uint64_t max_gfn)
{
	struct proto_pages pg;
	const char *why = NULL;
	uint8_t *raw;

	fz_check(!proto_pages_decode(p, len, max_gfn, &pg, &why));
	if (!(pg.flags & PROTO_PAGES_LZ4))
		return;
	raw = malloc(pg.raw_len);
	fz_check(raw != NULL);
	fz_check(!compress_decode(pg.data, pg.data_len, raw, pg.raw_len));
	free(raw);
}

static void check_vmstate(const uint8_t *p, size_t len)
{
	struct vmstate_rec r;
	const char *why = NULL;
	size_t off = 0;
	int ret;

	while ((ret = vmstate_next(p, len, &off, &r, &why)) > 0)
		;
	fz_check(ret == 0);
}

/* Every frame type proto.h defines has its check below: a new one is a finding at start-up. */
static bool frame_checked(uint32_t type)
{
	switch (type) {
	case PROTO_HELLO:
	case PROTO_VMDESC:
	case PROTO_ACCEPT:
	case PROTO_REFUSE:
	case PROTO_PAGES:
	case PROTO_ROUND:
	case PROTO_VMSTATE:
	case PROTO_SWITCH:
	case PROTO_STARTED:
	case PROTO_AFTER:
	case PROTO_ERROR:
	case PROTO_REQ:
	case PROTO_PAGEMAP:
	case PROTO_DONE:
	case PROTO_COMPLETE:
	case PROTO_READY:
	case PROTO_GO:
	case PROTO_STATUS:
	case PROTO_PROGRESS:
		return true;
	default:
		return false;
	}
}

/* Fixed-size payloads: the decoder of the type accepts what the real side encoded. */
static bool fixed_ok(const struct proto_hdr *h, const uint8_t *p, uint64_t max_gfn)
{
	union {
		struct proto_hello hello;
		struct proto_vmdesc vmdesc;
		struct proto_error error;
		struct proto_round round;
		struct proto_started started;
		struct proto_after after;
		struct proto_ready ready;
		struct proto_status status;
		struct proto_complete complete;
		struct proto_progress progress;
		uint64_t gfn;
	} m;
	const char *why = NULL;
	size_t len = (size_t)h->len;

	switch (h->type) {
	case PROTO_HELLO:
		return !proto_hello_decode(p, len, &m.hello, &why);
	case PROTO_VMDESC:
		return !proto_vmdesc_decode(p, len, &m.vmdesc, &why);
	case PROTO_REFUSE:
	case PROTO_ERROR:
		return !proto_error_decode(p, len, &m.error, &why);
	case PROTO_ROUND:
		return !proto_round_decode(p, len, &m.round, &why);
	case PROTO_STARTED:
		return !proto_started_decode(p, len, &m.started, &why);
	case PROTO_AFTER:
		return !proto_after_decode(p, len, &m.after, &why);
	case PROTO_READY:
		return !proto_ready_decode(p, len, &m.ready, &why);
	case PROTO_STATUS:
		return !proto_status_decode(p, len, &m.status, &why);
	case PROTO_COMPLETE:
		return !proto_complete_decode(p, len, &m.complete, &why);
	case PROTO_REQ:
		return !proto_req_decode(p, len, max_gfn, &m.gfn, &why);
	case PROTO_PROGRESS:
		return !proto_progress_decode(p, len, &m.progress, &why);
	default:
		fz_fail("frame type without a check in fuzz_session.c", __FILE__, __LINE__);
	}
}

void fz_check_frame(const struct proto_hdr *h, const uint8_t *p, uint64_t max_gfn)
{
	struct proto_pagemap pm;
	const char *why = NULL;

	switch (h->type) {
	case PROTO_ACCEPT:
	case PROTO_SWITCH:
	case PROTO_DONE:
	case PROTO_GO:
		fz_check(h->len == 0);
		break;
	case PROTO_PAGES:
		check_pages(p, (size_t)h->len, max_gfn);
		break;
	case PROTO_PAGEMAP:
		fz_check(!proto_pagemap_decode(p, (size_t)h->len, max_gfn, &pm, &why));
		break;
	case PROTO_VMSTATE:
		check_vmstate(p, (size_t)h->len);
		break;
	default:
		fz_check(fixed_ok(h, p, max_gfn));
	}
}

/* ---- the pump ---- */

void fz_conn_init(struct fz_conn *c, int fd, int ch, uint64_t max_gfn)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->ch = ch;
	c->max_gfn = max_gfn;
	c->rx = malloc(RX_CAP);
	fz_check(c->rx != NULL);
}

void fz_conn_close(struct fz_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->rx);
	c->rx = NULL;
}

/* Take every whole frame off the front of c->rx. */
static void rx_frames(struct fz_pump *p, struct fz_conn *c)
{
	size_t off = 0;

	while (c->rx_len - off >= PROTO_HDR_SIZE) {
		const char *why = NULL;
		struct proto_hdr h;

		/* the real side only sends frames it would accept itself */
		fz_check(!proto_hdr_decode(c->rx + off, &h, &why));
		if (c->rx_len - off - PROTO_HDR_SIZE < h.len)
			break;
		fz_check_frame(&h, c->rx + off + PROTO_HDR_SIZE, c->max_gfn);
		c->frames++;
		if (trace)
			fprintf(stderr, "fuzz: <- %s frame %u len %llu\n",
				c->ch ? "urgent" : "bulk", h.type, (unsigned long long)h.len);
		if (p->on_frame)
			p->on_frame(p->arg, c, &h, c->rx + off + PROTO_HDR_SIZE);
		off += PROTO_HDR_SIZE + (size_t)h.len;
	}
	memmove(c->rx, c->rx + off, c->rx_len - off);
	c->rx_len -= off;
}

static void conn_read(struct fz_pump *p, struct fz_conn *c)
{
	ssize_t n = recv(c->fd, c->rx + c->rx_len, RX_CAP - c->rx_len, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* a frame cut short by the close is the real side's choice: not checked */
		c->eof = true;
		return;
	}
	c->rx_len += (size_t)n;
	rx_frames(p, c);
}

static void conn_write(struct fz_pump *p, struct fz_conn *c)
{
	struct fz_out *o = c->out;
	size_t want = min_t(size_t, o->len - o->off, 65536);
	ssize_t n;

	if (p->before_write)
		p->before_write(p->arg, c, o->off, o->off + want);
	n = send(c->fd, o->buf + o->off, want, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		o->len = o->off; /* the peer is gone: what is left is lost */
		return;
	}
	o->off += (size_t)n;
}

static bool out_pending(const struct fz_conn *c)
{
	return c->fd >= 0 && c->out && c->out->off < c->out->len;
}

/* Both outputs written (or lost): shut both write sides, the link's end of this segment. */
static void maybe_shut(struct fz_pump *p)
{
	for (int i = 0; i < 2; i++)
		if (out_pending(p->c[i]))
			return;
	for (int i = 0; i < 2; i++)
		if (p->c[i]->fd >= 0 && !p->c[i]->shut) {
			shutdown(p->c[i]->fd, SHUT_WR);
			p->c[i]->shut = true;
		}
}

void fz_pump_run(struct fz_pump *p)
{
	while (!p->c[0]->eof) {
		struct pollfd pf[2];

		maybe_shut(p);
		for (int i = 0; i < 2; i++) {
			struct fz_conn *c = p->c[i];

			pf[i] = (struct pollfd){ .fd = c->eof ? -1 : c->fd, .events = POLLIN };
			if (out_pending(c))
				pf[i].events |= POLLOUT;
		}
		if (__real_poll(pf, 2, -1) < 0) {
			fz_check(errno == EINTR);
			continue;
		}
		for (int i = 0; i < 2; i++) {
			if (pf[i].revents & (POLLIN | POLLHUP | POLLERR))
				conn_read(p, p->c[i]);
			if ((pf[i].revents & (POLLOUT | POLLERR)) && out_pending(p->c[i]))
				conn_write(p, p->c[i]);
		}
	}
}

/* ---- sockets ---- */

int fz_listen(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	fz_check(fd >= 0);
	fz_check(!bind(fd, (struct sockaddr *)&sa, sizeof(sa)) && !listen(fd, 16));
	fz_check(!getsockname(fd, (struct sockaddr *)&sa, &len));
	*port = ntohs(sa.sin_port);
	return fd;
}

int fz_connect(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	fz_check(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

int fz_wait(int fd, int other)
{
	struct pollfd pf[2] = { { .fd = fd, .events = POLLIN }, { .fd = other, .events = POLLIN } };

	for (;;) {
		int r = __real_poll(pf, 2, -1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (pf[0].revents)
			return 1;
		if (pf[1].revents)
			return 0;
	}
}

int fz_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *b = buf;

	while (len) {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		ssize_t n = send(fd, b, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			__real_poll(&pf, 1, -1);
			continue;
		}
		if (n < 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_exact(int fd, int other, uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n;

		if (fz_wait(fd, other) != 1)
			return -1;
		n = recv(fd, buf, len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int fz_read_frame(int fd, int other, struct proto_hdr *h, uint8_t *buf, size_t cap)
{
	uint8_t hdr[PROTO_HDR_SIZE];
	const char *why = NULL;

	if (read_exact(fd, other, hdr, sizeof(hdr)))
		return -1;
	fz_check(!proto_hdr_decode(hdr, h, &why));
	if (h->len > cap)
		return -1;
	return read_exact(fd, other, buf, (size_t)h->len);
}

int fz_send_frame(int fd, uint32_t type, uint32_t flags, const void *payload, size_t len)
{
	uint8_t hdr[PROTO_HDR_SIZE];

	proto_hdr_encode(hdr, type, flags, len);
	if (fz_write_all(fd, hdr, sizeof(hdr)))
		return -1;
	return len ? fz_write_all(fd, payload, len) : 0;
}

void fz_event_set(int efd)
{
	uint64_t one = 1;

	fz_check(write(efd, &one, sizeof(one)) == sizeof(one));
}

void fz_event_clear(int efd)
{
	uint64_t v;

	while (read(efd, &v, sizeof(v)) == sizeof(v))
		;
}

void fz_process_init(void)
{
	for (uint32_t t = 1; t < PROTO_TYPE_MAX; t++)
		if (!frame_checked(t))
			fz_fail("a frame type without a check in fuzz_session.c", __FILE__,
				__LINE__);
	signal(SIGPIPE, SIG_IGN);
	trace = getenv("HM_FUZZ_LOG") != NULL;
	log_set_level(trace ? HM_LOG_DBG : HM_LOG_ERR);
	fz_check(!vcpu_signal_setup());
}
