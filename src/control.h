/* SPDX-License-Identifier: MIT */
/*
 * The control socket: a unix stream socket served from the libevent loop.
 * One JSON object per line in, one JSON object per line out, in order; a
 * connection sends its next request once the previous one is answered.
 * Requests are {"cmd":"NAME", ...}; replies carry "ok": true|false and, on
 * failure, "error". Commands are registered by the owner (src/vmctl.c).
 * Everything here runs on the loop thread.
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

/*
 * Handle one request. The handler must eventually answer @req exactly once
 * with control_reply*() — now or later from the loop thread.
 */
typedef void (*control_fn)(struct ctl_req *req, const struct json_field *f, size_t n, void *arg);
typedef void (*control_done_fn)(void *arg);

/*
 * Listen on @path (a stale socket file is replaced; a live one is an error).
 * Returns NULL with a reason in @why.
 */
struct control *control_new(struct event_base *base, const char *path, char *why, size_t whylen);
/* Close every connection and remove the socket file. Accepts NULL. */
void control_free(struct control *c);
int control_add(struct control *c, const char *cmd, control_fn fn, void *arg) __must_check;
/* Answer @req with the JSON object @json (no newline) and release it. */
void control_reply(struct ctl_req *req, const char *json);
void control_reply_error(struct ctl_req *req, const char *fmt, ...) __printf(2, 3);
/* Send an interim line (e.g. progress) for @req, which stays open. */
void control_notify(struct ctl_req *req, const char *json);
/* Like control_reply, then call @done once the reply has left (or the peer went away). */
void control_reply_then(struct ctl_req *req, const char *json, control_done_fn done, void *arg);

#endif
