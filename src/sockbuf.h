/* SPDX-License-Identifier: MIT */
/*
 * Socket buffers for long fat pipes. One TCP stream moves at most one
 * buffer per round trip: the sender keeps every unacknowledged byte, the
 * receiver advertises at most its buffer. Linux autotunes both, but only up
 * to net.ipv4.tcp_wmem[2] / tcp_rmem[2] (Debian: 4 MiB and 6 MiB), which at
 * 100 ms RTT is 40-60 MB/s whatever the link. A larger buffer must be set
 * explicitly (SO_SNDBUF/SO_RCVBUF, up to net.core.wmem_max/rmem_max, or
 * beyond with the *FORCE variants and CAP_NET_ADMIN), which also turns
 * autotuning off for that socket. So hybridmig sizes a buffer only where
 * autotuning cannot reach what the link needs, and says so; where the host
 * caps it, it says which sysctl to raise and what the cap costs.
 *
 * The sender also sets TCP_NOTSENT_LOWAT: a big send buffer must hold the
 * bytes in flight, not seconds of bytes not yet sent, or the switch-over's
 * last frames would queue behind them.
 *
 * See docs/transport.md ("Long fat pipes").
 */
#ifndef HM_SOCKBUF_H
#define HM_SOCKBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "src/util.h"

/* The rate assumed when no cap is known: a 10 Gbit/s link, in bytes/s. */
#define SOCKBUF_NOMINAL_RATE 1250000000ULL
/* The most a buffer is made by default (--socket-buffer changes it). */
#define SOCKBUF_DEFAULT_MAX (64ULL << 20)
/* Unsent bytes a sender keeps at most in its socket (TCP_NOTSENT_LOWAT). */
#define SOCKBUF_LOWAT (1ULL << 20)

/* What the host lets one socket have, in bytes (the kernel's own units). */
struct sockbuf_host {
	uint64_t tcp_wmem_max; /* net.ipv4.tcp_wmem[2]: autotuning's ceiling, send */
	uint64_t tcp_rmem_max; /* net.ipv4.tcp_rmem[2]: autotuning's ceiling, receive */
	uint64_t wmem_max; /* net.core.wmem_max: SO_SNDBUF's ceiling (the kernel doubles it), 0 =
			      unknown (not shown in a network namespace before Linux 6.x) */
	uint64_t
	    rmem_max; /* net.core.rmem_max: SO_RCVBUF's ceiling (doubled likewise), 0 = unknown */
};

enum sockbuf_how {
	SOCKBUF_AUTO,	/* autotuning reaches what the link needs: left alone */
	SOCKBUF_SET,	/* set within net.core.*mem_max */
	SOCKBUF_FORCED, /* set beyond it with SO_*BUFFORCE (CAP_NET_ADMIN) */
	SOCKBUF_CAPPED, /* the host allows less than the link needs */
};

/* What one sizing did. */
struct sockbuf_result {
	enum sockbuf_how how;
	uint64_t want; /* bytes the link needs */
	uint64_t got;  /* bytes the socket can now grow to */
};

/*
 * The host's limits for the calling thread's network namespace, from
 * /proc/sys. Returns 0 or -errno (tcp_wmem or tcp_rmem missing or
 * unreadable); the net.core limits are 0 where they cannot be read.
 */
int sockbuf_host_read(struct sockbuf_host *h) __must_check;

/*
 * Buffer bytes one direction needs to keep a link of @rate bytes/s (0 =
 * SOCKBUF_NOMINAL_RATE) busy over @rtt_ns: two bandwidth-delay products,
 * because the kernel charges each segment's overhead to the buffer and
 * advertises about half of a receive buffer. At most @max (0 = no bound).
 * Pure.
 */
uint64_t sockbuf_need(uint64_t rate, uint64_t rtt_ns, uint64_t max);

/*
 * Size @fd's send (@send) or receive buffer for @want bytes against the
 * host's limits @h: nothing when autotuning reaches @want, otherwise
 * SO_SNDBUF/SO_RCVBUF, with the FORCE variant beyond net.core.*mem_max.
 * A listening socket passes its receive buffer on to the connections it
 * accepts (and their window scale is chosen from it), so the destination
 * sizes its listener. Fills @r. Returns 0, or -errno from setsockopt other
 * than the EPERM of a FORCE without CAP_NET_ADMIN (that is SOCKBUF_CAPPED).
 */
int sockbuf_size(int fd, bool send, uint64_t want, const struct sockbuf_host *h,
		 struct sockbuf_result *r) __must_check;

/*
 * Describe @r for the log: what was done and, when capped, the sysctl that
 * would lift the cap and the rate the cap allows at @rtt_ns (0: unknown).
 * Returns true when the outcome deserves a warning (SOCKBUF_CAPPED).
 */
bool sockbuf_describe(const struct sockbuf_result *r, bool send, uint64_t rtt_ns, char *buf,
		      size_t len);

/* TCP_NOTSENT_LOWAT on @fd. 0 or -errno. */
int sockbuf_lowat(int fd, uint64_t bytes) __must_check;

#endif
