// SPDX-License-Identifier: MIT
/* A control server and raw clients for the control-socket tests (tests/control_fixture.h). */
#include "tests/control_fixture.h"
#include "tests/helpers.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "src/control.h"

static void cmd_echo(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	(void)f, (void)n, (void)arg;
	control_reply(req, "{\"ok\":true}");
}

static void cmd_hold(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	struct cf_fixture *fx = arg;

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

int cf_setup(void **state)
{
	struct cf_fixture *fx = calloc(1, sizeof(*fx));
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

int cf_teardown(void **state)
{
	struct cf_fixture *fx = *state;

	control_free(fx->c);
	for (unsigned int i = 0; i < fx->nr_held; i++)
		control_reply(fx->held[i], "{\"ok\":true}");
	event_base_free(fx->base);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

void cf_pump(struct cf_fixture *fx, int ms)
{
	struct timeval tv = { 0, ms * 1000 };

	event_base_loopexit(fx->base, &tv);
	event_base_dispatch(fx->base);
}

int cf_connect(struct cf_fixture *fx)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, fx->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

void cf_send(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/*
 * Read what the server sends into @buf until a newline (@want_eof false) or
 * the end of the connection (@want_eof true). Returns the bytes read, or -1
 * if the loop ran out of slices; *@closed says whether the server closed.
 */
ssize_t cf_read(struct cf_fixture *fx, int fd, char *buf, size_t cap, bool want_eof, bool *closed)
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
			cf_pump(fx, 10);
	}
	buf[len] = 0;
	return *closed ? (ssize_t)len : -1;
}

/* One request, one reply line; the reply must contain @want. */
void cf_call(struct cf_fixture *fx, int fd, const char *req, const char *want)
{
	char buf[1024];
	bool closed;

	cf_send(fd, req);
	assert_true(cf_read(fx, fd, buf, sizeof(buf), false, &closed) > 0);
	if (!strstr(buf, want))
		fail_msg("reply '%s' lacks '%s'", buf, want);
}

void cf_fill_table(struct cf_fixture *fx, int *fds, const char *req)
{
	for (int i = 0; i < CONTROL_MAX_CONNS; i++) {
		fds[i] = cf_connect(fx);
		if (req) {
			cf_send(fds[i], req);
			for (int k = 0; k < MAX_SLICES && fx->nr_held <= (unsigned int)i; k++)
				cf_pump(fx, 10);
		} else {
			cf_call(fx, fds[i], "{\"cmd\":\"echo\"}\n", "\"ok\":true");
		}
	}
}

/* Wait for child @pid while the loop runs; returns its exit code (-1: killed). */
int cf_pump_until_exit(struct cf_fixture *fx, pid_t pid)
{
	int status = -1;

	for (int i = 0; i < MAX_SLICES && waitpid(pid, &status, WNOHANG) == 0; i++)
		cf_pump(fx, 10);
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
