// SPDX-License-Identifier: MIT
/*
 * The control socket's file: a leftover of a crash is removed, one in use
 * is refused, and a new one is 0600 from the moment it exists. The
 * listener and the protocol on it are in control.c.
 */
#include "src/ctlsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A socket file nobody listens on is left over from a crash: remove it. */
int ctlsock_clear_stale(const char *path, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;
	int live;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, whylen, "%s exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	live = !connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (live) {
		snprintf(why, whylen, "control socket %s is in use by another process", path);
		return -EADDRINUSE;
	}
	return unlink(path) ? -errno : 0;
}

/*
 * A socket bound to @path whose file is 0600 from the start: Linux creates
 * the file with the socket's own mode (less the umask), set here before
 * bind(). The result is checked, and fixed, before listen(): until then
 * nobody can connect, whatever the mode. Returns the fd or -errno.
 */
int ctlsock_bind(const char *path, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;
	int err;

	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	if (fchmod(fd, 0600) || bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		goto out_close;
	}
	if (lstat(path, &st) || ((st.st_mode & 07777) != 0600 && chmod(path, 0600))) {
		err = -errno;
		goto out_unlink;
	}
	return fd;

out_unlink:
	unlink(path);
out_close:
	close(fd);
out:
	snprintf(why, whylen, "cannot create the control socket %s: %s", path, strerror(-err));
	return err;
}
