// SPDX-License-Identifier: MIT
/*
 * Throughput of the migration transport, plain TCP against TLS: page batch
 * frames (16 B header, 528 B batch head, 256 KiB of pages) through
 * net_send/net_recv over loopback, one sending thread, one receiving thread.
 * The pages come from a 64 MiB region walked in order, as a pre-copy round
 * walks guest RAM, so they are not all cache-hot.
 *
 * Build (from the source tree, after make):
 *   cc -O2 -g -I. -D_GNU_SOURCE -o build/bench_tls tools/bench_tls.c \
 *      src/net.c src/tls.c src/tls_ctx.c src/proto.c src/log.c src/bitmap.c \
 *      -lssl -lcrypto -lpthread
 * Run:
 *   sh tools/mkcerts.sh --loopback /tmp/hm-bench-certs src dst
 *   build/bench_tls /tmp/hm-bench-certs [plain|tls|both] [GiB] [Gbit/s]
 * Prints one line per run: MB/s (10^6 bytes of frames per second) and the CPU
 * seconds each thread spent per GiB. A Gbit/s figure caps the sender with
 * net_conn.rate, as on a link of that speed, to show the CPU cost at that
 * rate rather than the fastest loopback rate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "src/net.h"
#include "src/proto.h"
#include "src/tls.h"

#define HEAD_LEN   (PROTO_PAGES_HDR + PROTO_BATCH_MAX * 8)
#define DATA_LEN   (PROTO_BATCH_MAX * PROTO_PAGE_SIZE)
#define REGION	   (64UL << 20)
#define TIMEOUT_MS 30000

struct side {
	struct net_conn c;
	struct tls_ctx *ctx;
	uint64_t frames;
	uint8_t *mem; /* sender: the region pages come from */
	int err;
	double cpu; /* thread CPU seconds for the transfer */
	char why[256];
};

/* HM_BENCH_PIN=1: sender on CPU 0, receiver on CPU 1, to compare variants with less noise. */
static void pin(int cpu)
{
	cpu_set_t set;

	if (!getenv("HM_BENCH_PIN"))
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *sender(void *arg)
{
	struct side *s = arg;
	uint8_t head[HEAD_LEN];
	double t0;

	memset(head, 0x5a, sizeof(head));
	pin(0);
	if (s->ctx && (s->err = net_tls_start(&s->c, s->ctx, s->why, sizeof(s->why))))
		return NULL;
	t0 = thread_cpu();
	for (uint64_t k = 0; k < s->frames && !s->err; k++) {
		struct iovec v[2] = { { head, sizeof(head) },
				      { s->mem + (k * DATA_LEN) % REGION, DATA_LEN } };

		s->err = net_send(&s->c, PROTO_PAGES, 0, v, 2);
	}
	s->cpu = thread_cpu() - t0;
	return NULL;
}

static int receive(struct side *r, uint8_t *buf)
{
	const char *why = "?";
	struct proto_hdr h;
	double t0;
	int err;

	pin(1);
	if (r->ctx && (err = net_tls_start(&r->c, r->ctx, r->why, sizeof(r->why))))
		return err;
	t0 = thread_cpu();
	for (uint64_t k = 0; k < r->frames; k++) {
		err = net_recv(&r->c, &h, buf, PROTO_MAX_PAYLOAD, &why);
		if (err) {
			snprintf(r->why, sizeof(r->why), "frame %llu: %s", (unsigned long long)k,
				 why);
			return err;
		}
	}
	r->cpu = thread_cpu() - t0;
	return 0;
}

/* A connected loopback pair set up the way net_connect/net_accept leave it. */
static int pair(struct net_conn *a, struct net_conn *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	char addr[32];
	char why[256];
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int fd;

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &len))
		return -errno;
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));
	if (net_connect(a, addr, TIMEOUT_MS, why, sizeof(why))) {
		fprintf(stderr, "bench_tls: %s\n", why);
		return -EIO;
	}
	fd = net_accept(l, -1, TIMEOUT_MS);
	close(l);
	if (fd < 0)
		return fd;
	net_init(b, fd, TIMEOUT_MS);
	return 0;
}

/* Sender as host src (client), receiver as host dst (server), each checking the other's name. */
static int make_ctxs(const char *dir, struct side *s, struct side *r)
{
	char d[512];

	snprintf(d, sizeof(d), "%s/src", dir);
	s->ctx = tls_ctx_new(d, false, "dst", s->why, sizeof(s->why));
	snprintf(d, sizeof(d), "%s/dst", dir);
	r->ctx = tls_ctx_new(d, true, "src", r->why, sizeof(r->why));
	if (s->ctx && r->ctx)
		return 0;
	fprintf(stderr, "bench_tls: %s%s\n", s->why, r->why);
	return -EINVAL;
}

static int run(const char *dir, bool tls, double gib, double gbit, uint8_t *mem, uint8_t *buf)
{
	struct side s = { .mem = mem };
	struct side r = { 0 };
	uint64_t t0;
	double secs;
	pthread_t t;
	int err;

	s.frames = r.frames = (uint64_t)(gib * (1ULL << 30) / DATA_LEN);
	if (tls && make_ctxs(dir, &s, &r))
		return -EINVAL;
	err = pair(&s.c, &r.c);
	if (err)
		return err;
	s.c.rate = (uint64_t)(gbit * 1e9 / 8);
	t0 = hm_now_ns();
	pthread_create(&t, NULL, sender, &s);
	err = receive(&r, buf);
	pthread_join(t, NULL);
	secs = (double)(hm_now_ns() - t0) / 1e9;
	if (err || s.err) {
		fprintf(stderr, "bench_tls: %d %s / %d %s\n", err, r.why, s.err, s.why);
		return err ? err : s.err;
	}
	printf("%-5s %5.2f GiB in %6.3f s: %7.0f MB/s, CPU s/GiB sender %.3f receiver %.3f%s%s\n",
	       tls ? "tls" : "plain", gib, secs, (double)s.c.sent / secs / 1e6, s.cpu / gib,
	       r.cpu / gib, tls ? ", " : "", tls ? tls_cipher(s.c.tls) : "");
	net_close(&s.c);
	net_close(&r.c);
	tls_ctx_free(s.ctx);
	tls_ctx_free(r.ctx);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 2 ? argv[2] : "both";
	double gib = argc > 3 ? atof(argv[3]) : 1.0;
	double gbit = argc > 4 ? atof(argv[4]) : 0;
	uint8_t *mem =
	    mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *buf = malloc(PROTO_MAX_PAYLOAD);
	int err = 0;

	if (argc < 2 || gib <= 0 || gbit < 0 || mem == MAP_FAILED || !buf) {
		fprintf(stderr,
			"usage: %s CERTDIR [plain|tls|both] [GiB] [Gbit/s cap]\n"
			"CERTDIR from: sh tools/mkcerts.sh --loopback CERTDIR src dst\n",
			argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* pages that are not all alike, touched before the clock starts */
	for (size_t i = 0; i < REGION; i += 8)
		*(uint64_t *)(mem + i) = i * 0x9e3779b97f4a7c15ULL;
	memset(buf, 0, PROTO_MAX_PAYLOAD);
	if (strcmp(mode, "tls"))
		err = run(argv[1], false, gib, gbit, mem, buf);
	if (!err && strcmp(mode, "plain"))
		err = run(argv[1], true, gib, gbit, mem, buf);
	return err ? 1 : 0;
}
