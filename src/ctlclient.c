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

static int read_line(int fd, char *reply, size_t cap, int timeout_ms)
{
	size_t len = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, timeout_ms);
		ssize_t n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (!r)
			return -ETIMEDOUT;
		if (len + 1 >= cap)
			return -EMSGSIZE;
		n = recv(fd, reply + len, cap - len - 1, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -EPIPE;
		len += (size_t)n;
		reply[len] = 0;
		if (memchr(reply, '\n', len)) {
			*strchr(reply, '\n') = 0;
			return 0;
		}
	}
}

int ctlclient_call(const char *path, const char *request, char *reply, size_t cap, int timeout_ms,
		   char *why, size_t whylen)
{
	int fd = connect_to(path, why, whylen);
	int err;

	if (fd < 0)
		return fd;
	err = send_all(fd, request, strlen(request));
	if (!err)
		err = send_all(fd, "\n", 1);
	if (!err)
		err = read_line(fd, reply, cap, timeout_ms);
	close(fd);
	if (err == -ETIMEDOUT)
		snprintf(why, whylen, "no reply from %s within %d ms", path, timeout_ms);
	else if (err == -EPIPE)
		snprintf(why, whylen, "%s closed the connection without a reply", path);
	else if (err == -EMSGSIZE)
		snprintf(why, whylen, "reply from %s is too long", path);
	else if (err)
		snprintf(why, whylen, "talking to %s: %s", path, strerror(-err));
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
