/*
 * delayproxy — user-space TCP proxy that adds a fixed one-way delay.
 *
 *   delayproxy --listen ADDR:PORT --to ADDR:PORT --delay-ms D
 *              [--max-conns N] [--verbose]
 *
 * Every accepted connection gets its own connection to the target. Bytes
 * are forwarded in both directions; every chunk read is held for D ms
 * (fractional allowed, e.g. 0.05) before it is written, so the round trip
 * through the proxy grows by 2*D. Order is preserved. A half-close (EOF) is
 * forwarded as shutdown(SHUT_WR) D ms after it was seen, once all data
 * before it has been written. When either side resets (or any read/write
 * fails) both sockets are closed with RST. Each direction buffers at most
 * 64 MiB (at least 63.75); when full it stops reading, so TCP flow control pushes back on
 * the sender.
 *
 * --max-conns N: at most N connections at the same time; a connection
 * beyond that is accepted and immediately reset (message on stderr).
 * Default: unlimited.
 *
 * One thread per direction, non-blocking sockets, ppoll() with a
 * nanosecond timeout (timer slack set to 1 ns) for the delay queue; the
 * buffer is a ring of lazily allocated 256 KiB segments, so memory follows
 * the data in flight. ADDR may be IPv4, a host name, or [IPv6].
 * "listening on ..." is printed on stderr once the socket listens.
 * SIGTERM/SIGINT: stop accepting, reset open connections, exit 0.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o delayproxy tools/delayproxy.c -lpthread
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SEG_SHIFT	   18 /* 256 KiB segments */
#define SEG_SIZE	   (1u << SEG_SHIFT)
#define RING_BYTES	   (64u << 20) /* per direction */
#define NSEG		   (RING_BYTES / SEG_SIZE)
#define READ_MAX	   (256u << 10) /* bytes per read */
#define NREC		   16384u	/* reads in flight per direction */
#define SPARE_SEGS	   8		/* segments kept for reuse */
#define MAX_IOV		   64
#define CONNECT_TIMEOUT_MS 10000

static int64_t delay_ns;
static int max_conns;
static int verbose;
static struct addrinfo *target;
static const char *target_str;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static int active;
static unsigned next_id;

struct conn {
	int fd[2]; /* 0: accepted client, 1: target */
	int efd;   /* eventfd: written on abort */
	atomic_int refs;
	atomic_int aborted;
	unsigned id;
	uint64_t bytes[2]; /* bytes forwarded from fd[i] */
	struct conn *prev, *next;
};
static struct conn *conns;

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n = snprintf(buf, sizeof buf, "delayproxy: ");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof buf - n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", buf);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void conn_abort(struct conn *c)
{
	if (atomic_exchange(&c->aborted, 1) == 0) {
		uint64_t one = 1;
		if (write(c->efd, &one, sizeof one) < 0) {
			/* cannot fail for an eventfd below its maximum */
		}
	}
}

static void conn_put(struct conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (int i = 0; i < 2; i++) {
		if (c->fd[i] < 0)
			continue;
		if (atomic_load(&c->aborted)) {
			struct linger l = { .l_onoff = 1, .l_linger = 0 };
			setsockopt(c->fd[i], SOL_SOCKET, SO_LINGER, &l, sizeof l);
		}
		close(c->fd[i]);
	}
	close(c->efd);
	if (verbose)
		logmsg("conn %u closed%s: %llu bytes to target, %llu bytes to client", c->id,
		       atomic_load(&c->aborted) ? " (reset)" : "", (unsigned long long)c->bytes[0],
		       (unsigned long long)c->bytes[1]);
	pthread_mutex_lock(&lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	active--;
	pthread_cond_broadcast(&idle_cond);
	pthread_mutex_unlock(&lock);
	free(c);
}

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

static void pump_free(struct pump *p)
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

static void *pump_thread(void *arg)
{
	struct pump *p = arg;
	struct conn *c = p->c;
	pump_run(p);
	pump_free(p);
	conn_put(c);
	return NULL;
}

static int set_sock_opts(int fd)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
		return -1;
	return 0;
}

