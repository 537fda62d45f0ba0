/* SPDX-License-Identifier: MIT */
/*
 * The DMA-style I/O device: a VMM thread that writes self-checking records
 * into a guest ring buffer at a set rate, as a NIC receiving or a disk
 * reading would. Those writes bypass KVM's dirty tracking, so every page the
 * device writes is marked in the VM's device-dirty bitmap, which migration
 * merges with KVM's dirty log.
 *
 * Ring protocol: struct hm_io_ctl (guest/abi.h). The device never overwrites
 * a record the guest has not consumed; when the ring is full it waits and
 * counts a stall.
 */
#ifndef HM_IODEV_H
#define HM_IODEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "src/util.h"

struct guest_mem;
struct bitmap;

struct iodev_stats {
	uint64_t records; /* records written */
	uint64_t bytes;	  /* bytes written into guest RAM */
	uint64_t stalls;  /* ticks the ring was full */
};

struct iodev {
	struct guest_mem *gm; /* not owned */
	struct bitmap *dirty; /* not owned: device-dirty pages, by gfn */
	uint64_t ctl_gpa;
	uint64_t ring_gpa;
	uint64_t slots;
	uint64_t rate; /* bytes/s */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;		  /* under lock */
	bool pause_req;		  /* under lock */
	bool parked;		  /* under lock: thread acknowledged pause */
	uint64_t seq;		  /* next record; owned by the thread while it runs */
	struct iodev_stats stats; /* under lock */
};

/*
 * Set up the device on guest RAM @gm. @ctl_gpa/@ring_gpa/@slots locate the
 * ring (checked against @gm), @rate is in bytes/s (> 0). Does not start it.
 */
int iodev_init(struct iodev *io, struct guest_mem *gm, struct bitmap *dirty, uint64_t ctl_gpa,
	       uint64_t ring_gpa, uint64_t slots, uint64_t rate) __must_check;
int iodev_start(struct iodev *io) __must_check;
/* Stop and join the thread; stats stay readable. Idempotent. */
void iodev_stop(struct iodev *io);
/* iodev_stop, then release; accepts an object never started or set up. */
void iodev_exit(struct iodev *io);
/* Park the thread between records (stop-and-copy); returns once parked. */
void iodev_pause(struct iodev *io);
void iodev_resume(struct iodev *io);
void iodev_get_stats(struct iodev *io, struct iodev_stats *st);

#endif
