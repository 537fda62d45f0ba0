/*
 * delayproxy, one direction: fd[src] -> fd[1-src] of a connection through a
 * timed queue. Every read is held delay_ns before it is written; the bytes
 * wait in a ring of lazily allocated 256 KiB segments (at most 64 MiB), and
 * a full ring stops reading, so TCP flow control pushes back on the sender.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "delayproxy.h"

#define SEG_SHIFT  18 /* 256 KiB segments */
#define SEG_SIZE   (1u << SEG_SHIFT)
#define RING_BYTES (64u << 20) /* per direction */
#define NSEG	   (RING_BYTES / SEG_SIZE)
#define READ_MAX   (256u << 10) /* bytes per read */
#define NREC	   16384u	/* reads in flight per direction */
#define SPARE_SEGS 8		/* segments kept for reuse */
#define MAX_IOV	   64

/* ---- one direction: fd[src] -> fd[1-src] through a timed queue ---- */

struct rec {
	uint64_t end; /* stream offset just past this read */
	int64_t due;  /* when it may be written */
};

struct pump {
	struct conn *c;
	int src, dst;
	char *seg[NSEG];
	char *spare[SPARE_SEGS];
	int nspare;
	uint64_t head, tail; /* written / read stream offsets */
	struct rec rec[NREC];
	uint32_t rhead, rdue, rtail; /* first unwritten, first not due, end */
};

static char *seg_get(struct pump *p)
{
	if (p->nspare)
		return p->spare[--p->nspare];
	return malloc(SEG_SIZE);
}

static void seg_put(struct pump *p, char *s)
{
	if (p->nspare < SPARE_SEGS)
		p->spare[p->nspare++] = s;
	else
		free(s);
}

void pump_free(struct pump *p)
{
	for (unsigned i = 0; i < NSEG; i++)
		free(p->seg[i]);
	for (int i = 0; i < p->nspare; i++)
		free(p->spare[i]);
	free(p);
}

/*
 * Free space for reading. The tail stays out of the segment slot that holds
 * the head (the slot is freed as a whole once the head leaves it), so at
 * most RING_BYTES - SEG_SIZE .. RING_BYTES bytes are buffered.
 */
static uint64_t ring_room(const struct pump *p)
{
	return (p->head & ~(uint64_t)(SEG_SIZE - 1)) + RING_BYTES - p->tail;
}

