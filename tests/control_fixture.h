/* SPDX-License-Identifier: MIT */
/*
 * What the control-socket tests (tests/test_control.c, tests/test_ctlclient.c)
 * share: a control server (src/control.h) on a real unix socket in a
 * temporary directory, with three commands, and raw clients to it, all in
 * one process. The loop runs in short slices between client steps; every
 * wait is bounded. Prefix cf_ (control fixture).
 *
 * Commands: "echo" answers {"ok":true}; "hold" keeps the request in ->held
 * for the test to answer; "spam" sends progress lines far beyond
 * CONTROL_OUTPUT_MAX, then holds like "hold".
 */
#ifndef HM_TESTS_CONTROL_FIXTURE_H
#define HM_TESTS_CONTROL_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "src/control.h"

/* Slices of 10 ms the loop gets before a client gives up waiting. */
#define MAX_SLICES 500

struct event_base;

/* One test's state (cmocka's *state). */
struct cf_fixture {
	struct event_base *base;
	struct control *c;
	char dir[32];
	char path[64];
	struct ctl_req *held[CONTROL_MAX_CONNS + 1]; /* "hold" requests, answered by the test */
	unsigned int nr_held;
	int done_calls; /* control_reply_then callbacks */
};

/* cmocka setup: a struct cf_fixture in *@state, its server listening at ->path. Returns 0. */
int cf_setup(void **state);
/* cmocka teardown: answers what is held, frees the server and the fixture. Returns 0. */
int cf_teardown(void **state);
/* Run the loop for @ms. */
void cf_pump(struct cf_fixture *fx, int ms);

/* A non-blocking client connected to the server; the caller closes it. */
int cf_connect(struct cf_fixture *fx);
/* Send all of @s on @fd. */
void cf_send(int fd, const char *s);
/*
 * Read what the server sends into @buf until a newline (@want_eof false) or
 * the end of the connection (@want_eof true). Returns the bytes read, or -1
 * if the loop ran out of slices; *@closed says whether the server closed.
 */
ssize_t cf_read(struct cf_fixture *fx, int fd, char *buf, size_t cap, bool want_eof, bool *closed);
/* One request, one reply line; the reply must contain @want. */
void cf_call(struct cf_fixture *fx, int fd, const char *req, const char *want);
/*
 * Fill the server's table: CONTROL_MAX_CONNS clients into @fds, each sending
 * @req and waiting until it is held, or (@req NULL) each answered an echo.
 */
void cf_fill_table(struct cf_fixture *fx, int *fds, const char *req);
/* Wait for child @pid while the loop runs; returns its exit code (-1: killed). */
int cf_pump_until_exit(struct cf_fixture *fx, pid_t pid);

#endif