static int connect_target(struct conn *c)
{
	int last_err = 0;
	for (struct addrinfo *ai = target; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0) {
			last_err = errno;
			continue;
		}
		set_sock_opts(fd);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			c->fd[1] = fd;
			return 0;
		}
		if (errno != EINPROGRESS) {
			last_err = errno;
			close(fd);
			continue;
		}
		struct pollfd pfd[2] = { { .fd = fd, .events = POLLOUT },
					 { .fd = c->efd, .events = POLLIN } };
		int r;
		do
			r = poll(pfd, 2, CONNECT_TIMEOUT_MS);
		while (r < 0 && errno == EINTR);
		if (pfd[1].revents) {
			close(fd);
			return -1;
		}
		if (r == 0) {
			last_err = ETIMEDOUT;
			close(fd);
			continue;
		}
		int err = 0;
		socklen_t len = sizeof err;
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			last_err = err;
			close(fd);
			continue;
		}
		c->fd[1] = fd;
		return 0;
	}
	logmsg("conn %u: connect to %s: %s", c->id, target_str, strerror(last_err));
	return -1;
}

static struct pump *pump_new(struct conn *c, int src)
{
	struct pump *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->c = c;
	p->src = src;
	p->dst = 1 - src;
	return p;
}

/* First thread of a connection: connect, start the reverse pump, run client->target. */
static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	if (connect_target(c) < 0) {
		conn_abort(c);
		conn_put(c);
		return NULL;
	}
	struct pump *fwd = pump_new(c, 0), *rev = pump_new(c, 1);
	if (!fwd || !rev) {
		logmsg("conn %u: out of memory", c->id);
		free(fwd);
		free(rev);
		conn_abort(c);
		conn_put(c);
		return NULL;
	}
	atomic_fetch_add(&c->refs, 1);
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int e = pthread_create(&t, &at, pump_thread, rev);
	pthread_attr_destroy(&at);
	if (e) {
		logmsg("conn %u: pthread_create: %s", c->id, strerror(e));
		free(rev);
		conn_abort(c);
		conn_put(c);
		pump_free(fwd);
		conn_put(c);
		return NULL;
	}
	if (verbose)
		logmsg("conn %u: connected to %s", c->id, target_str);
	return pump_thread(fwd);
}

static void reset_close(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	close(fd);
}

static void new_conn(int cfd)
{
	pthread_mutex_lock(&lock);
	if (max_conns > 0 && active >= max_conns) {
		pthread_mutex_unlock(&lock);
		logmsg("refusing connection: --max-conns %d reached", max_conns);
		reset_close(cfd);
		return;
	}
	pthread_mutex_unlock(&lock);

	struct conn *c = calloc(1, sizeof *c);
	if (!c) {
		logmsg("out of memory");
		reset_close(cfd);
		return;
	}
	c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->efd < 0) {
		logmsg("eventfd: %s", strerror(errno));
		free(c);
		reset_close(cfd);
		return;
	}
	set_sock_opts(cfd);
	c->fd[0] = cfd;
	c->fd[1] = -1;
	atomic_init(&c->refs, 1);
	atomic_init(&c->aborted, 0);

	pthread_mutex_lock(&lock);
	c->id = ++next_id;
	c->next = conns;
	if (conns)
		conns->prev = c;
	conns = c;
	active++;
	pthread_mutex_unlock(&lock);

	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int e = pthread_create(&t, &at, conn_thread, c);
	pthread_attr_destroy(&at);
	if (e) {
		logmsg("pthread_create: %s", strerror(e));
		conn_abort(c);
		conn_put(c);
	}
}

/* Split "host:port", "[v6]:port". */
static struct addrinfo *resolve(const char *spec, int passive, const char *what)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	if (!colon || colon == spec || !colon[1]) {
		fprintf(stderr, "delayproxy: %s '%s': expected ADDR:PORT\n", what, spec);
		return NULL;
	}
	size_t hl = (size_t)(colon - spec);
	const char *h = spec;
	if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
		h = spec + 1;
		hl -= 2;
	}
	if (hl >= sizeof host) {
		fprintf(stderr, "delayproxy: %s '%s': address too long\n", what, spec);
		return NULL;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = passive ? AI_PASSIVE : 0 };
	struct addrinfo *res;
	int e = getaddrinfo(host, colon + 1, &hints, &res);
	if (e) {
		fprintf(stderr, "delayproxy: %s '%s': %s\n", what, spec, gai_strerror(e));
		return NULL;
	}
	return res;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: delayproxy --listen ADDR:PORT --to ADDR:PORT --delay-ms D [--max-conns "
		   "N] [--verbose]\n"
		   "  Forwards each connection to --to, holding every chunk D ms (one way, per\n"
		   "  direction; fractional allowed) before writing it: RTT grows by 2*D.\n"
		   "  --max-conns N  reset connections beyond N open at once (default: no limit)\n"
		   "  --verbose      log every connection on stderr\n");
}

