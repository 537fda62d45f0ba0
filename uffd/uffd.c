// SPDX-License-Identifier: MIT
#define LOG_PREFIX "uffd: "
#include "uffd/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "src/log.h"

int uffd_open(struct uffd *u)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };

	memset(u, 0, sizeof(*u));
	u->fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u->fd < 0) {
		int err = -errno;

		u->fd = -1;
		return err;
	}
	if (ioctl(u->fd, UFFDIO_API, &api)) {
		int err = -errno;

		close(u->fd);
		u->fd = -1;
		return err;
	}
	u->features = api.features;
	return 0;
}

int uffd_register(struct uffd *u, void *base, uint64_t len)
{
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)base, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	const uint64_t need =
	    (1ULL << _UFFDIO_COPY) | (1ULL << _UFFDIO_ZEROPAGE) | (1ULL << _UFFDIO_WAKE);

	if (ioctl(u->fd, UFFDIO_REGISTER, &r))
		return -errno;
	if ((r.ioctls & need) != need) {
		struct uffdio_range rg = { (uintptr_t)base, len };

		if (ioctl(u->fd, UFFDIO_UNREGISTER, &rg))
			hm_warn("unregister after a refused register failed: %s", strerror(errno));
		return -ENOTSUP;
	}
	u->base = base;
	u->len = len;
	return 0;
}

int uffd_unregister(struct uffd *u)
{
	struct uffdio_range rg = { (uintptr_t)u->base, u->len };

	if (!u->base)
		return 0;
	if (ioctl(u->fd, UFFDIO_UNREGISTER, &rg))
		return -errno;
	u->base = NULL;
	u->len = 0;
	return 0;
}

int uffd_copy(struct uffd *u, void *dst, const void *src, uint64_t len, bool *existed)
{
	struct uffdio_copy c = {
		.dst = (uintptr_t)dst,
		.src = (uintptr_t)src,
		.len = len,
		.mode = 0,
	};

	*existed = false;
	if (!ioctl(u->fd, UFFDIO_COPY, &c))
		return 0;
	if (errno == EEXIST) {
		*existed = true;
		return 0;
	}
	return -errno;
}

int uffd_zeropage(struct uffd *u, void *dst, uint64_t len, bool *existed)
{
	struct uffdio_zeropage z = { .range = { (uintptr_t)dst, len }, .mode = 0 };

	*existed = false;
	if (!ioctl(u->fd, UFFDIO_ZEROPAGE, &z))
		return 0;
	if (errno == EEXIST) {
		*existed = true;
		return 0;
	}
	return -errno;
}

int uffd_wake(struct uffd *u, void *addr, uint64_t len)
{
	struct uffdio_range rg = { (uintptr_t)addr, len };

	return ioctl(u->fd, UFFDIO_WAKE, &rg) ? -errno : 0;
}

void uffd_close(struct uffd *u)
{
	if (u->fd < 0)
		return;
	if (uffd_unregister(u))
		hm_warn("unregister failed: %s", strerror(errno));
	close(u->fd);
	u->fd = -1;
}

bool uffd_available(void)
{
	struct uffd u;

	if (uffd_open(&u))
		return false;
	uffd_close(&u);
	return true;
}
