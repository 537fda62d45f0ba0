// SPDX-License-Identifier: MIT
#define LOG_PREFIX "iodev: "
#include "src/iodev.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include "guest/abi.h"
#include "guest/page.h"
#include "src/bitmap.h"
#include "src/log.h"
#include "src/mem.h"

#define TICK_NS (1 * NSEC_PER_MSEC)
/* credit saved while the ring is full or the thread was late, at most */
#define MAX_CREDIT_NS (10 * NSEC_PER_MSEC)

int iodev_init(struct iodev *io, struct guest_mem *gm, struct bitmap *dirty, uint64_t ctl_gpa,
	       uint64_t ring_gpa, uint64_t slots, uint64_t rate)
{
	int err;

	memset(io, 0, sizeof(*io));
	if (!rate || !slots || slots > gm->pages ||
	    !mem_range_ok(gm, ctl_gpa, sizeof(struct hm_io_ctl)) ||
	    !mem_range_ok(gm, ring_gpa, slots * HM_PAGE_SIZE) || ring_gpa % HM_PAGE_SIZE)
		return -EINVAL;
	io->gm = gm;
	io->dirty = dirty;
	io->ctl_gpa = ctl_gpa;
	io->ring_gpa = ring_gpa;
	io->slots = slots;
	io->rate = rate;
	err = pthread_mutex_init(&io->lock, NULL);
	if (err)
		return -err;
	err = pthread_cond_init(&io->cond, NULL);
	if (err) {
		pthread_mutex_destroy(&io->lock);
		return -err;
	}
	return 0;
}

static struct hm_io_ctl *ctl(struct iodev *io)
{
	return mem_gpa_to_hva(io->gm, io->ctl_gpa, sizeof(struct hm_io_ctl));
}

static void mark(struct iodev *io, uint64_t gpa)
{
	bitmap_set(io->dirty, gpa >> HM_PAGE_SHIFT);
}

/* Write one record if the ring has room. Returns false when it is full. */
static bool put_record(struct iodev *io)
{
	struct hm_io_ctl *c = ctl(io);
	uint64_t cons = __atomic_load_n(&c->cons, __ATOMIC_ACQUIRE);
	uint64_t gpa = io->ring_gpa + (io->seq % io->slots) * HM_PAGE_SIZE;

	if (io->seq - cons >= io->slots)
		return false;
	/* mark first: a page is never clean in the bitmap while it differs */
	mark(io, gpa);
	hm_page_fill(mem_gpa_to_hva(io->gm, gpa, HM_PAGE_SIZE), HM_IO_TAG | (gpa >> HM_PAGE_SHIFT),
		     io->seq + 1);
	io->seq++;
	mark(io, io->ctl_gpa);
	__atomic_store_n(&c->prod, io->seq, __ATOMIC_RELEASE);
	return true;
}

/* Park while paused; returns false when asked to stop. */
static bool wait_running(struct iodev *io)
{
	pthread_mutex_lock(&io->lock);
	while (io->pause_req && !io->stop) {
		io->parked = true;
		pthread_cond_broadcast(&io->cond);
		pthread_cond_wait(&io->cond, &io->lock);
	}
	io->parked = false;
	pthread_mutex_unlock(&io->lock);
	return !io->stop;
}

static void *iodev_thread(void *arg)
{
	struct iodev *io = arg;
	uint64_t last = hm_now_ns();
	uint64_t credit = 0; /* bytes */

	while (wait_running(io)) {
		struct timespec ts = { 0, TICK_NS };
		uint64_t now = hm_now_ns();
		uint64_t done = 0;
		bool full = false;

		/* clamp first: after a long pause the product would overflow */
		credit += min_t(uint64_t, now - last, MAX_CREDIT_NS) * io->rate / NSEC_PER_SEC;
		credit =
		    min_t(uint64_t, credit, io->rate * MAX_CREDIT_NS / NSEC_PER_SEC + HM_PAGE_SIZE);
		last = now;
		while (credit >= HM_PAGE_SIZE && !(full = !put_record(io))) {
			credit -= HM_PAGE_SIZE;
			done++;
		}
		pthread_mutex_lock(&io->lock);
		io->stats.records += done;
		io->stats.bytes += done * HM_PAGE_SIZE;
		io->stats.stalls += full;
		pthread_mutex_unlock(&io->lock);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int iodev_start(struct iodev *io)
{
	struct hm_io_ctl *c = ctl(io);
	int err;

	io->seq = __atomic_load_n(&c->prod, __ATOMIC_ACQUIRE);
	err = pthread_create(&io->thread, NULL, iodev_thread, io);
	if (err)
		return -err;
	io->started = true;
	return 0;
}

void iodev_stop(struct iodev *io)
{
	if (!io->gm || !io->started)
		return;
	pthread_mutex_lock(&io->lock);
	io->stop = true;
	pthread_cond_broadcast(&io->cond);
	pthread_mutex_unlock(&io->lock);
	pthread_join(io->thread, NULL);
	io->started = false;
}

void iodev_exit(struct iodev *io)
{
	if (!io->gm)
		return;
	iodev_stop(io);
	pthread_cond_destroy(&io->cond);
	pthread_mutex_destroy(&io->lock);
	io->gm = NULL;
}

void iodev_pause(struct iodev *io)
{
	pthread_mutex_lock(&io->lock);
	io->pause_req = true;
	while (io->started && !io->parked && !io->stop)
		pthread_cond_wait(&io->cond, &io->lock);
	pthread_mutex_unlock(&io->lock);
}

void iodev_resume(struct iodev *io)
{
	pthread_mutex_lock(&io->lock);
	io->pause_req = false;
	pthread_cond_broadcast(&io->cond);
	pthread_mutex_unlock(&io->lock);
}

void iodev_get_stats(struct iodev *io, struct iodev_stats *st)
{
	pthread_mutex_lock(&io->lock);
	*st = io->stats;
	pthread_mutex_unlock(&io->lock);
}
