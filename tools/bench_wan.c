// SPDX-License-Identifier: MIT
/*
 * The migration link's throughput over a long path: one process per end,
 * connected the way a migration connects (src/link.c: TCP, TLS 1.3, hellos
 * on the bulk and urgent channels, the send and receive buffers sized by
 * src/sockbuf.c), then page batch frames (16 B header, 528 B batch head,
 * 256 KiB of pages) on the bulk channel for S seconds. No VM: this is the
 * transport a pre-copy round drives, measured where KVM is not needed.
 *
 *   bench_wan recv --listen ADDR:PORT (--tls-dir DIR | --insecure)
 *                  [--socket-buffer SIZE|kernel]
 *   bench_wan send --to ADDR:PORT (--tls-dir DIR | --insecure) --seconds S
 *                  [--bandwidth RATE] [--socket-buffer SIZE|kernel]
 *
 * The receiver prints one line, "recv: BYTES bytes in SECS s, RATE Mbit/s,
 * second half RATE2 Mbit/s", the rate of the frames' bytes (payload and
 * frame headers) over the whole stream and over its second half, once the
 * window has grown. The sender prints "send: ... rtt MS ms". Sizing
 * decisions appear as hybridmig logs them. tools/bench-wan.sh drives it
 * over tools/testnet.sh's WAN.
 *
 * Built by `make bench-wan` (GNUmakefile) against the project's objects.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/link.h"
#include "src/log.h"
#include "src/net.h"
#include "src/parse.h"
#include "src/proto.h"
#include "src/sockbuf.h"
#include "src/tls.h"

#define HEAD_LEN  (PROTO_PAGES_HDR + PROTO_BATCH_MAX * 8)
#define DATA_LEN  (PROTO_BATCH_MAX * PROTO_PAGE_SIZE)
#define WAIT_MS	  60000
#define MAX_MARKS (1u << 20)

struct opts {
	bool send;
	const char *addr;
	const char *tls_dir;
	bool insecure;
	uint64_t seconds;
	uint64_t bandwidth;
	uint64_t sockbuf;
};

static int usage(void)
{
	fprintf(stderr,
		"usage: bench_wan recv --listen ADDR:PORT (--tls-dir DIR | --insecure) "
		"[--socket-buffer SIZE|kernel]\n"
		"       bench_wan send --to ADDR:PORT (--tls-dir DIR | --insecure) --seconds S "
		"[--bandwidth RATE] [--socket-buffer SIZE|kernel]\n");
	return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "to", required_argument, NULL, 't' },
		{ "tls-dir", required_argument, NULL, 'D' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "seconds", required_argument, NULL, 's' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "socket-buffer", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	if (argc < 2 || (strcmp(argv[1], "send") && strcmp(argv[1], "recv")))
		return usage();
	*o = (struct opts){ .send = !strcmp(argv[1], "send"), .sockbuf = SOCKBUF_DEFAULT_MAX };
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 'l':
		case 't':
			o->addr = optarg;
			break;
		case 'D':
			o->tls_dir = optarg;
			break;
		case 'I':
			o->insecure = true;
			break;
		case 's':
			bad = parse_count_range(optarg, 1, 3600, &o->seconds);
			break;
		case 'b':
			bad = parse_rate(optarg, &o->bandwidth);
			break;
		case 'S':
			bad = parse_socket_buffer(optarg, &o->sockbuf);
			break;
		default:
			return usage();
		}
		if (bad) {
			fprintf(stderr, "bench_wan: bad value '%s'\n", optarg);
			return 2;
		}
	}
	if (!o->addr || !o->tls_dir == !o->insecure || (o->send && !o->seconds))
		return usage();
	return 0;
}

/* Bytes received by each mark's time, for the second half's rate. */
struct marks {
	uint64_t *t;
	uint64_t *bytes;
	size_t n;
};

static void mark(struct marks *m, uint64_t bytes)
{
	if (m->n < MAX_MARKS) {
		m->t[m->n] = hm_now_ns();
		m->bytes[m->n++] = bytes;
	}
}

static void report(const struct marks *m)
{
	uint64_t t0 = m->t[0], t1 = m->t[m->n - 1], b1 = m->bytes[m->n - 1];
	size_t i = 0;
	double secs = (double)(t1 - t0) / 1e9, secs2;

	while (i < m->n && m->t[i] < t0 + (t1 - t0) / 2)
		i++;
	secs2 = (double)(t1 - m->t[i]) / 1e9;
	printf("recv: %llu bytes in %.2f s, %.0f Mbit/s, second half %.0f Mbit/s\n",
	       (unsigned long long)b1, secs,
	       secs > 0 ? (double)(b1 - m->bytes[0]) * 8 / secs / 1e6 : 0,
	       secs2 > 0 ? (double)(b1 - m->bytes[i]) * 8 / secs2 / 1e6 : 0);
}