int main(int argc, char **argv)
{
	const char *listen_str = NULL;
	double delay_ms = -1;
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "to", required_argument, NULL, 't' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "max-conns", required_argument, NULL, 'm' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	int o;
	char *end;
	while ((o = getopt_long(argc, argv, "l:t:d:m:vh", opts, NULL)) != -1) {
		switch (o) {
		case 'l':
			listen_str = optarg;
			break;
		case 't':
			target_str = optarg;
			break;
		case 'd':
			errno = 0;
			delay_ms = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(delay_ms) || delay_ms < 0 ||
			    delay_ms > 3600e3) {
				fprintf(stderr,
					"delayproxy: bad --delay-ms '%s' (milliseconds >= 0)\n",
					optarg);
				return 2;
			}
			break;
		case 'm': {
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 1 || v > 1000000) {
				fprintf(stderr, "delayproxy: bad --max-conns '%s'\n", optarg);
				return 2;
			}
			max_conns = (int)v;
			break;
		}
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !listen_str || !target_str || delay_ms < 0) {
		if (optind != argc)
			fprintf(stderr, "delayproxy: unexpected argument '%s'\n", argv[optind]);
		else
			fprintf(stderr, "delayproxy: --listen, --to and --delay-ms are required\n");
		usage(stderr);
		return 2;
	}
	delay_ns = (int64_t)(delay_ms * 1e6 + 0.5);

	struct addrinfo *lai = resolve(listen_str, 1, "--listen");
	if (!lai)
		return 2;
	target = resolve(target_str, 0, "--to");
	if (!target)
		return 2;

	int lfd = -1, err = 0;
	for (struct addrinfo *ai = lai; ai; ai = ai->ai_next) {
		lfd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (lfd < 0) {
			err = errno;
			continue;
		}
		int one = 1;
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(lfd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(lfd, 128) == 0)
			break;
		err = errno;
		close(lfd);
		lfd = -1;
	}
	freeaddrinfo(lai);
	if (lfd < 0) {
		fprintf(stderr, "delayproxy: listen on %s: %s\n", listen_str, strerror(err));
		return 1;
	}

	signal(SIGPIPE, SIG_IGN);
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	pthread_sigmask(SIG_BLOCK, &ss, NULL); /* inherited by every thread */
	int sfd = signalfd(-1, &ss, SFD_CLOEXEC);
	if (sfd < 0) {
		fprintf(stderr, "delayproxy: signalfd: %s\n", strerror(errno));
		return 1;
	}
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* inherited by threads */

	logmsg("listening on %s, forwarding to %s, delay %g ms each way", listen_str, target_str,
	       delay_ms);

	int sig = 0;
	while (!sig) {
		struct pollfd pfd[2] = { { .fd = lfd, .events = POLLIN },
					 { .fd = sfd, .events = POLLIN } };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			logmsg("poll: %s", strerror(errno));
			return 1;
		}
		if (pfd[1].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
				sig = (int)si.ssi_signo;
		}
		if (!sig && pfd[0].revents) {
			int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (cfd < 0) {
				if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
					logmsg("accept: %s", strerror(errno));
					if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
						usleep(100000);
				}
				continue;
			}
			new_conn(cfd);
		}
	}

	close(lfd);
	pthread_mutex_lock(&lock);
	int n = active;
	for (struct conn *c = conns; c; c = c->next)
		conn_abort(c);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 2;
	while (active > 0)
		if (pthread_cond_timedwait(&idle_cond, &lock, &dl) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&lock);
	logmsg("exiting on %s (%d open connection%s reset)", strsignal(sig), n, n == 1 ? "" : "s");
	freeaddrinfo(target);
	return 0;
}
