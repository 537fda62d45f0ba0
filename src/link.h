/* SPDX-License-Identifier: MIT */
/*
 * The link of one migration session, shared by both roles: two TCP
 * connections (bulk: pages, state and the handshake; urgent: post-copy
 * page requests and their answers), each secured with TLS unless the
 * operator chose plain TCP, each opened with a HELLO that carries the
 * session's 128-bit random secret. The secret is chosen by the source,
 * travels only inside TLS, and a reconnection (or the urgent channel)
 * that does not carry it is refused.
 *
 * Threads: each connection has one writer at a time (net_send holds the
 * connection's write lock for a whole frame). Opening and closing a link
 * is done by the role's migration thread while no other thread uses it.
 *
 * Error classes live here too (link_error_transient): which failures mean
 * "the path broke, reconnect" and which mean "the peer said no".
 */
#ifndef HM_LINK_H
#define HM_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "src/net.h"
#include "src/proto.h"
#include "src/util.h"

struct tls_ctx;

struct link {
	struct net_conn bulk;		   /* handshake, pages, state */
	struct net_conn urgent;		   /* post-copy: requests and answers */
	uint8_t secret[PROTO_SECRET_SIZE]; /* the session's, chosen by the source */
	struct tls_ctx *tls;		   /* not owned; NULL = plain TCP */
	uint64_t rtt_ns;		   /* bulk hello round trip */
	int handshake_ms;		   /* deadline for TLS + hello of one connection */
};

/* Default deadline for one connection's TLS handshake and hello. */
#define LINK_HANDSHAKE_MS 5000

/* A fresh, closed link; @tls may be NULL (plain TCP). */
void link_init(struct link *l, struct tls_ctx *tls);
/* Close both connections. Accepts a link that was never opened. */
void link_close(struct link *l);
/* Source: a new random secret for a new session. 0 or -errno (getrandom). */
int link_new_secret(struct link *l) __must_check;

/*
 * Source: connect both channels to @to, secure them, and exchange hellos
 * (@resume: the session already exists on the destination). The peer must
 * echo our secret. Returns 0, or -errno with a reason in @why.
 */
int link_connect(struct link *l, const char *to, bool resume, char *why,
		 size_t whylen) __must_check;

/*
 * Destination: wait on @lfd for a source whose TLS credentials are valid
 * and whose bulk hello is well formed, up to @wait_ms (-1 = forever) or
 * until @stop_fd is readable (-ECANCELED). A stray, garbage or
 * unauthenticated connection is logged, closed, and the wait goes on.
 * With @resume_only, only a resumption of this link's session is taken;
 * any other source is told the destination is busy. On success
 * l->bulk is open, *@resume says whether it is a resumption, and the
 * hello has not been answered yet (link_answer does it).
 */
int link_accept(struct link *l, int lfd, int stop_fd, int wait_ms, bool resume_only, bool *resume,
		char *why, size_t whylen) __must_check;
/*
 * Destination, while a session runs: take one connection from @lfd (wait
 * up to @wait_ms, or until @stop_fd is readable) and turn it away — an
 * authenticated source is told the destination is busy, anything else
 * gets nothing. Logs what it did.
 */
void link_turn_away(struct link *l, int lfd, int stop_fd, int wait_ms);
/*
 * Destination: answer the bulk hello taken by link_accept (adopting the
 * source's secret for a new session), then accept the urgent channel,
 * which must carry the same secret. 0 or -errno with a reason.
 */
int link_answer(struct link *l, int lfd, int stop_fd, char *why, size_t whylen) __must_check;

/*
 * Source, after link_connect: size the bulk channel's send buffer for
 * @rate bytes/s (0 = unknown: SOCKBUF_NOMINAL_RATE) over the RTT the hellos
 * measured, at most @max bytes (0 = leave the kernel's autotuning alone),
 * and, where it is enlarged, keep its unsent bytes at SOCKBUF_LOWAT so the
 * switch-over's frames do not queue behind seconds of pages. Logs what it
 * did; a host that caps the buffer is a warning, not an error (src/sockbuf.h).
 * *@r says what was done (with @max 0: autotuning, up to its ceiling).
 * Returns 0 or -errno from the kernel.
 */
struct sockbuf_result;
int link_size_send(struct link *l, uint64_t rate, uint64_t max,
		   struct sockbuf_result *r) __must_check;
/*
 * Destination, before accepting: size the listening socket @lfd's receive
 * buffer (inherited by the connections it accepts, whose window scale is
 * chosen from it) for @max bytes (0 = autotuning), since the RTT and rate
 * are not known yet. Logs like link_size_send. 0 or -errno.
 */
int link_size_listener(int lfd, uint64_t max) __must_check;

/*
 * True for failures of the path (reset, timeout, unreachable, closed):
 * worth reconnecting after. False for refusals, protocol errors and local
 * failures.
 */
bool link_error_transient(int err);
/* A sentence for a link failure, naming the peer by @role ("source", "destination"). */
const char *link_strerror(int err, const char *role);

#endif
