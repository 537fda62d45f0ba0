/* SPDX-License-Identifier: MIT */
/*
 * The control socket: a unix stream socket served from the libevent loop.
 * One JSON object per line in, one JSON object per line out, in order; a
 * connection sends its next request once the previous one is answered.
 * Requests are {"cmd":"NAME", ...}; replies carry "ok": true|false and, on
 * failure, "error". Commands are registered by the owner (src/vmctl.c).
 * Everything here runs on the loop thread.
 *
 * Whoever can connect can stop the VM or send it elsewhere, and everything
 * that arrives is untrusted, so:
 *  - The socket file is created 0600 (the mode is set on the socket before
 *    bind(), so the file never exists wider), and each connection's peer is
 *    checked with SO_PEERCRED: only our own effective uid and root are
 *    served; anyone else is closed at once, with a warning naming uid and pid.
 *  - Limits per connection: a request line of at most CONTROL_LINE_MAX
 *    bytes (longer: an error reply, then the connection is closed); at most
 *    CONTROL_INPUT_MAX bytes read ahead while a request is in flight (beyond
 *    that the socket is not read, so the peer blocks); at most
 *    CONTROL_OUTPUT_MAX bytes of replies waiting for a peer that does not
 *    read them (beyond that it is dropped).
 *  - A connection with no request in flight that sends no request for the
 *    idle timeout (CONTROL_IDLE_MS) is closed. A request in flight, however
 *    long (migrate and its progress lines), keeps its connection.
 *  - At most CONTROL_MAX_CONNS connections. When the table is full, a new
 *    connection evicts the connection that has been idle longest (no request
 *    in flight, no final reply draining); only if every connection has a
 *    request in flight is the newcomer refused. Eviction rather than slots
 *    reserved for stop/abort: reserved slots can be filled by idle clients
 *    just as well, while eviction means idle clients can never lock out a
 *    stop, an abort or a status. The victim gets an error line, then EOF.
 */
#ifndef HM_CONTROL_H
#define HM_CONTROL_H

#include <stddef.h>
#include "src/json.h"
#include "src/util.h"

struct event_base;
struct control;
struct ctl_req;

/* Longest request line accepted. */
#define CONTROL_LINE_MAX 4096
/* Input buffered per connection, at most (read-ahead behind a request in flight). */
#define CONTROL_INPUT_MAX (4 * CONTROL_LINE_MAX)
/* Unsent output per connection, at most; a peer further behind is dropped. */
#define CONTROL_OUTPUT_MAX (1024 * 1024)
/* Connections served at once (see eviction above). */
#define CONTROL_MAX_CONNS 32
/* Default idle timeout of a connection with no request in flight. */
#define CONTROL_IDLE_MS 60000
/*
 * Test-only: control_new() takes the idle timeout in milliseconds from this
 * environment variable when it is set (1 to 86400000), so end-to-end tests
 * need not wait a minute. Not meant for production use.
 */
#define CONTROL_IDLE_ENV "HM_CONTROL_IDLE_MS"

/*
 * Handle one request. The handler must eventually answer @req exactly once
 * with control_reply*() — now or later from the loop thread.
 */
typedef void (*control_fn)(struct ctl_req *req, const struct json_field *f, size_t n, void *arg);
typedef void (*control_done_fn)(void *arg);

/*
 * Listen on @path (a stale socket file is replaced; a live one is an error).
 * The socket file is created with mode 0600 and removed by control_free().
 * Returns NULL with a reason in @why.
 */
struct control *control_new(struct event_base *base, const char *path, char *why, size_t whylen);
/* Close every connection and remove the socket file. Accepts NULL. */
void control_free(struct control *c);
/*
 * Set the idle timeout to @ms (> 0) for connections that become idle from
 * now on. Returns 0 or -EINVAL.
 */
int control_set_idle_timeout(struct control *c, int ms) __must_check;
/* Register @cmd (a static string) to @fn. Returns 0 or -ENOSPC. */
int control_add(struct control *c, const char *cmd, control_fn fn, void *arg) __must_check;
/*
 * Answer @req with the JSON object @json (no newline) and release it. If the
 * peer went away meanwhile the reply is dropped; @req is released anyway.
 */
void control_reply(struct ctl_req *req, const char *json);
void control_reply_error(struct ctl_req *req, const char *fmt, ...) __printf(2, 3);
/*
 * Send an interim line (e.g. progress) for @req, which stays open. A peer
 * that lets more than CONTROL_OUTPUT_MAX bytes pile up is dropped; @req stays
 * valid and must still be answered.
 */
void control_notify(struct ctl_req *req, const char *json);
/*
 * Like control_reply, then call @done once the reply has left, or once the
 * peer went away or was dropped (at once if it already had). Not called when
 * control_free() closes the connection first.
 */
void control_reply_then(struct ctl_req *req, const char *json, control_done_fn done, void *arg);

#endif
