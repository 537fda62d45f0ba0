/*
 * delayproxy's parts (tools/delayproxy.c: connections, accepting, main;
 * tools/delayproxy_pump.c: one direction through the timed queue). Built
 * together by tools/testnet.sh (ensure_bin).
 */
#ifndef HM_TOOLS_DELAYPROXY_H
#define HM_TOOLS_DELAYPROXY_H

#include <stdatomic.h>
#include <stdint.h>

/* One proxied connection: the accepted client and its own connection to the target. */
struct conn {
	int fd[2]; /* 0: accepted client, 1: target */
	int efd;   /* eventfd: written on abort */
	atomic_int refs;
	atomic_int aborted;
	unsigned id;
	uint64_t bytes[2]; /* bytes forwarded from fd[i] */
	struct conn *prev, *next;
};

extern int64_t delay_ns; /* the one-way delay */
extern int verbose;

void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t now_ns(void);
/* Reset both sides (once): the pumps see the eventfd and stop. */
void conn_abort(struct conn *c);
/* Drop a reference; the last one closes both sockets and frees @c. */
void conn_put(struct conn *c);

struct pump;
/* The direction fd[@src] -> fd[1 - @src] of @c; NULL when out of memory. */
struct pump *pump_new(struct conn *c, int src);
/* Free a pump that never ran. */
void pump_free(struct pump *p);
/* Thread body: forwards until EOF or an error, then frees the pump and drops its reference. */
void *pump_thread(void *arg);

#endif
