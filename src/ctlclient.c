// SPDX-License-Identifier: MIT
#include "src/ctlclient.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Retry interval while the server's accept backlog is full. */
#define CONNECT_RETRY_MS 10

/*
 * A non-blocking socket connected to @path. A unix socket whose backlog is
 * full (the VM's loop busy, or a flood of clients) would block connect()
 * indefinitely; non-blocking it fails with EAGAIN, retried for @timeout_ms.
 */
static int connect_to(const char *path, int timeout_ms, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int waited = 0;
	int err;
	int fd;

	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "control socket path too long or empty");
		return -EINVAL;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		if (err == -EAGAIN && waited < timeout_ms) {
			poll(NULL, 0, CONNECT_RETRY_MS);
			waited += CONNECT_RETRY_MS;
			continue;
		}
		if (err == -EAGAIN)
			err = -ETIMEDOUT;
		snprintf(why, whylen, "cannot reach a VM at %s: %s", path, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

/* Waits at most @timeout_ms each time the socket takes nothing. */
static int send_all(int fd, const char *buf, size_t len, int timeout_ms)
{
	while (len) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			n = poll(&p, 1, timeout_ms);
			if (n == 0)
				return -ETIMEDOUT;
			if (n < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

struct one_line {
	char *buf;
	size_t cap;
	bool too_long;
};

static bool copy_line(const char *line, void *arg)
{
	struct one_line *o = arg;

	o->too_long = strlen(line) >= o->cap;
	snprintf(o->buf, o->cap, "%s", line);
	return true;
}

int ctlclient_call(const char *path, const char *request, char *reply, size_t cap, int timeout_ms,
		   char *why, size_t whylen)
{
	struct one_line o = { reply, cap, false };
	int err = ctlclient_stream(path, request, copy_line, &o, timeout_ms, why, whylen);

	if (!err && o.too_long) {
		snprintf(why, whylen, "reply from %s is too long", path);
		return -EMSGSIZE;
	}
	return err;
}

/*
 * Append to @buf (@len used of @cap) what arrives within @timeout_ms.
 * Returns 0 or -errno: -EPIPE at EOF, -EMSGSIZE when @buf is full.
 */
static int recv_some(int fd, char *buf, size_t *len, size_t cap, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (*len + 1 >= cap)
		return -EMSGSIZE;
	n = poll(&p, 1, timeout_ms);
	if (n == 0)
		return -ETIMEDOUT;
	if (n > 0)
		n = recv(fd, buf + *len, cap - *len - 1, 0);
	if (n > 0) {
		*len += (size_t)n;
		return 0;
	}
	if (n == 0)
		return -EPIPE;
	/* EAGAIN after poll is spurious */
	return errno == EINTR || errno == EAGAIN ? 0 : -errno;
}

int ctlclient_stream(const char *path, const char *request, ctlclient_line_fn line, void *arg,
		     int timeout_ms, char *why, size_t whylen)
{
	/* a final migration report carries its policy decisions: tens of KiB */
	const size_t cap = 256 * 1024;
	char *buf = malloc(cap);
	size_t len = 0;
	int fd;
	int err;

	if (!buf) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	fd = connect_to(path, timeout_ms, why, whylen);
	if (fd < 0) {
		free(buf);
		return fd;
	}
	err = send_all(fd, request, strlen(request), timeout_ms);
	if (!err)
		err = send_all(fd, "\n", 1, timeout_ms);
	while (!err) {
		char *nl = memchr(buf, '\n', len);
		bool last;

		if (!nl) {
			err = recv_some(fd, buf, &len, cap, timeout_ms);
			continue;
		}
		*nl = 0;
		last = line(buf, arg);
		len -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, len);
		if (last)
			break;
	}
	close(fd);
	free(buf);
	if (err)
		snprintf(why, whylen, "%s: %s", path,
			 err == -EPIPE ? "the VM closed the connection before the end"
				       : strerror(-err));
	return err;
}
