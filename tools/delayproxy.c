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
 * Build: cc -O2 -Wall -Wextra -Werror -o delayproxy tools/delayproxy.c \
 *        tools/delayproxy_pump.c -lpthread (tools/testnet.sh does)
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
#include "delayproxy.h"

#define CONNECT_TIMEOUT_MS 10000

int64_t delay_ns;
static int max_conns;
int verbose;
static struct addrinfo *target;
static const char *target_str;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static int active;
static unsigned next_id;

static struct conn *conns;

void logmsg(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n = snprintf(buf, sizeof buf, "delayproxy: ");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof buf - n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", buf);
}

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void conn_abort(struct conn *c)
{
	if (atomic_exchange(&c->aborted, 1) == 0) {
		uint64_t one = 1;
		if (write(c->efd, &one, sizeof one) < 0) {
			/* cannot fail for an eventfd below its maximum */
		}
	}
}

void conn_put(struct conn *c)
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
