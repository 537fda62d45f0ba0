// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/control.h: the limits on a real unix socket, server and
 * clients in one process. The loop runs in short slices between client
 * steps; every wait is bounded, and no test depends on how fast anything is.
 */
#include "tests/helpers.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>
#include "src/control.h"
#include "src/ctlclient.h"

/* Slices of 10 ms the loop gets before a client gives up waiting. */
#define MAX_SLICES 500

struct fixture {
	struct event_base *base;
	struct control *c;
	char dir[32];
	char path[64];
	struct ctl_req *held[CONTROL_MAX_CONNS + 1]; /* "hold" requests, answered by the test */
	unsigned int nr_held;
	int done_calls; /* control_reply_then callbacks */
};

static void cmd_echo(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	(void)f, (void)n, (void)arg;
	control_reply(req, "{\"ok\":true}");
}

static void cmd_hold(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	struct fixture *fx = arg;

	(void)f, (void)n;
	fx->held[fx->nr_held++] = req;
}

/* Progress lines far beyond CONTROL_OUTPUT_MAX, for a peer that reads none. */
static void cmd_spam(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	static char line[1024];

	(void)f, (void)n;
	memset(line, 'x', sizeof(line) - 1);
	memcpy(line, "{\"x\":\"", 6);
	strcpy(line + sizeof(line) - 3, "\"}");
	for (int i = 0; i < 2 * CONTROL_OUTPUT_MAX / (int)sizeof(line); i++)
		control_notify(req, line);
	cmd_hold(req, f, n, arg);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char why[256] = "";

	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/hm-ctl.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof(fx->path), "%s/c.sock", fx->dir);
	fx->base = event_base_new();
	assert_non_null(fx->base);
	fx->c = control_new(fx->base, fx->path, why, sizeof(why));
	if (!fx->c)
		fail_msg("control_new: %s", why);
	assert_int_equal(control_add(fx->c, "echo", cmd_echo, fx), 0);
	assert_int_equal(control_add(fx->c, "hold", cmd_hold, fx), 0);
	assert_int_equal(control_add(fx->c, "spam", cmd_spam, fx), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	control_free(fx->c);
	for (unsigned int i = 0; i < fx->nr_held; i++)
		control_reply(fx->held[i], "{\"ok\":true}");
	event_base_free(fx->base);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void pump(struct fixture *fx, int ms)
{
	struct timeval tv = { 0, ms * 1000 };

	event_base_loopexit(fx->base, &tv);
	event_base_dispatch(fx->base);
}

static int cli_connect(struct fixture *fx)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, fx->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void cli_send(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/*
 * Read what the server sends into @buf until a newline (@want_eof false) or
 * the end of the connection (@want_eof true). Returns the bytes read, or -1
 * if the loop ran out of slices; *@closed says whether the server closed.
 */
static ssize_t cli_read(struct fixture *fx, int fd, char *buf, size_t cap, bool want_eof,
			bool *closed)
{
	size_t len = 0;

	*closed = false;
	for (int i = 0; i < MAX_SLICES; i++) {
		ssize_t n = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			*closed = true;
			break;
		}
		if (n > 0)
			len += (size_t)n;
		buf[len] = 0;
		if (len + 1 >= cap || (!want_eof && strchr(buf, '\n')))
			return (ssize_t)len;
		if (n < 0)
			pump(fx, 10);
	}
	buf[len] = 0;
	return *closed ? (ssize_t)len : -1;
}

/* One request, one reply line; the reply must contain @want. */
static void cli_call(struct fixture *fx, int fd, const char *req, const char *want)
{
	char buf[1024];
	bool closed;

	cli_send(fd, req);
	assert_true(cli_read(fx, fd, buf, sizeof(buf), false, &closed) > 0);
	if (!strstr(buf, want))
		fail_msg("reply '%s' lacks '%s'", buf, want);
}

/* Nothing arrives and the connection stays open while the loop runs @ms. */
static void assert_open_and_quiet(struct fixture *fx, int fd, int ms)
{
	char c;

	pump(fx, ms);
	assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

static void test_control_new_mode_0600(void **state)
{
	struct fixture *fx = *state;
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
	struct fixture *fx = *state;
	char why[256] = "";

	assert_null(control_new(fx->base, fx->path, why, sizeof(why)));
	assert_non_null(strstr(why, "in use"));
}

static void test_control_new_not_a_socket(void **state)
{
	struct fixture *fx = *state;
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
	struct fixture *fx = *state;

	assert_int_equal(control_set_idle_timeout(fx->c, 0), -EINVAL);
	assert_int_equal(control_set_idle_timeout(fx->c, -5), -EINVAL);
	assert_int_equal(control_set_idle_timeout(fx->c, 1), 0);
	assert_int_equal(control_set_idle_timeout(fx->c, CONTROL_IDLE_MS), 0);
}

/* The test-only environment variable, read by control_new(); junk is ignored. */
static void test_control_new_idle_env(void **state)
{
	struct fixture *fx = *state;
	char why[256];
	char buf[256];
	bool closed;
	int fd;

	control_free(fx->c);
	setenv(CONTROL_IDLE_ENV, "junk", 1);
	fx->c = control_new(fx->base, fx->path, why, sizeof(why));
	assert_non_null(fx->c);
	fd = cli_connect(fx);
	assert_open_and_quiet(fx, fd, 100);
	close(fd);
	control_free(fx->c);
	setenv(CONTROL_IDLE_ENV, "30", 1);
	fx->c = control_new(fx->base, fx->path, why, sizeof(why));
	unsetenv(CONTROL_IDLE_ENV);
	assert_non_null(fx->c);
	fd = cli_connect(fx);
	assert_true(cli_read(fx, fd, buf, sizeof(buf), true, &closed) >= 0);
	assert_true(closed);
	close(fd);
}

static void test_control_reply_roundtrip(void **state)
{
	struct fixture *fx = *state;
	int fd = cli_connect(fx);

	cli_call(fx, fd, "{\"cmd\":\"echo\"}\n", "\"ok\":true");
	cli_call(fx, fd, "{\"cmd\":\"nope\"}\n", "unknown command");
	cli_call(fx, fd, "not json\n", "not valid JSON");
	cli_call(fx, fd, "{\"cmd\":\"echo\"}\n", "\"ok\":true");
	close(fd);
}

static void test_control_line_too_long_closes(void **state)
{
	struct fixture *fx = *state;
	char *big = malloc(CONTROL_LINE_MAX + 2);
	char buf[1024];
	bool closed;
	int fd = cli_connect(fx);

	assert_non_null(big);
	memset(big, ' ', CONTROL_LINE_MAX + 1);
	big[CONTROL_LINE_MAX + 1] = 0;
	cli_send(fd, big);
	assert_true(cli_read(fx, fd, buf, sizeof(buf), true, &closed) > 0);
	assert_true(closed);
	assert_non_null(strstr(buf, "too long"));
	free(big);
	close(fd);
}

/* A complete line over the limit is refused the same way. */
static void test_control_line_too_long_with_newline_closes(void **state)
{
	struct fixture *fx = *state;
	char *big = malloc(CONTROL_LINE_MAX + 3);
	char buf[1024];
	bool closed;
	int fd = cli_connect(fx);

	assert_non_null(big);
	memset(big, ' ', CONTROL_LINE_MAX + 1);
	strcpy(big + CONTROL_LINE_MAX + 1, "\n");
	cli_send(fd, big);
	assert_true(cli_read(fx, fd, buf, sizeof(buf), true, &closed) > 0);
	assert_true(closed);
	assert_non_null(strstr(buf, "too long"));
	free(big);
	close(fd);
}

/* Send without newline until the socket takes no more; returns the bytes taken. */
static size_t cli_stream(struct fixture *fx, int fd, size_t max)
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
		pump(fx, 10);
	}
	return sent;
}

