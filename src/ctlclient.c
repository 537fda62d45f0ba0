// SPDX-License-Identifier: MIT
#include "src/ctlclient.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int connect_to(const char *path, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "control socket path too long or empty");
		return -EINVAL;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		snprintf(why, whylen, "cannot reach a VM at %s: %s", path, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

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

int ctlclient_stream(const char *path, const char *request, ctlclient_line_fn line, void *arg,
		     int timeout_ms, char *why, size_t whylen)
{
	char buf[16384];
	size_t len = 0;
	int fd = connect_to(path, why, whylen);
	int err;

	if (fd < 0)
		return fd;
	err = send_all(fd, request, strlen(request));
	if (!err)
		err = send_all(fd, "\n", 1);
	while (!err) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char *nl = memchr(buf, '\n', len);
		ssize_t n;

		if (nl) {
			bool last;

			*nl = 0;
			last = line(buf, arg);
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len);
			if (last)
				break;
			continue;
		}
		if (len + 1 >= sizeof(buf)) {
			err = -EMSGSIZE;
			break;
		}
		n = poll(&p, 1, timeout_ms);
		if (n == 0)
			err = -ETIMEDOUT;
		else if (n > 0 && (n = recv(fd, buf + len, sizeof(buf) - len - 1, 0)) > 0)
			len += (size_t)n;
		else if (n == 0)
			err = -EPIPE;
		else if (errno != EINTR)
			err = -errno;
	}
	close(fd);
	if (err)
		snprintf(why, whylen, "%s: %s", path,
			 err == -EPIPE ? "the VM closed the connection before the end"
				       : strerror(-err));
	return err;
}
