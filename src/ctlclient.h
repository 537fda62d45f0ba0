/* SPDX-License-Identifier: MIT */
/* Client side of the control socket: one request line, one reply line, blocking with a timeout. */
#ifndef HM_CTLCLIENT_H
#define HM_CTLCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include "src/util.h"

/*
 * Send @request (a JSON object, no newline) to the control socket at @path
 * and read one reply line into @reply (NUL-terminated, newline stripped).
 * @timeout_ms bounds each wait: for a connection while the server's backlog
 * is full, for the socket to take the request, for the reply.
 * Returns 0, or -errno with a reason in @why: -ENOENT/-ECONNREFUSED (no VM
 * there), -ETIMEDOUT, -EMSGSIZE (reply longer than @cap), -EPIPE (closed).
 * The server closes connections that stay idle (src/control.h): one
 * connection per call, never kept open between calls.
 */
int ctlclient_call(const char *path, const char *request, char *reply, size_t cap, int timeout_ms,
		   char *why, size_t whylen) __must_check;

/*
 * Like ctlclient_call for requests answered with several lines (migrate):
 * @line is called for each line until it returns true (the final one).
 * @timeout_ms bounds the connection, the sending and the wait for each line.
 */
typedef bool (*ctlclient_line_fn)(const char *line, void *arg);
int ctlclient_stream(const char *path, const char *request, ctlclient_line_fn line, void *arg,
		     int timeout_ms, char *why, size_t whylen) __must_check;

#endif