static void test_control_input_capped_while_in_flight(void **state)
{
	struct fixture *fx = *state;
	char buf[1024];
	bool closed;
	size_t sent;
	int fd = cli_connect(fx);

	cli_send(fd, "{\"cmd\":\"hold\"}\n");
	for (int i = 0; i < MAX_SLICES && !fx->nr_held; i++)
		pump(fx, 10);
	assert_int_equal(fx->nr_held, 1);
	/* the kernel buffers a little; without the cap all 64 MiB would go in */
	sent = cli_stream(fx, fd, 64u << 20);
	assert_true(sent < 8u << 20);
	control_reply(fx->held[0], "{\"ok\":true,\"held\":1}");
	fx->nr_held = 0;
	assert_true(cli_read(fx, fd, buf, sizeof(buf), true, &closed) > 0);
	assert_true(closed);
	assert_non_null(strstr(buf, "\"held\":1"));
	assert_non_null(strstr(buf, "too long"));
	close(fd);
}

static void test_control_output_cap_drops_peer(void **state)
{
	struct fixture *fx = *state;
	static char buf[4 * CONTROL_OUTPUT_MAX];
	bool closed;
	ssize_t n;
	int fd = cli_connect(fx);

	cli_send(fd, "{\"cmd\":\"spam\"}\n");
	for (int i = 0; i < MAX_SLICES && !fx->nr_held; i++)
		pump(fx, 10);
	assert_int_equal(fx->nr_held, 1);
	n = cli_read(fx, fd, buf, sizeof(buf), true, &closed);
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
	struct fixture *fx = *state;
	char buf[1024];
	bool closed;
	int fd;

	assert_int_equal(control_set_idle_timeout(fx->c, 50), 0);
	fd = cli_connect(fx);
	cli_send(fd, "{\"cmd\":\"ec"); /* half a request is no request */
	assert_true(cli_read(fx, fd, buf, sizeof(buf), true, &closed) >= 0);
	assert_true(closed);
	assert_non_null(strstr(buf, "idle"));
	close(fd);
}

