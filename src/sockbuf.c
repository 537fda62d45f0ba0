// SPDX-License-Identifier: MIT
/*
 * Socket buffers for long fat pipes: see sockbuf.h. Measured on the test
 * WAN (tools/testnet.sh up --delay-ms 50 --rate 1gbit, RTT 100.7 ms), one
 * TCP stream with the host's defaults (tcp_wmem max 4 MiB): 200 Mbit/s;
 * with 47 MiB buffers at both ends: 996 Mbit/s once the window had grown.
 */
#include "src/sockbuf.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>

/* The n-th (0-based) number of a /proc/sys file. 0 or -errno. */
static int read_sysctl(const char *path, int n, uint64_t *v)
{
	unsigned long long x[3] = { 0 };
	FILE *f = fopen(path, "re");
	int got;

	if (!f)
		return -errno;
	got = fscanf(f, "%llu %llu %llu", &x[0], &x[1], &x[2]);
	fclose(f);
	if (got <= n)
		return -EIO;
	*v = x[n];
	return 0;
}

int sockbuf_host_read(struct sockbuf_host *h)
{
	int err;

	err = read_sysctl("/proc/sys/net/ipv4/tcp_wmem", 2, &h->tcp_wmem_max);
	if (!err)
		err = read_sysctl("/proc/sys/net/ipv4/tcp_rmem", 2, &h->tcp_rmem_max);
	if (err)
		return err;
	/* global, and not shown inside a network namespace before Linux 6.x: unknown */
	if (read_sysctl("/proc/sys/net/core/wmem_max", 0, &h->wmem_max))
		h->wmem_max = 0;
	if (read_sysctl("/proc/sys/net/core/rmem_max", 0, &h->rmem_max))
		h->rmem_max = 0;
	return 0;
}

uint64_t sockbuf_need(uint64_t rate, uint64_t rtt_ns, uint64_t max)
{
	double need;

	if (!rate)
		rate = SOCKBUF_NOMINAL_RATE;
	need = 2.0 * (double)rate * (double)rtt_ns / 1e9;
	if (max && need > (double)max)
		return max;
	return (uint64_t)need;
}

/* The buffer @fd has now (the kernel's doubled figure). */
static uint64_t current(int fd, int opt)
{
	int v = 0;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, opt, &v, &len) || v < 0)
		return 0;
	return (uint64_t)v;
}

/* setsockopt with an int, -errno. */
static int set_int(int fd, int level, int opt, uint64_t v)
{
	int x = v > INT32_MAX ? INT32_MAX : (int)v;

	return setsockopt(fd, level, opt, &x, sizeof(x)) ? -errno : 0;
}

int sockbuf_size(int fd, bool send, uint64_t want, const struct sockbuf_host *h,
		 struct sockbuf_result *r)
{
	uint64_t autotune = send ? h->tcp_wmem_max : h->tcp_rmem_max;
	uint64_t core = 2 * (send ? h->wmem_max : h->rmem_max); /* 0: unknown */
	int opt = send ? SO_SNDBUF : SO_RCVBUF;
	int err;

	*r = (struct sockbuf_result){ .how = SOCKBUF_AUTO, .want = want, .got = autotune };
	if (want <= autotune)
		return 0;
	/* the kernel doubles what it is given: ask for half, rounded up */
	if (want <= core) {
		err = set_int(fd, SOL_SOCKET, opt, (want + 1) / 2);
		r->how = SOCKBUF_SET;
	} else {
		err =
		    set_int(fd, SOL_SOCKET, send ? SO_SNDBUFFORCE : SO_RCVBUFFORCE, (want + 1) / 2);
		r->how = SOCKBUF_FORCED;
		if (err == -EPERM) {
			/*
			 * No CAP_NET_ADMIN: the most the host allows where it beats
			 * autotuning; with the limit unknown, autotuning untouched
			 * (a smaller fixed buffer would only lose).
			 */
			r->how = SOCKBUF_CAPPED;
			err = core > autotune ? set_int(fd, SOL_SOCKET, opt, core / 2) : 0;
		}
	}
	if (err)
		return err;
	if (r->how != SOCKBUF_CAPPED || core > autotune)
		r->got = current(fd, opt);
	if (r->got < want)
		r->how = SOCKBUF_CAPPED;
	return 0;
}

static double mib(uint64_t b)
{
	return (double)b / 1048576.0;
}

bool sockbuf_describe(const struct sockbuf_result *r, bool send, uint64_t rtt_ns, char *buf,
		      size_t len)
{
	const char *dir = send ? "send" : "receive";
	const char *w = send ? "wmem" : "rmem";
	char cap[96] = "";

	switch (r->how) {
	case SOCKBUF_AUTO:
		snprintf(buf, len,
			 "%s buffer: kernel autotuning (up to %.1f MiB) covers the %.1f MiB "
			 "the link needs",
			 dir, mib(r->got), mib(r->want));
		return false;
	case SOCKBUF_SET:
	case SOCKBUF_FORCED:
		snprintf(buf, len,
			 "%s buffer: %.1f MiB for the link (autotuning stops at "
			 "net.ipv4.tcp_%s)",
			 dir, mib(r->got), w);
		return false;
	case SOCKBUF_CAPPED:
		break;
	}
	/* about half a buffer is window: one stream moves at most that per round trip */
	if (rtt_ns)
		snprintf(cap, sizeof(cap), "; at %.1f ms RTT one stream moves at most ~%.0f Mbit/s",
			 (double)rtt_ns / 1e6,
			 (double)r->got / 2 * 8 / ((double)rtt_ns / 1e9) / 1e6);
	snprintf(buf, len,
		 "%s buffer: the link needs %.1f MiB but this host allows %.1f MiB "
		 "(net.core.%s_max, net.ipv4.tcp_%s)%s; raise with: sysctl -w "
		 "net.core.%s_max=%llu, or run with CAP_NET_ADMIN",
		 dir, mib(r->want), mib(r->got), w, w, cap, w,
		 (unsigned long long)((r->want + 1) / 2));
	return true;
}

int sockbuf_lowat(int fd, uint64_t bytes)
{
	return set_int(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, bytes);
}