/* Returns >0 bytes read, 0 on EOF, -1 on EAGAIN, -2 on error, -3 out of memory. */
static ssize_t pump_read(struct pump *p)
{
	uint64_t room = ring_room(p);
	if (room > READ_MAX)
		room = READ_MAX;
	struct iovec iov[2];
	int n = 0;
	uint64_t pos = p->tail;
	while (room && n < 2) {
		unsigned s = (pos >> SEG_SHIFT) % NSEG;
		uint64_t off = pos & (SEG_SIZE - 1);
		uint64_t len = SEG_SIZE - off;
		if (len > room)
			len = room;
		if (!p->seg[s] && !(p->seg[s] = seg_get(p)))
			return -3;
		iov[n].iov_base = p->seg[s] + off;
		iov[n].iov_len = len;
		n++;
		pos += len;
		room -= len;
	}
	ssize_t r = readv(p->c->fd[p->src], iov, n);
	if (r < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -1 : -2;
	return r;
}

/* Returns >0 bytes written, -1 on EAGAIN, -2 on error. */
static ssize_t pump_write(struct pump *p, uint64_t end)
{
	struct iovec iov[MAX_IOV];
	int n = 0;
	uint64_t pos = p->head;
	while (pos < end && n < MAX_IOV) {
		unsigned s = (pos >> SEG_SHIFT) % NSEG;
		uint64_t off = pos & (SEG_SIZE - 1);
		uint64_t len = SEG_SIZE - off;
		if (len > end - pos)
			len = end - pos;
		iov[n].iov_base = p->seg[s] + off;
		iov[n].iov_len = len;
		n++;
		pos += len;
	}
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n };
	ssize_t r = sendmsg(p->c->fd[p->dst], &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (r < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -1 : -2;
	/* release segments that are now completely written */
	uint64_t newhead = p->head + (uint64_t)r;
	for (uint64_t b = p->head & ~(uint64_t)(SEG_SIZE - 1); b + SEG_SIZE <= newhead;
	     b += SEG_SIZE) {
		unsigned s = (b >> SEG_SHIFT) % NSEG;
		if (p->seg[s]) {
			seg_put(p, p->seg[s]);
			p->seg[s] = NULL;
		}
	}
	p->head = newhead;
	while (p->rhead != p->rdue && p->rec[p->rhead % NREC].end <= p->head)
		p->rhead++;
	return r;
}

static void pump_run(struct pump *p)
{
	struct conn *c = p->c;
	int src = c->fd[p->src], dst = c->fd[p->dst];
	int eof = 0, rblocked = 0, wblocked = 0;
	int64_t eof_due = 0;

	for (;;) {
		int64_t now;
		uint64_t due_end;
		int progress;
		do {
			progress = 0;
			if (atomic_load(&c->aborted))
				return;
			now = now_ns();
			while (p->rdue != p->rtail && p->rec[p->rdue % NREC].due <= now)
				p->rdue++;
			due_end = p->rdue != p->rhead ? p->rec[(p->rdue - 1) % NREC].end : p->head;
			if (due_end > p->head && !wblocked) {
				ssize_t r = pump_write(p, due_end);
				if (r > 0) {
					c->bytes[p->src] += (uint64_t)r;
					progress = 1;
				} else if (r == -1) {
					wblocked = 1;
				} else {
					if ((errno != ECONNRESET && errno != EPIPE) || verbose)
						logmsg("conn %u: write to %s: %s", c->id,
						       p->dst ? "target" : "client",
						       strerror(errno));
					conn_abort(c);
					return;
				}
			}
			if (!eof && !rblocked && ring_room(p) > 0 && p->rtail - p->rhead < NREC) {
				ssize_t r = pump_read(p);
				if (r > 0) {
					p->tail += (uint64_t)r;
					struct rec *e = &p->rec[p->rtail % NREC];
					e->end = p->tail;
					e->due = now_ns() + delay_ns;
					p->rtail++;
					progress = 1;
				} else if (r == 0) {
					eof = 1;
					eof_due = now_ns() + delay_ns;
					progress = 1;
				} else if (r == -1) {
					rblocked = 1;
				} else if (r == -3) {
					logmsg("conn %u: out of memory", c->id);
					conn_abort(c);
					return;
				} else {
					if (errno != ECONNRESET || verbose)
						logmsg("conn %u: read from %s: %s", c->id,
						       p->src ? "target" : "client",
						       strerror(errno));
					conn_abort(c);
					return;
				}
			}
		} while (progress);

		if (eof && p->head == p->tail && now >= eof_due) {
			if (shutdown(dst, SHUT_WR) < 0 && errno != ENOTCONN) {
				logmsg("conn %u: shutdown %s: %s", c->id,
				       p->dst ? "target" : "client", strerror(errno));
				conn_abort(c);
			}
			return;
		}

		struct pollfd pfd[3];
		int n = 0, isrc = -1, idst = -1;
		pfd[n++] = (struct pollfd){ .fd = c->efd, .events = POLLIN };
		if (!eof && ring_room(p) > 0 && p->rtail - p->rhead < NREC) {
			isrc = n;
			pfd[n++] = (struct pollfd){ .fd = src, .events = POLLIN };
		}
		if (wblocked && due_end > p->head) {
			idst = n;
			pfd[n++] = (struct pollfd){ .fd = dst, .events = POLLOUT };
		}
		struct timespec ts, *tsp = NULL;
		int64_t wake = -1;
		if (p->rdue != p->rtail)
			wake = p->rec[p->rdue % NREC].due;
		else if (eof && p->head == p->tail)
			wake = eof_due;
		if (wake >= 0) {
			int64_t d = wake - now;
			if (d < 0)
				d = 0;
			ts.tv_sec = d / 1000000000;
			ts.tv_nsec = d % 1000000000;
			tsp = &ts;
		}
		if (ppoll(pfd, n, tsp, NULL) < 0 && errno != EINTR) {
			logmsg("conn %u: ppoll: %s", c->id, strerror(errno));
			conn_abort(c);
			return;
		}
		if (isrc >= 0 && pfd[isrc].revents)
			rblocked = 0;
		if (idst >= 0 && pfd[idst].revents)
			wblocked = 0;
	}
}

void *pump_thread(void *arg)
{
	struct pump *p = arg;
	struct conn *c = p->c;
	pump_run(p);
	pump_free(p);
	conn_put(c);
	return NULL;
}

struct pump *pump_new(struct conn *c, int src)
{
	struct pump *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->c = c;
	p->src = src;
	p->dst = 1 - src;
	return p;
}