static void test_control_in_flight_not_idle(void **state)
{
	struct fixture *fx = *state;
	char buf[1024];
	bool closed;
	int fd;

	assert_int_equal(control_set_idle_timeout(fx->c, 20), 0);
	fd = cli_connect(fx);
	cli_send(fd, "{\"cmd\":\"hold\"}\n");
	assert_open_and_quiet(fx, fd, 200);
	assert_int_equal(fx->nr_held, 1);
	control_notify(fx->held[0], "{\"event\":\"progress\"}");
	assert_true(cli_read(fx, fd, buf, sizeof(buf), false, &closed) > 0);
	assert_open_and_quiet(fx, fd, 200);
	control_reply(fx->held[0], "{\"ok\":true}");
	fx->nr_held = 0;
	/* idle again once answered */
	assert_true(cli_read(fx, fd, buf, sizeof(buf), true, &closed) > 0);
	assert_true(closed);
	close(fd);
}

static void fill_table(struct fixture *fx, int *fds, const char *req)
{
	for (int i = 0; i < CONTROL_MAX_CONNS; i++) {
		fds[i] = cli_connect(fx);
		if (req) {
			cli_send(fds[i], req);
			for (int k = 0; k < MAX_SLICES && fx->nr_held <= (unsigned int)i; k++)
				pump(fx, 10);
		} else {
			cli_call(fx, fds[i], "{\"cmd\":\"echo\"}\n", "\"ok\":true");
		}
	}
}

