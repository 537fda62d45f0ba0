/* SPDX-License-Identifier: MIT */
/*
 * The built-in test guests (embedded flat binaries) and their parameters:
 * "NAME[:k=v,...]" parsing and the guest-physical layout that goes into
 * struct hm_bootinfo.
 */
#ifndef HM_GUEST_H
#define HM_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "guest/abi.h"
#include "src/util.h"

struct guest_type {
	const char *name;
	const char *summary;
	const char *params; /* comma-separated keys it accepts */
	const uint8_t *image;
	const uint8_t *image_end;
};

struct guest_spec {
	const struct guest_type *type;
	uint64_t wss;  /* working set, bytes */
	uint64_t rate; /* pages/s over all vCPUs, 0 = as fast as it can */
	enum hm_pattern pattern;
	uint64_t io_mbps; /* I/O device rate, MB/s (10^6 bytes), 0 = off */
	uint64_t seed;
	enum hm_fault_kind fault;
	bool fill;	/* dirtier: write the working set once, then idle */
	bool prefill;	/* dirtier: write the working set once at full speed, then at rate */
	char text[256]; /* the spec as given, for the migration destination */
};

#define GUEST_IO_SLOTS	  256
#define GUEST_DEFAULT_WSS (64ULL << 20)
#define GUEST_REPORT_NS	  (1 * NSEC_PER_MSEC)

/* Look a guest type up by name; NULL when unknown. */
const struct guest_type *guest_find(const char *name);
/* Print the guest catalogue (for --help). */
void guest_print_catalogue(FILE *f);
/*
 * Parse "NAME[:k=v,...]" into @spec (defaults for what is not given).
 * Returns 0 or -EINVAL with a one-line reason in @why.
 */
int guest_spec_parse(const char *s, struct guest_spec *spec, char *why, size_t whylen) __must_check;
/*
 * Lay the guest out in @mem bytes of RAM for @nr_vcpus vCPUs and fill the
 * layout fields of @bi. Returns 0 or -E2BIG/-EINVAL with a reason.
 */
int guest_layout(const struct guest_spec *spec, uint64_t mem, unsigned int nr_vcpus,
		 struct hm_bootinfo *bi, char *why, size_t whylen) __must_check;
/*
 * Fill the fields of @bi that are the machine's rather than the guest's
 * (magic, TSC frequency, vCPUs, RAM, device window), after guest_layout():
 * the VMM does it when it loads a guest, tools/mbimage.c at image build time.
 */
void guest_boot_finish(struct hm_bootinfo *bi, uint64_t tsc_khz, unsigned int nr_vcpus,
		       uint64_t ram_bytes);

#endif
