/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM: one anonymous MAP_NORESERVE mapping that backs guest-physical
 * [0, size). Untouched memory costs nothing. All guest addresses coming from
 * the guest or the wire go through mem_gpa_to_hva(), which checks bounds and
 * overflow.
 */
#ifndef HM_MEM_H
#define HM_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "src/util.h"

struct guest_mem {
	uint8_t *hva;	/* host mapping of guest-physical 0, or NULL */
	uint64_t size;	/* bytes, a multiple of the page size */
	uint64_t pages; /* size / 4096 */
};

/*
 * Map @size bytes of guest RAM (page-aligned, non-zero). Returns 0 or -errno
 * (-EINVAL for a bad size, -ENOMEM when the mapping fails).
 */
int mem_init(struct guest_mem *gm, uint64_t size) __must_check;
/* Unmap; accepts a zeroed or already released object. */
void mem_exit(struct guest_mem *gm);
/*
 * Host address of [gpa, gpa + len) or NULL when any byte of it is outside
 * guest RAM (including arithmetic overflow). len 0 is treated as 1.
 */
void *mem_gpa_to_hva(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
/* True when [gpa, gpa + len) lies inside guest RAM. */
bool mem_range_ok(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
/*
 * Count pages the host has actually backed (touched by guest or VMM), via
 * mincore(). Returns the count or -errno.
 */
int64_t mem_resident_pages(const struct guest_mem *gm);

#endif
