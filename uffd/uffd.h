/* SPDX-License-Identifier: MIT */
/*
 * userfaultfd wrappers: open with the API handshake, register a range for
 * MISSING faults after checking the ioctls the kernel grants, place pages
 * with UFFDIO_COPY / UFFDIO_ZEROPAGE, wake. Every call returns 0 or -errno;
 * EEXIST from COPY/ZEROPAGE (the page is already there) counts as success
 * and is reported through *existed.
 */
#ifndef HM_UFFD_H
#define HM_UFFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "src/util.h"

struct uffd {
	int fd;		   /* owned, -1 when closed */
	uint64_t features; /* granted by UFFDIO_API */
	uint8_t *base;	   /* registered range */
	uint64_t len;
};

/* Open a userfaultfd (non-blocking, close-on-exec) and do the API handshake. */
int uffd_open(struct uffd *u) __must_check;
/* Register [base, base + len) for MISSING faults; -ENOTSUP if COPY/ZEROPAGE are not granted. */
int uffd_register(struct uffd *u, void *base, uint64_t len) __must_check;
int uffd_unregister(struct uffd *u);
/* Copy one page from @src to @dst (inside the range) and wake its waiters. */
int uffd_copy(struct uffd *u, void *dst, const void *src, uint64_t len, bool *existed) __must_check;
int uffd_zeropage(struct uffd *u, void *dst, uint64_t len, bool *existed) __must_check;
int uffd_wake(struct uffd *u, void *addr, uint64_t len) __must_check;
/* Unregister (if registered) and close; accepts a closed object. */
void uffd_close(struct uffd *u);
/* True when userfaultfd can be opened here (for tests). */
bool uffd_available(void);

#endif
