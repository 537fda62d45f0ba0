/* SPDX-License-Identifier: MIT */
/* The control socket's file (ctlsock.c): stale ones cleared, new ones private. */
#ifndef HM_CTLSOCK_H
#define HM_CTLSOCK_H

#include <stddef.h>
#include "src/util.h"

/*
 * A socket file at @path that nobody listens on is left over from a crash:
 * remove it. 0 when @path is free now; -EEXIST (not a socket) or
 * -EADDRINUSE (another process listens) with a reason in @why; other
 * -errno from the file system.
 */
int ctlsock_clear_stale(const char *path, char *why, size_t whylen) __must_check;
/*
 * A non-blocking socket bound to @path (shorter than sun_path), whose file
 * is 0600 from the start. Returns the fd (the caller owns it and the file)
 * or -errno with a reason in @why.
 */
int ctlsock_bind(const char *path, char *why, size_t whylen) __must_check;

#endif
