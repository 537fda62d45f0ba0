// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/control.h: the limits on a real unix socket, server and
 * clients in one process (tests/control_fixture.h). The loop runs in short
 * slices between client steps; every wait is bounded, and no test depends
 * on how fast anything is. The blocking client, src/ctlclient.h:
 * tests/test_ctlclient.c.
 */
#include "tests/helpers.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "src/control.h"
#include "tests/control_fixture.h"

/* Nothing arrives and the connection stays open while the loop runs @ms. */
static void assert_open_and_quiet(struct cf_fixture *fx, int fd, int ms)
{
	char c;

	cf_pump(fx, ms);
	assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

static void test_control_new_mode_0600(void **state)
{
	struct cf_fixture *fx = *state;
	char path[96];
	char why[256];
	struct control *c;
	struct stat st;
	mode_t old = umask(0);

	/* independent of the umask: the file is never wider than 0600 */
	snprintf(path, sizeof(path), "%s/wide.sock", fx->dir);
	c = control_new(fx->base, path, why, sizeof(why));
	umask(old);
	assert_non_null(c);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	control_free(c);
	assert_int_equal(lstat(path, &st), -1);
}

static void test_control_new_live_socket_refused(void **state)
{
	struct cf_fixture *fx = *state;
	char why[256] = "";

	assert_null(control_new(fx->base, fx->path, why, sizeof(why)));
	assert_non_null(strstr(why, "in use"));
}

static void test_control_new_not_a_socket(void **state)
{
	struct cf_fixture *fx = *state;
	char path[96];
	char why[256] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/file", fx->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_null(control_new(fx->base, path, why, sizeof(why)));
	assert_non_null(strstr(why, "not a socket"));
	unlink(path);
}

static void test_control_set_idle_timeout_range(void **state)
{
	struct cf_fixture *fx = *state;

	assert_int_equal(control_set_idle_timeout(fx->c, 0), -EINVAL);
	assert_int_equal(control_set_idle_timeout(fx->c, -5), -EINVAL);
	assert_int_equal(control_set_idle_timeout(fx->c, 1), 0);
	assert_int_equal(control_set_idle_timeout(fx->c, CONTROL_IDLE_MS), 0);
}

/* The test-only environment variable, read by control_new(); junk is ignored. */
static void test_control_new_idle_env(void **state)
{
	struct cf_fixture *fx = *state;
	char why[256];
	char buf[256];
	bool closed;
	int fd;

	control_free(fx->c);
	setenv(CONTROL_IDLE_ENV, "junk", 1);
	fx->c = control_new(fx->base, fx->path, why, sizeof(why));
	assert_non_null(fx->c);
	fd = cf_connect(fx);
	assert_open_and_quiet(fx, fd, 100);
	close(fd);
	control_free(fx->c);
	setenv(CONTROL_IDLE_ENV, "30", 1);
	fx->c = control_new(fx->base, fx->path, why, sizeof(why));
	unsetenv(CONTROL_IDLE_ENV);
	assert_non_null(fx->c);
	fd = cf_connect(fx);
	assert_true(cf_read(fx, fd, buf, sizeof(buf), true, &closed) >= 0);
	assert_true(closed);
	close(fd);
}

static void test_control_reply_roundtrip(void **state)
{
	struct cf_fixture *fx = *state;
	int fd = cf_connect(fx);

	cf_call(fx, fd, "{\"cmd\":\"echo\"}\n", "\"ok\":true");
	cf_call(fx, fd, "{\"cmd\":\"nope\"}\n", "unknown command");
	cf_call(fx, fd, "not json\n", "not valid JSON");
	cf_call(fx, fd, "{\"cmd\":\"echo\"}\n", "\"ok\":true");
	close(fd);
}

static void test_control_line_too_long_closes(void **state)
{
	struct cf_fixture *fx = *state;
	char *big = malloc(CONTROL_LINE_MAX + 2);
	char buf[1024];
	bool closed;
	int fd = cf_connect(fx);

	assert_non_null(big);
	memset(big, ' ', CONTROL_LINE_MAX + 1);
	big[CONTROL_LINE_MAX + 1] = 0;
	cf_send(fd, big);
	assert_true(cf_read(fx, fd, buf, sizeof(buf), true, &closed) > 0);
	assert_true(closed);
	assert_non_null(strstr(buf, "too long"));
	free(big);
	close(fd);
}

/* A complete line over the limit is refused the same way. */
static void test_control_line_too_long_with_newline_closes(void **state)
{
	struct cf_fixture *fx = *state;
	char *big = malloc(CONTROL_LINE_MAX + 3);
	char buf[1024];
	bool closed;
	int fd = cf_connect(fx);

	assert_non_null(big);
	memset(big, ' ', CONTROL_LINE_MAX + 1);
	strcpy(big + CONTROL_LINE_MAX + 1, "\n");
	cf_send(fd, big);
	assert_true(cf_read(fx, fd, buf, sizeof(buf), true, &closed) > 0);
	assert_true(closed);
	assert_non_null(strstr(buf, "too long"));
	free(big);
	close(fd);
}

/* Send without newline until the socket takes no more; returns the bytes taken. */
static size_t cli_stream(struct cf_fixture *fx, int fd, size_t max)
{
	static char chunk[65536];
	size_t sent = 0;
	int stuck = 0;

	memset(chunk, 'x', sizeof(chunk));
	while (sent < max && stuck < 20) {
		ssize_t n = send(fd, chunk, sizeof(chunk), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			sent += (size_t)n;
			stuck = 0;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		stuck++;
		cf_pump(fx, 10);
	}
	return sent;
}

static void test_control_input_capped_while_in_flight(void **state)
{
	struct cf_fixture *fx = *state;
	char buf[1024];
	bool closed;
	size_t sent;
	int fd = cf_connect(fx);

	cf_send(fd, "{\"cmd\":\"hold\"}\n");
	for (int i = 0; i < MAX_SLICES && !fx->nr_held; i++)
		cf_pump(fx, 10);
	assert_int_equal(fx->nr_held, 1);
	/* the kernel buffers a little; without the cap all 64 MiB would go in */
	sent = cli_stream(fx, fd, 64u << 20);
	assert_true(sent < 8u << 20);
	control_reply(fx->held[0], "{\"ok\":true,\"held\":1}");
	fx->nr_held = 0;
	assert_true(cf_read(fx, fd, buf, sizeof(buf), true, &closed) > 0);
	assert_true(closed);
	assert_non_null(strstr(buf, "\"held\":1"));
	assert_non_null(strstr(buf, "too long"));
	close(fd);
}

static void test_control_output_cap_drops_peer(void **state)
{
	struct cf_fixture *fx = *state;
	static char buf[4 * CONTROL_OUTPUT_MAX];
	bool closed;
	ssize_t n;
	int fd = cf_connect(fx);

	cf_send(fd, "{\"cmd\":\"spam\"}\n");
	for (int i = 0; i < MAX_SLICES && !fx->nr_held; i++)
		cf_pump(fx, 10);
	assert_int_equal(fx->nr_held, 1);
	n = cf_read(fx, fd, buf, sizeof(buf), true, &closed);
	assert_true(closed);
	/* at most what was queued before the cap (the loop may not have sent any) */
	assert_true(n >= 0 && n <= CONTROL_OUTPUT_MAX);
	/* the request outlives its peer and is still answered, to nobody */
	control_reply(fx->held[0], "{\"ok\":true}");
	fx->nr_held = 0;
	close(fd);
}

static void test_control_idle_timeout_closes(void **state)
{
	struct cf_fixture *fx = *state;
	char buf[1024];
	bool closed;
	int fd;

	assert_int_equal(control_set_idle_timeout(fx->c, 50), 0);
	fd = cf_connect(fx);
	cf_send(fd, "{\"cmd\":\"ec"); /* half a request is no request */
	assert_true(cf_read(fx, fd, buf, sizeof(buf), true, &closed) >= 0);
	assert_true(closed);
	assert_non_null(strstr(buf, "idle"));
	close(fd);
}

static void test_control_in_flight_not_idle(void **state)
{
	struct cf_fixture *fx = *state;
	char buf[1024];
	bool closed;
	int fd;

	assert_int_equal(control_set_idle_timeout(fx->c, 20), 0);
	fd = cf_connect(fx);
	cf_send(fd, "{\"cmd\":\"hold\"}\n");
	assert_open_and_quiet(fx, fd, 200);
	assert_int_equal(fx->nr_held, 1);
	control_notify(fx->held[0], "{\"event\":\"progress\"}");
	assert_true(cf_read(fx, fd, buf, sizeof(buf), false, &closed) > 0);
	assert_open_and_quiet(fx, fd, 200);
	control_reply(fx->held[0], "{\"ok\":true}");
	fx->nr_held = 0;
	/* idle again once answered */
	assert_true(cf_read(fx, fd, buf, sizeof(buf), true, &closed) > 0);
	assert_true(closed);
	close(fd);
}

static void test_control_full_table_evicts_idlest(void **state)
{
	struct cf_fixture *fx = *state;
	int fds[CONTROL_MAX_CONNS];
	char buf[1024];
	bool closed;
	int fd;

	cf_fill_table(fx, fds, NULL);
	fd = cf_connect(fx);
	cf_call(fx, fd, "{\"cmd\":\"echo\"}\n", "\"ok\":true");
	/* the first connection has been idle longest */
	assert_true(cf_read(fx, fds[0], buf, sizeof(buf), true, &closed) >= 0);
	assert_true(closed);
	assert_non_null(strstr(buf, "evicted"));
	for (int i = 1; i < CONTROL_MAX_CONNS; i++)
		cf_call(fx, fds[i], "{\"cmd\":\"echo\"}\n", "\"ok\":true");
	for (int i = 0; i < CONTROL_MAX_CONNS; i++)
		close(fds[i]);
	close(fd);
}

static void test_control_full_table_busy_refuses(void **state)
{
	struct cf_fixture *fx = *state;
	int fds[CONTROL_MAX_CONNS];
	char buf[64];
	bool closed;
	int fd;

	cf_fill_table(fx, fds, "{\"cmd\":\"hold\"}\n");
	assert_int_equal(fx->nr_held, CONTROL_MAX_CONNS);
	fd = cf_connect(fx);
	assert_true(cf_read(fx, fd, buf, sizeof(buf), true, &closed) == 0);
	assert_true(closed);
	for (int i = 0; i < CONTROL_MAX_CONNS; i++)
		close(fds[i]);
	close(fd);
}

static void count_done(void *arg)
{
	((struct cf_fixture *)arg)->done_calls++;
}

/* A client that shuts down its sending side still gets its answer. */
static void test_control_half_close_still_answered(void **state)
{
	struct cf_fixture *fx = *state;
	char buf[1024];
	bool closed;
	int fd = cf_connect(fx);

	cf_send(fd, "{\"cmd\":\"hold\"}\n");
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	for (int i = 0; i < MAX_SLICES && !fx->nr_held; i++)
		cf_pump(fx, 10);
	assert_int_equal(fx->nr_held, 1);
	cf_pump(fx, 50);
	control_reply_then(fx->held[0], "{\"ok\":true,\"last\":1}", count_done, fx);
	fx->nr_held = 0;
	assert_true(cf_read(fx, fd, buf, sizeof(buf), true, &closed) > 0);
	assert_true(closed);
	assert_non_null(strstr(buf, "\"last\":1"));
	assert_int_equal(fx->done_calls, 1);
	close(fd);
}

/* Run as uid 65534: connect, send, and exit 0 only if closed without a byte. */
static int other_uid_client(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { 10, 0 };
	char c;
	int fd;

	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		return 2;
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return 3;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	send(fd, "{\"cmd\":\"echo\"}\n", 15, MSG_NOSIGNAL);
	if (recv(fd, &c, 1, 0) > 0)
		return 1;
	return errno == EAGAIN ? 4 : 0;
}

static void test_control_other_uid_refused(void **state)
{
	struct cf_fixture *fx = *state;
	pid_t pid;

	if (geteuid() != 0) {
		print_message("switching to uid 65534 needs root\n");
		skip();
	}
	/* only the peer check may stand between uid 65534 and the socket */
	assert_int_equal(chmod(fx->dir, 0711), 0);
	assert_int_equal(chmod(fx->path, 0666), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		_exit(other_uid_client(fx->path));
	assert_int_equal(cf_pump_until_exit(fx, pid), 0);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, cf_setup, cf_teardown)
	const struct CMUnitTest tests[] = {
		T(test_control_new_mode_0600),
		T(test_control_new_live_socket_refused),
		T(test_control_new_not_a_socket),
		T(test_control_set_idle_timeout_range),
		T(test_control_new_idle_env),
		T(test_control_reply_roundtrip),
		T(test_control_line_too_long_closes),
		T(test_control_line_too_long_with_newline_closes),
		T(test_control_input_capped_while_in_flight),
		T(test_control_output_cap_drops_peer),
		T(test_control_idle_timeout_closes),
		T(test_control_in_flight_not_idle),
		T(test_control_full_table_evicts_idlest),
		T(test_control_full_table_busy_refuses),
		T(test_control_half_close_still_answered),
		T(test_control_other_uid_refused),
	};
#undef T

	return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
