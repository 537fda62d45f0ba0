// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/ctlclient.h, the blocking client of the control socket
 * (`hybridmig stop`, `status`): it runs in a child while this process
 * serves a real control socket (tests/control_fixture.h); a full table of
 * idle clients, no socket at all, and a server whose backlog is full.
 */
#include "tests/helpers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "src/ctlclient.h"
#include "tests/control_fixture.h"

/* ctlclient_call() blocks, so it runs in a child while this process serves. */
static int child_call(struct cf_fixture *fx, const char *req, const char *want)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (!pid) {
		char reply[256];
		char why[256];

		if (ctlclient_call(fx->path, req, reply, sizeof(reply), 5000, why, sizeof(why)))
			_exit(2);
		_exit(strstr(reply, want) ? 0 : 1);
	}
	return cf_pump_until_exit(fx, pid);
}

static void test_ctlclient_call_roundtrip(void **state)
{
	struct cf_fixture *fx = *state;

	assert_int_equal(child_call(fx, "{\"cmd\":\"echo\"}", "\"ok\":true"), 0);
	assert_int_equal(child_call(fx, "{\"cmd\":\"nope\"}", "unknown command"), 0);
}

/* The `hybridmig stop` case: a full table of idle clients does not lock it out. */
static void test_ctlclient_call_full_table_served(void **state)
{
	struct cf_fixture *fx = *state;
	int fds[CONTROL_MAX_CONNS];

	cf_fill_table(fx, fds, NULL);
	assert_int_equal(child_call(fx, "{\"cmd\":\"echo\"}", "\"ok\":true"), 0);
	for (int i = 0; i < CONTROL_MAX_CONNS; i++)
		close(fds[i]);
}

static void test_ctlclient_call_no_vm(void **state)
{
	struct cf_fixture *fx = *state;
	char path[96];
	char reply[64];
	char why[256] = "";

	snprintf(path, sizeof(path), "%s/none.sock", fx->dir);
	assert_int_equal(ctlclient_call(path, "{}", reply, sizeof(reply), 100, why, sizeof(why)),
			 -ENOENT);
	assert_non_null(strstr(why, "cannot reach"));
}

/* A server whose accept backlog is full: the client gives up at its timeout. */
static void test_ctlclient_call_backlog_full_times_out(void **state)
{
	struct cf_fixture *fx = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fds[64];
	int nr = 0;
	char reply[64];
	char why[256] = "";
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/full.sock", fx->dir);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	for (; nr < (int)ARRAY_SIZE(fds); nr++) {
		fds[nr] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(fds[nr], (struct sockaddr *)&sa, sizeof(sa))) {
			assert_int_equal(errno, EAGAIN);
			close(fds[nr]);
			break;
		}
	}
	assert_true(nr < (int)ARRAY_SIZE(fds));
	assert_int_equal(
	    ctlclient_call(sa.sun_path, "{}", reply, sizeof(reply), 100, why, sizeof(why)),
	    -ETIMEDOUT);
	while (nr--)
		close(fds[nr]);
	close(lfd);
	unlink(sa.sun_path);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, cf_setup, cf_teardown)
	const struct CMUnitTest tests[] = {
		T(test_ctlclient_call_roundtrip),
		T(test_ctlclient_call_full_table_served),
		T(test_ctlclient_call_no_vm),
		T(test_ctlclient_call_backlog_full_times_out),
	};
#undef T

	return cmocka_run_group_tests_name("ctlclient", tests, NULL, NULL);
}