static void test_control_full_table_evicts_idlest(void **state)
{
	struct fixture *fx = *state;
	int fds[CONTROL_MAX_CONNS];
	char buf[1024];
	bool closed;
	int fd;

	fill_table(fx, fds, NULL);
	fd = cli_connect(fx);
	cli_call(fx, fd, "{\"cmd\":\"echo\"}\n", "\"ok\":true");
	/* the first connection has been idle longest */
	assert_true(cli_read(fx, fds[0], buf, sizeof(buf), true, &closed) >= 0);
	assert_true(closed);
	assert_non_null(strstr(buf, "evicted"));
	for (int i = 1; i < CONTROL_MAX_CONNS; i++)
		cli_call(fx, fds[i], "{\"cmd\":\"echo\"}\n", "\"ok\":true");
	for (int i = 0; i < CONTROL_MAX_CONNS; i++)
		close(fds[i]);
	close(fd);
}

static void test_control_full_table_busy_refuses(void **state)
{
	struct fixture *fx = *state;
	int fds[CONTROL_MAX_CONNS];
	char buf[64];
	bool closed;
	int fd;

	fill_table(fx, fds, "{\"cmd\":\"hold\"}\n");
	assert_int_equal(fx->nr_held, CONTROL_MAX_CONNS);
	fd = cli_connect(fx);
	assert_true(cli_read(fx, fd, buf, sizeof(buf), true, &closed) == 0);
	assert_true(closed);
	for (int i = 0; i < CONTROL_MAX_CONNS; i++)
		close(fds[i]);
	close(fd);
}

static void count_done(void *arg)
{
	((struct fixture *)arg)->done_calls++;
}

/* A client that shuts down its sending side still gets its answer. */
static void test_control_half_close_still_answered(void **state)
{
	struct fixture *fx = *state;
	char buf[1024];
	bool closed;
	int fd = cli_connect(fx);

	cli_send(fd, "{\"cmd\":\"hold\"}\n");
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	for (int i = 0; i < MAX_SLICES && !fx->nr_held; i++)
		pump(fx, 10);
	assert_int_equal(fx->nr_held, 1);
	pump(fx, 50);
	control_reply_then(fx->held[0], "{\"ok\":true,\"last\":1}", count_done, fx);
	fx->nr_held = 0;
	assert_true(cli_read(fx, fd, buf, sizeof(buf), true, &closed) > 0);
	assert_true(closed);
	assert_non_null(strstr(buf, "\"last\":1"));
	assert_int_equal(fx->done_calls, 1);
	close(fd);
}

/* Wait for child @pid while the loop runs; returns its exit code (-1: killed). */
static int pump_until_exit(struct fixture *fx, pid_t pid)
{
	int status = -1;

	for (int i = 0; i < MAX_SLICES && waitpid(pid, &status, WNOHANG) == 0; i++)
		pump(fx, 10);
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
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
	struct fixture *fx = *state;
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
	assert_int_equal(pump_until_exit(fx, pid), 0);
}

/* ctlclient_call() blocks, so it runs in a child while this process serves. */
static int child_call(struct fixture *fx, const char *req, const char *want)
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
	return pump_until_exit(fx, pid);
}

static void test_ctlclient_call_roundtrip(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(child_call(fx, "{\"cmd\":\"echo\"}", "\"ok\":true"), 0);
	assert_int_equal(child_call(fx, "{\"cmd\":\"nope\"}", "unknown command"), 0);
}

/* The `hybridmig stop` case: a full table of idle clients does not lock it out. */
static void test_ctlclient_call_full_table_served(void **state)
{
	struct fixture *fx = *state;
	int fds[CONTROL_MAX_CONNS];

	fill_table(fx, fds, NULL);
	assert_int_equal(child_call(fx, "{\"cmd\":\"echo\"}", "\"ok\":true"), 0);
	for (int i = 0; i < CONTROL_MAX_CONNS; i++)
		close(fds[i]);
}

static void test_ctlclient_call_no_vm(void **state)
{
	struct fixture *fx = *state;
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
	struct fixture *fx = *state;
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
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
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
		T(test_ctlclient_call_roundtrip),
		T(test_ctlclient_call_full_table_served),
		T(test_ctlclient_call_no_vm),
		T(test_ctlclient_call_backlog_full_times_out),
	};
#undef T

	return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
