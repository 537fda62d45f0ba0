/* SPDX-License-Identifier: MIT */
/*
 * VM state as a sequence of records (type, vCPU, length, data padded to 8
 * bytes) — vCPU registers and the VM-level and device state — carried by
 * one VMSTATE frame. The reader checks every length against the buffer;
 * what each record must contain is checked by whoever applies it.
 */
#ifndef HM_VMSTATE_H
#define HM_VMSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "src/util.h"

enum vmstate_type {
	VS_REGS = 1,
	VS_SREGS = 2,
	VS_XCRS = 3,
	VS_XSAVE = 4,
	VS_MSRS = 5,
	VS_EVENTS = 6,
	VS_DEBUGREGS = 7,
	VS_MPSTATE = 8,
	VS_CLOCK = 9,	 /* VM: kvmclock */
	VS_DEVICES = 10, /* VM: device window and I/O device */
	VS_END = 11,	 /* last record */
};

#define VMSTATE_REC_HDR 16
#define VMSTATE_VM_CPU	0xffffffffu /* record belongs to the VM, not a vCPU */

struct vmstate_buf {
	uint8_t *buf; /* caller's */
	size_t cap;
	size_t len;
	bool overflow;
};

struct vmstate_rec {
	uint32_t type;
	uint32_t cpu;
	uint32_t len;
	const uint8_t *data;
};

/* Device state of the VMM itself (VS_DEVICES). */
struct vmstate_devices {
	uint64_t io_seq;   /* I/O device: next record */
	uint64_t io_rate;  /* bytes/s */
	uint64_t units[8]; /* work units each vCPU had reported */
};

void vmstate_init(struct vmstate_buf *b, uint8_t *buf, size_t cap);
void vmstate_put(struct vmstate_buf *b, uint32_t type, uint32_t cpu, const void *data,
		 uint32_t len);
/*
 * Next record at *off in @buf/@len; advances *off. Returns 1 for a record,
 * 0 at the end of the buffer, -EBADMSG (reason in *why) when a length
 * runs past the buffer.
 */
int vmstate_next(const uint8_t *buf, size_t len, size_t *off, struct vmstate_rec *r,
		 const char **why) __must_check;

#endif