static int receive(struct link *l, uint8_t *buf)
{
	struct marks m = { .t = calloc(MAX_MARKS, 8), .bytes = calloc(MAX_MARKS, 8) };
	const char *why = "?";
	struct proto_hdr h;
	uint64_t total = 0;
	int err = m.t && m.bytes ? 0 : -ENOMEM;

	while (!err) {
		err = net_recv(&l->bulk, &h, buf, PROTO_MAX_PAYLOAD, &why);
		if (err) {
			fprintf(stderr, "bench_wan: receive: %s\n", why);
			break;
		}
		total += PROTO_HDR_SIZE + h.len;
		mark(&m, total);
		if (h.type == PROTO_DONE)
			break;
	}
	if (!err && m.n > 2)
		report(&m);
	if (!err)
		err = net_send(&l->bulk, PROTO_DONE, 0, NULL, 0);
	free(m.t);
	free(m.bytes);
	return err;
}

static int run_recv(const struct opts *o, struct link *l, char *why, size_t len)
{
	uint8_t *buf = malloc(PROTO_MAX_PAYLOAD);
	bool resume;
	int lfd, err;

	lfd = net_listen(o->addr, why, len);
	if (lfd < 0 || !buf) {
		free(buf);
		return lfd < 0 ? lfd : -ENOMEM;
	}
	err = link_size_listener(lfd, o->sockbuf);
	if (!err) {
		printf("ready\n");
		fflush(stdout);
		err = link_accept(l, lfd, -1, WAIT_MS, false, &resume, why, len);
	}
	if (!err)
		err = link_answer(l, lfd, -1, why, len);
	if (!err) {
		l->bulk.timeout_ms = WAIT_MS;
		err = receive(l, buf);
	}
	close(lfd);
	free(buf);
	return err;
}

static int run_send(const struct opts *o, struct link *l, char *why, size_t len)
{
	static uint8_t head[HEAD_LEN];
	uint8_t *data = calloc(1, DATA_LEN);
	uint64_t t0, end, frames = 0;
	const char *rwhy = "?";
	struct sockbuf_result sb;
	struct proto_hdr h;
	int err;

	memset(head, 0x5a, sizeof(head));
	err = data ? link_new_secret(l) : -ENOMEM;
	if (!err)
		err = link_connect(l, o->addr, false, why, len);
	if (!err)
		err = link_size_send(l, o->bandwidth, o->sockbuf, &sb);
	l->bulk.timeout_ms = WAIT_MS;
	l->bulk.rate = o->bandwidth;
	t0 = hm_now_ns();
	end = t0 + o->seconds * 1000000000ULL;
	while (!err && hm_now_ns() < end) {
		struct iovec v[2] = { { head, sizeof(head) }, { data, DATA_LEN } };

		err = net_send(&l->bulk, PROTO_PAGES, 0, v, 2);
		frames++;
	}
	if (!err)
		err = net_send(&l->bulk, PROTO_DONE, 0, NULL, 0);
	if (!err && (err = net_recv(&l->bulk, &h, data, DATA_LEN, &rwhy)))
		snprintf(why, len, "waiting for the receiver: %s", rwhy);
	if (!err)
		printf(
		    "send: %llu frames in %.2f s (until the last was acknowledged), rtt %.3f ms\n",
		    (unsigned long long)frames, (double)(hm_now_ns() - t0) / 1e9,
		    (double)l->rtt_ns / 1e6);
	free(data);
	return err;
}

int main(int argc, char **argv)
{
	struct tls_ctx *tls = NULL;
	char why[512] = "";
	struct link l;
	struct opts o;
	int err = parse(argc, argv, &o);

	if (err)
		return err;
	log_set_level(HM_LOG_INFO); /* the sizing decisions */
	if (o.tls_dir) {
		tls = tls_ctx_new(o.tls_dir, !o.send, NULL, why, sizeof(why));
		if (!tls) {
			fprintf(stderr, "bench_wan: %s\n", why);
			return 1;
		}
	}
	link_init(&l, tls);
	err = o.send ? run_send(&o, &l, why, sizeof(why)) : run_recv(&o, &l, why, sizeof(why));
	if (err)
		fprintf(stderr, "bench_wan: %s\n", why[0] ? why : strerror(-err));
	link_close(&l);
	tls_ctx_free(tls);
	return err ? 1 : 0;
}
